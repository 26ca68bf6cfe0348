//! Making connections: adopting a connected socket, or connecting without
//! blocking.

use std::io;
use std::os::fd::OwnedFd;

use super::ConnHandle;
use super::state::{State, new_state};
use crate::callbacks::Callbacks;
use crate::event_loop::EventLoop;
use crate::listener::{ListenAddr, PeerAddr};
use crate::poller::Interest;
use crate::server::LiveCount;

/// Makes `fd` (a connected, non-blocking stream socket) a connection of
/// `lp`, reporting to `callbacks`; runs `connected` before returning.
pub fn adopt(lp: &mut EventLoop, fd: OwnedFd, peer: PeerAddr, callbacks: Callbacks) -> io::Result<ConnHandle> {
    adopt_counted(lp, fd, peer, callbacks, None)
}

/// Starts a non-blocking connect to `addr` on `lp`. Returns at once with
/// the connection's handle; `connected` runs once it is established, or
/// `connect_failed` if it cannot be. Data sent meanwhile is queued.
/// (Name resolution is not done here: give an IP address or `unix:` path.)
pub fn connect_nonblocking(lp: &mut EventLoop, addr: &ListenAddr, callbacks: Callbacks) -> io::Result<ConnHandle> {
    use rustix::net::{AddressFamily, SocketAddrAny, SocketFlags, SocketType};
    let (family, sa) = match addr {
        ListenAddr::Tcp(a) => {
            let family = if a.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
            (family, SocketAddrAny::from(*a))
        }
        unix => {
            let sa = crate::unix_socket::sockaddr(unix)?.ok_or_else(|| io::Error::other("not a unix: address"))?;
            (AddressFamily::UNIX, SocketAddrAny::from(sa))
        }
    };
    let fd = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC, None)?;
    let in_progress = loop {
        match rustix::net::connect(&fd, &sa) {
            Ok(()) => break false,
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::INPROGRESS | rustix::io::Errno::AGAIN) => break true,
            Err(e) => return Err(e.into()),
        }
    };
    // A Unix peer is known by its credentials once connected; until then
    // (a full backlog) by none.
    let peer = match addr {
        ListenAddr::Tcp(a) => PeerAddr::Tcp(*a),
        _ if in_progress => PeerAddr::Unix { uid: u32::MAX, pid: 0 },
        _ => crate::unix_socket::peer_of(&fd)?,
    };
    if !in_progress {
        if let PeerAddr::Tcp(_) = peer {
            let _ = rustix::net::sockopt::set_tcp_nodelay(&fd, true);
        }
        return adopt(lp, fd, peer, callbacks);
    }
    let mut st = new_state(fd, peer, callbacks, None);
    st.state = State::Connecting { shutdown_requested: false };
    let token = lp.register_owned(Interest::WRITABLE, st)?;
    Ok(ConnHandle { lp: lp.handle(), token })
}

/// [`adopt`] counted in a server's open connections.
pub(crate) fn adopt_counted(
    lp: &mut EventLoop,
    fd: OwnedFd,
    peer: PeerAddr,
    callbacks: Callbacks,
    live: Option<LiveCount>,
) -> io::Result<ConnHandle> {
    let st = new_state(fd, peer, callbacks, live);
    let token = lp.register_owned(Interest::READABLE, st)?;
    lp.with_connection(token, |c| {
        if let Some(cb) = c.st.callbacks.connected.clone() {
            cb(c);
        }
    });
    Ok(ConnHandle { lp: lp.handle(), token })
}
