//! [`VirtualPath`]: a path as a client names it inside the served root,
//! normalised, before any filesystem call (see `root.rs` for how it is
//! resolved and opened).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// A normalised path inside the served root: no `.`, no `..`, no empty
/// names. `/` is the root itself. Names are raw bytes (Linux names need
/// not be UTF-8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VirtualPath {
    pub(crate) names: Vec<OsString>,
}

impl VirtualPath {
    /// The served root, `/`.
    pub fn root() -> VirtualPath {
        VirtualPath::default()
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    /// The last name, or `None` for `/`.
    pub fn file_name(&self) -> Option<&OsStr> {
        self.names.last().map(OsString::as_os_str)
    }

    /// The path's names from the root down.
    pub fn names(&self) -> impl Iterator<Item = &OsStr> {
        self.names.iter().map(OsString::as_os_str)
    }

    /// The path as raw bytes, `/`-separated, starting with `/`.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.names.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for name in &self.names {
            out.push(b'/');
            out.extend_from_slice(name.as_bytes());
        }
        out
    }

    /// The path relative to the root directory, for `openat2` (`.` for `/`).
    pub(crate) fn relative(&self) -> PathBuf {
        if self.names.is_empty() {
            return PathBuf::from(".");
        }
        let mut bytes = Vec::new();
        for (i, name) in self.names.iter().enumerate() {
            if i > 0 {
                bytes.push(b'/');
            }
            bytes.extend_from_slice(name.as_bytes());
        }
        PathBuf::from(OsString::from_vec(bytes))
    }

    /// The parent directory and the final name; `None` for `/`.
    pub fn split_last(&self) -> Option<(VirtualPath, &OsStr)> {
        let (last, parent) = self.names.split_last()?;
        Some((VirtualPath { names: parent.to_vec() }, last.as_os_str()))
    }

    /// Parses a path written in a configuration file (`/incoming`,
    /// `/home/alice/`): `/`-separated names from the root, `.` and empty
    /// names skipped; `None` if a name is `..`.
    pub fn parse_absolute(text: &[u8]) -> Option<VirtualPath> {
        let mut names = Vec::new();
        for name in text.split(|&b| b == b'/') {
            match name {
                b"" | b"." => {}
                b".." => return None,
                name => names.push(OsStr::from_bytes(name).to_os_string()),
            }
        }
        Some(VirtualPath { names })
    }

    /// True if `prefix` is this path or one of its ancestors (whole names:
    /// `/incoming` is not a prefix of `/incomingX`).
    pub fn starts_with(&self, prefix: &VirtualPath) -> bool {
        self.names.starts_with(&prefix.names)
    }

    /// How many names deep the path is (`/` is 0).
    pub fn depth(&self) -> usize {
        self.names.len()
    }

    /// This path with one more name appended (which must be a plain name).
    pub fn join_name(&self, name: &OsStr) -> VirtualPath {
        let mut names = self.names.clone();
        names.push(name.to_os_string());
        VirtualPath { names }
    }
}

impl std::fmt::Display for VirtualPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}
