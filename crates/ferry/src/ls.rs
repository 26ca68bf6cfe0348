//! `ferry ls ADDR [PATH]`: list a remote directory in aligned columns.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use ferry_client::{EntryInfo, Kind};
use ferry_proto::files::escape::escape_text;

use crate::connect::ConnectArgs;

/// Arguments of `ferry ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Server address, HOST[:PORT] (port 7070 if omitted), or unix:/PATH or unix:@NAME.
    addr: String,
    /// Remote directory to list (default: the served root).
    path: Option<OsString>,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Runs `ferry ls`.
pub fn run(args: LsArgs) -> anyhow::Result<()> {
    let mut client = args.connect.connect(&args.addr)?;
    let entries = client.ls(args.path.as_ref().map(|p| p.as_bytes()))?;
    print!("{}", format_entries(&entries));
    if let Err(e) = client.quit() {
        tracing::debug!(error = %e, "quit failed");
    }
    Ok(())
}

/// One row per entry: type, size (right-aligned), local modification
/// time, name (escaped so odd bytes cannot break the line; directories end
/// in `/`). Shared with `ferry shell`.
pub fn format_entries(entries: &[EntryInfo]) -> String {
    let width = entries.iter().map(|e| e.size.to_string().len()).max().unwrap_or(1);
    let tz = jiff::tz::TimeZone::system();
    let mut out = String::new();
    for entry in entries {
        let (kind, suffix) = match entry.kind {
            Kind::File => ('f', ""),
            Kind::Dir => ('d', "/"),
            Kind::Symlink => ('l', ""),
            Kind::Other => ('o', ""),
        };
        let mtime = match jiff::Timestamp::from_second(entry.mtime) {
            Ok(t) => t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string(),
            Err(_) => entry.mtime.to_string(),
        };
        let name = escape_text(&entry.name);
        out.push_str(&format!("{kind}  {:>width$}  {mtime}  {name}{suffix}\n", entry.size));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_names_are_escaped() {
        let entry = |kind, size, name: &[u8]| EntryInfo { kind, size, mtime: 1_700_000_000, name: name.to_vec() };
        let text = format_entries(&[entry(Kind::Dir, 4096, b"sub"), entry(Kind::File, 5, b"a\nb")]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("d  4096  ") && lines[0].ends_with("  sub/"), "{text}");
        assert!(lines[1].starts_with("f     5  ") && lines[1].ends_with("  a\\nb"), "{text}");
        // Same column for the time in both rows.
        assert_eq!(lines[0].find("  2"), lines[1].find("  2"));
    }
}
