//! The session's init: this binary re-executed with [`super::INIT_ARG`].
//!
//! Two processes, because a new PID namespace applies only to the children of the
//! process that unshares it:
//!
//! ```text
//! supervisor ─► outer init (host PID ns) ─► PID 1 (our init) ─► worker (PID 2)
//! ```
//!
//! * The outer init closes stray descriptors, drops root (when root), unshares
//!   every namespace, writes the id maps, forks PID 1, forwards SIGTERM/SIGINT/SIGHUP
//!   to it, and exits with its status.
//! * PID 1 builds the filesystem, hostname, loopback, `no_new_privs` and Landlock,
//!   forks the worker, reaps every orphan, and exits with the worker's status;
//!   the kernel then kills whatever is left in the namespace.
//! * Both hold `PR_SET_PDEATHSIG(SIGKILL)` towards their parent, so a SIGKILL of
//!   the supervisor takes down the outer init, PID 1, and with it the namespace.
//!
//! Everything here runs in a process that `execve` has just made single-threaded,
//! so it may allocate freely, even after `fork`.

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getppid, pipe2, ForkResult, Pid};
use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use super::{
    binding, caps, fds, landlock, mounts, namespaces, net, rlimits, userns, NetworkMode,
    RlimitResource, SandboxSpec, EXIT_SETUP_FAILED, SANDBOX_READY_LINE, SETUP_FAILED_PREFIX,
};

/// Each step of building a sandbox, named in errors so a failure says where.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Spec,
    CloseFds,
    DropPrivileges,
    Unshare,
    IdMaps,
    ParentDeath,
    Fork,
    MakePrivate,
    BindHostRoot,
    HideStateDir,
    ReadOnlyRoot,
    BindPrivateDir,
    MountProc,
    PivotRoot,
    Hostname,
    Loopback,
    NoNewPrivs,
    Landlock,
    Signals,
    Rlimits,
    Cgroup,
    DropCapabilities,
    Scratch,
    Storage,
    Run,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Step::Spec => "reading the sandbox spec",
            Step::CloseFds => "closing inherited descriptors",
            Step::DropPrivileges => "dropping root to the session uid",
            Step::Unshare => "creating user/mount/pid/ipc/uts namespaces (unshare)",
            Step::IdMaps => "writing the user namespace id maps",
            Step::ParentDeath => "tying the sandbox to the supervisor's life",
            Step::Fork => "forking the namespace's PID 1",
            Step::MakePrivate => "making mounts private",
            Step::BindHostRoot => "bind-mounting the host root",
            Step::HideStateDir => "hiding the supervisor state directory",
            Step::ReadOnlyRoot => "making the host read-only (mount_setattr, Linux >= 5.12)",
            Step::BindPrivateDir => "bind-mounting the session's private directory",
            Step::MountProc => "mounting a fresh /proc",
            Step::PivotRoot => "pivoting into the session root",
            Step::Hostname => "setting the hostname",
            Step::Loopback => "bringing up loopback",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::Landlock => "applying Landlock scopes",
            Step::Signals => "installing signal forwarding",
            Step::Rlimits => "setting resource limits (setrlimit)",
            Step::Cgroup => "joining the session's cgroup",
            Step::DropCapabilities => "dropping PID 1's capabilities",
            Step::Scratch => {
                "mounting the session's size-limited /tmp, /var/tmp and /dev/shm (tmpfs)"
            }
            Step::Storage => "mounting session storage at /mnt/workspace",
            Step::Run => "giving the session an empty /run",
        };
        f.write_str(text)
    }
}

/// A failed step of sandbox setup, with the OS error behind it.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{step}: {source}")]
    Sys { step: Step, source: Errno },
    #[error("{step} ({path}): {source}")]
    Io {
        step: Step,
        path: String,
        source: std::io::Error,
    },
    #[error("{step} ({}): {source}", path.display())]
    Mount {
        step: Step,
        path: PathBuf,
        source: Errno,
    },
    #[error("{step}: {message}")]
    Invalid { step: Step, message: String },
}

