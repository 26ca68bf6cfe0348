//! TCP (and Unix-stream) connections driven by callbacks.
//!
//! # Lifetime
//! A connection's state is a handler owned by its loop's registry, named by a
//! [`Token`] (slab index + generation). Nothing else owns it: callbacks get a
//! short-lived [`TcpConnection`] view, other threads a [`ConnHandle`] that is
//! only an address (`LoopHandle` + `Token`). When the connection closes, the
//! `closed` callback runs, the fd is deregistered, the slot's generation is
//! bumped and the state (with its fd) is dropped; any handle or timer still
//! naming the old token then matches nothing. So there is no reference
//! cycle and nothing to leak, and a late `send` through a stale handle is a
//! harmless no-op.
//!
//! # Write path
//! `send` writes directly when nothing is queued; the rest goes to the
//! output queue and waits for writability (level-triggered: write interest is
//! turned on, and off again once it drained). File ranges queued with
//! `send_file` go out with `sendfile(2)`, in order with the bytes around them.
//!
//! # Level-triggered only
//! One read per readable event; whatever is left is reported again on the
//! next wait, so a connection keeps no readiness of its own. (An opt-in
//! edge-triggered mode was measured a wash and removed; docs/REACTOR.md.)

mod connector;
mod dispatch;
mod handle;
mod state;

use std::any::Any;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

pub(crate) use self::connector::adopt_counted;
pub use self::connector::{adopt, connect_nonblocking};
use self::dispatch::send_nosignal;
pub use self::handle::ConnHandle;
use self::state::{Chunk, ConnState, Reading, State};
use crate::buffer::Buffer;
use crate::event_loop::{EventLoop, Token};
use crate::listener::PeerAddr;

/// A connection as seen from a callback (or [`EventLoop::with_connection`]):
/// the connection's state plus its loop, borrowed for the call. Loop-thread
/// only by construction. Keep a [`ConnHandle`] to reach it later or from
/// another thread.
pub struct TcpConnection<'a> {
    st: &'a mut ConnState,
    lp: &'a mut EventLoop,
    token: Token,
}

impl fmt::Debug for TcpConnection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpConnection")
            .field("token", &self.token)
            .field("peer", &self.st.peer)
            .field("state", &self.st.state)
            .field("reading", &self.st.reading)
            .field("output_bytes", &self.st.out_bytes)
            .finish()
    }
}

