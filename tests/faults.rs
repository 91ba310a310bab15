//! Abusive workers: a fork bomb, a memory hog, a /tmp filler, a file-descriptor
//! leak, a CPU spinner, a crasher, a hanger and a garbage writer. While each
//! runs, a well-behaved session must keep answering correctly; its latency is
//! measured and printed (never asserted: these machines are shared).

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn abusers_handler() -> String {
    format!(
        "{}:handler",
        repo_path("tests/fixtures/abusers.py").display()
    )
}

/// Reads (message, per-worker event count) from a good session's result.
type Extract = fn(&Value) -> (Value, Value);

fn python_echo(line: &Value) -> (Value, Value) {
    (
        line["response"]["message"].clone(),
        line["response"]["events"].clone(),
    )
}

fn native_echo(line: &Value) -> (Value, Value) {
    let body = body(line);
    (body["message"].clone(), body["event_count"].clone())
}

/// Drives one supervisor: the abuser's event runs while a good session sends
/// events one after another; returns the abuser's result and the good latencies.
struct Harness {
    sv: Supervisor,
    early: HashMap<u64, Value>,
    good_events: u64,
    extract: Extract,
}

impl Harness {
    fn new(mode: Mode, dir: &TestDir, args: Vec<String>, extract: Extract) -> Self {
        Harness {
            sv: Supervisor::start(mode, dir, &args),
            early: HashMap::new(),
            good_events: 0,
            extract,
        }
    }

    fn wait_for(&mut self, seq: u64) -> Value {
        if let Some(line) = self.early.remove(&seq) {
            return line;
        }
        loop {
            let line = self.sv.read_line();
            let got = line["seq"].as_u64().unwrap();
            if got == seq {
                return line;
            }
            self.early.insert(got, line);
        }
    }

    /// One event of the well-behaved session; checks its answer and returns
    /// the round trip.
    fn good_event(&mut self) -> Duration {
        self.good_events += 1;
        let message = format!("good-{}", self.good_events);
        let started = Instant::now();
        let seq = self
            .sv
            .send(&json!({"session_id": "good", "action": "echo", "message": message}));
        let line = self.wait_for(seq);
        let elapsed = started.elapsed();
        assert_eq!(line["ok"], true, "the good session failed: {line}");
        let (echoed, count) = (self.extract)(&line);
        assert_eq!(echoed, json!(message), "{line}");
        assert_eq!(
            count,
            json!(self.good_events),
            "the good session lost state: {line}"
        );
        elapsed
    }

