//! `PROPFIND` at depth 0 or 1: the `207 Multi-Status` XML WebDAV clients
//! list with (displayname, getcontentlength, getlastmodified,
//! resourcetype, getetag), whatever properties the request body names.

use std::sync::Arc;

use super::super::conditional::Etag;
use super::super::date::{self, HttpDate};
use super::super::errors::{HttpError, Status};
use super::super::listing::{Row, gather};
use super::super::respond::{self, Persist};
use super::super::target::push_encoded_segment;
use crate::Outbox;
use crate::access::{Access, Identity};
use crate::root::{Kind, Meta, Root, VirtualPath};

/// A `PROPFIND` to answer.
pub(crate) struct Ask {
    pub root: Arc<Root>,
    pub access: Arc<Access>,
    pub who: Identity,
    pub path: VirtualPath,
    /// The resource itself (its metadata, looked up already).
    pub meta: Meta,
    /// Also its entries (a directory at `Depth: 1`).
    pub children: bool,
    pub persist: Persist,
}

/// Queues the answer: a job, since a directory's entries are read and
/// stat-ed.
pub(crate) fn push(out: &mut Outbox, ask: Ask, date: &HttpDate) {
    let date = *date;
    out.push_job(move || {
        let mut body = Vec::with_capacity(512);
        body.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">\n");
        let name = ask.path.split_last().map(|(_, n)| n.as_encoded_bytes().to_vec()).unwrap_or_default();
        response(&mut body, &ask.path, &name, &ask.meta);
        let mut buf = Vec::new();
        if ask.children && ask.meta.kind == Kind::Dir {
            match gather(&ask.root, &ask.path, &ask.access, &ask.who) {
                Ok(rows) => {
                    for Row { name, meta } in rows {
                        response(&mut body, &ask.path.join_name(&name), name.as_encoded_bytes(), &meta);
                    }
                }
                Err(err) => {
                    let err = if err.closes() { HttpError::Internal } else { err };
                    respond::error(&mut buf, err, ask.persist, false, &date);
                    return buf;
                }
            }
        }
        body.extend_from_slice(b"</D:multistatus>\n");
        respond::start(&mut buf, Status(207), &date);
        respond::header(&mut buf, b"Content-Type", b"application/xml; charset=utf-8");
        respond::content_length(&mut buf, body.len() as u64);
        respond::finish(&mut buf, ask.persist);
        buf.extend_from_slice(&body);
        buf
    });
}

/// One `<D:response>`.
fn response(out: &mut Vec<u8>, path: &VirtualPath, name: &[u8], meta: &Meta) {
    let dir = meta.kind == Kind::Dir;
    out.extend_from_slice(b"<D:response><D:href>");
    push_href(out, path, dir);
    out.extend_from_slice(b"</D:href><D:propstat><D:prop><D:displayname>");
    push_xml_text(out, name);
    out.extend_from_slice(b"</D:displayname>");
    if dir {
        out.extend_from_slice(b"<D:resourcetype><D:collection/></D:resourcetype>");
    } else {
        out.extend_from_slice(b"<D:resourcetype/><D:getcontentlength>");
        respond::push_u64(out, meta.size);
        out.extend_from_slice(b"</D:getcontentlength><D:getetag>");
        push_xml_text(out, Etag::of(meta).as_bytes());
        out.extend_from_slice(b"</D:getetag>");
    }
    out.extend_from_slice(b"<D:getlastmodified>");
    out.extend_from_slice(&date::format(meta.mtime));
    out.extend_from_slice(
        b"</D:getlastmodified></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>\n",
    );
}

/// The path as an absolute URL path, each name percent-encoded, with a
/// trailing slash for a directory.
pub(crate) fn push_href(out: &mut Vec<u8>, path: &VirtualPath, dir: bool) {
    for name in path.names() {
        out.push(b'/');
        push_encoded_segment(out, name.as_encoded_bytes());
    }
    if dir || path.is_root() {
        out.push(b'/');
    }
}

/// Text content for XML: UTF-8 (invalid bytes and control characters as
/// U+FFFD) with `& < > " '` escaped.
fn push_xml_text(out: &mut Vec<u8>, raw: &[u8]) {
    for c in String::from_utf8_lossy(raw).chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\'' => out.extend_from_slice(b"&apos;"),
            c if c.is_control() => out.extend_from_slice("\u{fffd}".as_bytes()),
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_as_xml() {
        let meta = Meta { kind: Kind::File, size: 5, mtime: 0, mtime_nsec: 0, ino: 0xab };
        let path = VirtualPath::root().join_name(std::ffi::OsStr::new("a b&<.txt"));
        let mut out = Vec::new();
        response(&mut out, &path, b"a b&<.txt", &meta);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("<D:href>/a%20b%26%3C.txt</D:href>"), "{text}");
        assert!(text.contains("<D:displayname>a b&amp;&lt;.txt</D:displayname>"), "{text}");
        assert!(text.contains("<D:getcontentlength>5</D:getcontentlength>"), "{text}");
        assert!(text.contains("<D:resourcetype/>"), "{text}");
        assert!(text.contains("Thu, 01 Jan 1970 00:00:00 GMT"), "{text}");
        let dir = Meta { kind: Kind::Dir, ..meta };
        let mut out = Vec::new();
        response(&mut out, &path, b"x\x01", &dir);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("<D:href>/a%20b%26%3C.txt/</D:href>"), "{text}");
        assert!(text.contains("<D:collection/>") && !text.contains("getcontentlength"), "{text}");
        assert!(text.contains("x\u{fffd}"), "{text}");
    }
}