impl<'a> TcpConnection<'a> {
    /// Queues `data` for the peer: written at once if nothing is queued,
    /// otherwise buffered. Returns `false` (and drops the data) if the
    /// connection is shutting down or closed. Fires the high-water-mark
    /// callback synchronously if this send crossed the mark.
    pub fn send(&mut self, data: &[u8]) -> bool {
        let st = &mut *self.st;
        if !st.state.accepts_output() {
            tracing::trace!(token = ?self.token, "send on a closing connection ignored");
            return false;
        }
        let mut written = 0;
        if st.output.is_empty() && st.state == State::Connected {
            match send_nosignal(&st.fd, data) {
                Ok(n) => written = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    tracing::debug!(token = ?self.token, error = %e, "send failed");
                    st.state = State::Closing;
                    return false;
                }
            }
            if written == data.len() {
                self.queue_write_complete();
                return true;
            }
        }
        let rest = &data[written..];
        let before = st.out_bytes;
        match st.output.back_mut() {
            Some(Chunk::Bytes(b)) => b.append(rest),
            _ => {
                let mut b = st.spare.take().unwrap_or_default();
                b.append(rest);
                st.output.push_back(Chunk::Bytes(b));
            }
        }
        st.out_bytes += rest.len();
        let after = st.out_bytes;
        self.report_high_water(before, after);
        true
    }

    /// Runs the high-water-mark callback if queued output just crossed the
    /// mark (from `before` to `after` bytes).
    fn report_high_water(&mut self, before: usize, after: usize) {
        let mark = self.st.callbacks.high_water_mark;
        if before < mark
            && after >= mark
            && let Some(cb) = self.st.callbacks.high_water.clone()
        {
            cb(self, after);
        }
    }

    /// Sends all readable bytes of `buf` and leaves it empty, like
    /// `send(buf.peek())` followed by `buf.consume_all()`, but without
    /// copying: if the kernel takes only part and nothing else is queued,
    /// the buffer itself is moved into the output queue and `buf` receives
    /// an empty (recycled) one. Ideal for relays and echo.
    pub fn send_buffer(&mut self, buf: &mut Buffer) -> bool {
        let st = &mut *self.st;
        if !st.state.accepts_output() {
            buf.consume_all();
            return false;
        }
        if buf.is_empty() {
            return true;
        }
        if !st.output.is_empty() || st.state != State::Connected {
            let ok = self.send(buf.peek());
            buf.consume_all();
            return ok;
        }
        match send_nosignal(&st.fd, buf.peek()) {
            Ok(n) => buf.consume(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                tracing::debug!(token = ?self.token, error = %e, "send failed");
                st.state = State::Closing;
                buf.consume_all();
                return false;
            }
        }
        if buf.is_empty() {
            self.queue_write_complete();
            return true;
        }
        let mut rest = st.spare.take().unwrap_or_default();
        std::mem::swap(&mut rest, buf);
        let before = st.out_bytes;
        st.out_bytes += rest.readable_bytes();
        st.output.push_back(Chunk::Bytes(rest));
        let after = st.out_bytes;
        self.report_high_water(before, after);
        true
    }

    /// Queues `len` bytes of `file` from `offset`, sent with `sendfile(2)`
    /// after everything queued before it. The file is closed (dropped) once
    /// sent or when the connection closes. Returns `false` if closing.
    pub fn send_file(&mut self, file: impl AsFd + 'static, offset: u64, len: u64) -> bool {
        let st = &mut *self.st;
        if !st.state.accepts_output() {
            return false;
        }
        if len == 0 {
            return true;
        }
        st.output.push_back(Chunk::File { file: Box::new(file), offset, remaining: len });
        if st.output.len() == 1 && st.state == State::Connected {
            // Nothing was queued, so write interest is off: try now.
            self.flush(false);
        }
        true
    }

    /// Closes the write side once all queued output is sent (half-close);
    /// reading continues until the peer closes too, then the connection
    /// closes.
    /// While a non-blocking connect is in flight, the half-close waits for
    /// it to complete.
    pub fn shutdown(&mut self) {
        self.st.state = match self.st.state {
            State::Connected => State::Disconnecting,
            State::Connecting { .. } => State::Connecting { shutdown_requested: true },
            other => other,
        };
    }

    /// Closes now, discarding queued output. The `closed` callback runs
    /// after the current callback returns.
    pub fn force_close(&mut self) {
        self.st.close_soon();
    }

    /// Stops reading (backpressure towards the peer) until
    /// [`resume_reading`](Self::resume_reading).
    pub fn pause_reading(&mut self) {
        if self.st.reading == Reading::Active {
            self.st.reading = Reading::Paused;
        }
    }

    /// Resumes reading after [`pause_reading`](Self::pause_reading).
    pub fn resume_reading(&mut self) {
        if self.st.reading == Reading::Paused {
            self.st.reading = Reading::Active;
        }
    }

    /// True once established (a non-blocking connect completed) and until
    /// `shutdown`, `force_close` or the connection closes.
    pub fn is_connected(&self) -> bool {
        self.st.state == State::Connected
    }

    /// True once the peer half-closed (we read EOF).
    pub fn peer_closed(&self) -> bool {
        self.st.reading == Reading::Eof
    }

    /// Bytes queued in memory, not yet accepted by the kernel (file ranges
    /// not included: they cost no memory).
    pub fn output_bytes(&self) -> usize {
        self.st.out_bytes
    }

    /// How many bytes of *queued* output (bytes and file ranges) the kernel
    /// has taken so far; only grows. Comparing it over time tells a slow
    /// reader (it moves) from one that stopped reading (it does not), which
    /// `has_pending_output` alone cannot.
    pub fn flushed_bytes(&self) -> u64 {
        self.st.flushed
    }

    /// True if anything (bytes or file ranges) is still queued.
    pub fn has_pending_output(&self) -> bool {
        !self.st.output.is_empty()
    }

    /// Bytes received and not yet consumed by the message callback.
    pub fn input_bytes(&self) -> usize {
        self.st.input.readable_bytes()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.st.peer
    }

    /// The registry token of this connection on its loop.
    pub fn token(&self) -> Token {
        self.token
    }

    /// A `Send` handle to reach this connection from anywhere.
    pub fn handle(&self) -> ConnHandle {
        ConnHandle { lp: self.lp.handle(), token: self.token }
    }

    /// The loop this connection lives on (timers, local tasks, other
    /// connections of this loop).
    pub fn event_loop(&mut self) -> &mut EventLoop {
        self.lp
    }

    /// Attaches per-connection state of any type (replacing any previous).
    pub fn set_context<T: Any>(&mut self, value: T) {
        self.st.context = Some(Box::new(value));
    }

    /// The context, if set and of type `T`.
    pub fn context<T: Any>(&self) -> Option<&T> {
        self.st.context.as_ref()?.downcast_ref()
    }

    /// The context mutably, if set and of type `T`.
    pub fn context_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.st.context.as_mut()?.downcast_mut()
    }

    /// Removes and returns the context.
    pub fn take_context(&mut self) -> Option<Box<dyn Any>> {
        self.st.context.take()
    }

    /// Runs `f` with the connection and its typed state side by side: the
    /// context (of type `C`) is checked out for the call, so `f` may use
    /// the connection freely (send, close) while it changes the state;
    /// nothing can reach the state twice. `None` if there is no context of
    /// type `C` (or it is checked out already). No allocation.
    pub fn with_state<C: Any, R>(&mut self, f: impl FnOnce(&mut TcpConnection<'_>, &mut C) -> R) -> Option<R> {
        let mut context = self.st.context.take()?;
        let result = context.downcast_mut::<C>().map(|state| f(self, state));
        // `f` may have replaced the context itself; that one wins.
        if self.st.context.is_none() {
            self.st.context = Some(context);
        }
        result
    }

    /// The socket, for options (`TCP_NODELAY`, keep-alive, ...). Do not read
    /// or write it directly, and never close it.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.st.fd.as_fd()
    }
}

