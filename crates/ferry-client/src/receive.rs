//! Moving the payload of a `get` answer from the socket to where it goes:
//! first the bytes that arrived with the head line, then the rest with as
//! little copying as the destination allows (a [`Sink`]).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;

use ferry_reactor::sys::zero_copy::SplicePipe;
use rustix::pipe::{SpliceFlags, splice};
use sha2::{Digest, Sha256};

use crate::checksum::hex;
use crate::connection::Stream;
use crate::{Client, Progress};

/// The most bytes asked of one `splice` or `read` (a pipe's capacity caps
/// a splice anyway).
const CHUNK: usize = 1 << 20;

/// Where payload bytes go.
pub(crate) trait Sink {
    /// Writes bytes that were already read (they came with the head line).
    fn write_buffered(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Moves up to `max` bytes from `socket`; 0 means end of stream.
    fn pull_from(&mut self, socket: &Stream, max: usize) -> Result<usize, SinkError>;
}

/// Which side a sink's failure came from.
pub(crate) enum SinkError {
    /// Writing locally failed.
    Local(io::Error),
    /// Reading the socket failed or stalled.
    Net(io::Error),
    /// A zero-copy call failed and cannot say which side did.
    Either(io::Error),
}

/// Why a payload stopped before its announced end.
pub(crate) enum Failure {
    /// The server closed the connection after `got` bytes.
    Short { got: u64 },
    /// Writing locally failed.
    Local(io::Error),
    /// The socket failed or stalled.
    Net(io::Error),
    /// A zero-copy call failed after `done` bytes.
    Either { done: u64, source: io::Error },
    /// The time allowed ran out after `got` bytes.
    Expired { got: u64 },
}

impl Client {
    /// Moves the `len` payload bytes that follow a `get` head into `sink`.
    pub(crate) fn receive(
        &mut self,
        len: u64,
        sink: &mut dyn Sink,
        progress: &mut dyn Progress,
    ) -> Result<(), Failure> {
        let mut remaining = len;
        let early = self.conn.take_buffered(remaining);
        if !early.is_empty() {
            let n = early.len() as u64;
            sink.write_buffered(early).map_err(Failure::Local)?;
            remaining -= n;
            progress.advance(n);
        }
        if self.conn.is_tls() {
            return self.receive_copied(len, remaining, sink, progress);
        }
        while remaining > 0 {
            let chunk = usize::try_from(remaining).unwrap_or(usize::MAX).min(CHUNK);
            let chunk = self.grant(chunk).map_err(|_| Failure::Expired { got: len - remaining })?;
            match sink.pull_from(self.conn.stream(), chunk) {
                Ok(0) => return Err(Failure::Short { got: len - remaining }),
                Ok(n) => {
                    self.refund(chunk - n);
                    remaining -= n as u64;
                    progress.advance(n as u64);
                }
                Err(SinkError::Local(e)) => return Err(Failure::Local(e)),
                Err(SinkError::Net(e)) => return Err(Failure::Net(e)),
                Err(SinkError::Either(source)) => return Err(Failure::Either { done: len - remaining, source }),
            }
        }
        Ok(())
    }
}

impl Client {
    /// The rest of [`Client::receive`] under TLS: decrypted into one
    /// bounded buffer, then written (no splice through TLS).
    fn receive_copied(
        &mut self,
        len: u64,
        mut remaining: u64,
        sink: &mut dyn Sink,
        progress: &mut dyn Progress,
    ) -> Result<(), Failure> {
        let mut buf = vec![0; CHUNK.min(usize::try_from(remaining).unwrap_or(usize::MAX)).max(1)];
        while remaining > 0 {
            let want = usize::try_from(remaining).unwrap_or(usize::MAX).min(buf.len());
            let want = self.grant(want).map_err(|_| Failure::Expired { got: len - remaining })?;
            let n = match self.conn.read_raw(&mut buf[..want]) {
                Ok(0) => return Err(Failure::Short { got: len - remaining }),
                Ok(n) => {
                    self.refund(want - n);
                    n
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Net(e)),
            };
            sink.write_buffered(&buf[..n]).map_err(Failure::Local)?;
            remaining -= n as u64;
            progress.advance(n as u64);
        }
        Ok(())
    }
}

/// A stall (`SO_RCVTIMEO` ran out) is the network's fault whichever call
/// saw it; anything else from a zero-copy call could be either side.
fn zero_copy_error(e: io::Error) -> SinkError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => SinkError::Net(e),
        _ => SinkError::Either(e),
    }
}

