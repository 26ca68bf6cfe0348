//! Seeing what a server does: the access log and the metrics, fed by the
//! request records of `ferry_proto::observe` and by connection counts.
//!
//! [`install`] (once, before the server forks or spawns anything) maps the
//! counters all processes share ([`shared`]), opens the access log
//! ([`access_log`]) and, with `--metrics`, forks the process that serves
//! them ([`metrics`]). From then on every session a [`crate::Service`]
//! makes reports to a [`ConnObserver`], which counts the connection while
//! it lives and logs and counts each request.

mod access_log;
mod format;
mod metrics;
mod shared;

use std::net::TcpListener;
use std::sync::OnceLock;
use std::sync::atomic::Ordering::Relaxed;

use ferry_proto::observe::{Observer, Record};
use ferry_proto::{Flow, Now, Outbox, Progress, Session};

use self::access_log::AccessLog;
pub use self::format::Format;
use self::shared::{PerService, Shared};
use crate::net::Peer;
use crate::{ServerError, Service};

/// What a server observes, as `ferry serve` asked.
#[derive(Debug, Default)]
pub struct ObserveConfig {
    /// `--access-log`: a file to append to, `-` for standard error.
    pub access_log: Option<String>,
    /// `--access-log-format`.
    pub format: Format,
    /// `--metrics`: the bound listener of the metrics endpoint.
    pub metrics: Option<TcpListener>,
    /// The concurrency model's name, a label of the metrics.
    pub model: String,
    /// The file services' partials, counted as partial uploads.
    pub partials: Vec<std::sync::Arc<ferry_proto::files::partials::Partials>>,
}

struct Installed {
    shared: &'static Shared,
    log: Option<AccessLog>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// The counters shared by this server's processes, once installed.
pub(crate) fn shared_counters() -> Option<&'static Shared> {
    INSTALLED.get().map(|i| i.shared)
}

/// Sets up the access log and the metrics for this process and the ones
/// it will fork (nothing when neither is asked for). Call once, while the process has a single thread (it may
/// fork the metrics process), before the server runs.
pub fn install(config: ObserveConfig) -> Result<(), ServerError> {
    if config.access_log.is_none() && config.metrics.is_none() {
        // Nothing asked: sessions get no observer and pay nothing.
        return Ok(());
    }
    let shared = Shared::map().map_err(ServerError::setup("map the shared counters"))?;
    let log = match &config.access_log {
        Some(path) => Some(AccessLog::open(path, config.format).map_err(ServerError::setup("open the access log"))?),
        None => None,
    };
    if INSTALLED.set(Installed { shared, log }).is_err() {
        return Err(ServerError::Setup { what: "observe", error: std::io::Error::other("installed twice") });
    }
    if let Some(listener) = config.metrics {
        metrics::spawn(listener, shared, &config.model, config.partials)?;
    }
    Ok(())
}

/// Writes what this process's access log holds (at exit).
pub fn flush() {
    if let Some(Installed { shared, log: Some(log) }) = INSTALLED.get() {
        log.flush(shared);
    }
}

/// SIGUSR1: every process reopens its access log.
pub(crate) fn reopen() {
    if let Some(installed) = INSTALLED.get() {
        tracing::info!("received SIGUSR1: reopening the access log");
        access_log::request_reopen(installed.shared);
        flush();
    }
}

/// A new binary took the listeners over (an upgrade): the metrics socket
/// is its to answer on now.
pub(crate) fn handed_over() {
    metrics::stop();
}

/// The server began draining: `/healthz` answers 503 from now on.
pub(crate) fn draining() {
    if let Some(installed) = INSTALLED.get() {
        installed.shared.draining.store(1, Relaxed);
    }
}

