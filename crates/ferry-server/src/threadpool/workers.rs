//! The worker threads and the bookkeeping the shutdown sequence needs:
//! how many workers are alive, and which connections they are serving (so
//! the ones still running at the drain timeout can be cut).

use std::net::{Shutdown as How, SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::blocking::{PumpConfig, serve_connection};
use crate::task_queue::TaskQueue;
use crate::{Service, Shutdown};
use ferry_reactor::Waker;

/// An accepted connection waiting in the queue for a worker.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) service: Arc<Service>,
    pub(super) pump: PumpConfig,
}

/// Everything the accept loop and the workers share.
pub(super) struct Shared {
    pub(super) queue: TaskQueue<Conn>,
    /// Made readable by a worker each time it takes a task, so an accept
    /// loop that stopped accepting on a full queue resumes.
    pub(super) room: Waker,
    pub(super) tracker: Tracker,
    pub(super) shutdown: Shutdown,
}

/// Live workers and the connections they are serving, under one lock.
pub(super) struct Tracker {
    state: Mutex<TrackerState>,
    /// Signalled when a worker exits.
    exited: Condvar,
}

struct TrackerState {
    live_workers: usize,
    /// Per worker: a second handle on the socket it is serving.
    serving: Vec<Option<TcpStream>>,
    served: u64,
}

impl Tracker {
    pub(super) fn new(workers: usize) -> Tracker {
        Tracker {
            state: Mutex::new(TrackerState {
                live_workers: 0,
                serving: (0..workers).map(|_| None).collect(),
                served: 0,
            }),
            exited: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TrackerState> {
        // Nothing panics under this lock; the state stays consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections served to completion (or cut) so far.
    pub(super) fn served(&self) -> u64 {
        self.lock().served
    }

    /// Waits until every worker has exited or `timeout` passes (a timeout
    /// too large to represent waits for good); returns how many are still
    /// alive.
    pub(super) fn wait_for_workers(&self, timeout: Duration) -> usize {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        while state.live_workers > 0 {
            state = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.exited.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0
                }
                None => self.exited.wait(state).unwrap_or_else(PoisonError::into_inner),
            };
        }
        state.live_workers
    }

    /// Shuts down (both directions) every connection still being served,
    /// which makes the workers' blocked sends and receives fail at once.
    /// Returns how many were cut.
    pub(super) fn cut_all(&self) -> usize {
        let state = self.lock();
        let mut cut = 0;
        for stream in state.serving.iter().flatten() {
            if stream.shutdown(How::Both).is_ok() {
                cut += 1;
            }
        }
        cut
    }
}

/// Decrements the live-worker count however the worker ends.
struct LiveGuard<'a>(&'a Tracker);

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.live_workers -= 1;
        drop(state);
        self.0.exited.notify_all();
    }
}

/// Starts worker `id`, which serves queued connections one at a time until
/// the queue is closed.
pub(super) fn spawn(id: usize, shared: &Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    shared.tracker.lock().live_workers += 1;
    let worker_shared = Arc::clone(shared);
    let spawned = thread::Builder::new().name(format!("ferry-worker-{id}")).spawn(move || {
        let shared = worker_shared;
        let _live = LiveGuard(&shared.tracker);
        while let Some(conn) = shared.queue.pop() {
            if let Err(e) = shared.room.wake() {
                tracing::error!("worker {id}: cannot wake the accept loop: {e}");
            }
            serve_one(id, &shared, conn);
        }
    });
    if spawned.is_err() {
        shared.tracker.lock().live_workers -= 1;
    }
    spawned
}

fn serve_one(id: usize, shared: &Shared, conn: Conn) {
    let Conn { stream, peer, service, pump } = conn;
    shared.tracker.lock().serving[id] = stream.try_clone().ok();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut session = service.new_session();
        serve_connection(stream, &mut *session, &pump, &shared.shutdown);
    }));
    if outcome.is_err() {
        // A bug in a session must not shrink the pool; the socket was
        // dropped while unwinding.
        tracing::error!("worker {id}: {} session for {peer} panicked; connection dropped", service.name());
    }
    let mut state = shared.tracker.lock();
    state.serving[id] = None;
    state.served += 1;
}
