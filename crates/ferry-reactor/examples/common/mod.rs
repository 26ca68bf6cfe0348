//! Argument parsing and signal-driven shutdown shared by the examples.
#![allow(dead_code)]

use std::process::ExitCode;

use ferry_reactor::sys::signals::SignalFd;
use ferry_reactor::{Assignment, Callbacks, EventLoop, ListenAddr, PollerKind, ServerConfig, TcpServer};
use nix::sys::signal::Signal;

/// `[ADDR] [--threads N] [--poller epoll|poll] [--no-idle-yield] [--assign round-robin|least-loaded]`
pub struct Args {
    pub addr: ListenAddr,
    pub threads: usize,
    pub poller: PollerKind,
    pub idle_yield: bool,
    pub assign: Assignment,
}

pub fn parse_args(default_addr: &str) -> Result<Args, String> {
    let mut args = Args {
        addr: default_addr.parse().map_err(|e| format!("{e}"))?,
        threads: 0,
        poller: PollerKind::Epoll,
        idle_yield: true,
        assign: Assignment::RoundRobin,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" | "-t" => {
                let v = it.next().ok_or("--threads needs a value")?;
                args.threads = v.parse().map_err(|_| format!("bad --threads {v:?}"))?;
            }
            "--poller" => {
                let v = it.next().ok_or("--poller needs a value")?;
                args.poller = v.parse().map_err(|e| format!("{e}"))?;
            }
            "--no-idle-yield" => args.idle_yield = false,
            "--assign" => {
                args.assign = match it.next().as_deref() {
                    Some("round-robin") => Assignment::RoundRobin,
                    Some("least-loaded") => Assignment::LeastLoaded,
                    other => return Err(format!("bad --assign {other:?}: round-robin or least-loaded")),
                };
            }
            "-h" | "--help" => {
                return Err(
                    "usage: [ADDR|unix:/path] [--threads N] [--poller epoll|poll] [--no-idle-yield] [--assign round-robin|least-loaded]"
                        .into(),
                );
            }
            other => args.addr = other.parse().map_err(|e| format!("{e}"))?,
        }
    }
    Ok(args)
}

/// Runs a server with `callbacks` until SIGINT or SIGTERM.
pub fn serve(name: &str, default_addr: &str, callbacks: Callbacks) -> ExitCode {
    let args = match parse_args(default_addr) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    match run(name, &args, callbacks) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(name: &str, args: &Args, callbacks: Callbacks) -> std::io::Result<()> {
    // Block the signals before any thread exists so all threads inherit it.
    let signals = SignalFd::block(&[Signal::SIGINT, Signal::SIGTERM])?;
    ferry_reactor::sys::signals::ignore_sigpipe()?;
    let mut lp = EventLoop::new(args.poller)?;
    lp.set_idle_yield(args.idle_yield);
    let config = ServerConfig {
        threads: args.threads,
        poller: args.poller,
        idle_yield: args.idle_yield,
        assign: args.assign,
        ..ServerConfig::default()
    };
    let mut server = TcpServer::bind(&args.addr, config)?.with_callbacks(callbacks);
    server.start(&mut lp)?;
    lp.watch_signals(signals, |lp, sig| {
        eprintln!("got {sig:?}, shutting down");
        lp.quit();
    })?;
    println!("{name} listening on {} ({} sub-loops, {} poller)", server.local_addr(), args.threads, args.poller);
    lp.run()?;
    server.stop_accepting(&mut lp);
    server.shutdown();
    Ok(())
}
