//! The actions a worker performs, chosen by the event's `action` field.
//!
//! `echo`, `write`, `read`, `whoami` and `stream` are what a session's agent
//! code would do; `exec`, `sleep`, `crash`, `stderr` and `garbage` exist so that
//! isolation and fault tests can probe the sandbox and the supervisor from
//! inside a real worker. Actions return an [`Outcome`] rather than doing
//! stdio themselves, so the serving loop alone owns the protocol streams.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::thread;
use std::time::Duration;

use serde::Serialize;

use crate::protocol::{LambdaResponse, Request};
use crate::sys;

/// The single file `write` and `read` use: per-session state lives in the
/// session's own /tmp, which the sandbox gives each worker.
pub const SESSION_FILE: &str = "/tmp/session.txt";

/// The line `garbage` puts on stdout to test the supervisor's frame parsing.
pub const GARBAGE_LINE: &[u8] = b"this is not a frame\n";

/// Longest pause `stream` takes before a chunk, whatever the event asks.
pub const MAX_STREAM_DELAY: Duration = Duration::from_secs(10);

/// What the serving loop must do for one request.
#[derive(Debug)]
pub enum Outcome {
    /// Answer the request with a result or an error frame.
    Reply(Result<LambdaResponse, ActionError>),
    /// Answer the request with these chunk frames, pausing before each, then
    /// the stream's end frame.
    Stream(Stream),
    /// Write [`GARBAGE_LINE`] to stdout and leave the request unanswered.
    Garbage,
    /// Exit at once with this code, leaving the request unanswered.
    Crash(i32),
}

/// A streamed answer: what the serving loop writes, and how slowly.
#[derive(Debug)]
pub struct Stream {
    pub chunks: Vec<Token>,
    pub delay: Duration,
}

/// One chunk of `stream`: the same shape as `examples/stream_agent.py`'s.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Token {
    pub index: usize,
    pub token: String,
    /// The worker's event count when the stream began.
    pub turn: u64,
}

/// A failed action, sent back as an error frame.
#[derive(Debug)]
pub struct ActionError {
    /// The error frame's `type`, e.g. `IoError`.
    pub kind: &'static str,
    pub message: String,
}

impl ActionError {
    fn io(path: &str, err: &io::Error) -> Self {
        Self {
            kind: "IoError",
            message: format!("{path}: {err}"),
        }
    }
}

/// State kept for the life of the worker process. A session's events all go
/// to the same process, so `event_count` shows whether that held.
#[derive(Debug)]
pub struct Worker {
    event_count: u64,
    pid: u32,
}

impl Default for Worker {
    fn default() -> Self {
        Self::new()
    }
}

impl Worker {
    pub fn new() -> Self {
        Self {
            event_count: 0,
            pid: std::process::id(),
        }
    }

    /// Counts the event and runs its action.
    pub fn handle(&mut self, req: &Request<'_>) -> Outcome {
        self.event_count += 1;
        let event = &req.event;
        let session_id = req.context.session_id.as_ref();
        let reply = match event.action.as_ref() {
            "echo" => self.echo(session_id, &event.message),
            "write" => write(session_id, &event.message),
            "read" => read(session_id),
            "whoami" => Ok(whoami(session_id)),
            "stream" => return Outcome::Stream(self.stream(&event.message, event.delay_ms)),
            "exec" => match event.command.as_deref() {
                Some(command) => exec(command),
                None => Err(ActionError {
                    kind: "BadEvent",
                    message: "exec needs a string field \"command\"".into(),
                }),
            },
            "sleep" => {
                thread::sleep(Duration::from_millis(event.ms.unwrap_or(0)));
                self.echo(session_id, &event.message)
            }
            "stderr" => {
                crate::diag(&event.message);
                self.echo(session_id, &event.message)
            }
            "crash" => {
                return Outcome::Crash(event.code.unwrap_or(3));
            }
            "garbage" => return Outcome::Garbage,
            other => Ok(unknown_action(other)),
        };
        Outcome::Reply(reply)
    }

    fn echo(&self, session_id: &str, message: &str) -> Result<LambdaResponse, ActionError> {
        #[derive(Serialize)]
        struct Body<'a> {
            session_id: &'a str,
            message: &'a str,
            event_count: u64,
            pid: u32,
        }
        ok(&Body {
            session_id,
            message,
            event_count: self.event_count,
            pid: self.pid,
        })
    }

    /// One chunk per word of `message` (one `(empty)` chunk for no words),
    /// like a model streaming tokens.
    fn stream(&self, message: &str, delay_ms: Option<u64>) -> Stream {
        let mut words: Vec<&str> = message.split_whitespace().collect();
        if words.is_empty() {
            words.push("(empty)");
        }
        Stream {
            chunks: words
                .into_iter()
                .enumerate()
                .map(|(index, token)| Token {
                    index,
                    token: token.to_string(),
                    turn: self.event_count,
                })
                .collect(),
            delay: Duration::from_millis(delay_ms.unwrap_or(0)).min(MAX_STREAM_DELAY),
        }
    }
}

