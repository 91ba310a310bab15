//! Capabilities: PID 1 needs all of its user namespace's to build the sandbox,
//! and none afterwards.

use super::init::{InitError, Step};

/// Clears the effective, permitted and inheritable sets of the calling thread
/// (the init is single-threaded). The worker runs as a non-root uid, so its
/// `execve` would clear them anyway; this protects PID 1 itself.
pub fn drop_all() -> Result<(), InitError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads one header and two data structs (version 3 uses two
    // 32-bit halves), all of which live on this stack frame during the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    if rc != 0 {
        return Err(InitError::sys(
            Step::DropCapabilities,
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}
