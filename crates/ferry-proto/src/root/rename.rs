//! Renaming inside the served root: one `renameat` between two parents
//! opened confined, so the change is atomic (a reader sees the old name or
//! the new one, never neither) and neither final name is followed if it is
//! a symlink.

use rustix::fs::{AtFlags, RenameFlags};
use rustix::io::Errno;

use super::{FsError, Kind, Root, VirtualPath};

impl Root {
    /// Renames `from` to `to`, replacing a file or symlink at `to`
    /// atomically when `replace` (else `FsError::Exists`) but never a
    /// directory (`FsError::IsADirectory`). A failure comes with the path
    /// it is about. The root itself cannot be renamed, nor a directory
    /// moved below itself; both paths must be on one filesystem. The one
    /// rename of both services (the file protocol's `rename`, WebDAV's
    /// `MOVE`).
    pub fn rename<'p>(
        &self,
        from: &'p VirtualPath,
        to: &'p VirtualPath,
        replace: bool,
    ) -> Result<(), (FsError, &'p VirtualPath)> {
        if from.is_root() || to.is_root() {
            let which = if from.is_root() { from } else { to };
            return Err((FsError::BadPath("the served root itself cannot be renamed"), which));
        }
        if to.starts_with(from) && to != from {
            return Err((FsError::BadPath("cannot move a directory inside itself"), to));
        }
        let (from_dir, from_name) = self.parent_of(from).map_err(|e| (e, from))?;
        rustix::fs::statat(&from_dir, from_name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| (e.into(), from))?;
        let (to_dir, to_name) = self.parent_of(to).map_err(|e| (e, to))?;
        if from == to {
            return Ok(());
        }
        let result = match rustix::fs::statat(&to_dir, to_name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if Kind::of(&stat) == Kind::Dir => return Err((FsError::IsADirectory, to)),
            Ok(_) if !replace => return Err((FsError::Exists, to)),
            Ok(_) => rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name),
            // Nothing there: a directory made there meanwhile is not replaced.
            Err(Errno::NOENT) => {
                rustix::fs::renameat_with(&from_dir, from_name, &to_dir, to_name, RenameFlags::NOREPLACE)
            }
            Err(e) => return Err((e.into(), to)),
        };
        result.map_err(|e| match e {
            Errno::XDEV => (FsError::BadPath("cannot rename across filesystems"), to),
            Errno::INVAL => (FsError::BadPath("cannot move a directory inside itself"), to),
            Errno::EXIST => (FsError::Exists, to),
            e => (e.into(), to),
        })
    }
}
