//! The supervisor's side of starting a sandbox: one `Command` that re-executes
//! this binary as the session's init.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Stdio;

use super::{SandboxSpec, INIT_ARG};

/// Builds the command that starts a sandboxed worker described by `spec`.
///
/// `init_exe` is the `sessionvisor` binary itself. stdin, stdout and stderr are
/// pipes; every other descriptor is closed by the init before anything else.
pub fn sandboxed_command(
    init_exe: &Path,
    spec: &SandboxSpec,
) -> Result<tokio::process::Command, serde_json::Error> {
    let mut command = std::process::Command::new(init_exe);
    command.arg(INIT_ARG).arg(serde_json::to_string(spec)?);
    // SAFETY: runs between fork and exec in the (multi-threaded) supervisor. prctl
    // is async-signal-safe and allocates nothing; `last_os_error` builds an error
    // from errno without allocating. PDEATHSIG follows the forking thread, and
    // tokio's runtime worker threads live as long as the supervisor.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
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
