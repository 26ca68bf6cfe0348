//! ferry-reactor: the event-driven heart of ferry, and the thin syscall
//! wrappers every driver shares.
//!
//! It knows nothing of HTTP or files. [`sys`] holds the safe wrappers over the
//! Linux calls ferry is built on (signals as file descriptors, zero-copy
//! transfers); the reactor proper builds on them:
//!
//! - [`Poller`] with [`EpollPoller`] and [`PollPoller`], picked at run time by
//!   [`PollerKind`] (both level-triggered; see [`poller`] for why);
//! - [`EventLoop`] (one per thread) with its [`LoopHandle`], timers
//!   ([`TimerId`]) and signals ([`EventLoop::watch_signals`]);
//! - [`Buffer`] for socket input and output;
//! - [`Listener`], [`Acceptor`], [`TcpConnection`] / [`ConnHandle`] with
//!   [`Callbacks`], [`TcpServer`] and [`LoopThreadPool`].
//!
//! See `docs/REACTOR.md` for the threading rules and a worked example.

pub mod acceptor;
pub mod buffer;
pub mod callbacks;
pub mod connection;
pub mod event_loop;
pub mod listener;
pub mod loop_pool;
pub mod poller;
pub mod server;
mod signal_watch;
pub mod sys;
pub mod timer;
pub mod waker;

pub use acceptor::Acceptor;
pub use buffer::Buffer;
pub use callbacks::Callbacks;
pub use connection::{ConnHandle, TcpConnection, adopt};
pub use event_loop::{EventLoop, Handler, LoopHandle, Token};
pub use listener::{ListenAddr, ListenOptions, Listener, PeerAddr, connect};
pub use loop_pool::LoopThreadPool;
pub use poller::{EpollPoller, Interest, PollEvent, PollPoller, Poller, PollerKind, Ready};
pub use server::{ServerConfig, TcpServer};
pub use timer::TimerId;
pub use waker::Waker;
