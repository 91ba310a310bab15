//! Test harness: starts the real `sessionvisor` binary (never a mock of the
//! sandbox), as root and again as an unprivileged user.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The unprivileged uid/gid rootless runs use when the tests run as root.
pub const NOBODY: u32 = 65534;

/// Who runs the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The supervisor runs as root; sessions drop to their own uids.
    Root,
    /// The supervisor runs as an ordinary user (rootless).
    Rootless,
}

impl Mode {
    /// Whether this machine can run the mode; prints why not when it cannot.
    pub fn available(self) -> bool {
        let root = nix_is_root();
        if self == Mode::Root && !root {
            eprintln!("SKIPPED: root mode needs the tests to run as root (CI does)");
            return false;
        }
        true
    }
}

fn nix_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn sessionvisor_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sessionvisor"))
}

/// The reference worker, built by the workspace next to `sessionvisor`.
pub fn worker_bin() -> PathBuf {
    let path = sessionvisor_bin().with_file_name("sessionvisor-worker");
    assert!(
        path.is_file(),
        "{} is missing: run the tests with --workspace (or cargo build -p sessionvisor-worker)",
        path.display()
    );
    path
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub fn echo_agent() -> String {
    format!(
        "{}:handler",
        repo_path("worker/examples/echo_agent.py").display()
    )
}

/// A state directory for one test, writable by whoever runs the supervisor.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new(mode: Mode) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sv-test-")
            .tempdir()
            .expect("temp dir");
        if mode == Mode::Rootless && nix_is_root() {
            std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).expect("chown");
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        TestDir { dir }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Every file and directory left under the state directory.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        fn walk(path: &Path, found: &mut Vec<PathBuf>) {
            if let Ok(entries) = std::fs::read_dir(path) {
                for entry in entries.flatten() {
                    found.push(entry.path());
                    walk(&entry.path(), found);
                }
            }
        }
        let mut found = Vec::new();
        walk(&self.state_dir(), &mut found);
        found
    }
}

/// A `sessionvisor` command for `mode`, with its state under `dir`.
pub fn command(mode: Mode, dir: &TestDir, args: &[&str]) -> Command {
    let mut command = Command::new(sessionvisor_bin());
    command.args(args);
    insert_state_dir(&mut command, dir);
    if mode == Mode::Rootless && nix_is_root() {
        command.uid(NOBODY).gid(NOBODY);
        command.env("HOME", dir.dir.path());
        command.env_remove("XDG_RUNTIME_DIR");
    }
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command.env("RUST_LOG", "sessionvisor=info");
    command
}

fn insert_state_dir(command: &mut Command, dir: &TestDir) {
    // `--state-dir` is an option of the subcommand; it goes before any `--`.
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let mut rebuilt = Command::new(command.get_program());
    let mut placed = false;
    for arg in &args {
        if !placed && arg == "--" {
            rebuilt.arg("--state-dir").arg(dir.state_dir());
            placed = true;
        }
        rebuilt.arg(arg);
    }
    if !placed {
        rebuilt.arg("--state-dir").arg(dir.state_dir());
    }
    *command = rebuilt;
}

/// Arguments that run the Rust reference worker.
pub fn native_worker_args() -> Vec<String> {
    vec!["--".into(), worker_bin().display().to_string()]
}

/// Arguments that run the echo agent through the Python handler host.
pub fn python_worker_args() -> Vec<String> {
    vec!["--handler".into(), echo_agent()]
}

/// A running `sessionvisor run`, driven one line at a time.
pub struct Supervisor {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_seq: u64,
}

impl Supervisor {
    pub fn start(mode: Mode, dir: &TestDir, extra: &[String]) -> Self {
        let mut args = vec!["run"];
        args.extend(extra.iter().map(String::as_str));
        let mut child = command(mode, dir, &args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sessionvisor run");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Supervisor {
            child,
            stdin,
            stdout,
            next_seq: 1,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a raw line without waiting.
    pub fn send_raw(&mut self, line: &str) -> u64 {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
        self.next_seq += 1;
        self.next_seq - 1
    }

    pub fn send(&mut self, event: &Value) -> u64 {
        self.send_raw(&event.to_string())
    }

    pub fn read_line(&mut self) -> Value {
        let mut line = String::new();
        let read = self
            .stdout
            .read_line(&mut line)
            .expect("read supervisor output");
        assert!(read > 0, "the supervisor closed its output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad output line {line:?}: {e}"))
    }

    /// Sends one event and waits for its result line.
    pub fn ask(&mut self, event: Value) -> Value {
        let seq = self.send(&event);
        let reply = self.read_line();
        assert_eq!(reply["seq"], json!(seq), "reply out of order: {reply}");
        reply
    }

    /// Closes stdin and collects every remaining line and the exit status.
    pub fn finish(mut self) -> (Vec<Value>, std::process::ExitStatus) {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        let mut line = String::new();
        while self.stdout.read_line(&mut line).unwrap_or(0) > 0 {
            rest.push(serde_json::from_str(&line).unwrap());
            line.clear();
        }
        let status = self.child.wait().unwrap();
        (rest, status)
    }
}

/// The `body` of a seed-shaped `{"statusCode", "body"}` response, parsed.
pub fn body(reply: &Value) -> Value {
    assert_eq!(reply["ok"], json!(true), "event failed: {reply}");
    let body = reply["response"]["body"]
        .as_str()
        .unwrap_or_else(|| panic!("no body in {reply}"));
    serde_json::from_str(body).unwrap()
}

/// What the echo agent answered (`output` in its body).
pub fn agent_output(reply: &Value) -> String {
    body(reply)["output"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn event(session: &str, action: &str, message: &str) -> Value {
    json!({"session_id": session, "action": action, "message": message})
}

pub fn exec(session: &str, script: &str) -> Value {
    json!({"session_id": session, "action": "exec", "command": script})
}

/// Runs a whole input through `sessionvisor run` and returns the result lines
/// sorted by `seq`, with stderr and the exit status.
pub fn run_batch(
    mode: Mode,
    dir: &TestDir,
    extra: &[String],
    input: &str,
) -> (Vec<Value>, String, std::process::ExitStatus) {
    let mut args = vec!["run".to_string()];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = command(mode, dir, &args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sessionvisor run");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let mut lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad output {l:?}: {e}")))
        .collect();
    lines.sort_by_key(|l| l["seq"].as_u64());
    (
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status,
    )
}

/// Whether `pid` is still a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rfind(')').and_then(|i| stat.get(i + 2..i + 3)) != Some("Z"),
        Err(_) => false,
    }
}

/// Polls `condition` until it holds or `limit` passes. A liveness bound, not a
/// performance assertion: the limit is generous on purpose.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Defines `NAME_root` and `NAME_rootless` tests from one body taking a [`Mode`].
#[macro_export]
macro_rules! both_modes {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn root() {
                if Mode::Root.available() {
                    ($body)(Mode::Root);
                }
            }
            #[test]
            fn rootless() {
                if Mode::Rootless.available() {
                    ($body)(Mode::Rootless);
                }
            }
        }
    };
}
