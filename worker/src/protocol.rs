//! Wire format: one JSON object per line in each direction.
//!
//! Requests are parsed straight into borrowed structs so that the hot path
//! (echo at tens of thousands of events per second) does not build a
//! `serde_json::Value` tree or copy strings that need no unescaping.
//! Responses are serialized from structs for the same reason, and so that the
//! key order on the wire is the order declared here.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

/// One request frame: `{"id", "event", "context"}`. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub struct Request<'a> {
    pub id: u64,
    #[serde(borrow)]
    pub event: Event<'a>,
    #[serde(borrow)]
    pub context: Context<'a>,
}

/// The fields of the event that some action reads. The event may carry
/// anything else; a field read here but of the wrong JSON type makes the
/// whole line a bad frame, which is reported with the request's id.
#[derive(Debug, Deserialize)]
pub struct Event<'a> {
    #[serde(borrow, default = "default_action")]
    pub action: Cow<'a, str>,
    #[serde(borrow, default)]
    pub message: Cow<'a, str>,
    /// Shell command for `exec`.
    #[serde(default)]
    pub command: Option<String>,
    /// Milliseconds for `sleep`.
    #[serde(default)]
    pub ms: Option<u64>,
    /// Exit code for `crash`.
    #[serde(default)]
    pub code: Option<i32>,
    /// Pause before each chunk of `stream`, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

fn default_action<'a>() -> Cow<'a, str> {
    Cow::Borrowed("echo")
}

/// Per-request context set by the supervisor. Only the session id is used:
/// the deadline is enforced by the supervisor, which kills a late worker.
#[derive(Debug, Deserialize)]
pub struct Context<'a> {
    #[serde(borrow)]
    pub session_id: Cow<'a, str>,
}

/// A line that could not be taken as a request.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFrame {
    /// The request id, when the line was JSON with a numeric `id`.
    pub id: Option<u64>,
    pub message: String,
}

/// Used only after a failed parse, to answer with the right id if possible.
#[derive(Deserialize)]
struct IdProbe {
    #[serde(default)]
    id: Option<u64>,
}

/// Parses one line (trailing newline allowed) into a request.
pub fn parse_request(line: &[u8]) -> Result<Request<'_>, BadFrame> {
    // Without the newline, error positions read "line 1", as the peer sent it.
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice(line).map_err(|err| BadFrame {
        id: serde_json::from_slice::<IdProbe>(line)
            .ok()
            .and_then(|probe| probe.id),
        message: format!("invalid request frame: {err}"),
    })
}

/// The result every action returns on success: the AWS Lambda proxy shape,
/// with `body` itself a JSON document in a string.
#[derive(Debug, Serialize)]
pub struct LambdaResponse {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    pub body: String,
}

#[derive(Serialize)]
struct ResultFrame<'a, T> {
    id: u64,
    result: &'a T,
}

#[derive(Serialize)]
struct ChunkFrame<'a, T> {
    id: u64,
    chunk: &'a T,
}

#[derive(Serialize)]
struct StreamEndFrame {
    id: u64,
    result: Option<()>,
    stream_end: bool,
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    id: Option<u64>,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
    /// Always null: a Rust worker has no traceback to give, but the key keeps
    /// the shape identical to other workers' error frames.
    traceback: Option<&'a str>,
}

/// Writes `{"id", "result"}` as one line and flushes it.
pub fn write_result<W: Write, T: Serialize>(out: &mut W, id: u64, result: &T) -> io::Result<()> {
    write_frame(out, &ResultFrame { id, result })
}

/// Writes `{"id", "chunk"}`, one item of a streamed response, as one line
/// and flushes it, so the client can see it before the stream ends.
pub fn write_chunk<W: Write, T: Serialize>(out: &mut W, id: u64, chunk: &T) -> io::Result<()> {
    write_frame(out, &ChunkFrame { id, chunk })
}

/// Writes `{"id", "result": null, "stream_end": true}`, which ends a stream.
pub fn write_stream_end<W: Write>(out: &mut W, id: u64) -> io::Result<()> {
    write_frame(
        out,
        &StreamEndFrame {
            id,
            result: None,
            stream_end: true,
        },
    )
}

/// Writes `{"id", "error": {"type", "message", "traceback"}}` as one line and
/// flushes it.
pub fn write_error<W: Write>(
    out: &mut W,
    id: Option<u64>,
    kind: &str,
    message: &str,
) -> io::Result<()> {
    let frame = ErrorFrame {
        id,
        error: ErrorDetail {
            kind,
            message,
            traceback: None,
        },
    };
    write_frame(out, &frame)
}

/// Flushing after every frame matters: the supervisor waits for this line
/// before it sends the next request to the session.
fn write_frame<W: Write, T: Serialize>(out: &mut W, frame: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, frame)?;
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn parses_a_full_frame_and_ignores_unknown_fields() {
        let line = br#"{"id": 7, "extra": 1, "event": {"action": "write", "message": "hi", "session_id": "s", "x": [1]}, "context": {"session_id": "abc", "request_id": "r", "deadline_ms": 1700000000000}}
"#;
        let req = parse_request(line).expect("valid frame");
        assert_eq!(req.id, 7);
        assert_eq!(req.event.action, "write");
        assert_eq!(req.event.message, "hi");
        assert_eq!(req.context.session_id, "abc");
    }

    #[test]
    fn event_fields_have_defaults() {
        let req = parse_request(br#"{"id": 1, "event": {}, "context": {"session_id": "s"}}"#)
            .expect("valid frame");
        assert_eq!(req.event.action, "echo");
        assert_eq!(req.event.message, "");
        assert_eq!(req.event.command, None);
    }

    #[test]
    fn bad_json_has_no_id() {
        let bad = parse_request(b"not json\n").expect_err("bad frame");
        assert_eq!(bad.id, None);
        assert!(bad.message.starts_with("invalid request frame"));
    }

    #[test]
    fn bad_frame_keeps_a_recoverable_id() {
        let bad = parse_request(br#"{"id": 42, "event": {"action": 5}}"#).expect_err("bad frame");
        assert_eq!(bad.id, Some(42));
    }

    #[test]
    fn error_frame_shape() {
        let mut out = Vec::new();
        write_error(&mut out, None, "BadFrame", "nope").expect("write");
        assert_eq!(out.last(), Some(&b'\n'));
        let frame: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(
            frame,
            json!({"id": null, "error": {"type": "BadFrame", "message": "nope", "traceback": null}})
        );
    }

    #[test]
    fn chunk_and_stream_end_frame_shapes() {
        let mut out = Vec::new();
        write_chunk(&mut out, 3, &json!({"token": "a"})).expect("write");
        write_stream_end(&mut out, 3).expect("write");
        let frames: Vec<Value> = out
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).expect("json"))
            .collect();
        assert_eq!(
            frames,
            vec![
                json!({"id": 3, "chunk": {"token": "a"}}),
                json!({"id": 3, "result": null, "stream_end": true}),
            ]
        );
    }

    #[test]
    fn result_frame_shape() {
        let mut out = Vec::new();
        let resp = LambdaResponse {
            status_code: 200,
            body: "{}".into(),
        };
        write_result(&mut out, 9, &resp).expect("write");
        let frame: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(
            frame,
            json!({"id": 9, "result": {"statusCode": 200, "body": "{}"}})
        );
    }
}
