//! One session: a task that owns the session's worker, handles its events one at
//! a time and in order, and ends the worker the way AgentCore ends a microVM:
//! when stopped, when idle too long, or at its maximum lifetime.

use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorKind, EventError};
use crate::launcher::{LaunchedWorker, Launcher};
use crate::registry::RegistryCore;
use crate::worker::{ChunkSink, Response};

/// A delivered result, with the worker instance that produced it.
#[derive(Debug)]
pub struct Delivered {
    pub response: Response,
    /// 1 for the session id's first worker, 2 after its first ended, and so on.
    pub instance: u32,
    /// Set when this event started a new worker for an id whose previous worker
    /// ended: why that one ended.
    pub replaced: Option<EndReason>,
}

/// What a front gets back for one event.
pub type Outcome = Result<Delivered, EventError>;

/// One event on its way to a session.
pub struct Invocation {
    pub event: serde_json::Value,
    /// Where streamed chunks go as they arrive; `None` collects them.
    pub chunks: Option<ChunkSink>,
    /// The client's request id (the handler's `context.aws_request_id`); one is
    /// generated when the client gave none.
    pub request_id: Option<String>,
    pub reply: oneshot::Sender<Outcome>,
}

/// What a session's inbox carries.
pub enum Command {
    Event(Invocation),
    /// Stop after the events queued before it; reply once the worker is gone.
    Stop(oneshot::Sender<()>),
}

/// Why a session's worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Stopped,
    IdleTimeout,
    MaxLifetime,
    /// An event failed in a way that killed the worker (its error said how).
    WorkerFailed,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Stopped => "stopped",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::MaxLifetime => "max_lifetime",
            EndReason::WorkerFailed => "worker_failed",
        }
    }
}

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    /// Between SIGTERM (or closing stdin) and SIGKILL when a worker is stopped.
    pub stop_grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// No worker: the next event starts one.
    Stopped,
    Idle,
    Busy,
}

/// One row of `list`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub state: SessionState,
    pub instance: u32,
    pub worker_pid: Option<u32>,
    /// RFC 3339 time the current worker started.
    pub started_at: Option<String>,
    pub last_activity: Option<String>,
    /// Events handled by this session id so far, across instances.
    pub events: u64,
    /// The current worker came ready-made from the warm pool.
    pub from_warm_pool: bool,
}

/// What the registry and the session task share about one session.
pub struct SessionShared {
    pub info: StdMutex<SessionInfo>,
    /// Ends the session at once, aborting the event in flight (HTTP stop).
    pub cancel: CancellationToken,
    /// Turns true once the worker is gone and its files deleted.
    pub ended: watch::Sender<bool>,
}

/// The worker a session talks to. Each sandboxed session has its own; with
/// `--isolation none` every session holds the same one, which is the leak we
/// exist to prevent.
pub type WorkerSlot = Arc<Mutex<Option<LaunchedWorker>>>;

/// The task behind one session id.
pub struct SessionTask {
    id: Arc<str>,
    launcher: Arc<Launcher>,
    registry: Arc<RegistryCore>,
    shared: Arc<SessionShared>,
    worker: WorkerSlot,
    inbox: mpsc::UnboundedReceiver<Command>,
    policy: SessionPolicy,
    instance: u32,
    last_end: Option<EndReason>,
    worker_started: Option<Instant>,
    last_activity: Instant,
}

