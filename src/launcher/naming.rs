//! Hostnames for sessions.

/// A valid hostname derived from the session id: its first safe characters and a
/// hash of the whole id, so distinct ids get distinct names.
pub fn hostname_for(session_id: &str) -> String {
    let safe: String = session_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect::<String>()
        .trim_matches('-')
        .to_ascii_lowercase();
    let hash = fnv1a(session_id.as_bytes());
    if safe.is_empty() {
        format!("sv-{hash:08x}")
    } else {
        format!("sv-{safe}-{hash:08x}")
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_valid_and_distinct() {
        let a = hostname_for("session-A");
        let b = hostname_for("session-a");
        assert_ne!(a, b);
        assert!(a.len() <= 63);
        assert!(hostname_for("ÿÿ/../..").starts_with("sv-"));
        assert!(hostname_for(&"x".repeat(256)).len() <= 63);
    }
}
