//! One streaming compressor per coding, behind one type: bytes in, the
//! compressed bytes produced so far out, in bounded pieces.

use std::io::{self, Write};

use super::{Coding, Level};

/// Input bytes read from a file and compressed per step: the unit of work
/// and of buffer memory in a compression job.
pub(crate) const STEP: usize = 64 * 1024;

/// Brotli's window (log2 bytes): 1 MiB instead of the 4 MiB default keeps
/// an encoder's memory small at a negligible cost in ratio for web files.
const BROTLI_LGWIN: u32 = 20;

/// A compressor writing into a `Vec` the caller drains.
pub(crate) enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoder::Gzip(_) => "Encoder(gzip)",
            Encoder::Br(_) => "Encoder(br)",
            Encoder::Zstd(_) => "Encoder(zstd)",
        })
    }
}

impl Encoder {
    /// A new stream in `coding` at `level`.
    pub(crate) fn new(coding: Coding, level: Level) -> io::Result<Encoder> {
        let (gzip, br, zstd) = level.params();
        Ok(match coding {
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(gzip))),
            Coding::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(Vec::new(), 4096, br, BROTLI_LGWIN))),
            Coding::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(Vec::new(), zstd)?),
        })
    }

    /// Compresses `data` (output accumulates; take it with [`Encoder::take`]).
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::Br(e) => e.write_all(data),
            Encoder::Zstd(e) => e.write_all(data),
        }
    }

    /// The compressed bytes produced so far, leaving the stream open.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Br(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
        })
    }

    /// Ends the stream: the rest of the compressed bytes.
    pub(crate) fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Br(e) => Ok(e.into_inner()),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

/// `data` compressed whole (for tests and small cached bodies).
pub(crate) fn compress(coding: Coding, level: Level, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = Encoder::new(coding, level)?;
    let mut out = Vec::new();
    for piece in data.chunks(STEP) {
        encoder.write(piece)?;
        out.append(&mut encoder.take());
    }
    out.extend_from_slice(&encoder.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        (0..20_000).flat_map(|i| format!("line {i}: the quick brown fox\n").into_bytes()).collect()
    }

    #[test]
    fn round_trips_in_every_coding() {
        let data = sample();
        for level in [Level::Fast, Level::Default, Level::Best] {
            let gz = compress(Coding::Gzip, level, &data).unwrap();
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, data);
            assert!(gz.len() < data.len() / 4, "gzip {level:?}: {}", gz.len());

            let br = compress(Coding::Br, level, &data).unwrap();
            let mut back = Vec::new();
            brotli::Decompressor::new(&br[..], 4096).read_to_end(&mut back).unwrap();
            assert_eq!(back, data);

            let zst = compress(Coding::Zstd, level, &data).unwrap();
            assert_eq!(zstd::stream::decode_all(&zst[..]).unwrap(), data);
        }
    }

    #[test]
    fn output_comes_out_as_it_goes() {
        // A stream does not hold everything until the end: bounded memory
        // for large files depends on it.
        let data = sample();
        let mut encoder = Encoder::new(Coding::Gzip, Level::Default).unwrap();
        let mut early = 0;
        for piece in data.chunks(STEP) {
            encoder.write(piece).unwrap();
            early += encoder.take().len();
        }
        assert!(early > 0);
    }
}
