//! A lazy, confined walk of a directory tree for an archive: one open
//! directory per level (read with `getdents` as the archive is sent, never
//! listed whole), so memory does not grow with the tree.
//!
//! Confinement does not depend on names: every step is an `openat` relative
//! to the directory above with `O_NOFOLLOW`, so a symlink is never
//! followed (symlinks are left out of archives), and `..` never comes from
//! `getdents` as anything but itself, which is skipped.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{Dir, FileType, Mode, OFlags};

use crate::root::{VirtualPath, Visibility};

/// Deepest directory level walked; deeper directories are left out (and
/// logged), so one archive holds at most this many directories open.
pub(crate) const MAX_DEPTH: usize = 64;

/// What the walk found next.
#[derive(Debug)]
pub(crate) enum Item {
    /// A directory (already opened: its entries come next).
    Dir { path: Vec<u8>, mode: u32, mtime: i64 },
    /// A regular file, opened for reading (blocking).
    File { path: Vec<u8>, file: File, size: u64, mode: u32, mtime: i64 },
}

/// Which entries the walk may show: `list` for a directory to be entered,
/// `read` for a file (the caller's access rules).
pub(crate) trait Allowed {
    /// May the directory at `path` be listed (and so archived)?
    fn list(&self, path: &VirtualPath) -> bool;
    /// May the file at `path` be read?
    fn read(&self, path: &VirtualPath) -> bool;
}

/// One directory being read.
struct Level {
    dir: Dir,
    /// Its path inside the archive.
    path: Vec<u8>,
    /// Its path in the served tree (for access rules).
    vpath: VirtualPath,
}

/// A depth-first walk of one directory tree.
pub(crate) struct Walk {
    stack: Vec<Level>,
    /// Which names are walked (hidden names are left out, as listings do).
    visibility: Visibility,
    /// The top directory, reported once before its entries.
    top: Option<Item>,
}

impl std::fmt::Debug for Walk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk").field("depth", &self.stack.len()).finish()
    }
}

impl Walk {
    /// Walks the directory `fd` (the served `vpath`), whose entries appear
    /// under `name/` in the archive, leaving out the names `visibility`
    /// does not list.
    pub(crate) fn new(fd: OwnedFd, vpath: VirtualPath, name: Vec<u8>, visibility: Visibility) -> std::io::Result<Walk> {
        let stat = rustix::fs::fstat(&fd)?;
        let top = Item::Dir { path: name.clone(), mode: stat.st_mode & 0o7777, mtime: stat.st_mtime };
        let dir = Dir::new(fd)?;
        Ok(Walk { stack: vec![Level { dir, path: name, vpath }], visibility, top: Some(top) })
    }

