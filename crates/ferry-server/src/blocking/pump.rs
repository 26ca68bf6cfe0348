//! The blocking pump: syscall glue that performs a [`Conn`]'s actions on
//! one socket from one thread. Every rule about when to read, send, time
//! out or close is the core's; this file only moves bytes and waits.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use ferry_proto::conn::{Action, CloseReason, Conn, ConnConfig, MAX_INPUT};
use ferry_proto::{FileSlice, Now, Session};
use ferry_reactor::sys::zero_copy::{self, SplicePipe};
use rustix::net::{RecvFlags, SendFlags, recv, send};

use super::io::{Wait, Want, retry, wait};
use crate::Shutdown;
use crate::net::Stream;

/// Largest count one `sendfile` call may move (the kernel's own limit).
const MAX_SENDFILE: usize = 0x7fff_f000;

/// Most upload bytes moved per `splice` pair (`SplicePipe` asks for a
/// 1 MiB pipe; a smaller one just moves less per call).
const SPLICE_CHUNK: usize = 1 << 20;

/// One connection: its socket, its core and the thread's resources. The
/// socket is non-blocking ([`Stream::configure`]): every wait is a `poll`
/// bounded by the core's deadline.
pub(super) struct Pump<'a, S: Session> {
    stream: &'a Stream,
    conn: Conn<S>,
    shutdown: &'a Shutdown,
    /// Set once the core heard of the shutdown (the eventfd stays readable).
    shutdown_told: bool,
    /// Created on the first upload; dropped after an error, since it may
    /// still hold bytes of the failed upload.
    pipe: Option<SplicePipe>,
    read_buf: Box<[u8]>,
}