/// Wraps a body in the 200 Lambda shape.
fn ok<T: Serialize>(body: &T) -> Result<LambdaResponse, ActionError> {
    Ok(response(200, body))
}

fn response<T: Serialize>(status_code: u16, body: &T) -> LambdaResponse {
    // Bodies are plain structs of strings and numbers, which always
    // serialize; the fallback only keeps a bug from becoming a panic.
    let body = serde_json::to_string(body)
        .unwrap_or_else(|err| format!("{{\"error\":\"cannot serialize body: {err}\"}}"));
    LambdaResponse { status_code, body }
}

/// An unknown action is the handler's answer, not a protocol error.
pub fn unknown_action(action: &str) -> LambdaResponse {
    #[derive(Serialize)]
    struct Body {
        error: String,
    }
    response(
        400,
        &Body {
            error: format!("Unknown action: {action}"),
        },
    )
}

fn write(session_id: &str, message: &str) -> Result<LambdaResponse, ActionError> {
    #[derive(Serialize)]
    struct Body<'a> {
        status: &'static str,
        session_id: &'a str,
        path: &'static str,
        bytes: usize,
    }
    fs::write(SESSION_FILE, message).map_err(|err| ActionError::io(SESSION_FILE, &err))?;
    ok(&Body {
        status: "written",
        session_id,
        path: SESSION_FILE,
        bytes: message.len(),
    })
}

fn read(session_id: &str) -> Result<LambdaResponse, ActionError> {
    #[derive(Serialize)]
    struct Body<'a> {
        status: &'static str,
        session_id: &'a str,
        content: Cow<'a, str>,
    }
    let content = match fs::read(SESSION_FILE) {
        Ok(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Cow::Borrowed("FILE_NOT_FOUND"),
        Err(err) => return Err(ActionError::io(SESSION_FILE, &err)),
    };
    ok(&Body {
        status: "read",
        session_id,
        content,
    })
}

/// Namespaces reported by `whoami`, in the order of the body.
const NAMESPACES: [&str; 7] = ["user", "mnt", "pid", "ipc", "uts", "net", "cgroup"];

/// Reports who and where the worker is, so tests can check its sandbox.
/// Whatever cannot be read (e.g. /proc not mounted) is null, not an error:
/// a missing view is itself something the caller may want to see.
fn whoami(session_id: &str) -> LambdaResponse {
    #[derive(Serialize)]
    struct Namespaces {
        user: Option<String>,
        mnt: Option<String>,
        pid: Option<String>,
        ipc: Option<String>,
        uts: Option<String>,
        net: Option<String>,
        cgroup: Option<String>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        session_id: &'a str,
        pid: u32,
        ppid: u32,
        uid: u32,
        gid: u32,
        euid: u32,
        hostname: Option<String>,
        namespaces: Namespaces,
        cap_eff: Option<String>,
        no_new_privs: Option<i64>,
        open_fds: Option<Vec<i32>>,
    }

    let [user, mnt, pid, ipc, uts, net, cgroup] = NAMESPACES.map(|name| {
        fs::read_link(format!("/proc/self/ns/{name}"))
            .ok()
            .map(|target| target.to_string_lossy().into_owned())
    });
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    response(
        200,
        &Body {
            session_id,
            pid: std::process::id(),
            ppid: std::os::unix::process::parent_id(),
            uid: sys::uid(),
            gid: sys::gid(),
            euid: sys::euid(),
            hostname: sys::hostname(),
            namespaces: Namespaces {
                user,
                mnt,
                pid,
                ipc,
                uts,
                net,
                cgroup,
            },
            cap_eff: status_field(&status, "CapEff").map(str::to_owned),
            no_new_privs: status_field(&status, "NoNewPrivs").and_then(|v| v.parse().ok()),
            open_fds: open_fds().ok(),
        },
    )
}

/// The value of `Name:\tvalue` in /proc/self/status text.
fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim())
    })
}

