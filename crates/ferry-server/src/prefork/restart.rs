//! Replacing prefork workers: dead ones at once, or after a back-off for
//! the ones that die young (see the module docs of `prefork`); and all of
//! them after a reload, so they serve from the reloaded state.

use std::time::{Duration, Instant};

use ferry_reactor::sys::fd_passing::send_fd;
use rustix::event::epoll;

use super::Pool;
use super::frame::ToWorker;
use crate::children::reap_exited;

/// A worker that dies sooner than this after starting is replaced with a
/// delay (see the module docs).
const YOUNG: Duration = Duration::from_secs(1);
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

/// A slot whose worker died: when to fork its replacement, and the delay
/// that was used (doubled if the next one dies young too).
#[derive(Clone, Copy, Default)]
pub(super) struct Restart {
    pub(super) due: Option<Instant>,
    pub(super) delay: Duration,
}

impl Pool {
    /// Reaps exited workers and forks their replacements, at once or, for
    /// workers that died young, after the back-off delay.
    pub(super) fn reap_and_replace(&mut self) {
        for (pid, how) in reap_exited() {
            let Some(slot) = self.slots.iter().position(|w| w.as_ref().is_some_and(|w| w.pid == pid)) else {
                continue;
            };
            self.lose_socket(slot);
            let age = self.slots[slot].take().map_or(Duration::ZERO, |w| w.started.elapsed());
            let restart = &mut self.restarts[slot];
            if age >= YOUNG {
                restart.delay = Duration::ZERO;
                tracing::warn!("worker {pid} {how}; starting a replacement");
                self.replace(slot);
                continue;
            }
            restart.delay = (restart.delay * 2).clamp(FIRST_RESTART_DELAY, MAX_RESTART_DELAY);
            restart.due = Some(Instant::now() + restart.delay);
            tracing::warn!(
                "worker {pid} {how} {:.3}s after it started; replacing it in {}ms",
                age.as_secs_f64(),
                restart.delay.as_millis()
            );
        }
        self.feed_workers();
    }

    /// After the parent reloaded (SIGHUP): replaces every idle worker with
    /// one forked from the reloaded state; busy ones are replaced when
    /// they report done (see `crate::reload`).
    pub(super) fn renew_workers(&mut self) {
        let idle: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].as_ref().is_some_and(|w| w.socket.is_some() && w.busy.is_none()))
            .collect();
        for slot in idle {
            self.retire(slot);
        }
        self.feed_workers();
    }

    /// Tells the idle worker of `slot` to exit and forks its replacement
    /// at once. The old one leaves by itself and is reaped like any exited
    /// child (its pid is no longer in a slot, so it is not replaced again).
    pub(super) fn retire(&mut self, slot: usize) {
        let Some(old) = self.slots[slot].take() else { return };
        if let Some(socket) = &old.socket {
            let _ = epoll::delete(&self.epoll, socket);
            if let Err(e) = send_fd(socket, None, &ToWorker::Exit.encode()) {
                tracing::debug!("cannot tell worker {} to exit: {e}", old.pid);
            }
        }
        tracing::debug!("worker {} retired after a reload", old.pid);
        // Dropping `old` closes our end: the worker reads Exit, or EOF.
        drop(old);
        self.replace(slot);
    }

    fn replace(&mut self, slot: usize) {
        self.restarts[slot].due = None;
        if let Err(e) = self.spawn(slot) {
            tracing::error!("{e}; the pool runs one worker short");
        }
    }

    /// The earliest pending delayed restart.
    pub(super) fn next_restart(&self) -> Option<Instant> {
        self.restarts.iter().filter_map(|r| r.due).min()
    }

    /// Forks the replacements whose delay has passed.
    pub(super) fn restart_due(&mut self) {
        let now = Instant::now();
        let due: Vec<usize> =
            (0..self.restarts.len()).filter(|&i| self.restarts[i].due.is_some_and(|d| d <= now)).collect();
        if due.is_empty() {
            return;
        }
        for slot in due {
            self.replace(slot);
        }
        self.feed_workers();
    }
}
