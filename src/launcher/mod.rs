//! Starts workers: sandboxed, one per session, or (for comparison only) plain.
//! The only module that connects sessions to the sandbox; fronts never see it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{ErrorKind, EventError};
use crate::limits::{Enforcement, Limits};
use crate::pool::WarmPool;
use crate::sandbox::cgroup::{
    CgroupLimits, CgroupRoot, CgroupUnavailable, LimitCounters, SessionCgroup,
};
use crate::sandbox::init::Step;
use crate::sandbox::probe::HostFacts;
use crate::sandbox::{spawn::sandboxed_command, NetworkMode, SandboxSpec, Scratch};
use crate::statedir::{SessionDirs, StateDir};
use crate::worker::process::ReplyLimits;
use crate::worker::{WorkerFault, WorkerProcess};

mod naming;
mod storage;
mod uid_slots;

pub use naming::hostname_for;
use storage::chown_tree;
pub use storage::storage_name;
use uid_slots::UidSlots;

/// First host uid handed to sessions when the supervisor runs as root. Far above
/// regular users and the usual subordinate-id ranges (100000+).
pub const DEFAULT_UID_BASE: u32 = 1_000_000_000;
/// How long after a pooled worker is taken its replacement starts.
const POOL_REFILL_DELAY: Duration = Duration::from_millis(20);
/// How long a warm-pool sandbox may take to come up before it is discarded.
const POOL_READY_TIMEOUT: Duration = Duration::from_secs(10);

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
    reply_limits: ReplyLimits,
    limits: Limits,
    cgroup: Result<CgroupRoot, CgroupUnavailable>,
    storage: Option<PathBuf>,
    pool: Option<WarmPool>,
    free_uid_slots: Mutex<UidSlots>,
}

/// A started worker with the host resources it holds.
pub struct LaunchedWorker {
    pub process: WorkerProcess,
    dirs: Option<SessionDirs>,
    cgroup: Option<SessionCgroup>,
    /// Limit counters as of the last check, to see which limit a fault hit.
    counters: LimitCounters,
    uid_slot: Option<u32>,
    /// Came ready-made from the warm pool.
    pub pooled: bool,
}

/// What a launcher needs besides the worker command.
pub struct LaunchOptions {
    pub isolation: Isolation,
    pub reply_limits: ReplyLimits,
    pub limits: Limits,
    /// Root of persistent per-session storage (`--session-storage`).
    pub storage: Option<PathBuf>,
    /// Sandboxed workers kept started and unbound (`--warm-pool`).
    pub warm_pool: usize,
}

impl Launcher {
    pub fn new(argv: Vec<String>, state: StateDir, options: LaunchOptions) -> Self {
        let cgroup = match options.isolation {
            Isolation::Sandbox { .. } => CgroupRoot::create(
                HostFacts::read().cgroup,
                &state.instance_name(),
                state.swept_instances(),
            ),
            Isolation::None => Err(CgroupUnavailable {
                reason: "--isolation none applies no limits".into(),
                fix: "use the sandbox".into(),
            }),
        };
        if let Err(unavailable) = &cgroup {
            tracing::debug!(reason = %unavailable.reason, "no cgroup for session limits; falling back to rlimits");
        }
        let pool_possible = matches!(options.isolation, Isolation::Sandbox { .. });
        if options.warm_pool > 0 && options.storage.is_some() {
            tracing::warn!(
                "--warm-pool is off with --session-storage: storage must be mounted before the \
                 worker starts, and a pooled worker starts before its session is known"
            );
        }
        let pool = (options.warm_pool > 0 && pool_possible && options.storage.is_none())
            .then(|| WarmPool::new(options.warm_pool));
        Launcher {
            argv,
            pool,
            isolation: options.isolation,
            state,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            reply_limits: options.reply_limits,
            limits: options.limits,
            cgroup,
            storage: options.storage,
            free_uid_slots: Mutex::new(UidSlots::default()),
        }
    }

