//! The pump's loop: flush the outbox, feed an upload, offer input to the
//! session, wait for more input, in that order of priority.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsFd;

use ferry_proto::{Chunk, Flow, Outbox, Session};
use ferry_reactor::sys::zero_copy::SplicePipe;

use super::input::InputBuffer;
use super::io::{Wait, send_bytes, send_file_range, wait_readable};
use super::{CloseReason, PumpConfig};
use crate::Shutdown;

/// Most upload bytes moved per `splice` pair (`SplicePipe` asks for a
/// 1 MiB pipe; a smaller one just moves less per call).
const SPLICE_CHUNK: usize = 1 << 20;

/// Sets the socket options the pump relies on: non-blocking mode (every
/// wait is a `poll` with the idle or request timeout, see [`super::io`]),
/// and no Nagle delay (answers are whole and coalesced already).
pub(super) fn configure(stream: &TcpStream) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    stream.set_nodelay(true)
}

/// One connection's driver state.
pub(super) struct Pump<'a, S: Session + ?Sized> {
    stream: &'a TcpStream,
    session: &'a mut S,
    config: &'a PumpConfig,
    shutdown: &'a Shutdown,
    out: Outbox,
    input: InputBuffer,
    /// Created on the first upload; dropped after an error, since it may
    /// still hold bytes of the failed upload.
    pipe: Option<SplicePipe>,
    /// Set when the connection is to close once the outbox is flushed.
    closing: Option<CloseReason>,
    peer_eof: bool,
    bytes_in: u64,
    bytes_out: u64,
}

