//! HTTP error responses. One failure is rendered in one of two dialects: the
//! agent contract's (`/invocations`, `/sessions`: the `error` object `run`
//! prints), or the AWS data plane's (`/runtimes/..`: `__type` plus the
//! `x-amzn-ErrorType` header, which is how botocore names the exception).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::{ErrorKind, EventError};

/// botocore reads the exception name from this header (or from `__type`).
pub const AWS_ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// Which contract a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The agent's own HTTP contract, as `agentcore dev` and curl use it.
    Runtime,
    /// The `bedrock-agentcore` service model, as boto3 uses it.
    Aws,
}

/// An error answer: its status, the names each dialect gives it, and what the
/// client needs to act on it.
#[derive(Debug)]
pub struct ApiError {
    dialect: Dialect,
    status: StatusCode,
    aws_type: &'static str,
    /// `ValidationException` requires a reason in the service model.
    reason: Option<&'static str>,
    detail: Detail,
}

/// The `error` object of the agent contract; mirrors [`EventError`] with a
/// free-form kind, since some HTTP errors (an unknown session) are no event's.
#[derive(Debug, Serialize)]
struct Detail {
    kind: &'static str,
    message: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    error_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceback: Option<Box<RawValue>>,
}

/// Status on `/invocations`, status on the AWS routes, AWS exception name.
fn classify(kind: ErrorKind) -> (StatusCode, StatusCode, &'static str) {
    match kind {
        ErrorKind::BadRequest => (
            StatusCode::BAD_REQUEST,
            StatusCode::BAD_REQUEST,
            "ValidationException",
        ),
        ErrorKind::PayloadTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::BAD_REQUEST,
            "ValidationException",
        ),
        ErrorKind::TooManySessions => (
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
        ),
        // The agent itself raised: an agent container answers 500, AgentCore 424.
        ErrorKind::HandlerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::FAILED_DEPENDENCY,
            "RuntimeClientError",
        ),
        ErrorKind::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            StatusCode::FAILED_DEPENDENCY,
            "RuntimeClientError",
        ),
        // A new event on the same id gets a fresh worker: worth retrying.
        ErrorKind::SessionStopped => (
            StatusCode::CONFLICT,
            StatusCode::CONFLICT,
            "RetryableConflictException",
        ),
        ErrorKind::ShuttingDown => (
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
        ),
        // The worker failed (exited, broke the protocol, hit a limit, could not
        // start), and any kind added later: the agent's side is at fault.
        _ => (
            StatusCode::BAD_GATEWAY,
            StatusCode::FAILED_DEPENDENCY,
            "RuntimeClientError",
        ),
    }
}

impl ApiError {
    /// The answer for an event that failed in the core.
    pub fn event(dialect: Dialect, error: EventError) -> Self {
        let (runtime_status, aws_status, aws_type) = classify(error.kind);
        ApiError {
            dialect,
            status: match dialect {
                Dialect::Runtime => runtime_status,
                Dialect::Aws => aws_status,
            },
            aws_type,
            reason: (aws_type == "ValidationException").then_some("FieldValidationFailed"),
            detail: Detail {
                kind: error.kind.as_str(),
                message: error.message,
                error_type: error.error_type,
                traceback: error.traceback,
            },
        }
    }

    /// A request rejected before it reached any session.
    pub fn invalid(dialect: Dialect, message: impl Into<String>) -> Self {
        Self::event(
            dialect,
            EventError::new(ErrorKind::BadRequest, message.into()),
        )
    }

    /// A payload that is not JSON (`CannotParse` in the service model).
    pub fn unparsable(dialect: Dialect, message: impl Into<String>) -> Self {
        let mut error = Self::invalid(dialect, message);
        error.reason = Some("CannotParse");
        error
    }

    /// A stop for a session id with no live session.
    pub fn unknown_session(dialect: Dialect, message: impl Into<String>) -> Self {
        ApiError {
            dialect,
            status: StatusCode::NOT_FOUND,
            aws_type: "ResourceNotFoundException",
            reason: None,
            detail: Detail {
                kind: "session_not_found",
                message: message.into(),
                error_type: None,
                traceback: None,
            },
        }
    }

    /// A path no route serves.
    pub fn no_route(path: &str) -> Self {
        ApiError {
            dialect: Dialect::Runtime,
            status: StatusCode::NOT_FOUND,
            aws_type: "UnknownOperationException",
            reason: None,
            detail: Detail {
                kind: "not_found",
                message: format!("no route for {path}"),
                error_type: None,
                traceback: None,
            },
        }
    }

    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The line a log or a stream's error event carries.
    pub fn summary(&self) -> String {
        match &self.detail.error_type {
            Some(error_type) => format!(
                "{}: {error_type}: {}",
                self.detail.kind, self.detail.message
            ),
            None => format!("{}: {}", self.detail.kind, self.detail.message),
        }
    }

