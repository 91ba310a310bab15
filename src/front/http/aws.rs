//! The AWS data plane's runtime operations, as the `bedrock-agentcore` service
//! model defines them and boto3 sends them:
//! `POST /runtimes/{agentRuntimeArn}/invocations[?qualifier=..]` and
//! `POST /runtimes/{agentRuntimeArn}/stopruntimesession`.
//!
//! boto3 percent-encodes the ARN into one path segment; a hand-written client
//! may not, so the operation is taken from the last segment and everything
//! before it is the ARN. The ARN and the qualifier name the agent: this server
//! runs one, so both are accepted and otherwise ignored. Request signatures
//! are accepted and not verified.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::errors::{ApiError, Dialect};
use super::ids::{check_session_id, header_text, Ids, SESSION_HEADER};
use super::payload::{self, AWS_MAX_PAYLOAD_BYTES};
use super::{invoke, Front};
use crate::registry::StopError;

/// `POST /runtimes/{*rest}`, where `rest` is the decoded `ARN/operation`.
pub async fn runtimes(
    State(front): State<Arc<Front>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some((arn, operation)) = rest.rsplit_once('/') else {
        return ApiError::no_route(&format!("/runtimes/{rest}")).into_response();
    };
    if arn.is_empty() {
        return ApiError::invalid(Dialect::Aws, "agentRuntimeArn is empty").into_response();
    }
    tracing::debug!(arn, operation, "data plane request");
    match operation {
        "invocations" => invoke_agent_runtime(&front, &headers, body).await,
        "stopruntimesession" => stop_runtime_session(&front, &headers).await,
        _ => ApiError::no_route(&format!("/runtimes/{rest}")).into_response(),
    }
}

/// InvokeAgentRuntime: the payload is the raw body, with no Content-Type.
async fn invoke_agent_runtime(front: &Front, headers: &HeaderMap, body: Body) -> Response {
    let ids = match Ids::from_headers(headers, Dialect::Aws) {
        Ok(ids) => ids,
        Err(error) => return error.into_response(),
    };
    let limit = front.max_event_bytes.min(AWS_MAX_PAYLOAD_BYTES);
    // Held until the event is answered: its payload lives that long.
    let _reserved = front.body_budget.reserve(headers, limit).await;
    match payload::read_event(headers, body, limit, Dialect::Aws).await {
        Ok(event) => invoke::invoke(front, Dialect::Aws, &ids, event).await,
        Err(error) => {
            let mut response = error.into_response();
            ids.echo(response.headers_mut(), Dialect::Aws);
            response
        }
    }
}

/// StopRuntimeSession: ends the session at once, open streams included. The
/// body's `clientToken` only makes retries idempotent, which stopping is.
async fn stop_runtime_session(front: &Front, headers: &HeaderMap) -> Response {
    let session_id = match header_text(headers, &SESSION_HEADER, Dialect::Aws) {
        Ok(Some(id)) => id,
        Ok(None) => {
            return ApiError::invalid(
                Dialect::Aws,
                format!("the {SESSION_HEADER} header is required"),
            )
            .into_response()
        }
        Err(error) => return error.into_response(),
    };
    if let Err(error) = check_session_id(&session_id, Dialect::Aws) {
        return error.into_response();
    }
    let ids = match Ids::from_headers(headers, Dialect::Aws) {
        Ok(ids) => ids,
        Err(error) => return error.into_response(),
    };
    let mut response = match front.registry.stop_now(&session_id).await {
        Ok(()) => {
            tracing::info!(session = %session_id, "stopped by StopRuntimeSession");
            (StatusCode::OK, Json(serde_json::json!({}))).into_response()
        }
        Err(StopError::NotFound(_)) => ApiError::unknown_session(
            Dialect::Aws,
            format!("no runtime session {session_id:?} is running"),
        )
        .into_response(),
    };
    ids.echo(response.headers_mut(), Dialect::Aws);
    response
}
