//! The summary of a run: one struct, printed as a table for people or as JSON
//! (`--json`) for machines, so both always say the same.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::tally::{Micros, Tally};

/// Latency percentiles in microseconds.
#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(histogram: &Micros) -> Option<Self> {
        (!histogram.is_empty()).then(|| Percentiles {
            count: histogram.len(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            max: histogram.max(),
            mean: histogram.mean(),
        })
    }
}

/// Host memory per live session, measured while every session was live.
#[derive(Debug, Serialize)]
pub struct SessionMemory {
    pub live_sessions: u64,
    /// Summed Pss of the supervisor's descendants, per live session.
    pub pss_bytes: Option<u64>,
    /// The anonymous part of `pss_bytes`.
    pub pss_anon_bytes: Option<u64>,
    /// Processes counted for `pss_bytes`, and those that could not be read.
    pub processes: usize,
    /// Of those, processes closed to `smaps_rollup` and counted from `statm`.
    pub statm_processes: usize,
    pub unreadable_processes: usize,
    /// Growth of `MemTotal - MemAvailable` since before the run, per live session.
    pub host_used_bytes: Option<u64>,
}

/// Everything a run reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `pass`, `isolation_violated` (misroutes or leaks) or `errors`.
    pub verdict: &'static str,
    /// `embedded` or the URL of the server driven.
    pub target: String,
    pub worker: &'static str,
    pub sessions: u64,
    pub events_per_session: u64,
    pub concurrency: u64,
    /// Whether a signal cut the run short.
    pub interrupted: bool,
    pub events: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// The first message of each error kind.
    pub first_errors: BTreeMap<String, String>,
    pub misroutes: u64,
    pub leaks: u64,
    /// The first few misroutes, in words.
    pub misroute_examples: Vec<String>,
    /// The first few leaks, in words.
    pub leak_examples: Vec<String>,
    /// Events answered by a new worker replacing an ended one.
    pub fresh_workers: u64,
    pub elapsed_seconds: f64,
    /// Answered events (ok, misrouted or leaky) per second of the whole run.
    pub throughput_eps: f64,
    /// A session's first event, dispatch to result (µs).
    pub cold_start_us: Option<Percentiles>,
    /// Every later event (µs).
    pub warm_round_trip_us: Option<Percentiles>,
    /// `VmHWM` of the supervisor process, when known.
    pub supervisor_peak_rss_bytes: Option<u64>,
    /// Which process that is, or why it is unknown.
    pub supervisor_rss_source: String,
    pub memory_per_session: Option<SessionMemory>,
}

/// What the caller measured besides the tally.
pub struct Context {
    pub target: String,
    pub worker: &'static str,
    pub sessions: u64,
    pub events_per_session: u64,
    pub concurrency: u64,
    pub interrupted: bool,
    pub elapsed_seconds: f64,
    pub supervisor_peak_rss_bytes: Option<u64>,
    pub supervisor_rss_source: String,
    pub memory_per_session: Option<SessionMemory>,
}

impl Report {
    pub fn new(tally: Tally, context: Context) -> Self {
        let errors_total = tally.errors_total();
        let answered = tally.ok + tally.violating;
        let verdict = if tally.misroutes > 0 || tally.leaks > 0 {
            "isolation_violated"
        } else if errors_total > 0 || context.interrupted {
            "errors"
        } else {
            "pass"
        };
        Report {
            verdict,
            target: context.target,
            worker: context.worker,
            sessions: context.sessions,
            events_per_session: context.events_per_session,
            concurrency: context.concurrency,
            interrupted: context.interrupted,
            events: answered + errors_total,
            ok: tally.ok,
            cold_start_us: Percentiles::of(&tally.cold),
            warm_round_trip_us: Percentiles::of(&tally.warm),
            errors: tally.errors,
            first_errors: tally.first_error,
            misroutes: tally.misroutes,
            leaks: tally.leaks,
            misroute_examples: tally.misroute_examples,
            leak_examples: tally.leak_examples,
            fresh_workers: tally.fresh_workers,
            elapsed_seconds: context.elapsed_seconds,
            throughput_eps: answered as f64 / context.elapsed_seconds.max(1e-9),
            supervisor_peak_rss_bytes: context.supervisor_peak_rss_bytes,
            supervisor_rss_source: context.supervisor_rss_source,
            memory_per_session: context.memory_per_session,
        }
    }

