//! Per-session cgroups: memory, process count and CPU quota, enforced by the
//! kernel for the session's whole process tree.
//!
//! * cgroup v2 where we can write a subtree: as root the top of the unified
//!   hierarchy, rootless the parent of our own cgroup when systemd delegated it
//!   (`user@UID.service`, `Delegate=yes`).
//! * cgroup v1 as root on v1 or hybrid hosts: one directory per controller.
//!
//! The supervisor creates the cgroup and writes the limits; the session's init
//! joins it (writes its pid to `cgroup.procs`) before it forks anything, so no
//! process of the session ever runs outside it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::probe::CgroupLayout;

const V1_ROOT: &str = "/sys/fs/cgroup";
const V2_PERIOD_US: u64 = 100_000;

/// Per-session limits a cgroup can enforce.
#[derive(Debug, Clone, Copy)]
pub struct CgroupLimits {
    pub memory_bytes: u64,
    pub pids: u64,
    pub cpus: Option<f64>,
}

/// Where this supervisor's session cgroups live, and which version.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "version", rename_all = "lowercase")]
pub enum CgroupRoot {
    /// One parent per v1 controller: memory, pids, cpu.
    V1 {
        memory: Option<PathBuf>,
        pids: Option<PathBuf>,
        cpu: Option<PathBuf>,
    },
    /// A v2 directory with memory, pids and cpu enabled for its children.
    V2 { parent: PathBuf, cpu: bool },
}

/// Why no cgroup could be used: the reason and how to get one.
#[derive(Debug, Clone, Serialize)]
pub struct CgroupUnavailable {
    pub reason: String,
    pub fix: String,
}

impl CgroupRoot {
    /// Sets up `<parent>/<name>` for this supervisor's sessions, after removing
    /// the cgroups of `dead` supervisors (instance names whose state this one
    /// swept: their processes died with them, their empty cgroups did not).
    pub fn create(
        layout: CgroupLayout,
        name: &str,
        dead: &[String],
    ) -> Result<Self, CgroupUnavailable> {
        let created = Self::create_fresh(layout, name)?;
        for parent in created.parents() {
            if let Some(base) = parent.parent() {
                for dead in dead {
                    remove_cgroup_tree(&base.join(dead));
                }
            }
        }
        Ok(created)
    }

    /// This supervisor's own cgroup directories, one per hierarchy.
    fn parents(&self) -> Vec<&PathBuf> {
        match self {
            CgroupRoot::V1 { memory, pids, cpu } => {
                [memory, pids, cpu].into_iter().flatten().collect()
            }
            CgroupRoot::V2 { parent, .. } => vec![parent],
        }
    }

    fn create_fresh(layout: CgroupLayout, name: &str) -> Result<Self, CgroupUnavailable> {
        let root = nix::unistd::geteuid().is_root();
        match layout {
            CgroupLayout::V2 => create_v2(name, root),
            CgroupLayout::Hybrid | CgroupLayout::V1 if root => create_v1(name),
            CgroupLayout::Hybrid | CgroupLayout::V1 => Err(CgroupUnavailable {
                reason: "cgroup v1 (or hybrid) hierarchies cannot be delegated to an ordinary user"
                    .into(),
                fix:
                    "run sessionvisor as root, or boot with the unified cgroup v2 hierarchy \
                      (systemd.unified_cgroup_hierarchy=1) and run it inside a systemd user session"
                        .into(),
            }),
            CgroupLayout::Absent => Err(CgroupUnavailable {
                reason: "no cgroup filesystem is mounted".into(),
                fix: "mount cgroup2 at /sys/fs/cgroup".into(),
            }),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            CgroupRoot::V1 { memory, pids, cpu } => format!(
                "cgroup v1 (memory: {}, pids: {}, cpu: {})",
                memory
                    .as_ref()
                    .map_or("unavailable".into(), |p| p.display().to_string()),
                pids.as_ref()
                    .map_or("unavailable".into(), |p| p.display().to_string()),
                cpu.as_ref()
                    .map_or("unavailable".into(), |p| p.display().to_string()),
            ),
            CgroupRoot::V2 { parent, .. } => format!("cgroup v2 at {}", parent.display()),
        }
    }

