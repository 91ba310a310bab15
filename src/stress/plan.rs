//! What each session sends: its ids, its nonce, and which action each of its
//! events runs, chosen so that every few events check both the worker's
//! counter (is this still my worker?) and the session's /tmp (is this still
//! my file?).

use serde_json::{json, Value};

use super::args::WorkerKind;

/// One event's action, as both bundled workers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Writes the message to `/tmp/session.txt`.
    Write,
    /// Native: answers with the process's event count. Python: one agent turn.
    Echo,
    /// Answers with the content of `/tmp/session.txt`.
    Read,
    /// Python: answers with the agent's session id and its number of turns.
    Whoami,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Write => "write",
            Action::Echo => "echo",
            Action::Read => "read",
            Action::Whoami => "whoami",
        }
    }
}

/// The cycle after a session's first event (its nonce write). The native
/// worker reports its counter on `echo`; the Python agent counts `echo` turns
/// and reports them on `whoami`.
fn cycle(kind: WorkerKind) -> &'static [Action] {
    match kind {
        WorkerKind::Native => &[Action::Echo, Action::Read],
        WorkerKind::Python => &[Action::Echo, Action::Whoami, Action::Read],
    }
}

/// The action of a session's event number `step` (0-based). The first writes
/// the session's nonce. A session that no longer knows what its /tmp holds (a
/// failed event left it unknown) writes a fresh nonce where it would have
/// read, so the counter checks go on in between.
pub fn action_at(kind: WorkerKind, step: u64, file_known: bool) -> Action {
    if step == 0 {
        return Action::Write;
    }
    let cycle = cycle(kind);
    match cycle[((step - 1) % cycle.len() as u64) as usize] {
        Action::Read if !file_known => Action::Write,
        action => action,
    }
}

/// Ids and nonces of one run. The run id makes them unique across runs, so a
/// run against a long-lived `serve` never reuses a session another run left.
#[derive(Debug, Clone)]
pub struct Naming {
    run_id: String,
}

impl Naming {
    pub fn new() -> Self {
        Naming {
            run_id: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// 50 characters, above the AWS route's minimum of 33.
    pub fn session_id(&self, index: u64) -> String {
        format!("stress-{}-{index:06}", self.run_id)
    }

    /// A nonce names its session, so a leaked one tells whose it was.
    pub fn nonce(session_id: &str) -> String {
        format!("{session_id}#{}", uuid::Uuid::new_v4().simple())
    }
}

impl Default for Naming {
    fn default() -> Self {
        Self::new()
    }
}

/// The session a nonce was written by, when the text is one of ours.
pub fn nonce_owner(text: &str) -> Option<&str> {
    text.split_once('#')
        .map(|(owner, _)| owner)
        .filter(|owner| owner.starts_with("stress-"))
}

/// The event for one step. `session_id` is in the event too: the Python agent
/// takes it from there, and `run` requires it.
pub fn event(session_id: &str, action: Action, message: &str) -> Value {
    json!({"session_id": session_id, "action": action.as_str(), "message": message})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_with_a_write_and_then_check_counter_and_file_in_turn() {
        let native: Vec<_> = (0..5)
            .map(|s| action_at(WorkerKind::Native, s, true))
            .collect();
        assert_eq!(
            native,
            [
                Action::Write,
                Action::Echo,
                Action::Read,
                Action::Echo,
                Action::Read
            ]
        );
        let python: Vec<_> = (0..5)
            .map(|s| action_at(WorkerKind::Python, s, true))
            .collect();
        assert_eq!(
            python,
            [
                Action::Write,
                Action::Echo,
                Action::Whoami,
                Action::Read,
                Action::Echo
            ]
        );
        assert_eq!(action_at(WorkerKind::Native, 2, false), Action::Write);
        assert_eq!(action_at(WorkerKind::Native, 3, false), Action::Echo);
    }

    #[test]
    fn nonces_name_their_session() {
        let naming = Naming::new();
        let id = naming.session_id(7);
        assert!(id.len() >= 33, "{id}");
        let nonce = Naming::nonce(&id);
        assert_eq!(nonce_owner(&nonce), Some(id.as_str()));
        assert_ne!(Naming::nonce(&id), nonce);
        assert_eq!(nonce_owner("FILE_NOT_FOUND"), None);
    }
}
