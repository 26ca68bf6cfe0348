//! The HTML page listing a directory without an `index.html`.
//!
//! Names are shown HTML-escaped (lossily decoded when not UTF-8) and
//! linked percent-encoded from their raw bytes, so every link leads back to
//! exactly the entry it shows, whatever characters the name holds. Links
//! are relative: the page is only served at a URL ending in `/`.

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::date::HttpDate;
use super::errors::{HttpError, Status, fs_error};
use super::respond::{self, Persist};
use super::target::push_encoded_segment;
use crate::Outbox;
use crate::access::{Access, Identity, Rights};
use crate::root::{Kind, Meta, Root, VirtualPath};

/// One listed entry (symlinks already resolved inside the root).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub name: OsString,
    pub meta: Meta,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}\
h1{font-size:1.4em;font-weight:600;overflow-wrap:anywhere}\
table{border-collapse:collapse;width:100%}\
th,td{padding:.3em .6em;text-align:left;border-bottom:1px solid #eee}\
th{border-bottom:2px solid #ccc}\
td:nth-child(2),th:nth-child(2){text-align:right;white-space:nowrap}\
td:nth-child(3){white-space:nowrap;font-variant-numeric:tabular-nums}\
td:first-child{overflow-wrap:anywhere}\
a{color:#0645ad;text-decoration:none}a:hover{text-decoration:underline}\
footer{color:#888;font-size:.85em;margin-top:1em}";

/// Renders the listing of `dir`: directories first, then files, each
/// group in name order; a parent link unless `dir` is the root.
pub(crate) fn render(dir: &VirtualPath, mut rows: Vec<Row>) -> Vec<u8> {
    rows.sort_by(|a, b| (a.meta.kind != Kind::Dir, &a.name).cmp(&(b.meta.kind != Kind::Dir, &b.name)));
    let mut title = Vec::new();
    escape_html(&mut title, &dir.to_bytes());
    if !dir.is_root() {
        title.push(b'/');
    }
    let mut html = Vec::with_capacity(1024 + rows.len() * 160);
    html.extend_from_slice(b"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.extend_from_slice(
        b"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Index of ",
    );
    html.extend_from_slice(&title);
    html.extend_from_slice(b"</title>\n<style>");
    html.extend_from_slice(STYLE.as_bytes());
    html.extend_from_slice(b"</style>\n</head>\n<body>\n<h1>Index of ");
    html.extend_from_slice(&title);
    html.extend_from_slice(
        b"</h1>\n<p>Download this folder as <a href=\"?archive=tar\" download>.tar</a> or <a href=\"?archive=zip\" download>.zip</a></p>\n<table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead>\n<tbody>\n",
    );
    if !dir.is_root() {
        html.extend_from_slice(b"<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for row in &rows {
        let is_dir = row.meta.kind == Kind::Dir;
        html.extend_from_slice(b"<tr><td><a href=\"");
        push_encoded_segment(&mut html, row.name.as_bytes());
        if is_dir {
            html.push(b'/');
        }
        html.extend_from_slice(b"\">");
        escape_html(&mut html, row.name.as_bytes());
        if is_dir {
            html.extend_from_slice(b"/</a></td><td>-</td><td>");
        } else {
            let _ = write!(html, "</a></td><td title=\"{} bytes\">", row.meta.size);
            human_size(&mut html, row.meta.size);
            html.extend_from_slice(b"</td><td>");
        }
        civil_time(&mut html, row.meta.mtime);
        html.extend_from_slice(b"</td></tr>\n");
    }
    html.extend_from_slice(b"</tbody>\n</table>\n<footer>ferry</footer>\n</body>\n</html>\n");
    html
}

/// Appends `raw` as HTML text: decoded as UTF-8 (invalid bytes become
/// U+FFFD) with `& < > " '` escaped.
pub(crate) fn escape_html(out: &mut Vec<u8>, raw: &[u8]) {
    for c in String::from_utf8_lossy(raw).chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\'' => out.extend_from_slice(b"&#39;"),
            c => {
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

/// `512 B`, `1.5 KiB`, `20.0 MiB`, ...
fn human_size(out: &mut Vec<u8>, size: u64) {
    if size < 1024 {
        let _ = write!(out, "{size} B");
        return;
    }
    let mut value = size as f64 / 1024.0;
    let mut unit = 0;
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let _ = write!(out, "{value:.1} {}", UNITS[unit]);
}

/// Unix seconds as `YYYY-MM-DD HH:MM` in UTC (days-to-civil after Howard
/// Hinnant's algorithm, valid for any i64 day count we can meet).
fn civil_time(out: &mut Vec<u8>, secs: i64) {
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(out, "{year:04}-{month:02}-{day:02} {:02}:{:02}", in_day / 3600, in_day % 3600 / 60);
}

/// What a listing shows: `dir` under `root`, as `who` may see it.
pub(crate) struct Page<'a> {
    pub root: &'a Arc<Root>,
    pub access: &'a Arc<Access>,
    pub who: Identity,
    pub dir: &'a VirtualPath,
}

/// Queues the HTML listing of a directory without `index.html`. Reading
/// and stat-ing every entry of a big directory takes a while, so it is a
/// job (see [`crate::Job`]); a listing that fails there is answered with
/// the error it maps to (never one that closes: the directory was found
/// already).
pub(crate) fn push(out: &mut Outbox, page: Page<'_>, head_only: bool, persist: Persist, date: &HttpDate) {
    let (root, access, who, dir, date) =
        (Arc::clone(page.root), Arc::clone(page.access), page.who, page.dir.clone(), *date);
    out.push_job(move || {
        let mut buf = Vec::new();
        match render_page(&root, &dir, &access, &who) {
            Ok(body) => {
                respond::start(&mut buf, Status::OK, &date);
                respond::header(&mut buf, b"Content-Type", b"text/html; charset=utf-8");
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

/// The HTML page listing `dir`: the entries `who` has any right to.
pub(crate) fn render_page(
    root: &Root,
    dir: &VirtualPath,
    access: &Access,
    who: &Identity,
) -> Result<Vec<u8>, HttpError> {
    let entries = root.list(dir).map_err(fs_error)?;
    let rows = entries
        .into_iter()
        .filter(|entry| access.rights(who, &dir.join_name(&entry.name)) != Rights::NONE)
        .filter_map(|entry| {
            let meta = match entry.meta.kind {
                Kind::File | Kind::Dir => entry.meta,
                // Shown as what they point to, if that is inside the
                // root; links that escape or dangle are not shown.
                Kind::Symlink => root.stat(&dir.join_name(&entry.name)).ok()?,
                Kind::Other => return None,
            };
            matches!(meta.kind, Kind::File | Kind::Dir).then_some(Row { name: entry.name, meta })
        })
        .collect();
    Ok(render(dir, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_sizes_and_dates() {
        assert_eq!(text(|o| escape_html(o, b"<a href='x'>&\"\xff")), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;\u{fffd}");
        assert_eq!(text(|o| human_size(o, 13)), "13 B");
        assert_eq!(text(|o| human_size(o, 1536)), "1.5 KiB");
        assert_eq!(text(|o| human_size(o, 20 << 20)), "20.0 MiB");
        assert_eq!(text(|o| civil_time(o, 0)), "1970-01-01 00:00");
        assert_eq!(text(|o| civil_time(o, 951_782_400 + 3_660)), "2000-02-29 01:01");
        assert_eq!(text(|o| civil_time(o, -86_400)), "1969-12-31 00:00");
    }
}
