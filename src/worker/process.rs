//! One running worker: writes request frames to its stdin, reads reply frames
//! from its stdout, and forwards its stderr to `tracing`.

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::task::JoinHandle;

use super::protocol::{Reply, ReplyFrame, RequestContext, RequestFrame};
use crate::error::{ErrorKind, EventError};
use crate::lines::{read_bounded_line, LineRead};
use crate::sandbox::binding::{BIND_FAILED_PREFIX, BOUND_LINE};
use crate::sandbox::{EXIT_SETUP_FAILED, SANDBOX_READY_LINE, SETUP_FAILED_PREFIX};

/// How many of the worker's last stderr lines an error report quotes.
const STDERR_TAIL_LINES: usize = 10;
/// Read buffer per worker pipe. Small on purpose: a thousand idle sessions must
/// not cost the supervisor tens of MiB; long lines are read in pieces anyway.
const READ_BUFFER: usize = 4096;
/// Frame buffers above this are released after use instead of kept per session.
const KEEP_BUFFER: usize = 64 * 1024;

/// Longest stderr line kept; longer ones are logged as omitted.
const MAX_STDERR_LINE: usize = 16 * 1024;

/// A successful reply: the handler's result, or the chunks it streamed.
#[derive(Debug, Default)]
pub struct Response {
    pub result: Option<Box<RawValue>>,
    /// `Some` when the handler streamed and no chunk sink was given: the chunks
    /// in the order produced.
    pub chunks: Option<Vec<Box<RawValue>>>,
    /// How many chunks went to the caller's sink as they arrived.
    pub chunks_forwarded: usize,
    /// The handler streamed (possibly zero chunks) rather than returning a value.
    pub streamed: bool,
}

/// Where streamed chunks go as they arrive. Bounded, so a slow client slows
/// its own worker and nothing else.
pub type ChunkSink = tokio::sync::mpsc::Sender<Box<RawValue>>;

/// An event that failed. `fatal` means the worker is dead or was killed and must
/// be replaced before the session's next event.
#[derive(Debug)]
pub struct WorkerFault {
    pub error: EventError,
    pub fatal: bool,
}

impl WorkerFault {
    fn fatal(kind: ErrorKind, message: String) -> Self {
        WorkerFault {
            error: EventError::new(kind, message),
            fatal: true,
        }
    }
}

/// What happens to streamed chunks of the event in flight.
enum ChunkTarget<'a> {
    Collect,
    Forward(&'a ChunkSink),
    Discard,
}

/// What the sandbox's PID 1 has reported on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InitState {
    Building,
    Ready,
    Bound,
    BindFailed,
}

/// Limits a worker's replies must respect.
#[derive(Debug, Clone, Copy)]
pub struct ReplyLimits {
    pub max_line_bytes: usize,
    pub event_timeout: Duration,
}

pub struct WorkerProcess {
    child: Child,
    /// `None` once the worker is being stopped.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// The session its stderr lines are tagged with; changes when a pooled
    /// worker is bound to a session.
    label: Arc<Mutex<Arc<str>>>,
    /// What the sandbox's PID 1 last reported.
    init_state: tokio::sync::watch::Receiver<InitState>,
    /// A warm-pool sandbox's binding pipe (its PID 1 reads fd 3).
    control: Option<std::fs::File>,
    stderr_task: Option<JoinHandle<()>>,
    next_id: u64,
    frame: Vec<u8>,
    line: Vec<u8>,
    pid: u32,
    limits: ReplyLimits,
}

