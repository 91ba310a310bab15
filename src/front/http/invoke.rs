//! One invocation over HTTP, shared by `/invocations` and the AWS route: hand
//! the event to its session, then answer with the result as JSON, or, as soon
//! as the first chunk arrives, with a `text/event-stream` of every chunk.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::errors::{ApiError, Dialect};
use super::health::Busy;
use super::ids::Ids;
use super::sse;
use super::Front;
use crate::error::{ErrorKind, EventError};
use crate::session::Outcome;

/// Chunks buffered per streaming event before the worker is made to wait for
/// the client: a slow reader slows its own session and nothing else.
const CHUNK_BUFFER: usize = 64;

/// The session's answer to one event, awaited on its own task so that the
/// event counts as in flight (for `/ping`) until the session is done with it,
/// even when the client has gone.
pub struct PendingOutcome(JoinHandle<Outcome>);

impl PendingOutcome {
    /// Awaits `reply` on a new task that holds `busy` until it resolves.
    pub fn spawn(reply: oneshot::Receiver<Outcome>, busy: Busy) -> Self {
        PendingOutcome(tokio::spawn(async move {
            let outcome = reply.await.unwrap_or_else(|_| {
                Err(EventError::new(
                    ErrorKind::ShuttingDown,
                    "the session ended before replying",
                ))
            });
            drop(busy);
            outcome
        }))
    }

    pub async fn wait(&mut self) -> Outcome {
        (&mut self.0).await.unwrap_or_else(|error| {
            Err(EventError::new(
                ErrorKind::ShuttingDown,
                format!("the invocation was abandoned: {error}"),
            ))
        })
    }
}

/// Sends `event` to its session and builds the response.
pub async fn invoke(
    front: &Front,
    dialect: Dialect,
    ids: &Ids,
    event: serde_json::Value,
) -> Response {
    let busy = front.health.begin();
    let (sink, mut chunks) = mpsc::channel::<Box<RawValue>>(CHUNK_BUFFER);
    let reply = front.registry.dispatch_with_request_id(
        &ids.session_id,
        event,
        Some(sink),
        Some(ids.request_id.clone()),
    );
    let mut outcome = PendingOutcome::spawn(reply, busy);

    // Chunks are forwarded before the outcome is sent, so preferring chunks
    // tells a stream from a plain result without waiting for the end.
    let start = tokio::select! {
        biased;
        Some(chunk) = chunks.recv() => Start::Stream(chunk, sse::Tail::Pending(outcome)),
        settled = outcome.wait() => match chunks.try_recv() {
            Ok(chunk) => Start::Stream(chunk, sse::Tail::Settled(settled)),
            Err(_) => Start::Done(settled),
        },
    };
    let mut response = match start {
        Start::Done(Ok(delivered)) if delivered.response.streamed => {
            // A generator that yielded nothing: still a stream, just an empty one.
            let mut response = (StatusCode::OK, String::new()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            response
        }
        Start::Done(Ok(delivered)) => {
            let replaced = delivered
                .replaced
                .map(|reason| (delivered.instance, reason));
            let result = delivered.response.result;
            let body = result.map_or_else(|| "null".to_string(), |raw| String::from(raw.get()));
            let mut response = json_response(body);
            if let Some((instance, reason)) = replaced {
                // The id's earlier worker ended; this is a fresh one with an empty /tmp.
                let value = format!("{instance}; previous-ended={}", reason.as_str());
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(NEW_INSTANCE_HEADER, value);
                }
            }
            response
        }
        Start::Done(Err(error)) => {
            tracing::debug!(session = %ids.session_id, request = %ids.request_id, %error, "event failed");
            ApiError::event(dialect, error).into_response()
        }
        Start::Stream(first, tail) => {
            tracing::debug!(session = %ids.session_id, request = %ids.request_id, "streaming");
            sse::response(first, chunks, tail, dialect)
        }
    };
    ids.echo(response.headers_mut(), dialect);
    response
}

/// Set when an event started a new worker for a session id whose previous
/// worker ended (stopped, idle, expired or failed): `2; previous-ended=stopped`.
pub const NEW_INSTANCE_HEADER: &str = "x-sessionvisor-new-instance";

/// How an invocation began: with a chunk, or with its whole outcome.
enum Start {
    Stream(Box<RawValue>, sse::Tail),
    Done(Outcome),
}

/// The worker's result, as it sent it.
fn json_response(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
