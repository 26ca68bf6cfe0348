//! TCP keep-alive: the kernel's own heartbeat, next to the application's
//! (`ping`). Set on a listening socket, it is inherited by every
//! connection accepted from it, so one call covers every model.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use rustix::net::sockopt;

/// When the kernel probes an idle connection and when it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpKeepalive {
    /// Silence before the first probe (`TCP_KEEPIDLE`).
    pub idle: Duration,
    /// Between unanswered probes (`TCP_KEEPINTVL`).
    pub interval: Duration,
    /// Unanswered probes before the connection is reset (`TCP_KEEPCNT`).
    pub count: u32,
}

impl TcpKeepalive {
    /// Probes after `idle` of silence, then every third of it (at least a
    /// second), three times: a vanished peer is noticed within twice
    /// `idle`.
    pub fn after(idle: Duration) -> TcpKeepalive {
        let idle = idle.max(Duration::from_secs(1));
        TcpKeepalive { idle, interval: (idle / 3).max(Duration::from_secs(1)), count: 3 }
    }
}

/// Turns keep-alive on for `socket` with `settings`.
pub fn set_tcp_keepalive(socket: impl AsFd, settings: &TcpKeepalive) -> io::Result<()> {
    let fd = socket.as_fd();
    sockopt::set_socket_keepalive(fd, true)?;
    sockopt::set_tcp_keepidle(fd, settings.idle)?;
    sockopt::set_tcp_keepintvl(fd, settings.interval)?;
    sockopt::set_tcp_keepcnt(fd, settings.count)?;
    Ok(())
}
