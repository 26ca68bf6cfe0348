//! WebDAV class 1, as much as file clients (rclone, cadaver, file
//! managers) need: `OPTIONS` (`DAV: 1`), `PROPFIND` at depth 0 and 1
//! (`propfind.rs`; infinity is refused with 403), `MKCOL`, `DELETE` of a
//! file or an empty directory and `MOVE` within the served root, answering
//! as RFC 4918 has it (201, 204, 403, 404, 405, 409, 412). Writes need
//! `--allow-write` and the access rules' write (create) or delete rights,
//! exactly as the file protocol's `mkdir`, `rm` and `put`.

pub(crate) mod headers;
pub(crate) mod propfind;

use super::date::HttpDate;
use super::errors::{HttpError, Status, fs_error};
use super::respond::{self, Persist};
use crate::files::answer::check_new_name;
use crate::root::{FsError, Root, VirtualPath};

/// The methods a writable server allows (`Allow`, `OPTIONS`).
pub(crate) const ALLOW_WRITABLE: &[u8] = b"GET, HEAD, OPTIONS, PROPFIND, PUT, DELETE, MKCOL, MOVE";
/// The methods a read-only server allows.
pub(crate) const ALLOW_READ_ONLY: &[u8] = b"GET, HEAD, OPTIONS, PROPFIND";

/// The answer to `OPTIONS`: the methods, and WebDAV class 1.
pub(crate) fn options(buf: &mut Vec<u8>, writable: bool, persist: Persist, date: &HttpDate) {
    respond::start(buf, Status(200), date);
    respond::header(buf, b"Allow", if writable { ALLOW_WRITABLE } else { ALLOW_READ_ONLY });
    respond::header(buf, b"DAV", b"1");
    respond::header(buf, b"MS-Author-Via", b"DAV");
    respond::content_length(buf, 0);
    respond::finish(buf, persist);
}

/// `DELETE`: a file, a symlink (not its target) or an empty directory;
/// a directory with entries is 409 (nothing is removed recursively).
pub(crate) fn delete(root: &Root, path: &VirtualPath) -> Result<Status, HttpError> {
    if path.is_root() {
        return Err(HttpError::Forbidden);
    }
    match root.remove(path) {
        Ok(()) => Ok(Status(204)),
        Err(FsError::NotEmpty | FsError::Exists) => Err(HttpError::Refused(409)),
        Err(e) => Err(fs_error(e)),
    }
}

/// `MKCOL`: a new directory; 405 if the name is taken, 409 if its parent
/// is missing.
pub(crate) fn mkcol(root: &Root, path: &VirtualPath) -> Result<Status, HttpError> {
    if path.is_root() {
        return Err(HttpError::Refused(405));
    }
    check_new_name(path).map_err(|_| HttpError::Refused(400))?;
    match root.mkdir(path) {
        Ok(()) => Ok(Status(201)),
        Err(FsError::Exists) => Err(HttpError::Refused(405)),
        Err(FsError::NotFound | FsError::NotADirectory) => Err(HttpError::Refused(409)),
        Err(e) => Err(fs_error(e)),
    }
}

/// `MOVE` of `from` to `to` (both under the root), by the file
/// protocol's own [`Root::rename`]: 201 to a new name, 204 replacing a
/// file (`Overwrite: T`, the default), 412 when the destination exists and
/// `Overwrite: F`, 409 when its parent is missing or it is a directory
/// (never replaced), 403 onto itself.
pub(crate) fn rename(root: &Root, from: &VirtualPath, to: &VirtualPath, overwrite: bool) -> Result<Status, HttpError> {
    if from.is_root() || to.is_root() || from == to {
        return Err(HttpError::Forbidden);
    }
    check_new_name(to).map_err(|_| HttpError::Refused(400))?;
    let existed = root.stat(to).is_ok();
    match root.rename(from, to, overwrite) {
        Ok(()) => Ok(Status(if existed { 204 } else { 201 })),
        Err((FsError::Exists, _)) => Err(HttpError::PreconditionFailed),
        Err((FsError::IsADirectory | FsError::BadPath(_), _)) => Err(HttpError::Refused(409)),
        Err((FsError::NotFound | FsError::NotADirectory, at)) if at == to => Err(HttpError::Refused(409)),
        Err((e, _)) => Err(fs_error(e)),
    }
}
