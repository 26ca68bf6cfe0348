//! ferry-client: the client side of ferry's file protocol (`docs/PROTOCOL.md`).
//!
//! A [`Client`] is one blocking TCP connection to a `ferry serve` file
//! service, bounded by a connect timeout and a stall timeout. It browses
//! (`pwd`, `cd`, `ls`, `stat`, `sum`, ...), downloads with [`Client::get`]
//! (or to a stream with [`Client::get_to`]) and uploads with
//! [`Client::put`], both resumable, resuming only bytes of the same file
//! (the server's version token for downloads, the file's SHA-256 for
//! uploads), and both zero-copy on this side (`splice` socket -> file,
//! `sendfile` file -> socket). Encoding requests and parsing answers is
//! `ferry_proto::files::codec`'s job; this crate does the I/O around it.
//!
//! Several files and whole trees are a [`Plan`] (`Client::plan_get`,
//! `Client::plan_put`: remote globs expanded from `ls`, trees walked on
//! either side), run by [`run_plan`] over one or several connections, with
//! rsync's skip rules ([`Skip`]) and curl's rate limit and deadline
//! ([`Pace`]).
//!
//! Used by the `ferry` binary (`get`, `put`, `ls`, `shell`) and by tests.
//! A `Client` is `Send` but not shared: one request at a time.

mod address;
mod batch;
mod checksum;
mod client;
mod connection;
mod destination;
mod error;
mod get;
mod glob;
mod pace;
mod part;
mod paths;
mod plan;
mod plan_put;
mod progress;
mod put;
mod receive;
mod skip;
mod stream;
pub mod tls;

pub use address::{DEFAULT_PORT, normalize_address};
pub use batch::{
    BatchOptions, BatchProgress, Connect, FileReport, Outcome, Report, destination_of, display_local, run_plan,
    run_plan_closing, source_of,
};
pub use checksum::sha256_file;
pub use client::{Answer, Client, ClientOptions};
pub use error::ClientError;
pub use ferry_proto::files::codec::{EntryInfo, Reply};
pub use ferry_proto::root::DiskSpace;
pub use ferry_proto::root::Kind;
pub use get::{GetOptions, GetOutcome};
pub use glob::{glob_match, has_glob};
pub use pace::Pace;
pub use paths::remote_basename;
pub use plan::{Direction, Item, Plan, Problem, join_remote};
pub use progress::{NoProgress, Progress};
pub use put::{PutOptions, PutOutcome};
pub use skip::Skip;

/// The result type of every fallible client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