/// Into a regular file at increasing offsets, spliced through a pipe (no
/// copy through user space).
pub(crate) struct FileSink<'a> {
    file: &'a File,
    offset: u64,
    pipe: SplicePipe,
}

impl<'a> FileSink<'a> {
    /// Writes into `file` from `offset` on.
    pub(crate) fn new(file: &'a File, offset: u64) -> io::Result<FileSink<'a>> {
        Ok(FileSink { file, offset, pipe: SplicePipe::new()? })
    }
}

impl Sink for FileSink<'_> {
    fn write_buffered(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, self.offset)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn pull_from(&mut self, socket: &Stream, max: usize) -> Result<usize, SinkError> {
        self.pipe.socket_to_file(socket, self.file, &mut self.offset, max).map_err(zero_copy_error)
    }
}

/// Into a pipe (standard output piped to another program), spliced
/// straight from the socket.
pub(crate) struct PipeSink<'a> {
    out: BorrowedFd<'a>,
}

impl<'a> PipeSink<'a> {
    /// Writes into the pipe `out`.
    pub(crate) fn new(out: BorrowedFd<'a>) -> PipeSink<'a> {
        PipeSink { out }
    }
}

impl Sink for PipeSink<'_> {
    fn write_buffered(&mut self, bytes: &[u8]) -> io::Result<()> {
        write_all_fd(self.out, bytes)
    }

    fn pull_from(&mut self, socket: &Stream, max: usize) -> Result<usize, SinkError> {
        loop {
            match splice(socket.as_fd(), None, self.out, None, max, SpliceFlags::MOVE) {
                Ok(n) => return Ok(n),
                Err(rustix::io::Errno::INTR) => continue,
                // The reader went away: a local failure, not the network's.
                Err(rustix::io::Errno::PIPE) => return Err(SinkError::Local(rustix::io::Errno::PIPE.into())),
                Err(e) => return Err(zero_copy_error(e.into())),
            }
        }
    }
}

/// Through a buffer, into anything `write` accepts (a terminal, a device,
/// a file standard output was redirected to), hashing on the way if asked.
pub(crate) struct CopySink<'a> {
    out: BorrowedFd<'a>,
    buf: Vec<u8>,
    hasher: Option<Sha256>,
}

impl<'a> CopySink<'a> {
    /// Writes into `out`; with `hash`, keeps a SHA-256 of what passed.
    pub(crate) fn new(out: BorrowedFd<'a>, hash: bool) -> CopySink<'a> {
        CopySink { out, buf: vec![0; CHUNK], hasher: hash.then(Sha256::new) }
    }

    /// The SHA-256 of everything written, if hashing was asked for.
    pub(crate) fn sha256(self) -> Option<String> {
        self.hasher.map(hex)
    }
}

impl Sink for CopySink<'_> {
    fn write_buffered(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(hasher) = &mut self.hasher {
            hasher.update(bytes);
        }
        write_all_fd(self.out, bytes)
    }

    fn pull_from(&mut self, socket: &Stream, max: usize) -> Result<usize, SinkError> {
        let max = max.min(self.buf.len());
        let n = loop {
            match (&*socket).read(&mut self.buf[..max]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SinkError::Net(e)),
            }
        };
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&self.buf[..n]);
        }
        write_all_fd(self.out, &self.buf[..n]).map_err(SinkError::Local)?;
        Ok(n)
    }
}

/// `write` until all of `bytes` is out.
fn write_all_fd(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
