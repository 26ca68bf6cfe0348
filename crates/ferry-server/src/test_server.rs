//! The in-process test harness the event-driven models' tests share: a
//! server running on its own thread over loopback, stopped (bounded) at
//! the end, and the small helpers those tests use.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{BoundListener, ListenerConfig, PumpConfig, Report, ServerError, Service, Shutdown};

/// Upper bound for anything these tests wait on.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// A bound server running `run` on a thread of its own.
pub(crate) struct Running {
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) shutdown: Shutdown,
    thread: Option<JoinHandle<Result<Report, ServerError>>>,
}

impl Running {
    /// Runs a server bound on `listeners`, stopped through `shutdown`.
    pub(crate) fn spawn(
        listeners: &[BoundListener],
        shutdown: Shutdown,
        run: impl FnOnce() -> Result<Report, ServerError> + Send + 'static,
    ) -> Running {
        let addrs = listeners.iter().map(|l| l.addr.as_tcp().expect("tcp")).collect();
        Running { addrs, shutdown, thread: Some(std::thread::spawn(run)) }
    }

    /// A client of listener `i`, with a read timeout.
    pub(crate) fn connect(&self, i: usize) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addrs[i], PATIENCE).expect("connect");
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        s
    }

    /// Signals shutdown and waits (bounded) for `run` to return.
    pub(crate) fn stop(&mut self) -> Report {
        self.shutdown.signal();
        let thread = self.thread.take().expect("running");
        let deadline = Instant::now() + PATIENCE;
        while !thread.is_finished() {
            assert!(Instant::now() < deadline, "server did not stop within {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        thread.join().expect("server thread").expect("run")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown.signal();
        }
    }
}

/// An echo listener on `addr` with idle timeout `idle`.
pub(crate) fn echo(addr: &str, idle: Duration) -> ListenerConfig {
    ListenerConfig {
        pump: PumpConfig::with_idle(idle),
        ..ListenerConfig::new(addr.parse().expect("addr"), Service::Echo)
    }
}

/// True if the server closed `s` (end of stream or reset).
pub(crate) fn is_closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 16];
    matches!(s.read(&mut b), Ok(0))
        || matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}
