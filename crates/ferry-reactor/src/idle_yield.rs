//! The policy behind "yield once before sleeping" (see the `event_loop`
//! module docs): when a loop that just handled I/O is about to block, should
//! it first yield its CPU and poll again?
//!
//! The yield pays only while other runnable threads are producing this
//! loop's input (more threads than cores). Where it keeps finding nothing (a
//! single request-response connection, a loop alone on its core) it is tried
//! less and less often, down to one busy-to-idle transition in 64, and at
//! every transition again after the first time it finds events.
//!
//! Public so drivers with a wait loop of their own (ferry-server's io_uring
//! threads) follow the same policy.

/// Most transitions skipped after a run of misses: 2^6 - 1 = 63.
const MAX_BACKOFF_SHIFT: u32 = 6;

/// Per-loop state of the policy (exponential back-off on misses).
#[derive(Debug)]
pub struct IdleYield {
    enabled: bool,
    misses: u32,
    skip: u32,
}

impl Default for IdleYield {
    fn default() -> IdleYield {
        IdleYield::new()
    }
}

impl IdleYield {
    /// A policy that tries at the first transition.
    pub fn new() -> IdleYield {
        IdleYield { enabled: true, misses: 0, skip: 0 }
    }

    /// Turns the policy on or off (off: never yield).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        self.misses = 0;
        self.skip = 0;
    }

    /// At a busy-to-idle transition: yield and re-poll this time?
    pub fn should_try(&mut self) -> bool {
        if !self.enabled {
            return false;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    /// What the poll after the yield found.
    pub fn record(&mut self, found_events: bool) {
        if found_events {
            self.misses = 0;
            self.skip = 0;
        } else {
            self.misses = (self.misses + 1).min(MAX_BACKOFF_SHIFT);
            self.skip = (1 << self.misses) - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which of `n` transitions try, if every try misses.
    fn tries_when_always_missing(n: usize) -> Vec<usize> {
        let mut p = IdleYield::new();
        (0..n)
            .filter(|_| {
                let t = p.should_try();
                if t {
                    p.record(false);
                }
                t
            })
            .collect()
    }

    #[test]
    fn misses_back_off_exponentially_to_one_in_64() {
        // Tries at 0, then after skipping 1, 3, 7, 15, 31, 63, 63, ...
        let tries = tries_when_always_missing(400);
        assert_eq!(&tries[..7], &[0, 2, 6, 14, 30, 62, 126]);
        let gaps: Vec<usize> = tries.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[5..].iter().all(|&g| g == 64), "{gaps:?}");
    }

    #[test]
    fn a_hit_restores_every_transition() {
        let mut p = IdleYield::new();
        for _ in 0..200 {
            if p.should_try() {
                p.record(false);
            }
        }
        // Wait for the next try, then let it find events.
        while !p.should_try() {}
        p.record(true);
        assert!((0..10).all(|_| {
            let t = p.should_try();
            p.record(true);
            t
        }));
    }

    #[test]
    fn disabled_never_tries() {
        let mut p = IdleYield::new();
        p.set_enabled(false);
        assert!((0..100).all(|_| !p.should_try()));
    }
}
