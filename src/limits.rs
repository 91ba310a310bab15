//! Per-session resource limits: what the user asked for, which kernel mechanism
//! enforces each one on this host, and how to tell which limit a failed event hit.

use serde::Serialize;

use crate::error::{ErrorKind, EventError};
use crate::sandbox::cgroup::{CgroupRoot, LimitCounters};
use crate::sandbox::{Rlimit, RlimitResource};

/// The limits every session gets.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_bytes: u64,
    pub pids: u64,
    pub tmp_size_bytes: u64,
    pub nofile: u64,
    pub cpus: Option<f64>,
}

/// How one limit is enforced here.
#[derive(Debug, Clone, Serialize)]
pub struct Enforcement {
    pub limit: &'static str,
    pub value: String,
    pub mechanism: String,
    /// How to get a stronger mechanism, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stronger: Option<String>,
}

impl Limits {
    /// The rlimits the init sets: always open files, and fallbacks for what no
    /// cgroup enforces.
    pub fn rlimits(&self, cgroup: Option<&CgroupRoot>) -> Vec<Rlimit> {
        let mut limits = vec![Rlimit {
            resource: RlimitResource::Nofile,
            limit: self.nofile,
        }];
        if !cgroup.is_some_and(CgroupRoot::limits_pids) {
            limits.push(Rlimit {
                resource: RlimitResource::Nproc,
                limit: self.pids,
            });
        }
        if !cgroup.is_some_and(CgroupRoot::limits_memory) {
            limits.push(Rlimit {
                resource: RlimitResource::As,
                limit: self.memory_bytes,
            });
        }
        limits
    }

    /// One row per limit: the mechanism in force and how to do better.
    pub fn enforcement(
        &self,
        cgroup: Option<&CgroupRoot>,
        cgroup_fix: Option<&str>,
    ) -> Vec<Enforcement> {
        let stronger = |have_cgroup: bool| -> Option<String> {
            (!have_cgroup).then(|| {
                cgroup_fix
                    .unwrap_or("use a cgroup-capable host")
                    .to_string()
            })
        };
        let memory_cg = cgroup.is_some_and(CgroupRoot::limits_memory);
        let pids_cg = cgroup.is_some_and(CgroupRoot::limits_pids);
        let cpu_cg = cgroup.is_some_and(CgroupRoot::limits_cpu);
        let cg_name = cgroup.map(CgroupRoot::version_name).unwrap_or_default();
        vec![
            Enforcement {
                limit: "memory",
                value: bytes(self.memory_bytes),
                mechanism: if memory_cg {
                    format!("{cg_name} memory controller (OOM kills detected)")
                } else {
                    "RLIMIT_AS (caps address space, not resident memory: weaker)".into()
                },
                stronger: stronger(memory_cg),
            },
            Enforcement {
                limit: "pids",
                value: self.pids.to_string(),
                mechanism: if pids_cg {
                    format!("{cg_name} pids controller (pids.max)")
                } else {
                    "RLIMIT_NPROC, counted per session user namespace".into()
                },
                stronger: stronger(pids_cg),
            },
            Enforcement {
                limit: "tmp-size",
                value: bytes(self.tmp_size_bytes),
                mechanism: "one size-limited tmpfs for /tmp, /var/tmp and /dev/shm".into(),
                stronger: None,
            },
            Enforcement {
                limit: "nofile",
                value: self.nofile.to_string(),
                mechanism: "RLIMIT_NOFILE".into(),
                stronger: None,
            },
            Enforcement {
                limit: "cpus",
                value: self.cpus.map_or("unlimited".into(), |c| c.to_string()),
                mechanism: match (self.cpus, cpu_cg) {
                    (None, _) => "not requested (--cpus)".into(),
                    (Some(_), true) => format!("{cg_name} cpu controller (CFS quota)"),
                    (Some(_), false) => "NOT ENFORCED: a CPU quota needs a cgroup".into(),
                },
                stronger: if cpu_cg { None } else { stronger(false) },
            },
        ]
    }

