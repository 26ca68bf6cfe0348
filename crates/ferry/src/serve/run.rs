//! `ferry serve`'s second half: turning the parsed options into the chosen
//! model's server, then the same four steps for every model: announce the
//! bound listeners, put the datagram echo beside them, detach if asked,
//! run until the drain ends.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use ferry_server::daemon::{self, PidFile};
use ferry_server::reactor::{Assignment, PollerKind};
use ferry_server::{
    BlockingConfig, BlockingModel, BlockingServer, BoundListener, ListenerConfig, ReactorConfig, ReactorServer, Report,
    ServerError, UdpEcho, UringConfig, UringServer,
};

use super::observe::Observe;
use super::{Assign, Model, Poller, ServeArgs};

/// What the binary does with any model's server.
trait Launch: Sized {
    fn bound(&self) -> Vec<BoundListener>;
    fn beside(self, echo: UdpEcho) -> Self;
    fn serve(self) -> Result<Report, ServerError>;
}

macro_rules! launch_for {
    ($($server:ty),*) => {$(
        impl Launch for $server {
            fn bound(&self) -> Vec<BoundListener> {
                self.listeners()
            }
            fn beside(self, echo: UdpEcho) -> Self {
                self.with_udp_echo(echo)
            }
            fn serve(self) -> Result<Report, ServerError> {
                self.run()
            }
        }
    )*};
}

launch_for!(ReactorServer, UringServer, BlockingServer);

/// Binds the model `args` chose over `listeners` and runs it to the end.
pub(crate) fn run_model(
    args: &ServeArgs,
    listeners: Vec<ListenerConfig>,
    udp_echo: Option<UdpEcho>,
) -> anyhow::Result<()> {
    let model = clap::ValueEnum::to_possible_value(&args.model).map(|v| v.get_name().to_string()).unwrap_or_default();
    let observe = args.observe.prepare(&model, &listeners)?;
    let launched = run_observed(args, listeners, udp_echo, observe);
    ferry_server::observe::flush();
    launched
}

/// [`run_model`] once the metrics listener is bound.
fn run_observed(
    args: &ServeArgs,
    listeners: Vec<ListenerConfig>,
    udp_echo: Option<UdpEcho>,
    observe: Observe,
) -> anyhow::Result<()> {
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    match blocking_model(args) {
        Some(model) => {
            let config = BlockingConfig { listeners, model, drain_timeout, handle_signals: true };
            let report = launch(args, observe, BlockingServer::bind(config)?, udp_echo)?;
            tracing::info!(
                "stopped: {} connection(s) served, {} closed unserved, {} cut before they finished",
                report.served(),
                report.dropped_unserved,
                report.cut
            );
            return Ok(());
        }
        None if args.model == Model::Uring => {
            let mut config = UringConfig::new(listeners);
            if let Some(n) = args.io_threads {
                config.io_threads = (n as usize).max(1);
            }
            config.drain_timeout = drain_timeout;
            log_accepted(&launch(args, observe, UringServer::bind(config)?, udp_echo)?);
        }
        None => log_accepted(&launch(args, observe, ReactorServer::bind(reactor_config(args, listeners))?, udp_echo)?),
    }
    Ok(())
}

/// The classic model `args` chose, if it chose one.
fn blocking_model(args: &ServeArgs) -> Option<BlockingModel> {
    let workers = || args.workers.map_or_else(default_workers, |n| n as usize);
    match args.model {
        Model::Iterative => Some(BlockingModel::Iterative),
        Model::Fork => Some(BlockingModel::Fork { max_conns: args.max_conns as usize }),
        Model::Thread => Some(BlockingModel::Thread { max_conns: args.max_conns as usize }),
        Model::Prefork => Some(BlockingModel::Prefork { workers: workers(), queue_capacity: args.queue as usize }),
        Model::Threadpool => {
            Some(BlockingModel::ThreadPool { workers: workers(), queue_capacity: args.queue as usize })
        }
        Model::Reactor | Model::MultiReactor | Model::Uring => None,
    }
}

