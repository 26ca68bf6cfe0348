//! Datagram echo load generator, for `udp_echo` and `ferry serve
//! --udp-echo`: P peers (connected sockets on one event loop) each keep W
//! datagrams of B bytes in flight, sending one for every echo, for T
//! seconds after a short warm-up; prints echoes per second.
//!
//! A datagram lost to a full receive buffer would shrink a peer's window
//! for good, so every 20 ms a peer that got no echo since the last look
//! sends its window again (counted as `refills`; a real protocol would
//! retransmit the same way).
//!
//! `cargo run -p ferry-reactor --release --example udp_load -- 127.0.0.1:2007 --peers 8 --window 16 --size 64 --secs 3`
//!
//! Last line, machine-readable:
//! `RESULT peers=8 window=16 size=64 secs=3.00 echoes=... per_s=... refills=...`

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferry_reactor::{DatagramAddr, DatagramCallbacks, DatagramOptions, DatagramSocket, EventLoop, PollerKind, Token};

struct Args {
    target: DatagramAddr,
    peers: usize,
    window: usize,
    size: usize,
    secs: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args =
        Args { target: DatagramAddr::Udp(([127, 0, 0, 1], 2007).into()), peers: 8, window: 16, size: 64, secs: 3.0 };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--peers" => args.peers = value("--peers")?.parse().map_err(|_| "bad --peers")?,
            "--window" => args.window = value("--window")?.parse().map_err(|_| "bad --window")?,
            "--size" => args.size = value("--size")?.parse().map_err(|_| "bad --size")?,
            "--secs" => args.secs = value("--secs")?.parse().map_err(|_| "bad --secs")?,
            "-h" | "--help" => {
                return Err("usage: [IP:PORT|unix-dgram:/path] [--peers P] [--window W] [--size B] [--secs T]".into());
            }
            other => args.target = other.parse().map_err(|e| format!("{e}"))?,
        }
    }
    if args.peers == 0 || args.window == 0 || !(args.secs > 0.0 && args.secs <= 600.0) {
        return Err("--peers and --window must be at least 1, --secs in (0, 600]".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("udp_load: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp_load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One peer: its endpoint's token, its echo count, and the count at the
/// last refill check.
struct Peer {
    token: Token,
    echoes: Arc<AtomicU64>,
    seen: u64,
}

fn run(args: &Args) -> std::io::Result<()> {
    let mut lp = EventLoop::new(PollerKind::Epoll)?;
    let payload: Arc<[u8]> = (0..args.size).map(|i| i as u8).collect();
    let mut peers = Vec::with_capacity(args.peers);
    for i in 0..args.peers {
        let local = match &args.target {
            DatagramAddr::Udp(a) if a.is_ipv4() => DatagramAddr::Udp(([127, 0, 0, 1], 0).into()),
            DatagramAddr::Udp(_) => DatagramAddr::Udp((std::net::Ipv6Addr::LOCALHOST, 0).into()),
            DatagramAddr::Unix(_) => {
                DatagramAddr::Unix(std::env::temp_dir().join(format!("udp_load.{}.{i}", std::process::id())))
            }
        };
        let options = DatagramOptions { recv_buffer: Some(1 << 20), ..DatagramOptions::default() };
        let mut socket = DatagramSocket::bind(&local, options)?;
        socket.connect(&args.target)?;
        let echoes = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&echoes);
        let callbacks = DatagramCallbacks::new()
            .on_message(move |ep, d| {
                counter.fetch_add(1, Ordering::Relaxed);
                ep.send(d.data());
            })
            .on_error(|_, e| eprintln!("udp_load: {e}"));
        let token = socket.register(&mut lp, callbacks)?;
        peers.push(Peer { token, echoes, seen: 0 });
    }
    let refills = Arc::new(AtomicU64::new(0));
    let window = args.window;
    let send_window = move |lp: &mut EventLoop, token: Token| {
        lp.with_datagram(token, |ep| {
            for _ in 0..window {
                ep.send(&payload);
            }
        });
    };
    for peer in &peers {
        send_window(&mut lp, peer.token);
    }
    let total = {
        let counters: Vec<Arc<AtomicU64>> = peers.iter().map(|p| Arc::clone(&p.echoes)).collect();
        move || counters.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>()
    };
    let refilled = Arc::clone(&refills);
    lp.run_every(Duration::from_millis(20), move |lp| {
        for peer in &mut peers {
            let now = peer.echoes.load(Ordering::Relaxed);
            if now == peer.seen {
                refilled.fetch_add(1, Ordering::Relaxed);
                send_window(lp, peer.token);
            }
            peer.seen = now;
        }
    });
    let warm_until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < warm_until {
        lp.run_once(Some(Duration::from_millis(10)))?;
    }
    let (start, start_count) = (Instant::now(), total());
    let end = start + Duration::from_secs_f64(args.secs);
    while Instant::now() < end {
        lp.run_once(Some(Duration::from_millis(10)))?;
    }
    let secs = start.elapsed().as_secs_f64();
    let echoes = total() - start_count;
    println!(
        "RESULT peers={} window={} size={} secs={secs:.2} echoes={echoes} per_s={:.0} refills={}",
        args.peers,
        args.window,
        args.size,
        echoes as f64 / secs,
        refills.load(Ordering::Relaxed)
    );
    Ok(())
}
