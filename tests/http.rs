//! `sessionvisor serve` end to end: a real server process with real sandboxes
//! and workers, driven over loopback HTTP with reqwest (and, for the AWS
//! routes, with boto3 itself). Every route, every error, streaming,
//! disconnects, stop, shutdown, and the client subcommands.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdout, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};

const SESSION: &str = "x-amzn-bedrock-agentcore-runtime-session-id";
const REQUEST: &str = "x-amzn-bedrock-agentcore-runtime-request-id";
const ERROR_TYPE: &str = "x-amzn-errortype";
/// An ARN as boto3 puts it in the path: one percent-encoded segment.
const ENCODED_ARN: &str =
    "arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A123456789012%3Aruntime%2Fecho-a1B2c3D4e5";
/// Liveness bound for anything that waits on the server: generous on purpose.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `sessionvisor serve` on a free loopback port.
struct Server {
    child: Child,
    base: String,
    /// Kept open so the server never sees a closed stdout.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(mode: Mode, dir: &TestDir, extra: &[String]) -> Self {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend(extra.iter().map(String::as_str));
        let mut child = command(mode, dir, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sessionvisor serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the address");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve did not announce its address: {line:?}"))
            .to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Server {
            child,
            base,
            _stdout: stdout,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> ExitStatus {
        terminate(&self.child);
        self.child.wait().expect("wait for serve")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn terminate(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
}

/// Root when the tests run as root (as CI does), else rootless.
fn any_mode() -> Mode {
    if nix::unistd::geteuid().is_root() {
        Mode::Root
    } else {
        Mode::Rootless
    }
}

fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .expect("HTTP client")
}

fn native() -> Vec<String> {
    native_worker_args()
}

fn with(mut options: Vec<String>, worker: Vec<String>) -> Vec<String> {
    // Supervisor options go before `--` and the worker command.
    options.extend(worker);
    options
}

fn gated_handler() -> Vec<String> {
    vec![
        "--handler".into(),
        format!(
            "{}:handler",
            repo_path("tests/fixtures/gated_stream.py").display()
        ),
    ]
}

/// POST /invocations as session `session`.
fn invoke(server: &Server, session: &str, event: &Value) -> Response {
    client()
        .post(server.url("/invocations"))
        .header(SESSION, session)
        .json(event)
        .send()
        .expect("POST /invocations")
}

/// The `body` of a 200 `{"statusCode", "body"}` answer, parsed.
fn lambda_body(response: Response) -> Value {
    let status = response.status();
    let text = response.text().expect("body");
    assert_eq!(status, StatusCode::OK, "{text}");
    let result: Value = serde_json::from_str(&text).expect("JSON result");
    serde_json::from_str(result["body"].as_str().expect("a body string")).expect("JSON body")
}

fn json_of(response: Response) -> Value {
    let text = response.text().expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("ASCII header")
}

/// Reads server-sent events one at a time from a streaming response.
struct Events {
    reader: BufReader<Response>,
}

/// One event: its `event:` name (if any) and its data, parsed.
#[derive(Debug)]
struct Event {
    name: Option<String>,
    data: Value,
}

impl Events {
    fn new(response: Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), "text/event-stream");
        Events {
            reader: BufReader::new(response),
        }
    }

    /// The next event, or `None` at the end of the stream.
    fn next(&mut self) -> Option<Event> {
        let mut name = None;
        let mut data = None;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).expect("read the stream") == 0 {
                assert!(data.is_none(), "the stream ended inside an event");
                return None;
            }
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                let data = data.expect("an event without data");
                return Some(Event { name, data });
            }
            if let Some(value) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(value).expect("JSON data"));
            } else if let Some(value) = line.strip_prefix("event: ") {
                name = Some(value.to_string());
            } else {
                panic!("unexpected stream line {line:?}");
            }
        }
    }

    fn rest(mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.next()).collect()
    }
}

