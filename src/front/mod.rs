//! Fronts: how clients reach the registry. They know sessions and events, never
//! namespaces or workers.

pub mod http;
pub mod stdio;
pub mod stdio_pipes;

/// Longest session id accepted, in bytes (AgentCore's limit).
pub const MAX_SESSION_ID_BYTES: usize = 256;

/// Checks a session id: non-empty, at most 256 bytes, no control characters and
/// no `/` (ids name things on the host; a slash could name a path).
pub fn validate_session_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("session_id is empty".into());
    }
    if id.len() > MAX_SESSION_ID_BYTES {
        return Err(format!(
            "session_id is {} bytes; the limit is {MAX_SESSION_ID_BYTES}",
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(format!("session_id contains the control character {c:?}"));
    }
    if id.contains('/') {
        return Err("session_id contains '/'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_checked() {
        assert!(validate_session_id("a").is_ok());
        assert!(validate_session_id(&"x".repeat(256)).is_ok());
        assert!(validate_session_id(&"x".repeat(257)).is_err());
        assert!(validate_session_id("").is_err());
        assert!(validate_session_id("a/b").is_err());
        assert!(validate_session_id("a\nb").is_err());
        assert!(validate_session_id("a\u{7f}b").is_err());
        assert!(validate_session_id("세션-1").is_ok());
    }
}
