//! What a run counted: per lane while it runs (no shared lock on the hot
//! path), merged at the end; plus the few atomics the progress display reads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Findings of each kind quoted in the report, at most; the counts cover the rest.
const MAX_EXAMPLES: usize = 5;
/// Highest latency a histogram holds (one hour, in µs); larger ones saturate.
const MAX_MICROS: u64 = 3_600_000_000;

/// Latencies in microseconds, to 3 significant digits.
pub type Micros = Histogram<u64>;

pub fn new_histogram() -> Micros {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant bounds are valid")
}

/// Counts and latencies of some sessions' events.
pub struct Tally {
    /// Events answered and found to be the session's own in every check.
    pub ok: u64,
    /// Events that got no usable answer, by kind.
    pub errors: BTreeMap<String, u64>,
    /// The first message seen for each error kind.
    pub first_error: BTreeMap<String, String>,
    /// Answers that came from a worker serving someone else too.
    pub misroutes: u64,
    /// Reads that found something other than the session's own nonce.
    pub leaks: u64,
    /// Events answered but failing a check (misrouted, leaky, or both).
    pub violating: u64,
    /// Events the supervisor answered from a new worker, the previous having
    /// ended (idle timeout, max lifetime, a failure).
    pub fresh_workers: u64,
    /// Sessions whose first event got an answer.
    pub sessions_started: u64,
    /// A session's first event, dispatch to result.
    pub cold: Micros,
    /// Every later event.
    pub warm: Micros,
    /// The first misroutes, in words.
    pub misroute_examples: Vec<String>,
    /// The first leaks, in words.
    pub leak_examples: Vec<String>,
}

impl Tally {
    pub fn new() -> Self {
        Tally {
            ok: 0,
            errors: BTreeMap::new(),
            first_error: BTreeMap::new(),
            misroutes: 0,
            leaks: 0,
            violating: 0,
            fresh_workers: 0,
            sessions_started: 0,
            cold: new_histogram(),
            warm: new_histogram(),
            misroute_examples: Vec::new(),
            leak_examples: Vec::new(),
        }
    }

    pub fn error(&mut self, kind: &str, message: String) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
        self.first_error.entry(kind.to_string()).or_insert(message);
    }

    pub fn misroute(&mut self, why: String) {
        self.misroutes += 1;
        keep_example(&mut self.misroute_examples, why);
    }

    pub fn leak(&mut self, why: String) {
        self.leaks += 1;
        keep_example(&mut self.leak_examples, why);
    }

    pub fn latency(&mut self, cold: bool, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let histogram = if cold { &mut self.cold } else { &mut self.warm };
        histogram.saturating_record(micros.max(1));
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        for (kind, message) in other.first_error {
            self.first_error.entry(kind).or_insert(message);
        }
        self.misroutes += other.misroutes;
        self.leaks += other.leaks;
        for example in other.misroute_examples {
            keep_example(&mut self.misroute_examples, example);
        }
        for example in other.leak_examples {
            keep_example(&mut self.leak_examples, example);
        }
        self.violating += other.violating;
        self.fresh_workers += other.fresh_workers;
        self.sessions_started += other.sessions_started;
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.cold.add(&other.cold);
        let _ = self.warm.add(&other.warm);
    }
}

fn keep_example(examples: &mut Vec<String>, text: String) {
    if examples.len() < MAX_EXAMPLES {
        examples.push(text);
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

/// Running totals for the progress display, updated once per event.
#[derive(Default)]
pub struct Live {
    pub events: AtomicU64,
    pub ok: AtomicU64,
    pub errors: AtomicU64,
    pub misroutes: AtomicU64,
    pub leaks: AtomicU64,
}

impl Live {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_latencies() {
        let mut a = Tally::new();
        a.ok = 2;
        a.error("spawn_failed", "first".into());
        a.latency(true, Duration::from_millis(3));
        let mut b = Tally::new();
        b.misroute("b got c's counter".into());
        b.error("spawn_failed", "second".into());
        b.error("timeout", "slow".into());
        b.latency(true, Duration::from_millis(5));
        b.latency(false, Duration::from_micros(80));
        b.leak("b saw c's nonce".into());
        a.merge(b);
        assert_eq!(a.ok, 2);
        assert_eq!(a.misroutes, 1);
        assert_eq!(a.errors["spawn_failed"], 2);
        assert_eq!(a.first_error["spawn_failed"], "first");
        assert_eq!(a.errors_total(), 3);
        assert_eq!(a.cold.len(), 2);
        assert_eq!(a.warm.len(), 1);
        assert_eq!(a.leaks, 1);
        assert_eq!(a.misroute_examples, ["b got c's counter"]);
        assert_eq!(a.leak_examples, ["b saw c's nonce"]);
    }
}
