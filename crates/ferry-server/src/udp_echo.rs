//! The datagram echo service (`ferry serve --udp-echo`): every datagram,
//! UDP or Unix, goes back whole to its sender.
//!
//! A datagram service has no connections, so the concurrency models, which
//! are about connections, have nothing to spread: one event loop serves it
//! under every model. Under the reactor models that is the main loop
//! (`UdpEcho::register`). Beside the blocking models it is a loop of its
//! own (`UdpEcho::start_beside`): a thread where the model does not fork
//! (iterative, thread, threadpool), and a child process where it does (fork,
//! prefork). Those parents must stay single-threaded, because a child forked
//! from a process with another thread inherits every lock that thread held
//! at that instant (the allocator's, the logger's) with nobody left to
//! release it; `fork_process` refuses to fork a threaded process for that
//! reason. The child is forked before any connection child, closes the
//! parent's listeners and signalfd, and lives in its own process group,
//! like prefork's workers.
//!
//! Stopping: the service watches the server's [`Shutdown`] eventfd (and,
//! in a child process, SIGINT/SIGTERM and its parent's death), and the
//! reactor models deregister it when they stop accepting. Nothing is in
//! flight, so it just stops: the socket closes and a Unix socket file is
//! removed.

use std::io;
use std::thread::JoinHandle;
use std::time::Duration;

/// Where the service listens: `IP:PORT` or `unix-dgram:/path`.
pub use ferry_reactor::DatagramAddr;
use ferry_reactor::sys::signals::SignalFd;
use ferry_reactor::{DatagramCallbacks, DatagramOptions, DatagramSocket, EventLoop, PollerKind, Token};
use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};

use crate::children::{fork_process, run_child};
use crate::reactor::shutdown_watch::ShutdownWatch;
use crate::{ServerError, Shutdown};

/// Permissions of a `unix-dgram:` socket file: its owner and group may
/// send to it.
pub const UNIX_MODE: u32 = 0o660;

/// Longest datagram echoed: any UDP datagram fits (65,507 bytes over IPv4).
/// A longer one (possible on a Unix socket) arrives cut and is not echoed.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// How long stopping waits for the service's child process before
/// killing it.
const CHILD_EXIT_WAIT: Duration = Duration::from_secs(5);

/// A bound datagram echo socket, not serving yet.
#[derive(Debug)]
pub struct UdpEcho {
    socket: DatagramSocket,
}

impl UdpEcho {
    /// Binds `addr` (UDP or `unix-dgram:/path`; a stale socket file is
    /// replaced, a live one refused) with 4 MiB socket buffers where the
    /// system allows (bursts from many peers), batches of 32.
    pub fn bind(addr: &DatagramAddr) -> Result<UdpEcho, ServerError> {
        let options = DatagramOptions {
            batch: 32,
            max_datagram: MAX_DATAGRAM,
            recv_buffer: Some(4 << 20),
            send_buffer: Some(4 << 20),
            unix_mode: Some(UNIX_MODE),
        };
        let socket = DatagramSocket::bind(addr, options).map_err(ServerError::setup("bind the udp-echo socket"))?;
        Ok(UdpEcho { socket })
    }

    /// The bound address (the real port if port 0 was asked for).
    pub fn local_addr(&self) -> &DatagramAddr {
        self.socket.local_addr()
    }

    /// Serves on `lp`; deregistering the token stops it.
    pub(crate) fn register(self, lp: &mut EventLoop) -> io::Result<Token> {
        tracing::info!("udp-echo: {} served by the main event loop", self.local_addr());
        self.socket.register(lp, callbacks())
    }

    /// Serves beside a blocking model until `shutdown` is signalled: on a
    /// thread, or (`forks`) in a child process, which first runs `forget`
    /// to close what it inherited of the parent's. Call before the model
    /// starts anything.
    pub(crate) fn start_beside(
        mut self,
        forks: bool,
        shutdown: &Shutdown,
        forget: impl FnOnce(),
    ) -> Result<Beside, ServerError> {
        let local = self.local_addr().clone();
        let shutdown = shutdown.clone();
        if !forks {
            tracing::info!("udp-echo: {local} served by an event loop thread of its own");
            let thread = std::thread::Builder::new()
                .name("ferry-udp-echo".into())
                .spawn(move || {
                    if let Err(e) = serve(self, shutdown, None) {
                        tracing::error!("udp-echo on {local} failed: {e}");
                    }
                })
                .map_err(ServerError::setup("spawn the udp-echo thread"))?;
            return Ok(Beside::Thread(thread));
        }
        let parent = rustix::process::getpid();
        match fork_process()? {
            ForkResult::Child => {
                forget();
                self.socket.take_over_file();
                run_child(|| serve_in_child(self, shutdown, parent))
            }
            ForkResult::Parent { child } => {
                // The child serves (and removes the socket file when done).
                drop(self.socket.into_fd());
                tracing::info!("udp-echo: {local} served by child process {child}");
                Ok(Beside::Process(child))
            }
        }
    }
}