/// Where a gated handler waits: the test lets it go by sending one byte.
struct Gate {
    listener: TcpListener,
}

impl Gate {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gate");
        listener.set_nonblocking(true).expect("nonblocking gate");
        Gate { listener }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().expect("gate address").port()
    }

    /// Waits for the handler to arrive at the gate, then lets it through.
    fn release(&self) {
        let start = Instant::now();
        let mut stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        start.elapsed() < PATIENCE,
                        "the handler never reached the gate"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept at the gate: {e}"),
            }
        };
        stream.set_nonblocking(false).expect("blocking stream");
        let mut hello = [0u8; 8];
        stream.read_exact(&mut hello).expect("the handler's hello");
        assert_eq!(&hello, b"waiting\n");
        stream.write_all(b"!").expect("release the handler");
    }
}

fn ping(server: &Server) -> Value {
    json_of(client().get(server.url("/ping")).send().expect("GET /ping"))
}

fn sessions(server: &Server) -> Vec<Value> {
    let list = json_of(
        client()
            .get(server.url("/sessions"))
            .send()
            .expect("GET /sessions"),
    );
    list["sessions"].as_array().expect("a session list").clone()
}

fn assert_clean_exit(server: Server, dir: &TestDir) {
    let status = server.stop();
    assert!(status.success(), "serve exited with {status}");
    assert!(
        dir.leftovers().is_empty(),
        "left on the host: {:?}",
        dir.leftovers()
    );
}

// ---------------------------------------------------------------------------
// Isolation over HTTP: the seed's A/B story.

fn ab_story(mode: Mode, worker: Vec<String>) {
    let dir = TestDir::new(mode);
    let server = Server::start(mode, &dir, &worker);
    let nonce = uuid::Uuid::new_v4().to_string();
    let written = lambda_body(invoke(
        &server,
        "A",
        &json!({"action": "write", "message": nonce}),
    ));
    assert_eq!(written["status"], "written");
    let b = lambda_body(invoke(&server, "B", &json!({"action": "read"})));
    assert_eq!(b["content"], "FILE_NOT_FOUND", "B saw A's /tmp");
    let a = lambda_body(invoke(&server, "A", &json!({"action": "read"})));
    assert_eq!(a["content"], json!(nonce));

    let listed = sessions(&server);
    let ids: Vec<&str> = listed
        .iter()
        .filter_map(|s| s["session_id"].as_str())
        .collect();
    assert_eq!(ids, ["A", "B"]);
    assert_ne!(listed[0]["worker_pid"], listed[1]["worker_pid"]);
    assert_eq!(listed[0]["events"], 2);
    assert_clean_exit(server, &dir);
}

both_modes!(ab_isolation_over_http_native_worker, |mode| ab_story(
    mode,
    native()
));
both_modes!(ab_isolation_over_http_python_handler, |mode| ab_story(
    mode,
    python_worker_args()
));

both_modes!(conversations_stay_in_their_session_over_http, |mode| {
    let dir = TestDir::new(mode);
    let server = Server::start(mode, &dir, &python_worker_args());
    let say = |session: &str, message: &str| {
        let body = lambda_body(invoke(
            &server,
            session,
            &json!({"action": "echo", "message": message}),
        ));
        body["output"].as_str().expect("output").to_string()
    };
    say("A", "Hi, my name is Alice");
    say("B", "I am Bob");
    assert_eq!(say("B", "What is my name?"), "Your name is Bob.");
    assert_eq!(say("A", "What is my name?"), "Your name is Alice.");
    assert_clean_exit(server, &dir);
});

// ---------------------------------------------------------------------------
// POST /invocations and GET /ping