/// The last log line of the event-driven models.
fn log_accepted(report: &Report) {
    tracing::info!("stopped: {} connection(s) accepted, {} cut before they finished", report.accepted, report.cut);
}

/// The reactor (`io_threads` 0) or multi-reactor model's settings.
fn reactor_config(args: &ServeArgs, listeners: Vec<ListenerConfig>) -> ReactorConfig {
    let mut config = ReactorConfig::new(listeners);
    config.io_threads = match (args.model, args.io_threads) {
        (Model::Reactor, _) => 0,
        (_, Some(n)) => n as usize,
        (_, None) => config.io_threads,
    };
    config.poller = match args.poller {
        Poller::Epoll => PollerKind::Epoll,
        Poller::Poll => PollerKind::Poll,
        Poller::Select => PollerKind::Select,
    };
    config.assign = match args.assign {
        Assign::RoundRobin => Assignment::RoundRobin,
        Assign::LeastLoaded => Assignment::LeastLoaded,
    };
    config.drain_timeout = Duration::from_secs(args.drain_timeout);
    config
}

/// The four steps every model's server goes through once bound.
fn launch<S: Launch>(
    args: &ServeArgs,
    observe: Observe,
    server: S,
    udp_echo: Option<UdpEcho>,
) -> anyhow::Result<Report> {
    announce_bound(&server.bound(), udp_echo.as_ref(), observe.metrics_addr)?;
    let server = match udp_echo {
        Some(echo) => server.beside(echo),
        None => server,
    };
    let _pid_file = detach_if_asked(args)?;
    observe.install()?;
    // Ready once the pid file names this process (an upgrade's old process
    // waits for this to hand over).
    ferry_server::notify::ready();
    Ok(server.serve()?)
}

/// Workers of prefork and the thread pool when --workers is not given: 2
/// per CPU.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// After the listeners are bound and announced, before any thread starts:
/// detaches (--daemon) and writes the pid file (--pid-file), which is
/// removed when the returned guard drops.
fn detach_if_asked(args: &ServeArgs) -> anyhow::Result<Option<PidFile>> {
    // A new binary started by an upgrade of a daemon is detached already.
    if args.daemon && !ferry_server::upgrade::is_upgrade_child() {
        Ok(daemon::detach(args.pid_file.as_deref(), args.log_file.as_deref())?)
    } else {
        Ok(args.pid_file.as_deref().map(PidFile::create).transpose()?)
    }
}

/// The listening lines of a bound server and its datagram echo, if any.
fn announce_bound(
    listeners: &[BoundListener],
    udp_echo: Option<&UdpEcho>,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let udp_line = udp_echo.map(|e| ("udp-echo", e.local_addr().to_string()));
    let metrics_line = metrics.map(|addr| ("metrics", addr.to_string()));
    // One line per address, though a service may hold several sockets on
    // one address (uring's per-ring sockets, handed over by an upgrade).
    let mut seen = std::collections::HashSet::new();
    let unique = listeners.iter().filter(|l| seen.insert((l.service, &l.addr)));
    announce(unique.map(|l| (l.service, l.addr.to_string())).chain(udp_line).chain(metrics_line))
}

/// Prints one `ferry: SERVICE listening on ADDR` line per listener on
/// stdout (and the TLS fingerprint), flushed: scripts and tests wait for
/// these lines.
fn announce<'a>(listeners: impl Iterator<Item = (&'a str, String)>) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    for (service, addr) in listeners {
        writeln!(stdout, "ferry: {service} listening on {addr}").context("cannot write to stdout")?;
        if let Some(qr) = (service == "http").then(|| crate::serve_http::qr_block(&addr)).flatten() {
            write!(stdout, "{qr}").context("cannot write to stdout")?;
        }
    }
    if let Some(line) = crate::serve_tls::fingerprint_line() {
        writeln!(stdout, "{line}").context("cannot write to stdout")?;
    }
    stdout.flush().context("cannot write to stdout")?;
    Ok(())
}
