//! The supervisor's state directory on the host.
//!
//! ```text
//! <base>/                      0700 (0711 as root, so session uids can traverse)
//!   sv-XXXXXX/                 one per running supervisor; holds `lock`
//!     lock                     flock()ed for the supervisor's whole life
//!     s-XXXXXX/                one per live session (0700, owned by the session uid)
//!       scratch/               inside the session: a size-limited tmpfs whose
//!                              tmp/ var-tmp/ shm/ are bound at /tmp, /var/tmp, /dev/shm
//!       root/                  empty; becomes the session's /
//! ```
//!
//! The base is hidden inside every sandbox. A supervisor killed by SIGKILL leaves
//! its `sv-` directory behind with an unlocked `lock`; the next start sweeps it.

use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::fcntl::{Flock, FlockArg};

const INSTANCE_PREFIX: &str = "sv-";
const LOCK_FILE: &str = "lock";
/// A directory this young without a lock file may be a supervisor still starting.
const STARTUP_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("cannot create state directory {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("state directory {} is owned by uid {owner}, not by us (uid {me}); choose another with --state-dir", path.display())]
    Foreign { path: PathBuf, owner: u32, me: u32 },
    #[error("cannot lock {}: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
}

/// This supervisor's own directory under the base, locked while it lives.
pub struct StateDir {
    base: PathBuf,
    instance: Option<tempfile::TempDir>,
    _lock: Flock<File>,
    shared_with_session_uids: bool,
    /// Instance names of dead supervisors swept at start: their cgroups go too.
    swept: Vec<String>,
}

impl StateDir {
    /// The default base: `$XDG_RUNTIME_DIR/sessionvisor` or `/tmp/sessionvisor-<uid>`,
    /// and `/run/sessionvisor` for root.
    pub fn default_base() -> PathBuf {
        let uid = nix::unistd::geteuid();
        if uid.is_root() && Path::new("/run").is_dir() {
            return PathBuf::from("/run/sessionvisor");
        }
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            if dir.is_dir() {
                return dir.join("sessionvisor");
            }
        }
        std::env::temp_dir().join(format!("sessionvisor-{uid}"))
    }

    /// Creates this supervisor's directory under `base` and sweeps the ones left
    /// by supervisors that died. `shared_with_session_uids`: as root, sessions run
    /// under other uids and must be able to traverse (not list) the base.
    pub fn open(base: &Path, shared_with_session_uids: bool) -> Result<Self, StateDirError> {
        let create = |path: &Path, source| StateDirError::Create {
            path: path.to_path_buf(),
            source,
        };
        fs::create_dir_all(base).map_err(|e| create(base, e))?;
        let meta = fs::symlink_metadata(base).map_err(|e| create(base, e))?;
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me || !meta.is_dir() {
            return Err(StateDirError::Foreign {
                path: base.to_path_buf(),
                owner: meta.uid(),
                me,
            });
        }
        let mode = if shared_with_session_uids {
            0o711
        } else {
            0o700
        };
        fs::set_permissions(base, Permissions::from_mode(mode)).map_err(|e| create(base, e))?;

        let swept = sweep_dead_instances(base);
        if !swept.is_empty() {
            tracing::info!(swept = swept.len(), base = %base.display(), "removed directories left by supervisors that died");
        }

        let instance = tempfile::Builder::new()
            .prefix(INSTANCE_PREFIX)
            .tempdir_in(base)
            .map_err(|e| create(base, e))?;
        fs::set_permissions(instance.path(), Permissions::from_mode(mode))
            .map_err(|e| create(instance.path(), e))?;
        let lock_path = instance.path().join(LOCK_FILE);
        let lock_error = |source| StateDirError::Lock {
            path: lock_path.clone(),
            source,
        };
        let file = File::create(&lock_path).map_err(lock_error)?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| lock_error(errno.into()))?;
        Ok(StateDir {
            base: base.to_path_buf(),
            instance: Some(instance),
            _lock: lock,
            shared_with_session_uids,
            swept,
        })
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Names of the dead supervisors' directories swept when this one started.
    pub fn swept_instances(&self) -> &[String] {
        &self.swept
    }

    /// This supervisor's directory name, unique among live supervisors.
    pub fn instance_name(&self) -> String {
        self.instance_path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("sv-{}", std::process::id()))
    }

    fn instance_path(&self) -> &Path {
        self.instance
            .as_ref()
            .map(|dir| dir.path())
            .unwrap_or(&self.base)
    }

    /// Makes a session's private directories, owned by `owner` when given.
    pub fn create_session_dirs(&self, owner: Option<(u32, u32)>) -> io::Result<SessionDirs> {
        let dir = tempfile::Builder::new()
            .prefix("s-")
            .tempdir_in(self.instance_path())?;
        let dirs = SessionDirs {
            scratch: dir.path().join("scratch"),
            root: dir.path().join("root"),
            dir,
        };
        fs::create_dir(&dirs.scratch)?;
        fs::create_dir(&dirs.root)?;
        if let Some((uid, gid)) = owner.filter(|_| self.shared_with_session_uids) {
            for path in [dirs.dir.path(), &dirs.scratch, &dirs.root] {
                chown_for_session(path, uid, gid)?;
            }
        }
        Ok(dirs)
    }

    /// Removes this supervisor's directory; every session's must be gone first.
    pub fn remove(mut self) -> io::Result<()> {
        match self.instance.take() {
            Some(dir) => {
                let path = dir.keep();
                remove_tree(&path)
            }
            None => Ok(()),
        }
    }
}

/// One session's private directories on the host.
pub struct SessionDirs {
    dir: tempfile::TempDir,
    pub scratch: PathBuf,
    pub root: PathBuf,
}

/// Hands `path` to a session uid, naming the likely cause when that fails.
pub fn chown_for_session(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot hand {} to session uid {uid}: {e} (is uid {uid} mapped in this user \
                 namespace? choose another range with --uid-base)",
                path.display()
            ),
        )
    })
}

impl SessionDirs {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Deletes everything the session wrote. Works even on directories the worker
    /// made unreadable to itself (mode 000), which `remove_dir_all` alone cannot.
    pub fn delete(self) -> io::Result<()> {
        let path = self.dir.keep();
        remove_tree(&path)
    }
}

/// `remove_dir_all`, retried after restoring owner permissions when a session
/// left directories without read or search permission.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            restore_owner_permissions(path);
            fs::remove_dir_all(path)
        }
    }
}

fn restore_owner_permissions(path: &Path) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let _ = fs::set_permissions(path, Permissions::from_mode(0o700));
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                restore_owner_permissions(&entry.path());
            }
        }
    }
}

/// Removes instance directories whose supervisor is gone (their lock is free).
/// Returns the names of the directories removed.
fn sweep_dead_instances(base: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(base) else {
        return Vec::new();
    };
    let mut swept = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_instance = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(INSTANCE_PREFIX));
        if !is_instance || !path.is_dir() {
            continue;
        }
        let dead = match File::open(path.join(LOCK_FILE)) {
            Ok(file) => Flock::lock(file, FlockArg::LockExclusiveNonblock).is_ok(),
            Err(_) => entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|modified| {
                    SystemTime::now()
                        .duration_since(modified)
                        .is_ok_and(|age| age > STARTUP_GRACE)
                })
                .unwrap_or(false),
        };
        if dead {
            match remove_tree(&path) {
                Ok(()) => swept.push(entry.file_name().to_string_lossy().into_owned()),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot remove a dead supervisor's directory")
                }
            }
        }
    }
    swept
}