    /// How each per-session limit is enforced on this host.
    pub fn enforcement(&self) -> Vec<Enforcement> {
        let fix = self
            .cgroup
            .as_ref()
            .err()
            .map(|u| format!("{} ({})", u.fix, u.reason));
        self.limits
            .enforcement(self.cgroup.as_ref().ok(), fix.as_deref())
    }

    /// Reclassifies a failed event as `resource_exhausted` when a session limit
    /// caused it; such a worker is stopped, so the next event gets a fresh one.
    pub fn explain_fault(
        &self,
        worker: &mut LaunchedWorker,
        mut fault: WorkerFault,
    ) -> WorkerFault {
        let before = worker.counters;
        let after = worker
            .cgroup
            .as_ref()
            .map(SessionCgroup::counters)
            .unwrap_or_default();
        worker.counters = after;
        if let Some(limit) = self.limits.exhausted(&fault.error, before, after) {
            fault.error = self.limits.exhausted_error(limit, fault.error);
            fault.fatal = true;
        }
        fault
    }

    pub fn is_shared(&self) -> bool {
        matches!(self.isolation, Isolation::None)
    }

    /// Starts the worker for `session_id` (a label only when shared).
    pub async fn launch(
        self: &Arc<Self>,
        session_id: &Arc<str>,
    ) -> Result<LaunchedWorker, EventError> {
        match &self.isolation {
            Isolation::None => {
                let mut command = tokio::process::Command::new(&self.argv[0]);
                command
                    .args(&self.argv[1..])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true);
                let process =
                    WorkerProcess::spawn(command, Arc::from("shared"), self.reply_limits, None)
                        .map_err(|e| spawn_error(&self.argv[0], e))?;
                Ok(LaunchedWorker {
                    process,
                    dirs: None,
                    cgroup: None,
                    counters: LimitCounters::default(),
                    uid_slot: None,
                    pooled: false,
                })
            }
            Isolation::Sandbox { .. } => {
                if let Some(worker) = self.take_pooled(session_id).await {
                    return Ok(worker);
                }
                self.launch_sandboxed(session_id, self.argv.clone(), false)
            }
        }
    }

    /// Starts workers until the warm pool is full again, in the background.
    pub fn refill_pool(self: &Arc<Self>) {
        let Some(pool) = &self.pool else {
            return;
        };
        for _ in 0..pool.reserve_refills() {
            let launcher = Arc::clone(self);
            pool.refills().spawn(async move {
                let label: Arc<str> = Arc::from("warm-pool");
                let started = launcher.launch_sandboxed(&label, launcher.argv.clone(), true);
                let worker = match started {
                    // Only a finished sandbox may be handed out: its hostname is
                    // set on binding, after PID 1 has set its own.
                    Ok(worker) if worker.process.sandbox_ready(POOL_READY_TIMEOUT).await => {
                        Some(worker)
                    }
                    Ok(worker) => {
                        let tail = worker.process.stderr_tail().join(" | ");
                        tracing::warn!(stderr = %tail, "a warm-pool sandbox did not come up");
                        launcher.retire(worker, Duration::ZERO).await;
                        None
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot start a warm-pool worker");
                        None
                    }
                };
                if let Some(pool) = &launcher.pool {
                    if let Some(unwanted) = pool.put(worker) {
                        launcher.retire(unwanted, Duration::ZERO).await;
                    }
                }
            });
        }
    }

    /// A pooled worker bound to `session_id`, or `None` for a cold start.
    async fn take_pooled(self: &Arc<Self>, session_id: &Arc<str>) -> Option<LaunchedWorker> {
        let pool = self.pool.as_ref()?;
        let taken = loop {
            let Some(mut worker) = pool.take() else {
                break None;
            };
            if worker.process.has_exited() {
                tracing::warn!("a warm-pool worker died while waiting; discarding it");
                self.retire(worker, Duration::ZERO).await;
                continue;
            }
            break Some(worker);
        };
        let Some(mut worker) = taken else {
            self.refill_pool();
            return None;
        };
        worker.pooled = true;
        let hostname = hostname_for(session_id);
        let bound = worker.process.bind(&hostname, POOL_READY_TIMEOUT).await;
        // Building the replacement costs a core for a few milliseconds; on a
        // small machine that would land on this session's first event.
        if let Some(pool) = &self.pool {
            let launcher = Arc::clone(self);
            // Tracked like the refills themselves, so shutdown waits for it.
            pool.refills().spawn(async move {
                tokio::time::sleep(POOL_REFILL_DELAY).await;
                launcher.refill_pool();
            });
        }
        match bound {
            Ok(()) => {
                worker.process.set_label(Arc::clone(session_id));
                Some(worker)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot bind a warm-pool worker; starting cold");
                self.retire(worker, Duration::ZERO).await;
                None
            }
        }
    }

    /// Retires every pooled worker and stops refilling (shutdown).
    pub async fn drain_pool(&self) {
        if let Some(pool) = &self.pool {
            for worker in pool.close().await {
                self.retire(worker, Duration::ZERO).await;
            }
        }
    }

    /// Builds a sandbox and starts `argv` in it. `pooled`: for the warm pool,
    /// with a control pipe to bind it to its session later.
    fn launch_sandboxed(
        &self,
        session_id: &Arc<str>,
        argv: Vec<String>,
        pooled: bool,
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
        // Every failure below gives back what was set up so far.
        let fail =
            |this: &Self, dirs: SessionDirs, cgroup: Option<SessionCgroup>, message: String| {
                let _ = dirs.delete();
                if let Some(cgroup) = cgroup {
                    tokio::spawn(cgroup.remove());
                }
                if let Some(slot) = uid_slot {
                    this.return_uid_slot(slot);
                }
                Err(EventError::new(ErrorKind::SpawnFailed, message))
            };
        let cgroup = match &self.cgroup {
            Ok(root) => {
                let name = dirs
                    .path()
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let limits = CgroupLimits {
                    memory_bytes: self.limits.memory_bytes,
                    pids: self.limits.pids,
                    cpus: self.limits.cpus,
                };
                match root.session(&name, limits) {
                    Ok(cgroup) => Some(cgroup),
                    Err(error) => {
                        let message = format!("cannot create the session's cgroup: {error}");
                        return fail(self, dirs, None, message);
                    }
                }
            }
            Err(_) => None,
        };
        let storage = match self.storage_dir(session_id, drop_to) {
            Ok(storage) => storage,
            Err(error) => {
                let message = format!("cannot prepare session storage: {error}");
                return fail(self, dirs, cgroup, message);
            }
        };
        let spec = SandboxSpec {
            hostname: hostname_for(session_id),
            new_root: dirs.root.clone(),
            scratch: Scratch {
                mount_point: dirs.scratch.clone(),
                size_bytes: self.limits.tmp_size_bytes,
            },
            storage,
            hidden: vec![self.state.base().to_path_buf()],
            drop_to,
            network: *network,
            landlock: *landlock,
            cgroup_procs: cgroup
                .as_ref()
                .map(SessionCgroup::procs_files)
                .unwrap_or_default(),
            rlimits: self.limits.rlimits(self.cgroup.as_ref().ok()),
            cwd: self.cwd.clone(),
            pooled,
            argv,
        };
        let control = if pooled {
            match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
                Ok((read, write)) => Some((read, std::fs::File::from(write))),
                Err(error) => {
                    let message = format!("cannot create a warm-pool control pipe: {error}");
                    return fail(self, dirs, cgroup, message);
                }
            }
        } else {
            None
        };
        let (control_read, control_write) = control.unzip();
        let started = sandboxed_command(init_exe, &spec, control_read)
            .map_err(std::io::Error::other)
            .and_then(|command| {
                WorkerProcess::spawn(
                    command,
                    Arc::clone(session_id),
                    self.reply_limits,
                    control_write,
                )
            });
        match started {
            Ok(process) => Ok(LaunchedWorker {
                process,
                dirs: Some(dirs),
                cgroup,
                counters: LimitCounters::default(),
                uid_slot,
                pooled: false,
            }),
            Err(error) => {
                let message = format!("cannot start {}: {error}", init_exe.display());
                fail(self, dirs, cgroup, message)
            }
        }
    }

    /// The session's persistent directory under `--session-storage`, created on
    /// first use and handed to the session's uid. The name is the id itself when
    /// it is plain, else a SHA-256 of it, so no id can name another's directory
    /// (or `..`).
    fn storage_dir(
        &self,
        session_id: &str,
        owner: Option<(u32, u32)>,
    ) -> std::io::Result<Option<PathBuf>> {
        let Some(root) = &self.storage else {
            return Ok(None);
        };
        let dir = root.join(storage_name(session_id));
        std::fs::create_dir_all(&dir)?;
        if let Some((uid, gid)) = owner {
            chown_tree(&dir, uid, gid)?;
        }
        Ok(Some(dir))
    }

    /// Builds one sandbox with nothing in it and tears it down: proof that this
    /// host can isolate sessions, or the reason it cannot.
    pub async fn probe(&mut self) -> Result<(), String> {
        if matches!(self.isolation, Isolation::None) {
            return Ok(());
        }
        match self.probe_once().await {
            // Cgroups make limits stronger, not isolation: a host where the
            // session cannot join its cgroup (a delegation this code has not
            // met) falls back to rlimits instead of refusing to run.
            Err(reason) if reason.contains(&Step::Cgroup.to_string()) && self.cgroup.is_ok() => {
                tracing::warn!(%reason, "sessions cannot join their cgroup here; limits fall back to rlimits");
                if let Ok(root) = &self.cgroup {
                    root.remove();
                }
                self.cgroup = Err(CgroupUnavailable {
                    reason: format!("a probe session could not join its cgroup: {reason}"),
                    fix: "check the cgroup delegation (`sessionvisor doctor`), or run as root"
                        .into(),
                });
                self.probe_once().await
            }
            other => other,
        }
    }

    async fn probe_once(&self) -> Result<(), String> {
        let label: Arc<str> = Arc::from("probe");
        let mut worker = self
            .launch_sandboxed(&label, Vec::new(), false)
            .map_err(|e| e.message)?;
        let status = worker.process.wait_exit(Duration::from_secs(10)).await;
        let tail = worker.process.stderr_tail();
        self.release(worker).await;
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
    pub async fn retire(&self, mut worker: LaunchedWorker, grace: Duration) {
        worker.process.stop(grace).await;
        self.release(worker).await;
    }

    /// Frees what a dead worker held: its directories, cgroup and uid.
    async fn release(&self, worker: LaunchedWorker) {
        if let Some(dirs) = worker.dirs {
            let path = dirs.path().to_path_buf();
            if let Err(error) = dirs.delete() {
                tracing::error!(path = %path.display(), %error, "cannot delete a session's private directories");
            }
        }
        if let Some(cgroup) = worker.cgroup {
            cgroup.remove().await;
        }
        if let Some(slot) = worker.uid_slot {
            self.return_uid_slot(slot);
        }
    }

    /// Removes this supervisor's state directory and cgroups; call after every
    /// worker is retired.
    pub fn remove_state(self) -> std::io::Result<()> {
        if let Ok(cgroup) = &self.cgroup {
            cgroup.remove();
        }
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

fn spawn_error(program: &str, error: std::io::Error) -> EventError {
    EventError::new(
        ErrorKind::SpawnFailed,
        format!("cannot start {program}: {error}"),
    )
}
