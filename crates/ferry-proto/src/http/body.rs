//! Request bodies, read and thrown away so the next pipelined request
//! starts where it should, or (uploads) their chunked framing decoded while
//! the chunks' data goes to a file. Nothing here buffers: a body costs a
//! few words of state however it is split.

/// Longest chunk extension accepted on a chunk-size line.
const MAX_CHUNK_EXT: usize = 1024;
/// Most bytes of trailer fields accepted after the last chunk.
const MAX_TRAILERS: usize = 8 * 1024;

/// Why a body could not be discarded; both leave the stream unsynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// More body than the configured limit.
    TooLarge,
    /// Chunked framing is broken.
    Malformed(&'static str),
}

/// A body being skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discard {
    /// `Content-Length`: this many bytes remain.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunked),
}

/// Where in the chunked framing the decoder stands, and how much chunk
/// data it has seen (checked against the limit before data is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunked {
    state: ChunkState,
    total: u64,
    limit: u64,
    /// Bytes of the current extension or of all trailers so far.
    counted: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size { value: u64, digits: u8 },
    Extension { value: u64 },
    SizeLf { value: u64 },
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Where [`Chunked::framing`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// All the input was framing; more is needed.
    More(usize),
    /// This many framing bytes, then `.1` bytes of chunk data follow: the
    /// caller takes them, then reports [`Chunked::data_taken`].
    Data(usize, u64),
    /// This many bytes ended the body.
    Done(usize),
}

impl Discard {
    /// A chunked body whose chunk data may total at most `limit` bytes.
    pub fn chunked(limit: u64) -> Discard {
        Discard::Chunked(Chunked::new(limit))
    }

    /// Skips body bytes at the front of `input`. Returns how many were body
    /// and whether the body is complete; bytes past its end are not touched.
    pub fn discard(&mut self, input: &[u8]) -> Result<(usize, bool), BodyError> {
        match self {
            Discard::Length(remaining) => {
                let n = input.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                *remaining -= n as u64;
                Ok((n, *remaining == 0))
            }
            Discard::Chunked(chunked) => chunked.discard(input),
        }
    }
}

impl Chunked {
    /// A chunked body whose chunk data may total at most `limit` bytes
    /// (checked at each chunk's size line, before its data is accepted).
    pub fn new(limit: u64) -> Chunked {
        Chunked { state: ChunkState::Size { value: 0, digits: 0 }, total: 0, limit, counted: 0 }
    }

    /// Decodes framing at the front of `input`, stopping where chunk data
    /// begins, so an upload can route the data to its file.
    pub fn framing(&mut self, input: &[u8]) -> Result<Framing, BodyError> {
        Ok(match self.run(input, false)? {
            (n, true) => Framing::Done(n),
            (n, false) => match self.state {
                ChunkState::Data(len) => Framing::Data(n, len),
                _ => Framing::More(n),
            },
        })
    }

    /// `n` bytes of the current chunk's data were taken by the caller.
    pub fn data_taken(&mut self, n: u64) {
        if let ChunkState::Data(left) = self.state {
            let left = left.saturating_sub(n);
            self.state = if left == 0 { ChunkState::DataCr } else { ChunkState::Data(left) };
        }
    }

    fn discard(&mut self, input: &[u8]) -> Result<(usize, bool), BodyError> {
        self.run(input, true)
    }

