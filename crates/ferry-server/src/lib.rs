//! ferry-server: the drivers that run `ferry-proto` sessions over real
//! sockets, one module per concurrency model.
//!
//! - [`blocking`]: serves one connection on the calling thread with blocking
//!   syscalls; every thread- or process-per-connection model reuses it.
//! - [`threadpool`]: an accept loop, a bounded [`task_queue`] and N workers.
//!   It and prefork hand a connection to a worker only once its first
//!   request is complete (`gate`), so slow senders cannot starve them.
//! - [`reactor`]: reactor and multi-reactor, sessions on event loops.
//! - [`uring`]: a proactor on io_uring, one ring per thread.
//! - [`BlockingServer`]: the classic models, one module each: iterative
//!   (one connection at a time), fork (a process per connection), thread
//!   (a thread per connection), prefork (a process pool fed descriptors
//!   over socketpairs with SCM_RIGHTS).
//! - [`daemon`]: detaching from the terminal, pid files.
//! - [`Service`]: what a listener serves (files, echo).
//! - [`Shutdown`]: the orderly-shutdown flag all threads watch; the drain
//!   that follows it is written once (`drain`, over `in_flight` for the
//!   thread models and over child processes for the process models).
//! - [`Report`]: what every model's `run` returns.
//! - [`udp_echo`]: the datagram echo service, served next to the TCP
//!   services under every model.
//! - [`notify`]: readiness and state for systemd (`sd_notify`).

mod accept;
pub mod blocking;
mod children;
pub mod daemon;
mod drain;
mod error;
mod fork;
mod gate;
mod in_flight;
mod iterative;
mod listen;
pub mod listen_fds;
mod models;
pub mod net;
pub mod notify;
pub mod observe;
mod prefork;
pub mod reactor;
pub mod reload;
mod report;
mod service;
mod shutdown;
pub mod task_queue;
#[cfg(test)]
mod test_server;
mod thread;
pub mod threadpool;
pub mod tls;
pub mod udp_echo;
pub mod upgrade;
pub mod uring;

pub use blocking::{CloseReason, ConnStats, PumpConfig, serve_connection, serve_connection_since};
pub use error::ServerError;
pub use ferry_reactor::ListenAddr;
/// TCP keep-alive settings of a listener ([`ListenerConfig::tcp_keepalive`]).
pub use ferry_reactor::TcpKeepalive;
pub use models::{BlockingConfig, BlockingModel, BlockingServer};
pub use net::{Peer, Stream};
pub use reactor::{ReactorConfig, ReactorServer};
pub use report::{BoundListener, Report};
pub use service::{ListenerConfig, Service};
pub use shutdown::Shutdown;
pub use threadpool::{ThreadPoolConfig, ThreadPoolServer};
pub use tls::{ServerTls, TlsError};
pub use udp_echo::UdpEcho;
pub use uring::{UringConfig, UringServer};
