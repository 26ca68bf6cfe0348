//! The file-transfer service: a line-based protocol to browse a served
//! directory and move files in both directions, with resume.
//! `docs/PROTOCOL.md` describes it byte by byte.
//!
//! - [`request`]: request lines -> [`Request`].
//! - [`session`]: the server side, a sans-IO [`FileSession`]; its `OK` and
//!   `ERR` lines and the mapping of failures to codes are in `answer.rs`;
//!   an upload's way from `put` to its name is in `upload.rs`, and
//!   [`partials`] keeps uploads in progress out of the served namespace.
//! - [`codec`]: the client side: building requests, parsing answers.
//! - [`escape`]: how names with odd bytes travel in text lines.

pub(crate) mod answer;
pub mod codec;
mod config;
pub mod escape;
mod listing;
mod log;
pub mod partials;
pub mod request;
pub mod session;
pub(crate) mod upload;

pub use config::FilesConfig;
pub use partials::{PartialLimits, Partials};
pub use request::{Credentials, MAX_LINE, Request, RequestError};
pub use session::FileSession;
