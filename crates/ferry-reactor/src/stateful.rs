//! [`StatefulCallbacks`]: callbacks over a typed per-connection state.
//!
//! Most servers keep something per connection (a protocol session, a
//! parser). With plain [`Callbacks`] that lives in the connection's
//! context and every callback looks it up by type; here `on_connected`
//! makes the state and every later callback receives it beside the
//! connection, checked out for the call ([`TcpConnection::with_state`]), so
//! the state can drive the connection without borrowing conflicts and
//! without a downcast in user code.

use std::any::Any;
use std::sync::Arc;

use crate::buffer::Buffer;
use crate::callbacks::Callbacks;
use crate::connection::TcpConnection;

type Connected<C> = Arc<dyn Fn(&mut TcpConnection<'_>) -> C + Send + Sync>;
type WithState<C> = Arc<dyn Fn(&mut TcpConnection<'_>, &mut C) + Send + Sync>;
type Message<C> = Arc<dyn Fn(&mut TcpConnection<'_>, &mut C, &mut Buffer) + Send + Sync>;

/// A builder of [`Callbacks`] whose connections carry a state of type `C`.
/// Cheap to clone; `Send + Sync` like `Callbacks`.
pub struct StatefulCallbacks<C> {
    connected: Connected<C>,
    message: Option<Message<C>>,
    write_complete: Option<WithState<C>>,
    half_closed: Option<WithState<C>>,
    closed: Option<WithState<C>>,
}

impl<C> Clone for StatefulCallbacks<C> {
    fn clone(&self) -> Self {
        StatefulCallbacks {
            connected: Arc::clone(&self.connected),
            message: self.message.clone(),
            write_complete: self.write_complete.clone(),
            half_closed: self.half_closed.clone(),
            closed: self.closed.clone(),
        }
    }
}

impl<C: Any> StatefulCallbacks<C> {
    /// Connections start with the state `on_connected` returns (it may use
    /// the connection first: send a greeting, pause reading).
    pub fn new(on_connected: impl Fn(&mut TcpConnection<'_>) -> C + Send + Sync + 'static) -> Self {
        StatefulCallbacks {
            connected: Arc::new(on_connected),
            message: None,
            write_complete: None,
            half_closed: None,
            closed: None,
        }
    }

    /// Input arrived (see [`Callbacks::on_message`]).
    pub fn on_message(
        mut self,
        f: impl Fn(&mut TcpConnection<'_>, &mut C, &mut Buffer) + Send + Sync + 'static,
    ) -> Self {
        self.message = Some(Arc::new(f));
        self
    }

    /// Everything queued reached the kernel (see
    /// [`Callbacks::on_write_complete`]).
    pub fn on_write_complete(mut self, f: impl Fn(&mut TcpConnection<'_>, &mut C) + Send + Sync + 'static) -> Self {
        self.write_complete = Some(Arc::new(f));
        self
    }

    /// The peer half-closed (see [`Callbacks::on_half_closed`]).
    pub fn on_half_closed(mut self, f: impl Fn(&mut TcpConnection<'_>, &mut C) + Send + Sync + 'static) -> Self {
        self.half_closed = Some(Arc::new(f));
        self
    }

    /// The connection is closing (see [`Callbacks::on_closed`]). Not called
    /// for a close the connection's own callbacks asked for while they held
    /// the state (`force_close` from `on_message`, say): they know already.
    pub fn on_closed(mut self, f: impl Fn(&mut TcpConnection<'_>, &mut C) + Send + Sync + 'static) -> Self {
        self.closed = Some(Arc::new(f));
        self
    }

    /// The plain callbacks that keep the state in the connection's context.
    pub fn build(self) -> Callbacks {
        let connected = self.connected;
        let mut callbacks = Callbacks::new().on_connected(move |c| {
            let state = connected(c);
            c.set_context(state);
        });
        if let Some(f) = self.message {
            callbacks = callbacks.on_message(move |c, buf| {
                if c.with_state(|c, state: &mut C| f(c, state, buf)).is_none() {
                    // No state (on_connected closed it): nothing to read for.
                    buf.consume_all();
                }
            });
        }
        if let Some(f) = self.write_complete {
            callbacks = callbacks.on_write_complete(move |c| {
                c.with_state(|c, state: &mut C| f(c, state));
            });
        }
        if let Some(f) = self.half_closed {
            callbacks = callbacks.on_half_closed(move |c| {
                c.with_state(|c, state: &mut C| f(c, state));
            });
        }
        if let Some(f) = self.closed {
            callbacks = callbacks.on_closed(move |c| {
                c.with_state(|c, state: &mut C| f(c, state));
            });
        }
        callbacks
    }
}
