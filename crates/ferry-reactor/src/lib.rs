//! ferry-reactor: the event-driven heart of ferry, and the thin syscall
//! wrappers every driver shares.
//!
//! It knows nothing of HTTP or files. [`sys`] holds the safe wrappers over the
//! Linux calls ferry is built on (signals as file descriptors, zero-copy
//! transfers); the reactor proper (poller, event loop, timers, buffer, TCP
//! server) builds on them.

pub mod sys;
