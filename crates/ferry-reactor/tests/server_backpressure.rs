//! TcpServer end to end over real sockets on 127.0.0.1: output kept
//! bounded. The high-water mark against a slow reader, read backpressure
//! while a reply is queued, and a producer refilling from write-complete
//! taking turns with its loop's other connections.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ferry_reactor::{Callbacks, PollerKind, ServerConfig, TcpConnection};
use util::*;

struct Producer {
    sent: usize,
    paused: bool,
}

const TOTAL: usize = 64 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const HWM: usize = 1024 * 1024;
static PATTERN: [u8; 251] = {
    let mut p = [0u8; 251];
    let mut i = 0;
    while i < 251 {
        p[i] = i as u8;
        i += 1;
    }
    p
};

fn produce(c: &mut TcpConnection<'_>, max_out: &AtomicUsize) {
    loop {
        let (sent, paused) = {
            let p = c.context::<Producer>().unwrap();
            (p.sent, p.paused)
        };
        if paused || sent >= TOTAL {
            break;
        }
        // CHUNK is not a multiple of 251: rotate one period-251 pattern.
        let start = sent % 251;
        let chunk: Vec<u8> = PATTERN.iter().cycle().skip(start).take(CHUNK).copied().collect();
        c.send(&chunk);
        c.context_mut::<Producer>().unwrap().sent += CHUNK;
        max_out.fetch_max(c.output_bytes(), Ordering::Relaxed);
    }
    if c.context::<Producer>().unwrap().sent >= TOTAL {
        c.shutdown();
    }
}

fn slow_reader_high_water_mark_bounds_output(config: ServerConfig) {
    let max_out = Arc::new(AtomicUsize::new(0));
    let hwm_hits = Arc::new(AtomicUsize::new(0));
    let (m1, m2, h1) = (max_out.clone(), max_out.clone(), hwm_hits.clone());
    let callbacks = Callbacks::new()
        .on_connected(move |c| {
            c.set_context(Producer { sent: 0, paused: false });
            produce(c, &m1);
        })
        .on_high_water_mark(HWM, move |c, queued| {
            assert!(queued >= HWM);
            h1.fetch_add(1, Ordering::Relaxed);
            c.context_mut::<Producer>().unwrap().paused = true;
        })
        .on_write_complete(move |c| {
            c.context_mut::<Producer>().unwrap().paused = false;
            produce(c, &m2);
        });
    let server = start_server_with("127.0.0.1:0", config, callbacks);
    let mut s = client(server.tcp_addr());
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0usize;
    let mut next_pause = 0usize;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        let start = total % 251;
        let ok = buf[..n].iter().zip(PATTERN.iter().cycle().skip(start)).all(|(a, b)| a == b);
        assert!(ok, "bytes corrupted in {}..{}", total, total + n);
        total += n;
        // Be a slow reader (about 64 KiB per ms at most), so the server's
        // output must back up past the high-water mark.
        if total >= next_pause {
            next_pause += 256 * 1024;
            std::thread::sleep(Duration::from_millis(4));
        }
    }
    assert_eq!(total, TOTAL);
    let max = max_out.load(Ordering::Relaxed);
    assert!(max < HWM + CHUNK, "output buffer reached {max} bytes");
    assert!(hwm_hits.load(Ordering::Relaxed) > 0, "high-water mark never reached");
}

#[test]
fn slow_reader_single_reactor() {
    slow_reader_high_water_mark_bounds_output(ServerConfig::default());
}

#[test]
fn slow_reader_four_sub_loops() {
    slow_reader_high_water_mark_bounds_output(ServerConfig { threads: 4, ..ServerConfig::default() });
}

#[test]
fn slow_reader_poll_backend() {
    slow_reader_high_water_mark_bounds_output(ServerConfig { poller: PollerKind::Poll, ..ServerConfig::default() });
}

#[test]
fn echo_with_send_buffer_and_read_backpressure() {
    send_buffer_and_read_backpressure(ServerConfig { threads: 1, ..ServerConfig::default() });
}

#[test]
fn echo_with_read_backpressure_poll_backend() {
    send_buffer_and_read_backpressure(ServerConfig { threads: 1, poller: PollerKind::Poll, ..ServerConfig::default() });
}

fn send_buffer_and_read_backpressure(config: ServerConfig) {
    // The echo example's callbacks: zero-copy hand-off of the input buffer,
    // stop reading while a reply is queued, resume when it drained.
    let callbacks = Callbacks::new()
        .on_message(|c, buf| {
            c.send_buffer(buf);
            assert!(buf.is_empty());
            if c.has_pending_output() {
                c.pause_reading();
            }
        })
        .on_write_complete(|c| c.resume_reading());
    let server = start_server_with("127.0.0.1:0", config, callbacks);
    let mut s = client(server.tcp_addr());
    let data = Rng::new(11).bytes(16 * 1024 * 1024);
    let mut w = s.try_clone().unwrap();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&d2).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    // Read slowly at first so the server's output backs up.
    std::thread::sleep(Duration::from_millis(50));
    let mut got = Vec::with_capacity(data.len());
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data);
    run_echo_clients(server.tcp_addr(), 50, 20, 128 * 1024);
}

/// A producer that refills from write-complete (every small send completes
/// at once, so write-complete is due after every callback) must take turns
/// with the other connections of its loop, not hold the loop.
#[test]
fn producer_refilling_from_write_complete_does_not_starve_its_loop() {
    let refills = Arc::new(AtomicUsize::new(0));
    let r2 = refills.clone();
    let callbacks = Callbacks::new()
        .on_message(|c, buf| {
            if buf.peek() == b"produce" {
                c.set_context(());
                c.send(b"0123456789abcdef");
            } else {
                c.send(buf.peek());
            }
            buf.consume_all();
        })
        .on_write_complete(move |c| {
            if c.context::<()>().is_some() {
                r2.fetch_add(1, Ordering::Relaxed);
                c.send(b"0123456789abcdef");
            }
        });
    // One loop: the producer and the echo client share it.
    let server = start_server("127.0.0.1:0", 0, PollerKind::Epoll, callbacks);
    let mut producer = client(server.tcp_addr());
    producer.write_all(b"produce").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        while !stop2.load(Ordering::Relaxed) {
            match producer.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => panic!("producer read: {e}"),
            }
        }
        total
    });
    wait_until("the producer to start", || refills.load(Ordering::Relaxed) > 1000);
    let mut echo = client(server.tcp_addr());
    echo.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for i in 0..200u32 {
        let msg = i.to_be_bytes();
        echo.write_all(&msg).unwrap();
        let mut got = [0u8; 4];
        if let Err(e) = echo.read_exact(&mut got) {
            // The loop is stuck in the producer: joining it would hang.
            std::mem::forget(server);
            panic!("echo starved while the producer ran: {e}");
        }
        assert_eq!(got, msg);
    }
    stop.store(true, Ordering::Relaxed);
    let produced = drain.join().unwrap();
    assert!(produced >= 16 * 1000, "producer moved only {produced} bytes");
}
