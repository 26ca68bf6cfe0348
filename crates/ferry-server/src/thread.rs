//! The thread-per-connection model: the calling thread accepts and spawns
//! one thread per connection, at most `max_conns` at once. At the cap the
//! listeners leave the poll set, so the kernel's backlog holds new clients
//! until a connection ends (its thread makes the "room" eventfd readable).
//! Every thread is joined, finished ones as the server goes and the rest at
//! shutdown.

use std::collections::HashMap;
use std::net::{Shutdown as How, TcpStream};
use std::os::fd::AsFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_reactor::Waker;
use nix::sys::signal::Signal;

use crate::listen::{Base, Listener, accept_one, poll_readable};
use crate::second_signal::SecondSignal;
use crate::threadpool::RunReport;
use crate::{ServerError, Shutdown, serve_connection};

/// How long threads get to notice their connections were cut after the
/// drain timeout before they are left behind.
const CUT_GRACE: Duration = Duration::from_secs(2);

/// The live connections, shared by the accept loop and the threads.
struct Live {
    state: Mutex<State>,
    /// Signalled when a connection thread ends.
    ended: Condvar,
    /// Readable after a connection ended, so a loop waiting at the cap wakes.
    room: Waker,
}

struct State {
    /// A second handle on each connection being served, by id.
    serving: HashMap<u64, Option<TcpStream>>,
    next_id: u64,
    served: u64,
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics under this lock; the state stays consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self) -> usize {
        self.lock().serving.len()
    }

    /// Shuts down every connection being served (their threads then see
    /// errors and end); returns how many.
    fn cut_all(&self) -> usize {
        self.lock().serving.values().flatten().filter(|stream| stream.shutdown(How::Both).is_ok()).count()
    }

    /// Waits until no connection is served or `timeout` passes (one too
    /// large to represent waits for good); returns how many are left.
    fn wait_empty(&self, timeout: Duration) -> usize {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        while !state.serving.is_empty() {
            state = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.ended.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0
                }
                None => self.ended.wait(state).unwrap_or_else(PoisonError::into_inner),
            };
        }
        state.serving.len()
    }
}

/// Accepts and spawns a thread per connection until shutdown, then drains.
pub(crate) fn run(mut base: Base, max_conns: usize, drain_timeout: Duration) -> Result<RunReport, ServerError> {
    let live = Arc::new(Live {
        state: Mutex::new(State { serving: HashMap::new(), next_id: 0, served: 0 }),
        ended: Condvar::new(),
        room: Waker::new().map_err(ServerError::setup("create the accept loop's wake-up eventfd"))?,
    });
    tracing::info!(
        "thread per connection: at most {max_conns} at once, drain timeout {}s",
        drain_timeout.as_secs_f64()
    );
    let mut handles = Vec::new();
    let stopped = accept_loop(&mut base, &live, max_conns, &mut handles);
    let signal = base.begin_shutdown(&stopped);
    let second = SecondSignal::watch(base.signals.take(), {
        let live = Arc::clone(&live);
        move || live.cut_all()
    });
    let mut left = live.wait_empty(drain_timeout);
    let mut cut = second.finish();
    if left > 0 {
        cut += live.cut_all();
        tracing::warn!(
            "drain timeout of {}s passed; cut {cut} connection(s) still in flight",
            drain_timeout.as_secs_f64()
        );
        left = live.wait_empty(CUT_GRACE);
    }
    for handle in handles {
        if left == 0 || handle.is_finished() {
            if handle.join().is_err() {
                tracing::error!("a connection thread panicked");
            }
        } else {
            tracing::warn!("leaving a connection thread behind that did not exit");
        }
    }
    let served = live.lock().served;
    stopped.map(|_| RunReport { signal, served, dropped_unserved: 0, cut, workers_left_behind: left })
}

/// Returns the stopping signal (or `None` for a shutdown request).
fn accept_loop(
    base: &mut Base,
    live: &Arc<Live>,
    max_conns: usize,
    handles: &mut Vec<JoinHandle<()>>,
) -> Result<Option<Signal>, ServerError> {
    loop {
        let mut full = live.count() >= max_conns;
        if full {
            // Reset before re-checking, so a thread ending after the check
            // still wakes the poll below.
            live.room.drain().map_err(ServerError::setup("reset the accept loop's wake-up eventfd"))?;
            full = live.count() >= max_conns;
        }
        let ready = {
            let mut fds = vec![base.shutdown.as_fd()];
            fds.extend(base.signals.as_ref().map(|s| s.as_fd()));
            if full {
                fds.push(live.room.as_fd());
            } else {
                fds.extend(base.listeners.iter().map(|l| l.socket.as_fd()));
            }
            poll_readable(&fds, None)?
        };
        if ready[0] {
            return Ok(None);
        }
        if base.signals.is_some()
            && ready[1]
            && let (Some(signal), _) = base.read_signals()?
        {
            return Ok(Some(signal));
        }
        join_finished(handles);
        if full {
            continue;
        }
        let first = 1 + usize::from(base.signals.is_some());
        for (listener, _) in base.listeners.iter().zip(&ready[first..]).filter(|(_, r)| **r) {
            while live.count() < max_conns {
                let Some((stream, _peer)) = accept_one(listener) else { break };
                if let Some(handle) = spawn(listener, stream, live, &base.shutdown) {
                    handles.push(handle);
                }
            }
        }
    }
}

/// Joins the threads whose connections ended.
fn join_finished(handles: &mut Vec<JoinHandle<()>>) {
    let (finished, running): (Vec<_>, Vec<_>) = std::mem::take(handles).into_iter().partition(|h| h.is_finished());
    *handles = running;
    for handle in finished {
        if handle.join().is_err() {
            tracing::error!("a connection thread panicked");
        }
    }
}

/// Starts the thread serving `stream`; on failure the connection is dropped.
fn spawn(listener: &Listener, stream: TcpStream, live: &Arc<Live>, shutdown: &Shutdown) -> Option<JoinHandle<()>> {
    let id = {
        let mut state = live.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.serving.insert(id, stream.try_clone().ok());
        id
    };
    let service = Arc::clone(&listener.service);
    let pump = listener.pump;
    let thread_live = Arc::clone(live);
    let shutdown = shutdown.clone();
    let spawned = std::thread::Builder::new().name(format!("ferry-conn-{id}")).spawn(move || {
        let live = thread_live;
        let _end = EndGuard { live: &live, id };
        let mut session = service.new_session();
        serve_connection(stream, &mut *session, &pump, &shutdown);
    });
    match spawned {
        Ok(handle) => Some(handle),
        Err(e) => {
            live.lock().serving.remove(&id);
            tracing::warn!("cannot spawn a connection thread: {e}; dropping the connection");
            None
        }
    }
}

/// Takes the connection off the live list however its thread ends.
struct EndGuard<'a> {
    live: &'a Live,
    id: u64,
}

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.live.lock();
        state.serving.remove(&self.id);
        state.served += 1;
        drop(state);
        self.live.ended.notify_all();
        if let Err(e) = self.live.room.wake() {
            tracing::error!("cannot wake the accept loop: {e}");
        }
    }
}
