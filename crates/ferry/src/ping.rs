//! `ferry ping ADDR`: round trips to a ferry server, as ping(8) shows
//! them: the file protocol's `ping` on one connection, or with `--udp` a
//! datagram to a `--udp-echo` service. A reply not back within `-W` is
//! lost; the summary gives sent, received, loss and min/avg/max; the exit
//! status is 1 when nothing answered, so a stopped server never makes it
//! hang or pass.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::connect::{ConnectArgs, parse_secs};

/// Arguments of `ferry ping`.
#[derive(Debug, clap::Args)]
pub struct PingArgs {
    /// Server address, HOST[:PORT] (the file service, port 7070 if omitted),
    /// or unix:/PATH or unix:@NAME; with --udp, the udp-echo service's
    /// address.
    addr: String,
    /// Stop after COUNT pings [default: until Ctrl-C].
    #[arg(short = 'c', long, value_name = "COUNT")]
    count: Option<u64>,
    /// Wait SECS between pings (decimals allowed).
    #[arg(short = 'i', long, value_name = "SECS", default_value = "1", value_parser = parse_secs)]
    interval: Duration,
    /// A reply not back within SECS counts as lost.
    #[arg(short = 'W', long, value_name = "SECS", default_value = "2", value_parser = parse_secs)]
    wait: Duration,
    /// Ping a --udp-echo service with datagrams instead.
    #[arg(long)]
    udp: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Set by SIGINT: print the summary and stop.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: std::ffi::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Runs `ferry ping`.
pub fn run(args: PingArgs) -> anyhow::Result<()> {
    let handler = nix::sys::signal::SigHandler::Handler(on_sigint);
    let action = nix::sys::signal::SigAction::new(
        handler,
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe.
    unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGINT, &action) }
        .context("cannot handle SIGINT")?;
    let mut pinger: Box<dyn Pinger> = if args.udp {
        Box::new(UdpPinger::new(&args.addr)?)
    } else {
        Box::new(FilesPinger { client: args.connect.connect(&args.addr)?, owed: 0 })
    };
    let shown = pinger.address();
    println!("PING {shown} ({})", if args.udp { "udp-echo" } else { "file protocol" });
    let mut stats = Stats::default();
    let started = Instant::now();
    let mut seq = 0;
    while args.count.is_none_or(|count| seq < count) && !INTERRUPTED.load(Ordering::Relaxed) {
        if seq > 0 {
            std::thread::sleep(args.interval);
            if INTERRUPTED.load(Ordering::Relaxed) {
                break;
            }
        }
        seq += 1;
        stats.sent += 1;
        match pinger.ping(seq, args.wait) {
            Ok(Some(rtt)) => {
                println!("reply from {shown}: seq={seq} time={:.3} ms", ms(rtt));
                stats.record(rtt);
            }
            Ok(None) => println!("no reply from {shown}: seq={seq} within {:.1} s", args.wait.as_secs_f64()),
            Err(e) => {
                println!("{shown}: seq={seq}: {e:#}");
                if pinger.fatal(&e) {
                    break;
                }
            }
        }
    }
    stats.print(&shown, started.elapsed());
    if stats.received == 0 {
        anyhow::bail!("no reply from {shown}");
    }
    Ok(())
}

/// One way of pinging.
trait Pinger {
    fn address(&self) -> String;
    /// The round trip of ping `seq`, or `None` if none came within `wait`.
    fn ping(&mut self, seq: u64, wait: Duration) -> anyhow::Result<Option<Duration>>;
    /// True if, after `error`, no later ping can succeed.
    fn fatal(&self, error: &anyhow::Error) -> bool;
}

/// `ping` on a file-protocol connection; pongs of pings that timed out are
/// still owed and taken before the next one's.
struct FilesPinger {
    client: ferry_client::Client,
    owed: usize,
}

impl Pinger for FilesPinger {
    fn address(&self) -> String {
        self.client.address().to_string()
    }

    fn ping(&mut self, _seq: u64, wait: Duration) -> anyhow::Result<Option<Duration>> {
        let rtt = self.client.ping_within(wait, self.owed)?;
        self.owed = if rtt.is_some() { 0 } else { self.owed + 1 };
        Ok(rtt)
    }

    fn fatal(&self, _: &anyhow::Error) -> bool {
        // The connection is gone (closed, reset, out of step).
        true
    }
}

/// Datagrams `ferry-ping SEQ` to an echo service over a connected UDP
/// socket, so a closed port is reported (ECONNREFUSED) instead of waited
/// out; replies of earlier, late pings are skipped.
struct UdpPinger {
    socket: UdpSocket,
    addr: String,
}

impl UdpPinger {
    fn new(addr: &str) -> anyhow::Result<UdpPinger> {
        let target = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .with_context(|| format!("cannot resolve {addr} (HOST:PORT)"))?
            .next()
            .with_context(|| format!("{addr} resolves to no address"))?;
        let local = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let socket = UdpSocket::bind(local).context("cannot open a UDP socket")?;
        socket.connect(target).with_context(|| format!("cannot connect a UDP socket to {target}"))?;
        Ok(UdpPinger { socket, addr: target.to_string() })
    }
}

impl Pinger for UdpPinger {
    fn address(&self) -> String {
        self.addr.clone()
    }

    fn ping(&mut self, seq: u64, wait: Duration) -> anyhow::Result<Option<Duration>> {
        let message = format!("ferry-ping {seq}");
        let started = Instant::now();
        self.socket.send(message.as_bytes()).context("cannot send")?;
        let mut buf = [0u8; 64];
        loop {
            let left = wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            self.socket.set_read_timeout(Some(left))?;
            match self.socket.recv(&mut buf) {
                Ok(n) if buf[..n] == *message.as_bytes() => return Ok(Some(started.elapsed())),
                Ok(_) => {} // a late reply to an earlier ping
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Ok(None);
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    anyhow::bail!("port unreachable (nothing listens there: connection refused)")
                }
                Err(e) => return Err(e).context("cannot receive"),
            }
        }
    }

    fn fatal(&self, _: &anyhow::Error) -> bool {
        // Datagrams are independent: a refused one does not end the run.
        false
    }
}

/// Counts and round trips, for the summary.
#[derive(Default)]
struct Stats {
    sent: u64,
    received: u64,
    min: Option<Duration>,
    max: Duration,
    total: Duration,
}

impl Stats {
    fn record(&mut self, rtt: Duration) {
        self.received += 1;
        self.min = Some(self.min.map_or(rtt, |m| m.min(rtt)));
        self.max = self.max.max(rtt);
        self.total += rtt;
    }

    fn print(&self, addr: &str, elapsed: Duration) {
        let lost = self.sent - self.received;
        let loss = if self.sent == 0 { 0.0 } else { 100.0 * lost as f64 / self.sent as f64 };
        println!("--- {addr} ping statistics ---");
        println!("{} sent, {} received, {loss:.0}% loss, time {:.0} ms", self.sent, self.received, ms(elapsed));
        if let Some(min) = self.min {
            let avg = self.total / u32::try_from(self.received).unwrap_or(u32::MAX);
            println!("rtt min/avg/max = {:.3}/{:.3}/{:.3} ms", ms(min), ms(avg), ms(self.max));
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
