//! Local names derived from remote paths, and the `.part` file of a
//! download.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The last name of a remote path (`/a/b.bin` -> `b.bin`, `dir/` ->
/// `dir`), or `None` if it has none (`/`, `..`).
pub fn remote_basename(remote: &[u8]) -> Option<&OsStr> {
    let end = remote.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let trimmed = &remote[..end];
    let name = trimmed.rsplit(|&b| b == b'/').next().unwrap_or(trimmed);
    match name {
        b"" | b"." | b".." => None,
        name => Some(OsStr::from_bytes(name)),
    }
}

/// Where a download to `target` collects its bytes until complete.
pub(crate) fn part_path(target: &Path) -> PathBuf {
    let mut name = OsString::from(target.as_os_str());
    name.push(".part");
    PathBuf::from(name)
}

/// The directory holding `path`, for `fsync` after a rename.
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basenames() {
        assert_eq!(remote_basename(b"/a/b.bin"), Some(OsStr::new("b.bin")));
        assert_eq!(remote_basename(b"b.bin"), Some(OsStr::new("b.bin")));
        assert_eq!(remote_basename(b"/dir//"), Some(OsStr::new("dir")));
        assert_eq!(remote_basename(b"/"), None);
        assert_eq!(remote_basename(b"a/.."), None);
        assert_eq!(remote_basename(b""), None);
    }

    #[test]
    fn part_is_beside_the_target() {
        assert_eq!(part_path(Path::new("d/x.bin")), Path::new("d/x.bin.part"));
        assert_eq!(parent_dir(Path::new("x.bin")), Path::new("."));
        assert_eq!(parent_dir(Path::new("d/x.bin")), Path::new("d"));
    }
}
