//! [`Pair`]: a [`Conn`] wired to an in-memory peer on a fake clock, the
//! deterministic test driver (quinn-proto's `Pair`). Timeouts, slowloris
//! clients, pipelining and backpressure run in microseconds, no sockets,
//! no sleeps; every bound the core and the session promise is checked
//! after every step.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Action, CloseReason, Conn, ConnConfig, Timeouts};
use crate::{FileSlice, Job, Now, Session};

/// One thing the driver did, in order, for tests that care how output
/// left (how many writes, which file ranges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairEvent {
    /// Bytes sent in one write.
    Send(usize),
    /// A file range sent with one `sendfile`.
    SendFile(u64),
    /// Upload payload written into the sink's file.
    WriteFile(usize),
    /// A job started.
    Job,
    /// Our side was half-closed.
    Shutdown,
    /// The connection closed.
    Close,
}

/// A connection and its peer, on a clock that only moves when told.
pub struct Pair<S> {
    conn: Conn<S>,
    now: Now,
    /// Sent by the client, not yet read by the server.
    to_server: Vec<u8>,
    client_closed: bool,
    eof_read: bool,
    /// Received by the client (file ranges read back in place).
    received: Vec<u8>,
    /// How many bytes the client's receive window holds; sends stall
    /// while that many are unread by the client.
    window: usize,
    unread: usize,
    /// Most bytes the server reads per read.
    read_chunk: usize,
    hold_jobs: bool,
    held: Vec<Job>,
    closed: Option<CloseReason>,
    events: Vec<PairEvent>,
    /// Most plain bytes the session may have queued at any point.
    max_queued: usize,
    /// Most heap bytes the connection's own buffers may hold at any point.
    max_buffers: usize,
    /// The driver buffers what the window does not take (as an event loop
    /// does: `handle_queued`, then `handle_flushed` when the client read it
    /// all); the most it may hold.
    driver_buffer: Option<usize>,
    /// Bytes in that buffer now.
    buffered: usize,
}

impl<S: Session> Pair<S> {
    /// A connection opened just now with `timeouts`, an unlimited window,
    /// whole reads.
    pub fn new(session: S, timeouts: Timeouts) -> Pair<S> {
        Pair::with_config(session, ConnConfig::new(timeouts))
    }