    /// The `data` of the SSE `error` event that ends a stream which failed
    /// after its first chunk (the status line was sent already). The keys
    /// `error`, `error_type` and `message` are those the AgentCore SDK emits.
    pub fn stream_event(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.detail.message,
            "error_type": self.detail.error_type.as_deref().unwrap_or(self.aws_type),
            "kind": self.detail.kind,
            "message": "An error occurred during streaming",
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        match self.dialect {
            Dialect::Runtime => (
                status,
                axum::Json(serde_json::json!({ "error": self.detail })),
            )
                .into_response(),
            Dialect::Aws => {
                #[derive(Serialize)]
                struct AwsBody {
                    #[serde(rename = "__type")]
                    aws_type: &'static str,
                    message: String,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    reason: Option<&'static str>,
                    /// sessionvisor's own kind and the handler's error, for humans.
                    kind: &'static str,
                    #[serde(rename = "errorType", skip_serializing_if = "Option::is_none")]
                    error_type: Option<String>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    traceback: Option<Box<RawValue>>,
                }
                let message = match &self.detail.error_type {
                    Some(error_type) => format!("{error_type}: {}", self.detail.message),
                    None => self.detail.message,
                };
                let body = AwsBody {
                    aws_type: self.aws_type,
                    message,
                    reason: self.reason,
                    kind: self.detail.kind,
                    error_type: self.detail.error_type,
                    traceback: self.detail.traceback,
                };
                let mut response = (status, axum::Json(body)).into_response();
                response.headers_mut().insert(
                    AWS_ERROR_TYPE_HEADER,
                    HeaderValue::from_static(self.aws_type),
                );
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> serde_json::Value {
        use http_body_util::BodyExt;
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("JSON body")
    }

    #[tokio::test]
    async fn handler_errors_are_500_here_and_424_runtime_client_errors_on_aws_routes() {
        let failure = || EventError {
            error_type: Some("ValueError".into()),
            ..EventError::new(ErrorKind::HandlerError, "boom")
        };
        let runtime = ApiError::event(Dialect::Runtime, failure()).into_response();
        assert_eq!(runtime.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(runtime.headers().get(AWS_ERROR_TYPE_HEADER).is_none());
        assert_eq!(
            body(runtime).await,
            serde_json::json!({"error": {"kind": "handler_error", "message": "boom", "type": "ValueError"}})
        );

        let aws = ApiError::event(Dialect::Aws, failure()).into_response();
        assert_eq!(aws.status(), StatusCode::FAILED_DEPENDENCY);
        assert_eq!(aws.headers()[AWS_ERROR_TYPE_HEADER], "RuntimeClientError");
        let aws = body(aws).await;
        assert_eq!(aws["__type"], "RuntimeClientError");
        assert_eq!(aws["message"], "ValueError: boom");
    }

    #[test]
    fn every_kind_has_a_status_in_both_dialects() {
        let cases = [
            (ErrorKind::BadRequest, 400, 400, "ValidationException"),
            (ErrorKind::PayloadTooLarge, 413, 400, "ValidationException"),
            (ErrorKind::TooManySessions, 429, 429, "ThrottlingException"),
            (ErrorKind::WorkerExited, 502, 424, "RuntimeClientError"),
            (ErrorKind::ProtocolError, 502, 424, "RuntimeClientError"),
            (ErrorKind::SpawnFailed, 502, 424, "RuntimeClientError"),
            (ErrorKind::ResponseTooLarge, 502, 424, "RuntimeClientError"),
            (ErrorKind::ResourceExhausted, 502, 424, "RuntimeClientError"),
            (ErrorKind::Timeout, 504, 424, "RuntimeClientError"),
            (
                ErrorKind::SessionStopped,
                409,
                409,
                "RetryableConflictException",
            ),
            (
                ErrorKind::ShuttingDown,
                503,
                503,
                "ServiceUnavailableException",
            ),
        ];
        for (kind, runtime, aws, name) in cases {
            let (r, a, n) = classify(kind);
            assert_eq!(
                (r.as_u16(), a.as_u16(), n),
                (runtime, aws, name),
                "{kind:?}"
            );
        }
    }

    #[tokio::test]
    async fn validation_exceptions_carry_the_required_reason() {
        let response = ApiError::unparsable(Dialect::Aws, "not JSON").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body(response).await;
        assert_eq!(body["__type"], "ValidationException");
        assert_eq!(body["reason"], "CannotParse");
    }
}
