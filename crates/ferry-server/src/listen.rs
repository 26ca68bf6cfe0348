//! What every blocking model does the same way: bind the listeners, turn
//! signals into a readable descriptor, wait for readiness, and accept
//! without spinning when the process runs out of descriptors.

use std::os::fd::BorrowedFd;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use ferry_reactor::sys::signals::{SignalFd, ignore_sigpipe, ignore_sigxfsz};
use ferry_reactor::{AcceptOutcome, ListenAddr, ReserveFd};
use nix::sys::signal::Signal;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;

use crate::drain::StopSignals;
use crate::net::{Peer, Stream};
use crate::report::BoundListener;
use crate::service::FirstRequest;
use crate::{ListenerConfig, PumpConfig, ServerError, Service, Shutdown};
use ferry_proto::conn::ConnConfig;

/// How long accepting pauses when the process is out of descriptors even
/// with the reserve, or out of memory; otherwise the still-readable
/// listener would spin the loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The descriptor every blocking accept loop of this process sheds
/// connections with when descriptors run out (the limit is per process, so
/// one reserve serves all; its lock is taken only then). Opened by the
/// first `accept_one`, i.e. before the process can have run out.
static RESERVE: LazyLock<ReserveFd> = LazyLock::new(ReserveFd::new);

/// A bound, non-blocking listening socket (TCP or Unix) and what it
/// serves.
pub(crate) struct Listener {
    pub(crate) socket: ferry_reactor::Listener,
    pub(crate) addr: ListenAddr,
    pub(crate) service: Arc<Service>,
    /// Timeouts of the connections accepted here.
    pub(crate) pump: PumpConfig,
    /// How its connections are run (timeouts, TLS), from
    /// [`ListenerConfig::conn_config`], with splice: the blocking pump and
    /// the gate run them.
    pub(crate) conn: Arc<ConnConfig>,
}

impl Listener {
    /// How many bytes the gate peeks at to judge a first request: under
    /// TLS one (a ClientHello cannot be judged without decrypting, so the
    /// connection goes on at its first byte and the core's request timeout
    /// covers the handshake); otherwise the service's limit.
    pub(crate) fn first_request_limit(&self) -> usize {
        if self.conn.tls.is_some() { 1 } else { self.service.first_request_limit() }
    }

    /// How far the first request has arrived in `peeked` (see
    /// [`Listener::first_request_limit`] for TLS).
    pub(crate) fn first_request(&self, peeked: &[u8]) -> FirstRequest {
        match self.conn.tls {
            Some(_) if peeked.is_empty() => FirstRequest::NotBegun,
            Some(_) => FirstRequest::Complete,
            None => self.service.first_request(peeked),
        }
    }
}

/// Binds every configured listener, non-blocking, in order.
pub(crate) fn bind_listeners(configs: &[ListenerConfig]) -> Result<Vec<Listener>, ServerError> {
    let mut listeners = Vec::with_capacity(configs.len());
    for lc in configs {
        let socket = ferry_reactor::Listener::bind(&lc.addr, &lc.listen_options())
            .map_err(|error| ServerError::Listen { addr: lc.addr.clone(), error })?;
        let addr = socket.local_addr().clone();
        let conn = Arc::new(lc.conn_config(true));
        crate::upgrade::offer(lc.service.name(), &socket);
        listeners.push(Listener { socket, addr, service: Arc::new(lc.service.clone()), pump: lc.pump, conn });
    }
    Ok(listeners)
}

/// The bound addresses, for the "listening on" lines.
pub(crate) fn bound(listeners: &[Listener]) -> Vec<BoundListener> {
    listeners.iter().map(|l| BoundListener { service: l.service.name(), addr: l.addr.clone() }).collect()
}

/// A connection just accepted. Its timeouts count from `at`, however long
/// it then waits (for its first request, in a queue, for a worker).
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) stream: Stream,
    pub(crate) peer: Peer,
    pub(crate) at: Instant,
}

