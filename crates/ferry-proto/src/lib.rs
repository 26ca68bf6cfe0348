//! ferry-proto: ferry's services as sans-IO state machines.
//!
//! Nothing here opens a socket, blocks on the network or spawns a thread.
//! A driver in `ferry-server` feeds each connection's bytes to a
//! [`conn::Conn`], which runs the [`Session`] and tells the driver what to
//! send, read, wait for and when to close. The one thing
//! sessions touch besides memory is the served directory, always through
//! [`root::Root`], which keeps every access inside it.

pub mod access;
pub mod conn;
pub mod digest;
pub mod echo;
pub mod files;
pub mod http;
pub mod observe;
pub mod outbox;
pub mod root;
pub mod session;
mod vpath;

pub use outbox::{Chunk, FileRange, FileSlice, Job, Outbox, Sink};
pub use session::{Flow, Now, Progress, Session};