/// The fds listed in /proc/self/fd, less the one used to list them: that one
/// is closed once the listing is dropped, so keep only fds still open then.
fn open_fds() -> io::Result<Vec<i32>> {
    let listed = fs::read_dir("/proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .collect::<Vec<_>>();
    let mut fds: Vec<i32> = listed
        .into_iter()
        .filter(|&fd| sys::fd_is_open(fd))
        .collect();
    fds.sort_unstable();
    Ok(fds)
}

/// Runs `/bin/sh -c command` with stdin closed (stdin is the protocol pipe,
/// which the child must not read) and returns what it did.
fn exec(command: &str) -> Result<LambdaResponse, ActionError> {
    #[derive(Serialize)]
    struct Body {
        status: Option<i32>,
        signal: Option<i32>,
        stdout: String,
        stderr: String,
    }
    let output = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .output()
        .map_err(|err| ActionError::io("/bin/sh", &err))?;
    ok(&Body {
        status: output.status.code(),
        signal: output.status.signal(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse_request;
    use serde_json::Value;

    fn body(resp: &LambdaResponse) -> Value {
        serde_json::from_str(&resp.body).expect("body is JSON")
    }

    fn run(worker: &mut Worker, line: &str) -> LambdaResponse {
        let req = parse_request(line.as_bytes()).expect("valid frame");
        match worker.handle(&req) {
            Outcome::Reply(Ok(resp)) => resp,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    #[test]
    fn unknown_action_shape() {
        let resp = run(
            &mut Worker::new(),
            r#"{"id":1,"event":{"action":"dance"},"context":{"session_id":"s"}}"#,
        );
        assert_eq!(resp.status_code, 400);
        assert_eq!(body(&resp)["error"], "Unknown action: dance");
    }

    #[test]
    fn echo_counts_events() {
        let mut worker = Worker::new();
        let line = r#"{"id":1,"event":{"message":"hi"},"context":{"session_id":"s1"}}"#;
        let first = body(&run(&mut worker, line));
        let second = body(&run(&mut worker, line));
        assert_eq!(first["event_count"], 1);
        assert_eq!(second["event_count"], 2);
        assert_eq!(second["session_id"], "s1");
        assert_eq!(second["message"], "hi");
        assert_eq!(second["pid"], std::process::id());
    }

    #[test]
    fn stream_yields_one_token_per_word() {
        let req = parse_request(
            br#"{"id":1,"event":{"action":"stream","message":" a  b c ","delay_ms":99999},"context":{"session_id":"s"}}"#,
        )
        .expect("valid frame");
        let Outcome::Stream(stream) = Worker::new().handle(&req) else {
            panic!("stream did not stream");
        };
        let tokens: Vec<&str> = stream.chunks.iter().map(|c| c.token.as_str()).collect();
        assert_eq!(tokens, ["a", "b", "c"]);
        assert_eq!(stream.chunks[2].index, 2);
        assert_eq!(stream.chunks[0].turn, 1);
        assert_eq!(stream.delay, MAX_STREAM_DELAY);
    }

    #[test]
    fn stream_of_nothing_still_yields_a_chunk() {
        let req =
            parse_request(br#"{"id":1,"event":{"action":"stream"},"context":{"session_id":"s"}}"#)
                .expect("valid frame");
        let Outcome::Stream(stream) = Worker::new().handle(&req) else {
            panic!("stream did not stream");
        };
        assert_eq!(stream.chunks.len(), 1);
        assert_eq!(stream.chunks[0].token, "(empty)");
        assert_eq!(stream.delay, Duration::ZERO);
    }

    #[test]
    fn exec_reports_status_and_output() {
        let resp = run(
            &mut Worker::new(),
            r#"{"id":1,"event":{"action":"exec","command":"echo out; echo err >&2; exit 4"},"context":{"session_id":"s"}}"#,
        );
        let body = body(&resp);
        assert_eq!(body["status"], 4);
        assert_eq!(body["signal"], Value::Null);
        assert_eq!(body["stdout"], "out\n");
        assert_eq!(body["stderr"], "err\n");
    }

    #[test]
    fn exec_without_command_is_an_error() {
        let req =
            parse_request(br#"{"id":1,"event":{"action":"exec"},"context":{"session_id":"s"}}"#)
                .expect("valid frame");
        match Worker::new().handle(&req) {
            Outcome::Reply(Err(err)) => assert_eq!(err.kind, "BadEvent"),
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    #[test]
    fn whoami_reports_identity_namespaces_and_std_fds() {
        let resp = run(
            &mut Worker::new(),
            r#"{"id":1,"event":{"action":"whoami"},"context":{"session_id":"s"}}"#,
        );
        let body = body(&resp);
        assert_eq!(body["pid"], std::process::id());
        assert!(body["namespaces"]["user"]
            .as_str()
            .is_some_and(|ns| ns.starts_with("user:[")));
        let fds: Vec<i64> = body["open_fds"]
            .as_array()
            .expect("fd list")
            .iter()
            .filter_map(Value::as_i64)
            .collect();
        assert!(fds.contains(&0) && fds.contains(&1) && fds.contains(&2));
    }

    #[test]
    fn status_field_parses_proc_status() {
        let status = "Name:\tx\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n";
        assert_eq!(status_field(status, "CapEff"), Some("0000000000000000"));
        assert_eq!(status_field(status, "NoNewPrivs"), Some("1"));
        assert_eq!(status_field(status, "Missing"), None);
    }
}
