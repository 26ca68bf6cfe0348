//! Datagram echo server: every datagram goes back to its sender, whole.
//!
//! UDP over IPv4 or IPv6 (`127.0.0.1:2007`, `[::1]:2007`) or a Unix
//! datagram socket (`unix-dgram:/tmp/echo.sock`; clients must bind a path
//! of their own to get replies). Up to `--batch` datagrams are received per
//! wake-up with one `recvmmsg` and their replies sent with one `sendmmsg`;
//! `--batch 1` turns batching off. A datagram longer than 64 KiB (possible
//! on a Unix socket) arrives cut: it is reported and not echoed. Stops on
//! SIGINT or SIGTERM and prints what it did.
//!
//! `cargo run -p ferry-reactor --release --example udp_echo -- 127.0.0.1:2007 --batch 32 --poller epoll`
//!
//! Load it with `examples/udp_load.rs`.

use std::process::ExitCode;

use ferry_reactor::sys::signals::SignalFd;
use ferry_reactor::{DatagramAddr, DatagramCallbacks, DatagramOptions, DatagramSocket, EventLoop, PollerKind};
use nix::sys::signal::Signal;

struct Args {
    addr: DatagramAddr,
    batch: usize,
    poller: PollerKind,
}

fn parse_args() -> Result<Args, String> {
    let mut args =
        Args { addr: DatagramAddr::Udp(([127, 0, 0, 1], 2007).into()), batch: 32, poller: PollerKind::Epoll };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--batch" => {
                let v = it.next().ok_or("--batch needs a value")?;
                args.batch = v.parse().map_err(|_| format!("bad --batch {v:?}"))?;
            }
            "--poller" => {
                let v = it.next().ok_or("--poller needs a value")?;
                args.poller = v.parse().map_err(|e| format!("{e}"))?;
            }
            "-h" | "--help" => {
                return Err("usage: [IP:PORT|unix-dgram:/path] [--batch N] [--poller epoll|poll|select]".into());
            }
            other => args.addr = other.parse().map_err(|e| format!("{e}"))?,
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("udp_echo: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let signals = SignalFd::block(&[Signal::SIGINT, Signal::SIGTERM])?;
    let mut lp = EventLoop::new(args.poller)?;
    let options = DatagramOptions { batch: args.batch, recv_buffer: Some(4 << 20), ..DatagramOptions::default() };
    let socket = DatagramSocket::bind(&args.addr, options)?;
    let local = socket.local_addr().clone();
    let callbacks = DatagramCallbacks::new()
        .on_message(|ep, d| {
            if d.is_truncated() {
                eprintln!("udp_echo: {} sent {} bytes, more than a datagram slot; not echoed", d.peer(), d.len());
                return;
            }
            ep.send_to(d.data(), d.peer());
        })
        .on_error(|_, e| eprintln!("udp_echo: {e}"));
    let token = socket.register(&mut lp, callbacks)?;
    lp.watch_signals(signals, |lp, _| lp.quit())?;
    println!("udp_echo listening on {local} (batch {}, {} poller)", args.batch, args.poller);
    lp.run()?;
    if let Some(stats) = lp.with_datagram(token, |ep| ep.stats()) {
        let per_call = stats.received as f64 / stats.receive_calls.max(1) as f64;
        println!(
            "udp_echo: received {} in {} calls ({per_call:.2} per call, largest batch {}), sent {} in {} calls, \
             dropped {}, truncated {}",
            stats.received,
            stats.receive_calls,
            stats.largest_batch,
            stats.sent,
            stats.send_calls,
            stats.dropped,
            stats.truncated
        );
    }
    Ok(())
}
