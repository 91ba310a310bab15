//! Runs the built worker over real pipes, as the supervisor does.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

#[test]
fn echo_count_grows_per_process_and_eof_exits_zero() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionvisor-worker"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));

    for (id, expected_count) in [(1u64, 1u64), (2, 2)] {
        writeln!(
            stdin,
            r#"{{"id": {id}, "event": {{"action": "echo", "message": "m{id}", "session_id": "s"}}, "context": {{"session_id": "s", "request_id": "r{id}", "deadline_ms": 0}}}}"#
        )
        .expect("write request");
        stdin.flush().expect("flush");

        // Reading the answer before sending the next request shows that the
        // worker flushes each frame.
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read response");
        let frame: Value = serde_json::from_str(&line).expect("response is JSON");
        assert_eq!(frame["id"], id);
        assert_eq!(frame["result"]["statusCode"], 200);
        let body: Value = serde_json::from_str(frame["result"]["body"].as_str().expect("body"))
            .expect("body is JSON");
        assert_eq!(body["event_count"], expected_count);
        assert_eq!(body["message"], format!("m{id}"));
        assert_eq!(body["session_id"], "s");
        assert_eq!(body["pid"], child.id());
    }

    drop(stdin);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}