impl EventLoop {
    /// Tokens of every open connection on this loop (e.g. to shut them all
    /// down gracefully). The connection whose callback is running now, if
    /// any, is not included.
    pub fn connection_tokens(&self) -> Vec<Token> {
        self.tokens_of::<ConnState>()
    }

    /// Asks every open connection on this loop to
    /// [`shutdown`](TcpConnection::shutdown) once its output drains; returns
    /// how many.
    pub fn shutdown_connections(&mut self) -> usize {
        let tokens = self.connection_tokens();
        tokens.iter().filter(|&&t| self.with_connection(t, |c| c.shutdown()).is_some()).count()
    }

    /// Force-closes every open connection on this loop; returns how many.
    pub fn close_connections(&mut self) -> usize {
        let tokens = self.connection_tokens();
        tokens.iter().filter(|&&t| self.with_connection(t, |c| c.force_close()).is_some()).count()
    }

    /// [`with_connection`](Self::with_connection) with the connection's
    /// typed state ([`TcpConnection::with_state`]).
    pub fn with_connection_state<C: Any, R>(
        &mut self,
        token: Token,
        f: impl FnOnce(&mut TcpConnection<'_>, &mut C) -> R,
    ) -> Option<R> {
        self.with_connection(token, |c| c.with_state(f)).flatten()
    }

    /// Runs `f` on the connection named by `token` if it is still open, then
    /// applies what `f` asked for (interest changes, close). `None` if the
    /// token is stale, not a connection, or the connection is the one whose
    /// callback is running right now (use the `TcpConnection` you were given).
    pub fn with_connection<R>(&mut self, token: Token, f: impl FnOnce(&mut TcpConnection<'_>) -> R) -> Option<R> {
        self.with_handler::<ConnState, Option<R>>(token, |st, lp| {
            if st.state == State::Disconnected {
                return None;
            }
            let mut c = TcpConnection { st, lp, token };
            let r = f(&mut c);
            c.settle();
            Some(r)
        })
        .flatten()
    }
}
