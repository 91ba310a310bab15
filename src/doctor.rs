//! `sessionvisor doctor`: what this host supports, the isolation sessions will
//! get, and the fix for every missing piece.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::launcher::{Isolation, LaunchOptions, Launcher, DEFAULT_UID_BASE};
use crate::limits::{Enforcement, Limits};
use crate::sandbox::landlock::SCOPES_ABI;
use crate::sandbox::probe::{CgroupLayout, HostFacts};
use crate::sandbox::NetworkMode;
use crate::statedir::StateDir;
use crate::worker::process::ReplyLimits;

#[derive(Serialize)]
struct Report {
    host: HostFacts,
    state_dir: PathBuf,
    /// `Ok` with the time it took, or the reason a sandbox cannot be built.
    sandbox_probe: Result<f64, String>,
    isolation: Vec<String>,
    limits: Vec<Enforcement>,
    missing: Vec<Missing>,
    /// Things that work but cost time, and how to avoid the cost.
    notes: Vec<String>,
}

#[derive(Serialize)]
struct Missing {
    what: String,
    fix: String,
}

pub async fn run(json: bool, state_dir: Option<PathBuf>, limits: Limits) -> ExitCode {
    let host = HostFacts::read();
    let state_dir = state_dir.unwrap_or_else(StateDir::default_base);
    let (sandbox_probe, limits) = probe(&state_dir, limits).await;
    let mut missing = Vec::new();
    let notes = performance_notes(&host);
    if let Some(blocker) = host.user_namespace_blocker() {
        let (what, fix) = blocker.split_once("; fix: ").unwrap_or((&blocker, ""));
        missing.push(Missing {
            what: what.into(),
            fix: fix.into(),
        });
    }
    let landlock_ok = host.landlock_abi.is_some_and(|abi| abi >= SCOPES_ABI);
    if !landlock_ok {
        missing.push(Missing {
            what: format!(
                "Landlock ABI >= {SCOPES_ABI} (have {}): abstract unix sockets and signals are not \
                 scoped to the session; with --network host a session could reach another's \
                 abstract socket",
                host.landlock_abi
                    .map_or("none".to_string(), |abi| abi.to_string())
            ),
            fix: "boot Linux >= 6.12 with `lsm=...,landlock` on the kernel command line, or run \
                  with --network none (a network namespace also isolates abstract sockets)"
                .into(),
        });
    }
    if host.cgroup == CgroupLayout::Absent {
        missing.push(Missing {
            what: "no cgroup filesystem: per-session memory and process limits cannot use cgroups"
                .into(),
            fix: "mount cgroup2 at /sys/fs/cgroup".into(),
        });
    }
    let mut isolation = vec![
        "namespaces: user, mount, pid, ipc, uts (and net with --network none)".to_string(),
        "filesystem: host read-only (recursive); private /tmp, /var/tmp, /dev/shm; empty /run; \
         fresh /proc; state directory hidden"
            .to_string(),
        if host.root {
            format!(
                "user: each session runs under its own unprivileged host uid ({DEFAULT_UID_BASE}+), \
                 no capabilities in the host user namespace"
            )
        } else {
            "user: rootless, your uid mapped into a user namespace of its own, no capabilities"
                .to_string()
        },
        "process: our init is PID 1 and reaps; only stdin/stdout/stderr inherited; no_new_privs; \
         dies with the supervisor (PR_SET_PDEATHSIG)"
            .to_string(),
    ];
    isolation.push(if landlock_ok {
        "landlock: abstract unix sockets and signals scoped to the session".to_string()
    } else {
        "landlock: not available (see missing)".to_string()
    });
    let report = Report {
        host,
        state_dir,
        sandbox_probe,
        isolation,
        limits,
        missing,
        notes,
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(error) => eprintln!("sessionvisor doctor: {error}"),
        }
    } else {
        print_text(&report);
    }
    if report.sandbox_probe.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::cli::EXIT_CANNOT_ISOLATE)
    }
}

