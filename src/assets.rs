//! Files every session must be able to open, whatever the tree sessionvisor was
//! built in. Sessions run under other uids when the supervisor is root, and see
//! private /tmp, /var/tmp and /dev/shm; a clone in `/root` or in a `mktemp -d`
//! directory is out of their reach. The Python handler host is embedded and run
//! with `python3 -c`; the bundled echo agent and the reference worker are copied,
//! when needed, into a data directory every session can read.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The Python handler host (`worker/python/handler_host.py`).
pub const HANDLER_HOST: &str = include_str!("../worker/python/handler_host.py");
/// The seed tutorial's echo agent (`worker/examples/echo_agent.py`).
pub const ECHO_AGENT: &str = include_str!("../worker/examples/echo_agent.py");

/// Where copies for sessions live: `/var/lib/sessionvisor` for root, else
/// `$XDG_DATA_HOME/sessionvisor` or `~/.local/share/sessionvisor`.
pub fn data_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/sessionvisor");
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("sessionvisor");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".local/share/sessionvisor")
}

/// The echo agent as a file sessions can open: the source tree's own when
/// sessions can reach it, else a copy in [`data_dir`].
pub fn echo_agent() -> io::Result<PathBuf> {
    let in_tree = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/worker/examples/echo_agent.py"
    ));
    let unchanged = fs::read(in_tree).is_ok_and(|bytes| bytes == ECHO_AGENT.as_bytes());
    if unchanged && reachable_by_sessions(in_tree, false).is_ok() {
        return Ok(in_tree.to_path_buf());
    }
    write_once("echo_agent", "py", ECHO_AGENT.as_bytes(), 0o644)
}

/// `path` itself when sessions can run it, else a copy in [`data_dir`].
pub fn reachable_program(path: &Path) -> io::Result<PathBuf> {
    if reachable_by_sessions(path, true).is_ok() {
        return Ok(path.to_path_buf());
    }
    let bytes = fs::read(path)?;
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    write_once(&stem, "", &bytes, 0o755)
}

/// Writes `bytes` under a name that carries their hash, once: an existing copy
/// with that name already holds exactly these bytes.
fn write_once(stem: &str, extension: &str, bytes: &[u8], mode: u32) -> io::Result<PathBuf> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let dir = data_dir();
    fs::create_dir_all(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    let name = if extension.is_empty() {
        format!("{stem}-{short}")
    } else {
        format!("{stem}-{short}.{extension}")
    };
    let path = dir.join(name);
    if !path.is_file() {
        let partial = tempfile::NamedTempFile::new_in(&dir)?;
        fs::write(partial.path(), bytes)?;
        fs::set_permissions(partial.path(), fs::Permissions::from_mode(mode))?;
        partial.persist(&path).map_err(|e| e.error)?;
    }
    Ok(path)
}

/// Whether a session could open `path` (and run it, if `execute`): it is not
/// in a directory that is private inside sessions, and, when sessions run under
/// other uids (the supervisor is root), every directory above it lets others
/// search and the file lets others read.
pub fn reachable_by_sessions(path: &Path, execute: bool) -> Result<(), String> {
    let path = fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for private in ["/tmp", "/var/tmp", "/dev/shm"] {
        if path.starts_with(private) {
            return Err(format!(
                "{} is under {private}, which every session sees as its own private directory",
                path.display()
            ));
        }
    }
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    for dir in path.ancestors().skip(1) {
        let mode = fs::metadata(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .mode();
        if mode & 0o001 == 0 {
            return Err(format!(
                "{} is inside {}, which other users cannot enter (mode {:o}); sessions run under \
                 their own unprivileged uids when sessionvisor runs as root",
                path.display(),
                dir.display(),
                mode & 0o7777
            ));
        }
    }
    let mode = fs::metadata(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .mode();
    let needed = if execute { 0o005 } else { 0o004 };
    if mode & needed != needed {
        return Err(format!(
            "{} is not {} by other users (mode {:o}); sessions run under their own unprivileged \
             uids when sessionvisor runs as root",
            path.display(),
            if execute {
                "readable and executable"
            } else {
                "readable"
            },
            mode & 0o7777
        ));
    }
    Ok(())
}
