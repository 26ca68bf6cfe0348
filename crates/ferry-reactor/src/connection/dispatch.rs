//! What happens behind the callbacks: readiness handling, the write path,
//! write-complete delivery, half-close and close. Everything here runs on
//! the connection's loop with the state taken out of the registry.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{SendFlags, Shutdown};

use super::TcpConnection;
use super::state::{Chunk, ConnState, Reading, State, WriteComplete};
use crate::buffer::Buffer;
use crate::event_loop::{EventLoop, Handler, Token};
use crate::listener::PeerAddr;
use crate::poller::{Interest, Ready};
use crate::sys::zero_copy;

/// Most bytes written to one socket per readiness event, so one fast
/// reader cannot monopolise its loop.
const WRITE_BUDGET: usize = 4 * 1024 * 1024;
/// An emptied input buffer larger than this is released rather than kept.
const MAX_IDLE_INPUT: usize = 1024 * 1024;
/// Largest single `sendfile` call.
const SENDFILE_CHUNK: usize = 1024 * 1024;

impl TcpConnection<'_> {
    /// A send from user code completed: write-complete is due once the code
    /// that sent returns (never re-entrantly). Only a flag: `settle`, which
    /// ends every callback entry point, delivers it.
    pub(super) fn queue_write_complete(&mut self) {
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
    pub(super) fn flush(&mut self, from_event: bool) {
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
    pub(super) fn settle(&mut self) {
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
            Interest::NONE.with_readable(self.st.reading == Reading::Active).with_writable(!self.st.output.is_empty())
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
pub(super) fn send_nosignal(fd: &OwnedFd, data: &[u8]) -> io::Result<usize> {
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