/// The echo: each datagram back to its sender, unless it was cut or its
/// sender cannot be answered.
fn callbacks() -> DatagramCallbacks {
    DatagramCallbacks::new()
        .on_message(|ep, d| {
            if d.is_truncated() {
                tracing::warn!(
                    "udp-echo: a datagram of {} bytes from {} is longer than {MAX_DATAGRAM}: truncated, not echoed",
                    d.len(),
                    d.peer()
                );
            } else if d.peer().is_unnamed() {
                tracing::debug!("udp-echo: a datagram from a Unix socket bound to no name cannot be answered");
            } else {
                ep.send_to(d.data(), d.peer());
            }
        })
        .on_error(|_, e| tracing::debug!("udp-echo: {e}"))
}

/// The service's own loop: echo until `shutdown` (or, in a child process,
/// `signals`) says stop.
fn serve(echo: UdpEcho, shutdown: Shutdown, signals: Option<SignalFd>) -> io::Result<()> {
    let mut lp = EventLoop::new(PollerKind::Epoll)?;
    echo.register(&mut lp)?;
    ShutdownWatch::new(shutdown, |lp: &mut EventLoop| lp.quit()).register(&mut lp)?;
    if let Some(signals) = signals {
        lp.watch_signals(signals, |lp, _| lp.quit())?;
    }
    lp.run()
    // Dropping the loop drops the socket: it closes, its file is removed.
}

/// The child process of the fork models: its own process group (a Ctrl-C
/// on the terminal reaches the parent, which stops everything in order),
/// SIGTERM when the parent dies, then [`serve`]. Returns the exit status.
fn serve_in_child(echo: UdpEcho, shutdown: Shutdown, parent: rustix::process::Pid) -> i32 {
    let me = std::process::id();
    if let Err(e) = rustix::process::setpgid(None, None) {
        tracing::warn!("udp-echo {me}: cannot move to its own process group: {e}");
    }
    // Blocked again (the parent's mask was undone by `forget`), and read
    // from a signalfd, so SIGTERM ends the loop in order.
    let signals = match SignalFd::block(&[Signal::SIGINT, Signal::SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            tracing::error!("udp-echo {me}: cannot block signals: {e}");
            return 1;
        }
    };
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM)) {
        tracing::warn!("udp-echo {me}: cannot ask for SIGTERM when the parent dies: {e}");
    }
    if rustix::process::getppid() != Some(parent) {
        return 1; // The parent died before the line above.
    }
    match serve(echo, shutdown, Some(signals)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("udp-echo {me}: {e}");
            1
        }
    }
}

/// The echo service running beside a blocking model.
#[derive(Debug)]
pub(crate) enum Beside {
    /// On a thread of this process.
    Thread(JoinHandle<()>),
    /// In a child process.
    Process(Pid),
}

impl Beside {
    /// Waits for the service to stop; call after signalling the shutdown.
    /// A child process that has not exited within a few seconds is killed.
    pub(crate) fn finish(self) {
        match self {
            Beside::Thread(thread) => {
                if thread.join().is_err() {
                    tracing::error!("the udp-echo thread panicked");
                }
            }
            Beside::Process(pid) => wait_or_kill(pid),
        }
    }
}

/// Waits (bounded, on a pidfd) for child `pid` to exit, kills it if it has
/// not, and reaps it. The fork models reap every child they see exit, so
/// it may be gone already.
fn wait_or_kill(pid: Pid) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let exited = rustix::process::Pid::from_raw(pid.as_raw())
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
        .is_none_or(|pidfd| {
            let timeout = rustix::event::Timespec::try_from(CHILD_EXIT_WAIT).ok();
            let mut fds = [rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN)];
            loop {
                match rustix::event::poll(&mut fds, timeout.as_ref()) {
                    Ok(n) => break n > 0,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => break false,
                }
            }
        });
    if !exited {
        tracing::warn!("udp-echo process {pid} did not stop within {}s; killing it", CHILD_EXIT_WAIT.as_secs());
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    }
    loop {
        match waitpid(pid, None::<WaitPidFlag>) {
            Ok(WaitStatus::Exited(_, 0)) | Err(nix::errno::Errno::ECHILD) => return,
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                tracing::warn!("udp-echo process ended: {status:?}");
                return;
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                tracing::error!("waitpid on the udp-echo process failed: {e}");
                return;
            }
        }
    }
}
