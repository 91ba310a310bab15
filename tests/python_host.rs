//! Runs the Python handler host's own unit tests (standard library only), so the
//! one test command covers both languages.

#[test]
fn handler_host_unit_tests_pass() {
    let output = std::process::Command::new("python3")
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "worker/python",
            "-p",
            "test_*.py",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 must be installed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python unit tests failed:\n{stderr}"
    );
    assert!(stderr.contains("OK"), "{stderr}");
}
