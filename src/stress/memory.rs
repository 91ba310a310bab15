//! Memory figures from /proc: the supervisor's peak RSS, and what its live
//! sessions cost the host, two ways.
//!
//! - **Pss** of every descendant of the supervisor (`smaps_rollup`): the
//!   sessions' processes, each shared page split among its sharers. It leaves
//!   out kernel memory (page tables, namespaces, tmpfs inodes, cgroups). A
//!   process whose `smaps_rollup` we may not read counts its private resident
//!   pages (`statm`) instead.
//! - **Host used** (`MemTotal - MemAvailable` now, less before the run): takes
//!   in the kernel's share too, but also anything else the host did meanwhile.

use std::collections::HashMap;
use std::io;

use serde::Serialize;

/// A `Key:   123 kB` field of a /proc file, in bytes.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// Peak resident set (`VmHWM`) of `pid`, in bytes.
pub fn peak_rss(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    kib_field(&status, "VmHWM")
        .ok_or_else(|| io::Error::other(format!("no VmHWM in /proc/{pid}/status")))
}

/// `MemTotal - MemAvailable`, in bytes.
pub fn host_used() -> io::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let total = kib_field(&meminfo, "MemTotal");
    let available = kib_field(&meminfo, "MemAvailable");
    match (total, available) {
        (Some(total), Some(available)) => Ok(total.saturating_sub(available)),
        _ => Err(io::Error::other(
            "no MemTotal/MemAvailable in /proc/meminfo",
        )),
    }
}

/// Every live descendant of `pid`, from the parent links in /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(parent) = parent_of(child) {
            children.entry(parent).or_default().push(child);
        }
    }
    let mut found = Vec::new();
    let mut stack = vec![pid];
    while let Some(next) = stack.pop() {
        for &child in children.get(&next).map(Vec::as_slice).unwrap_or(&[]) {
            found.push(child);
            stack.push(child);
        }
    }
    found
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces or ')'; the fields resume after the last ')'.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    after.split(' ').nth(1)?.parse().ok()
}

/// The summed Pss of some processes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PssSum {
    pub bytes: u64,
    /// The anonymous part (heaps, stacks): what each extra process adds, where
    /// the file-backed rest is mostly page cache of shared binaries.
    pub anon_bytes: u64,
    pub processes: usize,
    /// Of `processes`, those counted from `statm` (private resident pages).
    pub from_statm: usize,
    /// Processes that could not be read at all (gone in between).
    pub unreadable: usize,
}

pub fn pss_sum(pids: &[u32]) -> PssSum {
    let mut sum = PssSum {
        bytes: 0,
        anon_bytes: 0,
        processes: 0,
        from_statm: 0,
        unreadable: 0,
    };
    for pid in pids {
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok();
        let pss = rollup
            .as_deref()
            .and_then(|rollup| Some((kib_field(rollup, "Pss")?, kib_field(rollup, "Pss_Anon")?)));
        let counted = pss.or_else(|| {
            let estimate = private_resident(*pid);
            sum.from_statm += usize::from(estimate.is_some());
            estimate
        });
        match counted {
            Some((bytes, anon)) => {
                sum.bytes += bytes;
                sum.anon_bytes += anon;
                sum.processes += 1;
            }
            None => sum.unreadable += 1,
        }
    }
    sum
}

/// For a process whose `smaps_rollup` is closed to us (a sandbox's init is
/// not dumpable): its resident pages that are not file-backed or shared, from
/// the world-readable `statm`, as both its Pss and its anonymous part.
fn private_resident(pid: u32) -> Option<(u64, u64)> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let mut pages = statm.split_whitespace().map(|n| n.parse::<u64>().ok());
    let resident = pages.nth(1)??;
    let shared = pages.next()??;
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    let bytes = resident.saturating_sub(shared) * page;
    Some((bytes, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kib_fields_are_read_as_bytes() {
        let text = "Name:\tx\nVmHWM:\t    2048 kB\nPss:  12 kB\nPss_Anon: 3 kB\n";
        assert_eq!(kib_field(text, "VmHWM"), Some(2 * 1024 * 1024));
        assert_eq!(kib_field(text, "Pss"), Some(12 * 1024));
        assert_eq!(kib_field(text, "Rss"), None);
    }

    #[test]
    fn private_resident_memory_is_read_from_statm() {
        let (bytes, anon) = private_resident(std::process::id()).unwrap();
        assert!(bytes > 0);
        assert_eq!(bytes, anon);
    }

    #[test]
    fn this_process_has_a_peak_rss_and_its_children_are_found() {
        assert!(peak_rss(std::process::id()).unwrap() > 0);
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let found = descendants(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
    }
}
