//! The options of `sessionvisor stress`, and how they pick the worker.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::cli::SupervisorArgs;

/// Most sessions one run may drive: keeps a typo from forking a host to death.
pub const MAX_SESSIONS: u64 = 100_000;
/// Most events one session may get in one run.
pub const MAX_EVENTS: u64 = 1_000_000;
/// Most sessions driven at once.
pub const MAX_CONCURRENCY: u64 = 10_000;

#[derive(Args, Debug)]
pub struct StressArgs {
    /// Sessions to create, each with its own id (and so its own worker).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=MAX_SESSIONS))]
    pub sessions: u64,
    /// Events per session. The first writes the session's nonce into its /tmp
    /// (its cold start); later ones take turns checking the worker's counter
    /// and reading the nonce back.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=MAX_EVENTS))]
    pub events: u64,
    /// Sessions driven at once; the events of one session are sent one after
    /// another, each once the previous one was answered.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY))]
    pub concurrency: u64,
    /// Start one session per interval (e.g. 200ms) instead of as fast as lanes
    /// free up, so cold starts do not queue behind one another. The first
    /// starts one interval in.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub session_interval: Option<Duration>,
    /// The worker the sessions run, so its answers can be checked: `native`
    /// (`sessionvisor-worker`) or `python` (the bundled echo agent). It also
    /// starts that worker unless --handler or `-- CMD` names one [default:
    /// python with --handler, else native].
    #[arg(long = "worker", id = "worker_kind", value_name = "KIND", value_enum)]
    pub worker_kind: Option<WorkerKind>,
    /// Drive a running `sessionvisor serve` at this base URL (loopback) instead
    /// of a supervisor embedded in this process.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// With --url: the server's pid, to report its peak RSS and the memory
    /// its sessions use.
    #[arg(long, value_name = "PID", requires = "url")]
    pub server_pid: Option<u32>,
    /// Print the summary as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub supervisor: SupervisorArgs,
}

/// Longest `--session-interval`: a run must end in bounded time.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if interval > MAX_INTERVAL {
        return Err(format!(
            "at most {}",
            humantime::format_duration(MAX_INTERVAL)
        ));
    }
    Ok(interval)
}

/// Which worker protocol the checks expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkerKind {
    /// `sessionvisor-worker`: `echo` reports a per-process event count.
    Native,
    /// `worker/examples/echo_agent.py`: `whoami` reports the agent's turns.
    Python,
}

impl WorkerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerKind::Native => "native",
            WorkerKind::Python => "python",
        }
    }
}

impl StressArgs {
    /// The worker kind to check against, filling in the supervisor's worker
    /// command when the user gave none (only an embedded supervisor needs one).
    pub fn resolve_worker(&mut self) -> Result<WorkerKind, String> {
        let given = self.supervisor.handler.is_some() || !self.supervisor.worker.is_empty();
        let kind = self
            .worker_kind
            .unwrap_or(if self.supervisor.handler.is_some() {
                WorkerKind::Python
            } else {
                WorkerKind::Native
            });
        if given || self.url.is_some() {
            return Ok(kind);
        }
        match kind {
            WorkerKind::Native => {
                let worker = native_worker()?;
                self.supervisor.worker = vec![worker.display().to_string()];
            }
            WorkerKind::Python => {
                // The bundled copy, where every session uid can open it (as `demo` does).
                let agent = crate::assets::echo_agent().map_err(|e| {
                    format!("--worker python: cannot write the bundled echo agent: {e}")
                })?;
                self.supervisor.handler = Some(format!("{}:handler", agent.display()));
            }
        }
        Ok(kind)
    }
}

/// `sessionvisor-worker`, which the workspace builds next to `sessionvisor`.
fn native_worker() -> Result<PathBuf, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this binary to look for sessionvisor-worker: {e}"))?;
    let worker = exe.with_file_name("sessionvisor-worker");
    if worker.is_file() {
        // A build tree under /root or a 0700 directory is out of a session
        // uid's reach; such sessions run a copy.
        crate::assets::reachable_program(&worker)
            .map_err(|e| format!("--worker native: cannot copy {}: {e}", worker.display()))
    } else {
        Err(format!(
            "--worker native: {} is missing; build it (`cargo build --workspace`) \
             or give the worker after --",
            worker.display()
        ))
    }
}
