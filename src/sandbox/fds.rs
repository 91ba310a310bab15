//! File-descriptor hygiene: nothing but stdin, stdout and stderr crosses into a
//! session, so the pipes of session B can never leak into session A.

use nix::errno::Errno;

/// Closes every descriptor from `first` up in the calling process.
///
/// Uses `close_range(2)` (Linux 5.9) and falls back to walking the descriptor
/// table, because an inherited descriptor is the one leak namespaces cannot stop.
pub fn close_inherited(first: i32) -> Result<(), Errno> {
    // SAFETY: close_range only closes descriptors of this process. The init calls it
    // first thing, before it opens or borrows any descriptor of its own.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0u32) };
    if rc == 0 {
        return Ok(());
    }
    let max = nix::unistd::sysconf(nix::unistd::SysconfVar::OPEN_MAX)
        .ok()
        .flatten()
        .unwrap_or(1024);
    for fd in first..max as i32 {
        // SAFETY: as above; EBADF for unused numbers is expected and ignored.
        unsafe { libc::close(fd) };
    }
    Ok(())
}
