//! `sessionvisor stress` end to end: real supervisors, real sandboxes, real
//! workers. A clean run must find no misroute and no leak; a run whose
//! sessions share one worker (`--isolation none`) must find both and fail, so
//! we know the checks can fail. Figures are printed, never asserted.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use common::*;
use serde_json::Value;

/// Runs `stress --json` and returns its report and exit code.
fn stress(mode: Mode, dir: &TestDir, args: &[String]) -> (Value, Option<i32>) {
    let mut argv = vec!["stress", "--json"];
    argv.extend(args.iter().map(String::as_str));
    let output = command(mode, dir, &argv)
        .stdin(Stdio::null())
        .output()
        .expect("run sessionvisor stress");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not the JSON report ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    println!(
        "{mode:?} {args:?}: verdict {}, ok {}, misroutes {}, leaks {}, errors {}, \
         cold start us {}, warm us {}, {:.0} events/s, peak RSS {}",
        report["verdict"],
        report["ok"],
        report["misroutes"],
        report["leaks"],
        report["errors"],
        report["cold_start_us"],
        report["warm_round_trip_us"],
        report["throughput_eps"].as_f64().unwrap_or(0.0),
        report["supervisor_peak_rss_bytes"],
    );
    (report, output.status.code())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn assert_clean(report: &Value, code: Option<i32>, events: u64, dir: &TestDir) {
    assert_eq!(report["misroutes"], 0, "{report:#}");
    assert_eq!(report["leaks"], 0, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    assert_eq!(report["ok"], events, "{report:#}");
    assert_eq!(report["verdict"], "pass");
    assert_eq!(code, Some(0));
    assert!(
        dir.leftovers().is_empty(),
        "left on the host: {:?}",
        dir.leftovers()
    );
}

both_modes!(a_small_native_run_finds_no_misroute_and_no_leak, |mode| {
    let dir = TestDir::new(mode);
    let args = strings(&["--sessions", "20", "--events", "10", "--concurrency", "5"]);
    let (report, code) = stress(mode, &dir, &args);
    assert_clean(&report, code, 200, &dir);
    assert_eq!(report["cold_start_us"]["count"], 20);
    assert_eq!(report["warm_round_trip_us"]["count"], 180);
    assert_eq!(report["memory_per_session"]["live_sessions"], 20);
});

both_modes!(a_small_python_run_finds_no_misroute_and_no_leak, |mode| {
    let dir = TestDir::new(mode);
    let args = strings(&[
        "--worker",
        "python",
        "--sessions",
        "6",
        "--events",
        "7",
        "--concurrency",
        "3",
    ]);
    let (report, code) = stress(mode, &dir, &args);
    assert_clean(&report, code, 42, &dir);
});

both_modes!(sessions_served_from_a_warm_pool_pass_the_checks, |mode| {
    // A pooled worker must serve one session, ever: one that served another
    // first would answer with a counter that is not where this session's own
    // events put it.
    let dir = TestDir::new(mode);
    let args = strings(&[
        "--warm-pool",
        "3",
        "--sessions",
        "10",
        "--events",
        "6",
        "--concurrency",
        "3",
    ]);
    let (report, code) = stress(mode, &dir, &args);
    assert_clean(&report, code, 60, &dir);
});

/// One worker shared by every session, with a /tmp of its own (a private
/// tmpfs in its own mount namespace) so runs never touch the host's /tmp or
/// each other's.
fn shared_worker_with_private_tmp() -> Vec<String> {
    strings(&[
        "--isolation",
        "none",
        "--worker",
        "native",
        "--",
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        "mount -t tmpfs tmpfs /tmp && exec \"$0\"",
        &worker_bin().display().to_string(),
    ])
}

both_modes!(a_worker_shared_by_all_sessions_is_caught, |mode| {
    let dir = TestDir::new(mode);
    let mut args = strings(&["--sessions", "20", "--events", "10", "--concurrency", "5"]);
    args.extend(shared_worker_with_private_tmp());
    let (report, code) = stress(mode, &dir, &args);
    assert_eq!(report["verdict"], "isolation_violated", "{report:#}");
    assert_eq!(code, Some(1));
    assert!(report["misroutes"].as_u64() > Some(0), "{report:#}");
    assert!(report["leaks"].as_u64() > Some(0), "{report:#}");
    let leaks = report["leak_examples"].to_string();
    assert!(leaks.contains("the nonce of session stress-"), "{leaks}");
    let misroutes = report["misroute_examples"].to_string();
    assert!(misroutes.contains("the worker's counter is"), "{misroutes}");
});

/// A `sessionvisor serve` on a free loopback port, stopped on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(mode: Mode, dir: &TestDir) -> Self {
        let worker = worker_bin().display().to_string();
        let args = ["serve", "--listen", "127.0.0.1:0", "--", &worker];
        let mut child = command(mode, dir, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sessionvisor serve");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the address");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve did not announce its address: {line:?}"))
            .to_string();
        Server { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

both_modes!(a_run_against_a_running_server_checks_it_over_http, |mode| {
    let server_dir = TestDir::new(mode);
    let server = Server::start(mode, &server_dir);
    let dir = TestDir::new(mode);
    let pid = server.child.id().to_string();
    let args = strings(&[
        "--url",
        &server.base,
        "--server-pid",
        &pid,
        "--sessions",
        "10",
        "--events",
        "6",
        "--concurrency",
        "5",
    ]);
    let (report, code) = stress(mode, &dir, &args);
    assert_clean(&report, code, 60, &dir);
    assert_eq!(report["target"], server.base);
    assert!(report["supervisor_peak_rss_bytes"].as_u64() > Some(0));
    assert!(report["memory_per_session"]["processes"].as_u64() >= Some(10));
});

#[test]
fn a_missing_server_is_reported_as_transport_errors() {
    let mode = if nix::unistd::geteuid().is_root() {
        Mode::Root
    } else {
        Mode::Rootless
    };
    let dir = TestDir::new(mode);
    // A port that was free a moment ago: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let args = strings(&["--url", &url, "--sessions", "2", "--events", "2"]);
    let (report, code) = stress(mode, &dir, &args);
    assert_eq!(report["verdict"], "errors");
    assert_eq!(report["errors"]["transport_error"], 4, "{report:#}");
    assert_eq!(code, Some(3));
}
