//! Listening sockets: TCP over IPv4/IPv6 and Unix-domain stream sockets,
//! non-blocking and close-on-exec, plus a blocking `connect` helper for
//! clients and tests.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::str::FromStr;

use crate::keepalive::{TcpKeepalive, set_tcp_keepalive};
use crate::unix_socket::{self, SocketFile, peer_of};
use rustix::net::{self, AddressFamily, SocketAddrAny, SocketFlags, SocketType, sockopt};

/// Where to listen or connect: `host:port` (`127.0.0.1:8080`, `[::1]:8080`),
/// `unix:/path/to.sock`, or a Linux abstract socket name `unix:@name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// TCP over IPv4 or IPv6.
    Tcp(SocketAddr),
    /// A Unix-domain stream socket at a filesystem path.
    Unix(PathBuf),
    /// A Unix-domain stream socket with a Linux abstract name (no file;
    /// the name vanishes with the socket).
    Abstract(String),
}

/// Error for an address that is neither `host:port` nor `unix:/path`.
#[derive(Debug, thiserror::Error)]
#[error("bad address {0:?}: expected IP:PORT, [IPv6]:PORT, unix:/path or unix:@name")]
pub struct ParseListenAddrError(String);

impl FromStr for ListenAddr {
    type Err = ParseListenAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() || path == "@" {
                return Err(ParseListenAddrError(s.to_owned()));
            }
            if let Some(name) = path.strip_prefix('@') {
                return Ok(ListenAddr::Abstract(name.to_owned()));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        s.parse::<SocketAddr>().map(ListenAddr::Tcp).map_err(|_| ParseListenAddrError(s.to_owned()))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            ListenAddr::Abstract(name) => write!(f, "unix:@{name}"),
        }
    }
}

impl ListenAddr {
    /// True for the Unix-domain forms (a path or an abstract name).
    pub fn is_unix(&self) -> bool {
        !matches!(self, ListenAddr::Tcp(_))
    }

    /// The TCP address, if this is one.
    pub fn as_tcp(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(addr) => Some(*addr),
            _ => None,
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(a: SocketAddr) -> Self {
        ListenAddr::Tcp(a)
    }
}

/// The peer of a connection: who logs name, and whom failed logins are
/// counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix-domain peer, known by the credentials it connected with
    /// (`SO_PEERCRED`): its user id and process id.
    Unix {
        /// The peer process's user id.
        uid: u32,
        /// The peer process's id (0 if it is in another pid namespace).
        pid: i32,
    },
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(a) => write!(f, "{a}"),
            PeerAddr::Unix { uid, pid } => write!(f, "unix uid={uid} pid={pid}"),
        }
    }
}

/// Reads back what [`PeerAddr`]'s `Display` wrote (for messages between
/// processes, such as the prefork frames).
impl FromStr for PeerAddr {
    type Err = ParseListenAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseListenAddrError(s.to_owned());
        if let Some(cred) = s.strip_prefix("unix uid=") {
            let (uid, pid) = cred.split_once(" pid=").ok_or_else(bad)?;
            return Ok(PeerAddr::Unix { uid: uid.parse().map_err(|_| bad())?, pid: pid.parse().map_err(|_| bad())? });
        }
        s.parse().map(PeerAddr::Tcp).map_err(|_| bad())
    }
}

/// Socket options for [`Listener::bind`].
#[derive(Clone, Debug)]
pub struct ListenOptions {
    /// `SO_REUSEPORT`: let several listeners (threads, processes) share the
    /// port, the kernel balancing connections between them. Off by default.
    pub reuse_port: bool,
    /// `listen(2)` backlog (the kernel caps it at `net.core.somaxconn`).
    pub backlog: i32,
    /// For `unix:` paths: replace a stale socket file (one nothing listens
    /// on any more: connecting to it is refused). A file a server still
    /// listens on, or one that is no socket, is never replaced: binding
    /// fails with `AddrInUse` saying why.
    pub unlink_existing: bool,
    /// For `unix:` paths: the socket file's mode (`None`: what the umask
    /// leaves of 0777).
    pub unix_mode: Option<u32>,
    /// TCP keep-alive for every connection accepted (set on the listener,
    /// which they inherit). Off by default.
    pub tcp_keepalive: Option<TcpKeepalive>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions { reuse_port: false, backlog: 4096, unlink_existing: true, unix_mode: None, tcp_keepalive: None }
    }
}

/// A bound, listening, non-blocking, close-on-exec stream socket.
/// Owns its fd; `Send`. Accepting is done by the
/// [`Acceptor`](crate::Acceptor) or directly with [`accept`](Self::accept).
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    addr: ListenAddr,
    /// The socket file, removed on drop by the process that made it.
    _file: Option<SocketFile>,
}

