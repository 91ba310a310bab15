//! Micro-benchmarks of routing: one event through the real registry, its
//! session task and a real `sessionvisor-worker` over pipes, next to a raw pipe
//! ping-pong with the same worker (the floor). The difference is what the
//! supervisor adds per warm event.
//!
//! Sessions share one unsandboxed worker here (`--isolation none`): a
//! sandbox changes how a worker starts, not the pipes of a warm event, and
//! the sandboxed path end to end is what `sessionvisor stress` measures.
//!
//! `cargo bench --workspace --bench routing` (the worker must be built).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use sessionvisor::cli::SupervisorArgs;
use sessionvisor::registry::Registry;

/// Sessions in the many-sessions case: the default `--max-sessions`.
const MANY: usize = 1000;

#[derive(Parser)]
struct Options {
    #[command(flatten)]
    supervisor: SupervisorArgs,
}

fn worker_bin() -> Option<PathBuf> {
    let path =
        PathBuf::from(env!("CARGO_BIN_EXE_sessionvisor")).with_file_name("sessionvisor-worker");
    path.is_file().then_some(path)
}

/// Sends `n` events round-robin over `sessions`, one at a time, and returns
/// the time they took.
async fn round_trips(registry: &Registry, sessions: &[String], n: u64) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        let id = &sessions[(i % sessions.len() as u64) as usize];
        let event = json!({"session_id": id, "action": "echo", "message": "ping"});
        match registry.dispatch(id, event, None).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => panic!("the event failed: {error}"),
            Err(_) => panic!("the session ended before replying"),
        }
    }
    started.elapsed()
}

fn registry_round_trip(c: &mut Criterion) {
    let Some(worker) = worker_bin() else {
        eprintln!("routing: sessionvisor-worker is not built; run `cargo bench --workspace`");
        return;
    };
    let state = tempfile::tempdir().expect("state dir");
    let argv = [
        "bench".to_string(),
        "--isolation".into(),
        "none".into(),
        "--state-dir".into(),
        state.path().display().to_string(),
        "--".into(),
        worker.display().to_string(),
    ];
    let options = Options::parse_from(argv);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let registry = runtime.block_on(async {
        let launcher = options.supervisor.launcher().await.expect("launcher");
        Registry::new(
            launcher,
            options.supervisor.policy(),
            options.supervisor.max_sessions,
        )
    });
    let many: Vec<String> = (0..MANY).map(|i| format!("bench-session-{i:04}")).collect();
    let one = many[..1].to_vec();
    // Every session exists (and the shared worker runs) before timing starts.
    runtime.block_on(round_trips(&registry, &many, MANY as u64));

    let mut group = c.benchmark_group("routing/warm_round_trip");
    group.bench_function("1_session", |b| {
        b.iter_custom(|n| runtime.block_on(round_trips(&registry, &one, n)))
    });
    group.bench_function("1000_sessions", |b| {
        b.iter_custom(|n| runtime.block_on(round_trips(&registry, &many, n)))
    });
    group.finish();
    if let Err(error) = runtime.block_on(registry.shutdown()) {
        eprintln!("routing: shutting the registry down: {error}");
    }
}

/// The same event frame to the same worker over plain pipes, no supervisor.
fn raw_pipe_floor(c: &mut Criterion) {
    let Some(worker) = worker_bin() else {
        return;
    };
    let mut child = Command::new(worker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the worker");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut frame = json!({
        "id": 1,
        "event": {"session_id": "bench-session", "action": "echo", "message": "ping"},
        "context": {"session_id": "bench-session", "request_id": "r", "deadline_ms": 0},
    })
    .to_string()
    .into_bytes();
    frame.push(b'\n');
    let mut line = String::new();
    c.bench_function("routing/raw_pipe_floor", |b| {
        b.iter(|| {
            stdin.write_all(&frame).expect("write");
            stdin.flush().expect("flush");
            line.clear();
            stdout.read_line(&mut line).expect("read")
        })
    });
    drop(stdin);
    let _ = child.wait();
}

fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = quick();
    targets = raw_pipe_floor, registry_round_trip
}
criterion_main!(benches);