    /// Decodes `input`: skipping chunk data if `skip_data`, else stopping
    /// in front of it. Returns the bytes used and whether the body ended.
    fn run(&mut self, input: &[u8], skip_data: bool) -> Result<(usize, bool), BodyError> {
        use ChunkState::*;
        let mut i = 0;
        while i < input.len() {
            if let Data(left) = self.state {
                if !skip_data {
                    return Ok((i, false));
                }
                let n = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                i += n;
                self.state = if left == n as u64 { DataCr } else { Data(left - n as u64) };
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (Size { value, digits }, _) if b.is_ascii_hexdigit() => {
                    if digits >= 15 {
                        return Err(BodyError::TooLarge);
                    }
                    let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                    Size { value: value << 4 | digit, digits: digits + 1 }
                }
                (Size { value, digits: 1.. }, b';' | b' ' | b'\t') => {
                    self.counted = 0;
                    Extension { value }
                }
                (Size { value, digits: 1.. }, b'\r') => SizeLf { value },
                (Size { .. }, _) => return Err(BodyError::Malformed("invalid chunk size")),
                (Extension { value }, b'\r') => SizeLf { value },
                (Extension { .. }, b'\n') => return Err(BodyError::Malformed("bare LF in chunk extension")),
                (Extension { value }, _) => {
                    self.counted += 1;
                    if self.counted > MAX_CHUNK_EXT {
                        return Err(BodyError::Malformed("chunk extension too long"));
                    }
                    Extension { value }
                }
                (SizeLf { value: 0 }, b'\n') => {
                    self.counted = 0;
                    TrailerStart
                }
                (SizeLf { value }, b'\n') => {
                    self.total = self.total.saturating_add(value);
                    if self.total > self.limit {
                        return Err(BodyError::TooLarge);
                    }
                    if !skip_data {
                        self.state = Data(value);
                        return Ok((i, false));
                    }
                    Data(value)
                }
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => Size { value: 0, digits: 0 },
                (TrailerStart, b'\r') => EndLf,
                (TrailerStart | TrailerLine, b'\n') => return Err(BodyError::Malformed("bare LF in trailer")),
                (TrailerLine, b'\r') => TrailerLf,
                (TrailerStart | TrailerLine, _) => {
                    self.counted += 1;
                    if self.counted > MAX_TRAILERS {
                        return Err(BodyError::Malformed("trailer section too large"));
                    }
                    TrailerLine
                }
                (TrailerLf, b'\n') => TrailerStart,
                (EndLf, b'\n') => {
                    self.state = Done;
                    return Ok((i, true));
                }
                _ => return Err(BodyError::Malformed("invalid chunked framing")),
            };
        }
        Ok((i, self.state == Done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nGET";

    #[test]
    fn chunked_stops_at_the_end_whatever_the_split() {
        let end = BODY.len() - 3;
        for step in 1..BODY.len() {
            let mut d = Discard::chunked(100);
            let mut at = 0;
            let mut done = false;
            while !done {
                let chunk = &BODY[at..(at + step).min(BODY.len())];
                let (n, finished) = d.discard(chunk).unwrap();
                assert!(n == chunk.len() || finished, "step {step}: stopped early without finishing");
                at += n;
                done = finished;
            }
            assert_eq!(at, end, "step {step}");
        }
    }

    #[test]
    fn chunked_limits_and_errors() {
        assert_eq!(Discard::chunked(10).discard(b"b\r\n"), Err(BodyError::TooLarge));
        assert_eq!(Discard::chunked(10).discard(b"ffffffffffffffffff\r\n"), Err(BodyError::TooLarge));
        assert!(matches!(Discard::chunked(10).discard(b"\r\n"), Err(BodyError::Malformed(_))));
        assert!(matches!(Discard::chunked(10).discard(b"x\r\n"), Err(BodyError::Malformed(_))));
        assert!(matches!(Discard::chunked(10).discard(b"1\r\naXY"), Err(BodyError::Malformed(_))));
        assert!(matches!(Discard::chunked(10).discard(b"0\r\nbad\nline"), Err(BodyError::Malformed(_))));
        assert_eq!(Discard::chunked(10).discard(b"0\r\n\r\n"), Ok((5, true)));
    }

    #[test]
    fn framing_stops_at_data_whatever_the_split() {
        let end = BODY.len() - 3;
        for step in 1..BODY.len() {
            let mut c = Chunked::new(100);
            let (mut at, mut data) = (0, Vec::new());
            loop {
                let chunk = &BODY[at..(at + step).min(BODY.len())];
                match c.framing(chunk).unwrap() {
                    Framing::More(n) => at += n,
                    Framing::Data(n, len) => {
                        at += n;
                        let take = (len as usize).min(step).min(BODY.len() - at);
                        data.extend_from_slice(&BODY[at..at + take]);
                        at += take;
                        c.data_taken(take as u64);
                    }
                    Framing::Done(n) => {
                        at += n;
                        break;
                    }
                }
            }
            assert_eq!((at, &data[..]), (end, &b"hello world"[..]), "step {step}");
        }
        assert_eq!(Chunked::new(4).framing(b"5\r\n"), Err(BodyError::TooLarge));
    }

    #[test]
    fn length_counts_down() {
        let mut d = Discard::Length(5);
        assert_eq!(d.discard(b"abc"), Ok((3, false)));
        assert_eq!(d.discard(b"deGET"), Ok((2, true)));
    }
}
