//! `ferry serve`: serve a directory over the file protocol and HTTP (and
//! optionally echo) with one of ferry's concurrency models.

use std::os::fd::{AsFd as _, AsRawFd as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod activation;
mod addr;
mod bare_port;
mod config;
mod handover;
mod observe;
mod run;

use self::addr::{ServiceAddr, make_public, parse_service_addr};

use crate::exposure::{self, Exposure};
use crate::units;
use anyhow::{Context as _, bail};
use ferry_proto::access::{Access, AccountsFile};
use ferry_proto::files::{FilesConfig, PartialLimits};
use ferry_proto::http::HttpConfig;
use ferry_proto::root::{Root, Visibility};
use ferry_server::daemon::{self, PidFile};
use ferry_server::udp_echo::DatagramAddr;
use ferry_server::{ListenAddr, TcpKeepalive};
use ferry_server::{ListenerConfig, PumpConfig, Service, UdpEcho};

/// Arguments of `ferry serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Directory to serve; clients cannot reach anything outside it. A bare
    /// port instead (`ferry serve 8000`: digits, not an existing directory)
    /// serves the current directory over HTTP on 127.0.0.1:PORT, as
    /// `python3 -m http.server 8000` does.
    #[arg(value_name = "ROOT|PORT", default_value = ".")]
    root: PathBuf,
    /// Address of the file service (docs/PROTOCOL.md): `IP:PORT`,
    /// `HOST:PORT`, a bare `PORT` (on 127.0.0.1), or `off`. Port 0 picks a
    /// free port; the real address is printed at start. Every
    /// service also listens on a Unix-domain socket: `unix:/path` (mode
    /// --unix-mode; a stale socket file is replaced, a live one refused;
    /// removed at exit) or a Linux abstract name `unix:@name`.
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:7070", value_parser = parse_service_addr)]
    files: ServiceAddr,
    /// Address of the HTTP/1.1 static-file service, or `off`.
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:8080", value_parser = parse_service_addr)]
    http: ServiceAddr,
    /// Address of the echo service (sends back every byte), or `off`.
    #[arg(long, value_name = "ADDR|off", default_value = "off", value_parser = parse_service_addr)]
    echo: ServiceAddr,
    /// Address of the datagram echo service (sends every datagram back to
    /// its sender, whole, up to 64 KiB), or `off`: UDP `IP:PORT`, or
    /// `unix-dgram:/path` (socket file mode 0660; a stale file is replaced,
    /// a live one refused). Served by one event loop under every model.
    #[arg(long, value_name = "ADDR|off", default_value = "off", value_parser = parse_datagram_addr)]
    udp_echo: DatagramServiceAddr,
    /// Concurrency model that drives the connections.
    #[arg(long, value_enum, default_value_t = Model::MultiReactor)]
    model: Model,
    /// Sub-loop threads of the multi-reactor model, each doing the I/O of
    /// the connections handed to it (see `--assign`), or rings of the
    /// uring model [default: number of CPUs].
    /// 0 makes the main loop serve every connection itself (like
    /// `--model reactor`); uring runs at least one ring.
    #[arg(long, value_name = "N")]
    io_threads: Option<u32>,
    /// Readiness backend of the reactor models' event loops.
    #[arg(long, value_enum, default_value_t = Poller::Epoll)]
    poller: Poller,
    /// How the multi-reactor model picks the sub-loop of a new connection:
    /// in turn, or the one with the fewest open connections (evens out
    /// loops when long downloads mix with short requests).
    #[arg(long, value_enum, default_value_t = Assign::RoundRobin)]
    assign: Assign,
    /// Workers of the thread pool (threads) or of prefork (processes), each
    /// serving one connection at a time [default: number of CPUs x 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    workers: Option<u32>,
    /// Capacity of the thread pool's task queue (and of prefork's queue):
    /// accepted connections that may wait for a free worker. When it is
    /// full the server stops accepting and the kernel's listen backlog holds
    /// new connections.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    queue: u32,
    /// Close a file or echo connection that sends nothing for SECS seconds
    /// (also the longest a send may block on a client that stopped reading).
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// TCP keep-alive on every accepted connection: the kernel probes a
    /// connection silent for SECS seconds, then every SECS/3 (at least 1 s),
    /// and resets it after 3 unanswered probes, so a peer that vanished
    /// without a word (power loss, cable pulled) is noticed within about
    /// 2 x SECS even when the idle timeout is long [default: off]. Not
    /// applied to unix: listeners.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    tcp_keepalive: Option<u64>,
    /// Permissions of the socket files of `unix:/path` listeners, in octal.
    #[arg(long, value_name = "OCTAL", default_value = "0660", value_parser = parse_mode)]
    unix_mode: u32,
    /// Close an HTTP keep-alive connection idle between requests for SECS
    /// seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    keepalive_timeout: u64,
    /// Close an HTTP connection whose request head takes longer than SECS
    /// seconds to arrive once it has begun (slowloris defence); the client
    /// gets 408.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// On SIGINT/SIGTERM, give in-flight transfers up to SECS seconds to
    /// finish before cutting them; a second SIGINT/SIGTERM cuts them at once.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    drain_timeout: u64,
    /// Accounts, tokens and rules (TOML; see README "Accounts and
    /// rights"): anonymous clients then get only what a rule grants them,
    /// and accounts log in (file protocol: auth; HTTP: Basic or Bearer).
    /// Make one with `ferry passwd FILE USER`. SIGHUP re-reads it (an
    /// invalid file keeps the accounts in use, and the log says why).
    #[arg(long, value_name = "FILE")]
    auth: Option<PathBuf>,
    /// Serve writes (--allow-write) on an address other machines can reach
    /// with no accounts file and no TLS, which is refused without it.
    #[arg(long)]
    insecure: bool,
    /// Let several independent `ferry serve --reuseport` processes listen on
    /// the same TCP ports (`SO_REUSEPORT`), the kernel spreading new
    /// connections among them: the alternative to prefork, and a way to
    /// replace a process (start the new one, then SIGTERM the old one,
    /// which drains while the new one accepts).
    #[arg(long)]
    reuseport: bool,
    /// Listen on every interface: each service on 127.0.0.1 (the defaults,
    /// a bare port) moves to 0.0.0.0, same port. Writes there need
    /// accounts or TLS (or --insecure).
    #[arg(long)]
    public: bool,
    /// Allow clients to change the served directory (put, mkdir, rm).
    /// Uploads in progress are kept in ROOT/.ferry-partials, which no
    /// client can see or reach.
    #[arg(long)]
    allow_write: bool,
    /// Serve names starting with `.` (`.git`, `.env`, dotfiles): without
    /// it both services leave them out of listings and answer them as not
    /// found. ROOT/.ferry-partials stays out of reach either way.
    #[arg(long)]
    hidden: bool,
    /// Remove partial uploads nobody has written to for this long (at
    /// start, and at most once a minute as uploads begin): 90s, 30m, 24h,
    /// 7d.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = units::parse_duration)]
    partial_ttl: Duration,
    /// The most disk space all partial uploads may take together (each
    /// reserves its announced size); the oldest idle ones are evicted to
    /// make room, and an upload that still does not fit is refused with
    /// ERR 507 before any byte is sent: 4096, 512M, 20G [default: no limit
    /// but the disk].
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    max_partial_bytes: Option<u64>,
    /// With --allow-write: the largest file an HTTP PUT may upload (larger
    /// is answered 413 before its body is read): 100M, 4G [default: no
    /// limit].
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    max_upload: Option<u64>,
    /// Most connections the thread and fork models serve at once (threads,
    /// child processes); beyond that they stop accepting and the kernel's
    /// listen backlog holds new clients.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_conns: u32,
    /// Detach and run in the background (double fork, new session, working
    /// directory /, stdio to /dev/null or --log-file). The "listening on"
    /// lines are printed before detaching; the command exits once the
    /// daemon is serving.
    #[arg(long)]
    daemon: bool,
    /// Write the server's pid to PATH (atomically) and remove it on exit.
    /// Refuses to start if PATH names a running ferry.
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,
    /// With --daemon: append the log to PATH instead of discarding it.
    #[arg(long, value_name = "PATH", requires = "daemon")]
    log_file: Option<PathBuf>,
    #[command(flatten)]
    tls: Box<crate::serve_tls::TlsArgs>,
    #[command(flatten)]
    http_opts: Box<crate::serve_http::HttpArgs>,
    #[command(flatten)]
    observe: observe::ObserveArgs,
    /// Read options from a TOML file: a key for every option (its long
    /// name: `model = "reactor"`, `allow-write = true`) and `root`; the
    /// command line overrides it. SIGHUP re-reads it and logs what changed
    /// (see docs/DEPLOY.md).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub(crate) use self::config::expand as expand_config;

/// A file mode in octal: `0660`, `600`.
fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
        .ok_or_else(|| format!("{text:?} is not an octal file mode (such as 0660)"))
}

