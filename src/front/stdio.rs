//! `sessionvisor run`: events as JSON lines on stdin, one result line per event
//! on stdout, tagged with the event's 1-based input line number (`seq`).

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};

use super::validate_session_id;
use crate::error::{ErrorKind, EventError};
use crate::lines::{read_bounded_line, LineRead};
use crate::registry::Registry;
use crate::session::Outcome;

/// Events read ahead of their results; bounds memory when input outruns workers.
const MAX_IN_FLIGHT: usize = 4096;

/// One line of `run` output.
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
    chunks: Option<&'a [Box<RawValue>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a EventError>,
}

fn render(seq: u64, session_id: Option<&str>, outcome: &Outcome) -> String {
    let null = RawValue::from_string("null".into()).ok();
    let line = match outcome {
        Ok(response) => ResultLine {
            seq,
            session_id,
            ok: true,
            response: match &response.chunks {
                Some(_) => None,
                None => response.result.as_deref().or(null.as_deref()),
            },
            streamed: response.chunks.as_ref().map(|_| true),
            chunks: response.chunks.as_deref(),
            error: None,
        },
        Err(error) => ResultLine {
            seq,
            session_id,
            ok: false,
            response: None,
            streamed: None,
            chunks: None,
            error: Some(error),
        },
    };
    let mut text = serde_json::to_string(&line).unwrap_or_else(|e| {
        format!(r#"{{"seq":{seq},"ok":false,"error":{{"kind":"bad_request","message":"cannot encode result: {e}"}}}}"#)
    });
    text.push('\n');
    text
}

/// Why a line was rejected before reaching any session.
fn parse_event(line: &[u8]) -> Result<(String, serde_json::Value), (Option<String>, String)> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| (None, format!("invalid JSON: {e}")))?;
    let serde_json::Value::Object(map) = &value else {
        return Err((None, "an event must be a JSON object".into()));
    };
    let session_id = match map.get("session_id") {
        None => return Err((None, "missing session_id".into())),
        Some(serde_json::Value::String(id)) => id.clone(),
        Some(_) => return Err((None, "session_id must be a string".into())),
    };
    // Only echo back an id that passed validation: a bad id may be 100 MB or
    // carry terminal escapes.
    validate_session_id(&session_id).map_err(|reason| (None, reason))?;
    Ok((session_id, value))
}

/// Runs the stdio front until `input` ends, then shuts the registry down.
pub async fn serve<R, W>(
    registry: Registry,
    mut input: R,
    output: W,
    max_event_bytes: usize,
) -> anyhow::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (lines_out, lines_in) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(write_lines(lines_in, output));
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut line = Vec::with_capacity(1024);
    let mut seq: u64 = 0;

    loop {
        let read = read_bounded_line(&mut input, &mut line, max_event_bytes).await?;
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
        let (session_id, event) = match parse_event(&line) {
            Ok(parsed) => parsed,
            Err((_, reason)) => {
                reject(ErrorKind::BadRequest, reason);
                continue;
            }
        };
        let permit = Arc::clone(&in_flight).acquire_owned().await?;
        let outcome = registry.dispatch(&session_id, event);
        let lines_out = lines_out.clone();
        tokio::spawn(async move {
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

    #[test]
    fn bad_lines_are_named() {
        let reason = |line: &str| parse_event(line.as_bytes()).unwrap_err().1;
        assert!(reason("{").starts_with("invalid JSON"));
        assert_eq!(reason("[1]"), "an event must be a JSON object");
        assert_eq!(reason("{}"), "missing session_id");
        assert_eq!(
            reason(r#"{"session_id": 5}"#),
            "session_id must be a string"
        );
        assert_eq!(reason(r#"{"session_id": ""}"#), "session_id is empty");
        assert!(parse_event(br#"{"session_id": "a", "x": 1}"#).is_ok());
    }

    #[test]
    fn result_lines_have_the_documented_shape() {
        let ok: Outcome = Ok(crate::worker::Response {
            result: Some(RawValue::from_string(r#"{"a":1}"#.into()).unwrap()),
            chunks: None,
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