/// Accepts one pending connection from a non-blocking listener. `None`
/// when nothing is pending, when out of descriptors the pending connection
/// was shed (accepted with the process's reserve descriptor and closed, so
/// the client is not left hanging; call again), or accepting failed
/// (logged; if even the reserve did not help, it first pauses briefly).
/// The stream is non-blocking.
pub(crate) fn accept_one(listener: &Listener) -> Option<Accepted> {
    match RESERVE.accept(&listener.socket) {
        Ok(AcceptOutcome::Accepted((fd, peer))) => Some(Accepted { stream: fd.into(), peer, at: Instant::now() }),
        Ok(AcceptOutcome::Shed | AcceptOutcome::WouldBlock) => None,
        Err(e) => {
            let errno = e.raw_os_error().map(Errno::from_raw_os_error);
            tracing::warn!("cannot accept on {}: {e}", listener.addr);
            if matches!(errno, Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)) {
                std::thread::sleep(ACCEPT_BACKOFF);
            }
            None
        }
    }
}

/// Polls `fds` for readability for at most `timeout` (`None`, or one too
/// large to represent: no limit) and says which are ready. A signal interrupting the wait reads as "none".
pub(crate) fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> Result<Vec<bool>, ServerError> {
    let mut polled: Vec<PollFd<'_>> = fds.iter().map(|fd| PollFd::new(fd, PollFlags::IN)).collect();
    // Round up so a wait for 0.5 ms does not become a busy loop; a timeout
    // too large to represent waits for good.
    let timespec =
        timeout.and_then(|t| t.checked_add(Duration::from_micros(999))).and_then(|t| Timespec::try_from(t).ok());
    match poll(&mut polled, timespec.as_ref()) {
        Ok(_) => Ok(polled.iter().map(|fd| !fd.revents().is_empty()).collect()),
        Err(Errno::INTR) => Ok(vec![false; fds.len()]),
        Err(e) => Err(ServerError::Setup { what: "poll the listeners", error: e.into() }),
    }
}

/// The signal set-up every model does before it spawns anything: SIGPIPE
/// ignored (a vanished peer is an `EPIPE`, not death), SIGXFSZ ignored (an
/// upload past `RLIMIT_FSIZE` is an `EFBIG`, not death), and SIGINT/SIGTERM
/// and SIGHUP (if `handle_signals`; SIGHUP reloads, see [`crate::reload`])
/// plus SIGCHLD (if `reap_children`) blocked in this
/// thread, and so in every thread it spawns later, and delivered through
/// the returned signalfd instead.
pub(crate) fn server_signals(handle_signals: bool, reap_children: bool) -> Result<Option<SignalFd>, ServerError> {
    ignore_sigpipe().map_err(ServerError::setup("ignore SIGPIPE"))?;
    ignore_sigxfsz().map_err(ServerError::setup("ignore SIGXFSZ"))?;
    let mut wanted = Vec::new();
    if handle_signals {
        wanted.extend([Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGUSR2]);
    }
    if reap_children {
        wanted.push(Signal::SIGCHLD);
    }
    if wanted.is_empty() {
        return Ok(None);
    }
    SignalFd::block(&wanted).map(Some).map_err(ServerError::setup("block signals into a signalfd"))
}

/// What every blocking model starts from: its listeners, its shutdown
/// flag, and the signals it handles as a descriptor.
pub(crate) struct Base {
    pub(crate) listeners: Vec<Listener>,
    pub(crate) shutdown: Shutdown,
    /// SIGINT/SIGTERM (when handled) and SIGCHLD (for the process models).
    pub(crate) signals: Option<SignalFd>,
}

impl Base {
    /// Ignores SIGPIPE, blocks the signals the model handles into a
    /// signalfd, and binds the listeners. Spawns no thread and forks
    /// nothing, so a daemon may still detach afterwards.
    pub(crate) fn bind(
        configs: &[ListenerConfig],
        handle_signals: bool,
        reap_children: bool,
    ) -> Result<Base, ServerError> {
        let signals = server_signals(handle_signals, reap_children)?;
        let listeners = bind_listeners(configs)?;
        let shutdown = Shutdown::new().map_err(ServerError::setup("create the shutdown eventfd"))?;
        Ok(Base { listeners, shutdown, signals })
    }