/// Worker pool gauges (prefork's parent sets them all): `busy` of
/// `workers` busy, `queued` waiting.
pub(crate) fn pool(busy: usize, workers: usize, queued: usize) {
    if let Some(installed) = INSTALLED.get() {
        installed.shared.workers_busy.store(busy as u64, Relaxed);
        installed.shared.workers.store(workers as u64, Relaxed);
        installed.shared.queued.store(queued as u64, Relaxed);
    }
}

/// A thread pool of `workers` threads started.
pub(crate) fn pool_size(workers: usize) {
    if let Some(installed) = INSTALLED.get() {
        installed.shared.workers.store(workers as u64, Relaxed);
    }
}

/// A thread pool worker starts (`true`) or ends (`false`) serving a
/// connection; `queued` are left waiting.
pub(crate) fn pool_worker(busy: bool, queued: usize) {
    if let Some(installed) = INSTALLED.get() {
        let shared = installed.shared;
        if busy {
            shared.workers_busy.fetch_add(1, Relaxed)
        } else {
            shared.workers_busy.fetch_sub(1, Relaxed)
        };
        shared.queued.store(queued as u64, Relaxed);
    }
}

/// Connections waiting in a thread pool's queue.
pub(crate) fn pool_queued(queued: usize) {
    if let Some(installed) = INSTALLED.get() {
        installed.shared.queued.store(queued as u64, Relaxed);
    }
}

/// One connection's observer: counted open while it lives; each request
/// is logged and counted.
pub(crate) struct ConnObserver {
    counters: &'static PerService,
    installed: &'static Installed,
    service: &'static str,
    remote: String,
    line: String,
}

impl ConnObserver {
    /// An observer for a new connection of `service` from `peer`, if
    /// observing is installed.
    pub(crate) fn new(service: &Service, peer: Option<&Peer>) -> Option<ConnObserver> {
        let installed = INSTALLED.get()?;
        let counters = installed.shared.service(service.name());
        counters.open.fetch_add(1, Relaxed);
        counters.total.fetch_add(1, Relaxed);
        let remote = match peer {
            Some(Peer::Tcp(addr)) => addr.ip().to_string(),
            Some(Peer::Unix { uid, .. }) => format!("unix:uid={uid}"),
            None => "-".to_string(),
        };
        Some(ConnObserver { counters, installed, service: service.name(), remote, line: String::new() })
    }
}

impl Drop for ConnObserver {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Relaxed);
    }
}

impl Observer for ConnObserver {
    fn request_done(&mut self, record: &Record<'_>) {
        self.counters.request(record.status, record.bytes_in, record.bytes_out, record.duration);
        if let Some(log) = &self.installed.log {
            let origin = format::Origin { service: self.service, remote: &self.remote };
            format::line(log.format, &origin, record, &mut self.line);
            log.append(self.line.as_bytes(), self.installed.shared);
        }
    }
}

/// A session that only needs its connection counted (echo: no requests).
pub(crate) struct Counted<S> {
    pub(crate) inner: S,
    pub(crate) _observer: ConnObserver,
}

impl<S: Session> Session for Counted<S> {
    fn on_input(&mut self, input: &[u8], out: &mut Outbox, now: Now) -> Progress {
        self.inner.on_input(input, out, now)
    }

    fn on_drained(&mut self, out: &mut Outbox, now: Now) -> Flow {
        self.inner.on_drained(out, now)
    }

    fn on_upload_done(&mut self, result: std::io::Result<()>, out: &mut Outbox, now: Now) -> Flow {
        self.inner.on_upload_done(result, out, now)
    }

    fn on_eof(&mut self, out: &mut Outbox, now: Now) -> Flow {
        self.inner.on_eof(out, now)
    }

    fn in_request(&self) -> bool {
        self.inner.in_request()
    }

    fn on_idle_timeout(&mut self, out: &mut Outbox, now: Now) -> Flow {
        self.inner.on_idle_timeout(out, now)
    }

    fn on_draining(&mut self) {
        self.inner.on_draining()
    }

    fn on_closed(&mut self, now: Now) {
        self.inner.on_closed(now)
    }
}
