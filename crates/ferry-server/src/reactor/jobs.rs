//! The worker threads that run sessions' blocking jobs (hashing a whole
//! file for `sum`, listing a directory (`ls`, HTTP index pages), the fsyncs
//! that finish an upload)
//! for the event loops,
//! so one connection's slow request does not stall every other connection
//! on its loop. Each job posts its answer back to its connection's loop.
//!
//! Workers start on demand, up to [`MAX_WORKERS`], from the first job on:
//! a server that never runs a job has no extra threads, and none exist yet
//! when `--daemon` forks after binding. The queue is the thread pool's
//! bounded [`TaskQueue`]; when it is full (thousands of jobs waiting) or
//! closed, the caller runs the job itself, which is slow but correct.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::task_queue::{PushError, TaskQueue};

/// Most worker threads: jobs are disk- or hash-bound, a few suffice.
pub(crate) const MAX_WORKERS: usize = 4;

/// Most jobs waiting for a worker.
const QUEUE: usize = 4096;

/// A job with its delivery: runs on a worker, ends by posting to a loop.
pub(crate) type Task = Box<dyn FnOnce() + Send>;

/// The job workers of one reactor server.
pub(crate) struct JobPool {
    queue: Arc<TaskQueue<Task>>,
    /// The workers started so far; `None` once closed.
    workers: Mutex<Option<Vec<JoinHandle<()>>>>,
}

impl JobPool {
    /// A pool with no thread yet.
    pub(crate) fn new() -> JobPool {
        JobPool { queue: Arc::new(TaskQueue::new(QUEUE)), workers: Mutex::new(Some(Vec::new())) }
    }

    /// Queues `task` for a worker, starting one if fewer than
    /// [`MAX_WORKERS`] run. Hands the task back if it cannot be queued (the
    /// caller then runs it itself).
    pub(crate) fn submit(&self, task: Task) -> Result<(), Task> {
        self.grow();
        self.queue.try_push(task).map_err(|e| match e {
            PushError::Full(task) | PushError::Closed(task) => task,
        })
    }

    fn grow(&self) {
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(workers) = workers.as_mut() else { return };
        if workers.len() >= MAX_WORKERS {
            return;
        }
        let queue = Arc::clone(&self.queue);
        let spawned = std::thread::Builder::new().name("ferry-job".into()).spawn(move || {
            while let Some(task) = queue.pop() {
                task();
            }
        });
        match spawned {
            Ok(handle) => workers.push(handle),
            // Jobs still run: on the workers there are, or on the caller.
            Err(e) => tracing::warn!("cannot start a job worker thread: {e}"),
        }
    }

    /// Stops taking jobs and drops the ones not started (their connections
    /// are closing). Workers finish the job in hand and exit; one still
    /// hashing a huge file is not waited for.
    pub(crate) fn close(&self) {
        drop(self.queue.close());
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner).take();
        for handle in workers.into_iter().flatten() {
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn jobs_run_on_worker_threads_and_a_closed_pool_hands_them_back() {
        let pool = JobPool::new();
        let (tx, rx) = mpsc::channel();
        for _ in 0..MAX_WORKERS + 2 {
            let tx = tx.clone();
            let task: Task = Box::new(move || {
                let _ = tx.send(std::thread::current().name().map(str::to_owned));
            });
            assert!(pool.submit(task).is_ok(), "an open pool takes jobs");
        }
        for _ in 0..MAX_WORKERS + 2 {
            let ran_on = rx.recv_timeout(Duration::from_secs(10)).expect("the job ran");
            assert_eq!(ran_on.as_deref(), Some("ferry-job"));
        }
        let started = pool.workers.lock().unwrap().as_ref().map_or(0, Vec::len);
        assert!(started <= MAX_WORKERS, "{started} workers, at most {MAX_WORKERS}");
        pool.close();
        let task: Task = Box::new(|| {});
        assert!(pool.submit(task).is_err(), "a closed pool hands the job back to run it yourself");
        assert!(pool.workers.lock().unwrap().is_none(), "no worker started after close");
    }
}
