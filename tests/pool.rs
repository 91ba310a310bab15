//! The warm pool: pre-started sandboxes that a new session takes. Each pooled
//! worker serves exactly one session, ever, and its /tmp is empty when taken.

mod common;

use common::*;
use serde_json::json;
use std::collections::HashSet;

fn pooled(worker: Vec<String>) -> Vec<String> {
    let mut args = vec!["--warm-pool".to_string(), "2".to_string()];
    args.extend(worker);
    args
}

both_modes!(
    pooled_workers_serve_one_session_each_and_start_empty,
    |mode| {
        let dir = TestDir::new(mode);
        let mut sv = Supervisor::start(mode, &dir, &pooled(native_worker_args()));
        // Let the pool fill; sessions that find it empty simply start cold.
        sv.ask(event("warm-up", "echo", ""));
        std::thread::sleep(std::time::Duration::from_millis(500));
        let mut worker_pids = HashSet::new();
        let mut from_pool = 0;
        for round in 0..3 {
            for session in ["A", "B", "C", "D"] {
                let first = sv.ask(exec(
                    session,
                    "ls -A /tmp /var/tmp /dev/shm | grep -v ':$' | grep -c . ; hostname; \
                     grep CapEff /proc/1/status",
                ));
                let out = body(&first)["stdout"].as_str().unwrap().to_string();
                let mut lines = out.lines();
                assert_eq!(
                    lines.next(),
                    Some("0"),
                    "a taken worker's scratch space must be empty: {out}"
                );
                let hostname = lines.next().unwrap();
                assert_eq!(
                    lines.next(),
                    Some("CapEff:\t0000000000000000"),
                    "a bound sandbox's PID 1 keeps no capability"
                );
                assert!(
                    hostname.starts_with(&format!("sv-{}-", session.to_ascii_lowercase())),
                    "a pooled sandbox must carry its session's hostname, got {hostname}"
                );
                sv.ask(event(session, "write", &format!("{session} round {round}")));
                let listed = sv.ask(json!({"$sessionvisor": {"op": "list"}}));
                let info = listed["sessions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["session_id"] == session)
                    .unwrap()
                    .clone();
                let pid = info["worker_pid"].as_u64().unwrap();
                from_pool += usize::from(info["from_warm_pool"] == true);
                assert!(
                    worker_pids.insert(pid),
                    "worker {pid} served a second session"
                );
                sv.ask(json!({"$sessionvisor": {"op": "stop", "session_id": session}}));
            }
        }
        assert!(from_pool >= 1, "no session was served from the warm pool");
        eprintln!("[{mode:?}] {from_pool} of 12 sessions took a pooled worker");
        let (rest, status) = sv.finish();
        assert!(rest.is_empty() && status.success());
        assert!(
            dir.leftovers().is_empty(),
            "pooled sandboxes left on the host: {:?}",
            dir.leftovers()
        );
    }
);

both_modes!(pooled_python_workers_answer_with_fresh_state, |mode| {
    let dir = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &dir, &pooled(python_worker_args()));
    sv.ask(event("A", "echo", "Hi, my name is Alice"));
    assert_eq!(
        agent_output(&sv.ask(event("B", "echo", "What is my name?"))),
        "I don't know your name yet."
    );
    assert_eq!(
        agent_output(&sv.ask(event("A", "echo", "What is my name?"))),
        "Your name is Alice."
    );
    assert_eq!(
        body(&sv.ask(event("C", "read", "")))["content"],
        "FILE_NOT_FOUND"
    );
    assert!(sv.finish().1.success());
    assert!(dir.leftovers().is_empty());
});
