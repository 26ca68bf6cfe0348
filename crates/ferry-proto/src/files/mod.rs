//! The file-transfer service: a line-based protocol to browse a served
//! directory and move files in both directions, with resume.
//! `docs/PROTOCOL.md` describes it byte by byte.
//!
//! - [`request`]: request lines -> [`Request`].
//! - [`session`]: the server side, a sans-IO [`FileSession`]; its `OK` and
//!   `ERR` lines and the mapping of failures to codes are in `answer.rs`.
//! - [`codec`]: the client side: building requests, parsing answers.
//! - [`escape`]: how names with odd bytes travel in text lines.

mod answer;
pub mod codec;
pub mod escape;
pub mod request;
pub mod session;

pub use request::{MAX_LINE, Request, RequestError};
pub use session::{FileSession, FilesConfig, PART_SUFFIX, is_partial_upload};
