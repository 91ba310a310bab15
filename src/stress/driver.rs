//! Drives the load: `concurrency` lanes, each taking the next session and
//! sending its events one at a time, checking every answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::args::WorkerKind;
use super::pace::Pacer;
use super::plan::{self, Action, Naming};
use super::tally::{Live, Tally};
use super::target::Target;
use super::verify::SessionCheck;

/// The shape of a run.
pub struct Load {
    pub sessions: u64,
    pub events: u64,
    pub concurrency: u64,
    pub kind: WorkerKind,
    pub naming: Naming,
    /// Set with `--session-interval`: when each session may start.
    pub pacer: Option<Pacer>,
}

/// Runs every session (or until `stop`), and returns what was counted.
pub async fn drive(
    target: Arc<Target>,
    load: Arc<Load>,
    live: Arc<Live>,
    stop: CancellationToken,
) -> Tally {
    let next = Arc::new(AtomicU64::new(0));
    let mut lanes = JoinSet::new();
    for _ in 0..load.concurrency.min(load.sessions) {
        let lane = Lane {
            target: Arc::clone(&target),
            load: Arc::clone(&load),
            live: Arc::clone(&live),
            next: Arc::clone(&next),
            stop: stop.clone(),
            tally: Tally::new(),
        };
        lanes.spawn(lane.run());
    }
    let mut tally = Tally::new();
    while let Some(joined) = lanes.join_next().await {
        match joined {
            Ok(lane) => tally.merge(lane),
            // A lane only panics on a bug; its sessions' counts are lost, and
            // the report says so through its error kind.
            Err(error) => tally.error("driver_failed", error.to_string()),
        }
    }
    tally
}

/// One session at a time, from a shared queue of session indices.
struct Lane {
    target: Arc<Target>,
    load: Arc<Load>,
    live: Arc<Live>,
    next: Arc<AtomicU64>,
    stop: CancellationToken,
    tally: Tally,
}

impl Lane {
    async fn run(mut self) -> Tally {
        while !self.stop.is_cancelled() {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.load.sessions {
                break;
            }
            if let Some(pacer) = &self.load.pacer {
                tokio::select! {
                    _ = self.stop.cancelled() => break,
                    _ = pacer.wait_turn() => {}
                }
            }
            self.session(index).await;
        }
        self.tally
    }

    async fn session(&mut self, index: u64) {
        let mut check = SessionCheck::new(self.load.naming.session_id(index), self.load.kind);
        for step in 0..self.load.events {
            if step > 0 && self.stop.is_cancelled() {
                break;
            }
            self.event(&mut check, step).await;
        }
    }

    async fn event(&mut self, check: &mut SessionCheck, step: u64) {
        let action = plan::action_at(self.load.kind, step, check.file_known());
        let message = match action {
            Action::Write => Naming::nonce(check.session_id()),
            _ => format!("event {step}"),
        };
        let event = plan::event(check.session_id(), action, &message);
        check.sent(action);
        let started = Instant::now();
        let sent = self.target.send(check.session_id(), event).await;
        let elapsed = started.elapsed();
        Live::bump(&self.live.events);
        let answer = match sent {
            Ok(answer) => answer,
            Err(failure) => {
                Live::bump(&self.live.errors);
                self.tally.error(&failure.kind, failure.message);
                check.forget();
                return;
            }
        };
        if answer.fresh_worker {
            self.tally.fresh_workers += 1;
            check.fresh_worker(action);
        }
        let findings = check.verify(action, &message, &answer.result);
        if let Some(why) = findings.unexpected {
            Live::bump(&self.live.errors);
            self.tally.error("unexpected_answer", why);
            check.forget();
            return;
        }
        self.tally.latency(step == 0, elapsed);
        if step == 0 {
            self.tally.sessions_started += 1;
        }
        let clean = findings.misroute.is_none() && findings.leak.is_none();
        if let Some(why) = findings.misroute {
            Live::bump(&self.live.misroutes);
            self.tally.misroute(why);
        }
        if let Some(why) = findings.leak {
            Live::bump(&self.live.leaks);
            self.tally.leak(why);
        }
        if clean {
            Live::bump(&self.live.ok);
            self.tally.ok += 1;
        } else {
            self.tally.violating += 1;
        }
    }
}
