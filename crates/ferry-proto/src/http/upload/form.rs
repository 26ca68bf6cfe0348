//! `POST` of a `multipart/form-data` form to a directory: the listing
//! page's upload without JavaScript. Each file part streams into a partial
//! of its own through sinks of the bytes known to be data (everything
//! before the next delimiter, or all but a delimiter's length while none is
//! in sight), and is committed (digest-free, `fsync`, rename) when its part
//! ends; then `303 See Other` back to the folder. Nothing is buffered but
//! one part's header block (at most 8 KiB).

use std::fs::File;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use super::super::HttpConfig;
use super::super::date::HttpDate;
use super::super::dav::propfind::push_href;
use super::super::errors::{HttpError, Status};
use super::super::respond::{self, Persist};
use super::from_failure;
use crate::access::{Identity, Op};
use crate::files::answer::check_new_name;
use crate::files::partials::Announced;
use crate::files::upload::Upload;
use crate::root::VirtualPath;
use crate::{Outbox, Sink};

/// Longest header block of one part.
const MAX_PART_HEAD: usize = 8 * 1024;

/// Where the form's body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Before the first delimiter.
    Start,
    /// A part's header block.
    Headers,
    /// A part's data.
    Data,
    /// Just after a delimiter: `\r\n` (a part follows) or `--` (the end).
    Delimited,
    /// After the last delimiter, until the body's end.
    Epilogue,
}

/// A form being received.
#[derive(Debug)]
pub(crate) struct Form {
    /// `\r\n--BOUNDARY`.
    delimiter: Vec<u8>,
    /// Body bytes not consumed yet (`Content-Length` counts down).
    left: u64,
    at: At,
    dir: VirtualPath,
    who: Identity,
    /// The file part being written: its upload, file and next offset.
    part: Option<(Upload, Arc<File>, u64)>,
    /// The first failure of a part's commit (a job), for the final answer.
    failed: Arc<Mutex<Option<HttpError>>>,
    persist: Persist,
}

/// What the form's next bytes say.
pub(crate) enum FormStep {
    /// This many bytes were framing; more input is needed.
    More(usize),
    /// This many bytes were framing, then the sink's bytes are a part's
    /// data: route them to its file.
    Sink(usize, Sink),
    /// This many bytes ended the body; the answer is queued.
    Done(usize),
}