/// The datagram echo service's address, or `None` when it is turned off
/// (boxed, so the rarely used option does not grow every `ServeArgs`).
type DatagramServiceAddr = Option<Box<DatagramAddr>>;

fn parse_datagram_addr(text: &str) -> Result<DatagramServiceAddr, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse().map(|addr| Some(Box::new(addr))).map_err(|e| format!("{e} (or off)"))
}

/// The concurrency models `ferry serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Model {
    /// One connection at a time, blocking: the next client waits.
    Iterative,
    /// A child process per connection, reaped on SIGCHLD.
    Fork,
    /// A thread per connection, at most --max-conns at once.
    Thread,
    /// A pool of --workers processes; the parent passes each connection to
    /// a free worker over a socketpair (SCM_RIGHTS).
    Prefork,
    /// An accept loop, a bounded task queue and N worker threads.
    Threadpool,
    /// One event loop accepts and serves every connection.
    Reactor,
    /// A main loop accepts; `--io-threads` sub-loops serve the connections.
    MultiReactor,
    /// A proactor on io_uring: `--io-threads` rings, each accepting (on a
    /// SO_REUSEPORT socket of its own) and serving its connections with
    /// completion-based I/O. Needs a kernel that allows io_uring.
    Uring,
}

/// The readiness backends of the reactor models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Poller {
    /// epoll(7): cost independent of the number of idle connections.
    Epoll,
    /// poll(2): the portable fallback; scans every connection each wait.
    Poll,
    /// select(2): the first multiplexer; only descriptors below 1024
    /// (FD_SETSIZE): connections beyond that are closed with a log line.
    Select,
}

