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
    /// The session's scratch space: a size-limited tmpfs mounted here (a host
    /// directory, inside the session's mount namespace only), whose
    /// subdirectories become `/tmp`, `/var/tmp` and `/dev/shm`.
    pub scratch: Scratch,
    /// Persistent per-session storage (host directory) bound at `/mnt/workspace`.
    pub storage: Option<PathBuf>,
    /// Host directories covered by an empty read-only tmpfs, so that no path inside
    /// the session reaches them (the supervisor's state directory).
    pub hidden: Vec<PathBuf>,
    /// When the supervisor is root: the unprivileged host uid/gid the session runs
    /// under. `None` when rootless: the session keeps the caller's uid.
    pub drop_to: Option<(u32, u32)>,
    pub network: NetworkMode,
    /// Apply Landlock scopes (abstract unix sockets, signals) where the kernel has them.
    pub landlock: bool,
    /// `cgroup.procs` files the init joins before it forks anything.
    pub cgroup_procs: Vec<PathBuf>,
    /// Resource limits set with setrlimit(2) before the worker starts.
    pub rlimits: Vec<Rlimit>,
    /// Working directory of the worker inside the sandbox (falls back to `/`).
    pub cwd: PathBuf,
    /// A warm-pool sandbox: fd 3 carries its session's hostname later.
    pub pooled: bool,
    /// The worker's argv; empty means "probe": build the sandbox, then exit 0.
    pub argv: Vec<String>,
}

/// The size-limited scratch filesystem of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scratch {
    pub mount_point: PathBuf,
    pub size_bytes: u64,
}

/// Directories of the scratch filesystem and where they appear inside.
pub const SCRATCH_DIRS: [(&str, &str); 3] = [
    ("tmp", "/tmp"),
    ("var-tmp", "/var/tmp"),
    ("shm", "/dev/shm"),
];

/// Where session storage appears inside the sandbox (AgentCore's convention).
pub const STORAGE_MOUNT: &str = "/mnt/workspace";

/// One setrlimit(2) call, soft and hard limit alike.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: RlimitResource,
    pub limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RlimitResource {
    /// Open files.
    Nofile,
    /// Processes of the session's uid, counted per user namespace (Linux >= 5.14).
    Nproc,
    /// Address space: the memory fallback when no cgroup is available.
    As,
}