impl Form {
    /// A form posted to `dir` with this `Content-Type` and body length.
    pub fn begin(
        content_type: Option<&[u8]>,
        len: u64,
        dir: VirtualPath,
        who: Identity,
        persist: Persist,
    ) -> Result<Form, HttpError> {
        let boundary = content_type.and_then(boundary).ok_or(HttpError::Refused(415))?;
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary);
        Ok(Form { delimiter, left: len, at: At::Start, dir, who, part: None, failed: Arc::default(), persist })
    }

    /// Decodes the body at the front of `rest`, queueing part commits and
    /// the final answer in `out`.
    pub fn step(
        &mut self,
        config: &HttpConfig,
        rest: &[u8],
        date: &HttpDate,
        wall: SystemTime,
        out: &mut Outbox,
    ) -> Result<FormStep, HttpError> {
        let mut used = 0;
        loop {
            let input = &rest[used..rest.len().min(used + usize::try_from(self.left).unwrap_or(usize::MAX))];
            let bad = HttpError::BadRequest("malformed multipart body");
            match self.at {
                At::Start => {
                    let first = &self.delimiter[2..];
                    if input.len() < first.len() {
                        return if input.len() as u64 == self.left { Err(bad) } else { Ok(FormStep::More(used)) };
                    }
                    if !input.starts_with(first) {
                        return Err(bad);
                    }
                    used += self.take(first.len());
                    self.at = At::Delimited;
                }
                At::Delimited => {
                    if input.len() < 2 {
                        return if input.len() as u64 == self.left { Err(bad) } else { Ok(FormStep::More(used)) };
                    }
                    self.at = match &input[..2] {
                        b"\r\n" => At::Headers,
                        b"--" => At::Epilogue,
                        _ => return Err(bad),
                    };
                    used += self.take(2);
                }
                At::Headers => {
                    let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
                        if input.len() >= MAX_PART_HEAD || input.len() as u64 == self.left {
                            return Err(bad);
                        }
                        return Ok(FormStep::More(used));
                    };
                    self.part = self.open_part(config, &input[..end], wall)?;
                    used += self.take(end + 4);
                    self.at = At::Data;
                }
                At::Data => {
                    let found = find(input, &self.delimiter);
                    let data = match found {
                        Some(at) => at,
                        None if input.len() as u64 == self.left => return Err(bad),
                        None => input.len().saturating_sub(self.delimiter.len() - 1),
                    };
                    if data > 0 {
                        if let Some((_, file, offset)) = &mut self.part {
                            if config.max_upload.is_some_and(|max| *offset + data as u64 > max) {
                                return Err(HttpError::BodyTooLarge);
                            }
                            let sink = Sink::new(Arc::clone(file), *offset, data as u64);
                            *offset += data as u64;
                            self.left -= data as u64;
                            return Ok(FormStep::Sink(used, sink));
                        }
                        used += self.take(data);
                        continue;
                    }
                    if found.is_none() {
                        return Ok(FormStep::More(used));
                    }
                    used += self.take(self.delimiter.len());
                    self.commit_part(out);
                    self.at = At::Delimited;
                }
                At::Epilogue => {
                    used += self.take(input.len());
                    if self.left > 0 {
                        return Ok(FormStep::More(used));
                    }
                    self.answer(date, out);
                    return Ok(FormStep::Done(used));
                }
            }
        }
    }

    /// How the connection goes on after the answer.
    pub fn persist(&self) -> Persist {
        self.persist
    }

    /// Counts `n` body bytes as consumed.
    fn take(&mut self, n: usize) -> usize {
        self.left -= n as u64;
        n
    }

    /// Opens the upload of a file part (`None` for a part that is not a
    /// file, or a file field left empty).
    fn open_part(
        &self,
        config: &HttpConfig,
        head: &[u8],
        wall: SystemTime,
    ) -> Result<Option<(Upload, Arc<File>, u64)>, HttpError> {
        let Some(name) = filename(head).filter(|n| !n.is_empty()) else { return Ok(None) };
        // Browsers send the bare name; some old ones a whole path.
        let name = name.rsplit(|&b| b == b'/' || b == b'\\').next().unwrap_or_default();
        if name.is_empty() || name == b"." || name == b".." {
            return Err(HttpError::Refused(400));
        }
        let path = config.root.resolve(&self.dir, name).map_err(super::super::errors::fs_error)?;
        super::super::auth::check(&config.access, &self.who, Op::Write, &path)?;
        check_new_name(&path).map_err(|_| HttpError::Refused(400))?;
        let partials = config.partials.as_ref().ok_or(HttpError::MethodNotAllowed)?;
        let identity = Announced { size: 0, sha256: None };
        let (upload, _) =
            Upload::start_as(partials, &config.root, &path, identity, false, wall).map_err(|f| from_failure(&f))?;
        upload.truncate(0).map_err(|_| HttpError::Internal)?;
        let file = upload.file();
        Ok(Some((upload, file, 0)))
    }

    /// The current file part is complete: its commit is a job.
    fn commit_part(&mut self, out: &mut Outbox) {
        let Some((upload, _, _)) = self.part.take() else { return };
        let failed = Arc::clone(&self.failed);
        out.push_job(move || {
            if let Err(f) = upload.commit() {
                let mut slot = failed.lock().unwrap_or_else(PoisonError::into_inner);
                slot.get_or_insert(from_failure(&f));
            }
            Vec::new()
        });
    }

    /// After the parts' commits: 303 back to the folder, or the first
    /// failure.
    fn answer(&self, date: &HttpDate, out: &mut Outbox) {
        let (failed, persist, date) = (Arc::clone(&self.failed), self.persist, *date);
        let mut location = Vec::new();
        push_href(&mut location, &self.dir, true);
        out.push_job(move || {
            let mut buf = Vec::new();
            match failed.lock().unwrap_or_else(PoisonError::into_inner).take() {
                Some(err) => respond::error(&mut buf, err, persist, false, &date),
                None => {
                    respond::start(&mut buf, Status(303), &date);
                    respond::header(&mut buf, b"Location", &location);
                    respond::content_length(&mut buf, 0);
                    respond::finish(&mut buf, persist);
                }
            }
            buf
        });
    }
}

/// The `boundary` parameter of a `multipart/form-data` type.
fn boundary(content_type: &[u8]) -> Option<&[u8]> {
    let mut params = content_type.split(|&b| b == b';');
    if !params.next()?.trim_ascii().eq_ignore_ascii_case(b"multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (key, value) = p.trim_ascii().split_at(p.trim_ascii().iter().position(|&b| b == b'=')?);
        let value = value[1..].trim_ascii();
        let value = value.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(value);
        (key.eq_ignore_ascii_case(b"boundary") && !value.is_empty() && value.len() <= 70).then_some(value)
    })
}

/// The `filename` of a part's `Content-Disposition` (quoted; browsers
/// escape `"` as `%22`).
fn filename(head: &[u8]) -> Option<&[u8]> {
    let line =
        head.split(|&b| b == b'\n').find(|l| l.len() > 20 && l[..20].eq_ignore_ascii_case(b"content-disposition:"))?;
    let at = line.windows(10).position(|w| w == b"filename=\"")? + 10;
    let rest = &line[at..];
    Some(&rest[..rest.iter().position(|&b| b == b'"')?])
}

/// The first position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(i) = hay.get(from..)?.iter().position(|&b| b == first) {
        let at = from + i;
        if hay.get(at..at + needle.len()).is_some_and(|w| w == needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_names_and_search() {
        assert_eq!(boundary(b"multipart/form-data; boundary=abc"), Some(&b"abc"[..]));
        assert_eq!(boundary(b"Multipart/Form-Data;boundary=\"a b\""), Some(&b"a b"[..]));
        assert_eq!(boundary(b"text/plain; boundary=abc"), None);
        assert_eq!(boundary(b"multipart/form-data"), None);
        let head = b"Content-Disposition: form-data; name=\"file\"; filename=\"a b.txt\"\r\nContent-Type: text/plain";
        assert_eq!(filename(head), Some(&b"a b.txt"[..]));
        assert_eq!(filename(b"Content-Disposition: form-data; name=\"x\""), None);
        assert_eq!(find(b"xx\r\n--b\r\n", b"\r\n--b"), Some(2));
        assert_eq!(find(b"xx\r\n--", b"\r\n--b"), None);
    }
}
