//! Status codes, and the one place where every failure becomes one.

use crate::root::FsError;

/// An HTTP status code this server sends, with its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    /// 200: the whole file or listing follows.
    pub const OK: Status = Status(200);
    /// 206: one byte range of the file follows.
    pub const PARTIAL_CONTENT: Status = Status(206);
    /// 301: a directory was named without its trailing slash.
    pub const MOVED_PERMANENTLY: Status = Status(301);
    /// 304: the client's cached copy is current.
    pub const NOT_MODIFIED: Status = Status(304);
    /// 416: the requested byte range lies outside the file.
    pub const RANGE_NOT_SATISFIABLE: Status = Status(416);

    /// The standard reason phrase.
    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            204 => "No Content",
            206 => "Partial Content",
            207 => "Multi-Status",
            301 => "Moved Permanently",
            303 => "See Other",
            304 => "Not Modified",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            409 => "Conflict",
            411 => "Length Required",
            412 => "Precondition Failed",
            413 => "Content Too Large",
            414 => "URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Range Not Satisfiable",
            422 => "Unprocessable Content",
            423 => "Locked",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            505 => "HTTP Version Not Supported",
            507 => "Insufficient Storage",
            _ => "Unknown",
        }
    }
}

/// Why a request is answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The request is malformed; the detail is a fixed text (never peer bytes).
    #[error("malformed request: {0}")]
    BadRequest(&'static str),
    /// Nothing to serve at the path, or the path escapes the root (the two
    /// are indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// The server may not read the file, or the client may not (and
    /// logging in would not help).
    #[error("permission denied")]
    Forbidden,
    /// The access rules refuse an anonymous client, or its credentials are
    /// wrong: answered with `WWW-Authenticate`.
    #[error("authentication required")]
    Unauthorized,
    /// Too many failed logins from the client's address lately.
    #[error("too many failed logins")]
    TooManyRequests,
    /// A method RFC 9110 defines other than GET and HEAD.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A method RFC 9110 does not define (methods are case-sensitive).
    #[error("method not implemented")]
    MethodNotImplemented,
    /// `If-Match` names neither `*` nor the file's current `ETag`.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The request was not complete when the driver's timer fired.
    #[error("request not received in time")]
    Timeout,
    /// The request body exceeds [`HttpConfig::max_body`](super::HttpConfig::max_body).
    #[error("request body too large")]
    BodyTooLarge,
    /// The request target exceeds [`HttpConfig::max_uri`](super::HttpConfig::max_uri),
    /// or the request line exceeds it by more than the 64 bytes a method,
    /// a version and spaces may take.
    #[error("request target too long")]
    UriTooLong,
    /// The request head exceeds [`HttpConfig::max_head`](super::HttpConfig::max_head).
    #[error("request header section too large")]
    HeadTooLarge,
    /// A well-formed `Transfer-Encoding` other than `chunked` alone.
    #[error("transfer coding not implemented")]
    UnknownTransferEncoding,
    /// An HTTP version other than 1.0 and 1.1.
    #[error("HTTP version not supported")]
    VersionNotSupported,
    /// The file could not be read.
    #[error("internal error")]
    Internal,
    /// A write (upload, `DELETE`, `MKCOL`, `MOVE`) refused with this
    /// status (409, 412, 415, 507, a digest mismatch's 400...) after the
    /// request was read whole: the connection stays usable.
    #[error("refused with status {0}")]
    Refused(u16),
}

impl HttpError {
    /// The status code this error is answered with.
    pub fn status(self) -> Status {
        Status(match self {
            HttpError::BadRequest(_) => 400,
            HttpError::NotFound => 404,
            HttpError::Forbidden => 403,
            HttpError::Unauthorized => 401,
            HttpError::TooManyRequests => 429,
            HttpError::MethodNotAllowed => 405,
            HttpError::MethodNotImplemented => 501,
            HttpError::PreconditionFailed => 412,
            HttpError::Timeout => 408,
            HttpError::BodyTooLarge => 413,
            HttpError::UriTooLong => 414,
            HttpError::HeadTooLarge => 431,
            HttpError::UnknownTransferEncoding => 501,
            HttpError::VersionNotSupported => 505,
            HttpError::Internal => 500,
            HttpError::Refused(code) => code,
        })
    }

    /// True when, after this error, the byte stream can no longer be trusted
    /// to start at a request boundary: the answer carries
    /// `Connection: close` and the connection closes after it.
    pub fn closes(self) -> bool {
        !matches!(
            self,
            HttpError::NotFound
                | HttpError::Forbidden
                | HttpError::Unauthorized
                | HttpError::TooManyRequests
                | HttpError::MethodNotAllowed
                | HttpError::MethodNotImplemented
                | HttpError::PreconditionFailed
                | HttpError::Internal
                | HttpError::Refused(_)
        )
    }
}

/// Maps a filesystem refusal to the error answered. Escapes, symlinks out
/// of the root, loops and non-regular files all look like "not found", so
/// a client cannot learn what exists outside the served tree.
pub(crate) fn fs_error(err: FsError) -> HttpError {
    match err {
        FsError::Escapes
        | FsError::NotFound
        | FsError::Hidden
        | FsError::NotADirectory
        | FsError::IsADirectory
        | FsError::NotRegular
        | FsError::SymlinkLoop
        | FsError::Exists
        | FsError::NotEmpty => HttpError::NotFound,
        FsError::BadPath(why) => HttpError::BadRequest(why),
        FsError::PermissionDenied => HttpError::Forbidden,
        FsError::Io(e) => {
            tracing::warn!("http: filesystem error: {e}");
            HttpError::Internal
        }
    }
}
