//! `ferry ls ADDR [PATH]`: list a remote directory as ls(1) would: names in
//! columns on a terminal, one per line for scripts, `-l` long form, `-a`,
//! sorting by name, time or size, `--json`.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;

use ferry_client::{EntryInfo, Kind};
use ferry_proto::files::escape::escape_text;

use crate::connect::ConnectArgs;

/// Arguments of `ferry ls`. `-h` is ls's human-readable sizes, so help is
/// `--help` only.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct LsArgs {
    /// Server address, HOST[:PORT] (port 7070 if omitted), or unix:/PATH or unix:@NAME.
    addr: String,
    /// Remote directory to list (default: the served root).
    path: Option<OsString>,
    #[command(flatten)]
    view: View,
    #[command(flatten)]
    connect: ConnectArgs,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// How a listing is filtered, ordered and printed; `ferry shell`'s `ls`
/// takes the same flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct View {
    /// Long form: type, size, modification time (local), name.
    #[arg(short = 'l', long = "long")]
    long: bool,
    /// With -l: sizes in powers of 1024 with a unit (1.5K, 230M).
    #[arg(short = 'h', long = "human-readable")]
    human: bool,
    /// Also names that begin with `.`.
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Newest first.
    #[arg(short = 't', conflicts_with = "by_size")]
    by_time: bool,
    /// Largest first.
    #[arg(short = 'S')]
    by_size: bool,
    /// Reverse the order.
    #[arg(short = 'r', long = "reverse")]
    reverse: bool,
    /// A JSON array for scripts: name, type, size, mtime (Unix seconds).
    #[arg(long, conflicts_with_all = ["long", "human"])]
    json: bool,
}

/// Runs `ferry ls`.
pub fn run(args: LsArgs) -> anyhow::Result<()> {
    let mut client = args.connect.connect(&args.addr)?;
    let entries = client.ls(args.path.as_ref().map(|p| p.as_bytes()))?;
    let width = std::io::stdout().is_terminal().then(terminal_width);
    print!("{}", args.view.render(entries, width));
    if let Err(e) = client.quit() {
        tracing::debug!(error = %e, "quit failed");
    }
    Ok(())
}

impl View {
    /// The listing as text: `width` is the terminal's (None when the
    /// output is not a terminal: one name per line then, as ls(1) does).
    pub fn render(&self, entries: Vec<EntryInfo>, width: Option<usize>) -> String {
        let entries = self.select(entries);
        if self.json {
            format_json(&entries)
        } else if self.long {
            format_long(&entries, self.human)
        } else if let Some(width) = width {
            format_columns(&entries, width)
        } else {
            entries.iter().map(|e| escape_text(&e.name) + "\n").collect()
        }
    }

    /// Drops hidden names unless `-a`, then orders: by name, or newest /
    /// largest first (ties by name), reversed with `-r`.
    fn select(&self, mut entries: Vec<EntryInfo>) -> Vec<EntryInfo> {
        if !self.all {
            entries.retain(|e| !e.name.starts_with(b"."));
        }
        entries.sort_by(|a, b| {
            let key = if self.by_time {
                b.mtime.cmp(&a.mtime)
            } else if self.by_size {
                b.size.cmp(&a.size)
            } else {
                std::cmp::Ordering::Equal
            };
            key.then_with(|| a.name.cmp(&b.name))
        });
        if self.reverse {
            entries.reverse();
        }
        entries
    }
}

/// The terminal's width in columns (80 if it cannot be read).
fn terminal_width() -> usize {
    match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(size) if size.ws_col > 0 => usize::from(size.ws_col),
        _ => 80,
    }
}

/// The long form with exact sizes (`ferry shell`'s `stat` and default `ls`).
pub fn format_entries(entries: &[EntryInfo]) -> String {
    format_long(entries, false)
}

