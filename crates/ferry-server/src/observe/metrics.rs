//! `--metrics ADDR`: Prometheus text at `/metrics` and a health check at
//! `/healthz` (200, or 503 once the server drains, so a load balancer stops
//! sending before the listeners close).
//!
//! Served by a process of its own, forked at start-up: the parents of the
//! process models must stay single-threaded to fork safely, so no model
//! can host a metrics thread in every case, while one small process can
//! read the shared counters ([`super::shared`]) of all of them the same
//! way. It answers one connection at a time with blocking calls (a scrape
//! is a few kilobytes), and dies with the server (`PR_SET_PDEATHSIG`).

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use ferry_proto::files::partials::Partials;
use nix::unistd::ForkResult;

use super::shared::{BUCKETS, Histogram, SERVICES, Shared};
use crate::ServerError;
use crate::children::{fork_process, run_child};

/// How long a metrics client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// What the metrics process reads.
struct Source {
    shared: &'static Shared,
    model: String,
    partials: Vec<Arc<Partials>>,
}

/// The metrics process (0: none).
static PROCESS: AtomicI32 = AtomicI32::new(0);

/// Ends the metrics process: an upgrade handed the metrics socket to the
/// new binary, whose own metrics process answers there from now on (this
/// one would say 503, draining, to half the health checks).
pub(super) fn stop() {
    let pid = PROCESS.swap(0, Ordering::SeqCst);
    if pid > 0
        && let Err(e) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
    {
        tracing::warn!("metrics: cannot stop the metrics process {pid}: {e}");
    }
}

/// Forks the metrics process, serving `listener` until the server exits.
pub(super) fn spawn(
    listener: TcpListener,
    shared: &'static Shared,
    model: &str,
    partials: Vec<Arc<Partials>>,
) -> Result<(), ServerError> {
    let source = Source { shared, model: model.to_string(), partials };
    match fork_process()? {
        ForkResult::Parent { child } => {
            PROCESS.store(child.as_raw(), Ordering::SeqCst);
            Ok(())
        }
        ForkResult::Child => run_child(move || {
            let parent = nix::unistd::getppid();
            if let Err(e) = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)) {
                tracing::error!("metrics: cannot follow the server's exit: {e}");
                return 1;
            }
            if nix::unistd::getppid() != parent {
                return 0;
            }
            close_all_but(listener.as_raw_fd());
            serve(&listener, &source);
            0
        }),
    }
}

/// Closes every descriptor above standard error except `keep`: the
/// service listeners must close when the server closes them, not live on
/// here.
fn close_all_but(keep: i32) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<i32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    for fd in fds {
        if fd > 2 && fd != keep {
            // SAFETY: this single-threaded child owns every descriptor it
            // inherited and uses none of them but `keep` from now on
            // (the directory's own descriptor is already closed: its
            // close fails harmlessly with EBADF).
            drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        }
    }
}

