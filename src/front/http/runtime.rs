//! The agent's own HTTP contract, as AgentCore Runtime calls an agent and as
//! `agentcore invoke --local`, the SDK's dev server and curl do:
//! `POST /invocations` and `GET /ping`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::errors::Dialect;
use super::health::Ping;
use super::ids::Ids;
use super::{invoke, payload, Front};

/// `POST /invocations`: the body is the event; the session comes from the
/// session header, or is new (and named in the response) when absent.
pub async fn invocations(
    State(front): State<Arc<Front>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ids = match Ids::from_headers(&headers, Dialect::Runtime) {
        Ok(ids) => ids,
        Err(error) => return error.into_response(),
    };
    // Held until the event is answered: its payload lives that long.
    let _reserved = front
        .body_budget
        .reserve(&headers, front.max_event_bytes)
        .await;
    match payload::read_event(&headers, body, front.max_event_bytes, Dialect::Runtime).await {
        Ok(event) => invoke::invoke(&front, Dialect::Runtime, &ids, event).await,
        Err(error) => {
            let mut response = error.into_response();
            ids.echo(response.headers_mut(), Dialect::Runtime);
            response
        }
    }
}

/// `GET /ping`.
pub async fn ping(State(front): State<Arc<Front>>) -> Json<Ping> {
    Json(front.health.ping())
}