/// One row per entry: type, size (right-aligned), local modification
/// time, name (escaped so odd bytes cannot break the line; directories end
/// in `/`).
fn format_long(entries: &[EntryInfo], human: bool) -> String {
    let sizes: Vec<String> =
        entries.iter().map(|e| if human { human_size(e.size) } else { e.size.to_string() }).collect();
    let width = sizes.iter().map(String::len).max().unwrap_or(1);
    let tz = jiff::tz::TimeZone::system();
    let mut out = String::new();
    for (entry, size) in entries.iter().zip(&sizes) {
        let mtime = match jiff::Timestamp::from_second(entry.mtime) {
            Ok(t) => t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string(),
            Err(_) => entry.mtime.to_string(),
        };
        let kind = match entry.kind {
            Kind::File => 'f',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::Other => 'o',
        };
        out.push_str(&format!("{kind}  {size:>width$}  {mtime}  {}\n", display_name(entry)));
    }
    out
}

/// The name as a person reads it: escaped, directories ending in `/`.
fn display_name(entry: &EntryInfo) -> String {
    let mut name = escape_text(&entry.name);
    if entry.kind == Kind::Dir {
        name.push('/');
    }
    name
}

/// A size as ls -h prints it: bytes below 1 KiB, else rounded up to one
/// decimal below 10 of a unit and to a whole number above.
pub(crate) fn human_size(size: u64) -> String {
    const UNITS: [char; 6] = ['K', 'M', 'G', 'T', 'P', 'E'];
    if size < 1024 {
        return size.to_string();
    }
    let mut value = size as f64 / 1024.0;
    let mut unit = 0;
    loop {
        let shown = if value < 10.0 { (value * 10.0).ceil() / 10.0 } else { value.ceil() };
        if shown < 1024.0 || unit == UNITS.len() - 1 {
            return if shown < 10.0 {
                format!("{shown:.1}{}", UNITS[unit])
            } else {
                format!("{shown:.0}{}", UNITS[unit])
            };
        }
        value /= 1024.0;
        unit += 1;
    }
}

