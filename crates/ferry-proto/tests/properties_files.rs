//! The file session's invariants as proptest properties, on stable in CI:
//! the same checks the `file_session` fuzz target runs
//! (`tests/invariants/`, `docs/FUZZING.md`), on random inputs.

mod invariants;

use invariants::files;
use invariants::source::repeat_to;
use invariants::tree::Tree;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(invariants::cases(48)))]

    #[test]
    fn file_session_invariants(data in proptest::collection::vec(any::<u8>(), 0..160)) {
        files::check(&data);
    }
}

/// Thousands of pipelined requests, the client reading nothing until
/// they are all sent: the queue stays bounded (one pass handed a
/// megabyte of them too), and a client reading slowly gets the same
/// answers.
#[test]
fn thousands_of_undrained_requests_keep_the_queue_bounded() {
    let tree = Tree::new("files-flood");
    for mix in [&b"ping\n"[..], b"help\n", b"get hello.txt\nstat sub\n", b"pwd\nnope\n", b"sum hello.txt\nls\n"] {
        let flood = repeat_to(mix, 1 << 20, 1 << 20);
        files::check_undrained(&tree, &flood[..flood.len().min(64 * 1024)], 64 * 1024);
        let mut session = tree.files_session(false);
        invariants::drive::assert_one_pass_bounded(&mut session, &flood, files::MAX_QUEUED);
    }
}

/// Every known way out of the root, with every command, writes allowed,
/// each on a fresh tree (an upload over a symlink replaces it, closing
/// the way for the commands after it): the fuzzer's paths reach these by
/// chance, this test always.
#[test]
fn every_way_out_is_closed() {
    let paths = [
        "up",
        "sub/upup",
        "abs",
        "absdir",
        "absdir/x",
        "out",
        "out/",
        "out/x",
        "proc",
        "proc/etc",
        "sub/deeper/top",
        "sub/deeper/top/x",
        "loop",
        "..",
        "../secret.txt",
        "/../secret.txt",
        "\"..\\x2fsecret.txt\"",
        "in/../../secret.txt",
        "sub/../../outside",
    ];
    for command in ["get", "sum", "stat", "ls", "cd", "put", "mkdir", "rm"] {
        for path in paths {
            let size = if command == "put" { " 3" } else { "" };
            let mut lines = vec![files::Line { text: format!("{command} {path}{size}").into_bytes(), crlf: false }];
            if command == "cd" {
                lines.push(files::Line { text: b"ls".to_vec(), crlf: false });
            }
            let tree = Tree::new("files-ways-out");
            files::check_one_at_a_time(&tree, true, &files::Script(lines));
        }
    }
}
