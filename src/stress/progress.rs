//! Progress while a run goes: a progress bar on a terminal, plain periodic
//! lines otherwise (CI logs, pipes), both on stderr so stdout carries only the
//! summary.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::tally::Live;

/// How often the bar is redrawn.
const BAR_TICK: Duration = Duration::from_millis(200);
/// How often a plain line is printed.
const LINE_EVERY: Duration = Duration::from_secs(2);

/// The display task; [`Progress::finish`] ends it.
pub struct Progress {
    done: CancellationToken,
    task: JoinHandle<()>,
}

impl Progress {
    /// Shows the progress of `total` events counted in `live`.
    pub fn start(total: u64, live: Arc<Live>) -> Self {
        let done = CancellationToken::new();
        let task = if std::io::stderr().is_terminal() {
            tokio::spawn(bar(total, live, done.clone()))
        } else {
            tokio::spawn(lines(total, live, done.clone()))
        };
        Progress { done, task }
    }

    pub async fn finish(self) {
        self.done.cancel();
        let _ = self.task.await;
    }
}

fn counts(live: &Live) -> String {
    format!(
        "ok {}  errors {}  misroutes {}  leaks {}",
        Live::read(&live.ok),
        Live::read(&live.errors),
        Live::read(&live.misroutes),
        Live::read(&live.leaks)
    )
}

/// Events per second since `started`, whole.
fn rate(events: u64, started: Instant) -> u64 {
    (events as f64 / started.elapsed().as_secs_f64().max(1e-9)) as u64
}

async fn bar(total: u64, live: Arc<Live>, done: CancellationToken) {
    let bar = ProgressBar::new(total);
    let style =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} events  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    let started = Instant::now();
    loop {
        let events = Live::read(&live.events);
        bar.set_position(events);
        bar.set_message(format!("{}/s  {}", rate(events, started), counts(&live)));
        tokio::select! {
            _ = done.cancelled() => break,
            _ = tokio::time::sleep(BAR_TICK) => {}
        }
    }
    bar.finish_and_clear();
}

async fn lines(total: u64, live: Arc<Live>, done: CancellationToken) {
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = done.cancelled() => break,
            _ = tokio::time::sleep(LINE_EVERY) => {}
        }
        let events = Live::read(&live.events);
        eprintln!(
            "stress: {events}/{total} events in {:.1} s ({}/s)  {}",
            started.elapsed().as_secs_f64(),
            rate(events, started),
            counts(&live)
        );
    }
}
