//! The error kinds a client can see. Each names one cause, so clients can act on
//! the kind without parsing the message.

use serde::Serialize;
use serde_json::value::RawValue;

/// Why an event got no result. The string forms are part of the public contract
/// (README, `run` output, HTTP bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input line or request itself is invalid; nothing was run.
    BadRequest,
    /// The handler raised or returned an error frame; the worker keeps serving.
    HandlerError,
    /// The worker exited or crashed in the middle of the event.
    WorkerExited,
    /// The worker wrote something that is not a protocol frame; it was killed.
    ProtocolError,
    /// The session's sandbox or worker could not be started.
    SpawnFailed,
    /// The worker did not reply within `--event-timeout`; it was killed.
    Timeout,
    /// The worker's reply exceeded `--max-response-bytes`; it was killed.
    ResponseTooLarge,
    /// The event exceeded `--max-event-bytes`; it was not read into memory.
    PayloadTooLarge,
    /// A new session would exceed `--max-sessions`.
    TooManySessions,
    /// The session was stopped while the event was queued or running.
    SessionStopped,
    /// A per-session limit (memory, processes, /tmp size, open files) was hit.
    ResourceExhausted,
    /// The supervisor is shutting down and takes no new events.
    ShuttingDown,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::HandlerError => "handler_error",
            ErrorKind::WorkerExited => "worker_exited",
            ErrorKind::ProtocolError => "protocol_error",
            ErrorKind::SpawnFailed => "spawn_failed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ResponseTooLarge => "response_too_large",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::TooManySessions => "too_many_sessions",
            ErrorKind::SessionStopped => "session_stopped",
            ErrorKind::ResourceExhausted => "resource_exhausted",
            ErrorKind::ShuttingDown => "shutting_down",
        }
    }
}

/// An error as reported to the client: a kind, a human message, and for handler
/// errors the handler's own type and traceback.
#[derive(Debug, Clone, Serialize)]
pub struct EventError {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceback: Option<Box<RawValue>>,
}

impl EventError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EventError {
            kind,
            message: message.into(),
            error_type: None,
            traceback: None,
        }
    }
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}