#[test]
fn invocations_echo_the_ids_and_name_a_generated_session() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let server = Server::start(mode, &dir, &native());

    let first = client()
        .post(server.url("/invocations"))
        .header("content-type", "application/json")
        .body(r#"{"action": "echo", "message": "hi"}"#)
        .send()
        .unwrap();
    assert_eq!(header(&first, "content-type"), "application/json");
    let session = header(&first, SESSION).to_string();
    assert_eq!(session.len(), 36, "a generated uuid: {session}");
    assert!(!header(&first, REQUEST).is_empty());
    assert_eq!(lambda_body(first)["event_count"], 1);

    let second = client()
        .post(server.url("/invocations"))
        .header(SESSION, &session)
        .header(REQUEST, "my-request-1")
        .body(r#"{"action": "echo"}"#)
        .send()
        .unwrap();
    assert_eq!(header(&second, SESSION), session);
    assert_eq!(header(&second, REQUEST), "my-request-1");
    let body = lambda_body(second);
    assert_eq!(
        body["event_count"], 2,
        "the generated id named the same worker"
    );
    assert_eq!(body["session_id"], json!(session));
    assert_clean_exit(server, &dir);
}

/// A server whose session cap (2) and event size limit (4096 bytes) the error
/// tests can reach.
fn small_limits_server(mode: Mode, dir: &TestDir) -> Server {
    let options = vec![
        "--max-sessions".into(),
        "2".into(),
        "--max-event-bytes".into(),
        "4096".into(),
    ];
    Server::start(mode, dir, &with(options, native()))
}

#[test]
fn invocation_errors_are_json_with_their_kind_and_status() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let server = small_limits_server(mode, &dir);
    let post = |session: &str, body: String| {
        client()
            .post(server.url("/invocations"))
            .header(SESSION, session)
            .body(body)
            .send()
            .unwrap()
    };
    let error = |response: Response, status: StatusCode| {
        assert_eq!(response.status(), status);
        assert_eq!(header(&response, "content-type"), "application/json");
        assert!(response.headers().get(ERROR_TYPE).is_none());
        json_of(response)["error"].clone()
    };

    let bad = error(post("a", "{not json".into()), StatusCode::BAD_REQUEST);
    assert_eq!(bad["kind"], "bad_request");
    assert!(bad["message"]
        .as_str()
        .unwrap()
        .starts_with("the payload is not JSON"));
    let slash = error(post("a/b", "{}".into()), StatusCode::BAD_REQUEST);
    assert_eq!(slash["message"], "session_id contains '/'");
    error(post(&"x".repeat(257), "{}".into()), StatusCode::BAD_REQUEST);

    let big = json!({"message": "m".repeat(5000)}).to_string();
    let too_large = error(post("a", big), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large["kind"], "payload_too_large");

    let handler = error(
        post("a", json!({"action": "exec"}).to_string()),
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    assert_eq!(handler["kind"], "handler_error");
    assert_eq!(handler["type"], "BadEvent");

    let crashed = error(
        post("a", json!({"action": "crash"}).to_string()),
        StatusCode::BAD_GATEWAY,
    );
    assert_eq!(crashed["kind"], "worker_exited");
    let after = lambda_body(post("a", json!({"action": "echo"}).to_string()));
    assert_eq!(after["event_count"], 1, "a new worker after the crash");

    lambda_body(post("b", "{}".into()));
    let throttled = error(post("c", "{}".into()), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled["kind"], "too_many_sessions");

    let missing = client().get(server.url("/no/such/route")).send().unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(missing)["error"]["kind"], "not_found");
    let wrong_method = client().get(server.url("/invocations")).send().unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_clean_exit(server, &dir);
}

