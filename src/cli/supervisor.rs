//! The options every front that runs sessions shares (`run`, `serve`,
//! `stress`), and how they become a launcher and a registry.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::launcher::{Isolation, LaunchOptions, Launcher, DEFAULT_UID_BASE};
use crate::registry::Registry;
use crate::sandbox::NetworkMode;
use crate::statedir::StateDir;
use crate::worker::process::ReplyLimits;

/// Isolation of sessions from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationMode {
    /// A sandboxed worker per session (the default).
    Sandbox,
    /// One shared unsandboxed worker for every session, as local tools run agents.
    /// For comparison only.
    None,
}

/// Per-session resource limits.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Memory per session (cgroup memory limit; RLIMIT_AS without cgroups).
    #[arg(long, default_value = "2GiB")]
    pub memory: bytesize::ByteSize,
    /// Processes per session (cgroup pids.max; RLIMIT_NPROC without cgroups).
    #[arg(long, default_value_t = 512)]
    pub pids: u64,
    /// Bytes a session may write to /tmp, /var/tmp and /dev/shm together.
    #[arg(long, default_value = "1GiB")]
    pub tmp_size: bytesize::ByteSize,
    /// Open files per process in a session (RLIMIT_NOFILE).
    #[arg(long, default_value_t = 1024)]
    pub nofile: u64,
    /// CPU quota per session in CPUs, e.g. 1.5 (needs a cgroup).
    #[arg(long, value_parser = parse_cpus)]
    pub cpus: Option<f64>,
}

fn parse_cpus(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(cpus) if cpus >= 0.01 && cpus.is_finite() => Ok(cpus),
        _ => Err(format!("{text:?} is not a CPU count such as 0.5 or 2")),
    }
}

impl LimitArgs {
    pub fn limits(&self) -> crate::limits::Limits {
        crate::limits::Limits {
            memory_bytes: self.memory.as_u64(),
            pids: self.pids,
            tmp_size_bytes: self.tmp_size.as_u64(),
            nofile: self.nofile,
            cpus: self.cpus,
        }
    }
}

/// Options shared by every front that runs sessions.
#[derive(Args, Debug, Clone)]
pub struct SupervisorArgs {
    /// Run a Python `handler(event, context)`: FILE.py:FUNC (FUNC defaults to handler).
    #[arg(long, value_name = "FILE.py:FUNC", conflicts_with = "worker")]
    pub handler: Option<String>,
    /// Python interpreter for --handler.
    #[arg(long, default_value = "python3")]
    pub python: String,
    #[arg(long, value_enum, default_value_t = IsolationMode::Sandbox)]
    pub isolation: IsolationMode,
    /// `none` gives each session its own network namespace with only loopback.
    #[arg(long, value_enum, default_value_t = NetworkMode::Host)]
    pub network: NetworkMode,
    /// Where session directories live [default: /run/sessionvisor as root,
    /// $XDG_RUNTIME_DIR/sessionvisor or /tmp/sessionvisor-UID otherwise].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Skip the Landlock layer even where the kernel has it.
    #[arg(long)]
    pub no_landlock: bool,
    /// As root: first host uid given to sessions (one uid per live session).
    #[arg(long, default_value_t = DEFAULT_UID_BASE)]
    pub uid_base: u32,
    /// Longest a worker may take to answer one event (e.g. 90s, 15m).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15m")]
    pub event_timeout: Duration,
    /// Largest event accepted, in bytes (AgentCore's payload limit is 100 MB).
    #[arg(long, default_value_t = 100_000_000)]
    pub max_event_bytes: usize,
    /// Largest reply frame accepted from a worker, in bytes.
    #[arg(long, default_value_t = 100_000_000)]
    pub max_response_bytes: usize,
    /// How long a stopped worker gets to exit after its stdin closes (then SIGKILL).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub stop_grace: Duration,
    /// A session's worker is stopped after this long without events (AgentCore: 15m).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15m")]
    pub idle_timeout: Duration,
    /// A session's worker is stopped this long after it started (AgentCore: 8h).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "8h")]
    pub max_lifetime: Duration,
    /// Most sessions alive at once; beyond it new sessions get too_many_sessions.
    #[arg(long, default_value_t = 1000)]
    pub max_sessions: usize,
    /// On SIGTERM/SIGINT, how long events in flight may take to finish.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub shutdown_grace: Duration,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Give each session a persistent directory at /mnt/workspace, kept under DIR
    /// across stops and restarts of the same session id (AgentCore session storage).
    #[arg(long, value_name = "DIR")]
    pub session_storage: Option<PathBuf>,
    /// Keep N sandboxed workers started (handler imported) and unbound, so new
    /// sessions skip the cold start. Each pooled worker serves one session, ever.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub warm_pool: usize,
    /// The worker command, when not using --handler.
    #[arg(last = true, value_name = "WORKER_CMD")]
    pub worker: Vec<String>,
}

