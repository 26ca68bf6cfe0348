//! How much room the served root's filesystem has (`statvfs`), for the file
//! protocol's `df`.

use super::{FsError, Root};

/// Sizes of the filesystem holding the served root, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Its whole size.
    pub total: u64,
    /// What is not used.
    pub free: u64,
    /// What the server may still use (free minus the part reserved for
    /// root, as `df` shows it).
    pub available: u64,
}

impl Root {
    /// The sizes of the filesystem the root directory is on (a mount inside
    /// the root is not counted).
    pub fn disk_space(&self) -> Result<DiskSpace, FsError> {
        let vfs = rustix::fs::fstatvfs(self.dir())?;
        let bytes = |blocks: u64| blocks.saturating_mul(vfs.f_frsize);
        Ok(DiskSpace { total: bytes(vfs.f_blocks), free: bytes(vfs.f_bfree), available: bytes(vfs.f_bavail) })
    }
}
