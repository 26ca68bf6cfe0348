//! muduo-style ping-pong client: C connections each send one B-byte message
//! and then echo back whatever they receive, as fast as possible, for T
//! seconds. Prints the bytes and messages (bytes / B) moved.
//!
//! The clock starts only once every connection has had its first message
//! echoed: a connection the kernel completed but the server has not yet
//! accepted would otherwise count as served, and a server that accepts
//! slowly would be measured with fewer live connections than asked for.
//! `warmup_s` in the result says how long that took.
//!
//! With `--reshuffle`, before the clock starts every second connection is
//! closed and as many new ones are opened: a server that hands connections
//! to its loops in turn then has them unevenly spread (the closed ones were
//! all on the same loops), one that picks the least-loaded loop does not.
//!
//! `cargo run -p ferry-reactor --release --example pingpong_client -- 127.0.0.1:2007 --conns 100 --size 4096 --secs 3`
//!
//! Output: `WARM warmup_s=...` when the clock starts (a profiler attached to
//! the server can wait for it), then, as the last line, machine-readable:
//! `RESULT conns=100 size=4096 secs=3.00 bytes=... msgs=... mib_per_s=... warmup_s=...`

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_reactor::{Callbacks, EventLoop, ListenAddr, PollerKind};

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:2007".to_string();
    let (mut conns, mut size, mut secs, mut reshuffle) = (1usize, 4096usize, 3.0f64, false);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match a.as_str() {
            "--conns" | "-c" => conns = val("--conns").parse().expect("--conns"),
            "--size" | "-b" => size = val("--size").parse().expect("--size"),
            "--secs" | "-s" => secs = val("--secs").parse().expect("--secs"),
            "--reshuffle" => reshuffle = true,
            other => addr = other.to_string(),
        }
    }
    match run(&addr, conns, size, secs, reshuffle) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pingpong_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(addr: &str, conns: usize, size: usize, secs: f64, reshuffle: bool) -> std::io::Result<()> {
    let addr: ListenAddr = addr.parse().map_err(std::io::Error::other)?;
    // Callbacks must be Send + Sync; this client runs on one thread, so
    // the atomics are plain counters here.
    let bytes = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let warm = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (b2, counting2, warm2, closed2) = (bytes.clone(), counting.clone(), warm.clone(), closed.clone());
    let message = vec![b'x'; size];
    let callbacks = Callbacks::new()
        .on_connected(move |c| {
            c.set_context(0usize);
            c.send(&message);
        })
        .on_message(move |c, buf| {
            let n = buf.readable_bytes();
            if counting2.load(Ordering::Relaxed) {
                b2.fetch_add(n as u64, Ordering::Relaxed);
            } else if let Some(seen) = c.context_mut::<usize>()
                && *seen < size
            {
                *seen += n;
                if *seen >= size {
                    warm2.fetch_add(1, Ordering::Relaxed);
                }
            }
            c.send_buffer(buf);
        })
        .on_closed(move |_| {
            closed2.fetch_add(1, Ordering::Relaxed);
        });
    let mut lp = EventLoop::new(PollerKind::Epoll)?;
    let connect_start = Instant::now();
    let mut handles = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (fd, peer) = ferry_reactor::connect(&addr)?;
        handles.push(ferry_reactor::adopt(&mut lp, fd, peer, callbacks.clone())?);
    }
    // Warm-up: run until every connection has had one echo back (bounded).
    let run_until = |lp: &mut EventLoop, what: &str, done: &dyn Fn() -> bool| -> std::io::Result<()> {
        while !done() {
            lp.run_once(Some(Duration::from_millis(100)))?;
            if connect_start.elapsed() > Duration::from_secs(60) {
                return Err(std::io::Error::other(format!("{what}: not done within 60 s")));
            }
        }
        Ok(())
    };
    run_until(&mut lp, "first echo on every connection", &|| warm.load(Ordering::Relaxed) >= conns)?;
    if reshuffle {
        let gone = conns / 2;
        for h in handles.iter().step_by(2) {
            // Half-close: closed here once the server has answered with its
            // own FIN, i.e. freed its side.
            h.shutdown();
        }
        run_until(&mut lp, "closing every second connection", &|| closed.load(Ordering::Relaxed) >= gone)?;
        for _ in 0..gone {
            let (fd, peer) = ferry_reactor::connect(&addr)?;
            ferry_reactor::adopt(&mut lp, fd, peer, callbacks.clone())?;
        }
        run_until(&mut lp, "first echo on the new connections", &|| warm.load(Ordering::Relaxed) >= conns + gone)?;
    }
    let warmup = connect_start.elapsed().as_secs_f64();
    // Tells a profiler wrapped around the server when the measured part begins.
    println!("WARM warmup_s={warmup:.3}");
    std::io::Write::flush(&mut std::io::stdout())?;
    counting.store(true, Ordering::Relaxed);
    let start = Instant::now();
    lp.run_after(Duration::from_secs_f64(secs), |lp| lp.quit());
    lp.run()?;
    let elapsed = start.elapsed().as_secs_f64();
    let total = bytes.load(Ordering::Relaxed);
    println!(
        "RESULT conns={conns} size={size} secs={elapsed:.2} bytes={total} msgs={} mib_per_s={:.3} warmup_s={warmup:.3}",
        total / size.max(1) as u64,
        total as f64 / elapsed / (1024.0 * 1024.0)
    );
    Ok(())
}
