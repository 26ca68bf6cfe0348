//! Answering `GET /dir/?archive=FORMAT`: the response head at once, then
//! the archive a part at a time as the connection drains.

use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::{Archive, Format, Source};
use crate::Outbox;
use crate::access::Identity;
use crate::http::HttpConfig;
use crate::http::date::HttpDate;
use crate::http::errors::{HttpError, Status, fs_error};
use crate::http::respond::{self, Persist};
use crate::root::VirtualPath;

/// What an archive request asks for.
pub(crate) struct Ask<'a> {
    /// The `archive=` value.
    pub format: &'a [u8],
    /// The directory, resolved and allowed to be listed.
    pub path: &'a VirtualPath,
    pub who: Identity,
    /// HTTP/1.1 (chunks) rather than 1.0 (the end of the connection ends it).
    pub http11: bool,
    /// HEAD: the head only.
    pub head_only: bool,
    pub persist: Persist,
}

/// An archive being sent, and whether the connection stays open after it.
#[derive(Debug)]
pub(crate) struct Streaming {
    archive: Box<Archive>,
    persist: Persist,
}

/// Where an archive stands after [`Streaming::resume`].
pub(crate) enum Step {
    /// More to queue when this part has drained.
    More,
    /// All queued: the connection goes on as `Persist` says.
    Done(Persist),
    /// It cannot be finished correctly: cut the connection, so the client
    /// sees a truncated archive rather than a wrong one.
    Cut,
}

/// The format asked for with `archive=FORMAT` in a query, if any.
pub(crate) fn format_in(query: &[u8]) -> Option<&[u8]> {
    query.split(|&b| b == b'&').find_map(|pair| pair.strip_prefix(b"archive="))
}

/// Queues the head and the archive's first part. `Some` while more is to
/// come (the session holds it and calls [`Streaming::resume`] as output
/// drains).
pub(crate) fn start(
    config: &HttpConfig,
    ask: Ask<'_>,
    date: &HttpDate,
    out: &mut Outbox,
) -> Result<Option<Streaming>, HttpError> {
    let format = Format::from_query(ask.format).ok_or(HttpError::BadRequest("unknown archive format (tar, zip)"))?;
    let root = &config.root;
    let dir = root.open_dir(ask.path).map_err(fs_error)?;
    let name = archive_name(ask.path, root.path());
    let persist = if ask.http11 { ask.persist } else { Persist::Close };
    let (extension, content_type) = format.extension_and_type();
    let filename = [&name[..], extension].concat();
    let (access, visibility) = (Arc::clone(&config.access), root.visibility());
    let source = Source { dir, vpath: ask.path.clone(), name, access, who: ask.who, visibility };
    let archive = Archive::new(source, format, ask.http11, config.copy_threshold).map_err(|e| fs_error(e.into()))?;
    let buf = out.text();
    respond::start(buf, Status::OK, date);
    respond::header(buf, b"Content-Type", content_type);
    respond::content_disposition(buf, &filename);
    if ask.http11 {
        respond::header(buf, b"Transfer-Encoding", b"chunked");
    }
    respond::finish(buf, persist);
    if ask.head_only {
        return Ok(None);
    }
    let mut streaming = Streaming { archive: Box::new(archive), persist };
    match streaming.archive.fill(out) {
        Ok(true) => Ok(None),
        Ok(false) => Ok(Some(streaming)),
        Err(e) => {
            tracing::warn!("http: archive of {} failed at its start: {e}", ask.path);
            Err(HttpError::Internal)
        }
    }
}

impl Streaming {
    /// Queues the next part.
    pub(crate) fn resume(&mut self, out: &mut Outbox) -> Step {
        match self.archive.fill(out) {
            Ok(false) => Step::More,
            Ok(true) => Step::Done(self.persist),
            Err(e) => {
                tracing::warn!("http: archive cut short: {e}");
                Step::Cut
            }
        }
    }
}

/// The archive's top folder: the directory's name, or the served
/// directory's for the root (`ferry` if it has none).
fn archive_name(path: &VirtualPath, root: &std::path::Path) -> Vec<u8> {
    let name = path.file_name().or_else(|| root.file_name()).map(|n| n.as_bytes().to_vec());
    name.filter(|n| !n.is_empty()).unwrap_or_else(|| b"ferry".to_vec())
}