    /// Runs `abuse` in session `abuser` while the good session keeps going.
    fn during(&mut self, abuser: &str, abuse: Value) -> (Value, Vec<Duration>) {
        let mut event = abuse;
        event["session_id"] = json!(abuser);
        let seq = self.sv.send(&event);
        let mut latencies = Vec::new();
        loop {
            latencies.push(self.good_event());
            if let Some(line) = self.early.remove(&seq) {
                // A few more good events after the abuser's end, to catch late damage.
                for _ in 0..5 {
                    latencies.push(self.good_event());
                }
                return (line, latencies);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn percentile(latencies: &[Duration], p: f64) -> f64 {
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let index = ((ms.len() as f64 - 1.0) * p).round() as usize;
    ms[index.min(ms.len() - 1)]
}

fn report(mode: Mode, what: &str, latencies: &[Duration]) {
    eprintln!(
        "[{mode:?}] good session while {what:<12}: {:>3} events, p50 {:>7.2} ms, p99 {:>7.2} ms",
        latencies.len(),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99)
    );
}

fn expect_error(line: &Value, kind: &str, mentions: &str) {
    assert_eq!(line["ok"], false, "{line}");
    assert_eq!(line["error"]["kind"], kind, "{line}");
    let message = line["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(mentions),
        "{kind} error should mention {mentions:?}: {message}"
    );
}

both_modes!(abusive_python_workers_hurt_only_themselves, |mode| {
    let dir = TestDir::new(mode);
    let args: Vec<String> = [
        "--memory",
        "256MiB",
        "--pids",
        "48",
        "--tmp-size",
        "16MiB",
        "--nofile",
        "64",
        "--cpus",
        "0.5",
        "--event-timeout",
        "3s",
        "--handler",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([abusers_handler()])
    .collect();
    let mut h = Harness::new(mode, &dir, args, python_echo);

    h.good_event(); // the cold start is not part of the baseline
    let baseline: Vec<Duration> = (0..30).map(|_| h.good_event()).collect();
    report(mode, "baseline", &baseline);

    let cases = [
        (
            "fork_bomb",
            json!({"action": "fork_bomb"}),
            "resource_exhausted",
            "pids",
        ),
        (
            "memory_hog",
            json!({"action": "memory_hog"}),
            "resource_exhausted",
            "memory",
        ),
        (
            "fill_tmp",
            json!({"action": "fill_tmp"}),
            "resource_exhausted",
            "tmp-size",
        ),
        (
            "open_files",
            json!({"action": "open_files"}),
            "resource_exhausted",
            "nofile",
        ),
        (
            "crash",
            json!({"action": "crash", "code": 3}),
            "worker_exited",
            "exit status 3",
        ),
        (
            "hang",
            json!({"action": "hang"}),
            "timeout",
            "event timeout",
        ),
    ];
    for (name, abuse, kind, mentions) in cases {
        let (line, latencies) = h.during(name, abuse);
        report(mode, name, &latencies);
        expect_error(&line, kind, mentions);
        // The abuser's next event gets a fresh worker; the abuse is gone with it.
        let seq =
            h.sv.send(&json!({"session_id": name, "action": "echo", "message": "again"}));
        let again = h.wait_for(seq);
        assert_eq!(again["ok"], true, "{name} did not recover: {again}");
        assert_eq!(
            again["response"]["events"], 1,
            "{name}: not a fresh worker: {again}"
        );
        assert_eq!(again["new_instance"]["instance"], 2, "{again}");
    }

    let (line, latencies) = h.during("spinner", json!({"action": "spin", "seconds": 1}));
    report(mode, "cpu_spinner", &latencies);
    assert_eq!(line["ok"], true, "{line}");

    let (rest, status) = h.sv.finish();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(status.success());
    assert!(
        dir.leftovers().is_empty(),
        "left on the host: {:?}",
        dir.leftovers()
    );
});

both_modes!(a_garbage_writer_is_killed_with_protocol_error, |mode| {
    let dir = TestDir::new(mode);
    let mut h = Harness::new(mode, &dir, native_worker_args(), native_echo);
    let (line, latencies) = h.during("garbage", json!({"action": "garbage"}));
    report(mode, "garbage", &latencies);
    expect_error(&line, "protocol_error", "this is not a frame");
    let seq =
        h.sv.send(&json!({"session_id": "garbage", "action": "echo"}));
    let again = h.wait_for(seq);
    assert_eq!(
        body(&again)["event_count"],
        1,
        "not a fresh worker: {again}"
    );
    assert!(h.sv.finish().1.success());
});

both_modes!(a_crash_reports_status_and_stderr, |mode| {
    let dir = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &dir, &native_worker_args());
    let line = sv.ask(json!({"session_id": "c", "action": "crash", "code": 7}));
    expect_error(&line, "worker_exited", "exit status 7");
    assert!(
        line["error"]["message"]
            .as_str()
            .unwrap()
            .contains("crashing on purpose"),
        "{line}"
    );
    assert!(sv.finish().1.success());
});

both_modes!(
    oversized_events_and_responses_are_refused_without_harm,
    |mode| {
        let dir = TestDir::new(mode);
        let mut args = vec![
            "--max-event-bytes".to_string(),
            "4000".into(),
            "--max-response-bytes".into(),
            "3000".into(),
        ];
        args.extend(native_worker_args());
        let mut sv = Supervisor::start(mode, &dir, &args);
        assert_eq!(body(&sv.ask(event("s", "echo", "first")))["event_count"], 1);
        let huge = event("s", "echo", &"x".repeat(10_000));
        expect_error(&sv.ask(huge), "payload_too_large", "--max-event-bytes");
        // Fits the event limit, but the worker's reply (a JSON string in a JSON string) does not fit.
        let big_reply = event("s", "echo", &"\"".repeat(1400));
        expect_error(
            &sv.ask(big_reply),
            "response_too_large",
            "--max-response-bytes",
        );
        let after = sv.ask(event("s", "echo", "after"));
        assert_eq!(
            body(&after)["event_count"],
            1,
            "the oversized reply's worker was replaced: {after}"
        );
        assert!(sv.finish().1.success());
    }
);

// The process limit is per session: a rootless supervisor's sessions all share
// one uid, and a limit set before the user namespace existed would cap them all
// together (3 processes per session here: 6 sessions need 18 > 8).
both_modes!(the_process_limit_is_per_session_not_per_user, |mode| {
    let dir = TestDir::new(mode);
    let mut args = vec!["--pids".to_string(), "8".into()];
    args.extend(native_worker_args());
    let mut sv = Supervisor::start(mode, &dir, &args);
    for session in ["s1", "s2", "s3", "s4", "s5", "s6"] {
        let line = sv.ask(event(session, "echo", ""));
        assert_eq!(line["ok"], true, "{session}: {line}");
    }
    assert!(sv.finish().1.success());
});
