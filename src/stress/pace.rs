//! Session arrivals at a steady rate (`--session-interval`): session k starts
//! k intervals after the run began, whichever lane is free to take it. Used to
//! measure cold starts that do not queue behind one another, e.g. a warm pool
//! that refills between arrivals.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hands out start times one interval apart.
pub struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(interval: Duration) -> Self {
        Pacer {
            interval,
            next: Mutex::new(None),
        }
    }

    /// Waits for the next start time.
    pub async fn wait_turn(&self) {
        let at = self.take_turn(Instant::now());
        tokio::time::sleep_until(at).await;
    }

    /// The next start time, as of `now`. The first is one interval after
    /// `now`, so the supervisor gets that long to settle (and a warm pool to
    /// fill) before the first session arrives.
    fn take_turn(&self, now: Instant) -> Instant {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let at = next.unwrap_or(now + self.interval);
        *next = Some(at + self.interval);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_come_one_interval_apart_from_the_first_call() {
        let pacer = Pacer::new(Duration::from_millis(100));
        let start = Instant::now();
        let turns: Vec<Duration> = (0..3)
            .map(|i| pacer.take_turn(start + Duration::from_millis(i)) - start)
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(turns, [ms(100), ms(200), ms(300)]);
    }
}
