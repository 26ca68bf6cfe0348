//! Access log lines: nginx's `combined` format (with the duration added at
//! the end, as nginx's `$request_time`) or one JSON object per line.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_proto::observe::Record;

/// How access log lines are written (`--access-log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `ADDR - USER [02/Dec/2026:08:30:00 +0000] "GET / HTTP/1.1" 200 123 "REFERER" "AGENT" 0.001`
    #[default]
    Combined,
    /// `{"time":"2026-12-02T08:30:00.123Z","service":"http",...}`
    Json,
}

/// Who asked and over which service: the connection's part of a line.
pub(crate) struct Origin<'a> {
    pub(crate) service: &'a str,
    pub(crate) remote: &'a str,
}

/// Formats `record` as one line, `\n` included, into `line` (cleared).
pub(crate) fn line(format: Format, origin: &Origin<'_>, record: &Record<'_>, line: &mut String) {
    line.clear();
    let secs = record.duration.as_secs_f64();
    match format {
        Format::Combined => {
            let _ = write!(line, "{} - ", origin.remote);
            escaped_or_dash(line, record.user);
            let _ = write!(line, " [{}] \"", clf_time(record.time));
            escaped(line, record.request);
            let _ = write!(line, "\" {} {} \"", record.status, record.bytes_out);
            escaped_or_dash(line, record.referer);
            line.push_str("\" \"");
            escaped_or_dash(line, record.user_agent);
            let _ = writeln!(line, "\" {secs:.3}");
        }
        Format::Json => {
            let _ = write!(line, "{{\"time\":\"{}\",\"service\":", iso_time(record.time));
            json_str(line, Some(origin.service));
            line.push_str(",\"remote_addr\":");
            json_str(line, Some(origin.remote));
            line.push_str(",\"user\":");
            json_str(line, record.user);
            line.push_str(",\"request\":");
            json_str(line, Some(record.request));
            let _ = write!(
                line,
                ",\"status\":{},\"bytes_sent\":{},\"bytes_received\":{},\"referer\":",
                record.status, record.bytes_out, record.bytes_in
            );
            json_str(line, record.referer);
            line.push_str(",\"user_agent\":");
            json_str(line, record.user_agent);
            let _ = writeln!(line, ",\"duration\":{secs:.6}}}");
        }
    }
}

/// nginx's escaping of a field: `"`, `\` and bytes outside printable
/// ASCII as `\xHH`.
fn escaped(line: &mut String, text: &str) {
    for b in text.bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(line, "\\x{b:02X}");
        } else {
            line.push(char::from(b));
        }
    }
}

fn escaped_or_dash(line: &mut String, text: Option<&str>) {
    match text {
        Some(t) if !t.is_empty() => escaped(line, t),
        _ => line.push('-'),
    }
}

fn json_str(line: &mut String, text: Option<&str>) {
    let Some(text) = text else {
        line.push_str("null");
        return;
    };
    line.push('"');
    for c in text.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(line, "\\u{:04x}", u32::from(c));
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// (year, month, day, hour, minute, second, millisecond) in UTC.
fn parts(t: SystemTime) -> (i64, u32, u32, u64, u64, u64, u32) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = ferry_proto::http::civil_from_days((secs / 86_400) as i64);
    let (m, d) = (m as u32, d as u32);
    let s = secs % 86_400;
    (y, m, d, s / 3600, s / 60 % 60, s % 60, since.subsec_millis())
}

/// `02/Dec/2026:08:30:00 +0000` (times are logged in UTC).
fn clf_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, m, d, hh, mm, ss, _) = parts(t);
    let month = MONTHS[(m as usize).saturating_sub(1) % 12];
    format!("{d:02}/{month}/{y}:{hh:02}:{mm:02}:{ss:02} +0000")
}

/// `2026-12-02T08:30:00.123Z`.
fn iso_time(t: SystemTime) -> String {
    let (y, m, d, hh, mm, ss, ms) = parts(t);
    format!("{y}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record(user: Option<&'static str>) -> Record<'static> {
        Record {
            time: UNIX_EPOCH + Duration::from_secs(1_796_200_200),
            duration: Duration::from_millis(12),
            request: "GET /a\"b HTTP/1.1",
            status: 200,
            bytes_out: 5,
            bytes_in: 40,
            user,
            referer: None,
            user_agent: Some("curl/8"),
        }
    }

    #[test]
    fn combined_like_nginx() {
        let mut out = String::new();
        let origin = Origin { service: "http", remote: "127.0.0.1" };
        line(Format::Combined, &origin, &record(Some("ann")), &mut out);
        assert_eq!(
            out,
            "127.0.0.1 - ann [02/Dec/2026:08:30:00 +0000] \"GET /a\\x22b HTTP/1.1\" 200 5 \"-\" \"curl/8\" 0.012\n"
        );
    }

    #[test]
    fn json_escapes() {
        let mut out = String::new();
        let origin = Origin { service: "files", remote: "::1" };
        line(Format::Json, &origin, &record(None), &mut out);
        assert!(out.starts_with("{\"time\":\"2026-12-02T08:30:00.000Z\",\"service\":\"files\",\"remote_addr\":\"::1\",\"user\":null,\"request\":\"GET /a\\\"b HTTP/1.1\""), "{out}");
        assert!(out.ends_with(",\"duration\":0.012000}\n"), "{out}");
    }
}
