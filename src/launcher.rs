//! Starts workers: sandboxed, one per session, or (for comparison only) plain.
//! The only module that connects sessions to the sandbox; fronts never see it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{ErrorKind, EventError};
use crate::sandbox::{spawn::sandboxed_command, NetworkMode, SandboxSpec};
use crate::statedir::{SessionDirs, StateDir};
use crate::worker::process::ReplyLimits;
use crate::worker::WorkerProcess;

/// First host uid handed to sessions when the supervisor runs as root. Far above
/// regular users and the usual subordinate-id ranges (100000+).
pub const DEFAULT_UID_BASE: u32 = 1_000_000_000;
const MAX_SESSION_UIDS: u32 = 1_000_000;

/// How workers are isolated.
#[derive(Debug, Clone)]
pub enum Isolation {
    /// One sandbox per session (the point of sessionvisor).
    Sandbox {
        /// The `sessionvisor` binary, re-executed as each session's init.
        init_exe: PathBuf,
        network: NetworkMode,
        landlock: bool,
        uid_base: u32,
    },
    /// One unsandboxed worker shared by every session, like local tooling.
    None,
}

/// Everything needed to start a worker.
pub struct Launcher {
    argv: Vec<String>,
    isolation: Isolation,
    state: StateDir,
    cwd: PathBuf,
    limits: ReplyLimits,
    free_uid_slots: Mutex<UidSlots>,
}

/// A started worker with the host resources it holds.
pub struct LaunchedWorker {
    pub process: WorkerProcess,
    dirs: Option<SessionDirs>,
    uid_slot: Option<u32>,
}

impl Launcher {
    pub fn new(
        argv: Vec<String>,
        isolation: Isolation,
        state: StateDir,
        limits: ReplyLimits,
    ) -> Self {
        Launcher {
            argv,
            isolation,
            state,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            limits,
            free_uid_slots: Mutex::new(UidSlots::default()),
        }
    }

    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    pub fn is_shared(&self) -> bool {
        matches!(self.isolation, Isolation::None)
    }

    /// Starts the worker for `session_id` (a label only when shared).
    pub fn launch(&self, session_id: &Arc<str>) -> Result<LaunchedWorker, EventError> {
        match &self.isolation {
            Isolation::None => {
                let mut command = tokio::process::Command::new(&self.argv[0]);
                command
                    .args(&self.argv[1..])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true);
                let process = WorkerProcess::spawn(command, Arc::from("shared"), self.limits)
                    .map_err(|e| spawn_error(&self.argv[0], e))?;
                Ok(LaunchedWorker {
                    process,
                    dirs: None,
                    uid_slot: None,
                })
            }
            Isolation::Sandbox { .. } => self.launch_sandboxed(session_id, self.argv.clone()),
        }
    }

    fn launch_sandboxed(
        &self,
        session_id: &Arc<str>,
        argv: Vec<String>,
    ) -> Result<LaunchedWorker, EventError> {
        let Isolation::Sandbox {
            init_exe,
            network,
            landlock,
            uid_base,
        } = &self.isolation
        else {
            unreachable!("launch_sandboxed is only called in sandbox mode");
        };
        let root = nix::unistd::geteuid().is_root();
        let uid_slot = if root {
            Some(self.take_uid_slot()?)
        } else {
            None
        };
        let drop_to = uid_slot.map(|slot| (uid_base + slot, uid_base + slot));
        let release = |this: &Self| {
            if let Some(slot) = uid_slot {
                this.return_uid_slot(slot);
            }
        };
        let dirs = match self.state.create_session_dirs(drop_to) {
            Ok(dirs) => dirs,
            Err(error) => {
                release(self);
                return Err(EventError::new(
                    ErrorKind::SpawnFailed,
                    format!("cannot create the session's private directories: {error}"),
                ));
            }
        };
        let spec = SandboxSpec {
            hostname: hostname_for(session_id),
            new_root: dirs.root.clone(),
            writable_binds: vec![
                (dirs.tmp.clone(), PathBuf::from("/tmp")),
                (dirs.var_tmp.clone(), PathBuf::from("/var/tmp")),
                (dirs.shm.clone(), PathBuf::from("/dev/shm")),
            ],
            hidden: vec![self.state.base().to_path_buf()],
            drop_to,
            network: *network,
            landlock: *landlock,
            cwd: self.cwd.clone(),
            argv,
        };
        let started = sandboxed_command(init_exe, &spec)
            .map_err(std::io::Error::other)
            .and_then(|command| WorkerProcess::spawn(command, Arc::clone(session_id), self.limits));
        match started {
            Ok(process) => Ok(LaunchedWorker {
                process,
                dirs: Some(dirs),
                uid_slot,
            }),
            Err(error) => {
                let _ = dirs.delete();
                release(self);
                Err(spawn_error(init_exe.to_string_lossy().as_ref(), error))
            }
        }
    }

    /// Builds one sandbox with nothing in it and tears it down: proof that this
    /// host can isolate sessions, or the reason it cannot.
    pub async fn probe(&self) -> Result<(), String> {
        if matches!(self.isolation, Isolation::None) {
            return Ok(());
        }
        let label: Arc<str> = Arc::from("probe");
        let worker = self
            .launch_sandboxed(&label, Vec::new())
            .map_err(|e| e.message)?;
        let LaunchedWorker {
            mut process,
            dirs,
            uid_slot,
        } = worker;
        let status = process.wait_exit(Duration::from_secs(10)).await;
        let tail = process.stderr_tail();
        if let Some(dirs) = dirs {
            let _ = dirs.delete();
        }
        if let Some(slot) = uid_slot {
            self.return_uid_slot(slot);
        }
        match status {
            Some(status) if status.success() => Ok(()),
            other => Err(tail
                .into_iter()
                .rev()
                .find(|line| line.starts_with(crate::sandbox::SETUP_FAILED_PREFIX))
                .unwrap_or_else(|| {
                    format!(
                        "the sandbox probe failed ({})",
                        crate::worker::process::describe(other)
                    )
                })),
        }
    }

    /// Stops a worker and deletes everything it left on the host.
    pub async fn retire(&self, worker: LaunchedWorker, grace: Duration) {
        let LaunchedWorker {
            process,
            dirs,
            uid_slot,
        } = worker;
        process.stop(grace).await;
        if let Some(dirs) = dirs {
            let path = dirs.path().to_path_buf();
            if let Err(error) = dirs.delete() {
                tracing::error!(path = %path.display(), %error, "cannot delete a session's private directories");
            }
        }
        if let Some(slot) = uid_slot {
            self.return_uid_slot(slot);
        }
    }

    /// Removes this supervisor's state directory; call after every worker is retired.
    pub fn remove_state(self) -> std::io::Result<()> {
        self.state.remove()
    }

    fn take_uid_slot(&self) -> Result<u32, EventError> {
        let mut slots = self
            .free_uid_slots
            .lock()
            .map_err(|_| EventError::new(ErrorKind::SpawnFailed, "uid allocator poisoned"))?;
        slots
            .take()
            .ok_or_else(|| EventError::new(ErrorKind::SpawnFailed, "all session uids are in use"))
    }

    fn return_uid_slot(&self, slot: u32) {
        if let Ok(mut slots) = self.free_uid_slots.lock() {
            slots.give_back(slot);
        }
    }
}

