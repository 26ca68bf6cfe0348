//! Tab completion, without I/O: which word the cursor is in, whether it
//! names a remote or a local path (by command and position), and the
//! candidates for it given a directory's listing. The editor thread asks
//! the connection's thread for remote listings (see `editor.rs`) and
//! reads local ones itself.

use ferry_proto::files::escape::{quote_word, split_words};

/// What the word under the cursor names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The first word: a command name.
    Command,
    /// A path on the server.
    Remote,
    /// A path on this machine.
    Local,
    /// Nothing to complete (an argument that is not a path).
    Nothing,
}

/// The commands the completion offers for the first word.
pub const COMMANDS: &[&str] = &[
    "cd", "df", "exit", "get", "help", "lcd", "lls", "lpwd", "ls", "mget", "mkdir", "mput", "mv", "ping", "put", "pwd",
    "quit", "rename", "rm", "stat", "sum",
];

/// The word the cursor ends: where it starts in `line`, which command and
/// argument position it is, and its bytes with quotes and escapes applied
/// (an unterminated quote is closed; a dangling escape dropped).
#[derive(Debug, PartialEq, Eq)]
pub struct Word {
    /// Byte offset of the word in the line.
    pub start: usize,
    /// What the word names.
    pub target: Target,
    /// The word as typed so far, unquoted.
    pub text: Vec<u8>,
}

/// Finds the word that ends at `pos` and what it names.
pub fn word_at(line: &str, pos: usize) -> Word {
    let head = &line[..pos];
    let mut start = 0;
    let mut index = 0;
    let mut quoted = false;
    let mut escaped = false;
    let mut in_word = false;
    for (i, b) in head.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'"' => quoted = !quoted,
            b' ' | b'\t' if !quoted => {
                if in_word {
                    index += 1;
                }
                in_word = false;
                start = i + 1;
                continue;
            }
            _ => {}
        }
        in_word = true;
    }
    let command = split_words(&line[..line.find([' ', '\t']).unwrap_or(line.len())])
        .ok()
        .and_then(|w| w.into_iter().next())
        .map(|w| String::from_utf8_lossy(&w).to_ascii_lowercase())
        .unwrap_or_default();
    let target = if index == 0 { Target::Command } else { target_of(&command, index) };
    let mut typed = head[start..].to_owned();
    if escaped {
        typed.pop();
    }
    if quoted {
        typed.push('"');
    }
    let text = split_words(&typed).ok().and_then(|w| w.into_iter().next()).unwrap_or_default();
    Word { start, target, text }
}

/// What argument `index` (1-based) of `command` names.
fn target_of(command: &str, index: usize) -> Target {
    match (command, index) {
        ("cd" | "ls" | "stat" | "sum" | "rm" | "mkdir" | "rename" | "mv" | "mget", _) => Target::Remote,
        ("get", 1) | ("put", 2) => Target::Remote,
        ("get", 2) | ("put", 1) | ("lcd" | "lls" | "mput", _) => Target::Local,
        _ => Target::Nothing,
    }
}

/// A name in a listing, and whether it is a directory (completed with a
/// `/` so the next Tab goes inside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The entry's name (bytes, as the file system has it).
    pub name: Vec<u8>,
    /// It is a directory.
    pub dir: bool,
}

/// Splits a typed path into the directory to list (`None`: the current
/// one) and the prefix of the name being completed.
pub fn split_path(text: &[u8]) -> (Option<&[u8]>, &[u8]) {
    match text.iter().rposition(|&b| b == b'/') {
        Some(at) => (Some(&text[..=at]), &text[at + 1..]),
        None => (None, text),
    }
}

/// The candidates for `text` among `names` (the listing of its
/// directory): `(shown, replacement)` pairs, the replacement quoted as the
/// shell reads it. Hidden names only when the prefix asks for them.
pub fn candidates(text: &[u8], names: &[Name]) -> Vec<(String, String)> {
    let (dir, prefix) = split_path(text);
    let mut out: Vec<(String, String)> = names
        .iter()
        .filter(|n| n.name.starts_with(prefix) && (prefix.starts_with(b".") || !n.name.starts_with(b".")))
        .map(|n| {
            let mut full = dir.unwrap_or_default().to_vec();
            full.extend_from_slice(&n.name);
            if n.dir {
                full.push(b'/');
            }
            let mut shown = String::from_utf8_lossy(&n.name).into_owned();
            if n.dir {
                shown.push('/');
            }
            (shown, quote_word(&full))
        })
        .collect();
    out.sort();
    out
}

/// The command names starting with `prefix`.
pub fn commands(prefix: &[u8]) -> Vec<(String, String)> {
    COMMANDS.iter().filter(|c| c.as_bytes().starts_with(prefix)).map(|c| (c.to_string(), format!("{c} "))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(line: &str) -> Word {
        word_at(line, line.len())
    }

    #[test]
    fn the_command_and_position_decide_remote_or_local() {
        assert_eq!(word("ge").target, Target::Command);
        assert_eq!(word("get su").target, Target::Remote);
        assert_eq!(word("get sub/a ").target, Target::Local);
        assert_eq!(word("put loc").target, Target::Local);
        assert_eq!(word("put local.txt  re").target, Target::Remote);
        assert_eq!(word("mv a.txt su").target, Target::Remote);
        assert_eq!(word("rename su").target, Target::Remote);
        assert_eq!(word("CD s").target, Target::Remote);
        assert_eq!(word("lcd ..").target, Target::Local);
        assert_eq!(word("ping x").target, Target::Nothing);
    }

    #[test]
    fn quoted_words_are_read_as_the_shell_reads_them() {
        let w = word("get \"my fi");
        assert_eq!((w.start, w.text.as_slice()), (4, &b"my fi"[..]));
        let w = word("cd \"my dir/\"su");
        assert_eq!(w.text, b"my dir/su");
        assert_eq!(word("ls a\\").text, b"a");
        assert_eq!(word("ls ").text, b"");
    }

    #[test]
    fn candidates_keep_the_directory_and_quote_what_needs_it() {
        let names = [
            Name { name: b"deeper".to_vec(), dir: true },
            Name { name: b"data file".to_vec(), dir: false },
            Name { name: b".hidden".to_vec(), dir: false },
            Name { name: b"other".to_vec(), dir: false },
        ];
        let got = candidates(b"sub/d", &names);
        assert_eq!(
            got,
            vec![
                ("data file".to_owned(), "\"sub/data file\"".to_owned()),
                ("deeper/".to_owned(), "sub/deeper/".to_owned())
            ]
        );
        assert!(candidates(b"", &names).iter().all(|(s, _)| !s.starts_with('.')));
        assert_eq!(candidates(b".h", &names).len(), 1);
        assert_eq!(commands(b"l"), ["lcd", "lls", "lpwd", "ls"].map(|c| (c.to_owned(), format!("{c} "))));
    }
}
