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

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::net::{SendFlags, Shutdown};

use crate::buffer::Buffer;
use crate::callbacks::Callbacks;
use crate::event_loop::{EventLoop, Handler, LoopHandle, Token};
use crate::listener::{ListenAddr, PeerAddr};
use crate::poller::{Interest, Ready};
use crate::sys::zero_copy;

/// Most bytes written to one socket per readiness event, so one fast
/// reader cannot monopolise its loop.
const WRITE_BUDGET: usize = 4 * 1024 * 1024;
/// An emptied input buffer larger than this is released rather than kept.
const MAX_IDLE_INPUT: usize = 1024 * 1024;
/// Largest single `sendfile` call.
const SENDFILE_CHUNK: usize = 1024 * 1024;

enum Chunk {
    Bytes(Buffer),
    File { file: Box<dyn AsFd>, offset: u64, remaining: u64 },
}

/// Where a connection is in its life (muduo's `StateE`, with the steps
/// muduo keeps in other fields made explicit). Moves only forward:
/// Connecting -> Connected -> Disconnecting -> WriteShut -> Disconnected,
/// with Closing reachable from any state before Disconnected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// A non-blocking connect is in flight: only writability matters, and
    /// sends are queued. `shutdown_requested`: `shutdown()` was called
    /// meanwhile and applies once connected.
    Connecting { shutdown_requested: bool },
    /// Established: reads and writes flow.
    Connected,
    /// `shutdown()` asked: the write side closes once output drains.
    Disconnecting,
    /// Our write side is shut (`SHUT_WR` sent); closes when the peer's
    /// EOF has been read.
    WriteShut,
    /// To be closed when the current callback returns (`force_close`, or an
    /// I/O error), output discarded.
    Closing,
    /// Closed: `closed` (or `connect_failed`) ran and the slot is freed.
    Disconnected,
}

impl State {
    /// True while `send` and friends accept data.
    fn accepts_output(self) -> bool {
        matches!(self, State::Connecting { shutdown_requested: false } | State::Connected)
    }
}

/// The read side, independent of [`State`] (the peer may half-close while
/// we keep sending).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reading {
    /// Reading when readable.
    Active,
    /// `pause_reading()`: backpressure towards the peer.
    Paused,
    /// The peer's EOF was read; nothing more will come (final).
    Eof,
}

/// The write-complete notification: due now, posted as a loop task, or
/// both (a task is in flight when another send completes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WriteComplete {
    /// Nothing pending.
    Idle,
    /// A send completed: runs when the current callback returns.
    Due,
    /// A loop task will make it due (at most one task in flight).
    Posted,
    /// Due now, and a task is in flight too.
    PostedAndDue,
}

impl WriteComplete {
    fn mark_due(&mut self) {
        *self = match *self {
            WriteComplete::Idle | WriteComplete::Due => WriteComplete::Due,
            WriteComplete::Posted | WriteComplete::PostedAndDue => WriteComplete::PostedAndDue,
        };
    }

    /// Clears "due", returning whether it was set.
    fn take_due(&mut self) -> bool {
        let (due, rest) = match *self {
            WriteComplete::Idle => (false, WriteComplete::Idle),
            WriteComplete::Due => (true, WriteComplete::Idle),
            WriteComplete::Posted => (false, WriteComplete::Posted),
            WriteComplete::PostedAndDue => (true, WriteComplete::Posted),
        };
        *self = rest;
        due
    }

    fn is_posted(self) -> bool {
        matches!(self, WriteComplete::Posted | WriteComplete::PostedAndDue)
    }
}

/// The loop-owned state of one connection (the registry's handler).
pub(crate) struct ConnState {
    fd: OwnedFd,
    peer: PeerAddr,
    callbacks: Callbacks,
    input: Buffer,
    output: VecDeque<Chunk>,
    spare: Option<Buffer>,
    out_bytes: usize,
    /// Queued output (bytes and file ranges) the kernel has taken so far.
    flushed: u64,
    state: State,
    reading: Reading,
    write_complete: WriteComplete,
    context: Option<Box<dyn Any>>,
    /// Counts this connection as open until the state is freed (held for
    /// its `Drop`).
    _live: Option<LiveCount>,
}

