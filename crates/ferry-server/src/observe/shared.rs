//! The counters every process of a server adds to: one anonymous
//! `MAP_SHARED` mapping made before anything forks, so the workers of the
//! process models (fork, prefork) count into the same memory as the
//! parent and the metrics process reads it, with no messages and no lock
//! (relaxed atomic adds; a scrape may see one request's counters half
//! added, which Prometheus tolerates).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Services counted apart, in this order (`Service::name`).
pub(crate) const SERVICES: [&str; 3] = ["http", "files", "echo"];

/// Upper bounds (seconds) of the duration histograms' buckets (+Inf is
/// the count).
pub(crate) const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0, 300.0];

/// A request whose payload reaches this many bytes is also a transfer
/// (`ferry_transfer_duration_seconds`).
pub(crate) const TRANSFER_BYTES: u64 = 1 << 20;

/// A histogram of durations: cumulative-free buckets (the renderer sums
/// them), a sum in microseconds and a count.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Histogram {
    pub(crate) buckets: [AtomicU64; BUCKETS.len()],
    pub(crate) sum_micros: AtomicU64,
    pub(crate) count: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_micros.fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

/// One service's counters.
#[repr(C)]
#[derive(Default)]
pub(crate) struct PerService {
    pub(crate) open: AtomicU64,
    pub(crate) total: AtomicU64,
    /// Requests by status class: index 1..=5 for 1xx..5xx, 0 for none.
    pub(crate) by_class: [AtomicU64; 6],
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) requests: Histogram,
    pub(crate) transfers: Histogram,
}

/// Everything shared between a server's processes.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) services: [PerService; SERVICES.len()],
    /// Bumped on SIGUSR1: every process's access log reopens its file
    /// when it sees a number it has not seen.
    pub(crate) reopen: AtomicU64,
    /// 1 once the server began draining (`/healthz` answers 503).
    pub(crate) draining: AtomicU64,
    /// Worker pool gauges (threadpool, prefork): busy workers, all workers,
    /// connections waiting in the queue.
    pub(crate) workers_busy: AtomicU64,
    pub(crate) workers: AtomicU64,
    pub(crate) queued: AtomicU64,
}

impl Shared {
    /// A zeroed `Shared` in an anonymous shared mapping that lives as long
    /// as the process (and is inherited by every child it forks).
    pub(crate) fn map() -> std::io::Result<&'static Shared> {
        let len = size_of::<Shared>();
        // SAFETY: a fresh anonymous mapping aliases no Rust memory; it is
        // zero-filled, and all-zero bytes are a valid `Shared` (only
        // atomics, repr(C)); it is never unmapped, so `'static` holds;
        // atomics make sharing it between threads and processes sound.
        unsafe {
            let ptr = rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
            )?;
            Ok(&*(ptr as *const Shared))
        }
    }

    /// The counters of the service called `name`.
    pub(crate) fn service(&self, name: &str) -> &PerService {
        let i = SERVICES.iter().position(|&s| s == name).unwrap_or(0);
        &self.services[i]
    }
}

impl PerService {
    /// Counts one finished request.
    pub(crate) fn request(&self, status: u16, bytes_in: u64, bytes_out: u64, took: Duration) {
        let class = usize::from(status / 100);
        self.by_class[if (1..=5).contains(&class) { class } else { 0 }].fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(bytes_in, Relaxed);
        self.bytes_out.fetch_add(bytes_out, Relaxed);
        self.requests.observe(took);
        if bytes_in.max(bytes_out) >= TRANSFER_BYTES {
            self.transfers.observe(took);
        }
    }
}
