//! Request bodies, read and thrown away so the next pipelined request
//! starts where it should. Nothing here buffers: a body costs a few words
//! of state however it is split.

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

impl Discard {
    /// A chunked body whose chunk data may total at most `limit` bytes.
    pub fn chunked(limit: u64) -> Discard {
        Discard::Chunked(Chunked { state: ChunkState::Size { value: 0, digits: 0 }, total: 0, limit, counted: 0 })
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
    fn discard(&mut self, input: &[u8]) -> Result<(usize, bool), BodyError> {
        use ChunkState::*;
        let mut i = 0;
        while i < input.len() {
            if let Data(left) = self.state {
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
    fn length_counts_down() {
        let mut d = Discard::Length(5);
        assert_eq!(d.discard(b"abc"), Ok((3, false)));
        assert_eq!(d.discard(b"deGET"), Ok((2, true)));
    }
}
