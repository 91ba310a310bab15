//! The session registry: maps session ids to their session tasks, creating a
//! task (and so, on its first event, a worker) for every id it has not seen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::error::{ErrorKind, EventError};
use crate::launcher::Launcher;
use crate::session::{Invocation, Outcome, SessionTask, WorkerSlot};

/// Routes events to sessions. Cheap to share: fronts hold an `Arc<Registry>`.
pub struct Registry {
    launcher: Arc<Launcher>,
    state: Mutex<RegistryState>,
    /// The one worker every session shares with `--isolation none`.
    shared_worker: Option<WorkerSlot>,
    stop_grace: Duration,
}

struct RegistryState {
    sessions: HashMap<Arc<str>, mpsc::UnboundedSender<Invocation>>,
    tasks: JoinSet<()>,
    closed: bool,
}

impl Registry {
    pub fn new(launcher: Launcher, stop_grace: Duration) -> Self {
        let shared_worker = launcher.is_shared().then(WorkerSlot::default);
        Registry {
            launcher: Arc::new(launcher),
            state: Mutex::new(RegistryState {
                sessions: HashMap::new(),
                tasks: JoinSet::new(),
                closed: false,
            }),
            shared_worker,
            stop_grace,
        }
    }

    /// Queues `event` for `session_id`. The receiver yields the outcome once the
    /// session has handled every earlier event of its own.
    pub fn dispatch(
        &self,
        session_id: &str,
        event: serde_json::Value,
    ) -> oneshot::Receiver<Outcome> {
        let (reply, outcome) = oneshot::channel();
        let invocation = Invocation { event, reply };
        let Ok(mut state) = self.state.lock() else {
            let _ = invocation.reply.send(Err(EventError::new(
                ErrorKind::ShuttingDown,
                "the session registry is unavailable",
            )));
            return outcome;
        };
        if state.closed {
            let _ = invocation.reply.send(Err(EventError::new(
                ErrorKind::ShuttingDown,
                "the supervisor is shutting down",
            )));
            return outcome;
        }
        let inbox = match state.sessions.get(session_id) {
            Some(inbox) => inbox.clone(),
            None => {
                let id: Arc<str> = Arc::from(session_id);
                let (inbox, receiver) = mpsc::unbounded_channel();
                let worker = self.shared_worker.clone().unwrap_or_default();
                let task = SessionTask::new(
                    Arc::clone(&id),
                    Arc::clone(&self.launcher),
                    worker,
                    receiver,
                    self.stop_grace,
                );
                state.tasks.spawn(task.run());
                state.sessions.insert(id, inbox.clone());
                inbox
            }
        };
        if let Err(mpsc::error::SendError(invocation)) = inbox.send(invocation) {
            let _ = invocation.reply.send(Err(EventError::new(
                ErrorKind::ShuttingDown,
                "the session has ended",
            )));
        }
        outcome
    }

    /// Number of sessions with a live task.
    pub fn session_count(&self) -> usize {
        self.state.lock().map(|s| s.sessions.len()).unwrap_or(0)
    }

    /// Takes no new events, lets every session finish the events it has queued,
    /// stops every worker, and deletes every session's files.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let mut tasks = match self.state.lock() {
            Ok(mut state) => {
                state.closed = true;
                state.sessions.clear();
                std::mem::take(&mut state.tasks)
            }
            Err(_) => JoinSet::new(),
        };
        while tasks.join_next().await.is_some() {}
        if let Some(slot) = &self.shared_worker {
            if let Some(worker) = slot.lock().await.take() {
                self.launcher.retire(worker, self.stop_grace).await;
            }
        }
        drop(self.shared_worker);
        match Arc::try_unwrap(self.launcher) {
            Ok(launcher) => launcher.remove_state(),
            Err(_) => Err(std::io::Error::other(
                "a session still holds the launcher; state directory left in place",
            )),
        }
    }
}
