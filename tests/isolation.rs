//! Session isolation, end to end: real supervisors, real sandboxes, real workers,
//! each test once as root and once rootless.

mod common;

use common::*;
use serde_json::json;
use sessionvisor::stress::descendants;
use std::time::Duration;

fn ab_tmp_story(mode: Mode, worker: Vec<String>) {
    let dir = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &dir, &worker);
    let nonce = uuid::Uuid::new_v4().to_string();
    let written = sv.ask(event("A", "write", &nonce));
    assert_eq!(body(&written)["status"], "written");
    assert_eq!(
        body(&sv.ask(event("B", "read", "")))["content"],
        "FILE_NOT_FOUND"
    );
    assert_eq!(
        body(&sv.ask(event("A", "read", "")))["content"],
        json!(nonce)
    );
    let (rest, status) = sv.finish();
    assert!(rest.is_empty());
    assert!(status.success());
    assert!(
        dir.leftovers().is_empty(),
        "left on the host: {:?}",
        dir.leftovers()
    );
}

both_modes!(tmp_is_private_native_worker, |mode| ab_tmp_story(
    mode,
    native_worker_args()
));
both_modes!(tmp_is_private_python_handler, |mode| ab_tmp_story(
    mode,
    python_worker_args()
));

both_modes!(conversation_memory_stays_in_its_session, |mode| {
    let dir = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &dir, &python_worker_args());
    sv.ask(event("A", "echo", "Hi, my name is Alice"));
    sv.ask(event("B", "echo", "I am Bob"));
    assert_eq!(
        agent_output(&sv.ask(event("B", "echo", "What is my name?"))),
        "Your name is Bob."
    );
    assert_eq!(
        agent_output(&sv.ask(event("A", "echo", "What is my name?"))),
        "Your name is Alice."
    );
    assert_eq!(
        agent_output(&sv.ask(event("C", "echo", "What is my name?"))),
        "I don't know your name yet."
    );
    assert!(sv.finish().1.success());
});

both_modes!(
    fifty_concurrent_sessions_read_back_exactly_their_own,
    |mode| {
        let dir = TestDir::new(mode);
        let nonces: Vec<String> = (0..50).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        let mut input = String::new();
        for (i, nonce) in nonces.iter().enumerate() {
            input += &format!("{}\n", event(&format!("s{i}"), "write", nonce));
        }
        for i in 0..50 {
            input += &format!("{}\n", event(&format!("s{i}"), "read", ""));
            input += &format!("{}\n", event(&format!("s{i}"), "echo", ""));
        }
        let (lines, stderr, status) = run_batch(mode, &dir, &native_worker_args(), &input);
        assert!(status.success(), "{stderr}");
        assert_eq!(lines.len(), 150);
        for line in &lines[50..] {
            let session = line["session_id"].as_str().unwrap();
            let index: usize = session[1..].parse().unwrap();
            let body = body(line);
            if body.get("content").is_some() {
                assert_eq!(
                    body["content"],
                    json!(nonces[index]),
                    "session {session} read another's file"
                );
            } else {
                assert_eq!(
                    body["event_count"], 3,
                    "session {session} did not keep one worker"
                );
            }
        }
        assert!(dir.leftovers().is_empty());
    }
);

