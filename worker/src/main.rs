//! `sessionvisor-worker`: the native reference worker that the supervisor runs,
//! one sandboxed process per agent session.
//!
//! It reads request frames from stdin, one JSON object per line, and answers
//! each with one response frame on stdout (or, for `stream`, chunk frames and
//! an end frame), each flushed at once. Stdout
//! carries frames only; diagnostics go to stderr, one line each. On stdin EOF
//! it exits 0. See `protocol` for the frames and `actions` for the actions.

mod actions;
mod protocol;
mod sys;

use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

use actions::{Outcome, Worker, GARBAGE_LINE};

fn main() -> ExitCode {
    diag(&format!(
        "sessionvisor-worker: ready pid={}",
        std::process::id()
    ));
    match serve(io::stdin().lock(), io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Most likely the supervisor closed our stdout: nobody to answer.
            diag(&format!("sessionvisor-worker: stdio failed: {err}"));
            ExitCode::FAILURE
        }
    }
}

/// Serves requests from `input` until EOF. Returns an error only when the
/// streams themselves fail; bad frames and failed actions are answered.
fn serve(mut input: impl BufRead, output: impl Write) -> io::Result<()> {
    // The buffer makes each frame one write(2); it is flushed per frame.
    let mut out = BufWriter::new(output);
    // Reused across lines, and bytes rather than a String so that a line of
    // invalid UTF-8 is a bad frame instead of an I/O error.
    let mut line = Vec::with_capacity(4096);
    let mut worker = Worker::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let req = match protocol::parse_request(&line) {
            Ok(req) => req,
            Err(bad) => {
                diag(&format!("sessionvisor-worker: BadFrame: {}", bad.message));
                protocol::write_error(&mut out, bad.id, "BadFrame", &bad.message)?;
                continue;
            }
        };
        match worker.handle(&req) {
            Outcome::Reply(Ok(result)) => protocol::write_result(&mut out, req.id, &result)?,
            Outcome::Stream(stream) => {
                for chunk in &stream.chunks {
                    if !stream.delay.is_zero() {
                        std::thread::sleep(stream.delay);
                    }
                    protocol::write_chunk(&mut out, req.id, chunk)?;
                }
                protocol::write_stream_end(&mut out, req.id)?;
            }
            Outcome::Reply(Err(err)) => {
                diag(&format!(
                    "sessionvisor-worker: request {} failed: {}: {}",
                    req.id, err.kind, err.message
                ));
                protocol::write_error(&mut out, Some(req.id), err.kind, &err.message)?;
            }
            Outcome::Garbage => {
                out.write_all(GARBAGE_LINE)?;
                out.flush()?;
            }
            Outcome::Crash(code) => {
                diag("crashing on purpose");
                // Earlier frames were flushed already; this request goes
                // unanswered on purpose.
                std::process::exit(code);
            }
        }
    }
}

/// Writes one diagnostic line to stderr in a single write, so that it cannot
/// be split by other output. Failure to write a diagnostic is ignored: there
/// is nowhere left to report it.
pub(crate) fn diag(line: &str) {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = io::stderr().write_all(buf.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn frames(input: &str) -> Vec<Value> {
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out).expect("serve");
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("frame is JSON"))
            .collect()
    }

    #[test]
    fn bad_line_gets_an_error_frame_and_serving_goes_on() {
        let out = frames("garbage\n{\"id\":3,\"event\":{},\"context\":{\"session_id\":\"s\"}}\n");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["id"], Value::Null);
        assert_eq!(out[0]["error"]["type"], "BadFrame");
        assert_eq!(out[1]["id"], 3);
        assert_eq!(out[1]["result"]["statusCode"], 200);
    }

    #[test]
    fn stream_writes_chunks_then_the_end_frame() {
        let out = frames(
            "{\"id\":5,\"event\":{\"action\":\"stream\",\"message\":\"x y\"},\"context\":{\"session_id\":\"s\"}}\n",
        );
        assert_eq!(out.len(), 3);
        assert_eq!(out[0]["id"], 5);
        assert_eq!(out[0]["chunk"]["token"], "x");
        assert_eq!(out[1]["chunk"]["token"], "y");
        assert_eq!(out[1]["chunk"]["index"], 1);
        assert_eq!(out[2]["stream_end"], true);
        assert_eq!(out[2]["result"], Value::Null);
    }

    #[test]
    fn garbage_action_writes_a_raw_line_and_no_frame() {
        let mut out = Vec::new();
        serve(
            &b"{\"id\":1,\"event\":{\"action\":\"garbage\"},\"context\":{\"session_id\":\"s\"}}"[..],
            &mut out,
        )
        .expect("serve");
        assert_eq!(out, GARBAGE_LINE);
    }
}
