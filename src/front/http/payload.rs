//! Reading an invocation's body: at most the payload limit is ever buffered,
//! whatever the client declares or sends, and the body must be JSON.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::errors::{ApiError, Dialect};
use crate::error::{ErrorKind, EventError};

/// The service model's `Body` maximum: 100 MB.
pub const AWS_MAX_PAYLOAD_BYTES: usize = 100_000_000;

/// Bytes of request bodies all requests may hold at once, at least.
const MIN_BODY_BUDGET_BYTES: usize = 1 << 30;
const KIB: usize = 1024;

/// A memory budget for request bodies: each invocation reserves its declared
/// length (or the whole limit when it declares none) before reading, and holds
/// it until it is answered. Requests beyond the budget wait, so a burst of
/// 100 MB payloads cannot exhaust the host; `run`'s in-flight cap plays this
/// role on stdin.
pub struct BodyBudget {
    kib: std::sync::Arc<tokio::sync::Semaphore>,
    total_kib: usize,
}

/// A reservation; released when dropped.
pub type BodyReservation = tokio::sync::OwnedSemaphorePermit;

impl BodyBudget {
    pub fn new(max_event_bytes: usize) -> Self {
        let total_kib = MIN_BODY_BUDGET_BYTES.max(2 * max_event_bytes) / KIB;
        BodyBudget {
            kib: std::sync::Arc::new(tokio::sync::Semaphore::new(total_kib)),
            total_kib,
        }
    }

    /// Waits until the body of a request with these headers fits the budget.
    pub async fn reserve(&self, headers: &HeaderMap, limit: usize) -> BodyReservation {
        let kib = reservation_kib(declared_length(headers), limit).min(self.total_kib);
        let permits = u32::try_from(kib).unwrap_or(u32::MAX);
        // The semaphore is never closed, so acquiring cannot fail.
        match std::sync::Arc::clone(&self.kib)
            .acquire_many_owned(permits)
            .await
        {
            Ok(permit) => permit,
            Err(_) => unreachable!("the body budget's semaphore is never closed"),
        }
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok())
}

/// KiB to reserve: the declared length when it is within the limit (a larger
/// one is refused unread), else the limit.
fn reservation_kib(declared: Option<u64>, limit: usize) -> usize {
    let bytes = match declared {
        Some(length) if length <= limit as u64 => length as usize,
        _ => limit,
    };
    bytes.div_ceil(KIB).max(1)
}

/// Reads the whole body, up to `limit` bytes, and parses it as the event.
/// The Content-Type is not checked: boto3 sends none.
pub async fn read_event(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    dialect: Dialect,
) -> Result<serde_json::Value, ApiError> {
    let too_large = |size: String| {
        ApiError::event(
            dialect,
            EventError::new(
                ErrorKind::PayloadTooLarge,
                format!("the payload is {size} bytes; the limit is {limit}"),
            ),
        )
    };
    // A declared length over the limit is refused before reading anything.
    if let Some(declared) = declared_length(headers) {
        if declared > limit as u64 {
            return Err(too_large(declared.to_string()));
        }
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return Err(too_large(format!("more than {limit}")))
        }
        Err(error) => {
            return Err(ApiError::invalid(
                dialect,
                format!("reading the payload failed: {error}"),
            ))
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|error| ApiError::unparsable(dialect, format!("the payload is not JSON: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_follow_the_declared_length_within_the_limit() {
        assert_eq!(reservation_kib(Some(10), 100_000), 1);
        assert_eq!(reservation_kib(Some(4096), 100_000), 4);
        assert_eq!(reservation_kib(Some(4097), 100_000), 5);
        assert_eq!(reservation_kib(None, 100_000), 98);
        assert_eq!(
            reservation_kib(Some(10_000_000), 100_000),
            98,
            "over the limit: refused unread"
        );
    }

    #[tokio::test]
    async fn requests_beyond_the_budget_wait_for_earlier_ones() {
        let budget = BodyBudget::new(0);
        let headers = HeaderMap::new();
        let whole = budget.reserve(&headers, MIN_BODY_BUDGET_BYTES).await;
        let next = budget.reserve(&headers, KIB);
        tokio::pin!(next);
        assert!(
            futures_util::poll!(&mut next).is_pending(),
            "the budget is spent"
        );
        drop(whole);
        let _reserved = next.await;
    }

    use axum::http::{HeaderValue, StatusCode};

    async fn read(body: &'static str, limit: usize) -> Result<serde_json::Value, StatusCode> {
        read_event(&HeaderMap::new(), Body::from(body), limit, Dialect::Runtime)
            .await
            .map_err(|e| e.status())
    }

    #[tokio::test]
    async fn json_within_the_limit_is_the_event() {
        assert_eq!(read(r#"{"a":1}"#, 7).await, Ok(serde_json::json!({"a": 1})));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_even_without_a_declared_length() {
        assert_eq!(
            read(r#"{"a":12}"#, 7).await,
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("1000"));
        let refused = read_event(&headers, Body::from("{}"), 10, Dialect::Aws)
            .await
            .map_err(|e| e.status());
        assert_eq!(refused, Err(StatusCode::BAD_REQUEST));
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_a_bad_request() {
        assert_eq!(read("hello", 100).await, Err(StatusCode::BAD_REQUEST));
        assert_eq!(read("", 100).await, Err(StatusCode::BAD_REQUEST));
    }
}