impl InitError {
    pub fn sys(step: Step, source: Errno) -> Self {
        InitError::Sys { step, source }
    }
    pub fn io(step: Step, path: &str, source: std::io::Error) -> Self {
        InitError::Io {
            step,
            path: path.to_string(),
            source,
        }
    }
    pub fn mount(step: Step, path: impl AsRef<Path>, source: Errno) -> Self {
        InitError::Mount {
            step,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    pub fn invalid(step: Step, message: &str) -> Self {
        InitError::Invalid {
            step,
            message: message.to_string(),
        }
    }
}

/// Entry point of the init; never returns to the caller's `main`.
pub fn main(args: &[String]) -> ! {
    let code = match outer(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{SETUP_FAILED_PREFIX}: {error}");
            EXIT_SETUP_FAILED
        }
    };
    std::process::exit(code)
}

fn outer(args: &[String]) -> Result<i32, InitError> {
    let spec_json = args
        .first()
        .ok_or_else(|| InitError::invalid(Step::Spec, "missing spec argument"))?;
    let spec: SandboxSpec = serde_json::from_str(spec_json)
        .map_err(|e| InitError::invalid(Step::Spec, &e.to_string()))?;
    // Nothing but stdio, and a pooled sandbox's control pipe, may come in.
    let first_closed = if spec.pooled {
        binding::CONTROL_FD + 1
    } else {
        3
    };
    fds::close_inherited(first_closed).map_err(|e| InitError::sys(Step::CloseFds, e))?;
    let supervisor = getppid();

    // Before dropping root: v1 cgroup files belong to root.
    rlimits::join_cgroups(&spec.cgroup_procs)?;
    if let Some((uid, gid)) = spec.drop_to {
        userns::drop_host_privileges(uid, gid)?;
    }
    let host_ids = userns::host_ids();
    namespaces::enter_new(spec.network)?;
    userns::map_own_ids(host_ids)?;
    // Only now: RLIMIT_NPROC in force when a user namespace is created becomes
    // that namespace's ceiling for the whole uid, shared by every session of a
    // rootless supervisor. Set inside, it counts this session's processes alone.
    rlimits::apply(&spec.rlimits, &[RlimitResource::Nproc])?;
    // Credential changes above clear the parent-death signal the supervisor set
    // before exec; set it again, then make sure the supervisor did not die in between.
    die_with_parent()?;
    if getppid() != supervisor {
        return Ok(EXIT_SETUP_FAILED);
    }

    let (lifeline_read, lifeline_write) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| InitError::sys(Step::Fork, e))?;
    // SAFETY: this process is single-threaded (fresh from execve), so the child may
    // allocate and run arbitrary code after fork.
    match unsafe { fork() }.map_err(|e| InitError::sys(Step::Fork, e))? {
        ForkResult::Child => {
            drop(lifeline_write);
            let code = match pid1(&spec, lifeline_read) {
                Ok(code) => code,
                Err(error) => {
                    eprintln!("{SETUP_FAILED_PREFIX}: {error}");
                    EXIT_SETUP_FAILED
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            drop(lifeline_read);
            close_session_stdio();
            forward_signals()?;
            let code = wait_for(child);
            drop(lifeline_write);
            Ok(code)
        }
    }
}

/// PID 1 of the session's namespaces.
fn pid1(spec: &SandboxSpec, lifeline: OwnedFd) -> Result<i32, InitError> {
    die_with_parent()?;
    // The outer init may have died before PDEATHSIG was armed; its end of the
    // lifeline is then closed and poll reports a hang-up at once.
    let mut fds = [PollFd::new(lifeline.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) > 0 {
        return Ok(EXIT_SETUP_FAILED);
    }
    drop(lifeline);

    mounts::build_root(spec)?;
    namespaces::set_hostname(&spec.hostname)?;
    if spec.network == NetworkMode::None {
        net::loopback_up()?;
    }
    rlimits::apply(&spec.rlimits, &[RlimitResource::Nofile, RlimitResource::As])?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| InitError::sys(Step::NoNewPrivs, e))?;
    if spec.landlock && landlock::kernel_abi().is_some_and(|abi| abi >= landlock::SCOPES_ABI) {
        landlock::scope_to_session()?;
    }
    if spec.argv.is_empty() {
        // Probe: the sandbox could be built; there is nothing to run.
        return Ok(0);
    }
    // PID 1 holds every capability of the session's user namespace, enough to
    // undo the read-only host or uncover the state directory. The worker shares
    // its uid: refuse it ptrace and /proc access at once, and shed the
    // capabilities (a pooled sandbox once it has its session's hostname).
    nix::sys::prctl::set_dumpable(false).map_err(|e| InitError::sys(Step::DropCapabilities, e))?;
    let control = if spec.pooled {
        let control = binding::control();
        binding::close_on_exec(&control)?;
        Some(control)
    } else {
        caps::drop_all()?;
        None
    };

    let argv: Vec<CString> = spec
        .argv
        .iter()
        .map(|arg| CString::new(arg.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| InitError::invalid(Step::Spec, "worker argument contains NUL"))?;
    // The host's TMPDIR may point somewhere that is read-only in here.
    std::env::set_var("TMPDIR", "/tmp");
    forward_signals()?;

    eprintln!("{SANDBOX_READY_LINE}");
    // SAFETY: single-threaded process; see the module comment.
    match unsafe { fork() }.map_err(|e| InitError::sys(Step::Fork, e))? {
        ForkResult::Child => {
            restore_default_signals();
            if nix::unistd::chdir(&spec.cwd).is_err() {
                let _ = nix::unistd::chdir("/");
            }
            let error = nix::unistd::execvp(&argv[0], &argv).unwrap_err();
            eprintln!(
                "sessionvisor-init: cannot execute worker {:?}: {error}",
                spec.argv[0]
            );
            std::process::exit(if error == Errno::ENOENT { 127 } else { 126 })
        }
        ForkResult::Parent { child } => {
            close_session_stdio();
            if let Some(control) = control {
                if let Some(code) = binding::await_binding(control, child)? {
                    return Ok(code);
                }
            }
            Ok(reap_until(child))
        }
    }
}

fn die_with_parent() -> Result<(), InitError> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| InitError::sys(Step::ParentDeath, e))
}

/// Leaves stdin and stdout to the worker alone, so the supervisor sees EOF the
/// moment the worker is gone. stderr stays: the inits report through it.
fn close_session_stdio() {
    // SAFETY: closing our own copies of 0 and 1; nothing in this process uses them again.
    unsafe {
        libc::close(0);
        libc::close(1);
    }
}

/// The signal waiting to be forwarded to our child, 0 for none.
static PENDING_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn remember_signal(signal: libc::c_int) {
    PENDING_SIGNAL.store(signal, Ordering::SeqCst);
}

const FORWARDED: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// Without a handler, PID 1 would ignore SIGTERM (the kernel protects a namespace's
/// init from signals it does not handle); the outer init would die without
/// passing it on. Both catch it and pass it down instead.
fn forward_signals() -> Result<(), InitError> {
    // No SA_RESTART: waitpid must return EINTR so the loop can forward at once.
    let action = SigAction::new(
        SigHandler::Handler(remember_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in FORWARDED {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }.map_err(|e| InitError::sys(Step::Signals, e))?;
    }
    Ok(())
}

fn restore_default_signals() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in FORWARDED {
        // SAFETY: restoring the default disposition installs no code of ours.
        let _ = unsafe { sigaction(signal, &default) };
    }
}

pub(super) fn forward_pending(child: Pid) {
    let signal = PENDING_SIGNAL.swap(0, Ordering::SeqCst);
    if let Ok(signal) = Signal::try_from(signal) {
        let _ = kill(child, signal);
    }
}

/// Waits for `child`, forwarding signals, and returns a shell-style exit code.
fn wait_for(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    return code;
                }
            }
            Err(Errno::EINTR) => forward_pending(child),
            Err(_) => return EXIT_SETUP_FAILED,
        }
    }
}

/// PID 1's loop: reaps every process re-parented to it and returns when the
/// worker itself is gone.
fn reap_until(worker: Pid) -> i32 {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(status) if status.pid() == Some(worker) => {
                if let Some(code) = exit_code(status) {
                    return code;
                }
            }
            Ok(_) => {}
            Err(Errno::EINTR) => forward_pending(worker),
            Err(_) => return EXIT_SETUP_FAILED,
        }
    }
}

pub(super) fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}
