//! `sessionvisor stress`: many concurrent sessions, every answer checked.
//!
//! Each session writes a nonce into its /tmp, then alternates events that
//! read the nonce back and events that report its worker's counter. An answer
//! from any worker but the session's own shows up as a *misroute* (another
//! session's id, or a counter moved by someone else's events) or a *leak*
//! (anything in its /tmp but its own nonce). With `--isolation none` every
//! session shares one worker, and both appear: that run is how we know the
//! checks can fail.
//!
//! | file | concept |
//! |---|---|
//! | `args` | options, and which worker they start |
//! | `plan` | ids, nonces, and each event's action |
//! | `verify` | what only the session's own worker could answer |
//! | `target` | the embedded supervisor, or `serve` over HTTP |
//! | `driver` | lanes that run sessions concurrently |
//! | `pace` | sessions arriving at a steady rate |
//! | `tally` | counts and latency histograms |
//! | `memory` | peak RSS and memory per session, from /proc |
//! | `progress` | the progress bar, or plain lines |
//! | `report` | the summary table and its JSON |

mod args;
mod driver;
mod memory;

/// Every descendant of a process, from /proc (also used by the tests).
pub use memory::descendants;
mod pace;
mod plan;
mod progress;
mod report;
mod tally;
mod target;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub use args::{StressArgs, WorkerKind};
pub use report::Report;

use crate::cli::EXIT_CANNOT_ISOLATE;
use crate::registry::Registry;
use driver::Load;
use plan::Naming;
use report::{Context, SessionMemory};
use tally::Live;
use target::{HttpTarget, Target};

/// Exit status when some session saw another's answer or data.
pub const EXIT_ISOLATION_VIOLATED: u8 = 1;
/// Exit status when isolation held but events failed, or the run was cut short.
pub const EXIT_ERRORS: u8 = 3;

/// Runs `sessionvisor stress`.
pub async fn run(mut args: StressArgs) -> ExitCode {
    let kind = match args.resolve_worker() {
        Ok(kind) => kind,
        Err(message) => return usage(&message),
    };
    let max_sessions = args.supervisor.max_sessions as u64;
    if args.url.is_none() && args.sessions > max_sessions {
        // Sessions stay live after their events, so the extra ones would all
        // be refused with too_many_sessions.
        return usage(&format!(
            "--sessions {} is above --max-sessions {max_sessions}; raise --max-sessions",
            args.sessions
        ));
    }

    let stop = CancellationToken::new();
    let signal = crate::cli::termination_signal();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        signal.await;
        eprintln!("stress: interrupted; finishing the events in flight");
        on_signal.cancel();
    });

    let (target, supervisor_pid) = match connect(&args).await {
        Ok(connected) => connected,
        Err(message) => {
            eprintln!("sessionvisor: {message}");
            return ExitCode::from(EXIT_CANNOT_ISOLATE);
        }
    };
    let target = Arc::new(target);
    let load = Arc::new(Load {
        sessions: args.sessions,
        events: args.events,
        concurrency: args.concurrency,
        kind,
        naming: Naming::new(),
        pacer: args.session_interval.map(pace::Pacer::new),
    });
    let used_before = memory::host_used().ok();
    let live = Arc::new(Live::default());
    let progress = progress::Progress::start(args.sessions * args.events, Arc::clone(&live));
    let started = Instant::now();
    let tally = driver::drive(Arc::clone(&target), load, live, stop.clone()).await;
    let elapsed = started.elapsed();
    progress.finish().await;

    // Every session is still live here (they end at the idle timeout).
    let live_sessions = target
        .live_sessions()
        .map_or(tally.sessions_started, |n| n as u64);
    let memory_per_session =
        supervisor_pid.map(|pid| session_memory(pid, live_sessions, used_before));
    let (peak_rss, rss_source) = match (supervisor_pid, &args.url) {
        (Some(pid), None) => (
            memory::peak_rss(pid).ok(),
            format!("this process, pid {pid}: the embedded supervisor and the load driver"),
        ),
        (Some(pid), Some(_)) => (memory::peak_rss(pid).ok(), format!("--server-pid {pid}")),
        (None, _) => (None, "unknown without --server-pid".to_string()),
    };

    let cleanup = match Arc::try_unwrap(target) {
        Ok(target) => target.shutdown().await,
        Err(_) => Err("a lane still holds the supervisor; sessions left running".into()),
    };
    let report = Report::new(
        tally,
        Context {
            target: args.url.clone().unwrap_or_else(|| "embedded".into()),
            worker: kind.as_str(),
            sessions: args.sessions,
            events_per_session: args.events,
            concurrency: args.concurrency,
            interrupted: stop.is_cancelled(),
            elapsed_seconds: elapsed.as_secs_f64(),
            supervisor_peak_rss_bytes: peak_rss,
            supervisor_rss_source: rss_source,
            memory_per_session,
        },
    );
    print(&report, args.json);
    if let Err(message) = &cleanup {
        eprintln!("sessionvisor: {message}");
    }
    match report.verdict {
        "isolation_violated" => ExitCode::from(EXIT_ISOLATION_VIOLATED),
        "pass" if cleanup.is_ok() => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_ERRORS),
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("sessionvisor stress: {message}");
    ExitCode::from(EXIT_CANNOT_ISOLATE)
}

/// The target, and the pid whose memory is the supervisor's (when known).
async fn connect(args: &StressArgs) -> Result<(Target, Option<u32>), String> {
    if let Some(url) = &args.url {
        // An event may take up to the server's event timeout; past that (and
        // some slack), the request is given up.
        let timeout = args.supervisor.event_timeout + Duration::from_secs(10);
        let http = HttpTarget::new(url, timeout)?;
        return Ok((Target::Http(http), args.server_pid));
    }
    let launcher = args.supervisor.launcher().await?;
    let registry = Registry::new(
        launcher,
        args.supervisor.policy(),
        args.supervisor.max_sessions,
    );
    Ok((Target::Embedded(registry), Some(std::process::id())))
}

fn session_memory(pid: u32, live_sessions: u64, used_before: Option<u64>) -> SessionMemory {
    let per_session = |bytes: u64| bytes / live_sessions.max(1);
    let pss = memory::pss_sum(&memory::descendants(pid));
    let used_now = memory::host_used().ok();
    SessionMemory {
        live_sessions,
        pss_bytes: (pss.processes > 0).then(|| per_session(pss.bytes)),
        pss_anon_bytes: (pss.processes > 0).then(|| per_session(pss.anon_bytes)),
        processes: pss.processes,
        statm_processes: pss.from_statm,
        unreadable_processes: pss.unreadable,
        host_used_bytes: used_before
            .zip(used_now)
            .map(|(before, now)| per_session(now.saturating_sub(before))),
    }
}

fn print(report: &Report, json: bool) {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => println!("{text}"),
            Err(error) => eprintln!("sessionvisor: cannot encode the report: {error}"),
        }
    } else {
        print!("{}", report.table());
    }
}
