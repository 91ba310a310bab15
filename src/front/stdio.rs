//! `sessionvisor run`: events as JSON lines on stdin, one result line per event
//! on stdout, tagged with the event's 1-based input line number (`seq`).
//!
//! A line whose only key is `"$sessionvisor"` is a control line (stop, list);
//! events always carry `session_id`, so the two can never be confused.

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};

use super::validate_session_id;
use crate::error::{ErrorKind, EventError};
use crate::lines::{read_bounded_line, LineRead};
use crate::registry::Registry;
use crate::session::{EndReason, Outcome};

/// Events read ahead of their results; bounds memory when input outruns workers.
const MAX_IN_FLIGHT: usize = 4096;
/// Chunks buffered per streaming event before the worker is made to wait.
const CHUNK_BUFFER: usize = 64;
/// The key that marks a control line.
pub const CONTROL_KEY: &str = "$sessionvisor";

/// One line of `run` output for an event.
#[derive(Serialize)]
struct ResultLine<'a> {
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    streamed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chunks: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_instance: Option<NewInstance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a EventError>,
}

/// Tells a client that its session id got a fresh worker (and an empty /tmp),
/// as AgentCore provisions a new microVM for a stopped or expired id.
#[derive(Serialize)]
struct NewInstance {
    instance: u32,
    previous_ended: EndReason,
}

fn render(seq: u64, session_id: Option<&str>, outcome: &Outcome) -> String {
    let null = RawValue::from_string("null".into()).ok();
    let line = match outcome {
        Ok(delivered) => {
            let response = &delivered.response;
            let streamed = response.streamed;
            ResultLine {
                seq,
                session_id,
                ok: true,
                response: if streamed {
                    None
                } else {
                    response.result.as_deref().or(null.as_deref())
                },
                streamed: streamed.then_some(true),
                chunks: streamed.then_some(response.chunks_forwarded),
                new_instance: delivered.replaced.map(|previous_ended| NewInstance {
                    instance: delivered.instance,
                    previous_ended,
                }),
                error: None,
            }
        }
        Err(error) => ResultLine {
            seq,
            session_id,
            ok: false,
            response: None,
            streamed: None,
            chunks: None,
            new_instance: None,
            error: Some(error),
        },
    };
    to_line(&line, seq)
}

fn to_line(value: &impl Serialize, seq: u64) -> String {
    let mut text = serde_json::to_string(value).unwrap_or_else(|e| {
        format!(r#"{{"seq":{seq},"ok":false,"error":{{"kind":"bad_request","message":"cannot encode result: {e}"}}}}"#)
    });
    text.push('\n');
    text
}

/// A parsed input line.
enum Input {
    Event { session_id: String, event: Value },
    Stop { session_id: String },
    List,
}

/// Parses one line, or says why it is rejected before reaching any session.
fn parse_line(line: &[u8]) -> Result<Input, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(map) = &value else {
        return Err("an event must be a JSON object".into());
    };
    if map.len() == 1 {
        if let Some(control) = map.get(CONTROL_KEY) {
            return parse_control(control);
        }
    }
    let session_id = match map.get("session_id") {
        None => return Err("missing session_id".into()),
        Some(Value::String(id)) => id.clone(),
        Some(_) => return Err("session_id must be a string".into()),
    };
    // Only a validated id is echoed back: a bad one may be huge or carry escapes.
    validate_session_id(&session_id)?;
    Ok(Input::Event {
        session_id,
        event: value,
    })
}

fn parse_control(control: &Value) -> Result<Input, String> {
    let op = control.get("op").and_then(Value::as_str);
    match op {
        Some("list") => Ok(Input::List),
        Some("stop") => {
            let session_id = control
                .get("session_id")
                .and_then(Value::as_str)
                .ok_or("a stop control line needs a string session_id")?;
            validate_session_id(session_id)?;
            Ok(Input::Stop {
                session_id: session_id.to_string(),
            })
        }
        _ => Err(format!(
            "unknown control line; expected {{\"{CONTROL_KEY}\": {{\"op\": \"stop\", \"session_id\": ..}}}} \
             or {{\"{CONTROL_KEY}\": {{\"op\": \"list\"}}}}"
        )),
    }
}

