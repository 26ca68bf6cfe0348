//! The contract between a protocol and the driver that runs it.
//!
//! A [`Session`] is one connection's protocol state machine. It is handed
//! the bytes that arrived and answers with what should be sent, queued in an
//! [`Outbox`]. It never touches a socket, never blocks on the network and
//! never spawns: every concurrency model in `ferry-server` (thread pool,
//! reactor, prefork, ...) drives the same session type.
//!
//! One caller keeps this contract for every driver: the connection core,
//! [`Conn`](crate::conn::Conn). Its side:
//! 1. It calls [`Session::on_input`] with the whole unconsumed input and
//!    drops the `consumed` prefix it reports. What is left is a partial
//!    message.
//! 2. It has the outbox sent front to back; file ranges go out with
//!    `sendfile`. A [`Job`](crate::Job) at the front is blocking work
//!    (hashing a file, fsync) the driver runs (inline on a thread that may
//!    block, on a worker from an event loop); its bytes are sent in its
//!    place, nothing behind it goes first, and the session gets no call
//!    until its answer is queued.
//! 3. If the outbox holds an upload [`Sink`](crate::Sink), `on_input` is
//!    not called: after the queued output is flushed, the next
//!    `sink.remaining()` bytes from the peer (starting with what is already
//!    buffered) belong to the sink's file. Then [`Session::on_upload_done`].
//! 4. When everything queued has reached the kernel, [`Session::on_drained`];
//!    a streaming response may queue more.
//! 5. The returned [`Flow`] is obeyed.
//!
//! Time is passed in ([`Now`]): a session never reads a clock, so tests run
//! it on a fake one (and its `Date` headers are reproducible).

use std::io;
use std::time::{Instant, SystemTime};

use crate::Outbox;

/// The time of a call, as the driver read it (or a test made it up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// For deadlines and durations.
    pub mono: Instant,
    /// For what people read: `Date` headers, file times.
    pub wall: SystemTime,
}

impl Now {
    /// Reads both clocks (vDSO calls, no syscall).
    pub fn read() -> Now {
        Now { mono: Instant::now(), wall: SystemTime::now() }
    }
}

/// What the driver should do with the connection after a session call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep the connection open and keep reading.
    Continue,
    /// Send everything queued, then close (e.g. after `quit`, or after an
    /// error that leaves the byte stream unsynchronised).
    CloseAfterFlush,
    /// Close at once, dropping anything queued.
    CloseNow,
}

/// The result of [`Session::on_input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// How many bytes at the front of the input were used; the driver drops
    /// them. The rest is an incomplete message, offered again with more
    /// bytes appended.
    pub consumed: usize,
    /// What to do next.
    pub flow: Flow,
}

/// One connection's protocol state machine, free of sockets and threads.
///
/// Implementations bound what they keep per connection: a message that would
/// need more than a fixed amount of buffering is answered with an error (and
/// usually [`Flow::CloseAfterFlush`]) instead of being buffered.
pub trait Session {
    /// Consumes complete messages at the front of `input` and queues their
    /// answers in `out`. Leaves a trailing partial message unconsumed.
    ///
    /// A session may stop early (consume less than all complete messages),
    /// for instance after queueing a large file, so one connection cannot
    /// make the server hold unbounded work; the driver calls again after
    /// [`Session::on_drained`].
    fn on_input(&mut self, input: &[u8], out: &mut Outbox, now: Now) -> Progress;

    /// Everything queued has been handed to the kernel. The default queues
    /// nothing more.
    fn on_drained(&mut self, _out: &mut Outbox, _now: Now) -> Flow {
        Flow::Continue
    }

    /// An upload [`Sink`](crate::Sink) the session queued has finished:
    /// `Ok` when all its bytes were written to the file, `Err` when the peer
    /// went away early or the file could not be written.
    fn on_upload_done(&mut self, result: io::Result<()>, _out: &mut Outbox, _now: Now) -> Flow {
        match result {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::CloseNow,
        }
    }

    /// The peer half-closed its side; no more input will come. The default
    /// closes once the queued output is sent.
    fn on_eof(&mut self, _out: &mut Outbox, _now: Now) -> Flow {
        Flow::CloseAfterFlush
    }

    /// True while a request has been partly received (a head not yet
    /// complete, a body being read). Drivers use it to pick a timer: the
    /// shorter request-read timeout while it is true, the idle timeout
    /// between requests. The default says no request is ever under way.
    fn in_request(&self) -> bool {
        false
    }

    /// The driver's idle timer fired. A session may queue a goodbye message;
    /// the default just closes.
    fn on_idle_timeout(&mut self, _out: &mut Outbox, _now: Now) -> Flow {
        Flow::CloseAfterFlush
    }

    /// The server is shutting down: what is in flight finishes, then the
    /// connection closes. A protocol that can say so in its answers does
    /// (HTTP's `Connection: close`). The default does nothing.
    fn on_draining(&mut self) {}

    /// The connection is closed (its output flushed or abandoned): the
    /// last call, for records of requests still open
    /// ([`crate::observe`]). The default does nothing.
    fn on_closed(&mut self, _now: Now) {}
}

/// Implements [`Session`] for a pointer to a session by forwarding every
/// call, so drivers can hold `Box<dyn Session + Send>` in a
/// [`Conn`](crate::conn::Conn) and run a session they only borrow.
macro_rules! forward_session {
    ($($pointer:tt)*) => {
        impl<S: Session + ?Sized> Session for $($pointer)* {
            fn on_input(&mut self, input: &[u8], out: &mut Outbox, now: Now) -> Progress {
                (**self).on_input(input, out, now)
            }

            fn on_drained(&mut self, out: &mut Outbox, now: Now) -> Flow {
                (**self).on_drained(out, now)
            }

            fn on_upload_done(&mut self, result: io::Result<()>, out: &mut Outbox, now: Now) -> Flow {
                (**self).on_upload_done(result, out, now)
            }

            fn on_eof(&mut self, out: &mut Outbox, now: Now) -> Flow {
                (**self).on_eof(out, now)
            }

            fn in_request(&self) -> bool {
                (**self).in_request()
            }

            fn on_idle_timeout(&mut self, out: &mut Outbox, now: Now) -> Flow {
                (**self).on_idle_timeout(out, now)
            }

            fn on_draining(&mut self) {
                (**self).on_draining()
            }

            fn on_closed(&mut self, now: Now) {
                (**self).on_closed(now)
            }
        }
    };
}

forward_session!(Box<S>);
forward_session!(&mut S);
