//! The session registry: maps session ids to their session tasks, creating a
//! task (and so, on its first event, a worker) for every id it has not seen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorKind, EventError};
use crate::launcher::Launcher;
use crate::session::{
    Command, EndReason, Invocation, Outcome, SessionInfo, SessionPolicy, SessionShared,
    SessionState, SessionTask, WorkerSlot,
};
use crate::worker::ChunkSink;

/// Ended session ids remembered for their instance numbers.
const HISTORY_LIMIT: usize = 100_000;

/// Routes events to sessions. Fronts hold it behind an `Arc`.
pub struct Registry {
    core: Arc<RegistryCore>,
    launcher: Arc<Launcher>,
    /// The one worker every session shares with `--isolation none`.
    shared_worker: Option<WorkerSlot>,
    policy: SessionPolicy,
    max_sessions: usize,
}

/// The part of the registry session tasks reach back into.
pub struct RegistryCore {
    state: Mutex<RegistryState>,
}

struct Entry {
    inbox: mpsc::UnboundedSender<Command>,
    shared: Arc<SessionShared>,
}

struct RegistryState {
    sessions: HashMap<Arc<str>, Entry>,
    /// Ids whose workers ended: how many instances they had and why the last
    /// ended, so the next event can say it got a new instance.
    history: HashMap<Arc<str>, (u32, EndReason)>,
    tasks: JoinSet<()>,
    closed: bool,
}

/// Why `stop` did nothing.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("no session with id {0:?}")]
    NotFound(String),
}

impl RegistryCore {
    /// Records how an id's last worker ended, for its next instance to report.
    pub(crate) fn remember(&self, id: &Arc<str>, history: (u32, EndReason)) {
        if let Ok(mut state) = self.state.lock() {
            state.remember(id, history);
        }
    }

    /// Called by a session task with no worker: removes its entry if nothing is
    /// queued for it. Dispatch sends under the same lock, so no event can slip
    /// into an inbox that is about to be dropped.
    pub(crate) fn remove_if_drained(
        &self,
        id: &Arc<str>,
        shared: &Arc<SessionShared>,
        inbox: &mpsc::UnboundedReceiver<Command>,
        history: Option<(u32, EndReason)>,
    ) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if !inbox.is_empty() {
            return false;
        }
        let ours = state
            .sessions
            .get(id)
            .is_some_and(|entry| Arc::ptr_eq(&entry.shared, shared));
        if ours {
            state.sessions.remove(id);
        }
        if let Some(history) = history {
            state.remember(id, history);
        }
        true
    }
}

impl RegistryState {
    fn remember(&mut self, id: &Arc<str>, history: (u32, EndReason)) {
        if self.history.len() >= HISTORY_LIMIT {
            // Forget some id rather than grow without bound: at worst that id's
            // next worker reports instance 1 instead of a higher number.
            if let Some(forgotten) = self.history.keys().next().cloned() {
                self.history.remove(&forgotten);
            }
        }
        self.history.insert(Arc::clone(id), history);
    }
}

impl Registry {
    pub fn new(launcher: Launcher, policy: SessionPolicy, max_sessions: usize) -> Self {
        let shared_worker = launcher.is_shared().then(WorkerSlot::default);
        let launcher = Arc::new(launcher);
        launcher.refill_pool();
        Registry {
            core: Arc::new(RegistryCore {
                state: Mutex::new(RegistryState {
                    sessions: HashMap::new(),
                    history: HashMap::new(),
                    tasks: JoinSet::new(),
                    closed: false,
                }),
            }),
            launcher,
            shared_worker,
            policy,
            max_sessions,
        }
    }

    /// Queues `event` for `session_id`. The receiver yields the outcome once the
    /// session has handled every earlier event of its own.
    pub fn dispatch(
        &self,
        session_id: &str,
        event: serde_json::Value,
        chunks: Option<ChunkSink>,
    ) -> oneshot::Receiver<Outcome> {
        self.dispatch_with_request_id(session_id, event, chunks, None)
    }

    /// [`Self::dispatch`] with the client's request id, which the handler sees
    /// as `context.aws_request_id`.
    pub fn dispatch_with_request_id(
        &self,
        session_id: &str,
        event: serde_json::Value,
        chunks: Option<ChunkSink>,
        request_id: Option<String>,
    ) -> oneshot::Receiver<Outcome> {
        let (reply, outcome) = oneshot::channel();
        let invocation = Invocation {
            event,
            chunks,
            request_id,
            reply,
        };
        match self.inbox_for(session_id) {
            Ok(inbox) => {
                if let Err(mpsc::error::SendError(Command::Event(invocation))) =
                    inbox.send(Command::Event(invocation))
                {
                    let _ = invocation.reply.send(Err(EventError::new(
                        ErrorKind::ShuttingDown,
                        "the session ended before the event could be queued",
                    )));
                }
            }
            Err(error) => {
                let _ = invocation.reply.send(Err(error));
            }
        }
        outcome
    }

