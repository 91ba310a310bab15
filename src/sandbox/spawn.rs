//! The supervisor's side of starting a sandbox: one `Command` that re-executes
//! this binary as the session's init.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Stdio;

use std::os::fd::{AsRawFd, OwnedFd};

use super::binding::CONTROL_FD;
use super::{SandboxSpec, INIT_ARG};

/// Builds the command that starts a sandboxed worker described by `spec`.
///
/// `init_exe` is the `sessionvisor` binary itself. stdin, stdout and stderr are
/// pipes; every other descriptor is closed by the init before anything else,
/// except `control`, a warm-pool sandbox's binding pipe, placed at fd 3.
pub fn sandboxed_command(
    init_exe: &Path,
    spec: &SandboxSpec,
    control: Option<OwnedFd>,
) -> Result<tokio::process::Command, serde_json::Error> {
    let mut command = std::process::Command::new(init_exe);
    command.arg(INIT_ARG).arg(serde_json::to_string(spec)?);
    // The closure owns the control pipe's read end, so it stays open until the
    // child is spawned and closes in the parent when the command is dropped.
    let control_raw = control.as_ref().map(|fd| fd.as_raw_fd());
    // SAFETY: runs between fork and exec in the (multi-threaded) supervisor.
    // prctl, dup2 and fcntl are async-signal-safe and allocate nothing;
    // `last_os_error` builds an error from errno without allocating.
    // PDEATHSIG follows the forking thread, and tokio's runtime worker threads
    // live as long as the supervisor.
    unsafe {
        command.pre_exec(move || {
            let _owned = &control;
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(raw) = control_raw {
                // dup2 onto itself keeps close-on-exec set; clear it by hand then.
                let placed = if raw == CONTROL_FD {
                    libc::fcntl(raw, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, CONTROL_FD)
                };
                if placed < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut command = tokio::process::Command::from(command);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    Ok(command)
}
