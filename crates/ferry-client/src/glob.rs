//! Remote globs (`'*.iso'`, `/logs/*/err?.txt`): the server knows no
//! patterns, so a pattern is matched here against `ls` listings, one path
//! component at a time, as a shell matches local names. `*` and `?` match
//! any bytes but `/`, `[abc]`, `[a-z]` and `[!x]` (or `[^x]`) one byte of a
//! set, `\` makes the next byte literal; a leading `.` is matched only by a
//! pattern that starts with one.

/// Whether `path` holds an unescaped `*`, `?` or `[`: only such paths are
/// expanded.
pub fn has_glob(path: &[u8]) -> bool {
    let mut escaped = false;
    for &b in path {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
    }
    false
}

/// A pattern component without its escapes (`a\*b` -> `a*b`), for the
/// components of a pattern that hold no wildcard.
pub fn unescape(component: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(component.len());
    let mut escaped = false;
    for &b in component {
        if b == b'\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(b);
    }
    out
}

/// Whether the name `name` (one component, no `/`) matches `pattern`.
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    matches(pattern, name)
}

/// The matcher: linear in the usual case, backtracking only to the last
/// `*` (which is enough, since a later `*` can absorb what an earlier one
/// would).
fn matches(p: &[u8], n: &[u8]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if let Some(step) = step(&p[pi..], n[ni]) {
            match step {
                Step::Star => {
                    star = Some((pi + 1, ni));
                    pi += 1;
                    continue;
                }
                Step::Matched(len) => {
                    pi += len;
                    ni += 1;
                    continue;
                }
                Step::Mismatch => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

enum Step {
    Star,
    /// The byte matched the pattern's next `len` bytes.
    Matched(usize),
    Mismatch,
}

/// How the start of pattern `p` deals with the byte `c`; `None` at the
/// pattern's end.
fn step(p: &[u8], c: u8) -> Option<Step> {
    let first = *p.first()?;
    Some(match first {
        b'*' => Step::Star,
        b'?' => Step::Matched(1),
        b'[' => match class(p, c) {
            Some((true, len)) => Step::Matched(len),
            Some((false, _)) => Step::Mismatch,
            // No closing `]`: a literal `[`.
            None if c == b'[' => Step::Matched(1),
            None => Step::Mismatch,
        },
        b'\\' if p.len() > 1 => match p[1] == c {
            true => Step::Matched(2),
            false => Step::Mismatch,
        },
        literal if literal == c => Step::Matched(1),
        _ => Step::Mismatch,
    })
}

/// Matches `c` against the set `p` starts with (`[...]`): whether it is
/// in it, and the set's length; `None` if the set is not closed.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negated = matches!(p.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let b = *p.get(i)?;
        if b == b']' && !first {
            return Some((found != negated, i + 1));
        }
        first = false;
        let (lo, used) = match b {
            b'\\' => (*p.get(i + 1)?, 2),
            b => (b, 1),
        };
        i += used;
        if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|&h| h != b']') {
            let hi = p[i + 1];
            i += 2;
            found |= (lo..=hi).contains(&c);
        } else {
            found |= lo == c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_sets_and_escapes() {
        assert!(glob_match(b"*.iso", b"debian.iso"));
        assert!(!glob_match(b"*.iso", b"debian.iso.part"));
        assert!(glob_match(b"*", b"with space"));
        assert!(glob_match(b"a*b*c", b"aXXbYYbc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY"));
        assert!(glob_match(b"f?.txt", b"f1.txt"));
        assert!(!glob_match(b"f?.txt", b"f10.txt"));
        assert!(glob_match(b"[ab]x", b"bx") && !glob_match(b"[ab]x", b"cx"));
        assert!(glob_match(b"[a-c]x", b"bx") && !glob_match(b"[a-c]x", b"dx"));
        assert!(glob_match(b"[!a-c]x", b"dx") && !glob_match(b"[!a-c]x", b"ax"));
        assert!(glob_match(b"[]]", b"]"));
        assert!(glob_match(b"a\\*", b"a*") && !glob_match(b"a\\*", b"ab"));
        assert!(glob_match(b"[x", b"[x"));
        assert!(glob_match(b"*\xff*", b"a\xffb"), "names need not be UTF-8");
    }

    #[test]
    fn dot_files_need_a_dot() {
        assert!(!glob_match(b"*", b".hidden"));
        assert!(!glob_match(b"?hidden", b".hidden"));
        assert!(glob_match(b".*", b".hidden"));
    }

    #[test]
    fn which_paths_are_patterns() {
        assert!(has_glob(b"/isos/*.iso"));
        assert!(has_glob(b"f[12]"));
        assert!(!has_glob(b"/plain/name.txt"));
        assert!(!has_glob(b"a\\*b"));
        assert_eq!(unescape(b"a\\*b\\\\"), b"a*b\\");
    }
}
