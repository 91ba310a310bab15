//! The command line as users meet it: doctor, demo, refusal to run unisolated,
//! and the `--isolation none` comparison mode.

mod common;

use assert_cmd::Command;
use common::*;
use predicates::prelude::*;
use serde_json::Value;

#[test]
fn doctor_reports_host_support_and_the_isolation_applied() {
    let dir = TestDir::new(Mode::Root);
    let assert = Command::new(sessionvisor_bin())
        .args(["doctor", "--json", "--state-dir"])
        .arg(dir.state_dir())
        .assert()
        .success();
    let report: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert!(report["sandbox_probe"]["Ok"].is_number(), "{report}");
    assert!(report["host"]["cgroup"].is_string());
    assert!(report["host"]["max_user_namespaces"].as_u64().unwrap() > 0);
    assert!(report["isolation"].as_array().unwrap().len() >= 4);
    let limits: Vec<&str> = report["limits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["limit"].as_str().unwrap())
        .collect();
    assert_eq!(limits, ["memory", "pids", "tmp-size", "nofile", "cpus"]);
    assert!(report["limits"][0]["mechanism"].as_str().unwrap().len() > 5);

    Command::new(sessionvisor_bin())
        .args(["doctor", "--state-dir"])
        .arg(dir.state_dir())
        .assert()
        .success()
        .stdout(predicate::str::contains("sandbox probe: OK"))
        .stdout(predicate::str::contains("landlock"))
        .stdout(predicate::str::contains("cgroups"));
}

#[test]
fn demo_shows_isolation_holding_and_the_leak_without_it() {
    Command::new(sessionvisor_bin())
        .arg("demo")
        .current_dir(repo_path(""))
        .assert()
        .success()
        .stdout(predicate::str::contains("isolation held"))
        .stdout(predicate::str::contains(
            "2 of 2 cross-session probes leaked",
        ))
        .stdout(predicate::str::contains("WRONG").not());
}

/// Inside a user namespace without an id map, no further user namespace can be
/// made: the sandbox cannot be built, and `run` must refuse rather than run
/// sessions unisolated.
#[test]
fn run_refuses_to_start_when_it_cannot_isolate() {
    let dir = TestDir::new(Mode::Rootless);
    std::fs::set_permissions(
        dir.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    Command::new("unshare")
        .arg("--user")
        .arg(sessionvisor_bin())
        .args(["run", "--state-dir"])
        .arg(dir.state_dir())
        .arg("--")
        .arg(worker_bin())
        .write_stdin("{\"session_id\":\"a\"}\n")
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("cannot isolate sessions"))
        .stderr(predicate::str::contains("unshare"))
        .stderr(predicate::str::contains("sessionvisor doctor"));
}

#[test]
fn isolation_none_warns_and_really_shares_one_worker() {
    let dir = TestDir::new(Mode::Root);
    let (lines, stderr, status) = run_batch(
        Mode::Root,
        &dir,
        &[
            "--isolation".into(),
            "none".into(),
            "--".into(),
            worker_bin().display().to_string(),
        ],
        "{\"session_id\":\"A\",\"action\":\"echo\"}\n{\"session_id\":\"B\",\"action\":\"echo\"}\n",
    );
    assert!(status.success());
    assert!(stderr.contains("WARNING: --isolation none"), "{stderr}");
    let pids: Vec<Value> = lines.iter().map(|l| body(l)["pid"].clone()).collect();
    assert_eq!(pids[0], pids[1], "one shared worker serves every session");
}

#[test]
fn usage_errors_are_named() {
    let dir = TestDir::new(Mode::Root);
    Command::new(sessionvisor_bin())
        .args(["run", "--state-dir"])
        .arg(dir.state_dir())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no worker"));
    Command::new(sessionvisor_bin())
        .args(["run", "--handler", "/nonexistent/agent.py:handler"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no such file"));
    // Every session has its own /tmp, so a handler kept in the host's cannot be run.
    let in_tmp = dir.dir.path().join("agent.py");
    std::fs::copy(repo_path("worker/examples/echo_agent.py"), &in_tmp).unwrap();
    Command::new(sessionvisor_bin())
        .args(["run", "--handler"])
        .arg(format!("{}:handler", in_tmp.display()))
        .arg("--state-dir")
        .arg(dir.state_dir())
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("private directory"));
}
