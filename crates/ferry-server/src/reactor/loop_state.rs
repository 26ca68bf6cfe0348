//! What each event loop of a reactor server keeps for itself: whether it
//! is draining, its timeout sweep and its open-file cache. One
//! [`LoopState`] per loop, captured by that loop's callbacks (the
//! `TcpServer` makes callbacks per loop), so no thread-local is needed and
//! a server run after another on the same thread starts clean.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferry_proto::Now;
use ferry_proto::http::FileCache;
use ferry_reactor::EventLoop;

use super::session_conn::{self, Core};

/// One loop's state. Only its loop's thread touches it; the atomics make
/// it `Sync` for the callbacks that carry it.
pub(crate) struct LoopState {
    /// The loop began shutting down: idle connections close at once, new
    /// ones are closed as they arrive.
    draining: AtomicBool,
    /// The timeout sweep is running on the loop.
    sweeping: AtomicBool,
    /// How often the sweep runs.
    sweep_every: Duration,
    /// Shared by the HTTP sessions of this loop.
    pub(crate) file_cache: FileCache,
}

impl LoopState {
    pub(crate) fn new(sweep_every: Duration) -> Arc<LoopState> {
        Arc::new(LoopState {
            draining: AtomicBool::new(false),
            sweeping: AtomicBool::new(false),
            sweep_every,
            file_cache: FileCache::new(),
        })
    }

    /// True once this loop began shutting down.
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// A connection opened on `lp`, this state's loop: the first one starts
    /// the loop's timeout sweep (an idle server has no timer).
    pub(crate) fn connection_opened(&self, lp: &mut EventLoop) {
        if !self.sweeping.swap(true, Ordering::AcqRel) {
            lp.run_every(self.sweep_every, sweep);
        }
    }

    /// Starts shutting `lp`, this state's loop, down: idle connections
    /// close now, busy ones once their work is done, new ones at once.
    pub(crate) fn begin_drain(&self, lp: &mut EventLoop) {
        self.draining.store(true, Ordering::Release);
        for token in lp.connection_tokens() {
            lp.with_connection_state(token, |c, core: &mut Core| session_conn::close_if_idle(c, core));
        }
    }
}

/// Times out the loop's connections that are past their deadline.
fn sweep(lp: &mut EventLoop) {
    let now = Now::read();
    for token in lp.connection_tokens() {
        lp.with_connection_state(token, |c, core: &mut Core| session_conn::check_deadline(c, core, now));
    }
}
