//! Reference echo server on tokio, for the ping-pong benchmark only.
//!
//! `cargo run -p ferry-reactor --release --example tokio_echo -- 127.0.0.1:2017 --threads 2`
//! (`--threads N` = N tokio worker threads, the counterpart of N sub-loops).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:2017".to_string();
    let mut threads = 1usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" | "-t" => {
                threads = it.next().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
            }
            other => addr = other.to_string(),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        println!("tokio_echo listening on {} ({threads} workers)", listener.local_addr()?);
        loop {
            let (mut sock, _) = listener.accept().await?;
            sock.set_nodelay(true)?;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if sock.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}
