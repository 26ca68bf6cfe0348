//! Inputs the fuzz targets found that break an invariant, minimised, as
//! plain tests of the same checks (`tests/invariants/`). They fail until
//! the bug each names is fixed.

mod invariants;

use invariants::source::Split;
use invariants::tree::Tree;
use invariants::{files, http};

/// `http_session` target, minimised input
/// `ff a6 a6 a6 a6 a6 (a6 x 34) 82`: small limits, sent in 15-byte pieces,
/// `/sub/` 34 times then `GET /edge.bin HTTP/1.1\r\nHost: t\r\n\r\n`.
///
/// A request line longer than `max_uri` + 64 that httparse refuses (no
/// method) is answered 400 when its head arrives complete, but 414 when
/// it arrives in pieces: `parse_head` (`src/http/parse.rs`) applies its
/// "request line too long" rule only while the head is partial (or over
/// `max_head`), and hands a complete head to httparse first. The answer
/// depends on how the client's bytes were split.
#[test]
fn a_long_malformed_request_line_is_answered_alike_however_split() {
    http::check(&[[0xff, 0xa6].as_slice(), &[0xa6; 38], &[0x82]].concat());
}

/// The same with the default limits (4 KiB targets): a 4200-byte line
/// without spaces, its first 4180 bytes sent first.
#[test]
fn a_long_malformed_request_line_is_answered_alike_however_split_default_limits() {
    let tree = Tree::new("found-414");
    let stream = [b"GET".repeat(1400), b"\r\nHost: t\r\n\r\n".to_vec()].concat();
    http::check_stream(&tree, false, &stream, &Split::Step(4180));
}

/// `file_session` target (first through its listing check; then made an
/// invariant of its own): `mkdir` could make names ending in `.ferry-part`,
/// the suffix uploads in progress used then, which listings hid, so a
/// later `put` of the name without the suffix answered 409 for a file that
/// was not there. Uploads in progress now live in `.ferry-partials/`, a
/// name every command refuses at any depth: neither `mkdir` nor `put` can
/// make it, and the old suffix is an ordinary name.
#[test]
fn mkdir_refuses_the_reserved_upload_suffix() {
    let tree = Tree::new("found-reserved");
    let lines =
        ["mkdir .notes.txt.ferry-part", "put notes.txt 3", "mkdir .ferry-partials", "mkdir sub/.ferry-partials"]
            .map(|l| files::Line { text: l.as_bytes().to_vec(), crlf: false })
            .to_vec();
    files::check_one_at_a_time(&tree, true, &files::Script(lines));
}
