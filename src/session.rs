//! One session: a task that owns the session's worker and handles its events one
//! at a time, in order. Sessions never share anything but the launcher.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::error::EventError;
use crate::launcher::{LaunchedWorker, Launcher};
use crate::worker::Response;

/// What a front gets back for one event.
pub type Outcome = Result<Response, EventError>;

/// One event on its way to a session.
pub struct Invocation {
    pub event: serde_json::Value,
    pub reply: oneshot::Sender<Outcome>,
}

/// The worker a session talks to. Each sandboxed session has its own; with
/// `--isolation none` every session holds the same one, which is the leak we
/// exist to prevent.
pub type WorkerSlot = Arc<Mutex<Option<LaunchedWorker>>>;

/// The task behind one session id.
pub struct SessionTask {
    id: Arc<str>,
    launcher: Arc<Launcher>,
    worker: WorkerSlot,
    inbox: mpsc::UnboundedReceiver<Invocation>,
    stop_grace: Duration,
}

impl SessionTask {
    pub fn new(
        id: Arc<str>,
        launcher: Arc<Launcher>,
        worker: WorkerSlot,
        inbox: mpsc::UnboundedReceiver<Invocation>,
        stop_grace: Duration,
    ) -> Self {
        SessionTask {
            id,
            launcher,
            worker,
            inbox,
            stop_grace,
        }
    }

    /// Serves events until the registry closes the inbox, then stops the worker
    /// and deletes the session's files.
    pub async fn run(mut self) {
        while let Some(invocation) = self.inbox.recv().await {
            let outcome = self.handle(&invocation.event).await;
            // The front may have gone away (client disconnected); nothing to do then.
            let _ = invocation.reply.send(outcome);
        }
        if !self.launcher.is_shared() {
            if let Some(worker) = self.worker.lock().await.take() {
                self.launcher.retire(worker, self.stop_grace).await;
            }
        }
        tracing::debug!(session = %self.id, "session ended");
    }

    async fn handle(&mut self, event: &serde_json::Value) -> Outcome {
        let mut slot = self.worker.lock().await;
        if slot.is_none() {
            let worker = self.launcher.launch(&self.id)?;
            tracing::debug!(session = %self.id, pid = worker.process.pid(), "worker started");
            *slot = Some(worker);
        }
        let Some(worker) = slot.as_mut() else {
            unreachable!("the slot was filled just above");
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        match worker.process.call(event, &self.id, &request_id).await {
            Ok(response) => Ok(response),
            Err(fault) => {
                if fault.fatal {
                    if let Some(dead) = slot.take() {
                        self.launcher.retire(dead, Duration::ZERO).await;
                    }
                }
                Err(fault.error)
            }
        }
    }
}
