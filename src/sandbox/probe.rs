//! What this host's kernel offers a sandbox, read from /proc and /sys without
//! changing anything. `doctor` prints it; the real proof is a probe sandbox
//! (see `crate::launcher::Launcher::probe`).

use std::fs;
use std::path::Path;

/// Facts about the host that decide what isolation is possible.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostFacts {
    pub kernel: String,
    pub root: bool,
    /// `user.max_user_namespaces`; 0 disables user namespaces for everyone.
    pub max_user_namespaces: Option<u64>,
    /// Debian's `kernel.unprivileged_userns_clone` (absent on most kernels).
    pub unprivileged_userns_clone: Option<u64>,
    /// Ubuntu's `kernel.apparmor_restrict_unprivileged_userns` (absent elsewhere).
    pub apparmor_restrict_unprivileged_userns: Option<u64>,
    pub cgroup: CgroupLayout,
    /// Landlock ABI version, `None` when Landlock is absent or disabled.
    pub landlock_abi: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupLayout {
    /// Pure cgroup v2 at /sys/fs/cgroup (most laptops today).
    V2,
    /// cgroup v1 controllers with a v2 hierarchy at /sys/fs/cgroup/unified.
    Hybrid,
    V1,
    Absent,
}

impl CgroupLayout {
    pub fn describe(self) -> &'static str {
        match self {
            CgroupLayout::V2 => "cgroup v2 (unified)",
            CgroupLayout::Hybrid => "cgroup v1 with a v2 hybrid hierarchy",
            CgroupLayout::V1 => "cgroup v1 only",
            CgroupLayout::Absent => "no cgroup filesystem mounted",
        }
    }
}

impl HostFacts {
    pub fn read() -> Self {
        HostFacts {
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_else(|_| "unknown".into()),
            root: nix::unistd::geteuid().is_root(),
            max_user_namespaces: read_number("/proc/sys/user/max_user_namespaces"),
            unprivileged_userns_clone: read_number("/proc/sys/kernel/unprivileged_userns_clone"),
            apparmor_restrict_unprivileged_userns: read_number(
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            ),
            cgroup: cgroup_layout(),
            landlock_abi: super::landlock::kernel_abi(),
        }
    }

    /// Why user namespaces cannot work for this caller, with the fix, if we can tell.
    pub fn user_namespace_blocker(&self) -> Option<String> {
        if self.max_user_namespaces == Some(0) {
            return Some(
                "user namespaces are disabled (user.max_user_namespaces = 0); fix: \
                 sudo sysctl -w user.max_user_namespaces=15000"
                    .into(),
            );
        }
        if self.root {
            return None;
        }
        if self.unprivileged_userns_clone == Some(0) {
            return Some(
                "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0); \
                 fix: sudo sysctl -w kernel.unprivileged_userns_clone=1"
                    .into(),
            );
        }
        if self.apparmor_restrict_unprivileged_userns == Some(1) {
            return Some(
                "AppArmor restricts unprivileged user namespaces \
                 (kernel.apparmor_restrict_unprivileged_userns = 1, Ubuntu 23.10+); fix: install an \
                 AppArmor profile granting `userns` to the sessionvisor binary, or \
                 sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
                    .into(),
            );
        }
        None
    }
}

fn read_number(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn is_cgroup2(path: &Path) -> bool {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    nix::sys::statfs::statfs(path)
        .map(|fs| fs.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

fn cgroup_layout() -> CgroupLayout {
    let root = Path::new("/sys/fs/cgroup");
    if !root.is_dir() {
        CgroupLayout::Absent
    } else if is_cgroup2(root) {
        CgroupLayout::V2
    } else if is_cgroup2(&root.join("unified")) {
        CgroupLayout::Hybrid
    } else if root.join("memory").is_dir() {
        CgroupLayout::V1
    } else {
        CgroupLayout::Absent
    }
}