/// Builds and tears down one real sandbox with `limits`, timing it, and reads
/// which mechanism enforces each limit.
async fn probe(
    state_dir: &std::path::Path,
    limits: Limits,
) -> (Result<f64, String>, Vec<Enforcement>) {
    let init_exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => return (Err(error.to_string()), Vec::new()),
    };
    let state = match StateDir::open(state_dir, nix::unistd::geteuid().is_root()) {
        Ok(state) => state,
        Err(error) => return (Err(error.to_string()), Vec::new()),
    };
    let options = LaunchOptions {
        isolation: Isolation::Sandbox {
            init_exe,
            network: NetworkMode::Host,
            landlock: true,
            uid_base: DEFAULT_UID_BASE,
        },
        reply_limits: ReplyLimits {
            max_line_bytes: 1024,
            event_timeout: Duration::from_secs(10),
        },
        limits,
        storage: None,
        warm_pool: 0,
    };
    let mut launcher = Launcher::new(Vec::new(), state, options);
    let started = Instant::now();
    let result = launcher.probe().await;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    // After the probe: it may have found that sessions cannot use cgroups here.
    let enforcement = launcher.enforcement();
    let _ = launcher.remove_state();
    (result.map(|()| elapsed), enforcement)
}

fn print_text(report: &Report) {
    let host = &report.host;
    let on_off = |value: Option<u64>| match value {
        Some(v) => v.to_string(),
        None => "not present".to_string(),
    };
    println!("sessionvisor doctor\n");
    println!("host");
    println!("  kernel                        {}", host.kernel);
    println!(
        "  running as                    {}",
        if host.root {
            "root"
        } else {
            "an ordinary user (rootless)"
        }
    );
    println!(
        "  user.max_user_namespaces      {}",
        on_off(host.max_user_namespaces)
    );
    println!(
        "  unprivileged_userns_clone     {}",
        on_off(host.unprivileged_userns_clone)
    );
    println!(
        "  apparmor_restrict_unprivileged_userns  {}",
        on_off(host.apparmor_restrict_unprivileged_userns)
    );
    println!("  cgroups                       {}", host.cgroup.describe());
    println!(
        "  landlock                      {}",
        host.landlock_abi
            .map_or("not available".to_string(), |abi| format!("ABI {abi}"))
    );
    println!(
        "  state directory               {}",
        report.state_dir.display()
    );
    println!();
    match &report.sandbox_probe {
        Ok(ms) => {
            println!("sandbox probe: OK (built and tore down a session sandbox in {ms:.1} ms)")
        }
        Err(reason) => println!("sandbox probe: FAILED: {reason}"),
    }
    println!("\nisolation applied to every session");
    for line in &report.isolation {
        println!("  - {line}");
    }
    println!("\nper-session limits");
    for limit in &report.limits {
        println!(
            "  {:<9} {:<10} {}",
            limit.limit, limit.value, limit.mechanism
        );
        if let Some(stronger) = &limit.stronger {
            println!("  {:<9} {:<10} stronger: {stronger}", "", "");
        }
    }
    if !report.notes.is_empty() {
        println!("\nnotes");
        for note in &report.notes {
            println!("  - {note}");
        }
    }
    println!("\nmissing pieces");
    if report.missing.is_empty() {
        println!("  none");
    }
    for missing in &report.missing {
        println!("  - {}\n    fix: {}", missing.what, missing.fix);
    }
}

/// Costs of this host's configuration that a user can avoid.
fn performance_notes(host: &HostFacts) -> Vec<String> {
    let mut notes = Vec::new();
    let cgroup_v1 = matches!(host.cgroup, CgroupLayout::V1 | CgroupLayout::Hybrid);
    let expedited =
        std::fs::read_to_string("/sys/kernel/rcu_expedited").is_ok_and(|value| value.trim() == "1");
    if host.root && cgroup_v1 && !expedited {
        notes.push(
            "cold starts as root wait for an RCU grace period when a session joins its cgroup \
             v1 (about 10 ms when the host was idle). \
             `--warm-pool N` hides it; `echo 1 > /sys/kernel/rcu_expedited` shortens it for the \
             whole host"
                .to_string(),
        );
    }
    notes
}
