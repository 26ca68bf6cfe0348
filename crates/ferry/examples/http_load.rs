//! A small closed-loop HTTP/1.1 load generator that also speaks Unix-domain
//! sockets (wrk does not): CONNS keep-alive connections, each sending one
//! `GET` and reading its whole answer before the next, for SECS seconds.
//! Prints the answers counted; `scripts/bench-unix.sh` divides the server's
//! CPU time by it.
//!
//!     cargo run --release --example http_load -- ADDR PATH [CONNS] [SECS]
//!
//! ADDR is `IP:PORT` or `unix:/path`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A connected socket of either kind.
trait Socket: Read + Write + Send {}
impl<T: Read + Write + Send> Socket for T {}

fn connect(addr: &str) -> io::Result<Box<dyn Socket>> {
    Ok(match addr.strip_prefix("unix:") {
        Some(path) => Box::new(UnixStream::connect(path)?),
        None => {
            let tcp = TcpStream::connect(addr)?;
            tcp.set_nodelay(true)?;
            Box::new(tcp)
        }
    })
}

/// Requests answered on one connection until `until`.
fn run(addr: &str, path: &str, until: Instant) -> io::Result<u64> {
    let request = format!("GET /{path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let mut conn = BufReader::with_capacity(64 * 1024, connect(addr)?);
    let mut body = Vec::new();
    let mut done = 0;
    while Instant::now() < until {
        conn.get_mut().write_all(request.as_bytes())?;
        let mut len = None;
        let mut line = String::new();
        loop {
            line.clear();
            if conn.read_line(&mut line)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed mid-answer"));
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                len = value.trim().parse::<u64>().ok();
            }
        }
        let len = len.ok_or_else(|| io::Error::other("no Content-Length"))?;
        body.clear();
        (&mut conn).take(len).read_to_end(&mut body)?;
        if body.len() as u64 != len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short body"));
        }
        done += 1;
    }
    Ok(done)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: http_load ADDR PATH [CONNS] [SECS]");
        std::process::exit(2);
    };
    let conns: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(8);
    let secs: f64 = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(5.0);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (addr, path) = (addr.clone(), path.clone());
            std::thread::spawn(move || run(&addr, &path, until))
        })
        .collect();
    let mut total = 0;
    for t in threads {
        match t.join() {
            Ok(Ok(n)) => total += n,
            Ok(Err(e)) => {
                eprintln!("http_load: {e}");
                std::process::exit(1);
            }
            Err(_) => std::process::exit(1),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("requests {total} in {elapsed:.2} s = {:.0} req/s", total as f64 / elapsed);
}