impl SupervisorArgs {
    /// The worker's argv, with --handler expanded to the Python handler host.
    pub fn worker_argv(&self) -> Result<Vec<String>, String> {
        match (&self.handler, self.worker.is_empty()) {
            (Some(spec), true) => {
                let (file, function) = spec.rsplit_once(':').unwrap_or((spec.as_str(), "handler"));
                let file =
                    std::path::absolute(file).map_err(|e| format!("--handler {spec}: {e}"))?;
                if !file.is_file() {
                    return Err(format!("--handler {spec}: no such file {}", file.display()));
                }
                let mut argv = vec![self.python.clone()];
                argv.extend(handler_host_args());
                argv.push(format!("{}:{function}", file.display()));
                Ok(argv)
            }
            (None, false) => Ok(self.worker.clone()),
            (Some(_), false) => Err("give either --handler or a worker command, not both".into()),
            (None, true) => Err(
                "no worker: give --handler FILE.py:FUNC or a command after --, \
                 e.g. `sessionvisor run -- sessionvisor-worker`"
                    .into(),
            ),
        }
    }

    /// Files every session's worker must open: the handler (and a host file
    /// named by `$SESSIONVISOR_HANDLER_HOST`), or the worker program when named
    /// by path.
    fn files_sessions_need(&self, argv: &[String]) -> Vec<(PathBuf, bool)> {
        let mut files = Vec::new();
        if self.handler.is_some() {
            if let Some(host) = argv.get(1).filter(|a| *a != "-c") {
                files.push((PathBuf::from(host), false));
            }
            if let Some((file, _)) = argv.last().and_then(|spec| spec.rsplit_once(':')) {
                files.push((PathBuf::from(file), false));
            }
        } else if let Some(program) = argv.first().filter(|p| p.contains('/')) {
            files.extend(std::path::absolute(program).ok().map(|p| (p, true)));
        }
        files
    }

    pub fn policy(&self) -> crate::session::SessionPolicy {
        crate::session::SessionPolicy {
            idle_timeout: self.idle_timeout,
            max_lifetime: self.max_lifetime,
            stop_grace: self.stop_grace,
        }
    }

    /// The session registry for these options: the launcher (sandbox proven by a
    /// probe) with the lifecycle policy and the session cap. `Err` explains why
    /// sessions cannot be isolated; callers exit with [`EXIT_CANNOT_ISOLATE`](super::EXIT_CANNOT_ISOLATE).
    pub async fn registry(&self) -> Result<Registry, String> {
        let launcher = self.launcher().await?;
        Ok(Registry::new(launcher, self.policy(), self.max_sessions))
    }

    /// Builds the launcher and proves the sandbox works before any event is read.
    pub async fn launcher(&self) -> Result<Launcher, String> {
        let argv = self.worker_argv()?;
        let root = nix::unistd::geteuid().is_root();
        let isolation = match self.isolation {
            IsolationMode::None => {
                eprintln!(
                    "sessionvisor: WARNING: --isolation none: every session shares ONE unsandboxed \
                     worker process, as local tools do. Memory and /tmp leak between sessions. \
                     For comparison only."
                );
                Isolation::None
            }
            IsolationMode::Sandbox => Isolation::Sandbox {
                init_exe: std::env::current_exe().map_err(|e| {
                    format!("cannot find the sessionvisor binary to re-execute: {e}")
                })?,
                network: self.network,
                landlock: !self.no_landlock,
                uid_base: self.uid_base,
            },
        };
        let base = self
            .state_dir
            .clone()
            .unwrap_or_else(StateDir::default_base);
        if matches!(isolation, Isolation::Sandbox { .. }) {
            let state_base = std::fs::canonicalize(&base).unwrap_or_else(|_| base.clone());
            for (file, execute) in self.files_sessions_need(&argv) {
                crate::assets::reachable_by_sessions(&file, execute)
                    .and_then(|()| match std::fs::canonicalize(&file) {
                        Ok(real) if real.starts_with(&state_base) => Err(format!(
                            "{} is inside the state directory, which sessions cannot see",
                            file.display()
                        )),
                        _ => Ok(()),
                    })
                    .map_err(|why| {
                        format!("no session could open its worker: {why}; move it elsewhere")
                    })?;
            }
        }
        let state = StateDir::open(&base, root).map_err(|e| e.to_string())?;
        if let Some(storage) = &self.session_storage {
            std::fs::create_dir_all(storage)
                .map_err(|e| format!("--session-storage {}: {e}", storage.display()))?;
        }
        let options = LaunchOptions {
            isolation,
            reply_limits: ReplyLimits {
                max_line_bytes: self.max_response_bytes,
                event_timeout: self.event_timeout,
            },
            limits: self.limits.limits(),
            storage: self
                .session_storage
                .as_ref()
                .map(|dir| std::path::absolute(dir).unwrap_or_else(|_| dir.clone())),
            warm_pool: self.warm_pool,
        };
        let mut launcher = Launcher::new(argv, state, options);
        if let Err(reason) = launcher.probe().await {
            let _ = launcher.remove_state();
            return Err(format!(
                "cannot isolate sessions on this host: {reason}\n\
                 sessionvisor never runs sessions without isolation by itself. \
                 Run `sessionvisor doctor` for the fix; `--isolation none` runs unisolated, \
                 for comparison only."
            ));
        }
        Ok(launcher)
    }
}

/// How to start the Python handler host: `$SESSIONVISOR_HANDLER_HOST` when
/// set (a file), else the copy embedded in this binary, passed with `-c`.
fn handler_host_args() -> Vec<String> {
    match std::env::var_os("SESSIONVISOR_HANDLER_HOST") {
        Some(path) => vec![path.to_string_lossy().into_owned()],
        None => vec!["-c".to_string(), crate::assets::HANDLER_HOST.to_string()],
    }
}
