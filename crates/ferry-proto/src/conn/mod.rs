//! The connection core: every rule about *when* a connection reads, sends,
//! pauses, times out and closes, written once, without a syscall.
//!
//! A [`Conn`] wraps one [`Session`] (`ferry_proto::session`) and is driven
//! by thin syscall glue: the blocking pump, the event-loop bridge and the
//! deterministic test [`Pair`] (quinn-proto's `handle_*` / `poll_*` split).
//!
//! ```text
//!  socket --bytes--> driver --handle_input(now, &[u8])--> Conn --on_input--> Session
//!                       ^                                  |  (Outbox: bytes, file ranges, jobs, sink)
//!                       +------- poll_action(now) ---------+
//!          Send(&[u8]) | SendFile{file, offset, len} | WriteFile{..} | Splice{..}
//!          RunJob(job) | Shutdown | Close(reason)
//!                       |
//!  driver performs it, then reports: handle_sent / handle_queued + handle_flushed /
//!  handle_written / handle_spliced / handle_job_done / handle_eof / handle_timeout(now)
//! ```
//!
//! The driver's whole job:
//! 1. Call [`Conn::poll_action`] until it returns `None`, performing each
//!    [`Action`] and reporting its outcome before the next call.
//! 2. `None` means the connection waits for the peer (read if
//!    [`Conn::wants_read`]), for a job's answer, or for the driver's own
//!    output buffer to drain. Wait at most until [`Conn::next_deadline`];
//!    when it passes, call [`Conn::handle_timeout`].
//! 3. Report input with [`Conn::handle_input`], the peer's end of stream
//!    with [`Conn::handle_eof`], and the server's drain with
//!    [`Conn::handle_shutdown`]. After [`Action::Close`] drop the socket.
//!
//! Time is an input (`now`): the core never reads a clock, so the test
//! harness drives idle, header and linger timeouts on a fake clock.

mod core;
mod handle;
mod input;
mod pair;
mod tls;

use std::fmt;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::Duration;

pub use self::core::{Conn, ConnStats};
pub use self::pair::{Pair, PairEvent};
pub use self::tls::{CHUNK as TLS_CHUNK, TlsConfig};
use crate::{FileSlice, Job};

/// Most unconsumed input bytes a connection holds, and the largest single
/// read. Sessions consume or reject far less (HTTP heads are limited to
/// 16 KiB by default, file-protocol lines to 4 KiB); a session that leaves a
/// full buffer unconsumed is a protocol bug and the connection closes.
pub const MAX_INPUT: usize = 64 * 1024;

/// How long a closing connection keeps reading (and discarding) after our
/// FIN when the peer may still be sending, so its unread bytes do not make
/// the kernel answer with a RST that destroys our last answer (the
/// "lingering close" of Apache and nginx).
pub const LINGER: Duration = Duration::from_secs(2);

/// Most bytes discarded while lingering.
pub const LINGER_BYTES: usize = 1024 * 1024;

/// A connection's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long a connection may make no progress (no bytes in or out)
    /// between requests, during an upload, or while the peer does not read
    /// what is sent, before it is closed.
    pub idle_timeout: Duration,
    /// How long the rest of a request may take once it began to arrive
    /// (the session's [`Session::in_request`](crate::Session::in_request)):
    /// HTTP's header-read timeout against slowloris clients. Not extended
    /// by more bytes.
    pub request_timeout: Duration,
}

impl Timeouts {
    /// The same timeout between requests and within one.
    pub fn with_idle(idle_timeout: Duration) -> Timeouts {
        Timeouts { idle_timeout, request_timeout: idle_timeout }
    }
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts::with_idle(Duration::from_secs(300))
    }
}

/// How a driver wants its connections run.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// The connection's timeouts.
    pub timeouts: Timeouts,
    /// The driver can move upload payload from the socket straight into
    /// the file ([`Action::Splice`]); without it, payload arrives as input
    /// and leaves as [`Action::WriteFile`]. Ignored under TLS.
    pub splice: bool,
    /// Speak TLS on these connections ([`TlsConfig`]): the core decrypts
    /// input and encrypts output, so the driver only ever sees
    /// [`Action::Send`] of ciphertext (never `SendFile` or `Splice`).
    pub tls: Option<TlsConfig>,
}

