//! How the file session's answers are written: `OK` and `ERR` lines, and
//! the one place each kind of failure becomes a protocol error.

use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;

use super::escape::escape_text;
use super::request::RequestError;
use crate::access::Denied;
use crate::root::FsError;
use crate::vpath::VirtualPath;

/// An error answer: `ERR <code> <message>`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u16,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: u16, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }
}

pub(super) type Answer = Result<(), Failure>;

/// The one place filesystem errors become protocol errors.
pub(crate) fn fs_failure(err: FsError, path: Option<&VirtualPath>) -> Failure {
    let shown = path.map(|p| escape_text(&p.to_bytes())).unwrap_or_default();
    let with_path = |what: &str| {
        if shown.is_empty() { what.to_string() } else { format!("{what}: {shown}") }
    };
    match err {
        FsError::Escapes => Failure::new(403, "path escapes the served root"),
        FsError::BadPath(why) => Failure::new(400, why),
        FsError::NotFound => Failure::new(404, with_path("no such file or directory")),
        FsError::Hidden => {
            Failure::new(404, with_path("no such file or directory (a hidden name: the server runs without --hidden)"))
        }
        FsError::NotADirectory => Failure::new(409, with_path("not a directory")),
        FsError::IsADirectory => Failure::new(409, with_path("is a directory")),
        FsError::NotRegular => Failure::new(409, with_path("not a regular file")),
        FsError::Exists => Failure::new(409, with_path("already exists")),
        FsError::NotEmpty => Failure::new(409, with_path("directory not empty")),
        FsError::SymlinkLoop => Failure::new(400, with_path("too many levels of symbolic links")),
        FsError::PermissionDenied => Failure::new(403, with_path("permission denied")),
        FsError::Io(e) => Failure::new(500, format!("{}: {e}", with_path("I/O error"))),
    }
}

/// An operation the access rules refuse: 403, naming the operation and
/// the path, with a hint when logging in could help.
pub(super) fn denied_failure(denied: &Denied) -> Failure {
    let hint = if denied.login_may_help { " (log in: auth USER PASSWORD)" } else { "" };
    Failure::new(403, format!("{} not allowed on {}{hint}", denied.op, escape_text(&denied.path.to_bytes())))
}

/// Refuses to create a name holding a control byte (below 0x20, or DEL):
/// such names garble terminals and listings, and no client needs them.
pub(crate) fn check_new_name(target: &VirtualPath) -> Answer {
    let Some((_, name)) = target.split_last() else {
        return Ok(());
    };
    if name.as_bytes().iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(Failure::new(
            400,
            format!("control characters are not allowed in new names: {}", escape_text(name.as_bytes())),
        ));
    }
    Ok(())
}

/// An upload that could not be written: `EFBIG` (the server's file-size
/// limit, `RLIMIT_FSIZE`) is the client's file being too large, 413; any
/// other error is the server's, 500.
pub(crate) fn upload_failure(e: &io::Error) -> Failure {
    if e.raw_os_error() == Some(rustix::io::Errno::FBIG.raw_os_error()) {
        Failure::new(413, "file too large for this server (file size limit)")
    } else {
        Failure::new(500, format!("upload failed: {e}"))
    }
}

pub(super) fn ok_line(buf: &mut Vec<u8>, text: &str) {
    if text.is_empty() {
        buf.extend_from_slice(b"OK\n");
    } else {
        buf.extend_from_slice(b"OK ");
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
    }
}

pub(super) fn err_line(buf: &mut Vec<u8>, failure: &Failure) {
    // Whatever a message echoes is escaped where it is built
    // (`request.rs`, `escape_text`), so an answer is always one line.
    debug_assert!(!failure.message.contains(['\n', '\r']), "{:?}", failure.message);
    let _ = writeln!(buf, "ERR {} {}", failure.code, failure.message);
}

/// The bytes of an answer written with [`ok_line`] / [`err_line`], for a job
/// to return.
pub(super) fn answer(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut buf = Vec::new();
    write(&mut buf);
    buf
}

pub(super) fn request_failure(e: &RequestError) -> Failure {
    Failure::new(400, e.to_string())
}