/// Names in as many columns as fit `width`, filled top to bottom (ls -C).
fn format_columns(entries: &[EntryInfo], width: usize) -> String {
    let names: Vec<String> = entries.iter().map(display_name).collect();
    let widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    const GAP: usize = 2;
    // At most one column per 3 cells (a 1-character name and its gap), so
    // the search stays linear in the number of names.
    let most = names.len().min((width / (1 + GAP)).max(1));
    let (rows, cols) = (1..=most)
        .rev()
        .map(|cols| (names.len().div_ceil(cols), cols))
        .find(|&(rows, _)| {
            let total: usize = widths.chunks(rows.max(1)).map(|column| column.iter().max().unwrap_or(&0) + GAP).sum();
            total <= width + GAP
        })
        .unwrap_or((names.len(), 1));
    let col_width: Vec<usize> = widths.chunks(rows.max(1)).map(|c| c.iter().copied().max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in 0..rows {
        let mut line = String::new();
        for col in 0..cols {
            let Some(name) = names.get(col * rows + row) else { break };
            if col > 0 {
                let pad = col_width[col - 1] + GAP - widths[(col - 1) * rows + row];
                line.extend(std::iter::repeat_n(' ', pad));
            }
            line.push_str(name);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A JSON array of the entries. A name that is not UTF-8 is given escaped
/// as the protocol escapes it, with `"escaped": true`.
fn format_json(entries: &[EntryInfo]) -> String {
    let items: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            let kind = match e.kind {
                Kind::File => "file",
                Kind::Dir => "dir",
                Kind::Symlink => "symlink",
                Kind::Other => "other",
            };
            let mut item = serde_json::json!({ "type": kind, "size": e.size, "mtime": e.mtime });
            match std::str::from_utf8(&e.name) {
                Ok(name) => item["name"] = name.into(),
                Err(_) => {
                    item["name"] = escape_text(&e.name).into();
                    item["escaped"] = true.into();
                }
            }
            item
        })
        .collect();
    serde_json::Value::Array(items).to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind, size: u64, mtime: i64, name: &[u8]) -> EntryInfo {
        EntryInfo { kind, size, mtime, name: name.to_vec() }
    }

    fn sample() -> Vec<EntryInfo> {
        vec![
            entry(Kind::File, 5, 300, b"b.txt"),
            entry(Kind::Dir, 4096, 100, b"sub"),
            entry(Kind::File, 9000, 200, b"a.iso"),
            entry(Kind::File, 1, 400, b".hidden"),
        ]
    }

    fn names(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn columns_line_up_and_names_are_escaped() {
        let text = format_entries(&[
            entry(Kind::Dir, 4096, 1_700_000_000, b"sub"),
            entry(Kind::File, 5, 1_700_000_000, b"a\nb"),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("d  4096  ") && lines[0].ends_with("  sub/"), "{text}");
        assert!(lines[1].starts_with("f     5  ") && lines[1].ends_with("  a\\nb"), "{text}");
        // Same column for the time in both rows.
        assert_eq!(lines[0].find("  2"), lines[1].find("  2"));
    }

    #[test]
    fn scripts_get_one_visible_name_per_line_sorted_by_name() {
        let text = View::default().render(sample(), None);
        assert_eq!(names(&text), ["a.iso", "b.txt", "sub"]);
        let all = View { all: true, ..View::default() }.render(sample(), None);
        assert_eq!(names(&all), [".hidden", "a.iso", "b.txt", "sub"]);
    }

    #[test]
    fn sorts_by_time_size_and_reversed() {
        let by_time = View { by_time: true, ..View::default() }.render(sample(), None);
        assert_eq!(names(&by_time), ["b.txt", "a.iso", "sub"]);
        let by_size = View { by_size: true, reverse: true, ..View::default() }.render(sample(), None);
        assert_eq!(names(&by_size), ["b.txt", "sub", "a.iso"]);
    }

    #[test]
    fn human_sizes_round_up_as_ls_does() {
        for (size, want) in [
            (0, "0"),
            (1023, "1023"),
            (1024, "1.0K"),
            (1536, "1.5K"),
            (1537, "1.6K"),
            (10 * 1024, "10K"),
            (1024 * 1024 - 1, "1.0M"),
            (5 << 30, "5.0G"),
        ] {
            assert_eq!(human_size(size), want, "{size}");
        }
        let long = View { long: true, human: true, ..View::default() }.render(sample(), None);
        assert!(long.lines().any(|l| l.starts_with("f  8.8K  ") && l.ends_with("a.iso")), "{long}");
    }

    #[test]
    fn a_terminal_gets_columns_that_fit_its_width() {
        let many: Vec<EntryInfo> =
            (0..30).map(|i| entry(Kind::File, 1, 0, format!("file-{i:02}").as_bytes())).collect();
        let text = View::default().render(many, Some(40));
        let lines = names(&text);
        assert!(lines.iter().all(|l| l.len() <= 40), "{text}");
        assert!(lines.len() < 30 && lines.len() >= 30 / 4, "{text}");
        // Filled top to bottom: the first column starts with file-00, file-01.
        assert!(lines[0].starts_with("file-00") && lines[1].starts_with("file-01"), "{text}");
        // One name wider than the terminal still gets its own line.
        let wide = View::default().render(vec![entry(Kind::File, 1, 0, &[b'x'; 90])], Some(40));
        assert_eq!(names(&wide).len(), 1);
    }

    #[test]
    fn json_is_an_array_with_exact_or_escaped_names() {
        let mut entries = sample();
        entries.push(entry(Kind::File, 2, 0, b"bad\xff"));
        let text = View { json: true, all: true, ..View::default() }.render(entries, Some(80));
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let items = value.as_array().expect("an array");
        assert_eq!(items.len(), 5);
        assert_eq!(items[1]["name"], "a.iso");
        assert_eq!(items[1]["size"], 9000);
        assert_eq!(items[4]["type"], "dir");
        let bad = items.iter().find(|i| i["escaped"] == true).expect("the non-UTF-8 name");
        assert_eq!(bad["name"], "bad\\xff");
    }
}