#[test]
fn ping_is_busy_exactly_while_events_are_in_flight_and_sessions_run_in_parallel() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let server = Server::start(mode, &dir, &gated_handler());

    let idle = ping(&server);
    assert_eq!(idle["status"], "Healthy");
    assert!(idle["time_of_last_update"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(
        ping(&server),
        idle,
        "an unchanged status keeps its time of last update"
    );

    let gate = Gate::new();
    let mut a = Events::new(invoke(&server, "A", &json!({"gate_port": gate.port()})));
    assert_eq!(a.next().unwrap().data["step"], "first");
    let busy = ping(&server);
    assert_eq!(busy["status"], "HealthyBusy");
    assert!(busy["time_of_last_update"].as_u64() >= idle["time_of_last_update"].as_u64());
    assert_eq!(ping(&server), busy);

    // A is blocked in its handler; B is served meanwhile.
    let b = Events::new(invoke(&server, "B", &json!({}))).rest();
    let steps: Vec<&Value> = b.iter().map(|e| &e.data["step"]).collect();
    assert_eq!(steps, ["first", "released"]);
    assert_eq!(b[0].data["session_id"], "B");
    assert_eq!(ping(&server)["status"], "HealthyBusy", "A is still running");

    gate.release();
    let rest = a.rest();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].data["step"], "released");
    assert_eq!(
        ping(&server)["status"],
        "Healthy",
        "nothing in flight once A's stream ended"
    );
    assert_clean_exit(server, &dir);
}

// ---------------------------------------------------------------------------
// Streaming

#[test]
fn a_generator_handler_streams_each_chunk_before_it_finishes() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let server = Server::start(mode, &dir, &gated_handler());
    let gate = Gate::new();
    let started = Instant::now();
    let response = invoke(&server, "s", &json!({"gate_port": gate.port()}));
    assert_eq!(header(&response, SESSION), "s");
    let mut events = Events::new(response);
    // The handler is now blocked until the gate opens, which happens only
    // after this chunk has arrived: a buffering server would never get here.
    let first = events.next().expect("the first chunk");
    let first_at = started.elapsed();
    assert_eq!(first.data, json!({"step": "first", "session_id": "s"}));
    gate.release();
    let rest = events.rest();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].data["step"], "released");
    println!(
        "first chunk after {first_at:?} (worker start included), stream end after {:?}",
        started.elapsed()
    );
    assert_clean_exit(server, &dir);
}

#[test]
fn the_native_stream_action_is_server_sent_events_on_both_contracts() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let server = Server::start(mode, &dir, &native());
    let event = json!({"action": "stream", "message": "one two three"});

    let response = invoke(&server, "s", &event);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    assert_eq!(
        response.text().unwrap(),
        "data: {\"index\":0,\"token\":\"one\",\"turn\":1}\n\n\
         data: {\"index\":1,\"token\":\"two\",\"turn\":1}\n\n\
         data: {\"index\":2,\"token\":\"three\",\"turn\":1}\n\n"
    );

    let session = format!("aws-{}", uuid::Uuid::new_v4());
    let aws = client()
        .post(server.url(&format!("/runtimes/{ENCODED_ARN}/invocations")))
        .header(SESSION, &session)
        .body(event.to_string())
        .send()
        .unwrap();
    let chunks = Events::new(aws).rest();
    let tokens: Vec<&Value> = chunks.iter().map(|e| &e.data["token"]).collect();
    assert_eq!(tokens, ["one", "two", "three"]);
    assert_clean_exit(server, &dir);
}

#[test]
fn a_client_leaving_mid_stream_does_not_wedge_its_session() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let server = Server::start(mode, &dir, &native());
    let words: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
    let long = json!({"action": "stream", "message": words.join(" "), "delay_ms": 20});

    let mut events = Events::new(invoke(&server, "s", &long));
    assert_eq!(events.next().unwrap().data["token"], "w0");
    drop(events); // hangs up with 39 chunks to go

    let after = lambda_body(invoke(&server, "s", &json!({"action": "echo"})));
    assert_eq!(after["event_count"], 2, "the same worker served on");
    let listed = sessions(&server);
    assert_eq!(listed[0]["instance"], 1);
    assert_eq!(listed[0]["state"], "idle");
    assert_clean_exit(server, &dir);
}