impl WorkerProcess {
    /// Starts `command` (stdio must be piped) and tags its stderr with `label`.
    /// `control` is the write end of a warm-pool sandbox's binding pipe.
    pub fn spawn(
        mut command: tokio::process::Command,
        label: Arc<str>,
        limits: ReplyLimits,
        control: Option<std::fs::File>,
    ) -> std::io::Result<Self> {
        let mut child = command.spawn()?;
        let missing = || std::io::Error::other("child stdio was not piped");
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let stderr = child.stderr.take().ok_or_else(missing)?;
        let pid = child.id().unwrap_or(0);
        let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_LINES)));
        let tail = Arc::clone(&stderr_tail);
        let label = Arc::new(Mutex::new(label));
        let stderr_label = Arc::clone(&label);
        let (report_init, init_state) = tokio::sync::watch::channel(InitState::Building);
        let stderr_task = tokio::spawn(async move {
            // Raw bytes, bounded: a worker's subprocess may write anything, and a
            // stalled reader would block the worker on its next stderr write.
            let mut reader = BufReader::with_capacity(1024, stderr);
            let mut raw = Vec::new();
            loop {
                let line = match read_bounded_line(&mut reader, &mut raw, MAX_STDERR_LINE).await {
                    Ok(LineRead::Line) => String::from_utf8_lossy(&raw).into_owned(),
                    Ok(LineRead::TooLong(size)) => format!("<stderr line of {size} bytes omitted>"),
                    Ok(LineRead::Eof) | Err(_) => break,
                };
                // The sandbox's own progress reports are not the worker's output.
                if line == SANDBOX_READY_LINE {
                    report_init.send_replace(InitState::Ready);
                    continue;
                }
                if line == BOUND_LINE {
                    report_init.send_replace(InitState::Bound);
                    continue;
                }
                if line.starts_with(BIND_FAILED_PREFIX) {
                    report_init.send_replace(InitState::BindFailed);
                }
                let session = stderr_label
                    .lock()
                    .map(|l| Arc::clone(&l))
                    .unwrap_or_default();
                tracing::info!(target: "sessionvisor::worker", %session, pid, "{line}");
                if let Ok(mut tail) = tail.lock() {
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        });
        Ok(WorkerProcess {
            child,
            stdin: Some(stdin),
            stdout: BufReader::with_capacity(READ_BUFFER, stdout),
            stderr_tail,
            label,
            init_state,
            control,
            stderr_task: Some(stderr_task),
            next_id: 1,
            frame: Vec::with_capacity(512),
            line: Vec::with_capacity(512),
            pid,
            limits,
        })
    }

    /// Host pid of the process the supervisor started (the sandbox's outer init,
    /// or the worker itself without a sandbox).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Tags the worker's further stderr lines with `label`.
    pub fn set_label(&self, label: Arc<str>) {
        if let Ok(mut current) = self.label.lock() {
            *current = label;
        }
    }

    /// Waits until the sandbox around this worker is complete; false if it never
    /// will be (the process died) or `timeout` passed.
    pub async fn sandbox_ready(&self, timeout: Duration) -> bool {
        let mut state = self.init_state.clone();
        let became_ready =
            tokio::time::timeout(timeout, state.wait_for(|s| *s != InitState::Building)).await;
        matches!(became_ready, Ok(Ok(_)))
    }

    /// Binds a warm-pool sandbox to its session: sends the hostname down the
    /// control pipe and waits until PID 1 has set it and dropped its last
    /// capabilities.
    pub async fn bind(&mut self, hostname: &str, timeout: Duration) -> Result<(), String> {
        use std::io::Write;
        let mut control = self
            .control
            .take()
            .ok_or("this worker was not started for the warm pool")?;
        control
            .write_all(format!("{hostname}\n").as_bytes())
            .map_err(|e| format!("writing to the sandbox's control pipe: {e}"))?;
        drop(control);
        let mut state = self.init_state.clone();
        let settled = tokio::time::timeout(timeout, async {
            state
                .wait_for(|s| matches!(s, InitState::Bound | InitState::BindFailed))
                .await
                .map(|s| *s)
        })
        .await;
        match settled {
            Ok(Ok(InitState::Bound)) => Ok(()),
            Ok(Ok(_)) => Err(self.stderr_tail().join(" | ")),
            Ok(Err(_)) => Err("the sandbox went away while binding".into()),
            Err(_) => Err("the sandbox did not confirm its binding in time".into()),
        }
    }

    /// Whether the process has already exited (without waiting).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends one event and waits for its reply.
    pub async fn call(
        &mut self,
        event: &serde_json::Value,
        session_id: &str,
        request_id: &str,
        sink: Option<&ChunkSink>,
    ) -> Result<Response, WorkerFault> {
        let id = self.next_id;
        self.next_id += 1;
        let deadline_ms = unix_millis() + self.limits.event_timeout.as_millis() as u64;
        let request = RequestFrame {
            id,
            event,
            context: RequestContext {
                session_id,
                request_id,
                deadline_ms,
            },
        };
        self.frame.clear();
        serde_json::to_writer(&mut self.frame, &request).map_err(|e| WorkerFault {
            error: EventError::new(ErrorKind::BadRequest, format!("cannot encode event: {e}")),
            fatal: false,
        })?;
        self.frame.push(b'\n');
        let timeout = self.limits.event_timeout;
        let outcome = tokio::time::timeout(timeout, self.exchange(id, sink)).await;
        for buffer in [&mut self.frame, &mut self.line] {
            if buffer.capacity() > KEEP_BUFFER {
                *buffer = Vec::with_capacity(512);
            }
        }
        match outcome {
            Ok(outcome) => outcome,
            Err(_) => {
                self.kill().await;
                Err(WorkerFault::fatal(
                    ErrorKind::Timeout,
                    format!(
                        "no reply within the event timeout of {}; the worker was killed",
                        humantime::format_duration(timeout)
                    ),
                ))
            }
        }
    }

    async fn exchange(
        &mut self,
        id: u64,
        sink: Option<&ChunkSink>,
    ) -> Result<Response, WorkerFault> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(WorkerFault::fatal(
                ErrorKind::WorkerExited,
                "the worker is stopping".into(),
            ));
        };
        if stdin.write_all(&self.frame).await.is_err() || stdin.flush().await.is_err() {
            return Err(self.exited_fault().await);
        }
        let mut chunks: Option<Vec<Box<RawValue>>> = None;
        let mut forwarded = 0;
        let mut target = match sink {
            None => ChunkTarget::Collect,
            Some(sink) => ChunkTarget::Forward(sink),
        };
        loop {
            let read =
                read_bounded_line(&mut self.stdout, &mut self.line, self.limits.max_line_bytes)
                    .await;
            match read {
                Ok(LineRead::Line) => {}
                Ok(LineRead::Eof) | Err(_) => return Err(self.exited_fault().await),
                Ok(LineRead::TooLong(size)) => {
                    self.kill().await;
                    return Err(WorkerFault::fatal(
                        ErrorKind::ResponseTooLarge,
                        format!(
                            "the worker's reply frame exceeded --max-response-bytes ({} bytes, got at least {size}); the worker was killed",
                            self.limits.max_line_bytes
                        ),
                    ));
                }
            }
            let frame: ReplyFrame = match serde_json::from_slice(&self.line) {
                Ok(frame) => frame,
                Err(error) => {
                    return Err(self
                        .protocol_fault(format!("not a reply frame ({error})"))
                        .await)
                }
            };
            if frame.id != Some(id) {
                return Err(self
                    .protocol_fault(format!(
                        "reply for id {:?} while waiting for id {id}",
                        frame.id
                    ))
                    .await);
            }
            match frame.into_reply() {
                Reply::Result(result) => {
                    return Ok(Response {
                        result,
                        streamed: chunks.is_some() || forwarded > 0,
                        chunks,
                        chunks_forwarded: forwarded,
                    })
                }
                Reply::StreamEnd => {
                    return Ok(Response {
                        result: None,
                        chunks: match target {
                            ChunkTarget::Collect => Some(chunks.unwrap_or_default()),
                            _ => None,
                        },
                        chunks_forwarded: forwarded,
                        streamed: true,
                    })
                }
                Reply::Chunk(chunk) => match target {
                    ChunkTarget::Collect => chunks.get_or_insert_with(Vec::new).push(chunk),
                    ChunkTarget::Forward(sink) => {
                        if sink.send(chunk).await.is_ok() {
                            forwarded += 1;
                        } else {
                            // A client that went away mid-stream must not wedge the
                            // session: read the rest of the stream and drop it.
                            tracing::debug!(id, "stream consumer went away; discarding the rest");
                            target = ChunkTarget::Discard;
                        }
                    }
                    ChunkTarget::Discard => {}
                },
                Reply::Error(failure) => {
                    return Err(WorkerFault {
                        error: EventError {
                            kind: ErrorKind::HandlerError,
                            message: failure.message.unwrap_or_default(),
                            error_type: failure.error_type,
                            traceback: failure.traceback,
                        },
                        fatal: false,
                    })
                }
            }
        }
    }

    async fn protocol_fault(&mut self, what: String) -> WorkerFault {
        let preview: String = String::from_utf8_lossy(&self.line)
            .chars()
            .take(200)
            .collect();
        self.kill().await;
        WorkerFault::fatal(
            ErrorKind::ProtocolError,
            format!("worker wrote a non-protocol line to stdout: {what}: {preview:?}; the worker was killed"),
        )
    }

    /// Builds the report for a worker that went away: its exit status and the last
    /// lines of its stderr, or the sandbox's own explanation if setup failed.
    async fn exited_fault(&mut self) -> WorkerFault {
        let status = self.wait_exit(Duration::from_secs(5)).await;
        let tail = self.stderr_tail();
        if status.and_then(|s| s.code()) == Some(EXIT_SETUP_FAILED) {
            if let Some(reason) = tail.iter().find(|l| l.starts_with(SETUP_FAILED_PREFIX)) {
                return WorkerFault::fatal(ErrorKind::SpawnFailed, reason.clone());
            }
        }
        let mut message = format!(
            "the worker exited in the middle of the event ({})",
            describe(status)
        );
        if !tail.is_empty() {
            message.push_str("; last stderr lines: ");
            message.push_str(&tail.join(" | "));
        }
        WorkerFault::fatal(ErrorKind::WorkerExited, message)
    }

    /// Waits for the process to exit (killing it after `timeout`) and for its
    /// stderr to drain, so [`Self::stderr_tail`] holds its last words.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                self.kill().await;
                None
            }
        };
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
        status
    }

    /// The last lines the worker wrote to stderr.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .map(|tail| tail.iter().cloned().collect())
            .unwrap_or_default()
    }

    async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Ends the worker and its whole process tree: closes its stdin (a
    /// well-behaved worker exits on EOF) and sends SIGTERM (which the sandbox's
    /// init passes on to the worker), waits up to `grace`, then SIGKILLs it,
    /// which takes the session's PID namespace down with it.
    pub async fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        drop(self.stdin.take());
        if !grace.is_zero() {
            if let Some(pid) = self.child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.start_kill();
                self.child.wait().await.ok()
            }
        };
        if let Some(task) = self.stderr_task.take() {
            task.abort();
        }
        status
    }
}

/// "exit status 3", "killed by signal 9 (SIGKILL)". Our sandbox init reports a
/// worker's death by signal N as exit status 128+N, as shells do.
pub fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    let Some(status) = status else {
        return "exit status unknown".into();
    };
    let signal = status.signal().or_else(|| {
        status
            .code()
            .filter(|c| (129..160).contains(c))
            .map(|c| c - 128)
    });
    match (signal, status.code()) {
        (Some(signal), _) => {
            let name = nix::sys::signal::Signal::try_from(signal)
                .map(|s| s.as_str())
                .unwrap_or("unknown");
            format!("killed by signal {signal} ({name})")
        }
        (None, Some(code)) => format!("exit status {code}"),
        (None, None) => "exit status unknown".into(),
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
