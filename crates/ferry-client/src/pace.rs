//! How fast and how long transfers may go: curl's `--limit-rate` (a token
//! bucket with a bounded burst, shared by every connection of a command so
//! `--parallel` stays under the one limit) and `--max-time` (a deadline for
//! the whole command). The copy loops of `get` and `put` ask a [`Pace`]
//! before each chunk.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The smallest burst: chunks below this cost more in syscalls than they
/// gain in smoothness.
const MIN_BURST: f64 = 512.0;

/// The largest burst: what may move at once after an idle spell.
const MAX_BURST: f64 = 1024.0 * 1024.0;

/// A rate limit and a deadline, shared (through an `Arc`) by every
/// connection of one command.
#[derive(Debug, Default)]
pub struct Pace {
    bucket: Option<Mutex<Bucket>>,
    deadline: Option<Instant>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes per second.
    rate: f64,
    /// The most tokens the bucket holds: a tenth of a second's worth,
    /// within [`MIN_BURST`, `MAX_BURST`].
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

/// The deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expired;

impl Pace {
    /// At most `rate` bytes per second (if given), until `deadline` (if
    /// given).
    pub fn new(rate: Option<u64>, deadline: Option<Instant>) -> Pace {
        let bucket = rate.filter(|&r| r > 0).map(|rate| {
            let rate = rate as f64;
            let burst = (rate / 10.0).clamp(MIN_BURST, MAX_BURST);
            // Start empty: the first burst is earned, not free, so a short
            // transfer cannot beat the limit by its burst alone.
            Mutex::new(Bucket { rate, burst, tokens: 0.0, refilled: Instant::now() })
        });
        Pace { bucket, deadline }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The deadline, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Waits until up to `want` bytes may move and returns how many
    /// (at least 1 for `want` > 0, at most the burst). Fails once the
    /// deadline has passed.
    pub(crate) fn grant(&self, want: usize) -> Result<usize, Expired> {
        loop {
            if self.expired() {
                return Err(Expired);
            }
            let Some(bucket) = &self.bucket else {
                return Ok(want);
            };
            let wait = {
                let mut b = bucket.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let earned = now.duration_since(b.refilled).as_secs_f64() * b.rate;
                b.tokens = (b.tokens + earned).min(b.burst);
                b.refilled = now;
                let need = (want as f64).min(b.burst).max(1.0);
                if b.tokens >= need {
                    b.tokens -= need;
                    return Ok(need as usize);
                }
                Duration::from_secs_f64((need - b.tokens) / b.rate)
            };
            let wait = match self.deadline {
                Some(d) => wait.min(d.saturating_duration_since(Instant::now())),
                None => wait,
            };
            std::thread::sleep(wait.max(Duration::from_millis(1)));
        }
    }

    /// Gives back the part of a grant that did not move.
    pub(crate) fn refund(&self, unused: usize) {
        if let (Some(bucket), true) = (&self.bucket, unused > 0) {
            let mut b = bucket.lock().unwrap_or_else(|e| e.into_inner());
            b.tokens = (b.tokens + unused as f64).min(b.burst);
        }
    }
}

impl crate::Client {
    /// Paces this connection (and any other given the same `Pace`): no
    /// faster than its rate, no longer than its deadline.
    pub fn set_pace(&mut self, pace: Option<std::sync::Arc<Pace>>) {
        self.pace = pace;
    }

    /// [`Pace::grant`] for this connection (everything, if unpaced).
    pub(crate) fn grant(&self, want: usize) -> Result<usize, Expired> {
        match &self.pace {
            Some(pace) => pace.grant(want),
            None => Ok(want),
        }
    }

    /// [`Pace::refund`] for this connection.
    pub(crate) fn refund(&self, unused: usize) {
        if let Some(pace) = &self.pace {
            pace.refund(unused);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_bounds_what_moves() {
        let pace = Pace::new(Some(200_000), None);
        let started = Instant::now();
        let mut moved = 0;
        while moved < 100_000 {
            moved += pace.grant(64 * 1024).unwrap();
        }
        let took = started.elapsed();
        // 100 kB at 200 kB/s: half a second (the bucket starts empty).
        assert!(took >= Duration::from_millis(450), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn grants_are_bounded_by_the_burst_and_the_deadline_stops_them() {
        let pace = Pace::new(Some(1_000_000), None);
        assert!(pace.grant(10 << 20).unwrap() <= 100_000);
        let unlimited = Pace::new(None, None);
        assert_eq!(unlimited.grant(10 << 20), Ok(10 << 20));
        let over = Pace::new(Some(10), Some(Instant::now() + Duration::from_millis(50)));
        let started = Instant::now();
        let mut result = Ok(0);
        while result.is_ok() {
            result = over.grant(1 << 20);
        }
        assert_eq!(result, Err(Expired));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
