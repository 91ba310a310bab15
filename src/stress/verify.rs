//! Checks every answer a session gets against what only its own worker could
//! have answered: its own session id, a counter that moves exactly as far as
//! this session's own events moved it, and its own nonce in its /tmp.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::args::WorkerKind;
use super::plan::{nonce_owner, Action};

/// What the native worker's and the echo agent's `read` answer when
/// `/tmp/session.txt` does not exist.
const FILE_NOT_FOUND: &str = "FILE_NOT_FOUND";

/// What one answer showed. An answer can be both misrouted and leaky.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// The answer came from a worker that also serves someone else: another
    /// session's id, or a counter that moved by events this session never sent.
    pub misroute: Option<String>,
    /// The session's /tmp held something other than what it wrote there.
    pub leak: Option<String>,
    /// The answer is not what the action returns; nothing can be checked.
    pub unexpected: Option<String>,
}

/// What the session's `/tmp/session.txt` should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileState {
    /// Not known (after a failed event): the next event rewrites it.
    Unknown,
    /// A fresh worker's /tmp is empty.
    Absent,
    Holds(String),
}

/// A per-process counter as the session should see it. `last` is `None` when
/// a failed event left it unknown; the next observation becomes the baseline.
#[derive(Debug, Clone, Copy)]
struct Counter {
    last: Option<u64>,
    /// Events this session sent since `last` that the worker counts.
    pending: u64,
}

/// The expected state of one session's worker.
#[derive(Debug)]
pub struct SessionCheck {
    session_id: String,
    kind: WorkerKind,
    file: FileState,
    counter: Counter,
}

/// The `{"statusCode", "body"}` shape both bundled workers answer with.
#[derive(Deserialize)]
struct LambdaResult {
    #[serde(rename = "statusCode")]
    status_code: u16,
    body: String,
}