    /// Reads every pending signal: returns the first SIGINT/SIGTERM (a
    /// SIGCHLD among them only woke the caller, which reaps anyway).
    pub(crate) fn read_stop(&mut self) -> Result<Option<Signal>, ServerError> {
        match self.signals.as_mut() {
            Some(signals) => signals.read_stop().map_err(ServerError::setup("read the signalfd")),
            None => Ok(None),
        }
    }

    /// The signalfd as the drain watches it for a second stop signal.
    pub(crate) fn stop_signals(&mut self) -> Option<&mut dyn StopSignals> {
        self.signals.as_mut().map(|s| s as &mut dyn StopSignals)
    }

    /// In a forked child: closes the listeners and the signalfd and
    /// unblocks the signals again, so the child gets default behaviour
    /// (SIGTERM ends it; SIGHUP stays blocked, see [`crate::reload`]) and holds no descriptor the parent relies on.
    pub(crate) fn forget_in_child(&mut self) {
        self.listeners.clear();
        crate::upgrade::forget_listeners();
        if let Some(signals) = self.signals.take()
            && let Err(e) = signals.unblock_in_this_thread()
        {
            tracing::warn!("child {}: cannot unblock signals: {e}", std::process::id());
        }
        crate::reload::block_in_child();
    }
}

impl Base {
    /// The first step of every model's orderly exit once it stopped
    /// accepting: log why ([`log_stopped`]), close the listeners (new
    /// clients are refused by the kernel from now on), run `before_flag`
    /// (close a queue, tell workers to exit), and raise the shutdown flag
    /// that in-flight connections watch. Returns the signal that stopped
    /// it, if any.
    pub(crate) fn begin_shutdown(
        &mut self,
        stopped: &Result<Option<Signal>, ServerError>,
        before_flag: impl FnOnce(),
    ) -> Option<Signal> {
        let signal = log_stopped(stopped);
        self.listeners.clear();
        before_flag();
        self.shutdown.signal();
        signal
    }
}

/// The listeners as another thread holds them: the iterative model's
/// serving thread accepts from them and is inside a connection when the
/// drain begins, so the watcher thread that runs the drain stops them
/// through this share.
pub(crate) struct ListenStop(pub(crate) Arc<Vec<Listener>>);

impl ListenStop {
    /// Stops listening at once, as closing the listeners does in the other
    /// models when their drain begins: `shutdown(SHUT_RD)` on a listening
    /// socket makes the kernel refuse new connections and reset the ones
    /// in its backlog, so a client connecting during the drain is refused
    /// instead of waiting unanswered until the drain ends.
    pub(crate) fn now(self) {
        if crate::upgrade::handed_over() {
            // The new binary accepts from these very sockets.
            return;
        }
        for listener in self.0.iter() {
            if let Err(e) = rustix::net::shutdown(&listener.socket, rustix::net::Shutdown::Read) {
                tracing::warn!("cannot stop listening on {}: {e}", listener.addr);
            }
        }
    }
}

/// Logs once why a model stops serving (a signal, a request, or its loop
/// failing); returns the signal, if one stopped it.
pub(crate) fn log_stopped(stopped: &Result<Option<Signal>, ServerError>) -> Option<Signal> {
    match stopped {
        Ok(signal) => {
            log_stop(*signal);
            *signal
        }
        Err(e) => {
            tracing::error!("accept loop failed: {e}; shutting down");
            crate::upgrade::forget_listeners();
            crate::notify::stopping();
            None
        }
    }
}

/// Logs why a model stops, the same way for every model (the reactor
/// models call it directly).
pub(crate) fn log_stop(signal: Option<Signal>) {
    crate::upgrade::forget_listeners();
    crate::notify::stopping();
    crate::observe::draining();
    match signal {
        Some(signal) => tracing::info!("received {signal}; shutting down"),
        None => tracing::info!("shutdown requested; shutting down"),
    }
}
