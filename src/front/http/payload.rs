//! Reading an invocation's body: at most the payload limit is ever buffered,
//! whatever the client declares or sends, and the body must be JSON.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::errors::{ApiError, Dialect};
use crate::error::{ErrorKind, EventError};

/// The service model's `Body` maximum: 100 MB.
pub const AWS_MAX_PAYLOAD_BYTES: usize = 100_000_000;

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
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if let Some(declared) = declared {
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
