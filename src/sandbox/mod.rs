//! The sandbox around one session's worker.
//!
//! The supervisor never calls `unshare` itself: it is multi-threaded (tokio), and
//! `unshare(CLONE_NEWUSER)` demands a single-threaded caller. Instead it spawns this
//! same binary with [`INIT_ARG`] (the runc/youki re-exec pattern). That fresh,
//! single-threaded process builds the namespaces ([`init`]) and finally execs the
//! worker. The only code that runs between `fork` and `exec` in the supervisor is
//! one `prctl` (see [`spawn::sandboxed_command`]).
//!
//! One file per kernel concern, as in nsjail: [`fds`], [`userns`], [`namespaces`],
//! [`mounts`], [`net`], [`landlock`], [`rlimits`], [`cgroup`], [`probe`].

pub mod binding;
pub mod caps;
pub mod cgroup;
pub mod fds;
pub mod init;
pub mod landlock;
pub mod mounts;
pub mod namespaces;
pub mod net;
pub mod probe;
pub mod rlimits;
pub mod spawn;
pub mod spec;
pub mod userns;

pub use spec::{NetworkMode, Rlimit, RlimitResource, SandboxSpec, Scratch};

/// First argument that turns the `sessionvisor` binary into a session's init.
pub const INIT_ARG: &str = "__sandbox-init";

/// Exit status of the init when building the sandbox failed. Its stderr then
/// carries one line starting with [`SETUP_FAILED_PREFIX`].
pub const EXIT_SETUP_FAILED: i32 = 125;

/// Prefix of the stderr line that explains a failed sandbox setup.
pub const SETUP_FAILED_PREFIX: &str = "sessionvisor-init: sandbox setup failed";

/// The line PID 1 writes to stderr once the sandbox is complete, just before it
/// starts the worker. A warm pool hands out only sandboxes that said it.
pub const SANDBOX_READY_LINE: &str = "sessionvisor-init: sandbox ready";
