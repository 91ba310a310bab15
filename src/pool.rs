//! The warm pool: sandboxes already built and workers already started (a Python
//! handler already imported) that belong to no session yet. A new session takes
//! one instead of waiting for a cold start; the pool refills in the background.
//!
//! A pooled worker is handed out once and never returns to the pool, so it
//! serves exactly one session, ever. Nothing runs in it before it is taken, so
//! its `/tmp` is empty then.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio_util::task::TaskTracker;

use crate::launcher::LaunchedWorker;

pub struct WarmPool {
    size: usize,
    state: Mutex<PoolState>,
    /// Refills in flight; waited for at shutdown so none outlives the pool.
    refills: TaskTracker,
}

#[derive(Default)]
struct PoolState {
    ready: VecDeque<LaunchedWorker>,
    starting: usize,
    closed: bool,
}

impl WarmPool {
    pub fn new(size: usize) -> Self {
        WarmPool {
            size,
            state: Mutex::new(PoolState::default()),
            refills: TaskTracker::new(),
        }
    }

    /// Takes the oldest ready worker, if any.
    pub fn take(&self) -> Option<LaunchedWorker> {
        self.state.lock().ok()?.ready.pop_front()
    }

    /// How many workers to start so that ready + starting reaches the size;
    /// counts them as starting.
    pub fn reserve_refills(&self) -> usize {
        let Ok(mut state) = self.state.lock() else {
            return 0;
        };
        if state.closed {
            return 0;
        }
        let missing = self.size.saturating_sub(state.ready.len() + state.starting);
        state.starting += missing;
        missing
    }

    /// Adds a freshly started worker; hands it back if the pool has closed.
    pub fn put(&self, worker: Option<LaunchedWorker>) -> Option<LaunchedWorker> {
        let Ok(mut state) = self.state.lock() else {
            return worker;
        };
        state.starting = state.starting.saturating_sub(1);
        match worker {
            Some(worker) if !state.closed => {
                state.ready.push_back(worker);
                None
            }
            other => other,
        }
    }

    pub fn refills(&self) -> &TaskTracker {
        &self.refills
    }

    /// Stops refilling and returns every ready worker, for retiring.
    pub async fn close(&self) -> Vec<LaunchedWorker> {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
        }
        self.refills.close();
        self.refills.wait().await;
        self.state
            .lock()
            .map(|mut state| state.ready.drain(..).collect())
            .unwrap_or_default()
    }
}