    /// The inbox of a live session, or of a new one if the cap allows.
    fn inbox_for(&self, session_id: &str) -> Result<mpsc::UnboundedSender<Command>, EventError> {
        let mut state = self.core.state.lock().map_err(|_| {
            EventError::new(
                ErrorKind::ShuttingDown,
                "the session registry is unavailable",
            )
        })?;
        if state.closed {
            return Err(EventError::new(
                ErrorKind::ShuttingDown,
                "the supervisor is shutting down",
            ));
        }
        if let Some(entry) = state.sessions.get(session_id) {
            return Ok(entry.inbox.clone());
        }
        if state.sessions.len() >= self.max_sessions {
            return Err(EventError::new(
                ErrorKind::TooManySessions,
                format!(
                    "{} sessions are live, the --max-sessions cap; stop one or wait for one to expire",
                    state.sessions.len()
                ),
            ));
        }
        let id: Arc<str> = Arc::from(session_id);
        let history = state.history.remove(&id);
        let (inbox, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(SessionShared {
            info: std::sync::Mutex::new(SessionInfo {
                session_id: session_id.to_string(),
                state: SessionState::Stopped,
                instance: history.map_or(0, |h| h.0),
                worker_pid: None,
                started_at: None,
                last_activity: None,
                events: 0,
                from_warm_pool: false,
            }),
            cancel: CancellationToken::new(),
            ended: watch::Sender::new(false),
        });
        let task = SessionTask::new(
            Arc::clone(&id),
            Arc::clone(&self.launcher),
            Arc::clone(&self.core),
            Arc::clone(&shared),
            self.shared_worker.clone().unwrap_or_default(),
            receiver,
            self.policy,
            history,
        );
        state.tasks.spawn(task.run());
        state.sessions.insert(
            id,
            Entry {
                inbox: inbox.clone(),
                shared,
            },
        );
        Ok(inbox)
    }

    /// Queues a stop behind the events already queued for a session. The
    /// receiver resolves once its worker is gone and its files deleted (the
    /// `run` front's control line). Queueing is synchronous so that events read
    /// after the stop line land behind it.
    pub fn queue_stop(&self, session_id: &str) -> Result<oneshot::Receiver<()>, StopError> {
        let not_found = || StopError::NotFound(session_id.to_string());
        let state = self.core.state.lock().map_err(|_| not_found())?;
        let entry = state.sessions.get(session_id).ok_or_else(not_found)?;
        let (done, stopped) = oneshot::channel();
        entry
            .inbox
            .send(Command::Stop(done))
            .map_err(|_| not_found())?;
        Ok(stopped)
    }

    /// Ends a session at once, aborting the event in flight and any open stream
    /// (AgentCore's StopRuntimeSession), and waits until it is sanitized.
    pub async fn stop_now(&self, session_id: &str) -> Result<(), StopError> {
        let shared = {
            let mut state = self.core.state.lock().ok();
            state
                .as_mut()
                .and_then(|s| s.sessions.remove(session_id))
                .map(|entry| entry.shared)
        };
        let shared = shared.ok_or_else(|| StopError::NotFound(session_id.to_string()))?;
        shared.cancel.cancel();
        let mut ended = shared.ended.subscribe();
        let _ = ended.wait_for(|ended| *ended).await;
        Ok(())
    }

    /// Ends every session at once, aborting events in flight (the end of a
    /// shutdown grace period).
    pub fn cancel_all(&self) {
        if let Ok(state) = self.core.state.lock() {
            for entry in state.sessions.values() {
                entry.shared.cancel.cancel();
            }
        }
    }

    /// Every live session, sorted by id.
    pub fn list(&self) -> Vec<SessionInfo> {
        let mut sessions: Vec<SessionInfo> = self
            .core
            .state
            .lock()
            .map(|state| {
                state
                    .sessions
                    .values()
                    .filter_map(|entry| entry.shared.info.lock().ok().map(|i| i.clone()))
                    .collect()
            })
            .unwrap_or_default();
        sessions.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        sessions
    }

    /// Number of sessions with a live task.
    pub fn session_count(&self) -> usize {
        self.core
            .state
            .lock()
            .map(|s| s.sessions.len())
            .unwrap_or(0)
    }

    /// Takes no new events, lets every session finish the events it has queued,
    /// stops every worker, and deletes every session's files.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let mut tasks = match self.core.state.lock() {
            Ok(mut state) => {
                state.closed = true;
                state.sessions.clear();
                std::mem::take(&mut state.tasks)
            }
            Err(_) => JoinSet::new(),
        };
        while tasks.join_next().await.is_some() {}
        self.launcher.drain_pool().await;
        if let Some(slot) = &self.shared_worker {
            if let Some(worker) = slot.lock().await.take() {
                self.launcher.retire(worker, self.policy.stop_grace).await;
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
