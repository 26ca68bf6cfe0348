//! The worker threads that run sessions' blocking jobs (hashing a whole
//! file for `sum`, the fsyncs that finish an upload) for the event loops,
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
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl JobPool {
    /// A pool with no thread yet.
    pub(crate) fn new() -> JobPool {
        JobPool { queue: Arc::new(TaskQueue::new(QUEUE)), workers: Mutex::new(Vec::new()) }
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
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in workers {
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }
}
