//! ferry-reactor: the event-driven heart of ferry, and the thin syscall
//! wrappers every driver shares.
//!
//! It knows nothing of HTTP or files. [`sys`] holds the safe wrappers over the
//! Linux calls ferry is built on (signals as file descriptors, zero-copy
//! transfers); the reactor proper builds on them, every item re-exported
//! here at the crate root (the modules themselves are private):
//!
//! - [`Poller`] with [`EpollPoller`] and [`PollPoller`], picked at run time by
//!   [`PollerKind`] (level-triggered only);
//! - [`EventLoop`] (one per thread) with its [`LoopHandle`], timers
//!   ([`TimerId`]) and signals ([`EventLoop::watch_signals`]);
//! - [`Buffer`] for socket input and output;
//! - [`Listener`], [`Acceptor`] (on [`ReserveFd`], which any accept loop
//!   can use to survive `EMFILE`), [`TcpConnection`] / [`ConnHandle`] with
//!   [`Callbacks`], [`TcpServer`] and [`LoopThreadPool`];
//! - [`DatagramSocket`] (UDP v4/v6 and Unix datagram, batched with
//!   `recvmmsg`/`sendmmsg`, optionally connected) served on a loop with
//!   [`DatagramCallbacks`]: a [`DatagramEndpoint`] per callback, a
//!   [`DatagramHandle`] from other threads.
//!
//! See `docs/REACTOR.md` for the threading rules and the lifetime scheme.
//!
//! # Example: a line echo server with 4 sub-loops
//! ```no_run
//! use ferry_reactor::sys::signals::{SignalFd, ignore_sigpipe};
//! use ferry_reactor::{Callbacks, EventLoop, PollerKind, ServerConfig, TcpServer};
//! use nix::sys::signal::Signal;
//!
//! fn main() -> std::io::Result<()> {
//!     // Block before any thread exists, so every thread inherits the mask.
//!     let signals = SignalFd::block(&[Signal::SIGINT, Signal::SIGTERM])?;
//!     ignore_sigpipe()?;
//!     let mut lp = EventLoop::new(PollerKind::Epoll)?;
//!     let config = ServerConfig { threads: 4, ..ServerConfig::default() };
//!     let addr = "127.0.0.1:2007".parse().expect("valid address");
//!     let mut server = TcpServer::bind(&addr, config)?.with_callbacks(
//!         Callbacks::new()
//!             .on_connected(|c| {
//!                 c.send(b"hello\n");
//!             })
//!             .on_message(|c, buf| {
//!                 // Complete lines only; a partial line waits for the rest.
//!                 while let Some(eol) = buf.find_eol() {
//!                     let line = buf.take(eol + 1);
//!                     c.send(&line);
//!                 }
//!             }),
//!     );
//!     server.start(&mut lp)?;
//!     lp.watch_signals(signals, |lp, _sig| lp.quit())?;
//!     lp.run()?; // until SIGINT or SIGTERM
//!     server.stop_accepting(&mut lp);
//!     server.shutdown_connections(&mut lp);
//!     let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
//!     while server.live_connections() > 0 && std::time::Instant::now() < deadline {
//!         lp.run_once(Some(std::time::Duration::from_millis(50)))?;
//!     }
//!     server.close_connections(&mut lp);
//!     server.shutdown();
//!     Ok(())
//! }
//! ```

mod acceptor;
mod buffer;
mod callbacks;
mod connection;
mod datagram;
mod event_loop;
mod idle_yield;
pub mod inherited;
mod keepalive;
mod listener;
mod loop_pool;
mod poller;
mod reserve_fd;
mod server;
mod signal_watch;
mod stateful;
pub mod sys;
mod timer;
mod unix_socket;
mod waker;

pub use acceptor::{AcceptCallback, Acceptor};
pub use buffer::Buffer;
pub use callbacks::Callbacks;
pub use connection::{ConnHandle, TcpConnection, adopt, connect_nonblocking};
pub use datagram::{
    Datagram, DatagramAddr, DatagramCallbacks, DatagramEndpoint, DatagramError, DatagramHandle, DatagramOp,
    DatagramOptions, DatagramPeer, DatagramSocket, DatagramStats, MAX_BATCH, ParseDatagramAddrError,
};
pub use event_loop::{EventLoop, Handler, LoopHandle, Token};
pub use idle_yield::IdleYield;
pub use keepalive::{TcpKeepalive, set_tcp_keepalive};
pub use listener::{ListenAddr, ListenOptions, Listener, ParseListenAddrError, PeerAddr, connect};
pub use loop_pool::LoopThreadPool;
pub use poller::{
    EpollPoller, FD_SETSIZE, Interest, ParsePollerKindError, PollEvent, PollPoller, Poller, PollerKind, Ready,
    SelectPoller, timeout_to_timespec,
};
pub use reserve_fd::{Accept, AcceptOutcome, ReserveFd};
pub use server::{Assignment, ServerConfig, TcpServer};
pub use stateful::StatefulCallbacks;
pub use timer::TimerId;
pub use unix_socket::{inherit_unix_listeners, keep_socket_files, peer_of};
pub use waker::Waker;
