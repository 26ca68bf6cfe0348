//! POSIX tar (pax interchange format) headers, written by hand: a 512-byte
//! ustar header per entry, preceded by a pax extended header when the name
//! does not fit ustar's 100 + 155 bytes or the size its 11 octal digits
//! (8 GiB). Data follows each file header, padded to 512 bytes; two zero
//! blocks end the archive. GNU tar, bsdtar and Python's tarfile read it.

/// Tar's block size: headers, padding and the end are in blocks.
pub(crate) const BLOCK: usize = 512;

/// Largest size the ustar header's 11 octal digits hold.
const USTAR_MAX_SIZE: u64 = 0o777_7777_7777;

/// What one entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A regular file of `size` bytes (its data follows the header).
    File { size: u64 },
    /// A directory (no data).
    Dir,
}

/// One entry's header fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header<'a> {
    /// Path inside the archive, `/`-separated, no leading `/` (directories
    /// without a trailing one: it is added).
    pub path: &'a [u8],
    pub kind: EntryKind,
    /// Permission bits (the low 12 bits of `st_mode`).
    pub mode: u32,
    /// Modification time, Unix seconds (negative clamps to 0).
    pub mtime: i64,
}

/// Appends the header block(s) of `header` to `out`: a pax extended
/// header first when the ustar fields cannot hold the path or size.
pub(crate) fn push_header(out: &mut Vec<u8>, header: &Header<'_>) {
    let mut path = header.path.to_vec();
    let (typeflag, size) = match header.kind {
        EntryKind::File { size } => (b'0', size),
        EntryKind::Dir => {
            path.push(b'/');
            (b'5', 0)
        }
    };
    let split = split_ustar(&path);
    let mut records = Vec::new();
    if split.is_none() {
        pax_record(&mut records, b"path", &path);
        if std::str::from_utf8(&path).is_err() {
            // pax values are UTF-8 unless the archive says otherwise.
            pax_record(&mut records, b"hdrcharset", b"BINARY");
        }
    }
    if size > USTAR_MAX_SIZE {
        pax_record(&mut records, b"size", size.to_string().as_bytes());
    }
    if !records.is_empty() {
        let mut pax_name = b"PaxHeader/".to_vec();
        pax_name.extend(path.iter().rev().take(80).rev().filter(|&&b| b != b'/'));
        push_block(out, b"", &pax_name, b'x', records.len() as u64, 0o644, header.mtime);
        out.extend_from_slice(&records);
        push_padding(out, records.len() as u64);
    }
    let (prefix, name) = split.unwrap_or((&[][..], tail(&path, 100)));
    push_block(out, prefix, name, typeflag, size.min(USTAR_MAX_SIZE), header.mode, header.mtime);
}

/// The zero bytes that pad `len` data bytes to a whole block.
pub(crate) fn padding(len: u64) -> usize {
    (BLOCK - (len % BLOCK as u64) as usize) % BLOCK
}

/// Appends the padding of `len` data bytes.
pub(crate) fn push_padding(out: &mut Vec<u8>, len: u64) {
    out.resize(out.len() + padding(len), 0);
}

/// Appends the end of the archive: two zero blocks.
pub(crate) fn push_end(out: &mut Vec<u8>) {
    out.resize(out.len() + 2 * BLOCK, 0);
}

/// The last `n` bytes of `bytes` (a stand-in name when pax holds the real
/// one).
fn tail(bytes: &[u8], n: usize) -> &[u8] {
    &bytes[bytes.len().saturating_sub(n)..]
}

/// Splits `path` into ustar's prefix (at most 155 bytes) and name (at most
/// 100) at a `/`, or `None` if it cannot be.
fn split_ustar(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((&[], path));
    }
    // The name part may keep a trailing `/` (a directory), so search for
    // the separator before it.
    let searchable = &path[..path.len() - 1];
    searchable
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'/' && i <= 155 && path.len() - i - 1 <= 100 && i > 0)
        .map(|(i, _)| (&path[..i], &path[i + 1..]))
        .next()
}

