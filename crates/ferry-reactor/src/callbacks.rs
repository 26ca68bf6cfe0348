//! The callbacks a [`TcpConnection`] reports to.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::buffer::Buffer;
use crate::connection::TcpConnection;

/// Called with the connection: connected, write-complete, half-closed, closed.
pub(crate) type ConnCallback = Arc<dyn Fn(&mut TcpConnection<'_>) + Send + Sync>;
/// Called with the connection and its input buffer; consume what you use.
pub(crate) type MessageCallback = Arc<dyn Fn(&mut TcpConnection<'_>, &mut Buffer) + Send + Sync>;
/// Called with the connection and the bytes now queued in its output.
pub(crate) type HighWaterCallback = Arc<dyn Fn(&mut TcpConnection<'_>, usize) + Send + Sync>;

/// Called when a non-blocking connect fails, with the error.
pub(crate) type ConnectFailedCallback = Arc<dyn Fn(&mut TcpConnection<'_>, io::Error) + Send + Sync>;

/// Default high-water mark: 64 MiB of queued output (muduo's default).
pub(crate) const DEFAULT_HIGH_WATER_MARK: usize = 64 * 1024 * 1024;

/// The set of callbacks a connection reports to, shared by every connection
/// of a server (so `Clone` is cheap: `Arc`s) and `Send + Sync`, because a
/// multi-reactor server calls them from every sub-loop thread. Per-connection
/// state goes in the connection's context
/// ([`TcpConnection::set_context`]).
///
/// All callbacks run on the connection's loop thread, never concurrently for
/// one connection.
///
/// One pointer wide: every connection keeps a clone, so 10,000 idle
/// connections share one set instead of holding 10,000 copies of it.
#[derive(Clone, Default)]
pub struct Callbacks {
    set: Arc<CallbackSet>,
}

/// The callbacks themselves, behind the `Arc` of [`Callbacks`]; opaque
/// (set them through the `Callbacks` builder methods).
#[derive(Clone)]
pub struct CallbackSet {
    pub(crate) connected: Option<ConnCallback>,
    pub(crate) message: Option<MessageCallback>,
    pub(crate) write_complete: Option<ConnCallback>,
    pub(crate) high_water: Option<HighWaterCallback>,
    pub(crate) high_water_mark: usize,
    pub(crate) half_closed: Option<ConnCallback>,
    pub(crate) closed: Option<ConnCallback>,
    pub(crate) connect_failed: Option<ConnectFailedCallback>,
}

impl std::ops::Deref for Callbacks {
    type Target = CallbackSet;
    fn deref(&self) -> &CallbackSet {
        &self.set
    }
}

impl Default for CallbackSet {
    fn default() -> Self {
        CallbackSet {
            connected: None,
            message: None,
            write_complete: None,
            high_water: None,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            half_closed: None,
            closed: None,
            connect_failed: None,
        }
    }
}

impl fmt::Debug for CallbackSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("connected", &self.connected.is_some())
            .field("message", &self.message.is_some())
            .field("write_complete", &self.write_complete.is_some())
            .field("high_water", &self.high_water.is_some())
            .field("high_water_mark", &self.high_water_mark)
            .field("half_closed", &self.half_closed.is_some())
            .field("closed", &self.closed.is_some())
            .field("connect_failed", &self.connect_failed.is_some())
            .finish()
    }
}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.set.fmt(f)
    }
}

impl Callbacks {
    /// No callbacks: input is discarded, nothing is reported.
    pub fn new() -> Callbacks {
        Callbacks::default()
    }

    /// The connection is established and registered; runs first.
    pub fn on_connected(mut self, f: impl Fn(&mut TcpConnection<'_>) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.set).connected = Some(Arc::new(f));
        self
    }

    /// Bytes arrived. Consume complete messages from the buffer and leave
    /// partial ones; what is left is kept for the next call. Without a
    /// message callback input is discarded.
    pub fn on_message(mut self, f: impl Fn(&mut TcpConnection<'_>, &mut Buffer) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.set).message = Some(Arc::new(f));
        self
    }

    /// All queued output reached the kernel. Never runs re-entrantly from
    /// `send`: when a send from a callback completes at once it is queued to
    /// run after that callback; when queued output drains on a writable
    /// event it runs right then. A producer may send more from it.
    pub fn on_write_complete(mut self, f: impl Fn(&mut TcpConnection<'_>) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.set).write_complete = Some(Arc::new(f));
        self
    }

    /// Queued output crossed `mark` bytes (from below). Called synchronously
    /// from the `send` that crossed it, so a producing loop sees it at once;
    /// stop producing and resume from write-complete.
    pub fn on_high_water_mark(
        mut self,
        mark: usize,
        f: impl Fn(&mut TcpConnection<'_>, usize) + Send + Sync + 'static,
    ) -> Self {
        Arc::make_mut(&mut self.set).high_water_mark = mark;
        Arc::make_mut(&mut self.set).high_water = Some(Arc::new(f));
        self
    }

    /// The peer half-closed (sent FIN; reads return EOF). The connection stays
    /// open for writing; call [`TcpConnection::shutdown`] when done. Without
    /// this callback the connection shuts down (after flushing) by itself.
    pub fn on_half_closed(mut self, f: impl Fn(&mut TcpConnection<'_>) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.set).half_closed = Some(Arc::new(f));
        self
    }

    /// The connection is closing; runs last, once. Sending is no longer
    /// possible. The connection is freed right after it returns.
    pub fn on_closed(mut self, f: impl Fn(&mut TcpConnection<'_>) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.set).closed = Some(Arc::new(f));
        self
    }

    /// A connection started with [`connect_nonblocking`](crate::connection::connect_nonblocking)
    /// could not be established (refused, unreachable, ...). Runs instead of
    /// `connected` (and `closed`); the connection is freed right after.
    pub fn on_connect_failed(mut self, f: impl Fn(&mut TcpConnection<'_>, io::Error) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.set).connect_failed = Some(Arc::new(f));
        self
    }
}
