//! Naming a pooled sandbox after the session that takes it. A warm-pool worker
//! is started before its session is known, so its UTS namespace gets the
//! session's hostname only when it is bound. Joining a user namespace needs a
//! single-threaded caller, so this runs in a short re-executed process.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use nix::sched::{setns, CloneFlags};

/// First argument that turns the `sessionvisor` binary into the hostname setter.
pub const SET_HOSTNAME_ARG: &str = "__set-hostname";

/// Entry point: `__set-hostname PID HOSTNAME`. Joins PID's user and UTS
/// namespaces, sets the hostname, exits 0; on failure says why and exits 1.
pub fn main(args: &[String]) -> ! {
    let result = match args {
        [pid, hostname] => set(pid, hostname),
        _ => Err("usage: __set-hostname PID HOSTNAME".to_string()),
    };
    match result {
        Ok(()) => std::process::exit(0),
        Err(message) => {
            eprintln!("sessionvisor: cannot set the session hostname: {message}");
            std::process::exit(1)
        }
    }
}

fn set(pid: &str, hostname: &str) -> Result<(), String> {
    let open = |name: &str| {
        let path = Path::new("/proc").join(pid).join("ns").join(name);
        File::open(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let user = open("user")?;
    let uts = open("uts")?;
    // Never rename the host: the target must already be in a UTS namespace of
    // its own (a sandbox still being built is not).
    let own =
        std::fs::metadata("/proc/self/ns/uts").map_err(|e| format!("/proc/self/ns/uts: {e}"))?;
    let theirs = uts
        .metadata()
        .map_err(|e| format!("uts namespace of {pid}: {e}"))?;
    if std::os::unix::fs::MetadataExt::ino(&own) == std::os::unix::fs::MetadataExt::ino(&theirs) {
        return Err(format!(
            "process {pid} shares our UTS namespace; refusing to rename it"
        ));
    }
    setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("joining the user namespace: {e}"))?;
    setns(uts.as_fd(), CloneFlags::CLONE_NEWUTS)
        .map_err(|e| format!("joining the UTS namespace: {e}"))?;
    nix::unistd::sethostname(hostname).map_err(|e| format!("sethostname: {e}"))
}

/// Sets the hostname of the sandbox whose outer init is `pid`.
pub async fn set_hostname_of(init_exe: &Path, pid: u32, hostname: &str) -> Result<(), String> {
    let output = tokio::process::Command::new(init_exe)
        .arg(SET_HOSTNAME_ARG)
        .arg(pid.to_string())
        .arg(hostname)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", init_exe.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}