impl SessionTask {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: Arc<str>,
        launcher: Arc<Launcher>,
        registry: Arc<RegistryCore>,
        shared: Arc<SessionShared>,
        worker: WorkerSlot,
        inbox: mpsc::UnboundedReceiver<Command>,
        policy: SessionPolicy,
        history: Option<(u32, EndReason)>,
    ) -> Self {
        SessionTask {
            id,
            launcher,
            registry,
            shared,
            worker,
            inbox,
            policy,
            instance: history.map_or(0, |h| h.0),
            last_end: history.map(|h| h.1),
            worker_started: None,
            last_activity: Instant::now(),
        }
    }

    pub async fn run(mut self) {
        loop {
            let has_worker = self.worker_started.is_some();
            let idle_at = self.last_activity + self.policy.idle_timeout;
            let expires_at = self.worker_started.map(|t| t + self.policy.max_lifetime);
            tokio::select! {
                biased;
                _ = self.shared.cancel.cancelled() => {
                    self.fail_queued("the session was stopped");
                    self.end_worker(EndReason::Stopped, Duration::ZERO).await;
                    // Stopped from outside: the registry already dropped our entry.
                    if let Some(history) = self.history() {
                        self.registry.remember(&self.id, history);
                    }
                    break;
                }
                command = self.inbox.recv() => match command {
                    None => {
                        // The registry is shutting down and every queued event is done.
                        self.end_worker(EndReason::Stopped, self.policy.stop_grace).await;
                        break;
                    }
                    Some(Command::Event(invocation)) => self.handle(invocation).await,
                    Some(Command::Stop(done)) => {
                        self.end_worker(EndReason::Stopped, self.policy.stop_grace).await;
                        let _ = done.send(());
                    }
                },
                _ = tokio::time::sleep_until(idle_at), if has_worker => {
                    tracing::info!(session = %self.id, "idle timeout; stopping the worker");
                    self.end_worker(EndReason::IdleTimeout, self.policy.stop_grace).await;
                }
                _ = sleep_until_opt(expires_at), if has_worker => {
                    tracing::info!(session = %self.id, "maximum lifetime reached; stopping the worker");
                    self.end_worker(EndReason::MaxLifetime, self.policy.stop_grace).await;
                }
            }
            if self.worker_started.is_none()
                && self.registry.remove_if_drained(
                    &self.id,
                    &self.shared,
                    &self.inbox,
                    self.history(),
                )
            {
                break;
            }
        }
        self.set_state(SessionState::Stopped);
        self.shared.ended.send_replace(true);
        tracing::debug!(session = %self.id, "session ended");
    }

    fn history(&self) -> Option<(u32, EndReason)> {
        self.last_end.map(|reason| (self.instance, reason))
    }

    async fn handle(&mut self, invocation: Invocation) {
        let Invocation {
            event,
            chunks,
            request_id,
            reply,
        } = invocation;
        let cancel = self.shared.cancel.clone();
        let finished = tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            outcome = self.call(&event, chunks.as_ref(), request_id) => Some(outcome),
        };
        let outcome = match finished {
            Some(outcome) => outcome,
            None => {
                // The event's future is gone, so the worker is mid-event: kill it.
                self.end_worker(EndReason::Stopped, Duration::ZERO).await;
                Err(EventError::new(
                    ErrorKind::SessionStopped,
                    "the session was stopped while this event ran",
                ))
            }
        };
        self.last_activity = Instant::now();
        if let Ok(mut info) = self.shared.info.lock() {
            info.events += 1;
            info.last_activity = Some(now_rfc3339());
            if info.state == SessionState::Busy {
                info.state = SessionState::Idle;
            }
        }
        // The front may have gone away (client disconnected); nothing to do then.
        let _ = reply.send(outcome);
    }

    async fn call(
        &mut self,
        event: &serde_json::Value,
        chunks: Option<&ChunkSink>,
        request_id: Option<String>,
    ) -> Outcome {
        let mut slot = self.worker.lock().await;
        let mut replaced = None;
        if slot.is_none() {
            let worker = self.launcher.launch(&self.id).await?;
            self.instance += 1;
            replaced = self.last_end.take();
            self.worker_started = Some(Instant::now());
            tracing::debug!(session = %self.id, pid = worker.process.pid(), instance = self.instance, "worker started");
            if let Ok(mut info) = self.shared.info.lock() {
                info.instance = self.instance;
                info.worker_pid = Some(worker.process.pid());
                info.from_warm_pool = worker.pooled;
                info.started_at = Some(now_rfc3339());
            }
            *slot = Some(worker);
        } else if self.launcher.is_shared() && self.worker_started.is_none() {
            // Shared mode: another session started the one worker.
            self.worker_started = Some(Instant::now());
            self.instance = self.instance.max(1);
        }
        self.set_state(SessionState::Busy);
        let Some(worker) = slot.as_mut() else {
            unreachable!("the slot was filled just above");
        };
        let request_id = request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        match worker
            .process
            .call(event, &self.id, &request_id, chunks)
            .await
        {
            Ok(response) => Ok(Delivered {
                response,
                instance: self.instance,
                replaced,
            }),
            Err(fault) => {
                let fault = self.launcher.explain_fault(worker, fault);
                if fault.fatal {
                    if let Some(dead) = slot.take() {
                        self.launcher.retire(dead, Duration::ZERO).await;
                    }
                    drop(slot);
                    self.forget_worker(EndReason::WorkerFailed);
                }
                Err(fault.error)
            }
        }
    }

    /// Stops the worker (its whole process tree) and deletes its files.
    async fn end_worker(&mut self, reason: EndReason, grace: Duration) {
        if self.worker_started.is_none() {
            return;
        }
        if !self.launcher.is_shared() {
            if let Some(worker) = self.worker.lock().await.take() {
                self.launcher.retire(worker, grace).await;
            }
        }
        self.forget_worker(reason);
    }

    fn forget_worker(&mut self, reason: EndReason) {
        self.worker_started = None;
        self.last_end = Some(reason);
        self.set_state(SessionState::Stopped);
    }

    fn set_state(&self, state: SessionState) {
        if let Ok(mut info) = self.shared.info.lock() {
            info.state = state;
            if state == SessionState::Stopped {
                info.worker_pid = None;
            }
        }
    }

    fn fail_queued(&mut self, why: &str) {
        while let Ok(command) = self.inbox.try_recv() {
            match command {
                Command::Event(invocation) => {
                    let _ = invocation
                        .reply
                        .send(Err(EventError::new(ErrorKind::SessionStopped, why)));
                }
                Command::Stop(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
