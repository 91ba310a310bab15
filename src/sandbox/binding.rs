//! Binding a warm-pool sandbox to its session. A pooled sandbox is built, and
//! its worker started, before the session is known; its PID 1 then waits on a
//! control pipe (fd 3) for the session's hostname, sets it, drops its last
//! capabilities and reports `BOUND_LINE` on stderr.

use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::init::{InitError, Step};
use super::{caps, namespaces};

/// The descriptor a pooled sandbox's init reads its binding from.
pub const CONTROL_FD: i32 = 3;
/// PID 1 has taken the session's hostname and dropped its capabilities.
pub const BOUND_LINE: &str = "sessionvisor-init: bound";
/// Prefix of the line PID 1 writes when binding failed.
pub const BIND_FAILED_PREFIX: &str = "sessionvisor-init: bind failed";

/// How often an unbound PID 1 also checks its children, in case SIGCHLD
/// arrived just before it began to wait.
const IDLE_TICK_MS: u16 = 100;

extern "C" fn wake(_: libc::c_int) {}

/// The control pipe, taken over as an owned descriptor.
pub fn control() -> OwnedFd {
    // SAFETY: the supervisor placed the pipe's read end at CONTROL_FD and the
    // init kept it open for exactly this; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(CONTROL_FD) }
}

/// Keeps the control descriptor from reaching the worker.
pub fn close_on_exec(control: &OwnedFd) -> Result<(), InitError> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use std::os::fd::AsRawFd;
    fcntl(control.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map(drop)
        .map_err(|e| InitError::sys(Step::Fork, e))
}

/// PID 1 of a pooled sandbox, after its worker started: reaps and waits for the
/// binding. Returns `Some(code)` if the worker died first.
pub fn await_binding(control: OwnedFd, worker: Pid) -> Result<Option<i32>, InitError> {
    let action = SigAction::new(SigHandler::Handler(wake), SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler does nothing; it only makes poll return EINTR.
    unsafe { sigaction(Signal::SIGCHLD, &action) }.map_err(|e| InitError::sys(Step::Signals, e))?;
    loop {
        if let Some(code) = reap_without_waiting(worker) {
            return Ok(Some(code));
        }
        super::init::forward_pending(worker);
        let mut fds = [PollFd::new(control.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(IDLE_TICK_MS)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => break,
            Err(error) => return Err(InitError::sys(Step::Signals, error)),
        }
    }
    let mut line = Vec::with_capacity(128);
    let mut file = std::fs::File::from(control);
    let mut byte = [0u8; 1];
    // One short line; reading byte by byte keeps nothing of a longer one.
    while line.len() < 256 {
        match file.read(&mut byte) {
            Ok(1) if byte[0] != b'\n' => line.push(byte[0]),
            _ => break,
        }
    }
    drop(file);
    let hostname = String::from_utf8_lossy(&line).into_owned();
    let bound = if hostname.is_empty() {
        // The supervisor closed the pipe: retiring an unused pooled worker.
        Ok(())
    } else {
        namespaces::set_hostname(&hostname)
    };
    caps::drop_all()?;
    match bound {
        Ok(()) => eprintln!("{BOUND_LINE}"),
        Err(error) => eprintln!("{BIND_FAILED_PREFIX}: {error}"),
    }
    Ok(None)
}

fn reap_without_waiting(worker: Pid) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return None,
            Ok(status) if status.pid() == Some(worker) => {
                if let Some(code) = super::init::exit_code(status) {
                    return Some(code);
                }
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
}