    /// The table people read.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |label: &str, value: String| {
            let _ = writeln!(out, "{label:<26} {value}");
        };
        row(
            "run",
            format!(
                "{} sessions x {} events, {} at once, {} worker, {}{}",
                self.sessions,
                self.events_per_session,
                self.concurrency,
                self.worker,
                self.target,
                if self.interrupted {
                    " (interrupted)"
                } else {
                    ""
                }
            ),
        );
        row("events", self.events.to_string());
        row("ok", self.ok.to_string());
        if self.errors.is_empty() {
            row("errors", "0".into());
        }
        for (kind, count) in &self.errors {
            let first = self.first_errors.get(kind).map_or("", String::as_str);
            row(
                &format!("errors: {kind}"),
                format!("{count}  (first: {first})"),
            );
        }
        row("misroutes (must be 0)", self.misroutes.to_string());
        for example in &self.misroute_examples {
            row("", example.clone());
        }
        row("leaks (must be 0)", self.leaks.to_string());
        for example in &self.leak_examples {
            row("", example.clone());
        }
        if self.fresh_workers > 0 {
            row("replaced workers", self.fresh_workers.to_string());
        }
        row(
            "throughput",
            format!(
                "{:.0} events/s ({:.2} s)",
                self.throughput_eps, self.elapsed_seconds
            ),
        );
        row("cold start (1st event)", percentiles(&self.cold_start_us));
        row("warm round trip", percentiles(&self.warm_round_trip_us));
        row(
            "supervisor peak RSS",
            match self.supervisor_peak_rss_bytes {
                Some(bytes) => format!("{}  ({})", mib(bytes), self.supervisor_rss_source),
                None => format!("n/a  ({})", self.supervisor_rss_source),
            },
        );
        match &self.memory_per_session {
            Some(memory) => {
                row(
                    "memory per live session",
                    format!(
                        "{} Pss ({} anon) of the supervisor's descendants ({} processes{}), \
                         {} host used (MemTotal-MemAvailable growth); {} live sessions",
                        memory.pss_bytes.map_or("n/a".into(), mib),
                        memory.pss_anon_bytes.map_or("n/a".into(), mib),
                        memory.processes,
                        match (memory.statm_processes, memory.unreadable_processes) {
                            (0, 0) => String::new(),
                            (statm, 0) => format!(", {statm} of them from statm"),
                            (statm, gone) => format!(", {statm} from statm, {gone} unreadable"),
                        },
                        memory.host_used_bytes.map_or("n/a".into(), mib),
                        memory.live_sessions
                    ),
                );
            }
            None => row(
                "memory per live session",
                "n/a (give --server-pid with --url)".into(),
            ),
        }
        row("verdict", self.verdict.to_string());
        out
    }
}

fn percentiles(p: &Option<Percentiles>) -> String {
    match p {
        None => "n/a (no event)".into(),
        Some(p) => format!(
            "p50 {}  p90 {}  p99 {}  max {}  (n={})",
            micros(p.p50),
            micros(p.p90),
            micros(p.p99),
            micros(p.max),
            p.count
        ),
    }
}

/// `870 µs`, `12.3 ms`, `2.10 s`.
pub fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn context() -> Context {
        Context {
            target: "embedded".into(),
            worker: "native",
            sessions: 2,
            events_per_session: 2,
            concurrency: 2,
            interrupted: false,
            elapsed_seconds: 0.5,
            supervisor_peak_rss_bytes: Some(10 << 20),
            supervisor_rss_source: "this process".into(),
            memory_per_session: None,
        }
    }

    #[test]
    fn a_clean_run_passes_and_any_violation_fails() {
        let mut tally = Tally::new();
        tally.ok = 4;
        tally.latency(true, Duration::from_millis(4));
        tally.latency(false, Duration::from_micros(90));
        let report = Report::new(tally, context());
        assert_eq!(report.verdict, "pass");
        assert_eq!(report.events, 4);
        assert_eq!(report.throughput_eps, 8.0);
        assert!(report.table().contains("misroutes (must be 0)      0"));

        let mut tally = Tally::new();
        tally.ok = 3;
        tally.leak("a read b's nonce".into());
        tally.violating = 1;
        assert_eq!(Report::new(tally, context()).verdict, "isolation_violated");

        let mut tally = Tally::new();
        tally.error("spawn_failed", "no".into());
        assert_eq!(Report::new(tally, context()).verdict, "errors");
    }

    #[test]
    fn micros_read_well() {
        assert_eq!(micros(870), "870 µs");
        assert_eq!(micros(12_345), "12.35 ms");
        assert_eq!(micros(2_100_000), "2.10 s");
    }
}