/// How the multi-reactor model spreads connections over its sub-loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Assign {
    /// In turn.
    RoundRobin,
    /// To the sub-loop with the fewest open connections.
    LeastLoaded,
}

/// Runs `ferry serve` until SIGINT or SIGTERM, then shuts down in order.
pub fn run(mut args: ServeArgs) -> anyhow::Result<()> {
    // Sockets passed by systemd or by the ferry being upgraded, first:
    // their descriptors are the process's own from now on.
    let passed: Vec<_> = ferry_server::listen_fds::take()?;
    let upgraded = ferry_server::upgrade::is_upgrade_child();
    if args.daemon && !upgraded {
        let keep: Vec<_> = passed.iter().map(|p| p.listener.as_fd().as_raw_fd()).collect();
        // SAFETY: nothing has opened a descriptor yet but the passed
        // sockets, which are kept: the CLI was only parsed and logging set
        // up (it writes to stderr).
        unsafe { daemon::close_inherited_descriptors(&keep) }.context("cannot close inherited descriptors")?;
    }
    let (metrics, passed) = passed.into_iter().partition(|p| p.name == observe::METRICS_SOCKET);
    observe::pass_metrics(metrics)?;
    bare_port::apply(&mut args)?;
    match handover::spec() {
        Ok(spec) => ferry_server::upgrade::enable(spec),
        Err(e) => tracing::warn!("{e:#}; SIGUSR2 (upgrade) will not work"),
    }
    config::watch(std::env::args_os().collect());
    if args.public {
        for addr in [&mut args.files, &mut args.http, &mut args.echo] {
            make_public(addr);
        }
    }
    // The daemon changes to /, so its files are named absolutely.
    let udp_path = match args.udp_echo.as_deref_mut() {
        Some(DatagramAddr::Unix(path)) => Some(path),
        _ => None,
    };
    let unix_paths = [&mut args.files, &mut args.http, &mut args.echo].into_iter().filter_map(|addr| match addr {
        Some(ListenAddr::Unix(path)) => Some(path),
        _ => None,
    });
    for path in [&mut args.pid_file, &mut args.log_file].into_iter().flatten().chain(udp_path).chain(unix_paths) {
        *path = std::path::absolute(&*path).with_context(|| format!("cannot resolve {}", path.display()))?;
    }
    // After an upgrade the pid file names the parent, which is handing over.
    if let Some(path) = &args.pid_file
        && !upgraded
    {
        PidFile::check(path)?;
    }
    // Unix sockets are local: only TCP addresses can expose writes.
    check_exposure(&args, [&args.files, &args.http].into_iter().flatten().filter_map(ListenAddr::as_tcp))?;
    let activated = !passed.is_empty();
    let listeners = activation::apply(passed, listeners(&args)?)?;
    if activated {
        // Again for the sockets passed in, which the options did not name.
        let passed = listeners.iter().filter(|l| matches!(l.service, Service::Files(_) | Service::Http(_)));
        check_exposure(&args, passed.filter_map(|l| l.addr.as_tcp()))?;
    }
    let udp_echo = args.udp_echo.as_deref().map(UdpEcho::bind).transpose()?;
    run::run_model(&args, listeners, udp_echo)
}

/// The secure-defaults rule ([`exposure::check`]) for the writable
/// services' TCP addresses `addrs`.
fn check_exposure(args: &ServeArgs, addrs: impl IntoIterator<Item = std::net::SocketAddr>) -> anyhow::Result<()> {
    let addrs: Vec<std::net::SocketAddr> = addrs.into_iter().collect();
    let exposure = Exposure {
        addrs: &addrs,
        writes: args.allow_write,
        accounts: args.auth.is_some(),
        tls: crate::serve_tls::protects_writes(&args.tls),
        insecure: args.insecure,
    };
    exposure::check(exposure).map_err(anyhow::Error::msg)
}

