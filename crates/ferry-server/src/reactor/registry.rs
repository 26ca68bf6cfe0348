//! The connections of the loop running on this thread, so shutdown can
//! reach the idle ones (which get no events), and whether that loop is
//! shutting down.
//!
//! Thread-local because a loop lives and dies on one thread and its
//! callbacks (shared by every loop, so `Send + Sync`) cannot capture
//! loop-local state; one loop per thread makes "this thread's" mean "this
//! loop's".

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use ferry_reactor::{EventLoop, Token};

use super::session_conn;

thread_local! {
    static TOKENS: RefCell<HashSet<Token>> = RefCell::new(HashSet::new());
    static DRAINING: Cell<bool> = const { Cell::new(false) };
}

/// A connection opened on this thread's loop.
pub(crate) fn insert(token: Token) {
    TOKENS.with_borrow_mut(|t| t.insert(token));
}

/// A connection of this thread's loop closed.
pub(crate) fn remove(token: Token) {
    TOKENS.with_borrow_mut(|t| t.remove(&token));
}

/// True once this thread's loop began shutting down.
pub(crate) fn draining() -> bool {
    DRAINING.get()
}

/// Forgets a previous server's state on this thread (a caller may run
/// servers one after another on the same thread).
pub(crate) fn reset() {
    DRAINING.set(false);
    TOKENS.with_borrow_mut(HashSet::clear);
}

/// Starts shutting this thread's loop down: idle connections close now,
/// busy ones once their work is done; new ones close at once.
pub(crate) fn begin_drain(lp: &mut EventLoop) {
    DRAINING.set(true);
    // Collected first: closing a connection removes it from the set.
    let tokens: Vec<Token> = TOKENS.with_borrow(|t| t.iter().copied().collect());
    for token in tokens {
        lp.with_connection(token, session_conn::close_if_idle);
    }
}
