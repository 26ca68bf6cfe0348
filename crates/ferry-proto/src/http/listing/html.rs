//! The HTML page listing a directory: breadcrumbs, links that sort by
//! name, size or date (no JavaScript), the folder's archive links, a
//! layout that fits a phone and follows the system's dark mode.
//!
//! Names are shown HTML-escaped (lossily decoded when not UTF-8) and
//! linked percent-encoded from their raw bytes, so every link leads back to
//! exactly the entry it shows, whatever characters the name holds. Links
//! are relative: the page is only served at a URL ending in `/`.

use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;

use super::{Row, SortKey, View};
use crate::http::date::civil_from_days;
use crate::http::target::push_encoded_segment;
use crate::root::{Kind, VirtualPath};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222;background:#fff}\
h1{font-size:1.4em;font-weight:600;overflow-wrap:break-word}\
table{border-collapse:collapse;width:100%}\
th,td{padding:.3em .6em;text-align:left;border-bottom:1px solid #eee}\
th{border-bottom:2px solid #ccc}\
td:nth-child(2),th:nth-child(2){text-align:right;white-space:nowrap}\
td:nth-child(3){white-space:nowrap;font-variant-numeric:tabular-nums}\
td:first-child{overflow-wrap:anywhere;word-break:normal}\
a{color:#0645ad;text-decoration:none}a:hover{text-decoration:underline}\
footer{color:#888;font-size:.85em;margin-top:1em}\
input[type=search]{width:100%;max-width:24em;padding:.4em;font-size:1em;box-sizing:border-box}\
@media (max-width:600px){body{margin:1em auto;padding:0 .5em}td:nth-child(3),th:nth-child(3){display:none}th,td{padding:.4em .3em}}\
@media (prefers-color-scheme:dark){body{color:#ddd;background:#121212}a{color:#8ab4f8}th,td{border-color:#333}th{border-color:#555}input{background:#222;color:#ddd;border:1px solid #555}}";

/// Renders the listing of `dir`, or a search's matches in it (rows
/// already sorted as `view` says; `complete` false when the search
/// stopped at its bounds); a parent link unless `dir` is the root.
pub(crate) fn render(dir: &VirtualPath, rows: &[Row], view: &View, complete: bool) -> Vec<u8> {
    let mut title = Vec::new();
    escape_html(&mut title, &dir.to_bytes());
    if !dir.is_root() {
        title.push(b'/');
    }
    let mut html = Vec::with_capacity(2048 + rows.len() * 160);
    html.extend_from_slice(b"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.extend_from_slice(
        b"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Index of ",
    );
    html.extend_from_slice(&title);
    html.extend_from_slice(b"</title>\n<style>");
    html.extend_from_slice(STYLE.as_bytes());
    html.extend_from_slice(b"</style>\n</head>\n<body>\n<h1>Index of ");
    breadcrumbs(&mut html, dir);
    html.extend_from_slice(b"</h1>\n<form><input type=\"search\" name=\"q\" aria-label=\"Search this folder\" placeholder=\"Search this folder\" value=\"");
    escape_html(&mut html, view.search.as_deref().unwrap_or_default().as_bytes());
    html.extend_from_slice(b"\"></form>\n");
    if let Some(term) = &view.search {
        html.extend_from_slice(b"<p>Names containing &ldquo;");
        escape_html(&mut html, term.as_bytes());
        let _ = write!(html, "&rdquo;: {} found", rows.len());
        if !complete {
            html.extend_from_slice(b" (the search stopped early: narrow it)");
        }
        html.extend_from_slice(b". <a href=\"./\">Back to the listing</a></p>\n");
    }
    html.extend_from_slice(b"<p>Download this folder as <a href=\"?archive=tar\" download>.tar</a> or <a href=\"?archive=zip\" download>.zip</a></p>\n");
    if view.writable && view.search.is_none() {
        super::write_ui::push_controls(&mut html);
    }
    html.extend_from_slice(b"<table>\n<thead><tr>");
    for (key, label) in [(SortKey::Name, "Name"), (SortKey::Size, "Size"), (SortKey::Date, "Modified (UTC)")] {
        sort_header(&mut html, key, label, view);
    }
    html.extend_from_slice(b"</tr></thead>\n<tbody>\n");
    if !dir.is_root() && view.search.is_none() {
        html.extend_from_slice(b"<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for row in rows {
        let is_dir = row.meta.kind == Kind::Dir;
        html.extend_from_slice(b"<tr><td><a href=\"");
        // Search matches are paths below this folder: encode each segment.
        for (i, segment) in row.name.as_bytes().split(|&b| b == b'/').enumerate() {
            if i > 0 {
                html.push(b'/');
            }
            push_encoded_segment(&mut html, segment);
        }
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
    html.extend_from_slice(b"</tbody>\n</table>\n<footer>ferry</footer>\n");
    if view.writable && view.search.is_none() {
        super::write_ui::push_script(&mut html);
    }
    html.extend_from_slice(b"</body>\n</html>\n");
    html
}

/// `/ a / b /`, each ancestor a relative link (`../../`, `../`), the
/// current directory plain text.
fn breadcrumbs(html: &mut Vec<u8>, dir: &VirtualPath) {
    let names: Vec<&std::ffi::OsStr> = dir.names().collect();
    let up = |html: &mut Vec<u8>, levels: usize| {
        html.extend_from_slice(b"<a href=\"");
        for _ in 0..levels {
            html.extend_from_slice(b"../");
        }
        if levels == 0 {
            html.extend_from_slice(b"./");
        }
        html.extend_from_slice(b"\">");
    };
    up(html, names.len());
    html.extend_from_slice(b"/</a>");
    for (i, name) in names.iter().enumerate() {
        let levels = names.len() - 1 - i;
        if levels == 0 {
            escape_html(html, name.as_bytes());
        } else {
            up(html, levels);
            escape_html(html, name.as_bytes());
            html.extend_from_slice(b"</a>");
        }
        html.push(b'/');
    }
}

/// A column header linking to the listing sorted by `key`: ascending by
/// name and descending by size or date at first, the other way round when
/// it is the current order. The current column shows an arrow.
fn sort_header(html: &mut Vec<u8>, key: SortKey, label: &str, view: &View) {
    let current = view.sort == key;
    let first_descending = key != SortKey::Name;
    let descending = if current { !view.descending } else { first_descending };
    let order = if descending { "desc" } else { "asc" };
    let _ = write!(html, "<th><a href=\"?sort={}&amp;order={order}", key.as_str());
    if let Some(term) = &view.search {
        // Re-sorting a search keeps searching.
        html.extend_from_slice(b"&amp;q=");
        push_encoded_segment(html, term.as_bytes());
    }
    let _ = write!(html, "\">{label}");
    if current {
        html.extend_from_slice(if view.descending { " \u{2193}".as_bytes() } else { " \u{2191}".as_bytes() });
    }
    html.extend_from_slice(b"</a></th>");
}

/// Appends `raw` as HTML text: decoded as UTF-8 (invalid bytes become
/// U+FFFD) with `& < > " '` escaped.
fn escape_html(out: &mut Vec<u8>, raw: &[u8]) {
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

/// Unix seconds as `YYYY-MM-DD HH:MM` in UTC.
fn civil_time(out: &mut Vec<u8>, secs: i64) {
    let in_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let _ = write!(out, "{year:04}-{month:02}-{day:02} {:02}:{:02}", in_day / 3600, in_day % 3600 / 60);
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
    fn breadcrumbs_link_every_ancestor() {
        let root = VirtualPath::root();
        let deeper = root.join_name(std::ffi::OsStr::new("sub")).join_name(std::ffi::OsStr::new("a&b"));
        assert_eq!(text(|o| breadcrumbs(o, &root)), "<a href=\"./\">/</a>");
        assert_eq!(text(|o| breadcrumbs(o, &deeper)), "<a href=\"../../\">/</a><a href=\"../\">sub</a>/a&amp;b/");
    }

    #[test]
    fn sort_headers_toggle_the_current_column() {
        let by_size = View { sort: SortKey::Size, descending: true, ..View::default() };
        let page = String::from_utf8(render(&VirtualPath::root(), &[], &by_size, true)).unwrap();
        assert!(page.contains("<a href=\"?sort=name&amp;order=asc\">Name</a>"), "{page}");
        assert!(page.contains("<a href=\"?sort=size&amp;order=asc\">Size \u{2193}</a>"), "{page}");
        assert!(page.contains("<a href=\"?sort=date&amp;order=desc\">Modified (UTC)</a>"), "{page}");
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