    /// The next directory or file, or `None` at the end. Entries that
    /// vanish, cannot be opened, are not regular files or directories, or
    /// are refused by `allowed` are skipped.
    pub(crate) fn next(&mut self, allowed: &dyn Allowed) -> Option<Item> {
        if let Some(top) = self.top.take() {
            return Some(top);
        }
        loop {
            let level = self.stack.last_mut()?;
            let entry = match level.dir.read() {
                None => {
                    self.stack.pop();
                    continue;
                }
                Some(Err(e)) => {
                    tracing::warn!("archive: reading {} failed: {e}; left out", level.vpath);
                    self.stack.pop();
                    continue;
                }
                Some(Ok(entry)) => entry,
            };
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if !self.visibility.lists(name) {
                continue;
            }
            let vpath = level.vpath.join_name(name);
            let mut path = level.path.clone();
            path.push(b'/');
            path.extend_from_slice(name.as_bytes());
            let Ok(parent) = level.dir.fd() else { continue };
            // O_NONBLOCK: a FIFO put in place of a file must not block the
            // open; the type is checked on the descriptor itself.
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
            let fd = match entry.file_type() {
                FileType::Directory | FileType::RegularFile | FileType::Unknown => {
                    match rustix::fs::openat(parent, name, flags, Mode::empty()) {
                        Ok(fd) => fd,
                        Err(e) => {
                            tracing::debug!("archive: cannot open {vpath}: {e}; left out");
                            continue;
                        }
                    }
                }
                _ => continue,
            };
            let Ok(stat) = rustix::fs::fstat(&fd) else { continue };
            let (mode, mtime) = (stat.st_mode & 0o7777, stat.st_mtime);
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => {
                    if !allowed.list(&vpath) {
                        continue;
                    }
                    if self.stack.len() >= MAX_DEPTH {
                        tracing::warn!("archive: {vpath} is deeper than {MAX_DEPTH} levels; left out");
                        continue;
                    }
                    let Ok(dir) = Dir::new(fd) else { continue };
                    self.stack.push(Level { dir, path: path.clone(), vpath });
                    return Some(Item::Dir { path, mode, mtime });
                }
                FileType::RegularFile => {
                    if !allowed.read(&vpath) {
                        continue;
                    }
                    // Back to blocking: the descriptor goes to sendfile.
                    if rustix::fs::fcntl_setfl(&fd, OFlags::empty()).is_err() {
                        continue;
                    }
                    return Some(Item::File { path, file: File::from(fd), size: stat.st_size as u64, mode, mtime });
                }
                _ => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::Root;

    struct All;
    impl Allowed for All {
        fn list(&self, _: &VirtualPath) -> bool {
            true
        }
        fn read(&self, _: &VirtualPath) -> bool {
            true
        }
    }

    struct NotSecret;
    impl Allowed for NotSecret {
        fn list(&self, path: &VirtualPath) -> bool {
            !path.to_bytes().ends_with(b"secret")
        }
        fn read(&self, path: &VirtualPath) -> bool {
            !path.to_bytes().ends_with(b".key")
        }
    }

    fn walk_all(root: &std::path::Path, allowed: &dyn Allowed) -> Vec<String> {
        walk_showing(root, allowed, Visibility::default())
    }

    fn walk_showing(root: &std::path::Path, allowed: &dyn Allowed, visibility: Visibility) -> Vec<String> {
        let r = Root::open(root).expect("root");
        let fd = r.open_dir(&VirtualPath::root()).expect("open");
        let mut walk = Walk::new(fd, VirtualPath::root(), b"top".to_vec(), visibility).expect("walk");
        let mut seen = Vec::new();
        while let Some(item) = walk.next(allowed) {
            seen.push(match item {
                Item::Dir { path, .. } => format!("{}/", String::from_utf8_lossy(&path)),
                Item::File { path, size, .. } => format!("{} {size}", String::from_utf8_lossy(&path)),
            });
        }
        seen.sort();
        seen
    }

    #[test]
    fn walks_files_and_directories_but_not_links_fifos_partials_or_hidden_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join(".ferry-partials")).unwrap();
        std::fs::write(root.join(".ferry-partials/x.part"), b"half").unwrap();
        std::fs::write(root.join("a/b/c.txt"), b"hello").unwrap();
        std::fs::write(root.join(".dot"), b"").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
        std::os::unix::fs::symlink("a/b/c.txt", root.join("c-link")).unwrap();
        rustix::fs::mknodat(rustix::fs::CWD, root.join("fifo"), FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/config"), b"x").unwrap();
        assert_eq!(walk_all(root, &All), ["top/", "top/a/", "top/a/b/", "top/a/b/c.txt 5"], "hidden names left out");
        assert_eq!(
            walk_showing(root, &All, Visibility::SHOW_HIDDEN),
            ["top/", "top/.dot 0", "top/.git/", "top/.git/config 1", "top/a/", "top/a/b/", "top/a/b/c.txt 5"],
            "--hidden walks them, never the partials"
        );
    }

    #[test]
    fn access_rules_prune_directories_and_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("secret/inner")).unwrap();
        std::fs::write(root.join("secret/inner/x"), b"x").unwrap();
        std::fs::write(root.join("site.key"), b"k").unwrap();
        std::fs::write(root.join("ok.txt"), b"ok").unwrap();
        assert_eq!(walk_all(root, &NotSecret), ["top/", "top/ok.txt 2"]);
    }

    #[test]
    fn depth_is_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut deep = dir.path().to_path_buf();
        for _ in 0..MAX_DEPTH + 3 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let seen = walk_all(dir.path(), &All);
        assert_eq!(seen.len(), MAX_DEPTH, "the top and {} levels below it", MAX_DEPTH - 1);
    }
}
