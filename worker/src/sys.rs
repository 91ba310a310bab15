//! The few libc calls that std does not wrap, each behind a safe function so
//! that the rest of the crate has no `unsafe`.

use std::mem::MaybeUninit;
use std::os::fd::RawFd;

pub fn uid() -> u32 {
    // SAFETY: getuid takes no arguments and cannot fail.
    unsafe { libc::getuid() }
}

pub fn gid() -> u32 {
    // SAFETY: getgid takes no arguments and cannot fail.
    unsafe { libc::getgid() }
}

pub fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// The nodename from uname(2): the hostname of this UTS namespace.
pub fn hostname() -> Option<String> {
    let mut uts = MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: uname only writes into the struct, which is valid for writes.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: uname succeeded, so it filled the struct (which was zeroed, a
    // valid value for its plain char arrays, in any case).
    let uts = unsafe { uts.assume_init() };
    let bytes: Vec<u8> = uts
        .nodename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Whether `fd` is an open descriptor of this process.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags; a closed or invalid
    // fd makes it fail with EBADF, nothing worse.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}