/// The services to run, each with its address and timeouts.
fn listeners(args: &ServeArgs) -> anyhow::Result<Vec<ListenerConfig>> {
    let root = open_root(&args.root, args.hidden)?;
    let access = access(args)?;
    let tcp_keepalive = args.tcp_keepalive.map(|secs| TcpKeepalive::after(Duration::from_secs(secs)));
    let idle = PumpConfig::with_idle(Duration::from_secs(args.idle_timeout));
    let mut listeners = Vec::new();
    let unix_mode = Some(args.unix_mode);
    // One partials directory (home, TTL, room) for both services' uploads.
    let files = files_config(args, &root)?.with_access(Arc::clone(&access));
    if let Some(addr) = args.files.clone() {
        listeners.push(ListenerConfig {
            addr,
            service: Service::Files(files.clone()),
            pump: idle,
            tcp_keepalive,
            unix_mode,
            tls: None,
            reuse_port: args.reuseport,
        });
    }
    if let Some(addr) = args.http.clone() {
        let pump = PumpConfig {
            idle_timeout: Duration::from_secs(args.keepalive_timeout),
            request_timeout: Duration::from_secs(args.header_timeout),
        };
        let mut config = HttpConfig::new(Arc::clone(&root)).with_access(Arc::clone(&access));
        if let Some(partials) = &files.partials {
            config = config.with_writes(Arc::clone(partials), args.max_upload);
        }
        let http = Service::Http(Arc::new(crate::serve_http::apply(&args.http_opts, config)?));
        let reuse_port = args.reuseport;
        listeners.push(ListenerConfig { addr, service: http, pump, tcp_keepalive, unix_mode, tls: None, reuse_port });
    }
    if let Some(addr) = args.echo.clone() {
        listeners.push(ListenerConfig {
            addr,
            service: Service::Echo,
            pump: idle,
            tcp_keepalive,
            unix_mode,
            tls: None,
            reuse_port: args.reuseport,
        });
    }
    if listeners.is_empty() && args.udp_echo.is_none() {
        bail!("every service is off: give at least one of --files, --http, --echo, --udp-echo an address");
    }
    crate::serve_tls::apply(&args.tls, &mut listeners)?;
    let https = listeners.iter().any(|l| matches!(l.service, Service::Http(_)) && l.tls.is_some());
    crate::serve_http::want_qr(&args.http_opts, if https { "https" } else { "http" });
    Ok(listeners)
}

/// Who may do what: everyone (today's rights) without --auth, else the
/// accounts and rules of the file.
fn access(args: &ServeArgs) -> anyhow::Result<Arc<Access>> {
    let Some(path) = &args.auth else {
        return Ok(Arc::new(Access::open(args.allow_write)));
    };
    // The file's errors name it.
    let file = AccountsFile::load(path, false)?;
    let (users, tokens, rules) = (file.users.len(), file.tokens.len(), file.rules.len());
    let access = Access::with_accounts(file, args.allow_write)?;
    tracing::info!("accounts from {}: {users} user(s), {tokens} token(s), {rules} rule(s)", path.display());
    let access = Arc::new(access);
    let (reloaded, path) = (Arc::clone(&access), path.clone());
    ferry_server::reload::on_reload(move || match reloaded.reload(&path) {
        Ok(n) => tracing::info!("reloaded accounts from {} ({} users, {} tokens)", path.display(), n.users, n.tokens),
        Err(e) => tracing::error!("{e}; keeping the accounts in use"),
    });
    Ok(access)
}

/// The file service's settings; with --allow-write, opens the partials
/// directory and sweeps it of stale uploads.
fn files_config(args: &ServeArgs, root: &Arc<Root>) -> anyhow::Result<FilesConfig> {
    if !args.allow_write {
        return Ok(FilesConfig::read_only(Arc::clone(root)));
    }
    let limits = PartialLimits { ttl: args.partial_ttl, max_bytes: args.max_partial_bytes };
    // Partials::open's errors name the directory already.
    let files = FilesConfig::writable(Arc::clone(root), limits)?;
    if let Some(partials) = &files.partials {
        partials.sweep(std::time::SystemTime::now());
    }
    Ok(files)
}

/// Opens the served directory, with errors that name it.
fn open_root(path: &Path, hidden: bool) -> anyhow::Result<Arc<Root>> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot serve {}", path.display()))?;
    if !meta.is_dir() {
        bail!("cannot serve {}: not a directory", path.display());
    }
    // Root's own errors name the path already.
    let visibility = Visibility { show_hidden: hidden };
    Ok(Arc::new(Root::open(path)?.with_visibility(visibility)))
}