both_modes!(sandbox_hygiene, |mode| {
    let dir = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &dir, &native_worker_args());
    let a = body(&sv.ask(event("A", "whoami", "")));
    let b = body(&sv.ask(event("B", "whoami", "")));
    assert_eq!(
        a["open_fds"],
        json!([0, 1, 2]),
        "only stdio may be inherited"
    );
    assert_eq!(a["cap_eff"], "0000000000000000");
    assert_eq!(a["no_new_privs"], 1);
    assert_eq!(a["pid"], 2, "the worker runs under our init, PID 1");
    assert_eq!(a["ppid"], 1);
    assert_ne!(a["hostname"], b["hostname"]);
    assert!(a["hostname"].as_str().unwrap().starts_with("sv-a-"));
    let host_ns = |name: &str| {
        std::fs::read_link(format!("/proc/self/ns/{name}"))
            .unwrap()
            .display()
            .to_string()
    };
    for ns in ["user", "mnt", "pid", "ipc", "uts"] {
        assert_ne!(
            a["namespaces"][ns],
            json!(host_ns(ns)),
            "{ns} namespace shared with the host"
        );
        assert_ne!(
            a["namespaces"][ns], b["namespaces"][ns],
            "{ns} namespace shared between sessions"
        );
    }
    assert_eq!(
        a["namespaces"]["net"],
        json!(host_ns("net")),
        "network is shared by default"
    );
    // Our init (PID 1) shed its namespace capabilities and cannot be inspected.
    let init = body(&sv.ask(exec(
        "A",
        "grep CapEff /proc/1/status; cat /proc/1/environ >/dev/null 2>&1 || echo sealed",
    )));
    assert_eq!(
        init["stdout"], "CapEff:\t0000000000000000\nsealed\n",
        "{init}"
    );
    if mode == Mode::Root {
        assert_ne!(a["uid"], 0);
        assert_ne!(a["uid"], b["uid"], "as root, each session gets its own uid");
    }
    assert!(sv.finish().1.success());
});

both_modes!(network_none_leaves_only_loopback, |mode| {
    let dir = TestDir::new(mode);
    let mut args = vec!["--network".to_string(), "none".to_string()];
    args.extend(native_worker_args());
    let mut sv = Supervisor::start(mode, &dir, &args);
    let out = body(&sv.ask(exec("A", "cat /proc/net/dev")));
    let interfaces: Vec<&str> = out["stdout"]
        .as_str()
        .unwrap()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, vec!["lo"]);
    let whoami = body(&sv.ask(event("A", "whoami", "")));
    let host_net = std::fs::read_link("/proc/self/ns/net")
        .unwrap()
        .display()
        .to_string();
    assert_ne!(whoami["namespaces"]["net"], json!(host_net));
    let ping = body(&sv.ask(exec("A", "python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); c=socket.create_connection(s.getsockname()); print('lo up')\"")));
    assert_eq!(ping["stdout"], "lo up\n", "{ping}");
    assert!(sv.finish().1.success());
});

// Session A leaves traces everywhere a session can write and keeps a process
// running; session B looks for them through every path we know of.
both_modes!(a_session_cannot_reach_another, |mode| {
    let dir = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &dir, &native_worker_args());
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let plant = format!(
        "echo {nonce} > /tmp/a.txt; echo {nonce} > /var/tmp/a.txt; echo {nonce} > /dev/shm/a.txt; \
         (cd /tmp && exec sleep 300) > /dev/null 2>&1 & echo planted"
    );
    assert_eq!(body(&sv.ask(exec("A", &plant)))["stdout"], "planted\n");

    let state = dir.state_dir().display().to_string();
    let search = format!(
        "for p in /proc/[0-9]*; do a=$(tr '\\0' ' ' < $p/cmdline); \
           case \"$a\" in *'sh -c'*) ;; *) echo \"PROC $a\";; esac; done; \
         for p in /proc/[0-9]*; do cat $p/root/tmp/a.txt $p/cwd/a.txt 2>/dev/null; ls $p/cwd 2>/dev/null; done; \
         cat /tmp/a.txt /var/tmp/a.txt /dev/shm/a.txt 2>/dev/null; \
         ls -a {state} 2>&1; grep -rs {nonce} {state} /run /tmp /var/tmp /dev/shm 2>/dev/null; \
         true"
    );
    let seen = body(&sv.ask(exec("B", &search)));
    let stdout = seen["stdout"].as_str().unwrap();
    assert!(
        !stdout.contains(&nonce),
        "session B found session A's data:\n{stdout}"
    );
    let processes: Vec<&str> = stdout.lines().filter(|l| l.starts_with("PROC ")).collect();
    assert!(
        processes.iter().any(|l| l.contains("sessionvisor-worker")),
        "B must see its own worker: {processes:?}"
    );
    assert!(
        !processes.iter().any(|l| l.contains("sleep")),
        "B sees A's processes: {processes:?}"
    );

    // B may write only to its private directories.
    let cwd = env!("CARGO_MANIFEST_DIR");
    let writes = format!(
        "for d in / /etc /usr /root /home {cwd} {state} /run /var /proc/sys/kernel; do \
           if touch $d/sv-probe 2>/dev/null; then echo \"WROTE $d\"; fi; done; \
         for d in /tmp /var/tmp /dev/shm; do touch $d/ok && echo \"ok $d\"; done"
    );
    let wrote = body(&sv.ask(exec("B", &writes)));
    let out = wrote["stdout"].as_str().unwrap();
    assert!(
        !out.contains("WROTE"),
        "B wrote outside its private directories:\n{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        3,
        "{wrote}"
    );
    assert!(sv.finish().1.success());
    assert!(
        dir.leftovers().is_empty(),
        "left on the host: {:?}",
        dir.leftovers()
    );
});