fn serve(listener: &TcpListener, source: &Source) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(stream, source) {
                    tracing::debug!("metrics: {e}");
                }
            }
            // A socket handed over by an upgrade may have been made
            // non-blocking (by either process: they share it).
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fds = [rustix::event::PollFd::new(listener, rustix::event::PollFlags::IN)];
                if let Err(e) = rustix::event::poll(&mut fds, None)
                    && e != rustix::io::Errno::INTR
                {
                    tracing::error!("metrics: poll: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Err(e) => {
                tracing::error!("metrics: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn answer(mut stream: TcpStream, source: &Source) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || head.len() > 8192 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let head_only = method == b"HEAD";
    let (status, kind, body) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", render(source)),
        (b"GET" | b"HEAD", b"/healthz") if source.shared.draining.load(Relaxed) != 0 => {
            ("503 Service Unavailable", "text/plain", "draining\n".to_string())
        }
        (b"GET" | b"HEAD", b"/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        (b"GET" | b"HEAD", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "method not allowed\n".to_string()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(&body);
    }
    stream.write_all(out.as_bytes())
}

/// The Prometheus text exposition of the counters.
fn render(source: &Source) -> String {
    let s = source.shared;
    let model = &source.model;
    let mut t = String::new();
    let family = |t: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(t, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    let per_service = |t: &mut String, name: &str, value: &dyn Fn(usize) -> u64| {
        for (i, service) in SERVICES.iter().enumerate() {
            let _ = writeln!(t, "{name}{{service=\"{service}\",model=\"{model}\"}} {}", value(i));
        }
    };
    family(&mut t, "ferry_connections_open", "gauge", "Connections open now.");
    per_service(&mut t, "ferry_connections_open", &|i| s.services[i].open.load(Relaxed));
    family(&mut t, "ferry_connections_total", "counter", "Connections accepted.");
    per_service(&mut t, "ferry_connections_total", &|i| s.services[i].total.load(Relaxed));
    family(
        &mut t,
        "ferry_requests_total",
        "counter",
        "Requests answered (HTTP requests, file-protocol commands), by status class.",
    );
    for (i, service) in SERVICES.iter().enumerate() {
        for (c, class) in ["none", "1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            let n = s.services[i].by_class[c].load(Relaxed);
            let _ =
                writeln!(t, "ferry_requests_total{{service=\"{service}\",model=\"{model}\",class=\"{class}\"}} {n}");
        }
    }
    family(
        &mut t,
        "ferry_received_bytes_total",
        "counter",
        "Request bytes received (heads, command lines, upload payloads).",
    );
    per_service(&mut t, "ferry_received_bytes_total", &|i| s.services[i].bytes_in.load(Relaxed));
    family(&mut t, "ferry_sent_bytes_total", "counter", "Answer payload bytes sent (after HTTP heads and OK lines).");
    per_service(&mut t, "ferry_sent_bytes_total", &|i| s.services[i].bytes_out.load(Relaxed));
    family(
        &mut t,
        "ferry_request_duration_seconds",
        "histogram",
        "From reading a request to its answer reaching the kernel.",
    );
    for (i, service) in SERVICES.iter().enumerate() {
        histogram(&mut t, "ferry_request_duration_seconds", service, model, &s.services[i].requests);
    }
    family(
        &mut t,
        "ferry_transfer_duration_seconds",
        "histogram",
        "Duration of requests that moved at least 1 MiB of payload.",
    );
    for (i, service) in SERVICES.iter().enumerate() {
        histogram(&mut t, "ferry_transfer_duration_seconds", service, model, &s.services[i].transfers);
    }
    if matches!(model.as_str(), "threadpool" | "prefork") {
        let (busy, all) = (s.workers_busy.load(Relaxed), s.workers.load(Relaxed));
        family(&mut t, "ferry_workers", "gauge", "Workers of the pool, busy or free.");
        let _ = writeln!(t, "ferry_workers{{model=\"{model}\",state=\"busy\"}} {busy}");
        let _ = writeln!(t, "ferry_workers{{model=\"{model}\",state=\"free\"}} {}", all.saturating_sub(busy));
        family(&mut t, "ferry_queued_connections", "gauge", "Connections waiting for a worker.");
        let _ = writeln!(t, "ferry_queued_connections{{model=\"{model}\"}} {}", s.queued.load(Relaxed));
    }
    family(&mut t, "ferry_partial_uploads", "gauge", "Partial uploads kept for resuming.");
    let partials: usize = source.partials.iter().map(|p| p.count()).sum();
    let _ = writeln!(t, "ferry_partial_uploads {partials}");
    family(&mut t, "ferry_draining", "gauge", "1 while the server drains.");
    let _ = writeln!(t, "ferry_draining {}", s.draining.load(Relaxed));
    t
}

fn histogram(t: &mut String, name: &str, service: &str, model: &str, h: &Histogram) {
    let mut cumulative = 0;
    let count = h.count.load(Relaxed);
    for (i, bound) in BUCKETS.iter().enumerate() {
        cumulative += h.buckets[i].load(Relaxed);
        let _ = writeln!(
            t,
            "{name}_bucket{{service=\"{service}\",model=\"{model}\",le=\"{bound}\"}} {}",
            cumulative.min(count)
        );
    }
    let _ = writeln!(t, "{name}_bucket{{service=\"{service}\",model=\"{model}\",le=\"+Inf\"}} {count}");
    let sum = h.sum_micros.load(Relaxed) as f64 / 1e6;
    let _ = writeln!(t, "{name}_sum{{service=\"{service}\",model=\"{model}\"}} {sum}");
    let _ = writeln!(t, "{name}_count{{service=\"{service}\",model=\"{model}\"}} {count}");
}