    /// "cgroup v1" or "cgroup v2".
    pub fn version_name(&self) -> &'static str {
        match self {
            CgroupRoot::V1 { .. } => "cgroup v1",
            CgroupRoot::V2 { .. } => "cgroup v2",
        }
    }

    pub fn limits_memory(&self) -> bool {
        match self {
            CgroupRoot::V1 { memory, .. } => memory.is_some(),
            CgroupRoot::V2 { .. } => true,
        }
    }

    pub fn limits_pids(&self) -> bool {
        match self {
            CgroupRoot::V1 { pids, .. } => pids.is_some(),
            CgroupRoot::V2 { .. } => true,
        }
    }

    pub fn limits_cpu(&self) -> bool {
        match self {
            CgroupRoot::V1 { cpu, .. } => cpu.is_some(),
            CgroupRoot::V2 { cpu, .. } => *cpu,
        }
    }

    /// Creates one session's cgroup with `limits` written.
    pub fn session(&self, name: &str, limits: CgroupLimits) -> io::Result<SessionCgroup> {
        let mut cgroup = SessionCgroup {
            dirs: Vec::new(),
            version2: matches!(self, CgroupRoot::V2 { .. }),
            memory_dir: None,
            pids_dir: None,
        };
        match self {
            CgroupRoot::V1 { memory, pids, cpu } => {
                if let Some(parent) = memory {
                    let dir = cgroup.make(parent, name)?;
                    write(
                        &dir,
                        "memory.limit_in_bytes",
                        &limits.memory_bytes.to_string(),
                    )?;
                    // Without this, a capped session would swap instead of failing.
                    let _ = write(
                        &dir,
                        "memory.memsw.limit_in_bytes",
                        &limits.memory_bytes.to_string(),
                    );
                    cgroup.memory_dir = Some(dir);
                }
                if let Some(parent) = pids {
                    let dir = cgroup.make(parent, name)?;
                    write(&dir, "pids.max", &limits.pids.to_string())?;
                    cgroup.pids_dir = Some(dir);
                }
                if let (Some(parent), Some(cpus)) = (cpu, limits.cpus) {
                    let dir = cgroup.make(parent, name)?;
                    write(&dir, "cpu.cfs_period_us", &V2_PERIOD_US.to_string())?;
                    write(&dir, "cpu.cfs_quota_us", &cpu_quota(cpus).to_string())?;
                }
            }
            CgroupRoot::V2 { parent, cpu } => {
                let dir = cgroup.make(parent, name)?;
                write(&dir, "memory.max", &limits.memory_bytes.to_string())?;
                let _ = write(&dir, "memory.swap.max", "0");
                write(&dir, "pids.max", &limits.pids.to_string())?;
                if let (true, Some(cpus)) = (cpu, limits.cpus) {
                    write(
                        &dir,
                        "cpu.max",
                        &format!("{} {V2_PERIOD_US}", cpu_quota(cpus)),
                    )?;
                }
                cgroup.memory_dir = Some(dir.clone());
                cgroup.pids_dir = Some(dir);
            }
        }
        Ok(cgroup)
    }

    /// Removes this supervisor's parent directories (sessions' must be gone).
    pub fn remove(&self) {
        let parents: Vec<&PathBuf> = match self {
            CgroupRoot::V1 { memory, pids, cpu } => {
                [memory, pids, cpu].into_iter().flatten().collect()
            }
            CgroupRoot::V2 { parent, .. } => vec![parent],
        };
        for parent in parents {
            if let Err(error) = fs::remove_dir(parent) {
                tracing::warn!(path = %parent.display(), %error, "cannot remove the supervisor's cgroup");
            }
        }
    }
}

/// Removes an empty cgroup and its empty children (a cgroup directory holds
/// only kernel files, so only subdirectories need removing first).
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => tracing::debug!(path = %dir.display(), "removed a dead supervisor's cgroup"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(path = %dir.display(), %error, "cannot remove a dead supervisor's cgroup")
        }
    }
}

fn cpu_quota(cpus: f64) -> u64 {
    ((cpus * V2_PERIOD_US as f64).round() as u64).max(1000)
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    fs::write(dir.join(file), value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("writing {value} to {}: {e}", dir.join(file).display()),
        )
    })
}

/// Our own cgroup path in a hierarchy, from /proc/self/cgroup: the v2 line
/// (`0::/path`) or the v1 line naming `controller`.
fn own_cgroup(controller: Option<&str>) -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let matches = match controller {
            None => controllers.is_empty(),
            Some(wanted) => controllers.split(',').any(|c| c == wanted),
        };
        matches.then(|| PathBuf::from(path.trim_start_matches('/')))
    })
}

