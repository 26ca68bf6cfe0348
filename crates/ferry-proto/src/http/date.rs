//! HTTP dates: the `Date` header of a given moment (each session formats
//! it at most once a second), `Last-Modified` formatting, and date parsing.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`: always 29 bytes.
pub(crate) type HttpDate = [u8; 29];

/// The last second `httpdate` can format (9999-12-31T23:59:59Z); it panics
/// past it, and before the epoch, so file times are clamped into range.
const LATEST: i64 = 253_402_300_799;

/// The last `Date` a session formatted: the text changes once a second,
/// so most answers reuse it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DateMemo {
    secs: u64,
    text: HttpDate,
}

impl Default for DateMemo {
    fn default() -> DateMemo {
        DateMemo { secs: u64::MAX, text: [b' '; 29] }
    }
}

impl DateMemo {
    /// `wall` as an HTTP date.
    pub(crate) fn at(&mut self, wall: SystemTime) -> HttpDate {
        let secs = wall.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if secs != self.secs {
            self.secs = secs;
            self.text = format(secs as i64);
        }
        self.text
    }
}

/// Formats Unix seconds (e.g. a file's mtime) as an HTTP date, clamped to
/// the range HTTP dates can express.
pub(crate) fn format(unix_secs: i64) -> HttpDate {
    let secs = unix_secs.clamp(0, LATEST) as u64;
    let date = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(secs));
    let mut out = Fixed { buf: [b' '; 29], len: 0 };
    // Cannot fail: an IMF-fixdate is exactly 29 bytes.
    let _ = write!(out, "{date}");
    out.buf
}

/// Parses any of the three HTTP date formats into Unix seconds.
pub(crate) fn parse(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let time = httpdate::parse_http_date(text.trim()).ok()?;
    Some(time.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// Year, month (1-12) and day (1-31) of a count of days since 1970-01-01
/// (Howard Hinnant's days-to-civil, valid for any day count we can meet):
/// for listings' dates, zip's DOS dates and the access log's times, which
/// need no clock library.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A `fmt::Write` into a fixed 29-byte buffer.
struct Fixed {
    buf: HttpDate,
    len: usize,
}

impl std::fmt::Write for Fixed {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parses_and_clamps() {
        assert_eq!(&format(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse(b"Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse(b"Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        assert_eq!(parse(b"yesterday"), None);
        assert_eq!(&format(-5), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&format(i64::MAX), b"Fri, 31 Dec 9999 23:59:59 GMT");
        let mut memo = DateMemo::default();
        let at = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(&memo.at(at), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&memo.at(at + Duration::from_millis(999)), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&memo.at(at + Duration::from_secs(1)), b"Sun, 06 Nov 1994 08:49:38 GMT");
    }
}