both_modes!(killing_the_supervisor_kills_every_worker, |mode| {
    let dir = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &dir, &native_worker_args());
    for session in ["A", "B", "C"] {
        // A grandchild that would happily outlive its worker.
        sv.ask(exec(session, "sleep 600 > /dev/null 2>&1 & echo started"));
    }
    let processes = descendants(sv.pid());
    assert!(
        processes.len() >= 3 * 4,
        "expected init, PID 1, worker and sleep per session: {processes:?}"
    );
    sv.child.kill().unwrap();
    sv.child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || processes
            .iter()
            .all(|&p| !alive(p))),
        "processes survived the supervisor's SIGKILL: {:?}",
        processes.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
    );
    // The next supervisor on the same state directory sweeps what the dead one
    // left: its directories and, as root, its (now empty) cgroups.
    let dead: Vec<String> = std::fs::read_dir(dir.state_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!dead.is_empty());
    let dead_cgroups: Vec<std::path::PathBuf> = dead
        .iter()
        .map(|name| std::path::Path::new("/sys/fs/cgroup/pids").join(name))
        .filter(|path| path.exists())
        .collect();
    if mode == Mode::Root && std::path::Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
        assert!(
            !dead_cgroups.is_empty(),
            "expected the dead supervisor's pids cgroup"
        );
    }
    let (_, stderr, status) = run_batch(mode, &dir, &native_worker_args(), "");
    assert!(status.success(), "{stderr}");
    assert!(
        dir.leftovers().is_empty(),
        "not swept: {:?}",
        dir.leftovers()
    );
    let left: Vec<_> = dead_cgroups.iter().filter(|path| path.exists()).collect();
    assert!(
        left.is_empty(),
        "cgroups of the dead supervisor left: {left:?}"
    );
});

both_modes!(
    bad_lines_get_errors_and_good_sessions_lose_nothing,
    |mode| {
        let dir = TestDir::new(mode);
        let long_id = "x".repeat(257);
        let bad = [
            "{not json".to_string(),
            "[1, 2]".to_string(),
            "\"just a string\"".to_string(),
            json!({"action": "echo"}).to_string(),
            json!({"session_id": 42}).to_string(),
            json!({"session_id": ""}).to_string(),
            json!({"session_id": long_id}).to_string(),
            json!({"session_id": "a\u{1}b"}).to_string(),
            json!({"session_id": "../etc"}).to_string(),
            String::new(),
        ];
        let mut input = String::new();
        let mut expected_bad = Vec::new();
        let mut seq = 0;
        for (i, bad_line) in bad.iter().enumerate() {
            for session in ["good-1", "good-2"] {
                input += &format!("{}\n", event(session, "echo", &format!("m{i}")));
                seq += 1;
            }
            input += bad_line;
            input += "\n";
            seq += 1;
            expected_bad.push(seq);
        }
        let (lines, stderr, status) = run_batch(mode, &dir, &native_worker_args(), &input);
        assert!(status.success(), "{stderr}");
        assert_eq!(lines.len(), seq as usize);
        for line in &lines {
            let seq = line["seq"].as_u64().unwrap();
            if expected_bad.contains(&seq) {
                assert_eq!(line["ok"], false, "{line}");
                assert_eq!(line["error"]["kind"], "bad_request", "{line}");
                assert!(!line["error"]["message"].as_str().unwrap().is_empty());
            } else {
                assert_eq!(line["ok"], true, "{line}");
            }
        }
        for session in ["good-1", "good-2"] {
            let counts: Vec<u64> = lines
                .iter()
                .filter(|l| l["session_id"] == session)
                .map(|l| body(l)["event_count"].as_u64().unwrap())
                .collect();
            assert_eq!(
                counts,
                (1..=bad.len() as u64).collect::<Vec<_>>(),
                "{session} lost or reordered events"
            );
        }
    }
);

