//! A streamed result as `text/event-stream`: one `data: <json>\n\n` event per
//! chunk, written as the worker produces it. The status line went out with
//! the first chunk, so a failure after it is reported in the stream itself,
//! as an `error` event, and the stream ends.
//!
//! When the client goes away, hyper drops this stream and with it the chunk
//! receiver; the session then discards the rest of the worker's stream and
//! stays usable.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::errors::{ApiError, Dialect};
use super::invoke::PendingOutcome;
use crate::session::Outcome;

/// The end of a stream: its outcome, awaited or already known.
pub enum Tail {
    Pending(PendingOutcome),
    Settled(Outcome),
}

/// What the body stream does next.
struct Stream {
    first: Option<Box<RawValue>>,
    chunks: mpsc::Receiver<Box<RawValue>>,
    tail: Option<Tail>,
    dialect: Dialect,
}

/// The streaming response that starts with `first`.
pub fn response(
    first: Box<RawValue>,
    chunks: mpsc::Receiver<Box<RawValue>>,
    tail: Tail,
    dialect: Dialect,
) -> Response {
    let state = Stream {
        first: Some(first),
        chunks,
        tail: Some(tail),
        dialect,
    };
    let body = futures_util::stream::unfold(state, |mut state| async move {
        let event = state.next_event().await?;
        Some((Ok::<Bytes, Infallible>(event), state))
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

impl Stream {
    /// The next SSE event to write, or `None` once the stream is over.
    async fn next_event(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(data_event(&first));
        }
        loop {
            match self.tail.take()? {
                Tail::Pending(mut pending) => {
                    tokio::select! {
                        biased;
                        Some(chunk) = self.chunks.recv() => {
                            self.tail = Some(Tail::Pending(pending));
                            return Some(data_event(&chunk));
                        }
                        outcome = pending.wait() => self.tail = Some(Tail::Settled(outcome)),
                    }
                }
                Tail::Settled(outcome) => {
                    // Every chunk was queued before the outcome was sent.
                    if let Ok(chunk) = self.chunks.try_recv() {
                        self.tail = Some(Tail::Settled(outcome));
                        return Some(data_event(&chunk));
                    }
                    let error = outcome.err()?;
                    let error = ApiError::event(self.dialect, error);
                    tracing::debug!(error = %error.summary(), "stream ended by an error");
                    return Some(error_event(&error.stream_event()));
                }
            }
        }
    }
}

/// `data: <chunk>\n\n`. A chunk came from one JSON line, so it holds no
/// newline and fits on one `data:` line.
fn data_event(chunk: &RawValue) -> Bytes {
    Bytes::from(format!("data: {}\n\n", chunk.get()))
}

fn error_event(data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: error\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, EventError};
    use http_body_util::BodyExt;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.into()).unwrap()
    }

    async fn text(response: Response) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn chunks_queued_before_the_outcome_all_go_out_in_order() {
        let (sink, chunks) = mpsc::channel(4);
        sink.send(raw(r#"{"i":1}"#)).await.unwrap();
        sink.send(raw(r#""two""#)).await.unwrap();
        drop(sink);
        let settled: Outcome = Err(EventError::new(ErrorKind::WorkerExited, "gone"));
        let response = response(raw("0"), chunks, Tail::Settled(settled), Dialect::Runtime);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let text = text(response).await;
        let (data, error) = text.split_once("event: error\n").expect("an error event");
        assert_eq!(data, "data: 0\n\ndata: {\"i\":1}\n\ndata: \"two\"\n\n");
        let error: serde_json::Value =
            serde_json::from_str(error.strip_prefix("data: ").unwrap().trim_end()).unwrap();
        assert_eq!(error["kind"], "worker_exited");
        assert_eq!(error["error"], "gone");
    }

    #[tokio::test]
    async fn a_pending_outcome_is_awaited_while_chunks_flow() {
        let (sink, chunks) = mpsc::channel(1);
        let (reply, outcome) = tokio::sync::oneshot::channel::<Outcome>();
        let pending = PendingOutcome::spawn(outcome, super::super::health::Health::new().begin());
        let producer = tokio::spawn(async move {
            for i in 1..=3 {
                sink.send(raw(&i.to_string())).await.unwrap();
            }
            let _ = reply.send(Ok(crate::session::Delivered {
                response: crate::worker::Response::default(),
                instance: 1,
                replaced: None,
            }));
        });
        let response = response(raw("0"), chunks, Tail::Pending(pending), Dialect::Aws);
        assert_eq!(
            text(response).await,
            "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n"
        );
        producer.await.unwrap();
    }
}
