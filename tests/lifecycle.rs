//! Session lifecycle as AgentCore defines it: stop, idle timeout, maximum
//! lifetime, the session cap, session storage, and graceful shutdown. Each test
//! checks the host itself: directories gone, processes gone.

mod common;

use common::*;
use serde_json::{json, Value};
use sessionvisor::stress::descendants;
use std::time::Duration;

fn control(op: &str, session: Option<&str>) -> Value {
    match session {
        Some(id) => json!({"$sessionvisor": {"op": op, "session_id": id}}),
        None => json!({"$sessionvisor": {"op": op}}),
    }
}

fn with_worker(mut flags: Vec<&str>) -> Vec<String> {
    let mut args: Vec<String> = flags.drain(..).map(String::from).collect();
    args.extend(native_worker_args());
    args
}

/// Session directories live under the supervisor's instance directory.
fn session_dirs(dir: &TestDir) -> usize {
    dir.leftovers()
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("s-"))
        })
        .count()
}

both_modes!(
    stop_kills_the_worker_deletes_its_files_and_the_next_event_gets_a_fresh_one,
    |mode| {
        let dir = TestDir::new(mode);
        let mut sv = Supervisor::start(mode, &dir, &native_worker_args());
        sv.ask(event("A", "write", "before the stop"));
        sv.ask(event("B", "echo", ""));
        let workers_before = descendants(sv.pid());
        assert_eq!(session_dirs(&dir), 2);

        let listed = sv.ask(control("list", None));
        let sessions = listed["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2, "{listed}");
        let a = &sessions[0];
        assert_eq!(a["session_id"], "A");
        assert_eq!(a["state"], "idle");
        assert_eq!(a["events"], 1);
        assert_eq!(a["instance"], 1);
        assert!(
            a["worker_pid"].as_u64().is_some()
                && a["started_at"].is_string()
                && a["last_activity"].is_string(),
            "{a}"
        );
        let a_pid = a["worker_pid"].as_u64().unwrap() as u32;

        let stopped = sv.ask(control("stop", Some("A")));
        assert_eq!(stopped["ok"], true, "{stopped}");
        assert!(
            eventually(Duration::from_secs(10), || !alive(a_pid)),
            "A's sandbox survived its stop"
        );
        assert_eq!(session_dirs(&dir), 1, "A's directory was not deleted");
        assert!(descendants(sv.pid()).len() < workers_before.len());

        let again = sv.ask(event("A", "read", ""));
        assert_eq!(
            body(&again)["content"],
            "FILE_NOT_FOUND",
            "a stopped session must come back empty"
        );
        assert_eq!(
            again["new_instance"],
            json!({"instance": 2, "previous_ended": "stopped"})
        );

        let unknown = sv.ask(control("stop", Some("nobody")));
        assert_eq!(unknown["ok"], false);
        assert_eq!(unknown["error"]["kind"], "session_not_found");
        assert!(sv.finish().1.success());
        assert!(dir.leftovers().is_empty());
    }
);

both_modes!(stop_waits_for_the_events_queued_before_it, |mode| {
    let dir = TestDir::new(mode);
    let input = [
        event("A", "write", "queued"),
        json!({"session_id": "A", "action": "sleep", "ms": 300}),
        control("stop", Some("A")),
        event("A", "read", ""),
    ]
    .iter()
    .map(|l| format!("{l}\n"))
    .collect::<String>();
    let (lines, stderr, status) = run_batch(mode, &dir, &native_worker_args(), &input);
    assert!(status.success(), "{stderr}");
    assert!(lines[..3].iter().all(|l| l["ok"] == true), "{lines:?}");
    assert_eq!(body(&lines[3])["content"], "FILE_NOT_FOUND");
});

both_modes!(idle_sessions_are_stopped_and_sanitized, |mode| {
    let dir = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &dir, &with_worker(vec!["--idle-timeout", "1s"]));
    sv.ask(event("A", "write", "idle soon"));
    let pid = sv.ask(control("list", None))["sessions"][0]["worker_pid"]
        .as_u64()
        .unwrap() as u32;
    assert!(
        eventually(Duration::from_secs(15), || session_dirs(&dir) == 0),
        "idle session not sanitized"
    );
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "idle worker still alive"
    );
    assert_eq!(sv.ask(control("list", None))["sessions"], json!([]));
    let again = sv.ask(event("A", "read", ""));
    assert_eq!(body(&again)["content"], "FILE_NOT_FOUND");
    assert_eq!(again["new_instance"]["previous_ended"], "idle_timeout");
    assert!(sv.finish().1.success());
});

