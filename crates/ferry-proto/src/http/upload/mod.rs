//! `PUT`: an upload through the file protocol's partials (hidden partial,
//! `fsync`, rename: `files/upload.rs` and `files/partials.rs`), with the
//! body streamed into the partial by the driver (a [`Sink`]: `splice` or
//! `pwrite`), never through the session.
//!
//! Resuming (one scheme, curl's): a `PUT` with `Content-Length` identifies
//! its partial by the file's size; if the connection breaks, the partial
//! stays. `HEAD` of the path then says `Upload-Offset: N` (bytes held) and
//! `Upload-Length: SIZE`, and `PUT` with `Content-Range: bytes N-LAST/SIZE`
//! (what `curl -C N -T file` sends) appends from there. A piece that does
//! not reach the end is answered 202 with `Upload-Offset`; the one that
//! completes the file commits it (201 or 204). A total size other than the
//! held partial's starts over; an offset beyond what is held is 409 with
//! `Upload-Offset`. `Repr-Digest: sha-256=:B64:` (RFC 9530) is checked
//! before the rename (400 and nothing renamed on a mismatch); so is
//! `Content-Digest` on a whole-file `PUT`, where it is the same digest.

mod form;
mod receive;

pub(crate) use form::{Form, FormStep};

pub(crate) use receive::{Next, Receiving, Refusal, from_failure};

use super::date::HttpDate;
use super::errors::Status;
use super::respond::{self, Persist};
use crate::Outbox;
use crate::files::Partials;
use crate::root::VirtualPath;

/// The interim answer that lets a client holding its body back
/// (`Expect: 100-continue`) send it.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A bodiless answer (201, 202, 204) with extra header lines.
pub(crate) fn answer_empty(
    buf: &mut Vec<u8>,
    status: Status,
    extra: &[(&[u8], u64)],
    persist: Persist,
    date: &HttpDate,
) {
    respond::start(buf, status, date);
    for (name, value) in extra {
        buf.extend_from_slice(name);
        buf.extend_from_slice(b": ");
        respond::push_u64(buf, *value);
        buf.extend_from_slice(b"\r\n");
    }
    if status.0 != 204 {
        respond::content_length(buf, 0);
    }
    respond::finish(buf, persist);
}

/// Adds `Upload-Offset` and `Upload-Length` to the head of a `HEAD`
/// answer written into `out` from byte `mark` of its text, when a
/// resumable partial of `path` is held.
pub(crate) fn annotate_head(out: &mut Outbox, mark: usize, partials: &Partials, path: &VirtualPath) {
    if let Some((have, size)) = partials.held(path) {
        insert_headers(out.text(), mark, &[(b"Upload-Offset", have), (b"Upload-Length", size)]);
    }
}

/// Inserts header lines at the end of the head that starts at `mark` in
/// `buf` (left alone if no complete head is there).
pub(crate) fn insert_headers(buf: &mut Vec<u8>, mark: usize, headers: &[(&[u8], u64)]) {
    let Some(end) = buf.get(mark..).and_then(|head| head.windows(4).position(|w| w == b"\r\n\r\n")) else {
        return;
    };
    let mut lines = Vec::new();
    for (name, value) in headers {
        lines.extend_from_slice(name);
        lines.extend_from_slice(b": ");
        respond::push_u64(&mut lines, *value);
        lines.extend_from_slice(b"\r\n");
    }
    let at = mark + end + 2;
    buf.splice(at..at, lines);
}
