//! `sessionvisor serve`: the AgentCore-compatible HTTP front.
//!
//! | route | what |
//! |---|---|
//! | `POST /invocations` | the agent contract (`runtime`) |
//! | `GET /ping` | `Healthy` / `HealthyBusy` (`health`) |
//! | `POST /runtimes/{arn}/invocations`, `.../stopruntimesession` | the AWS data plane (`aws`) |
//! | `GET /sessions`, `DELETE /sessions/{id}` | management (`sessions`) |
//!
//! Every event goes through the same registry as `run`'s: sessions run in
//! parallel, and the events of one session in the order they arrived.

mod aws;
mod errors;
mod health;
mod ids;
mod invoke;
mod payload;
mod runtime;
mod server;
mod sessions;
mod sse;

use std::sync::Arc;
use std::time::Duration;

use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::registry::Registry;

pub use ids::{REQUEST_HEADER, SESSION_HEADER};
pub use invoke::NEW_INSTANCE_HEADER;

/// What every handler shares.
pub(crate) struct Front {
    registry: Arc<Registry>,
    health: health::Health,
    /// `--max-event-bytes`; the AWS routes also cap at the service's 100 MB.
    max_event_bytes: usize,
    /// Bounds the request bodies held at once (see [`payload::BodyBudget`]).
    body_budget: payload::BodyBudget,
}

/// How `serve` behaves.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    pub max_event_bytes: usize,
    /// On shutdown, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
}

fn router(front: Arc<Front>) -> Router {
    Router::new()
        .route("/invocations", post(runtime::invocations))
        .route("/ping", get(runtime::ping))
        .route("/runtimes/{*rest}", post(aws::runtimes))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}", delete(sessions::stop))
        .fallback(no_route)
        .with_state(front)
}

async fn no_route(uri: Uri) -> Response {
    errors::ApiError::no_route(uri.path()).into_response()
}

/// Serves HTTP on `listener` until `shutdown` resolves, then shuts the
/// registry down (every worker stopped, every session's files deleted).
///
/// Prints `listening on http://ADDR` on stdout once ready, so a caller that
/// asked for port 0 learns the port.
pub async fn serve(
    registry: Registry,
    listener: TcpListener,
    options: HttpOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    let registry = Arc::new(registry);
    let front = Arc::new(Front {
        registry: Arc::clone(&registry),
        health: health::Health::new(),
        max_event_bytes: options.max_event_bytes,
        body_budget: payload::BodyBudget::new(options.max_event_bytes),
    });
    let app = router(front);
    let mut stdout = tokio::io::stdout();
    let announce = format!("listening on http://{address}\n");
    stdout
        .write_all(announce.as_bytes())
        .await
        .context("writing the listening address to stdout")?;
    stdout.flush().await.context("flushing stdout")?;
    tracing::info!(%address, "serving HTTP");

    let ending = Arc::clone(&registry);
    server::run(listener, app, shutdown, options.shutdown_grace, move || {
        ending.cancel_all()
    })
    .await;

    let registry = Arc::try_unwrap(registry)
        .map_err(|_| anyhow::anyhow!("the registry is still shared after the server stopped"))?;
    registry
        .shutdown()
        .await
        .context("cleaning up the state directory")
}
