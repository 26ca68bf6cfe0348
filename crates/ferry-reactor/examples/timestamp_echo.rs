//! Line-based echo with a timestamp: each complete line comes back as
//! `[YYYY-MM-DD HH:MM:SS] server reply: <line>` (UTC). Partial lines wait in
//! the buffer for the rest (the sticky/half packet problem, solved once).
//!
//! `cargo run -p ferry-reactor --example timestamp_echo -- 127.0.0.1:2008`

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use ferry_reactor::Callbacks;

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn timestamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!("[{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}]", t / 3600, t / 60 % 60, t % 60)
}

fn main() -> std::process::ExitCode {
    let callbacks = Callbacks::new().on_message(|c, buf| {
        while let Some(eol) = buf.find_eol() {
            let line = buf.take(eol + 1);
            let mut reply = format!("{} server reply: ", timestamp()).into_bytes();
            reply.extend_from_slice(&line);
            c.send(&reply);
        }
    });
    common::serve("timestamp_echo", "127.0.0.1:2008", callbacks)
}