impl<'a, S: Session> Pump<'a, S> {
    pub(super) fn new(
        stream: &'a Stream,
        session: S,
        config: Arc<ConnConfig>,
        shutdown: &'a Shutdown,
        opened: Now,
    ) -> Pump<'a, S> {
        Pump {
            stream,
            conn: Conn::new(session, config, opened),
            shutdown,
            shutdown_told: false,
            pipe: None,
            read_buf: vec![0; MAX_INPUT].into_boxed_slice(),
        }
    }

    /// What the connection moved.
    pub(super) fn stats(&self) -> ferry_proto::conn::ConnStats {
        self.conn.stats()
    }

    /// Runs the connection to its end.
    pub(super) fn run(&mut self) -> CloseReason {
        loop {
            if !self.shutdown_told && self.shutdown.is_signalled() {
                self.shutdown_told = true;
                crate::upgrade::shut_down_conn(&mut self.conn);
            }
            if self.shutdown_told && self.conn.wants_read() {
                // Draining, the core closes a connection waiting for its
                // next request at once. This pump reads only between
                // answers, so a request that came while one was sent is
                // still in the socket: hand it over first, or it would be
                // dropped unanswered and the close with unread bytes would
                // reset the connection, destroying the answer's end.
                if let Err(e) = self.receive() {
                    return CloseReason::Error(e);
                }
            }
            let now = Now::read();
            let Some(action) = self.conn.poll_action(now) else {
                if let Err(e) = self.wait_for_peer() {
                    return CloseReason::Error(e);
                }
                continue;
            };
            match action {
                Action::Send(bytes) => {
                    let sent = retry(|| send(self.stream, bytes, SendFlags::NOSIGNAL).map_err(io::Error::from));
                    self.sent(now, sent);
                }
                Action::SendFile(FileSlice { file, offset, len }) => {
                    let want = usize::try_from(len).unwrap_or(MAX_SENDFILE).min(MAX_SENDFILE);
                    let mut cursor = offset;
                    let sent = match retry(|| zero_copy::sendfile(self.stream.as_fd(), file.as_fd(), &mut cursor, want))
                    {
                        Ok(0) if want > 0 => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "file ended at offset {offset} with {len} bytes still announced (it shrank while being sent)"
                            ),
                        )),
                        other => other,
                    };
                    self.sent(now, sent);
                }
                Action::WriteFile { file, offset, data } => {
                    let n = data.len();
                    match file.write_all_at(data, offset) {
                        Ok(()) => self.conn.handle_written(now, n),
                        Err(e) => self.conn.handle_upload_error(now, e),
                    }
                }
                Action::Splice { file, offset, max } => {
                    let want = usize::try_from(max).unwrap_or(SPLICE_CHUNK).min(SPLICE_CHUNK);
                    let mut cursor = offset;
                    let pipe = match &mut self.pipe {
                        Some(pipe) => Ok(pipe),
                        None => SplicePipe::new().map(|p| &mut *self.pipe.insert(p)),
                    };
                    let moved = pipe.and_then(|p| p.socket_to_file(self.stream, file, &mut cursor, want));
                    match moved {
                        Ok(n) => self.conn.handle_spliced(now, n),
                        // Nothing was there after all: wait for the socket.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if let Err(e) = self.wait_ready(Want::Read, None) {
                                return CloseReason::Error(e);
                            }
                        }
                        Err(e) => {
                            self.pipe = None;
                            self.conn.handle_upload_error(now, e);
                        }
                    }
                }
                // This thread serves only this connection: it may block.
                Action::RunJob(job) => self.conn.handle_job_done(now, job()),
                Action::Shutdown => {
                    // Already gone if the peer reset: the close says so.
                    let _ = self.stream.shutdown(rustix::net::Shutdown::Write);
                }
                Action::Close(reason) => return reason,
            }
        }
    }

    /// Reports a send's outcome; a full socket buffer means waiting until
    /// it drains or the core's deadline passes.
    fn sent(&mut self, now: Now, sent: io::Result<usize>) {
        match sent {
            Ok(n) => self.conn.handle_sent(now, n as u64),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(e) = self.wait_ready(Want::Write, None) {
                    self.conn.handle_send_error(e);
                }
            }
            Err(e) => self.conn.handle_send_error(e),
        }
    }

    /// Waits for the socket (and the shutdown flag, if given) until the
    /// core's deadline; tells the core about a timeout or the shutdown.
    fn wait_ready(&mut self, want: Want, shutdown: Option<&Shutdown>) -> io::Result<Wait> {
        let waited = wait(self.stream.as_fd(), want, shutdown, self.conn.next_deadline())?;
        match waited {
            Wait::TimedOut => self.conn.handle_timeout(Now::read()),
            Wait::Shutdown => {
                self.shutdown_told = true;
                crate::upgrade::shut_down_conn(&mut self.conn);
            }
            Wait::Ready => {}
        }
        Ok(waited)
    }

    /// The core waits for the peer: read what comes (or time out).
    fn wait_for_peer(&mut self) -> io::Result<()> {
        let limit = self.conn.read_limit().min(self.read_buf.len());
        if limit == 0 {
            // Only a job or a driver buffer could make the core wait
            // without reading, and this driver has neither.
            return Err(io::Error::other("connection core waits for nothing this driver can give"));
        }
        let shutdown = if self.shutdown_told { None } else { Some(self.shutdown) };
        if self.wait_ready(Want::Read, shutdown)? != Wait::Ready {
            return Ok(());
        }
        self.receive()
    }

    /// Reads what has arrived, without waiting (the socket is
    /// non-blocking), and hands it to the core.
    fn receive(&mut self) -> io::Result<()> {
        let limit = self.conn.read_limit().min(self.read_buf.len());
        if limit == 0 {
            return Ok(());
        }
        let now = Now::read();
        match retry(|| recv(self.stream, &mut self.read_buf[..limit], RecvFlags::empty()).map_err(io::Error::from)) {
            Ok((0, _)) => self.conn.handle_eof(now),
            Ok((n, _)) => self.conn.handle_input(now, &self.read_buf[..n]),
            // Nothing there (or a readiness report the socket no longer
            // stands by).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}
