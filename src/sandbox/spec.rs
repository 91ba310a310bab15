//! What the supervisor tells a session's init: everything the init needs, so the
//! init never has to look at supervisor state.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Whether a session shares the host's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Share the host network: agents call model APIs.
    Host,
    /// A network namespace of its own with only loopback.
    None,
}

/// The full description of one session's sandbox, passed to the init as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// Hostname inside the session's UTS namespace.
    pub hostname: String,
    /// Empty directory (owned by the session uid) that becomes the session's `/`.
    pub new_root: PathBuf,
    /// Host directories bind-mounted read-write: (host source, path inside).
    pub writable_binds: Vec<(PathBuf, PathBuf)>,
    /// Host directories covered by an empty read-only tmpfs, so that no path inside
    /// the session reaches them (the supervisor's state directory).
    pub hidden: Vec<PathBuf>,
    /// When the supervisor is root: the unprivileged host uid/gid the session runs
    /// under. `None` when rootless: the session keeps the caller's uid.
    pub drop_to: Option<(u32, u32)>,
    pub network: NetworkMode,
    /// Apply Landlock scopes (abstract unix sockets, signals) where the kernel has them.
    pub landlock: bool,
    /// Working directory of the worker inside the sandbox (falls back to `/`).
    pub cwd: PathBuf,
    /// The worker's argv; empty means "probe": build the sandbox, then exit 0.
    pub argv: Vec<String>,
}