fn create_v1(name: &str) -> Result<CgroupRoot, CgroupUnavailable> {
    // Nest under our own cgroup in each hierarchy, so limits a container or
    // service manager put on us still bound our sessions.
    let parent_for = |controller: &str| -> Option<PathBuf> {
        let base = Path::new(V1_ROOT).join(controller);
        if !base.join("cgroup.procs").exists() {
            return None;
        }
        let dir = base
            .join(own_cgroup(Some(controller)).unwrap_or_default())
            .join(name);
        match fs::create_dir_all(&dir) {
            Ok(()) => Some(dir),
            Err(error) => {
                tracing::warn!(path = %dir.display(), %error, "cannot create a cgroup");
                None
            }
        }
    };
    let root = CgroupRoot::V1 {
        memory: parent_for("memory"),
        pids: parent_for("pids"),
        cpu: parent_for("cpu"),
    };
    if !root.limits_memory() && !root.limits_pids() {
        return Err(CgroupUnavailable {
            reason: "neither the memory nor the pids v1 controller is writable".into(),
            fix: "mount the memory and pids cgroup v1 controllers, or use cgroup v2".into(),
        });
    }
    Ok(root)
}

fn create_v2(name: &str, root: bool) -> Result<CgroupRoot, CgroupUnavailable> {
    let base = Path::new(V1_ROOT);
    let parent_dir = if root {
        base.to_path_buf()
    } else {
        // systemd delegates user@UID.service to the user; we live in a leaf below
        // it, and may create a sibling of that leaf.
        let own = own_cgroup(None).unwrap_or_default();
        match own.parent() {
            Some(parent) => base.join(parent),
            None => base.to_path_buf(),
        }
    };
    let unavailable = |reason: String| CgroupUnavailable {
        reason,
        fix: "run inside a systemd user session (which delegates user@UID.service), e.g. \
              `systemd-run --user --scope -p Delegate=yes sessionvisor ...`, or run as root"
            .into(),
    };
    let available = fs::read_to_string(parent_dir.join("cgroup.controllers")).map_err(|e| {
        unavailable(format!(
            "cannot read {}: {e}",
            parent_dir.join("cgroup.controllers").display()
        ))
    })?;
    let has = |c: &str| available.split_whitespace().any(|x| x == c);
    if !has("memory") || !has("pids") {
        return Err(unavailable(format!(
            "the memory and pids controllers are not available in {}",
            parent_dir.display()
        )));
    }
    let dir = parent_dir.join(name);
    fs::create_dir_all(&dir)
        .map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
    let cpu = has("cpu");
    let wanted = if cpu {
        "+memory +pids +cpu"
    } else {
        "+memory +pids"
    };
    let _ = write(&parent_dir, "cgroup.subtree_control", wanted);
    write(&dir, "cgroup.subtree_control", wanted).map_err(|e| {
        let _ = fs::remove_dir(&dir);
        unavailable(e.to_string())
    })?;
    Ok(CgroupRoot::V2 { parent: dir, cpu })
}

/// One session's cgroup(s).
#[derive(Debug)]
pub struct SessionCgroup {
    dirs: Vec<PathBuf>,
    version2: bool,
    memory_dir: Option<PathBuf>,
    pids_dir: Option<PathBuf>,
}

/// Counters that tell which limit a session hit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitCounters {
    pub oom_kills: u64,
    pub pids_max_hits: u64,
}

impl SessionCgroup {
    fn make(&mut self, parent: &Path, name: &str) -> io::Result<PathBuf> {
        let dir = parent.join(name);
        fs::create_dir(&dir).map_err(|e| {
            io::Error::new(e.kind(), format!("creating cgroup {}: {e}", dir.display()))
        })?;
        self.dirs.push(dir.clone());
        Ok(dir)
    }

    /// The `cgroup.procs` files the session's init must write its pid to.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    pub fn counters(&self) -> LimitCounters {
        let oom_kills = self.memory_dir.as_ref().map_or(0, |dir| {
            let file = if self.version2 {
                "memory.events"
            } else {
                "memory.oom_control"
            };
            read_key(&dir.join(file), "oom_kill")
        });
        let pids_max_hits = self
            .pids_dir
            .as_ref()
            .map_or(0, |dir| read_key(&dir.join("pids.events"), "max"));
        LimitCounters {
            oom_kills,
            pids_max_hits,
        }
    }

    /// Removes the cgroup once its processes are gone; the kernel may need a
    /// moment after the last exit, so retry briefly.
    pub async fn remove(self) {
        for dir in self.dirs.iter().rev() {
            let mut last_error = None;
            for _ in 0..50 {
                match fs::remove_dir(dir) {
                    Ok(()) => {
                        last_error = None;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        last_error = None;
                        break;
                    }
                    Err(e) => last_error = Some(e),
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            if let Some(error) = last_error {
                tracing::warn!(path = %dir.display(), %error, "cannot remove a session cgroup");
            }
        }
    }
}

fn read_key(path: &Path, key: &str) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (name, value) = line.split_once(' ')?;
                (name == key).then(|| value.trim().parse().ok()).flatten()
            })
        })
        .unwrap_or(0)
}
