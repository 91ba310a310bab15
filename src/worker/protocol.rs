//! Frames between the supervisor and a worker: one JSON object per line.
//! The wire format is documented in `worker/README.md`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Supervisor → worker: one event to handle.
#[derive(Debug, Serialize)]
pub struct RequestFrame<'a> {
    pub id: u64,
    pub event: &'a serde_json::Value,
    pub context: RequestContext<'a>,
}

/// What a Lambda/AgentCore handler sees as its `context`.
#[derive(Debug, Serialize)]
pub struct RequestContext<'a> {
    pub session_id: &'a str,
    pub request_id: &'a str,
    /// Unix epoch milliseconds after which the supervisor stops waiting.
    pub deadline_ms: u64,
}

/// Worker → supervisor. Exactly one of `result` (possibly null), `error` and
/// `chunk` is meaningful; `stream_end` closes a run of chunks.
#[derive(Debug, Deserialize)]
pub struct ReplyFrame {
    pub id: Option<u64>,
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
    #[serde(default)]
    pub error: Option<HandlerFailure>,
    #[serde(default)]
    pub chunk: Option<Box<RawValue>>,
    #[serde(default)]
    pub stream_end: bool,
}

/// An exception raised by the handler, as the worker reports it.
#[derive(Debug, Deserialize)]
pub struct HandlerFailure {
    #[serde(rename = "type", default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub traceback: Option<Box<RawValue>>,
}

/// What one reply frame means for the event in flight.
#[derive(Debug)]
pub enum Reply {
    Result(Option<Box<RawValue>>),
    Error(HandlerFailure),
    Chunk(Box<RawValue>),
    StreamEnd,
}

impl ReplyFrame {
    pub fn into_reply(self) -> Reply {
        if let Some(error) = self.error {
            Reply::Error(error)
        } else if let Some(chunk) = self.chunk {
            Reply::Chunk(chunk)
        } else if self.stream_end {
            Reply::StreamEnd
        } else {
            Reply::Result(self.result)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_error_chunk_and_end_are_told_apart() {
        let parse = |line: &str| {
            serde_json::from_str::<ReplyFrame>(line)
                .unwrap()
                .into_reply()
        };
        assert!(matches!(
            parse(r#"{"id":1,"result":{"a":1}}"#),
            Reply::Result(Some(_))
        ));
        assert!(matches!(
            parse(r#"{"id":1,"result":null}"#),
            Reply::Result(None)
        ));
        assert!(matches!(
            parse(r#"{"id":1,"error":{"type":"E","message":"m"}}"#),
            Reply::Error(_)
        ));
        assert!(matches!(
            parse(r#"{"id":1,"chunk":"tok"}"#),
            Reply::Chunk(_)
        ));
        assert!(matches!(
            parse(r#"{"id":1,"result":null,"stream_end":true}"#),
            Reply::StreamEnd
        ));
    }

    #[test]
    fn request_frame_has_the_documented_shape() {
        let event = serde_json::json!({"session_id": "a", "action": "echo"});
        let frame = RequestFrame {
            id: 7,
            event: &event,
            context: RequestContext {
                session_id: "a",
                request_id: "r",
                deadline_ms: 5,
            },
        };
        let text = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            text,
            r#"{"id":7,"event":{"action":"echo","session_id":"a"},"context":{"session_id":"a","request_id":"r","deadline_ms":5}}"#
        );
    }
}
