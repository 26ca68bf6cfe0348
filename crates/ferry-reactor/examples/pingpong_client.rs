//! muduo-style ping-pong client: C connections each send one B-byte message
//! and then echo back whatever they receive, as fast as possible, for T
//! seconds. Prints the bytes and messages (bytes / B) moved.
//!
//! `cargo run -p ferry-reactor --release --example pingpong_client -- 127.0.0.1:2007 --conns 100 --size 4096 --secs 3`
//!
//! Output (last line, machine-readable):
//! `RESULT conns=100 size=4096 secs=3.00 bytes=... msgs=... mib_per_s=...`

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferry_reactor::{Callbacks, EventLoop, ListenAddr, PollerKind};

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:2007".to_string();
    let (mut conns, mut size, mut secs) = (1usize, 4096usize, 3.0f64);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match a.as_str() {
            "--conns" | "-c" => conns = val("--conns").parse().expect("--conns"),
            "--size" | "-b" => size = val("--size").parse().expect("--size"),
            "--secs" | "-s" => secs = val("--secs").parse().expect("--secs"),
            other => addr = other.to_string(),
        }
    }
    match run(&addr, conns, size, secs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pingpong_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(addr: &str, conns: usize, size: usize, secs: f64) -> std::io::Result<()> {
    let addr: ListenAddr = addr.parse().map_err(std::io::Error::other)?;
    let bytes = Arc::new(AtomicU64::new(0));
    let b2 = bytes.clone();
    let message = vec![b'x'; size];
    let callbacks = Callbacks::new()
        .on_connected(move |c| {
            c.send(&message);
        })
        .on_message(move |c, buf| {
            b2.fetch_add(buf.readable_bytes() as u64, Ordering::Relaxed);
            c.send_buffer(buf);
        });
    let mut lp = EventLoop::new(PollerKind::Epoll)?;
    for _ in 0..conns {
        let (fd, peer) = ferry_reactor::connect(&addr)?;
        ferry_reactor::adopt(&mut lp, fd, peer, callbacks.clone())?;
    }
    let start = Instant::now();
    lp.run_after(Duration::from_secs_f64(secs), |lp| lp.quit());
    lp.run()?;
    let elapsed = start.elapsed().as_secs_f64();
    let total = bytes.load(Ordering::Relaxed);
    println!(
        "RESULT conns={conns} size={size} secs={elapsed:.2} bytes={total} msgs={} mib_per_s={:.3}",
        total / size.max(1) as u64,
        total as f64 / elapsed / (1024.0 * 1024.0)
    );
    Ok(())
}
