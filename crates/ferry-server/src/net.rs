//! The one connection type every driver serves, whether it was accepted
//! from a TCP or a Unix-domain listener, and the one peer type logs name.

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use ferry_proto::access::PeerId;
use rustix::net::{AddressFamily, sockopt};

/// Who is at the other end of a connection: a TCP address, or a Unix
/// peer's user and process ids. `Display` is what logs show.
pub use ferry_reactor::PeerAddr as Peer;

/// What failed logins from `peer` are counted against: the IP address of
/// a TCP peer, the user id of a Unix one (see [`PeerId`]).
pub fn login_key(peer: &Peer) -> PeerId {
    match peer {
        Peer::Tcp(addr) => PeerId::Ip(addr.ip()),
        Peer::Unix { uid, .. } => PeerId::Uid(*uid),
    }
}

/// A connected stream socket, TCP or Unix-domain: all the drivers need of
/// one is its descriptor (the syscalls are the same for both).
#[derive(Debug)]
pub struct Stream(OwnedFd);

impl Stream {
    /// Who is at the other end (fails once the peer is gone).
    pub fn peer(&self) -> io::Result<Peer> {
        ferry_reactor::peer_of(&self.0)
    }

    /// Non-blocking mode, and for TCP no Nagle delay (answers are whole
    /// already); a Unix socket has no such option and needs none.
    pub fn configure(&self) -> io::Result<()> {
        rustix::io::ioctl_fionbio(&self.0, true)?;
        if self.is_tcp() {
            sockopt::set_tcp_nodelay(&self.0, true)?;
        }
        Ok(())
    }

    /// True for a TCP socket.
    pub fn is_tcp(&self) -> bool {
        sockopt::socket_domain(&self.0).is_ok_and(|d| d == AddressFamily::INET || d == AddressFamily::INET6)
    }

    /// `shutdown(2)`.
    pub fn shutdown(&self, how: rustix::net::Shutdown) -> io::Result<()> {
        Ok(rustix::net::shutdown(&self.0, how)?)
    }

    /// Another descriptor of the same socket.
    pub fn try_clone(&self) -> io::Result<Stream> {
        self.0.try_clone().map(Stream)
    }
}

impl io::Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::io::read(&self.0, buf)?)
    }
}

impl io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl io::Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(rustix::net::send(&self.0, buf, rustix::net::SendFlags::NOSIGNAL)?)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl From<OwnedFd> for Stream {
    fn from(fd: OwnedFd) -> Stream {
        Stream(fd)
    }
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Stream {
        Stream(s.into())
    }
}

impl From<UnixStream> for Stream {
    fn from(s: UnixStream) -> Stream {
        Stream(s.into())
    }
}

impl From<Stream> for OwnedFd {
    fn from(s: Stream) -> OwnedFd {
        s.0
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