/// Hands out the lowest free slot, so uids stay small and reused.
#[derive(Default)]
struct UidSlots {
    next_unused: u32,
    returned: BTreeSet<u32>,
}

impl UidSlots {
    fn take(&mut self) -> Option<u32> {
        if let Some(slot) = self.returned.pop_first() {
            return Some(slot);
        }
        (self.next_unused < MAX_SESSION_UIDS).then(|| {
            self.next_unused += 1;
            self.next_unused - 1
        })
    }

    fn give_back(&mut self, slot: u32) {
        self.returned.insert(slot);
    }
}

fn spawn_error(program: &str, error: std::io::Error) -> EventError {
    EventError::new(
        ErrorKind::SpawnFailed,
        format!("cannot start {program}: {error}"),
    )
}

/// A valid hostname derived from the session id: its first safe characters and a
/// hash of the whole id, so distinct ids get distinct names.
pub fn hostname_for(session_id: &str) -> String {
    let safe: String = session_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect::<String>()
        .trim_matches('-')
        .to_ascii_lowercase();
    let hash = fnv1a(session_id.as_bytes());
    if safe.is_empty() {
        format!("sv-{hash:08x}")
    } else {
        format!("sv-{safe}-{hash:08x}")
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_valid_and_distinct() {
        let a = hostname_for("session-A");
        let b = hostname_for("session-a");
        assert_ne!(a, b);
        assert!(a.len() <= 63);
        assert!(hostname_for("ÿÿ/../..").starts_with("sv-"));
        assert!(hostname_for(&"x".repeat(256)).len() <= 63);
    }

    #[test]
    fn uid_slots_are_reused_lowest_first() {
        let mut slots = UidSlots::default();
        assert_eq!(slots.take(), Some(0));
        assert_eq!(slots.take(), Some(1));
        assert_eq!(slots.take(), Some(2));
        slots.give_back(1);
        slots.give_back(0);
        assert_eq!(slots.take(), Some(0));
        assert_eq!(slots.take(), Some(1));
        assert_eq!(slots.take(), Some(3));
    }
}