impl SessionCheck {
    /// A session whose worker has not started: it will count from zero and
    /// its /tmp will be empty.
    pub fn new(session_id: String, kind: WorkerKind) -> Self {
        SessionCheck {
            session_id,
            kind,
            file: FileState::Absent,
            counter: Counter {
                last: Some(0),
                pending: 0,
            },
        }
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Whether a read can be checked; otherwise the session writes a nonce.
    pub fn file_known(&self) -> bool {
        self.file != FileState::Unknown
    }

    /// Call before sending `action`.
    pub fn sent(&mut self, action: Action) {
        if self.counts(action) {
            self.counter.pending += 1;
        }
    }

    /// After a failed event the worker may or may not have been replaced, and
    /// may or may not have run the event: start over from what comes next.
    pub fn forget(&mut self) {
        self.file = FileState::Unknown;
        self.counter = Counter {
            last: None,
            pending: 0,
        };
    }

    /// The supervisor says this answer came from a new worker (the previous one
    /// ended): it counted only this event, and its /tmp started empty.
    pub fn fresh_worker(&mut self, action: Action) {
        self.file = FileState::Absent;
        self.counter = Counter {
            last: Some(0),
            pending: u64::from(self.counts(action)),
        };
    }

    /// Whether the worker's counter moves for `action`: the native worker
    /// counts every event, the echo agent only its `echo` turns.
    fn counts(&self, action: Action) -> bool {
        match self.kind {
            WorkerKind::Native => true,
            WorkerKind::Python => action == Action::Echo,
        }
    }

    /// Checks the worker's answer to `action`, sent with `message`.
    pub fn verify(&mut self, action: Action, message: &str, result: &RawValue) -> Findings {
        let body = match parse_body(result) {
            Ok(body) => body,
            Err(why) => {
                return Findings {
                    unexpected: Some(format!("{} answered {why}", action.as_str())),
                    ..Findings::default()
                }
            }
        };
        let mut findings = Findings {
            misroute: self.check_id(&body, "session_id"),
            ..Findings::default()
        };
        let counter = match (self.kind, action) {
            (WorkerKind::Native, Action::Echo) => Some("event_count"),
            (WorkerKind::Python, Action::Whoami) => {
                findings.misroute = findings
                    .misroute
                    .or_else(|| self.check_id(&body, "context_session_id"));
                Some("turns")
            }
            _ => None,
        };
        if let Some(field) = counter {
            match body.get(field).and_then(Value::as_u64) {
                Some(seen) => {
                    let jumped = self.observe(seen);
                    findings.misroute = findings.misroute.or(jumped);
                }
                None => findings.unexpected = Some(format!("no {field} in {body}")),
            }
        }
        match action {
            Action::Write => match body.get("status").and_then(Value::as_str) {
                Some("written") => self.file = FileState::Holds(message.to_string()),
                _ => findings.unexpected = Some(format!("write answered {body}")),
            },
            Action::Read => match body.get("content").and_then(Value::as_str) {
                Some(content) => findings.leak = self.check_content(content),
                None => findings.unexpected = Some(format!("no content in {body}")),
            },
            Action::Echo | Action::Whoami => {}
        }
        findings
    }

    /// A misroute when the body's `field` names another session.
    fn check_id(&self, body: &Value, field: &str) -> Option<String> {
        match body.get(field) {
            Some(Value::String(id)) if *id == self.session_id => None,
            Some(other) => Some(format!(
                "{} got an answer whose {field} is {other}",
                self.session_id
            )),
            None => Some(format!("{} got an answer without {field}", self.session_id)),
        }
    }

    /// Records a counter reading; a misroute when it is not where this
    /// session's own events put it.
    fn observe(&mut self, seen: u64) -> Option<String> {
        let expected = self.counter.last.map(|last| last + self.counter.pending);
        self.counter = Counter {
            last: Some(seen),
            pending: 0,
        };
        match expected {
            Some(expected) if seen != expected => Some(format!(
                "{}: the worker's counter is {seen}, expected {expected}: \
                 the worker handled events this session did not send",
                self.session_id
            )),
            _ => None,
        }
    }

    /// A leak when the file holds anything but what this session put there.
    fn check_content(&self, content: &str) -> Option<String> {
        let expected = match &self.file {
            FileState::Unknown => return None,
            FileState::Absent => FILE_NOT_FOUND,
            FileState::Holds(nonce) => nonce.as_str(),
        };
        if content == expected {
            return None;
        }
        let what = match nonce_owner(content) {
            Some(owner) if owner == self.session_id => "an older nonce of its own".to_string(),
            Some(owner) => format!("the nonce of session {owner}"),
            None if content == FILE_NOT_FOUND => "no file".to_string(),
            None => format!("{} bytes that it never wrote", content.len()),
        };
        Some(format!(
            "{} read {what} from its /tmp instead of {expected:?}",
            self.session_id
        ))
    }
}

/// The body of a 200 `{"statusCode", "body"}` result, parsed.
fn parse_body(result: &RawValue) -> Result<Value, String> {
    let lambda: LambdaResult = serde_json::from_str(result.get())
        .map_err(|e| format!("{} ({e})", preview(result.get())))?;
    if lambda.status_code != 200 {
        return Err(format!(
            "status {}: {}",
            lambda.status_code,
            preview(&lambda.body)
        ));
    }
    serde_json::from_str(&lambda.body).map_err(|e| format!("a body that is not JSON ({e})"))
}

fn preview(text: &str) -> String {
    text.chars().take(160).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(body: Value) -> Box<RawValue> {
        let result = json!({"statusCode": 200, "body": body.to_string()});
        RawValue::from_string(result.to_string()).unwrap()
    }

    /// Sends `action` and verifies `body` as its answer.
    fn step(check: &mut SessionCheck, action: Action, message: &str, body: Value) -> Findings {
        check.sent(action);
        check.verify(action, message, &answer(body))
    }

    #[test]
    fn a_session_served_by_its_own_worker_passes() {
        let mut check = SessionCheck::new("a".into(), WorkerKind::Native);
        let ok = Findings::default();
        let write = json!({"status": "written", "session_id": "a"});
        assert_eq!(step(&mut check, Action::Write, "a#1", write), ok);
        let echo = json!({"session_id": "a", "event_count": 2});
        assert_eq!(step(&mut check, Action::Echo, "m", echo), ok);
        let read = json!({"session_id": "a", "content": "a#1"});
        assert_eq!(step(&mut check, Action::Read, "", read), ok);
        let echo = json!({"session_id": "a", "event_count": 4});
        assert_eq!(step(&mut check, Action::Echo, "m", echo), ok);
    }

    #[test]
    fn a_counter_that_jumps_or_repeats_is_a_misroute() {
        let mut check = SessionCheck::new("a".into(), WorkerKind::Native);
        let write = json!({"status": "written", "session_id": "a"});
        step(&mut check, Action::Write, "a#1", write);
        let jumped = json!({"session_id": "a", "event_count": 5});
        let found = step(&mut check, Action::Echo, "m", jumped);
        assert!(found.misroute.unwrap().contains("counter is 5, expected 2"));
        step(
            &mut check,
            Action::Read,
            "",
            json!({"session_id": "a", "content": "a#1"}),
        );
        let repeated = json!({"session_id": "a", "event_count": 5});
        assert!(step(&mut check, Action::Echo, "m", repeated)
            .misroute
            .is_some());
    }

    #[test]
    fn another_sessions_id_is_a_misroute() {
        let mut check = SessionCheck::new("a".into(), WorkerKind::Python);
        let write = json!({"status": "written", "session_id": "b"});
        let found = step(&mut check, Action::Write, "a#1", write);
        assert!(found.misroute.unwrap().contains("\"b\""));
        let whoami = json!({"session_id": "a", "context_session_id": "b", "turns": 0, "pid": 1});
        assert!(step(&mut check, Action::Whoami, "", whoami)
            .misroute
            .is_some());
    }

    #[test]
    fn the_python_agent_counts_echo_turns_only() {
        let mut check = SessionCheck::new("a".into(), WorkerKind::Python);
        let write = json!({"status": "written", "session_id": "a"});
        step(&mut check, Action::Write, "a#1", write);
        step(&mut check, Action::Echo, "m", json!({"session_id": "a"}));
        let whoami = json!({"session_id": "a", "context_session_id": "a", "turns": 1, "pid": 1});
        assert_eq!(
            step(&mut check, Action::Whoami, "", whoami),
            Findings::default()
        );
    }

    #[test]
    fn anything_but_the_sessions_own_nonce_is_a_leak() {
        let mut check = SessionCheck::new("stress-a".into(), WorkerKind::Native);
        let write = json!({"status": "written", "session_id": "stress-a"});
        step(&mut check, Action::Write, "stress-a#1", write);
        let foreign = json!({"session_id": "stress-a", "content": "stress-b#9"});
        let leak = step(&mut check, Action::Read, "", foreign).leak.unwrap();
        assert!(leak.contains("nonce of session stress-b"), "{leak}");
        let gone = json!({"session_id": "stress-a", "content": "FILE_NOT_FOUND"});
        assert!(step(&mut check, Action::Read, "", gone).leak.is_some());
    }

    #[test]
    fn a_fresh_worker_starts_over_and_a_failure_forgets() {
        let mut check = SessionCheck::new("a".into(), WorkerKind::Native);
        let write = json!({"status": "written", "session_id": "a"});
        step(&mut check, Action::Write, "a#1", write);
        check.sent(Action::Read);
        check.fresh_worker(Action::Read);
        let empty = json!({"session_id": "a", "content": "FILE_NOT_FOUND"});
        assert_eq!(
            check.verify(Action::Read, "", &answer(empty)),
            Findings::default()
        );
        let echo = json!({"session_id": "a", "event_count": 2});
        assert_eq!(
            step(&mut check, Action::Echo, "m", echo),
            Findings::default()
        );

        check.forget();
        assert!(!check.file_known());
        let anything = json!({"session_id": "a", "event_count": 40});
        assert_eq!(
            step(&mut check, Action::Echo, "m", anything),
            Findings::default()
        );
    }

    #[test]
    fn answers_of_another_shape_are_unexpected() {
        let mut check = SessionCheck::new("a".into(), WorkerKind::Native);
        check.sent(Action::Echo);
        let not_lambda = RawValue::from_string("[1]".into()).unwrap();
        assert!(check
            .verify(Action::Echo, "m", &not_lambda)
            .unexpected
            .is_some());
        let refused = RawValue::from_string(
            json!({"statusCode": 400, "body": "{\"error\":\"Unknown action: whoami\"}"})
                .to_string(),
        )
        .unwrap();
        let found = check.verify(Action::Whoami, "", &refused);
        assert!(found.unexpected.unwrap().contains("status 400"));
    }
}
