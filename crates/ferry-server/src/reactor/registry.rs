//! Per-loop state of the reactor models: whether this thread's loop is
//! shutting down, and its timeout sweep. Connections themselves are found
//! with `EventLoop::connection_tokens`, so idle ones (which get no events)
//! can be timed out or closed at shutdown without a list of our own.
//!
//! Thread-local because a loop lives and dies on one thread and its
//! callbacks (shared by every loop, so `Send + Sync`) cannot capture
//! loop-local state; one loop per thread makes "this thread's" mean "this
//! loop's".

use std::cell::Cell;
use std::time::Duration;

use ferry_proto::Now;
use ferry_proto::http::FileCache;

use ferry_reactor::EventLoop;

use super::session_conn;

thread_local! {
    static DRAINING: Cell<bool> = const { Cell::new(false) };
    static SWEEPING: Cell<bool> = const { Cell::new(false) };
    static FILE_CACHE: FileCache = FileCache::new();
}

/// Runs `f` with this loop's open-file cache, shared by its HTTP sessions.
pub(crate) fn with_file_cache<R>(f: impl FnOnce(&FileCache) -> R) -> R {
    FILE_CACHE.with(f)
}

/// A connection opened on `lp`, this thread's loop: the first one starts
/// the loop's timeout sweep, every `sweep_every`.
pub(crate) fn connection_opened(lp: &mut EventLoop, sweep_every: Duration) {
    if !SWEEPING.replace(true) {
        lp.run_every(sweep_every, sweep);
    }
}

/// Times out this loop's connections that are past their deadline.
fn sweep(lp: &mut EventLoop) {
    let now = Now::read();
    for token in lp.connection_tokens() {
        lp.with_connection(token, |c| session_conn::check_deadline(c, now));
    }
}

/// True once this thread's loop began shutting down.
pub(crate) fn draining() -> bool {
    DRAINING.get()
}

/// Forgets a previous server's state on this thread (a caller may run
/// servers one after another on the same thread).
pub(crate) fn reset() {
    DRAINING.set(false);
    SWEEPING.set(false);
}

/// Starts shutting this thread's loop down: idle connections close now,
/// busy ones once their work is done; new ones close at once.
pub(crate) fn begin_drain(lp: &mut EventLoop) {
    DRAINING.set(true);
    for token in lp.connection_tokens() {
        lp.with_connection(token, session_conn::close_if_idle);
    }
}