    /// Turns a failed event into `resource_exhausted` when it was a limit that
    /// failed it: a cgroup counter moved, or the error carries the errno a limit
    /// produces. Returns the limit's name.
    pub fn exhausted(
        &self,
        error: &EventError,
        before: LimitCounters,
        after: LimitCounters,
    ) -> Option<&'static str> {
        if after.oom_kills > before.oom_kills {
            return Some("memory");
        }
        if after.pids_max_hits > before.pids_max_hits {
            return Some("pids");
        }
        if !matches!(
            error.kind,
            ErrorKind::HandlerError | ErrorKind::WorkerExited
        ) {
            return None;
        }
        let text = format!(
            "{} {}",
            error.error_type.as_deref().unwrap_or(""),
            error.message
        );
        let has = |needle: &str| text.contains(needle);
        if has("No space left on device") || has("os error 28") || has("ENOSPC") {
            Some("tmp-size")
        } else if has("Too many open files") || has("os error 24") || has("EMFILE") {
            Some("nofile")
        } else if has("MemoryError") || has("memory allocation of") || has("Cannot allocate memory")
        {
            Some("memory")
        } else if error.error_type.as_deref() == Some("BlockingIOError")
            && has("Resource temporarily unavailable")
        {
            Some("pids")
        } else {
            None
        }
    }

    /// The flag and value behind a limit name, for messages.
    pub fn describe(&self, limit: &str) -> String {
        match limit {
            "memory" => format!("--memory {}", bytes(self.memory_bytes)),
            "pids" => format!("--pids {}", self.pids),
            "tmp-size" => format!("--tmp-size {}", bytes(self.tmp_size_bytes)),
            "nofile" => format!("--nofile {}", self.nofile),
            other => other.to_string(),
        }
    }

    /// Rewrites `error` as `resource_exhausted` naming `limit`.
    pub fn exhausted_error(&self, limit: &str, error: EventError) -> EventError {
        EventError {
            kind: ErrorKind::ResourceExhausted,
            message: format!(
                "the session hit its {limit} limit ({}); its worker was stopped and the next event \
                 gets a fresh one. Cause: {}",
                self.describe(limit),
                error.message
            ),
            error_type: error.error_type,
            traceback: error.traceback,
        }
    }
}

fn bytes(value: u64) -> String {
    bytesize::ByteSize::b(value).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            memory_bytes: 1 << 30,
            pids: 64,
            tmp_size_bytes: 1 << 20,
            nofile: 256,
            cpus: None,
        }
    }

    #[test]
    fn errno_messages_name_the_limit() {
        let none = LimitCounters::default();
        let handler = |kind: &str, message: &str| EventError {
            kind: ErrorKind::HandlerError,
            message: message.into(),
            error_type: Some(kind.into()),
            traceback: None,
        };
        let l = limits();
        assert_eq!(
            l.exhausted(
                &handler("OSError", "[Errno 28] No space left on device"),
                none,
                none
            ),
            Some("tmp-size")
        );
        assert_eq!(
            l.exhausted(
                &handler("OSError", "[Errno 24] Too many open files"),
                none,
                none
            ),
            Some("nofile")
        );
        assert_eq!(
            l.exhausted(&handler("MemoryError", ""), none, none),
            Some("memory")
        );
        assert_eq!(
            l.exhausted(&handler("ValueError", "bad input"), none, none),
            None
        );
        let oom = LimitCounters {
            oom_kills: 1,
            pids_max_hits: 0,
        };
        let died = EventError::new(ErrorKind::WorkerExited, "killed by signal 9");
        assert_eq!(l.exhausted(&died, none, oom), Some("memory"));
    }

    #[test]
    fn cgroupless_hosts_fall_back_to_rlimits() {
        let kinds: Vec<_> = limits().rlimits(None).iter().map(|r| r.resource).collect();
        assert_eq!(
            kinds,
            vec![
                RlimitResource::Nofile,
                RlimitResource::Nproc,
                RlimitResource::As
            ]
        );
    }
}
