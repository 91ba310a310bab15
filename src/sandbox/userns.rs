//! User ids: who a session is on the host, and how its user namespace maps it.
//!
//! A session always gets its own user namespace. Its uid inside is the same
//! number as outside (an identity map of one id), so the worker is never uid 0
//! inside and `execve` leaves it with no capability at all.
//!
//! As root, the init first drops to an unprivileged host uid allocated for the
//! session: a worker then holds no capability in the host's user namespace, and a
//! different uid per session means even a sandbox escape cannot signal or ptrace
//! another session's processes.

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use std::fs;

use super::init::{InitError, Step};

/// Drops from root to `uid`/`gid` with no supplementary groups.
pub fn drop_host_privileges(uid: u32, gid: u32) -> Result<(), InitError> {
    setgroups(&[]).map_err(|e| InitError::sys(Step::DropPrivileges, e))?;
    let gid = Gid::from_raw(gid);
    setresgid(gid, gid, gid).map_err(|e| InitError::sys(Step::DropPrivileges, e))?;
    let uid = Uid::from_raw(uid);
    setresuid(uid, uid, uid).map_err(|e| InitError::sys(Step::DropPrivileges, e))?;
    // Changing uid made us non-dumpable, which hands /proc/self to root and so
    // bars us from writing our own id maps. The new uid is ours alone.
    nix::sys::prctl::set_dumpable(true).map_err(|e| InitError::sys(Step::DropPrivileges, e))?;
    Ok(())
}

/// The caller's host uid and gid. Read them before unsharing: inside a user
/// namespace without maps every id reads as the overflow id 65534.
pub fn host_ids() -> (u32, u32) {
    (Uid::effective().as_raw(), Gid::effective().as_raw())
}

/// Writes the identity map of the caller's own host ids (from [`host_ids`]) into
/// the user namespace it has just unshared. An unprivileged process may map
/// exactly its own ids, and only after denying `setgroups` (user_namespaces(7)).
pub fn map_own_ids((uid, gid): (u32, u32)) -> Result<(), InitError> {
    let write = |path: &str, text: String| {
        fs::write(path, text).map_err(|e| InitError::io(Step::IdMaps, path, e))
    };
    write("/proc/self/setgroups", "deny".to_string())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1\n"))?;
    Ok(())
}
