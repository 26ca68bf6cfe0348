//! Listings of a directory without an `index.html`: an HTML page for
//! people ([`html`]) and the same entries as JSON for scripts ([`json`]),
//! chosen by `?json` or `Accept: application/json`, sorted as the query
//! asks (`?sort=name|size|date&order=asc|desc`; directories first), or
//! the matches of a search of the folder's tree (`?q=TERM`, [`search`]).
//! Only entries the client has some right to are listed.

mod html;
mod json;
mod search;
mod write_ui;

use std::ffi::OsString;
use std::sync::Arc;

use super::date::HttpDate;
use super::errors::{HttpError, Status, fs_error};
use super::respond::{self, Persist};
use crate::Outbox;
use crate::access::{Access, Identity, Rights};
use crate::root::{Kind, Meta, Root, VirtualPath};

/// One listed entry (symlinks already resolved inside the root).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub name: OsString,
    pub meta: Meta,
}

/// What a listing is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SortKey {
    #[default]
    Name,
    Size,
    Date,
}

impl SortKey {
    fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Date => "date",
        }
    }
}

/// How a listing is shown: its order and its form, or a search.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct View {
    pub sort: SortKey,
    pub descending: bool,
    /// JSON instead of HTML.
    pub json: bool,
    /// Search the tree for names containing this (`?q=`), not list.
    pub search: Option<String>,
    /// The client may write here: the page offers upload, new folder and
    /// delete (`write_ui.rs`).
    pub writable: bool,
}

impl View {
    /// The view a request asks for with its query (`sort`, `order`,
    /// `json`) and `Accept` header (JSON when it names
    /// `application/json` and not `text/html`, as scripts do and browsers
    /// do not). Unknown values are ignored.
    pub(crate) fn of(query: Option<&[u8]>, accept: Option<&[u8]>) -> View {
        let mut view = View::default();
        for pair in query.unwrap_or_default().split(|&b| b == b'&') {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            match (key, value) {
                (b"sort", b"name") => view.sort = SortKey::Name,
                (b"sort", b"size") => view.sort = SortKey::Size,
                (b"sort", b"date") => view.sort = SortKey::Date,
                (b"order", b"asc") => view.descending = false,
                (b"order", b"desc") => view.descending = true,
                (b"json", _) | (b"format", b"json") => view.json = true,
                (b"q", term) => view.search = Some(query_text(term)).filter(|t| !t.trim().is_empty()),
                _ => {}
            }
        }
        if let Some(accept) = accept {
            let has = |needle: &[u8]| accept.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle));
            view.json |= has(b"application/json") && !has(b"text/html");
        }
        view
    }

    /// Directories first, then files; each group by the key (names break
    /// ties), reversed when descending.
    fn sort(&self, rows: &mut [Row]) {
        rows.sort_by(|a, b| {
            let by_key = match self.sort {
                SortKey::Name => std::cmp::Ordering::Equal,
                SortKey::Size => a.meta.size.cmp(&b.meta.size),
                SortKey::Date => a.meta.mtime.cmp(&b.meta.mtime),
            };
            let by_key = by_key.then_with(|| a.name.cmp(&b.name));
            let by_key = if self.descending { by_key.reverse() } else { by_key };
            (a.meta.kind != Kind::Dir).cmp(&(b.meta.kind != Kind::Dir)).then(by_key)
        });
    }
}

/// A listing to answer.
pub(crate) struct Page<'a> {
    pub root: &'a Arc<Root>,
    pub access: &'a Arc<Access>,
    pub who: Identity,
    pub dir: &'a VirtualPath,
    pub view: View,
}

