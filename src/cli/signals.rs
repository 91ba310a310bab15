//! Graceful shutdown signals.

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed when this
/// is called, not when the future is first polled, so a signal that arrives
/// while the supervisor is still starting is not lost.
pub fn termination_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let streams = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = streams else {
            tracing::warn!("cannot install signal handlers; SIGTERM will not shut down gracefully");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
