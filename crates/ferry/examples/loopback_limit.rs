//! The loopback bulk-transfer ceilings that `ferry get` is measured
//! against: `sendfile` a whole file into a loopback TCP socket and time how
//! long the receiving side takes to take it all.
//!
//! - `loopback_limit FILE`: the reader only discards (reads into one reused
//!   buffer). No protocol, no file written: nothing a downloader can beat.
//! - `loopback_limit FILE --to OUT`: the reader `splice`s the bytes into
//!   the file OUT, as `ferry get` does: the ceiling for a tool that keeps
//!   what it receives.
//!
//! Usage: `cargo run --release --example loopback_limit -- FILE [--to OUT]`

use std::fs::File;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use anyhow::Context;
use ferry_reactor::sys::zero_copy::SplicePipe;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, out) = match args.as_slice() {
        [path] => (path.clone(), None),
        [path, flag, out] if flag == "--to" => (path.clone(), Some(out.clone())),
        _ => anyhow::bail!("usage: loopback_limit FILE [--to OUT]"),
    };
    let file = File::open(&path).with_context(|| format!("cannot open {path}"))?;
    let len = file.metadata()?.len();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sink = match &out {
        Some(out) => Some(File::create(out).with_context(|| format!("cannot create {out}"))?),
        None => None,
    };
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut sock, _) = listener.accept()?;
        let mut total = 0u64;
        match sink {
            Some(sink) => {
                let mut pipe = SplicePipe::new()?;
                let mut offset = 0u64;
                loop {
                    match pipe.socket_to_file(&sock, &sink, &mut offset, 1 << 20)? {
                        0 => return Ok(total),
                        n => total += n as u64,
                    }
                }
            }
            None => {
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    match sock.read(&mut buf)? {
                        0 => return Ok(total),
                        n => total += n as u64,
                    }
                }
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
    let mode = if out.is_some() { "into a file" } else { "discarded" };
    println!("loopback sendfile ({mode}): {len} bytes in {secs:.3} s = {:.0} MB/s", len as f64 / secs / 1e6);
    Ok(())
}