impl ConnConfig {
    /// A driver without splice (event loops, tests).
    pub fn new(timeouts: Timeouts) -> ConnConfig {
        ConnConfig { timeouts, splice: false, tls: None }
    }
}

/// What the core wants the driver to do next. Borrowed from the
/// connection: perform it, report the outcome, then poll again.
pub enum Action<'a> {
    /// Send these bytes; report how many the kernel took with
    /// [`Conn::handle_sent`] (or, if the driver buffers them itself,
    /// [`Conn::handle_queued`]).
    Send(&'a [u8]),
    /// `sendfile` up to `len` bytes of `file` from `offset`; report as for
    /// [`Action::Send`]. A file that ends early is an error
    /// ([`Conn::handle_send_error`]): the peer was promised `len` bytes.
    SendFile(FileSlice<'a>),
    /// Write upload payload already received into the upload's file
    /// (`pwrite`); report with [`Conn::handle_written`] or
    /// [`Conn::handle_upload_error`].
    WriteFile {
        /// The upload's file.
        file: &'a File,
        /// Where `data` goes in it.
        offset: u64,
        /// Payload bytes (a prefix of the buffered input).
        data: &'a [u8],
    },
    /// Move up to `max` payload bytes from the socket into `file` at
    /// `offset` (`splice`), waiting for the socket to become readable (at
    /// most until [`Conn::next_deadline`]); report with
    /// [`Conn::handle_spliced`] (0 = end of stream) or
    /// [`Conn::handle_upload_error`]. Only with [`ConnConfig::splice`].
    Splice {
        /// The upload's file (shared: a driver whose splice outlives the
        /// call keeps a clone until it completes).
        file: &'a Arc<File>,
        /// Where the next payload byte goes.
        offset: u64,
        /// Payload bytes still expected.
        max: u64,
    },
    /// Blocking work (hashing a file, listing a directory, fsync): run it
    /// (inline on a thread that may block, on a worker from an event loop)
    /// and hand its bytes to [`Conn::handle_job_done`]. Nothing else is
    /// sent until then.
    RunJob(Job),
    /// Everything is sent: half-close our side (FIN). Keep reading; the
    /// core discards what comes and asks to close at the peer's end or
    /// after a short linger.
    Shutdown,
    /// The connection is over: drop the socket. Returned once.
    Close(CloseReason),
}

impl fmt::Debug for Action<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send(b) => f.debug_tuple("Send").field(&b.len()).finish(),
            Action::SendFile(slice) => {
                f.debug_struct("SendFile").field("offset", &slice.offset).field("len", &slice.len).finish()
            }
            Action::WriteFile { offset, data, .. } => {
                f.debug_struct("WriteFile").field("offset", offset).field("len", &data.len()).finish()
            }
            Action::Splice { offset, max, .. } => {
                f.debug_struct("Splice").field("offset", offset).field("max", max).finish()
            }
            Action::RunJob(_) => f.write_str("RunJob"),
            Action::Shutdown => f.write_str("Shutdown"),
            Action::Close(r) => f.debug_tuple("Close").field(r).finish(),
        }
    }
}

/// Why a connection ended.
#[derive(Debug)]
pub enum CloseReason {
    /// The session asked to close (`quit`, a fatal protocol error).
    SessionClosed,
    /// The peer closed its side.
    PeerClosed,
    /// Nothing arrived for the idle timeout, or a request took longer than
    /// the request timeout.
    IdleTimeout,
    /// The server is shutting down and the connection had nothing in flight.
    Shutdown,
    /// A socket or file error (reset by peer, send timeout, file shrank...).
    Error(io::Error),
}

impl CloseReason {
    /// True for an orderly end (anything but an error).
    pub fn is_orderly(&self) -> bool {
        !matches!(self, CloseReason::Error(_))
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::SessionClosed => f.write_str("closed by the session"),
            CloseReason::PeerClosed => f.write_str("closed by the peer"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::Shutdown => f.write_str("server shutting down"),
            CloseReason::Error(e) => write!(f, "error: {e}"),
        }
    }
}
