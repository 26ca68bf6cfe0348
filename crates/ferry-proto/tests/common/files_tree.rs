//! A served directory for the file-session tests.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_proto::files::{FileSession, FilesConfig, PartialLimits};
use ferry_proto::root::Root;

/// A served directory for one test (`hello.txt`, `sub/file.txt`,
/// `sub/deeper/`, `with space.txt`), removed on drop.
pub struct Tree(pub PathBuf);

impl Tree {
    pub fn new(name: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("ferry-session-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        fs::write(dir.join("hello.txt"), b"Hello, world!").unwrap();
        fs::write(dir.join("sub/file.txt"), b"abc").unwrap();
        fs::write(dir.join("with space.txt"), b"x").unwrap();
        Tree(dir)
    }

    /// A session on the tree.
    pub fn session(&self, allow_write: bool) -> FileSession {
        let root = Arc::new(Root::open(&self.0).unwrap());
        FileSession::new(FilesConfig::new(root, allow_write).unwrap())
    }

    /// A writable session whose partial uploads are kept within `limits`.
    pub fn session_with(&self, limits: PartialLimits) -> FileSession {
        let root = Arc::new(Root::open(&self.0).unwrap());
        FileSession::new(FilesConfig::writable(root, limits).unwrap())
    }

    /// The version token `get` answers for the file at `rel`
    /// (docs/PROTOCOL.md: inode, mtime seconds.nanoseconds and size, hex).
    pub fn version(&self, rel: &str) -> String {
        let m = fs::metadata(self.0.join(rel)).unwrap();
        format!("{:x}-{:x}.{:x}-{:x}", m.ino(), m.mtime(), m.mtime_nsec(), m.size())
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
