//! Session storage (`--session-storage`): one persistent directory per session
//! id, mounted at /mnt/workspace.

/// A directory name for a session id: the id when it is plain and short, else
/// `%` and the hex SHA-256 of the id (`%` never appears in a plain name).
pub fn storage_name(session_id: &str) -> String {
    let plain = session_id.len() <= 128
        && !session_id.starts_with('.')
        && session_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        return session_id.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(session_id.as_bytes());
    let mut name = String::from("%");
    for byte in digest {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

/// Session uids are handed out per live session, so a storage directory may
/// belong to the uid of an earlier instance: give it to the current one.
pub fn chown_tree(path: &std::path::Path, uid: u32, gid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.uid() != uid || meta.gid() != gid {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_cannot_escape_or_collide() {
        assert_eq!(storage_name("session-1"), "session-1");
        assert!(storage_name("..").starts_with('%'));
        assert!(storage_name(".hidden").starts_with('%'));
        assert!(storage_name("a b").starts_with('%'));
        assert_ne!(storage_name("a b"), storage_name("a  b"));
        assert!(storage_name(&"x".repeat(256)).len() < 100);
    }
}
