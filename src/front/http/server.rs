//! The HTTP/1.1 server loop: accepts loopback (or chosen) connections, serves
//! each on its own task with keep-alive, and on shutdown stops accepting,
//! lets requests in flight finish within the grace period, then ends the
//! sessions still busy and closes whatever connections remain.
//!
//! Written on hyper directly rather than `axum::serve` so that every
//! connection task is owned here: after shutdown none can still hold the
//! registry, which must be taken back whole to clean up.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A client must send a request's headers within this long.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// After the grace period has ended the busy sessions, how long connections
/// get to deliver those sessions' last words before they are dropped.
const FINAL_FLUSH: Duration = Duration::from_secs(5);
/// Pause after a failed accept (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
/// `end_busy_sessions` is called if requests are still in flight when `grace`
/// is over.
pub async fn run(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    end_busy_sessions: impl FnOnce(),
) {
    tokio::pin!(shutdown);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(HEADER_READ_TIMEOUT);

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small SSE events and replies must leave at once, not wait for Nagle.
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
                    }
                    let service = TowerToHyperService::new(app.clone());
                    let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    connections.spawn(serve_one(connection, peer));
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    drop(app);
    tracing::info!(
        connections = connections.len(),
        grace = %humantime::format_duration(grace),
        "shutting down: no new connections; finishing requests in flight"
    );
    let drained = tokio::time::timeout(grace, async {
        // Idle keep-alive connections close now; busy ones after their response.
        graceful.shutdown().await;
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown grace period over; stopping the sessions still busy");
        end_busy_sessions();
        let flushed = tokio::time::timeout(FINAL_FLUSH, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if flushed.is_err() {
            tracing::warn!(
                connections = connections.len(),
                "closing connections whose clients are not reading"
            );
            connections.abort_all();
        }
    }
    while connections.join_next().await.is_some() {}
}

async fn serve_one<C, E>(connection: C, peer: SocketAddr)
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    if let Err(error) = connection.await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
