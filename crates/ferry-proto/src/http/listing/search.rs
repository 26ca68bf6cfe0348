//! Searching a folder's tree by name (`?q=TERM`): the archive's confined,
//! lazy walk (symlinks not followed, only what the client may list and
//! read), case-insensitive substring match on names, with bounded work: at
//! most [`MAX_EXAMINED`] entries looked at and [`MAX_RESULTS`] returned,
//! and the page says when it stopped early.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use super::Row;
use crate::access::{Access, Identity};
use crate::http::archive::Rules;
use crate::http::archive::walk::{Item, Walk};
use crate::http::errors::{HttpError, fs_error};
use crate::root::{Kind, Meta, Root, VirtualPath};

/// Most entries one search looks at.
pub(crate) const MAX_EXAMINED: usize = 20_000;
/// Most matches one search returns.
pub(crate) const MAX_RESULTS: usize = 500;

/// What a search found.
#[derive(Debug)]
pub(crate) struct Found {
    /// Matches, named by their path below the searched folder.
    pub rows: Vec<Row>,
    /// False when a bound stopped the search before the whole tree.
    pub complete: bool,
}

/// Searches the tree under `dir` for names containing `term`.
pub(crate) fn search(
    root: &Root,
    dir: &VirtualPath,
    access: &Access,
    who: &Identity,
    term: &str,
) -> Result<Found, HttpError> {
    let term = term.to_lowercase();
    let fd = root.open_dir(dir).map_err(fs_error)?;
    let mut walk = Walk::new(fd, dir.clone(), Vec::new(), root.visibility()).map_err(|e| fs_error(e.into()))?;
    let rules = Rules { access, who };
    let mut rows = Vec::new();
    // The first item is the folder itself.
    let _ = walk.next(&rules);
    for _ in 0..MAX_EXAMINED {
        let Some(item) = walk.next(&rules) else {
            return Ok(Found { rows, complete: true });
        };
        let (path, kind, size, mtime) = match item {
            Item::Dir { path, mtime, .. } => (path, Kind::Dir, 0, mtime),
            Item::File { path, size, mtime, .. } => (path, Kind::File, size, mtime),
        };
        // Paths come as `/a/b` (the walk's top name is empty).
        let path = path.strip_prefix(b"/").unwrap_or(&path).to_vec();
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or(&path);
        if String::from_utf8_lossy(name).to_lowercase().contains(&term) {
            let meta = Meta { kind, size, mtime, mtime_nsec: 0, ino: 0 };
            rows.push(Row { name: OsString::from_vec(path), meta });
            if rows.len() == MAX_RESULTS {
                return Ok(Found { rows, complete: false });
            }
        }
    }
    Ok(Found { rows, complete: walk.next(&rules).is_none() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_in_the_whole_tree_case_insensitively() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/Photos")).unwrap();
        std::fs::write(dir.path().join("a/Photos/beach.JPG"), b"x").unwrap();
        std::fs::write(dir.path().join("a/notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("photo-list.txt"), b"x").unwrap();
        let root = Root::open(dir.path()).expect("root");
        let access = Access::open(false);
        let found = search(&root, &VirtualPath::root(), &access, &Identity::default(), "PHOTO").expect("search");
        let mut names: Vec<String> = found.rows.iter().map(|r| r.name.to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["a/Photos", "photo-list.txt"]);
        assert!(found.complete);
        let jpg = search(&root, &VirtualPath::root(), &access, &Identity::default(), ".jpg").expect("search");
        assert_eq!(jpg.rows.len(), 1);
        assert_eq!(jpg.rows[0].name, "a/Photos/beach.JPG");
    }
}