#[test]
fn stopping_a_session_ends_its_open_stream() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let server = Server::start(mode, &dir, &gated_handler());
    let gate = Gate::new();
    let session = format!("stream-{}", uuid::Uuid::new_v4());
    let mut events = Events::new(invoke(
        &server,
        &session,
        &json!({"gate_port": gate.port()}),
    ));
    assert_eq!(events.next().unwrap().data["step"], "first");

    let stop = client()
        .post(server.url(&format!("/runtimes/{ENCODED_ARN}/stopruntimesession")))
        .header(SESSION, &session)
        .body(json!({"clientToken": uuid::Uuid::new_v4().to_string()}).to_string())
        .send()
        .unwrap();
    assert_eq!(stop.status(), StatusCode::OK);
    assert_eq!(header(&stop, SESSION), session);

    let rest = events.rest();
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0].name.as_deref(), Some("error"));
    assert_eq!(rest[0].data["kind"], "session_stopped");
    assert!(sessions(&server).is_empty());
    assert_clean_exit(server, &dir);
}

// ---------------------------------------------------------------------------
// The AWS data plane

#[test]
fn the_aws_routes_follow_the_service_model() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let server = small_limits_server(mode, &dir);
    let session = |name: &str| format!("{name}-{}", uuid::Uuid::new_v4());
    let invoke_aws = |path: &str, session: &str, body: String| {
        // Like boto3: no Content-Type.
        client()
            .post(server.url(path))
            .header(SESSION, session)
            .body(body)
            .send()
            .unwrap()
    };
    let invocations = format!("/runtimes/{ENCODED_ARN}/invocations?qualifier=DEFAULT");
    let stop_path = format!("/runtimes/{ENCODED_ARN}/stopruntimesession");
    let aws_error = |response: Response, status: StatusCode, name: &str| {
        assert_eq!(response.status(), status);
        assert_eq!(header(&response, ERROR_TYPE), name);
        let body = json_of(response);
        assert_eq!(body["__type"], name);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        body
    };

    let a = session("a");
    let ok = invoke_aws(&invocations, &a, json!({"action": "echo"}).to_string());
    assert_eq!(header(&ok, "content-type"), "application/json");
    assert_eq!(header(&ok, SESSION), a);
    assert_eq!(header(&ok, "x-amzn-requestid"), header(&ok, REQUEST));
    assert_eq!(lambda_body(ok)["session_id"], json!(a));
    // An ARN sent with its slashes unencoded names the same operation.
    let raw_arn = "/runtimes/arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/echo-a1B2c3D4e5/invocations";
    let raw = invoke_aws(raw_arn, &a, json!({"action": "echo"}).to_string());
    assert_eq!(lambda_body(raw)["event_count"], 2);

    let short = aws_error(
        invoke_aws(&invocations, "too-short", "{}".into()),
        StatusCode::BAD_REQUEST,
        "ValidationException",
    );
    assert_eq!(short["reason"], "FieldValidationFailed");
    let unparsable = aws_error(
        invoke_aws(&invocations, &a, "not json".into()),
        StatusCode::BAD_REQUEST,
        "ValidationException",
    );
    assert_eq!(unparsable["reason"], "CannotParse");
    aws_error(
        invoke_aws(&invocations, &a, json!({"m": "m".repeat(5000)}).to_string()),
        StatusCode::BAD_REQUEST,
        "ValidationException",
    );
    let failed = aws_error(
        invoke_aws(&invocations, &a, json!({"action": "exec"}).to_string()),
        StatusCode::FAILED_DEPENDENCY,
        "RuntimeClientError",
    );
    assert!(failed["message"]
        .as_str()
        .unwrap()
        .starts_with("BadEvent: "));
    aws_error(
        invoke_aws(&invocations, &a, json!({"action": "crash"}).to_string()),
        StatusCode::FAILED_DEPENDENCY,
        "RuntimeClientError",
    );
    let replaced = invoke_aws(&invocations, &a, json!({"action": "echo"}).to_string());
    assert_eq!(lambda_body(replaced)["event_count"], 1, "a new worker");
    lambda_body(invoke_aws(&invocations, &session("b"), "{}".into()));
    aws_error(
        invoke_aws(&invocations, &session("c"), "{}".into()),
        StatusCode::TOO_MANY_REQUESTS,
        "ThrottlingException",
    );

    let stopped = invoke_aws(&stop_path, &a, r#"{"clientToken": "t1"}"#.into());
    assert_eq!(stopped.status(), StatusCode::OK);
    assert_eq!(header(&stopped, SESSION), a);
    aws_error(
        invoke_aws(&stop_path, &a, r#"{"clientToken": "t2"}"#.into()),
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
    );
    let no_header = client().post(server.url(&stop_path)).send().unwrap();
    aws_error(no_header, StatusCode::BAD_REQUEST, "ValidationException");
    let unknown = invoke_aws(&format!("/runtimes/{ENCODED_ARN}/dance"), &a, "{}".into());
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_clean_exit(server, &dir);
}

#[test]
fn boto3_invokes_streams_and_stops_sessions() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .status()
        .expect("run python3");
    assert!(
        probe.success(),
        "boto3 is missing: `python3 -m pip install boto3` (CI's .ci/run installs it)"
    );
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let options = vec!["--max-sessions".into(), "3".into()];
    let server = Server::start(mode, &dir, &with(options, native()));
    let output = std::process::Command::new("python3")
        .arg(repo_path("tests/boto3_client.py"))
        .arg(&server.base)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/boto3_client.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "boto3 client failed:\n{stderr}");
    assert!(stdout.contains("boto3 ok"), "{stdout}");
    assert_clean_exit(server, &dir);
}

