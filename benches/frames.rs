//! Micro-benchmarks of the per-event work the supervisor does in its own
//! process: encode the request frame, decode the reply frame, and read and
//! check an input line. Every event of every session pays these once.
//!
//! `cargo bench --bench frames`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Value};
use sessionvisor::front::validate_session_id;
use sessionvisor::lines::{read_bounded_line, LineRead};
use sessionvisor::worker::protocol::{ReplyFrame, RequestContext, RequestFrame};

const SESSION: &str = "stress-0123456789abcdef0123456789abcdef-000042";

/// A typical echo event, as `run` and `serve` hand it to a session.
fn echo_event() -> Value {
    json!({"session_id": SESSION, "action": "echo", "message": "hello, how are you today?"})
}

/// A reply frame as the native worker writes it for `echo`, with a body
/// padded to `body_bytes`.
fn reply_line(body_bytes: usize) -> Vec<u8> {
    let message = "x".repeat(body_bytes.saturating_sub(100));
    let body = json!({"session_id": SESSION, "message": message, "event_count": 7, "pid": 2});
    let frame = json!({"id": 7, "result": {"statusCode": 200, "body": body.to_string()}});
    let mut line = frame.to_string().into_bytes();
    line.push(b'\n');
    line
}

fn request_encode(c: &mut Criterion) {
    let event = echo_event();
    let mut buffer = Vec::with_capacity(512);
    c.bench_function("request_frame/encode", |b| {
        b.iter(|| {
            buffer.clear();
            let frame = RequestFrame {
                id: 7,
                event: black_box(&event),
                context: RequestContext {
                    session_id: SESSION,
                    request_id: "5b0c3f7e-8a51-4d53-9f3c-0c1f2f0a9e11",
                    deadline_ms: 1_800_000_000_000,
                },
            };
            serde_json::to_writer(&mut buffer, &frame).expect("encodes");
            buffer.push(b'\n');
            buffer.len()
        })
    });
}

fn reply_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply_frame/decode");
    for size in [200, 4096, 65536] {
        let line = reply_line(size);
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &line, |b, line| {
            b.iter(|| {
                let frame: ReplyFrame = serde_json::from_slice(black_box(line)).expect("decodes");
                frame.into_reply()
            })
        });
    }
    group.finish();
}

/// What `run` does with each input line before routing it: parse the JSON,
/// find the session id, check it. (The stdio front's own parser is private;
/// these are the public pieces it is made of.)
fn input_line(c: &mut Criterion) {
    let line = echo_event().to_string().into_bytes();
    c.bench_function("input_line/parse_and_validate", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_slice(black_box(&line)).expect("parses");
            let id = value
                .get("session_id")
                .and_then(Value::as_str)
                .expect("has an id");
            validate_session_id(id).expect("valid");
            value
        })
    });
    c.bench_function("input_line/validate_session_id", |b| {
        b.iter(|| validate_session_id(black_box(SESSION)))
    });
}

/// Reading bounded lines from a buffered stream, 1,000 lines per iteration.
fn line_reading(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let one = reply_line(200);
    let input: Vec<u8> = one.repeat(1000);
    let mut group = c.benchmark_group("lines/read_bounded_line");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("1000_lines_of_200_bytes", |b| {
        let mut line = Vec::with_capacity(512);
        b.iter(|| {
            runtime.block_on(async {
                let mut reader = tokio::io::BufReader::new(black_box(input.as_slice()));
                let mut count = 0;
                while let Ok(LineRead::Line) =
                    read_bounded_line(&mut reader, &mut line, 1 << 20).await
                {
                    count += 1;
                }
                count
            })
        })
    });
    group.finish();
}

fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = quick();
    targets = request_encode, reply_decode, input_line, line_reading
}
criterion_main!(benches);
