//! A pool of threads, each running its own [`EventLoop`] (the sub-reactors
//! of a multi-reactor server).

use std::io;
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};

use crate::event_loop::{EventLoop, LoopHandle};
use crate::poller::PollerKind;

/// N loop threads. Owned by one thread (the main loop's); hand out
/// [`LoopHandle`]s, which are `Send`. Dropping the pool quits every loop and
/// joins its thread.
#[derive(Debug)]
pub struct LoopThreadPool {
    handles: Vec<LoopHandle>,
    threads: Vec<JoinHandle<()>>,
    next: usize,
}

impl LoopThreadPool {
    /// Starts `n` threads named `{name}-{i}`, each creating a loop with a
    /// `kind` backend; returns once every loop exists.
    pub fn new(n: usize, kind: PollerKind, name: &str) -> io::Result<LoopThreadPool> {
        LoopThreadPool::with_init(n, kind, name, |_| {})
    }

    /// [`new`](Self::new), and `init` runs on each loop's thread with the
    /// fresh loop before it starts (loop settings, thread-local set-up).
    pub fn with_init(
        n: usize,
        kind: PollerKind,
        name: &str,
        init: impl Fn(&mut EventLoop) + Send + Sync + 'static,
    ) -> io::Result<LoopThreadPool> {
        let init = Arc::new(init);
        let mut pool = LoopThreadPool { handles: Vec::with_capacity(n), threads: Vec::with_capacity(n), next: 0 };
        for i in 0..n {
            let (tx, rx) = mpsc::channel::<io::Result<LoopHandle>>();
            let init = Arc::clone(&init);
            let thread = thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                let mut lp = match EventLoop::new(kind) {
                    Ok(lp) => lp,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                init(&mut lp);
                if tx.send(Ok(lp.handle())).is_err() {
                    return;
                }
                if let Err(e) = lp.run() {
                    tracing::error!(error = %e, "sub-loop failed");
                }
            })?;
            pool.threads.push(thread);
            match rx.recv() {
                Ok(Ok(h)) => pool.handles.push(h),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("loop thread died while starting")),
            }
        }
        Ok(pool)
    }

    /// Number of loops.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// True if the pool has no loops (single-reactor mode).
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The next loop, round-robin; `None` for an empty pool.
    pub fn next_loop(&mut self) -> Option<LoopHandle> {
        if self.handles.is_empty() {
            return None;
        }
        let h = self.handles[self.next % self.handles.len()].clone();
        self.next = self.next.wrapping_add(1);
        Some(h)
    }

    /// Every loop's handle.
    pub fn handles(&self) -> &[LoopHandle] {
        &self.handles
    }

    /// Asks every loop to quit and waits for the threads. Idempotent.
    pub fn quit_and_join(&mut self) {
        for h in &self.handles {
            h.quit();
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a loop thread panicked");
            }
        }
    }
}

impl Drop for LoopThreadPool {
    fn drop(&mut self) {
        self.quit_and_join();
    }
}
