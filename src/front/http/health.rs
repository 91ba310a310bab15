//! `/ping`: `Healthy`, or `HealthyBusy` while any event is in flight.
//!
//! AgentCore reads `time_of_last_update` to decide whether a session is idle,
//! so it moves only when the status changes; bumping it on every ping would
//! make an idle server look busy.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// What `/ping` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    Healthy,
    HealthyBusy,
}

/// The `/ping` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ping {
    pub status: Status,
    /// Unix seconds of the last change of `status`.
    pub time_of_last_update: u64,
}

/// Counts events in flight. Cheap to clone; every clone is the same counter.
#[derive(Clone)]
pub struct Health {
    state: Arc<Mutex<State>>,
}

struct State {
    in_flight: usize,
    ping: Ping,
}

/// Marks one event in flight until dropped.
pub struct Busy {
    state: Arc<Mutex<State>>,
}

impl Health {
    pub fn new() -> Self {
        Health {
            state: Arc::new(Mutex::new(State {
                in_flight: 0,
                ping: Ping {
                    status: Status::Healthy,
                    time_of_last_update: unix_seconds(),
                },
            })),
        }
    }

    /// Call when an event is handed to the core; drop the guard once the
    /// session has answered it (not when the client leaves: the worker may
    /// still be busy with it).
    pub fn begin(&self) -> Busy {
        if let Ok(mut state) = self.state.lock() {
            state.in_flight += 1;
            state.set(Status::HealthyBusy);
        }
        Busy {
            state: Arc::clone(&self.state),
        }
    }

    pub fn ping(&self) -> Ping {
        self.state.lock().map(|state| state.ping).unwrap_or(Ping {
            status: Status::Healthy,
            time_of_last_update: unix_seconds(),
        })
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn set(&mut self, status: Status) {
        if self.ping.status != status {
            self.ping = Ping {
                status,
                time_of_last_update: unix_seconds(),
            };
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut state) = self.state.lock() {
            state.in_flight = state.in_flight.saturating_sub(1);
            if state.in_flight == 0 {
                state.set(Status::Healthy);
            }
        }
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_while_any_event_is_in_flight() {
        let health = Health::new();
        assert_eq!(health.ping().status, Status::Healthy);
        let first = health.begin();
        let second = health.begin();
        assert_eq!(health.ping().status, Status::HealthyBusy);
        drop(first);
        assert_eq!(health.ping().status, Status::HealthyBusy);
        drop(second);
        assert_eq!(health.ping().status, Status::Healthy);
    }

    #[test]
    fn the_time_moves_only_when_the_status_changes() {
        let health = Health::new();
        // Pretend the last change was long ago, so any rewrite would show.
        health.state.lock().unwrap().ping.time_of_last_update = 7;
        assert_eq!(health.ping().time_of_last_update, 7);
        let busy = health.begin();
        let changed = health.ping().time_of_last_update;
        assert!(changed > 7);
        let again = health.begin();
        drop(again);
        assert_eq!(health.ping().time_of_last_update, changed);
        drop(busy);
        assert_eq!(health.ping().status, Status::Healthy);
    }
}