/// Runs the stdio front until `input` ends, then shuts the registry down.
///
/// When `shutdown` resolves (SIGTERM, SIGINT), input stops being read; events
/// in flight get `grace` to finish, then their sessions are stopped.
pub async fn serve<R, W>(
    registry: Registry,
    mut input: R,
    output: W,
    max_event_bytes: usize,
    shutdown: impl std::future::Future<Output = ()>,
    grace: std::time::Duration,
) -> anyhow::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    tokio::pin!(shutdown);
    let mut interrupted = false;
    let registry = Arc::new(registry);
    let (lines_out, lines_in) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(write_lines(lines_in, output));
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut pending = tokio::task::JoinSet::new();
    let mut line = Vec::with_capacity(1024);
    let mut seq: u64 = 0;

    loop {
        let read = tokio::select! {
            biased;
            () = &mut shutdown => {
                interrupted = true;
                break;
            }
            read = read_bounded_line(&mut input, &mut line, max_event_bytes) => read?,
        };
        seq += 1;
        let reject = |kind: ErrorKind, message: String| {
            let outcome: Outcome = Err(EventError::new(kind, message));
            let _ = lines_out.send(render(seq, None, &outcome));
        };
        match read {
            LineRead::Eof => break,
            LineRead::TooLong(size) => {
                reject(
                    ErrorKind::PayloadTooLarge,
                    format!("the event is {size} bytes; --max-event-bytes is {max_event_bytes}"),
                );
                continue;
            }
            LineRead::Line => {}
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            reject(ErrorKind::BadRequest, "empty line".into());
            continue;
        }
        let permit = Arc::clone(&in_flight).acquire_owned().await?;
        let lines_out = lines_out.clone();
        match parse_line(&line) {
            Err(reason) => reject(ErrorKind::BadRequest, reason),
            Ok(Input::List) => {
                let sessions = registry.list();
                let _ = lines_out.send(to_line(
                    &json!({"seq": seq, "ok": true, "control": "list", "sessions": sessions}),
                    seq,
                ));
            }
            Ok(Input::Stop { session_id }) => {
                let queued = registry.queue_stop(&session_id);
                pending.spawn(async move {
                    let stopped = match queued {
                        Ok(done) => done.await.map_err(|_| "the session ended during the stop".to_string()),
                        Err(error) => Err(error.to_string()),
                    };
                    let line = match stopped {
                        Ok(()) => json!({"seq": seq, "ok": true, "control": "stop", "session_id": session_id}),
                        Err(message) => json!({"seq": seq, "ok": false, "control": "stop",
                            "error": {"kind": "session_not_found", "message": message}}),
                    };
                    let _ = lines_out.send(to_line(&line, seq));
                    drop(permit);
                });
            }
            Ok(Input::Event { session_id, event }) => {
                let (chunk_sink, mut chunks) = mpsc::channel::<Box<RawValue>>(CHUNK_BUFFER);
                let outcome = registry.dispatch(&session_id, event, Some(chunk_sink));
                pending.spawn(async move {
                    // Chunks go out as their own lines, with the event's seq, as they arrive.
                    while let Some(chunk) = chunks.recv().await {
                        let line = json!({"seq": seq, "session_id": session_id, "chunk": chunk});
                        let _ = lines_out.send(to_line(&line, seq));
                    }
                    let outcome = outcome.await.unwrap_or_else(|_| {
                        Err(EventError::new(
                            ErrorKind::ShuttingDown,
                            "the session ended before replying",
                        ))
                    });
                    let _ = lines_out.send(render(seq, Some(&session_id), &outcome));
                    drop(permit);
                });
            }
        }
        // Reap finished tasks so the set does not grow with the input.
        while pending.try_join_next().is_some() {}
    }

    // End of input: events in flight finish, unless a signal cuts that short.
    while !interrupted {
        tokio::select! {
            biased;
            () = &mut shutdown => interrupted = true,
            joined = pending.join_next() => if joined.is_none() { break },
        }
    }
    if interrupted {
        tracing::info!(grace = %humantime::format_duration(grace), "signal received: no more input; finishing events in flight");
        let drained = tokio::time::timeout(grace, async {
            while pending.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown grace period over; stopping the sessions still busy");
            registry.cancel_all();
        }
    }
    while pending.join_next().await.is_some() {}
    let registry = Arc::try_unwrap(registry)
        .map_err(|_| anyhow::anyhow!("the registry is still shared at shutdown"))?;
    let shutdown = registry.shutdown().await;
    drop(lines_out);
    writer.await??;
    shutdown.map_err(|e| anyhow::anyhow!("cleaning up the state directory: {e}"))
}

