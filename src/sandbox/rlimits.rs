//! setrlimit(2): open files always, and the fallbacks for memory and process
//! count where no cgroup is available.

use nix::sys::resource::{setrlimit, Resource};

use super::init::{InitError, Step};
use super::{Rlimit, RlimitResource};

/// Applies every limit of `which` kind from `limits`.
pub fn apply(limits: &[Rlimit], which: &[RlimitResource]) -> Result<(), InitError> {
    for limit in limits.iter().filter(|l| which.contains(&l.resource)) {
        let resource = match limit.resource {
            RlimitResource::Nofile => Resource::RLIMIT_NOFILE,
            RlimitResource::Nproc => Resource::RLIMIT_NPROC,
            RlimitResource::As => Resource::RLIMIT_AS,
        };
        setrlimit(resource, limit.limit, limit.limit)
            .map_err(|e| InitError::sys(Step::Rlimits, e))?;
    }
    Ok(())
}

/// Writes our pid into each cgroup, so the session's whole tree lives there.
pub fn join_cgroups(procs_files: &[std::path::PathBuf]) -> Result<(), InitError> {
    let pid = std::process::id().to_string();
    for file in procs_files {
        std::fs::write(file, &pid)
            .map_err(|e| InitError::io(Step::Cgroup, &file.display().to_string(), e))?;
    }
    Ok(())
}