    /// [`Pair::new`] with a whole connection configuration (TLS).
    pub fn with_config(session: S, config: ConnConfig) -> Pair<S> {
        // The wall clock starts at a fixed moment, so `Date` headers are
        // the same in every run: 2026-12-01T00:00:00Z.
        let now =
            Now { mono: std::time::Instant::now(), wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_083_200) };
        Pair {
            conn: Conn::new(session, Arc::new(config), now),
            now,
            to_server: Vec::new(),
            client_closed: false,
            eof_read: false,
            received: Vec::new(),
            window: usize::MAX,
            unread: 0,
            read_chunk: usize::MAX,
            hold_jobs: false,
            held: Vec::new(),
            closed: None,
            events: Vec::new(),
            max_queued: 1 << 20,
            max_buffers: usize::MAX,
            driver_buffer: None,
            buffered: 0,
        }
    }

    /// The server reads at most `n` bytes at a time (requests split at
    /// every boundary).
    pub fn read_chunk(mut self, n: usize) -> Self {
        self.read_chunk = n.max(1);
        self
    }

    /// The client's receive window: at most `n` bytes in flight until it
    /// reads ([`Pair::client_read`]).
    pub fn window(mut self, n: usize) -> Self {
        self.window = n;
        self
    }

    /// Jobs wait until [`Pair::finish_jobs`] instead of running at once.
    pub fn hold_jobs(mut self) -> Self {
        self.hold_jobs = true;
        self
    }

    /// Fails the test if the session ever queues more than `n` plain bytes.
    pub fn max_queued(mut self, n: usize) -> Self {
        self.max_queued = n;
        self
    }

    /// Fails the test if the connection's own buffers
    /// ([`Conn::buffer_bytes`]) ever hold more than `n` bytes.
    pub fn max_buffers(mut self, n: usize) -> Self {
        self.max_buffers = n;
        self
    }

    /// Sends go through a driver-side output buffer (as in the event
    /// loops): everything is taken at once and reported queued, flushed
    /// when the client reads; fails the test if that buffer ever holds
    /// more than `max` bytes.
    pub fn buffering_driver(mut self, max: usize) -> Self {
        self.driver_buffer = Some(max);
        self
    }

    /// The client sends `bytes`; the server runs until it waits.
    pub fn send(&mut self, bytes: &[u8]) -> &mut Self {
        assert!(!self.client_closed, "the client already closed");
        self.to_server.extend_from_slice(bytes);
        self.drive()
    }

    /// The client half-closes; the server runs until it waits.
    pub fn client_close(&mut self) -> &mut Self {
        self.client_closed = true;
        self.drive()
    }

    /// The client reads everything that arrived (its window opens).
    pub fn client_read(&mut self) -> &mut Self {
        self.unread = 0;
        self.conn.handle_write_progress(self.now);
        if self.buffered > 0 {
            self.buffered = 0;
            self.conn.handle_flushed(self.now);
        }
        self.drive()
    }

    /// The server starts draining.
    pub fn server_shutdown(&mut self) -> &mut Self {
        self.conn.handle_shutdown();
        self.drive()
    }

    /// Time passes; a due timeout fires.
    pub fn advance(&mut self, by: Duration) -> &mut Self {
        self.now = Now { mono: self.now.mono + by, wall: self.now.wall + by };
        self.conn.handle_timeout(self.now);
        self.drive()
    }

    /// Time jumps to the connection's next deadline (nothing if it has
    /// none); returns how far it jumped.
    pub fn advance_to_deadline(&mut self) -> Option<Duration> {
        let deadline = self.conn.next_deadline()?;
        let by = deadline.saturating_duration_since(self.now.mono);
        self.advance(by);
        Some(by)
    }

    /// Runs the held jobs, in order, and the server after them.
    pub fn finish_jobs(&mut self) -> &mut Self {
        for job in std::mem::take(&mut self.held) {
            self.conn.handle_job_done(self.now, job());
        }
        self.drive()
    }

    /// Everything the client received so far.
    pub fn received(&self) -> &[u8] {
        &self.received
    }

    /// Takes what the client received so far.
    pub fn take_received(&mut self) -> Vec<u8> {
        self.unread = 0;
        std::mem::take(&mut self.received)
    }

    /// Why the connection closed, once it has.
    pub fn closed(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// True once the server half-closed its side.
    pub fn server_fin(&self) -> bool {
        self.events.contains(&PairEvent::Shutdown)
    }

    /// What the driver did, in order.
    pub fn events(&self) -> &[PairEvent] {
        &self.events
    }

    /// The connection under test.
    pub fn conn(&self) -> &Conn<S> {
        &self.conn
    }

    /// The fake clock's reading.
    pub fn now(&self) -> Now {
        self.now
    }

    /// Performs the core's actions until it waits.
    pub fn drive(&mut self) -> &mut Self {
        let now = self.now;
        loop {
            assert!(
                self.conn.queued_bytes() <= self.max_queued,
                "the session queued {} bytes (at most {} promised)",
                self.conn.queued_bytes(),
                self.max_queued
            );
            assert!(
                self.conn.buffer_bytes() <= self.max_buffers,
                "the connection's buffers hold {} bytes (at most {} promised)",
                self.conn.buffer_bytes(),
                self.max_buffers
            );
            let room = self.window.saturating_sub(self.unread);
            let Some(action) = self.conn.poll_action(now) else {
                if !self.feed() {
                    break;
                }
                continue;
            };
            match action {
                Action::Send(bytes) if self.driver_buffer.is_some() => {
                    let n = bytes.len();
                    self.received.extend_from_slice(bytes);
                    self.buffered += n;
                    self.unread += n;
                    let max = self.driver_buffer.unwrap_or(usize::MAX);
                    assert!(self.buffered <= max, "the driver buffers {} bytes (at most {max})", self.buffered);
                    self.events.push(PairEvent::Send(n));
                    self.conn.handle_queued(now, n as u64);
                }
                Action::Send(bytes) => {
                    let n = bytes.len().min(room);
                    if n == 0 {
                        // Blocked on the peer's window: an event loop keeps
                        // reading meanwhile, up to the core's cap.
                        if self.feed() {
                            continue;
                        }
                        break;
                    }
                    self.received.extend_from_slice(&bytes[..n]);
                    self.unread += n;
                    self.events.push(PairEvent::Send(n));
                    self.conn.handle_sent(now, n as u64);
                }
                Action::SendFile(FileSlice { file, offset, len }) => {
                    let n = len.min(room as u64);
                    if n == 0 {
                        if self.feed() {
                            continue;
                        }
                        break;
                    }
                    let bytes = read_range(file, offset, n);
                    self.unread += bytes.len();
                    self.received.extend_from_slice(&bytes);
                    self.events.push(PairEvent::SendFile(n));
                    if (bytes.len() as u64) < n {
                        let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shrank");
                        self.conn.handle_send_error(e);
                    } else {
                        self.conn.handle_sent(now, n);
                    }
                }
                Action::WriteFile { file, offset, data } => {
                    let n = data.len();
                    match file.write_all_at(data, offset) {
                        Ok(()) => {
                            self.events.push(PairEvent::WriteFile(n));
                            self.conn.handle_written(now, n);
                        }
                        Err(e) => self.conn.handle_upload_error(now, e),
                    }
                }
                Action::Splice { .. } => panic!("a Pair's connection never asks to splice"),
                Action::RunJob(job) => {
                    self.events.push(PairEvent::Job);
                    if self.hold_jobs {
                        self.held.push(job);
                    } else {
                        self.conn.handle_job_done(now, job());
                    }
                }
                Action::Shutdown => self.events.push(PairEvent::Shutdown),
                Action::Close(reason) => {
                    assert!(self.closed.is_none(), "Close returned twice");
                    self.events.push(PairEvent::Close);
                    self.closed = Some(reason);
                    break;
                }
            }
        }
        self
    }

    /// Hands the server what the client sent, or its end of stream, if
    /// the server reads; false if there is nothing to hand over.
    fn feed(&mut self) -> bool {
        let limit = self.conn.read_limit();
        if limit == 0 || self.closed.is_some() {
            return false;
        }
        if !self.to_server.is_empty() {
            let n = self.to_server.len().min(limit).min(self.read_chunk);
            let chunk: Vec<u8> = self.to_server.drain(..n).collect();
            self.conn.handle_input(self.now, &chunk);
            return true;
        }
        if self.client_closed && !self.eof_read {
            self.eof_read = true;
            self.conn.handle_eof(self.now);
            return true;
        }
        false
    }
}

/// Reads `len` bytes of `file` from `offset` (fewer if it ends first).
fn read_range(file: &File, offset: u64, len: u64) -> Vec<u8> {
    let mut buf = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf.truncate(got);
    buf
}