/// Writes result lines in the order they complete, flushing whenever no more are
/// ready so a client reading interactively sees each result at once.
async fn write_lines<W: AsyncWrite + Unpin>(
    mut lines: mpsc::UnboundedReceiver<String>,
    output: W,
) -> std::io::Result<()> {
    let mut output = tokio::io::BufWriter::new(output);
    while let Some(line) = lines.recv().await {
        output.write_all(line.as_bytes()).await?;
        while let Ok(line) = lines.try_recv() {
            output.write_all(line.as_bytes()).await?;
        }
        output.flush().await?;
    }
    output.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Delivered;
    use crate::worker::Response;

    fn reason(line: &str) -> String {
        match parse_line(line.as_bytes()) {
            Err(reason) => reason,
            Ok(_) => panic!("{line} was accepted"),
        }
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(reason("{").starts_with("invalid JSON"));
        assert_eq!(reason("[1]"), "an event must be a JSON object");
        assert_eq!(reason("{}"), "missing session_id");
        assert_eq!(
            reason(r#"{"session_id": 5}"#),
            "session_id must be a string"
        );
        assert_eq!(reason(r#"{"session_id": ""}"#), "session_id is empty");
        assert!(
            reason(r#"{"$sessionvisor": {"op": "reboot"}}"#).starts_with("unknown control line")
        );
        assert!(matches!(
            parse_line(br#"{"session_id": "a", "x": 1}"#),
            Ok(Input::Event { .. })
        ));
    }

    #[test]
    fn control_lines_cannot_be_mistaken_for_events() {
        assert!(matches!(
            parse_line(br#"{"$sessionvisor": {"op": "list"}}"#),
            Ok(Input::List)
        ));
        assert!(matches!(
            parse_line(br#"{"$sessionvisor": {"op": "stop", "session_id": "a"}}"#),
            Ok(Input::Stop { .. })
        ));
        // An event that happens to carry the key is still an event.
        assert!(matches!(
            parse_line(br#"{"session_id": "a", "$sessionvisor": {"op": "list"}}"#),
            Ok(Input::Event { .. })
        ));
    }

    #[test]
    fn result_lines_have_the_documented_shape() {
        let ok: Outcome = Ok(Delivered {
            response: Response {
                result: Some(RawValue::from_string(r#"{"a":1}"#.into()).unwrap()),
                ..Response::default()
            },
            instance: 1,
            replaced: None,
        });
        assert_eq!(
            render(3, Some("s"), &ok),
            "{\"seq\":3,\"session_id\":\"s\",\"ok\":true,\"response\":{\"a\":1}}\n"
        );
        let err: Outcome = Err(EventError::new(ErrorKind::BadRequest, "nope"));
        assert_eq!(
            render(4, None, &err),
            "{\"seq\":4,\"ok\":false,\"error\":{\"kind\":\"bad_request\",\"message\":\"nope\"}}\n"
        );
    }
}
