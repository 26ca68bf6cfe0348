//! The loopback bulk-transfer ceiling that `ferry get` is measured against:
//! `sendfile` a whole file into a loopback TCP socket whose reader only
//! discards, and report MB/s. No protocol, no disk writes on the receiving
//! side: nothing a file-transfer tool could beat.
//!
//! Usage: `cargo run --release --example loopback_limit -- FILE`

use std::fs::File;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).context("usage: loopback_limit FILE")?;
    let file = File::open(&path).with_context(|| format!("cannot open {path}"))?;
    let len = file.metadata()?.len();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut sock, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match sock.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let sock = TcpStream::connect(addr)?;
    let started = Instant::now();
    let mut offset = 0u64;
    while offset < len {
        let want = (len - offset).min(1 << 30) as usize;
        let n = rustix::fs::sendfile(&sock, &file, Some(&mut offset), want)?;
        anyhow::ensure!(n > 0, "sendfile stopped at {offset} of {len}");
    }
    drop(sock);
    let received = reader.join().map_err(|_| anyhow::anyhow!("reader panicked"))??;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(received == len, "reader got {received} of {len} bytes");
    println!("loopback sendfile: {len} bytes in {secs:.3} s = {:.0} MB/s", len as f64 / secs / 1e6);
    Ok(())
}