// ---------------------------------------------------------------------------
// Management

#[test]
fn sessions_are_listed_and_stopped_by_id() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let server = Server::start(mode, &dir, &native());
    assert!(sessions(&server).is_empty());
    lambda_body(invoke(&server, "s 1", &json!({"action": "echo"})));
    lambda_body(invoke(&server, "s 1", &json!({"action": "echo"})));

    let listed = sessions(&server);
    assert_eq!(listed.len(), 1);
    let s = &listed[0];
    assert_eq!(s["session_id"], "s 1");
    assert_eq!(s["state"], "idle");
    assert_eq!(s["events"], 2);
    assert_eq!(s["instance"], 1);
    let pid = s["worker_pid"].as_u64().expect("a worker pid") as u32;
    assert!(alive(pid));
    assert!(s["started_at"].as_str().is_some());
    assert!(s["last_activity"].as_str().is_some());

    let stopped = client()
        .delete(server.url("/sessions/s%201"))
        .send()
        .unwrap();
    assert_eq!(stopped.status(), StatusCode::OK);
    assert_eq!(
        json_of(stopped),
        json!({"session_id": "s 1", "stopped": true})
    );
    assert!(!alive(pid), "the worker is gone once stop answers");
    assert!(sessions(&server).is_empty());
    let again = client()
        .delete(server.url("/sessions/s%201"))
        .send()
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(again)["error"]["kind"], "session_not_found");

    let fresh = invoke(&server, "s 1", &json!({"action": "echo"}));
    assert_eq!(
        fresh.headers()["x-sessionvisor-new-instance"],
        "2; previous-ended=stopped",
        "the answer says it came from a new worker instance"
    );
    assert_eq!(
        lambda_body(fresh)["event_count"],
        1,
        "a stopped id gets a new worker"
    );
    assert_clean_exit(server, &dir);
}

// ---------------------------------------------------------------------------
// Shutdown

#[test]
fn sigterm_lets_the_event_in_flight_finish() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let server = Server::start(mode, &dir, &native());
    let url = server.url("/invocations");
    let slow = std::thread::spawn(move || {
        client()
            .post(url)
            .header(SESSION, "slow")
            .body(json!({"action": "sleep", "ms": 1500, "message": "done"}).to_string())
            .send()
            .map(lambda_body)
    });
    assert!(
        eventually(PATIENCE, || ping(&server)["status"] == "HealthyBusy"),
        "the event never started"
    );
    terminate(&server.child);
    let body = slow
        .join()
        .expect("client thread")
        .expect("the answer arrived");
    assert_eq!(body["message"], "done");
    assert_clean_exit(server, &dir);
}