impl Listener {
    /// Binds and listens. TCP sockets get `SO_REUSEADDR` (and `SO_REUSEPORT`
    /// if asked); IPv6 sockets are v6-only so `[::]` and `0.0.0.0` can be
    /// bound side by side. Unix sockets: see [`ListenOptions::unlink_existing`]
    /// and [`ListenOptions::unix_mode`]; TCP-only options do not apply.
    ///
    /// An [adopted](crate::inherited::adopt) socket of `addr` (inherited
    /// from a service manager or an upgraded ferry) is returned instead,
    /// as it is.
    pub fn bind(addr: &ListenAddr, opts: &ListenOptions) -> io::Result<Listener> {
        if let Some(adopted) = crate::inherited::take(addr) {
            return Ok(adopted);
        }
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let mut file = None;
        let fd = match addr {
            ListenAddr::Tcp(sa) => {
                let family = if sa.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
                let fd = net::socket_with(family, SocketType::STREAM, flags, None)?;
                sockopt::set_socket_reuseaddr(&fd, true)?;
                if opts.reuse_port {
                    sockopt::set_socket_reuseport(&fd, true)?;
                }
                if sa.is_ipv6() {
                    sockopt::set_ipv6_v6only(&fd, true)?;
                }
                if let Some(keepalive) = &opts.tcp_keepalive {
                    set_tcp_keepalive(&fd, keepalive)?;
                }
                net::bind(&fd, sa)?;
                fd
            }
            ListenAddr::Unix(_) | ListenAddr::Abstract(_) => {
                let fd = unix_socket::socket(flags)?;
                file = unix_socket::bind_stream(&fd, addr, opts.unlink_existing, opts.unix_mode)?;
                fd
            }
        };
        net::listen(&fd, opts.backlog)?;
        let addr = match addr {
            ListenAddr::Tcp(_) => {
                let local = net::getsockname(&fd)?;
                ListenAddr::Tcp(
                    SocketAddr::try_from(local)
                        .map_err(|_| io::Error::other("getsockname returned a non-IP address"))?,
                )
            }
            unix => unix.clone(),
        };
        Ok(Listener { fd, addr, _file: file })
    }

    /// A socket this process inherited, listening at `addr`; it never
    /// removes a socket file.
    pub(crate) fn adopted(fd: OwnedFd, addr: ListenAddr) -> Listener {
        Listener { fd, addr, _file: None }
    }

    /// Another descriptor of the same listening socket (for threads that
    /// accept from it side by side); it never removes the socket file.
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(Listener { fd: self.fd.try_clone()?, addr: self.addr.clone(), _file: None })
    }

    /// The bound address (with the real port if port 0 was asked for).
    pub fn local_addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// Accepts one connection as a non-blocking, close-on-exec socket.
    /// `Ok(None)` means none is pending. Errors (`EMFILE`, ...) are returned
    /// as they are; `EINTR` and `ECONNABORTED` are retried.
    pub fn accept(&self) -> io::Result<Option<(OwnedFd, PeerAddr)>> {
        loop {
            match net::acceptfrom_with(&self.fd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC) {
                Ok((fd, peer)) => {
                    let peer = match peer.map(SocketAddr::try_from) {
                        Some(Ok(tcp)) => {
                            // Latency over batching: replies go out at once.
                            let _ = sockopt::set_tcp_nodelay(&fd, true);
                            PeerAddr::Tcp(tcp)
                        }
                        _ => peer_of(&fd)?,
                    };
                    return Ok(Some((fd, peer)));
                }
                Err(rustix::io::Errno::AGAIN) => return Ok(None),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Connects (blocking) to `addr` and returns the socket switched to
/// non-blocking mode, close-on-exec, with `TCP_NODELAY` for TCP; ready to be
/// adopted by a loop with [`TcpConnection::adopt`](crate::connection::adopt).
pub fn connect(addr: &ListenAddr) -> io::Result<(OwnedFd, PeerAddr)> {
    let fd = match addr {
        ListenAddr::Tcp(sa) => {
            let family = if sa.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
            let fd = net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
            retry_connect(&fd, &SocketAddrAny::from(*sa))?;
            let _ = sockopt::set_tcp_nodelay(&fd, true);
            fd
        }
        unix => {
            let fd = unix_socket::socket(SocketFlags::CLOEXEC)?;
            let sa = unix_socket::sockaddr(unix)?.ok_or_else(|| io::Error::other("not a unix: address"))?;
            retry_connect(&fd, &SocketAddrAny::from(sa))?;
            fd
        }
    };
    set_nonblocking(&fd)?;
    let peer = match addr {
        ListenAddr::Tcp(sa) => PeerAddr::Tcp(*sa),
        _ => peer_of(&fd)?,
    };
    Ok((fd, peer))
}

fn retry_connect(fd: &OwnedFd, addr: &SocketAddrAny) -> io::Result<()> {
    loop {
        match net::connect(fd, addr) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Puts `fd` in non-blocking mode.
pub(crate) fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let fl = fcntl_getfl(&fd)?;
    fcntl_setfl(&fd, fl | OFlags::NONBLOCK)?;
    Ok(())
}
