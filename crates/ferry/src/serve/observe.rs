//! `ferry serve`'s access log and metrics options, and turning them into
//! `ferry_server::observe`'s set-up.

use std::net::TcpListener;

use anyhow::{Context as _, bail};
use ferry_server::listen_fds::PassedListener;
use ferry_server::observe::{Format, ObserveConfig};
use ferry_server::{ListenAddr, ListenerConfig, Service};

use super::addr::{ServiceAddr, parse_service_addr};

/// The name of a passed socket that serves the metrics
/// (`FileDescriptorName=metrics`; an upgrade hands the metrics socket over
/// under it).
pub(super) const METRICS_SOCKET: &str = "metrics";

/// The metrics socket passed in, until [`ObserveArgs::prepare`] takes it.
static PASSED: std::sync::Mutex<Option<TcpListener>> = std::sync::Mutex::new(None);

/// Keeps the passed sockets named [`METRICS_SOCKET`] (at most one, TCP) to
/// serve the metrics on.
pub(super) fn pass_metrics(sockets: Vec<PassedListener>) -> anyhow::Result<()> {
    let mut sockets = sockets.into_iter();
    let Some(socket) = sockets.next() else { return Ok(()) };
    if sockets.next().is_some() {
        bail!("socket activation: more than one socket named {METRICS_SOCKET:?} was passed");
    }
    if socket.listener.local_addr().as_tcp().is_none() {
        bail!("socket activation: the {METRICS_SOCKET:?} socket ({}) is not TCP", socket.listener.local_addr());
    }
    let fd = rustix::io::fcntl_dupfd_cloexec(&socket.listener, 0).context("cannot keep the metrics socket")?;
    *PASSED.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(TcpListener::from(fd));
    Ok(())
}

/// Options of `ferry serve` that say what the server lets you see.
#[derive(Debug, clap::Args)]
pub(crate) struct ObserveArgs {
    /// Log every HTTP request and file-protocol command to FILE (appended;
    /// `-`: standard error), buffered and written at least once a second.
    /// SIGUSR1 reopens it (for logrotate: rename, then signal).
    #[arg(long, value_name = "FILE")]
    access_log: Option<String>,
    /// Access log format: nginx's `combined` (plus the duration in
    /// seconds), or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Combined)]
    access_log_format: LogFormat,
    /// Serve Prometheus metrics at http://ADDR/metrics and a health check
    /// at /healthz (200; 503 once the server drains): `PORT` (on
    /// 127.0.0.1), `IP:PORT` or `HOST:PORT`.
    #[arg(long, value_name = "ADDR", value_parser = parse_service_addr)]
    metrics: Option<ServiceAddr>,
}

/// The access log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// nginx's combined log format, the duration appended.
    Combined,
    /// One JSON object per line.
    Json,
}

/// What [`ObserveArgs`] asks for, with the metrics listener bound (before
/// the "listening on" lines are printed; see [`Observe::install`]).
pub(crate) struct Observe {
    config: ObserveConfig,
    /// The metrics listener's address, for its "listening on" line.
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
}

impl ObserveArgs {
    /// Binds the metrics listener and resolves the log's path (the daemon
    /// changes to `/`).
    pub(crate) fn prepare(&self, model: &str, listeners: &[ListenerConfig]) -> anyhow::Result<Observe> {
        let access_log = match self.access_log.as_deref() {
            Some("-") => Some("-".to_string()),
            Some(path) => Some(
                std::path::absolute(path)
                    .with_context(|| format!("cannot resolve {path}"))?
                    .to_string_lossy()
                    .into_owned(),
            ),
            None => None,
        };
        let passed = PASSED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let metrics = match (&self.metrics, passed) {
            // A socket passed in (socket activation, or the ferry this one
            // upgrades) serves in place of the address.
            (_, Some(passed)) => Some(passed),
            (Some(Some(ListenAddr::Tcp(addr))), None) => {
                Some(TcpListener::bind(addr).with_context(|| format!("cannot listen for metrics on {addr}"))?)
            }
            (Some(Some(_)), None) => bail!("--metrics takes a TCP address"),
            (Some(None) | None, None) => None,
        };
        if let Some(listener) = &metrics {
            ferry_server::upgrade::offer(METRICS_SOCKET, listener);
        }
        let metrics_addr = metrics.as_ref().map(TcpListener::local_addr).transpose()?;
        let partials = listeners
            .iter()
            .filter_map(|l| match &l.service {
                Service::Files(files) => files.partials.clone(),
                _ => None,
            })
            .collect();
        let format = match self.access_log_format {
            LogFormat::Combined => Format::Combined,
            LogFormat::Json => Format::Json,
        };
        let config = ObserveConfig { access_log, format, metrics, model: model.to_string(), partials };
        Ok(Observe { config, metrics_addr })
    }
}

impl Observe {
    /// Opens the log and starts the metrics process: after detaching and
    /// before the server starts a thread or forks.
    pub(crate) fn install(self) -> anyhow::Result<()> {
        ferry_server::observe::install(self.config).context("cannot set up the access log and metrics")
    }
}