impl<'a, S: Session + ?Sized> Pump<'a, S> {
    pub(super) fn new(
        stream: &'a TcpStream,
        session: &'a mut S,
        config: &'a PumpConfig,
        shutdown: &'a Shutdown,
    ) -> Pump<'a, S> {
        Pump {
            stream,
            session,
            config,
            shutdown,
            out: Outbox::new(),
            input: InputBuffer::new(),
            pipe: None,
            closing: None,
            peer_eof: false,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    pub(super) fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    pub(super) fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    /// True when the peer sent bytes the session never consumed.
    pub(super) fn has_unread_input(&self) -> bool {
        !self.input.is_empty()
    }

    /// Runs the connection to its end.
    pub(super) fn run(&mut self) -> CloseReason {
        self.serve().unwrap_or_else(CloseReason::Error)
    }

    fn serve(&mut self) -> io::Result<CloseReason> {
        // Whether on_input should see the buffered input again: new bytes
        // arrived, or the session made progress and may have stopped early.
        let mut offer_input = false;
        loop {
            if !self.out.is_empty() {
                self.flush()?;
                let flow = self.session.on_drained(&mut self.out);
                if let Some(end) = self.obey(flow) {
                    return Ok(end);
                }
                continue;
            }
            if let Some(reason) = self.closing.take() {
                return Ok(reason);
            }
            if self.out.has_sink() {
                let result = self.receive_upload();
                self.out.take_sink();
                if let Err(e) = &result {
                    tracing::debug!("upload ended early: {e}");
                }
                let flow = self.session.on_upload_done(result, &mut self.out);
                offer_input = true;
                if let Some(end) = self.obey(flow) {
                    return Ok(end);
                }
                continue;
            }
            if offer_input && !self.input.is_empty() {
                let progress = self.session.on_input(self.input.data(), &mut self.out);
                self.input.consume(progress.consumed);
                offer_input = progress.consumed > 0 || !self.out.is_empty() || self.out.has_sink();
                if let Some(end) = self.obey(progress.flow) {
                    return Ok(end);
                }
                continue;
            }
            // Nothing in flight: the session needs more input.
            if self.peer_eof {
                return Ok(CloseReason::PeerClosed);
            }
            if self.shutdown.is_signalled() {
                return Ok(CloseReason::Shutdown);
            }
            if self.input.is_full() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "session left its whole input buffer unconsumed (protocol bug)",
                ));
            }
            let timeout =
                if self.session.in_request() { self.config.request_timeout } else { self.config.idle_timeout };
            match wait_readable(self.stream.as_fd(), Some(self.shutdown), timeout)? {
                Wait::Shutdown => return Ok(CloseReason::Shutdown),
                Wait::TimedOut => {
                    let flow = self.session.on_idle_timeout(&mut self.out);
                    self.closing = Some(CloseReason::IdleTimeout);
                    if flow == Flow::CloseNow {
                        return Ok(CloseReason::IdleTimeout);
                    }
                }
                Wait::Readable => {
                    let n = match self.input.read_from(self.stream) {
                        // A readiness report the socket no longer stands by.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        other => other?,
                    };
                    if n == 0 {
                        self.peer_eof = true;
                        let flow = self.session.on_eof(&mut self.out);
                        if let Some(end) = self.obey(flow) {
                            return Ok(end);
                        }
                        if self.closing.is_some() {
                            self.closing = Some(CloseReason::PeerClosed);
                        }
                    } else {
                        self.bytes_in += n as u64;
                        offer_input = true;
                    }
                }
            }
        }
    }

    /// Applies a session's [`Flow`]: `Some` means close now with that reason.
    fn obey(&mut self, flow: Flow) -> Option<CloseReason> {
        match flow {
            Flow::Continue => None,
            Flow::CloseAfterFlush => {
                self.closing.get_or_insert(CloseReason::SessionClosed);
                None
            }
            Flow::CloseNow => {
                self.out.clear();
                Some(self.closing.take().unwrap_or(CloseReason::SessionClosed))
            }
        }
    }

    /// Sends the whole outbox, front to back: bytes with `send`, file
    /// ranges with `sendfile`.
    fn flush(&mut self) -> io::Result<()> {
        while let Some(chunk) = self.out.front() {
            let sent = match chunk {
                Chunk::Bytes(bytes) => send_bytes(self.stream, bytes, self.config.idle_timeout)?,
                Chunk::File { file, offset, len } => {
                    send_file_range(self.stream, file, offset, len, self.config.idle_timeout)?
                }
                Chunk::Job => {
                    // This thread serves only this connection: it may block.
                    if let Some(job) = self.out.take_job() {
                        self.out.finish_job(job());
                    }
                    continue;
                }
                Chunk::Waiting => return Err(io::Error::other("an output job was taken and never finished")),
            };
            self.out.advance(sent as u64);
            self.bytes_out += sent as u64;
        }
        Ok(())
    }

    /// Moves the upload's payload into its file: first what is buffered
    /// already, then straight from the socket with `splice`.
    fn receive_upload(&mut self) -> io::Result<()> {
        let Some(sink) = self.out.sink_mut() else {
            return Ok(());
        };
        if !self.input.is_empty() {
            let n = sink.write_from(self.input.data())?;
            self.input.consume(n);
        }
        while sink.remaining() > 0 {
            // No shutdown fd here: an upload in progress is finished.
            match wait_readable(self.stream.as_fd(), None, self.config.idle_timeout)? {
                Wait::Readable => {}
                Wait::TimedOut | Wait::Shutdown => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("upload stalled with {} bytes missing", sink.remaining()),
                    ));
                }
            }
            let pipe = match &mut self.pipe {
                Some(pipe) => pipe,
                None => self.pipe.insert(SplicePipe::new()?),
            };
            let want = usize::try_from(sink.remaining()).unwrap_or(SPLICE_CHUNK).min(SPLICE_CHUNK);
            let mut offset = sink.offset();
            let moved = match pipe.socket_to_file(self.stream, sink.file(), &mut offset, want) {
                Ok(n) => n,
                // Nothing was taken from the socket after all: wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    self.pipe = None;
                    return Err(e);
                }
            };
            if moved == 0 {
                self.peer_eof = true;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("peer closed with {} upload bytes missing", sink.remaining()),
                ));
            }
            sink.advance(moved as u64);
            self.bytes_in += moved as u64;
        }
        Ok(())
    }
}
