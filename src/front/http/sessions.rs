//! Management routes AgentCore lacks and its users ask for:
//! `GET /sessions` lists the live sessions, `DELETE /sessions/{id}` stops one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::errors::{ApiError, Dialect};
use super::ids::check_session_id;
use super::Front;
use crate::registry::StopError;

/// `GET /sessions`: `{"sessions": [..]}`, sorted by id.
pub async fn list(State(front): State<Arc<Front>>) -> Response {
    Json(json!({ "sessions": front.registry.list() })).into_response()
}

/// `DELETE /sessions/{id}`: stops the session at once, like
/// StopRuntimeSession, and answers once its worker is gone and its files are
/// deleted.
pub async fn stop(State(front): State<Arc<Front>>, Path(session_id): Path<String>) -> Response {
    if let Err(error) = check_session_id(&session_id, Dialect::Runtime) {
        return error.into_response();
    }
    match front.registry.stop_now(&session_id).await {
        Ok(()) => {
            tracing::info!(session = %session_id, "stopped by DELETE /sessions");
            (
                StatusCode::OK,
                Json(json!({ "session_id": session_id, "stopped": true })),
            )
                .into_response()
        }
        Err(StopError::NotFound(_)) => ApiError::unknown_session(
            Dialect::Runtime,
            format!("no session with id {session_id:?}"),
        )
        .into_response(),
    }
}