both_modes!(landlock_scopes_abstract_unix_sockets, |mode| {
    if sessionvisor::sandbox::landlock::kernel_abi().unwrap_or(0)
        < sessionvisor::sandbox::landlock::SCOPES_ABI
    {
        eprintln!("SKIPPED: this kernel has no Landlock ABI 6");
        return;
    }
    let name = format!("sv-test-{}", uuid::Uuid::new_v4().simple());
    let listen = format!(
        "python3 -c \"import socket,time; s=socket.socket(socket.AF_UNIX); s.bind('\\0{name}'); s.listen(); print('listening', flush=True); time.sleep(60)\" > /tmp/l.out 2>&1 & \
         for i in $(seq 100); do grep -q listening /tmp/l.out 2>/dev/null && break; sleep 0.05; done; cat /tmp/l.out"
    );
    let connect = format!(
        "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('\\0{name}'); print('CONNECTED')\" 2>&1 | tail -1"
    );
    let attempt = |extra: &[&str]| {
        let dir = TestDir::new(mode);
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend(native_worker_args());
        let mut sv = Supervisor::start(mode, &dir, &args);
        assert_eq!(body(&sv.ask(exec("A", &listen)))["stdout"], "listening\n");
        let out = body(&sv.ask(exec("B", &connect)))["stdout"]
            .as_str()
            .unwrap()
            .to_string();
        sv.finish();
        out
    };
    // Control: without Landlock the shared network namespace lets B in.
    assert_eq!(attempt(&["--no-landlock"]).trim(), "CONNECTED");
    let scoped = attempt(&[]);
    assert!(
        scoped.contains("PermissionError") || scoped.contains("Operation not permitted"),
        "{scoped}"
    );
});

// A read-only mount does not stop connect(2): without an empty /run, a session
// could reach host services' sockets (the user's systemd and D-Bus live in
// /run/user/UID) and start processes outside its sandbox.
both_modes!(host_unix_sockets_under_run_are_out_of_reach, |mode| {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::path::PathBuf::from(format!("/run/sv-test-{}", uuid::Uuid::new_v4().simple()));
    if std::fs::create_dir(&dir).is_err() {
        eprintln!("SKIPPED: cannot create a directory under /run (the tests need root here)");
        return;
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.join("s.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::net::UnixStream::connect(&socket).expect("control: the host can connect");

    let state = TestDir::new(mode);
    let mut sv = Supervisor::start(mode, &state, &native_worker_args());
    let attempt = sv.ask(exec(
        "A",
        &format!(
            "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('{}'); print('CONNECTED')\" 2>&1 | tail -1; ls -A /run | wc -l",
            socket.display()
        ),
    ));
    let out = body(&attempt)["stdout"].as_str().unwrap().to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !out.contains("CONNECTED"),
        "a session reached a host socket: {out}"
    );
    assert!(out.contains("FileNotFoundError"), "{out}");
    assert!(sv.finish().1.success());
});