#[test]
fn sigterm_ends_sessions_still_busy_after_the_grace_period() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let options = vec!["--shutdown-grace".into(), "300ms".into()];
    let server = Server::start(mode, &dir, &with(options, gated_handler()));
    let gate = Gate::new();
    let mut events = Events::new(invoke(&server, "stuck", &json!({"gate_port": gate.port()})));
    assert_eq!(events.next().unwrap().data["step"], "first");
    terminate(&server.child);
    // Never released: the grace period ends the session and its stream.
    let rest = events.rest();
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0].data["kind"], "session_stopped");
    assert_clean_exit(server, &dir);
}

// ---------------------------------------------------------------------------
// The client subcommands

fn cli(server_url: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = std::process::Command::new(sessionvisor_bin())
        .args(args)
        .env("SESSIONVISOR_URL", server_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("client output");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn invoke_sessions_and_stop_drive_a_running_server() {
    let mode = any_mode();
    let dir = TestDir::new(mode);
    let server = Server::start(mode, &dir, &native());
    let url = server.base.clone();

    let (ok, out, err) = cli(
        &url,
        &[
            "invoke",
            "--session",
            "c1",
            r#"{"action":"write","message":"hello"}"#,
        ],
        "",
    );
    assert!(ok, "{err}");
    let result: Value = serde_json::from_str(out.trim()).expect("one JSON result");
    assert_eq!(result["statusCode"], 200);

    let (ok, out, err) = cli(
        &url,
        &["invoke", "--url", &url, "--session", "c1", "-"],
        r#"{"action":"read"}"#,
    );
    assert!(ok, "{err}");
    let result: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(result["body"].as_str().unwrap().contains("hello"));

    let (ok, out, err) = cli(
        &url,
        &[
            "invoke",
            "--session",
            "c1",
            r#"{"action":"stream","message":"a b"}"#,
        ],
        "",
    );
    assert!(ok, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"index": 0, "token": "a", "turn": 3}),
            json!({"index": 1, "token": "b", "turn": 3})
        ]
    );

    let (ok, _, err) = cli(&url, &["invoke", "{}"], "");
    assert!(ok, "{err}");
    assert!(
        err.starts_with("session: "),
        "a generated id is named: {err}"
    );

    let (ok, _, err) = cli(
        &url,
        &["invoke", "--session", "c1", r#"{"action":"exec"}"#],
        "",
    );
    assert!(!ok);
    assert!(err.contains("handler_error: BadEvent"), "{err}");
    let (ok, _, err) = cli(&url, &["invoke", "--session", "c1", "{oops"], "");
    assert!(!ok);
    assert!(err.contains("the event is not JSON"), "{err}");

    let (ok, out, err) = cli(&url, &["sessions"], "");
    assert!(ok, "{err}");
    let table: Vec<&str> = out.lines().collect();
    assert!(table[0].starts_with("SESSION"), "{out}");
    assert!(table.iter().any(|row| row.starts_with("c1 ")), "{out}");
    let (ok, out, _) = cli(&url, &["sessions", "--json"], "");
    assert!(ok);
    let listed: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);

    let (ok, out, err) = cli(&url, &["stop", "--session", "c1"], "");
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "stopped c1");
    let (ok, _, err) = cli(&url, &["stop", "--session", "c1"], "");
    assert!(!ok);
    assert!(err.contains("no session \"c1\" is running"), "{err}");
    assert_clean_exit(server, &dir);

    // Nothing listens there any more.
    let (ok, _, err) = cli(&url, &["sessions"], "");
    assert!(!ok);
    assert!(err.contains("cannot reach"), "{err}");
}