/// One open connection in a server's counters: the server-wide count and,
/// under a `TcpServer` with sub-loops, its loop's count (what least-loaded
/// assignment compares). Counted from creation to drop, so a connection
/// posted to a loop counts from the moment it is assigned, and one whose
/// loop is gone stops counting when the task carrying it is dropped.
pub(crate) struct LiveCount {
    server: Arc<AtomicUsize>,
    sub_loop: Option<Arc<AtomicUsize>>,
}

impl LiveCount {
    pub(crate) fn new(server: Arc<AtomicUsize>, sub_loop: Option<Arc<AtomicUsize>>) -> LiveCount {
        server.fetch_add(1, Ordering::AcqRel);
        if let Some(l) = &sub_loop {
            l.fetch_add(1, Ordering::AcqRel);
        }
        LiveCount { server, sub_loop }
    }
}

impl Drop for LiveCount {
    fn drop(&mut self) {
        // The loop's count first: whoever sees the server's count drop
        // sees the loop's too.
        if let Some(l) = &self.sub_loop {
            l.fetch_sub(1, Ordering::AcqRel);
        }
        self.server.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnState {
    /// Closes when the current callback returns (unless already closed).
    fn close_soon(&mut self) {
        if self.state != State::Disconnected {
            self.state = State::Closing;
        }
    }
}

impl AsFd for ConnState {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

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

    /// The socket, for options (`TCP_NODELAY`, keep-alive, ...). Do not read
    /// or write it directly, and never close it.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.st.fd.as_fd()
    }

    /// A send from user code completed: write-complete is due once the code
    /// that sent returns (never re-entrantly). Only a flag: `settle`, which
    /// ends every callback entry point, delivers it.
    fn queue_write_complete(&mut self) {
        if self.st.callbacks.write_complete.is_some() {
            self.st.write_complete.mark_due();
        }
    }

    /// Runs a due write-complete (from `settle`). If that callback completes
    /// another send, the next one is posted as a loop task, so a producer
    /// that refills from write-complete takes turns with other connections.
    fn deliver_write_complete(&mut self) {
        if !self.st.write_complete.take_due() {
            return;
        }
        if self.st.output.is_empty()
            && self.st.state != State::Closing
            && let Some(cb) = self.st.callbacks.write_complete.clone()
        {
            cb(self);
        }
        if self.st.write_complete.take_due() {
            self.post_write_complete();
        }
    }

    fn post_write_complete(&mut self) {
        if self.st.write_complete.is_posted() {
            return;
        }
        self.st.write_complete = WriteComplete::Posted;
        let token = self.token;
        self.lp.queue_in_loop(move |lp| {
            // `with_connection` ends in `settle`, which delivers it.
            lp.with_connection(token, |c| c.st.write_complete = WriteComplete::Due);
        });
    }

    /// Writes queued output until the kernel pushes back, the queue drains
    /// or the per-event budget is spent. `from_event`: called from the
    /// writable event, not from user code, so write-complete can run at once
    /// (saving an interest change when it resumes reading) instead of being
    /// queued.
    fn flush(&mut self, from_event: bool) {
        let st = &mut *self.st;
        let mut budget = WRITE_BUDGET;
        while budget > 0 {
            let Some(front) = st.output.front_mut() else { break };
            let res = match front {
                Chunk::Bytes(buf) => match send_nosignal(&st.fd, buf.peek()) {
                    Ok(n) => {
                        buf.consume(n);
                        st.out_bytes -= n;
                        Ok((n, buf.is_empty()))
                    }
                    Err(e) => Err(e),
                },
                Chunk::File { file, offset, remaining } => {
                    let want = (*remaining).min(SENDFILE_CHUNK as u64) as usize;
                    match zero_copy::sendfile(&st.fd, file.as_fd(), offset, want) {
                        Ok(0) => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file ended before the queued range was sent",
                        )),
                        Ok(n) => {
                            *remaining -= n as u64;
                            Ok((n, *remaining == 0))
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match res {
                Ok((n, done)) => {
                    st.flushed += n as u64;
                    budget = budget.saturating_sub(n.max(1));
                    if done {
                        if let Some(Chunk::Bytes(mut b)) = st.output.pop_front() {
                            b.consume_all();
                            if st.spare.is_none() && b.capacity() <= 1024 * 1024 {
                                st.spare = Some(b);
                            }
                        }
                    } else if n == 0 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(token = ?self.token, error = %e, "write failed; closing");
                    st.state = State::Closing;
                    return;
                }
            }
        }
        if self.st.output.is_empty() {
            if from_event {
                if self.st.state != State::Closing
                    && let Some(cb) = self.st.callbacks.write_complete.clone()
                {
                    cb(self);
                }
            } else {
                self.queue_write_complete();
            }
        }
    }

    fn handle_read(&mut self) {
        match self.st.input.recv_from(&self.st.fd) {
            Ok(0) => {
                self.st.reading = Reading::Eof;
                match self.st.callbacks.half_closed.clone() {
                    Some(cb) => cb(self),
                    None => self.shutdown(),
                }
            }
            Ok(_) => match self.st.callbacks.message.clone() {
                Some(cb) => {
                    let mut input = std::mem::take(&mut self.st.input);
                    cb(self, &mut input);
                    // After a burst, do not keep a huge idle input buffer.
                    if input.is_empty() && input.capacity() > MAX_IDLE_INPUT {
                        input = Buffer::new();
                    }
                    self.st.input = input;
                }
                None => self.st.input.consume_all(),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                tracing::debug!(token = ?self.token, error = %e, "read failed; closing");
                self.st.close_soon();
            }
        }
    }

    /// Carries out what callbacks asked for: close, half-close, interest.
    fn settle(&mut self) {
        if self.st.state == State::Disconnected {
            return;
        }
        self.deliver_write_complete();
        if self.st.state == State::Disconnecting && self.st.output.is_empty() {
            self.st.state = match rustix::net::shutdown(&self.st.fd, Shutdown::Write) {
                Ok(()) => State::WriteShut,
                Err(e) => {
                    tracing::debug!(token = ?self.token, error = %e, "shutdown(WR) failed");
                    State::Closing
                }
            };
        }
        if self.st.state == State::Closing || (self.st.state == State::WriteShut && self.st.reading == Reading::Eof) {
            self.close();
            return;
        }
        let interest = if let State::Connecting { .. } = self.st.state {
            Interest::WRITABLE
        } else {
            Interest::NONE
                .with_readable(self.st.reading == Reading::Active)
                .with_writable(!self.st.output.is_empty())
        };
        if let Err(e) = self.lp.set_interest(self.token, interest) {
            tracing::warn!(token = ?self.token, error = %e, "changing interest failed; closing");
            self.close();
        }
    }

    /// A non-blocking connect reported readiness: established or failed.
    fn finish_connect(&mut self, ready: Ready) {
        let outcome = match rustix::net::sockopt::socket_error(&self.st.fd) {
            Ok(Ok(())) if !ready.is_error() && !ready.is_hup() => Ok(()),
            Ok(Ok(())) => Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
            Ok(Err(errno)) => Err(io::Error::from(errno)),
            Err(e) => Err(io::Error::from(e)),
        };
        match outcome {
            Ok(()) => {
                self.st.state = match self.st.state {
                    State::Connecting { shutdown_requested: true } => State::Disconnecting,
                    State::Connecting { shutdown_requested: false } => State::Connected,
                    other => other,
                };
                if let PeerAddr::Tcp(_) = self.st.peer {
                    let _ = rustix::net::sockopt::set_tcp_nodelay(&self.st.fd, true);
                }
                if let Some(cb) = self.st.callbacks.connected.clone() {
                    cb(self);
                }
                // Anything sent while connecting goes out now.
                if !self.st.output.is_empty() && self.st.state != State::Closing {
                    self.flush(false);
                }
                self.settle();
            }
            Err(e) => {
                tracing::debug!(token = ?self.token, error = %e, "connect failed");
                self.st.state = State::Disconnected;
                self.st.output.clear();
                if let Some(cb) = self.st.callbacks.connect_failed.clone() {
                    cb(self, e);
                }
                self.lp.deregister(self.token);
            }
        }
    }

    fn close(&mut self) {
        if self.st.state == State::Disconnected {
            return;
        }
        self.st.state = State::Disconnected;
        if let Some(cb) = self.st.callbacks.closed.clone() {
            cb(self);
        }
        self.st.output.clear();
        // The state is running (taken out of the registry), so this marks
        // the slot; the loop drops the state, closing the fd, right after.
        self.lp.deregister(self.token);
    }
}

impl Handler for ConnState {
    fn ready(&mut self, lp: &mut EventLoop, token: Token, ready: Ready) {
        let mut c = TcpConnection { st: self, lp, token };
        if let State::Connecting { .. } = c.st.state {
            c.finish_connect(ready);
            return;
        }
        if ready.is_error() {
            let err = rustix::net::sockopt::socket_error(&c.st.fd);
            tracing::debug!(?token, ?err, "socket error; closing");
            c.st.close_soon();
        } else {
            let readable = ready.is_readable() || ready.is_read_closed() || ready.is_hup();
            if readable && c.st.reading == Reading::Active {
                c.handle_read();
            }
            if ready.is_writable() && c.st.state != State::Closing && !c.st.output.is_empty() {
                c.flush(true);
            }
            if ready.is_hup() && c.st.reading != Reading::Active {
                // Both directions are gone and we will not read what may be
                // left (or already read to EOF): nothing more can happen.
                // While still reading, data before the FIN is drained first
                // (level-triggered, the hang-up is reported again until we
                // read EOF).
                c.st.close_soon();
            }
        }
        c.settle();
    }
}

/// Sends on a socket without raising SIGPIPE; retries `EINTR`.
fn send_nosignal(fd: &OwnedFd, data: &[u8]) -> io::Result<usize> {
    loop {
        match rustix::net::send(fd, data, SendFlags::NOSIGNAL) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            // A Unix socket or a pipe-like fd: fall back to write(2).
            Err(rustix::io::Errno::NOTSOCK) => {
                return rustix::io::write(fd, data).map_err(Into::into);
            }
            Err(e) => return Err(e.into()),
        }
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

/// Makes `fd` (a connected, non-blocking stream socket) a connection of
/// `lp`, reporting to `callbacks`; runs `connected` before returning.
pub fn adopt(lp: &mut EventLoop, fd: OwnedFd, peer: PeerAddr, callbacks: Callbacks) -> io::Result<ConnHandle> {
    adopt_counted(lp, fd, peer, callbacks, None)
}

/// Starts a non-blocking connect to `addr` on `lp`. Returns at once with
/// the connection's handle; `connected` runs once it is established, or
/// `connect_failed` if it cannot be. Data sent meanwhile is queued.
/// (Name resolution is not done here: give an IP address or `unix:` path.)
pub fn connect_nonblocking(lp: &mut EventLoop, addr: &ListenAddr, callbacks: Callbacks) -> io::Result<ConnHandle> {
    use rustix::net::{AddressFamily, SocketAddrAny, SocketAddrUnix, SocketFlags, SocketType};
    let (family, sa, peer) = match addr {
        ListenAddr::Tcp(a) => {
            let family = if a.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
            (family, SocketAddrAny::from(*a), PeerAddr::Tcp(*a))
        }
        ListenAddr::Unix(p) => {
            (AddressFamily::UNIX, SocketAddrAny::from(SocketAddrUnix::new(p.as_path())?), PeerAddr::Unix)
        }
    };
    let fd = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC, None)?;
    let in_progress = loop {
        match rustix::net::connect(&fd, &sa) {
            Ok(()) => break false,
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::INPROGRESS | rustix::io::Errno::AGAIN) => break true,
            Err(e) => return Err(e.into()),
        }
    };
    if !in_progress {
        if let PeerAddr::Tcp(_) = peer {
            let _ = rustix::net::sockopt::set_tcp_nodelay(&fd, true);
        }
        return adopt(lp, fd, peer, callbacks);
    }
    let mut st = new_state(fd, peer, callbacks, None);
    st.state = State::Connecting { shutdown_requested: false };
    let token = lp.register_owned(Interest::WRITABLE, st)?;
    Ok(ConnHandle { lp: lp.handle(), token })
}

fn new_state(fd: OwnedFd, peer: PeerAddr, callbacks: Callbacks, live: Option<LiveCount>) -> ConnState {
    ConnState {
        fd,
        peer,
        callbacks,
        input: Buffer::new(),
        output: VecDeque::new(),
        spare: None,
        out_bytes: 0,
        flushed: 0,
        state: State::Connected,
        reading: Reading::Active,
        write_complete: WriteComplete::Idle,
        context: None,
        _live: live,
    }
}

pub(crate) fn adopt_counted(
    lp: &mut EventLoop,
    fd: OwnedFd,
    peer: PeerAddr,
    callbacks: Callbacks,
    live: Option<LiveCount>,
) -> io::Result<ConnHandle> {
    let st = new_state(fd, peer, callbacks, live);
    let token = lp.register_owned(Interest::READABLE, st)?;
    lp.with_connection(token, |c| {
        if let Some(cb) = c.st.callbacks.connected.clone() {
            cb(c);
        }
    });
    Ok(ConnHandle { lp: lp.handle(), token })
}

/// A connection's address usable from any thread: `Clone + Send + Sync`,
/// `Eq + Hash` (for sets of clients). Every operation is posted to the
/// connection's loop and applied there in posting order; if the connection
/// has closed meanwhile it is a no-op. Holding a handle keeps nothing alive.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConnHandle {
    lp: LoopHandle,
    token: Token,
}

impl fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnHandle(loop {}, {:?})", self.lp.id(), self.token)
    }
}

