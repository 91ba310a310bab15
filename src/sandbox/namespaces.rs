//! Which namespaces a session gets, and the per-namespace bits of setup that need
//! no filesystem (hostname).

use nix::sched::{unshare, CloneFlags};

use super::init::{InitError, Step};
use super::NetworkMode;

/// Namespaces every session gets. The user namespace comes first in the kernel's
/// order, so the others are owned by it and the session holds capabilities only
/// over its own namespaces.
pub fn flags(network: NetworkMode) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if network == NetworkMode::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

/// Unshares all of a session's namespaces. The PID namespace applies to the
/// children of the caller only: its first child becomes PID 1.
pub fn enter_new(network: NetworkMode) -> Result<(), InitError> {
    unshare(flags(network)).map_err(|e| InitError::sys(Step::Unshare, e))
}

pub fn set_hostname(hostname: &str) -> Result<(), InitError> {
    nix::unistd::sethostname(hostname).map_err(|e| InitError::sys(Step::Hostname, e))
}