both_modes!(
    sessions_end_at_their_maximum_lifetime_even_when_busy,
    |mode| {
        let dir = TestDir::new(mode);
        let mut sv = Supervisor::start(mode, &dir, &with_worker(vec!["--max-lifetime", "1s"]));
        sv.ask(event("A", "write", "short life"));
        // Keep the session busy past its lifetime: activity does not extend it.
        let mut ended = None;
        for _ in 0..100 {
            let line = sv.ask(event("A", "read", ""));
            if line.get("new_instance").is_some() {
                ended = Some(line);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let line = ended.expect("the session outlived --max-lifetime");
        assert_eq!(line["new_instance"]["previous_ended"], "max_lifetime");
        assert_eq!(body(&line)["content"], "FILE_NOT_FOUND");
        assert!(sv.finish().1.success());
    }
);

both_modes!(the_session_cap_refuses_new_sessions_only, |mode| {
    let dir = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &dir, &with_worker(vec!["--max-sessions", "2"]));
    sv.ask(event("A", "echo", ""));
    sv.ask(event("B", "echo", ""));
    let refused = sv.ask(event("C", "echo", ""));
    assert_eq!(refused["error"]["kind"], "too_many_sessions", "{refused}");
    assert_eq!(
        body(&sv.ask(event("A", "echo", "")))["event_count"],
        2,
        "existing sessions are unaffected"
    );
    sv.ask(control("stop", Some("B")));
    assert_eq!(body(&sv.ask(event("C", "echo", "")))["event_count"], 1);
    assert!(sv.finish().1.success());
});

both_modes!(session_storage_persists_per_id_and_stays_private, |mode| {
    let dir = TestDir::new(mode);
    let storage = dir.dir.path().join("storage");
    let storage_arg = storage.display().to_string();
    let mut sv = Supervisor::start(
        mode,
        &dir,
        &with_worker(vec!["--session-storage", &storage_arg]),
    );
    let nonce = uuid::Uuid::new_v4().to_string();
    let wrote = sv.ask(exec(
        "A",
        &format!("echo {nonce} > /mnt/workspace/notes && echo ok"),
    ));
    assert_eq!(body(&wrote)["stdout"], "ok\n", "{wrote}");
    sv.ask(control("stop", Some("A")));
    let read = sv.ask(exec("A", "cat /mnt/workspace/notes; ls /tmp | wc -l"));
    assert_eq!(
        body(&read)["stdout"],
        format!("{nonce}\n0\n"),
        "storage must survive a stop; /tmp must not"
    );
    let other = sv.ask(exec(
        "B",
        "ls -A /mnt/workspace | wc -l; cat /mnt/workspace/notes 2>&1 | head -c 0",
    ));
    assert_eq!(body(&other)["stdout"], "0\n", "B sees A's storage");
    let dotdot = sv.ask(exec("..", "ls -A /mnt/workspace | wc -l"));
    assert_eq!(
        body(&dotdot)["stdout"],
        "0\n",
        "the id '..' must not name the storage root"
    );
    assert!(sv.finish().1.success());
    assert!(
        storage.join("A").join("notes").is_file(),
        "storage lives on after the supervisor"
    );
});

both_modes!(sigterm_finishes_events_in_flight_then_sanitizes, |mode| {
    let dir = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &dir, &native_worker_args());
    sv.ask(event("A", "write", "x"));
    let slow = sv.send(&json!({"session_id": "B", "action": "sleep", "ms": 500}));
    std::thread::sleep(Duration::from_millis(100));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sv.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let (rest, status) = sv.finish();
    assert!(status.success(), "{status:?}");
    let finished = rest
        .iter()
        .find(|l| l["seq"] == slow)
        .expect("the event in flight was dropped");
    assert_eq!(finished["ok"], true, "{finished}");
    assert!(
        dir.leftovers().is_empty(),
        "left on the host: {:?}",
        dir.leftovers()
    );
});

both_modes!(a_shutdown_grace_that_runs_out_stops_busy_sessions, |mode| {
    let dir = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &dir, &with_worker(vec!["--shutdown-grace", "300ms"]));
    sv.ask(event("A", "echo", ""));
    let slow = sv.send(&json!({"session_id": "B", "action": "sleep", "ms": 60000}));
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sv.pid() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let (rest, status) = sv.finish();
    assert!(status.success(), "{status:?}");
    let line = rest
        .iter()
        .find(|l| l["seq"] == slow)
        .expect("no line for the event in flight");
    assert_eq!(line["error"]["kind"], "session_stopped", "{line}");
    assert!(dir.leftovers().is_empty());
});

both_modes!(a_starting_supervisor_never_sweeps_a_live_one, |mode| {
    let dir = TestDir::new(mode);
    let mut live = Supervisor::start(mode, &dir, &native_worker_args());
    live.ask(event("A", "write", "still here"));
    // A second supervisor on the same state directory starts, sweeps, and ends.
    let (_, stderr, status) = run_batch(
        mode,
        &dir,
        &native_worker_args(),
        &format!("{}\n", event("B", "echo", "")),
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(
        session_dirs(&dir),
        1,
        "the live supervisor's session directory must survive"
    );
    assert_eq!(
        body(&live.ask(event("A", "read", "")))["content"],
        "still here"
    );
    assert!(live.finish().1.success());
    assert!(dir.leftovers().is_empty());
});