impl std::hash::Hash for LoopHandle {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl ConnHandle {
    /// Sends `data` (see [`TcpConnection::send`]). Returns `false` only if
    /// the loop has exited; a closed connection silently drops it.
    pub fn send(&self, data: impl Into<Vec<u8>>) -> bool {
        let data = data.into();
        let token = self.token;
        self.lp.run_in_loop(move |lp| {
            lp.with_connection(token, |c| c.send(&data));
        })
    }

    /// Queues a file range (see [`TcpConnection::send_file`]).
    pub fn send_file(&self, file: impl AsFd + Send + 'static, offset: u64, len: u64) -> bool {
        let token = self.token;
        self.lp.run_in_loop(move |lp| {
            lp.with_connection(token, |c| c.send_file(file, offset, len));
        })
    }

    /// Half-closes after output drains (see [`TcpConnection::shutdown`]).
    pub fn shutdown(&self) -> bool {
        let token = self.token;
        self.lp.run_in_loop(move |lp| {
            lp.with_connection(token, |c| c.shutdown());
        })
    }

    /// Closes now (see [`TcpConnection::force_close`]).
    pub fn force_close(&self) -> bool {
        let token = self.token;
        self.lp.run_in_loop(move |lp| {
            lp.with_connection(token, |c| c.force_close());
        })
    }

    /// Runs `f` with the connection on its loop (if still open): how a worker
    /// thread posts a result back to the connection it belongs to.
    pub fn run_in_loop(&self, f: impl FnOnce(&mut TcpConnection<'_>) + Send + 'static) -> bool {
        let token = self.token;
        self.lp.run_in_loop(move |lp| {
            lp.with_connection(token, f);
        })
    }

    /// The connection's loop.
    pub fn loop_handle(&self) -> &LoopHandle {
        &self.lp
    }

    /// The connection's token on its loop.
    pub fn token(&self) -> Token {
        self.token
    }
}