/// Queues the listing of a directory without `index.html`. Reading and
/// stat-ing every entry of a big directory takes a while, so it is a job
/// (see [`crate::Job`]); a listing that fails there is answered with the
/// error it maps to (never one that closes: the directory was found
/// already).
pub(crate) fn push(out: &mut Outbox, page: Page<'_>, head_only: bool, persist: Persist, date: &HttpDate) {
    let (root, access, who, dir, view, date) =
        (Arc::clone(page.root), Arc::clone(page.access), page.who, page.dir.clone(), page.view, *date);
    out.push_job(move || {
        let mut buf = Vec::new();
        let found = match &view.search {
            Some(term) => search::search(&root, &dir, &access, &who, term).map(|f| (f.rows, f.complete)),
            None => gather(&root, &dir, &access, &who).map(|rows| (rows, true)),
        };
        match found {
            Ok((mut rows, complete)) => {
                view.sort(&mut rows);
                let (body, content_type): (Vec<u8>, &[u8]) = if view.json {
                    (json::render(&rows), b"application/json")
                } else {
                    (html::render(&dir, &rows, &view, complete), b"text/html; charset=utf-8")
                };
                respond::start(&mut buf, Status::OK, &date);
                respond::header(&mut buf, b"Content-Type", content_type);
                respond::header(&mut buf, b"Vary", b"Accept");
                respond::content_length(&mut buf, body.len() as u64);
                respond::finish(&mut buf, persist);
                if !head_only {
                    buf.extend_from_slice(&body);
                }
            }
            Err(err) => {
                let err = if err.closes() { HttpError::Internal } else { err };
                respond::error(&mut buf, err, persist, head_only, &date);
            }
        }
        buf
    });
}

/// A query value as text: `+` is a space, `%XX` a byte (bad escapes kept
/// as they are), decoded as UTF-8 lossily.
fn query_text(raw: &[u8]) -> String {
    let plus: Vec<u8> = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    let bytes = crate::http::target::percent_decode(&plus).map(|c| c.into_owned()).unwrap_or(plus);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The entries of `dir` that `who` has any right to, symlinks shown as
/// what they point to when that is a file or directory (links that
/// dangle or loop are left out; [`Root::list`] leaves out those that
/// escape the root and hidden names).
pub(crate) fn gather(root: &Root, dir: &VirtualPath, access: &Access, who: &Identity) -> Result<Vec<Row>, HttpError> {
    let entries = root.list(dir).map_err(fs_error)?;
    Ok(entries
        .into_iter()
        .filter(|entry| access.rights(who, &dir.join_name(&entry.name)) != Rights::NONE)
        .filter_map(|entry| {
            let meta = match entry.meta.kind {
                Kind::File | Kind::Dir => entry.meta,
                Kind::Symlink => entry.target?,
                Kind::Other => return None,
            };
            matches!(meta.kind, Kind::File | Kind::Dir).then_some(Row { name: entry.name, meta })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, kind: Kind, size: u64, mtime: i64) -> Row {
        Row { name: name.into(), meta: Meta { kind, size, mtime, mtime_nsec: 0, ino: 1 } }
    }

    fn names(view: View) -> Vec<String> {
        let mut rows = vec![
            row("b.txt", Kind::File, 10, 300),
            row("sub", Kind::Dir, 4096, 100),
            row("a.iso", Kind::File, 900, 200),
            row("c", Kind::File, 5, 400),
        ];
        view.sort(&mut rows);
        rows.into_iter().map(|r| r.name.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn queries_and_accept_choose_the_view() {
        assert_eq!(View::of(None, None), View::default());
        let v = View::of(Some(b"sort=size&order=desc"), None);
        assert_eq!((v.sort, v.descending, v.json), (SortKey::Size, true, false));
        assert!(View::of(Some(b"json"), None).json);
        assert!(View::of(None, Some(b"application/json")).json);
        assert!(!View::of(None, Some(b"text/html,application/xhtml+xml,application/json;q=0.9")).json);
        assert_eq!(View::of(Some(b"sort=bogus&order=up"), None), View::default());
        assert_eq!(View::of(Some(b"q=caf%C3%A9+au+lait"), None).search.as_deref(), Some("café au lait"));
        assert_eq!(View::of(Some(b"q=+"), None).search, None);
    }

    #[test]
    fn directories_come_first_then_the_key_decides() {
        assert_eq!(names(View::default()), ["sub", "a.iso", "b.txt", "c"]);
        let view = |sort, descending| View { sort, descending, ..View::default() };
        assert_eq!(names(view(SortKey::Size, true)), ["sub", "a.iso", "b.txt", "c"]);
        assert_eq!(names(View { sort: SortKey::Size, ..View::default() }), ["sub", "c", "b.txt", "a.iso"]);
        assert_eq!(names(view(SortKey::Date, true)), ["sub", "c", "b.txt", "a.iso"]);
    }
}
