//! A prefork worker process: waits on its socketpair for a connection (a
//! descriptor passed with SCM_RIGHTS), serves it with the blocking pump,
//! reports "done", and waits again, until the parent says exit or goes
//! away.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_proto::Session;
use ferry_proto::http::FileCache;
use ferry_reactor::sys::fd_passing::{Received, recv_fd, send_fd};
use rustix::process::{Pid, Signal as PSignal, getppid, set_parent_process_death_signal, setpgid};

use super::frame::{DONE, TO_WORKER_LEN, ToWorker};
use crate::net::Stream;
use crate::{Service, Shutdown, serve_connection_since};
use ferry_proto::conn::ConnConfig;

/// What a worker serves: each listener's service and timeouts, by index.
pub(super) type Services = Vec<(Arc<Service>, Arc<ConnConfig>)>;

/// The worker's whole life; returns the exit status.
pub(super) fn run(socket: UnixStream, services: &Services, shutdown: &Shutdown, parent: Pid) -> i32 {
    let me = std::process::id();
    // Die with the parent; and if it already died before this line, leave.
    if let Err(e) = set_parent_process_death_signal(Some(PSignal::KILL)) {
        tracing::warn!("worker {me}: cannot ask to die with the parent: {e}");
    }
    if getppid() != Some(parent) {
        return 1;
    }
    // Its own process group: a Ctrl-C on the terminal reaches the parent
    // only, which then coordinates the exit.
    if let Err(e) = setpgid(None, None) {
        tracing::warn!("worker {me}: cannot move to its own process group: {e}");
    }
    let mut frame = [0u8; TO_WORKER_LEN];
    // The sessions this worker serves share its open-file cache.
    let cache = FileCache::new();
    loop {
        let fd = match recv_fd(&socket, &mut frame) {
            Ok(Received::Eof) => return 0,
            Ok(Received::Frame(fd)) => fd,
            Err(e) => {
                tracing::error!("worker {me}: cannot read from the parent: {e}");
                return 1;
            }
        };
        match (ToWorker::decode(&frame), fd) {
            (Some(ToWorker::Exit), _) => return 0,
            (Some(ToWorker::Conn { listener, peer, queued_ms }), Some(fd)) => {
                let Some((service, pump)) = services.get(usize::from(listener)) else {
                    tracing::error!("worker {me}: the parent named listener {listener}, which does not exist");
                    return 1;
                };
                tracing::info!("worker {me}: serving {} client {peer}", service.name());
                let queued = Duration::from_millis(u64::from(queued_ms));
                let accepted = Instant::now().checked_sub(queued).unwrap_or_else(Instant::now);
                serve(fd, service.new_session_in(&cache, Some(peer)), pump, shutdown, accepted);
                if let Err(e) = send_fd(&socket, None, &[DONE]) {
                    tracing::error!("worker {me}: cannot report back to the parent: {e}");
                    return 1;
                }
            }
            _ => {
                tracing::error!("worker {me}: malformed message from the parent");
                return 1;
            }
        }
    }
}

fn serve(
    fd: OwnedFd,
    mut session: Box<dyn Session + Send>,
    conn: &Arc<ConnConfig>,
    shutdown: &Shutdown,
    accepted: Instant,
) {
    let stream = Stream::from(fd);
    serve_connection_since(stream, &mut *session, conn, shutdown, accepted);
}
