//! Passing file descriptors between processes over a Unix socket
//! (`SCM_RIGHTS`), the way a process pool's parent hands accepted
//! connections to its workers.
//!
//! Messages are fixed-size frames chosen by the caller: on a
//! `SOCK_STREAM` socketpair, a frame read in full with `MSG_WAITALL` is the
//! unit the descriptor travels with (the kernel attaches it to the frame's
//! first byte and never merges it into a read that began earlier).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, recv,
    recvmsg, send, sendmsg,
};

/// What [`recv_fd`] read.
#[derive(Debug)]
pub enum Received {
    /// The peer closed its end before sending another frame.
    Eof,
    /// A whole frame arrived, with the descriptor sent along, if any
    /// (already close-on-exec).
    Frame(Option<OwnedFd>),
}

/// Sends all of `payload` on `socket`, with `fd` (if given) attached to it.
/// Never raises SIGPIPE: a closed peer is `EPIPE`.
pub fn send_fd(socket: impl AsFd, fd: Option<BorrowedFd<'_>>, payload: &[u8]) -> io::Result<()> {
    if payload.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a passed descriptor needs at least one byte"));
    }
    let fds = fd.as_slice();
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("ancillary buffer too small for one descriptor"));
    }
    let sent = loop {
        match sendmsg(socket.as_fd(), &[IoSlice::new(payload)], &mut control, SendFlags::NOSIGNAL) {
            Ok(n) => break n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    // The descriptor went with the first byte; the rest is plain data.
    let mut rest = &payload[sent..];
    while !rest.is_empty() {
        match send(socket.as_fd(), rest, SendFlags::NOSIGNAL) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads one whole frame of `buf.len()` bytes from a blocking `socket`,
/// and the descriptor that came with it, if any. A frame carrying more
/// than one descriptor is an error (the extra ones are closed).
pub fn recv_fd(socket: impl AsFd, buf: &mut [u8]) -> io::Result<Received> {
    if buf.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot receive an empty frame"));
    }
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg(socket.as_fd(), &mut iov, &mut control, RecvFlags::WAITALL | RecvFlags::CMSG_CLOEXEC) {
            Ok(msg) => break msg,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if got.bytes == 0 {
        return Ok(Received::Eof);
    }
    if got.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "descriptors were truncated in transit"));
    }
    if fds.len() > 1 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "more than one descriptor in a frame"));
    }
    // MSG_WAITALL can still return early on a signal; finish the frame.
    let mut filled = got.bytes;
    while filled < buf.len() {
        match recv(socket.as_fd(), &mut buf[filled..], RecvFlags::WAITALL) {
            Ok((0, _)) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed mid-frame")),
            Ok((n, _)) => filled += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Received::Frame(fds.pop()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_passed_descriptor_reaches_the_same_open_file() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let (mut pipe_in, pipe_out) = UnixStream::pair().expect("second pair");
        send_fd(&a, Some(pipe_out.as_fd()), b"conn 127.0.0.1:4242").expect("send");
        drop(pipe_out);
        let mut frame = [0u8; 19];
        let Received::Frame(Some(fd)) = recv_fd(&b, &mut frame).expect("recv") else { panic!("no descriptor") };
        assert_eq!(&frame, b"conn 127.0.0.1:4242");
        let mut passed = UnixStream::from(fd);
        passed.write_all(b"hi").expect("write through the passed fd");
        let mut got = [0u8; 2];
        pipe_in.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"hi");
    }

    #[test]
    fn frames_without_descriptors_and_eof() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        send_fd(&a, None, b"D").expect("send");
        send_fd(&a, None, b"X").expect("send");
        let mut frame = [0u8; 1];
        assert!(matches!(recv_fd(&b, &mut frame).expect("recv"), Received::Frame(None)));
        assert_eq!(&frame, b"D");
        assert!(matches!(recv_fd(&b, &mut frame).expect("recv"), Received::Frame(None)));
        drop(a);
        assert!(matches!(recv_fd(&b, &mut frame).expect("recv"), Received::Eof));
    }
}
