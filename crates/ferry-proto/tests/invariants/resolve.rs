//! `Root::resolve`: request paths to normalised virtual paths, never
//! above the root.
//!
//! Input: byte 0 says how many of the bytes after it (below 16) build a
//! working directory, the rest build a request; each byte stands for one
//! of [`TOKENS`] (0xfe and 0xff for names of 1000 and 256 bytes). Both are
//! checked: the working directory resolved from `/` (`/` if refused), the
//! request from it.
//!
//! Invariants, for every answer:
//! - a resolved path is normalised: every name non-empty, not `.` or
//!   `..`, without `/` or NUL, at most 255 bytes; at most 4096 bytes in
//!   all; written as `/` followed by names;
//! - resolving its own bytes from anywhere gives it back;
//! - a relative request means the same as the working directory followed
//!   by it;
//! - never above the root: a request whose `..`s climb above `/` (counting
//!   from the working directory's depth, or 0 for an absolute one) is
//!   refused, as escaping unless it was refused for a bad name first, and
//!   only such a request is refused as escaping; so if a request
//!   resolves, so does every prefix of it that ends at a `/` (no `..`
//!   climbs out and back down);
//! - a NUL byte anywhere is refused as a bad path, never resolved.

use std::path::PathBuf;
use std::sync::OnceLock;

use ferry_proto::root::{FsError, MAX_NAME, MAX_PATH, Root, VirtualPath};

use super::source::Source;

/// Pieces of paths.
pub const TOKENS: &[&[u8]] =
    &[b"..", b".", b"/", b"//", b"a", b"b", b"sub", b"\0", b"\xc3\xa9", b"\xff", b"...", b" ", b"\\", b"a/../", b"../"];

/// The root paths are resolved in (resolving touches no file).
fn root() -> &'static Root {
    static ROOT: OnceLock<Root> = OnceLock::new();
    ROOT.get_or_init(|| Root::open(&PathBuf::from("/")).expect("open /"))
}

fn decode_path(src: &mut Source<'_>, tokens: usize) -> Vec<u8> {
    let mut path = Vec::new();
    for _ in 0..tokens {
        if src.is_empty() {
            break;
        }
        match src.byte() {
            0xff => path.extend(std::iter::repeat_n(b'n', 256)),
            0xfe => path.extend(std::iter::repeat_n(b'x', 1000)),
            b => path.extend_from_slice(TOKENS[usize::from(b) % TOKENS.len()]),
        }
    }
    path
}

/// Every invariant of the module on one input.
pub fn check(data: &[u8]) {
    let mut src = Source::new(data);
    let cwd_tokens = src.below(16);
    let cwd_request = decode_path(&mut src, cwd_tokens);
    let request = decode_path(&mut src, data.len());
    let top = VirtualPath::root();
    check_one(&top, &cwd_request);
    let cwd = root().resolve(&top, &cwd_request).unwrap_or_else(|_| top.clone());
    check_one(&cwd, &request);
}

/// The invariants for `request` resolved from `cwd`.
fn check_one(cwd: &VirtualPath, request: &[u8]) {
    let top = VirtualPath::root();
    let got = root().resolve(cwd, request);
    let show = || format!("{:?} from {cwd}", String::from_utf8_lossy(request));
    if request.contains(&0) {
        assert!(matches!(got, Err(FsError::BadPath(_))), "{}: a NUL byte is not refused: {got:?}", show());
    }
    let mut depth = if request.first() == Some(&b'/') { 0 } else { cwd.names().count() };
    let climbs_out = request.split(|&b| b == b'/').any(|name| match name {
        b".." => depth.checked_sub(1).map(|d| depth = d).is_none(),
        b"" | b"." => false,
        _ => {
            depth += 1;
            false
        }
    });
    if climbs_out {
        assert!(matches!(got, Err(FsError::Escapes | FsError::BadPath(_))), "{}: climbs out, yet {got:?}", show());
    }
    if matches!(got, Err(FsError::Escapes)) {
        assert!(climbs_out, "{}: refused as escaping, but it stays inside", show());
    }
    if let Ok(path) = &got {
        assert_normalised(path);
        assert_eq!(root().resolve(cwd, &path.to_bytes()).ok().as_ref(), Some(path), "{}", show());
        assert_eq!(root().resolve(&top, &path.to_bytes()).ok().as_ref(), Some(path), "{}", show());
        for (i, _) in request.iter().enumerate().filter(|&(_, &b)| b == b'/') {
            let prefix = &request[..i];
            assert!(
                !matches!(root().resolve(cwd, prefix), Err(FsError::Escapes)),
                "{}: resolves, but its prefix {:?} climbs above the root",
                show(),
                String::from_utf8_lossy(prefix)
            );
        }
    }
    if request.first() != Some(&b'/') {
        let mut absolute = cwd.to_bytes();
        absolute.push(b'/');
        absolute.extend_from_slice(request);
        let joined = root().resolve(&top, &absolute);
        // The joined request is longer, so only it may be too long.
        if absolute.len() <= MAX_PATH {
            assert_eq!(
                format!("{:?}", joined),
                format!("{:?}", got),
                "{}: not the same as {:?}",
                show(),
                String::from_utf8_lossy(&absolute)
            );
        }
    }
}

/// A virtual path holds only plain names, within Linux's limits.
fn assert_normalised(path: &VirtualPath) {
    let bytes = path.to_bytes();
    assert!(bytes.starts_with(b"/") && bytes.len() <= MAX_PATH + 1, "{path}");
    assert!(path.is_root() == (bytes == b"/"), "{path}");
    for name in path.names() {
        let name = name.as_encoded_bytes();
        assert!(!name.is_empty() && name != b"." && name != b"..", "{path}: name {name:?}");
        assert!(!name.contains(&b'/') && !name.contains(&0) && name.len() <= MAX_NAME, "{path}: name {name:?}");
    }
}