/// One pax record: `LEN key=value\n`, where LEN counts the whole record,
/// its own digits included.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// One 512-byte ustar header block.
fn push_block(out: &mut Vec<u8>, prefix: &[u8], name: &[u8], typeflag: u8, size: u64, mode: u32, mtime: i64) {
    let mut block = [0u8; BLOCK];
    block[..name.len()].copy_from_slice(name);
    octal(&mut block[100..108], u64::from(mode & 0o7777));
    octal(&mut block[108..116], 0); // uid
    octal(&mut block[116..124], 0); // gid
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], u64::try_from(mtime).unwrap_or(0).min(0o777_7777_7777));
    block[156] = typeflag;
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[345..345 + prefix.len()].copy_from_slice(prefix);
    // The checksum is taken with its own field as spaces.
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    octal(&mut block[148..155], u64::from(sum));
    block[155] = b' ';
    out.extend_from_slice(&block);
}

/// `value` in octal, zero-padded, filling `field` but its last byte (NUL).
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(path: &[u8], kind: EntryKind) -> Vec<u8> {
        let mut out = Vec::new();
        push_header(&mut out, &Header { path, kind, mode: 0o644, mtime: 1_700_000_000 });
        out
    }

    fn checksum_holds(block: &[u8]) -> bool {
        let stored = std::str::from_utf8(&block[148..154]).ok().and_then(|s| u32::from_str_radix(s, 8).ok());
        let sum: u32 =
            block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
        stored == Some(sum)
    }

    #[test]
    fn a_short_name_is_one_ustar_block() {
        let out = header(b"dir/a.txt", EntryKind::File { size: 5 });
        assert_eq!(out.len(), BLOCK);
        assert!(out.starts_with(b"dir/a.txt\0"));
        assert_eq!(&out[124..136], b"00000000005\0");
        assert_eq!(&out[257..263], b"ustar\0");
        assert_eq!(out[156], b'0');
        assert!(checksum_holds(&out));
    }

    #[test]
    fn a_directory_ends_in_a_slash() {
        let out = header(b"dir/sub", EntryKind::Dir);
        assert!(out.starts_with(b"dir/sub/\0"));
        assert_eq!(out[156], b'5');
    }

    #[test]
    fn a_long_path_splits_into_prefix_and_name() {
        let path = [&[b'p'; 120][..], b"/", &[b'n'; 90][..]].concat();
        let out = header(&path, EntryKind::File { size: 0 });
        assert_eq!(out.len(), BLOCK);
        assert_eq!(&out[..90], &[b'n'; 90][..]);
        assert_eq!(&out[345..465], &[b'p'; 120][..]);
    }

    #[test]
    fn a_name_that_does_not_fit_gets_a_pax_path() {
        let path = [b'x'; 300];
        let out = header(&path, EntryKind::File { size: 1 });
        assert_eq!(out[156], b'x', "a pax header comes first");
        let records = &out[BLOCK..2 * BLOCK];
        let text = String::from_utf8_lossy(records);
        assert!(text.starts_with("310 path=xxx"), "{text}");
        assert_eq!(out.len(), 3 * BLOCK);
        assert!(checksum_holds(&out[..BLOCK]) && checksum_holds(&out[2 * BLOCK..]));
    }

    #[test]
    fn a_size_past_8_gib_gets_a_pax_size() {
        let size = 9 << 30;
        let out = header(b"big.iso", EntryKind::File { size });
        let text = String::from_utf8_lossy(&out[BLOCK..2 * BLOCK]);
        assert!(text.starts_with(&format!("19 size={size}\n")), "{text}");
    }

    #[test]
    fn pax_record_lengths_count_their_own_digits() {
        for (key, value, want) in [(&b"a"[..], &b"b"[..], "6 a=b\n"), (b"path", &[b'y'; 93], "")] {
            let mut out = Vec::new();
            pax_record(&mut out, key, value);
            let len: usize =
                std::str::from_utf8(&out[..out.iter().position(|&b| b == b' ').unwrap()]).unwrap().parse().unwrap();
            assert_eq!(len, out.len());
            if !want.is_empty() {
                assert_eq!(out, want.as_bytes());
            }
        }
    }

    #[test]
    fn padding_fills_the_last_block() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(513), 511);
    }
}
