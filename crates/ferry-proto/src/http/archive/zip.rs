//! Zip (PKWARE APPNOTE 6.3) records, written by hand: stored entries (no
//! compression, so file bytes can go out with `sendfile`), the CRC-32 and
//! sizes in each local header (computed before the entry is sent, so no
//! data descriptors), zip64 fields wherever a size, an offset or the entry
//! count passes the 32/16-bit limits, the UTF-8 flag on UTF-8 names and
//! the Unix mode and modification time (extended timestamp field).
//!
//! A zip ends with its central directory, one record per entry: those are
//! kept until the end, about 60 bytes plus the name per entry.

/// Marks a 32-bit field whose value is in the zip64 extra field.
const FULL32: u32 = 0xFFFF_FFFF;
/// Marks the 16-bit entry counts of the end record when zip64 holds them.
const FULL16: u16 = 0xFFFF;
/// Version needed: 2.0 (stored, directories), 4.5 (zip64).
const VERSION_20: u16 = 20;
const VERSION_45: u16 = 45;
/// Version made by: Unix (3) in the high byte, so external attributes
/// carry the mode.
const MADE_BY_UNIX: u16 = (3 << 8) | VERSION_45;
/// Flag bit 11: the name is UTF-8.
const FLAG_UTF8: u16 = 1 << 11;
/// Extra field tags: zip64 extended information, extended timestamp.
const TAG_ZIP64: u16 = 0x0001;
const TAG_TIME: u16 = 0x5455;

/// One entry as the central directory remembers it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Path inside the archive (directories end in `/`).
    pub name: Vec<u8>,
    pub is_dir: bool,
    /// Unix permission bits.
    pub mode: u32,
    pub mtime: i64,
    pub size: u64,
    pub crc: u32,
    /// Where its local header starts in the archive.
    pub offset: u64,
}

impl Entry {
    fn flags(&self) -> u16 {
        if std::str::from_utf8(&self.name).is_ok() { FLAG_UTF8 } else { 0 }
    }

    fn version_needed(&self) -> u16 {
        if self.size >= u64::from(FULL32) || self.offset >= u64::from(FULL32) { VERSION_45 } else { VERSION_20 }
    }

    fn mtime32(&self) -> u32 {
        u32::try_from(self.mtime).unwrap_or(0)
    }
}

/// The length of `entry`'s local header: known before its CRC, so the
/// chunk that carries it can be framed first.
pub(crate) fn local_header_len(entry: &Entry) -> usize {
    30 + entry.name.len() + 9 + if entry.size >= u64::from(FULL32) { 20 } else { 0 }
}

/// Appends `entry`'s local file header.
pub(crate) fn push_local_header(out: &mut Vec<u8>, entry: &Entry) {
    let zip64 = entry.size >= u64::from(FULL32);
    let size32 = if zip64 { FULL32 } else { entry.size as u32 };
    let extra_len: u16 = 9 + if zip64 { 20 } else { 0 };
    let (time, date) = dos_time(entry.mtime);
    u32le(out, 0x0403_4b50);
    u16le(out, entry.version_needed());
    u16le(out, entry.flags());
    u16le(out, 0); // stored
    u16le(out, time);
    u16le(out, date);
    u32le(out, entry.crc);
    u32le(out, size32); // compressed
    u32le(out, size32); // uncompressed
    u16le(out, entry.name.len() as u16);
    u16le(out, extra_len);
    out.extend_from_slice(&entry.name);
    push_time_extra(out, entry.mtime32());
    if zip64 {
        u16le(out, TAG_ZIP64);
        u16le(out, 16);
        u64le(out, entry.size);
        u64le(out, entry.size);
    }
}

/// Appends the central directory and its end records. `offset` is where
/// the central directory starts (the archive's length so far).
pub(crate) fn push_central_directory(out: &mut Vec<u8>, entries: &[Entry], offset: u64) {
    let start = out.len();
    for entry in entries {
        push_central_record(out, entry);
    }
    let size = (out.len() - start) as u64;
    let count = entries.len() as u64;
    let zip64 = count >= u64::from(FULL16) || offset >= u64::from(FULL32) || size >= u64::from(FULL32);
    if zip64 {
        let record_at = offset + size;
        // Zip64 end of central directory record.
        u32le(out, 0x0606_4b50);
        u64le(out, 44); // the size of what follows this field
        u16le(out, MADE_BY_UNIX);
        u16le(out, VERSION_45);
        u32le(out, 0); // this disk
        u32le(out, 0); // the disk the directory starts on
        u64le(out, count);
        u64le(out, count);
        u64le(out, size);
        u64le(out, offset);
        // Its locator.
        u32le(out, 0x0706_4b50);
        u32le(out, 0);
        u64le(out, record_at);
        u32le(out, 1); // disks in all
    }
    let count16 = if zip64 { FULL16 } else { count as u16 };
    u32le(out, 0x0605_4b50);
    u16le(out, 0);
    u16le(out, 0);
    u16le(out, count16);
    u16le(out, count16);
    u32le(out, if zip64 { FULL32 } else { size as u32 });
    u32le(out, if zip64 { FULL32 } else { offset as u32 });
    u16le(out, 0); // comment length
}

fn push_central_record(out: &mut Vec<u8>, entry: &Entry) {
    let big_size = entry.size >= u64::from(FULL32);
    let big_offset = entry.offset >= u64::from(FULL32);
    let zip64_len: u16 = 8 * (2 * u16::from(big_size) + u16::from(big_offset));
    let extra_len = 9 + if zip64_len > 0 { 4 + zip64_len } else { 0 };
    let size32 = if big_size { FULL32 } else { entry.size as u32 };
    let (time, date) = dos_time(entry.mtime);
    let kind = if entry.is_dir { 0o040000 } else { 0o100000 };
    let external = ((kind | (entry.mode & 0o7777)) << 16) | if entry.is_dir { 0x10 } else { 0 };
    u32le(out, 0x0201_4b50);
    u16le(out, MADE_BY_UNIX);
    u16le(out, entry.version_needed());
    u16le(out, entry.flags());
    u16le(out, 0);
    u16le(out, time);
    u16le(out, date);
    u32le(out, entry.crc);
    u32le(out, size32);
    u32le(out, size32);
    u16le(out, entry.name.len() as u16);
    u16le(out, extra_len);
    u16le(out, 0); // comment
    u16le(out, 0); // disk
    u16le(out, 0); // internal attributes
    u32le(out, external);
    u32le(out, if big_offset { FULL32 } else { entry.offset as u32 });
    out.extend_from_slice(&entry.name);
    push_time_extra(out, entry.mtime32());
    if zip64_len > 0 {
        u16le(out, TAG_ZIP64);
        u16le(out, zip64_len);
        if big_size {
            u64le(out, entry.size);
            u64le(out, entry.size);
        }
        if big_offset {
            u64le(out, entry.offset);
        }
    }
}

/// The extended timestamp field with the modification time (Unix seconds,
/// which DOS time cannot hold exactly).
fn push_time_extra(out: &mut Vec<u8>, mtime: u32) {
    u16le(out, TAG_TIME);
    u16le(out, 5);
    out.push(1); // mtime present
    u32le(out, mtime);
}

/// DOS time and date (UTC, two-second steps, 1980 to 2107).
fn dos_time(mtime: i64) -> (u16, u16) {
    let secs = mtime.clamp(315_532_800, 4_354_819_199); // 1980-01-01 .. 2107-12-31
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let time = ((in_day / 3600) << 11) | ((in_day % 3600 / 60) << 5) | (in_day % 60 / 2);
    let date = ((year - 1980) << 9) | (month << 5) | day;
    (time as u16, date as u16)
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u64le(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &[u8], size: u64, offset: u64) -> Entry {
        Entry { name: name.to_vec(), is_dir: false, mode: 0o644, mtime: 1_700_000_000, size, crc: 0x1234_5678, offset }
    }

    #[test]
    fn the_local_header_length_is_known_before_it_is_written() {
        for e in [entry(b"a.txt", 5, 0), entry(b"big.iso", 5 << 30, 0), entry("é".as_bytes(), 0, 1 << 33)] {
            let mut out = Vec::new();
            push_local_header(&mut out, &e);
            assert_eq!(out.len(), local_header_len(&e));
        }
    }

    #[test]
    fn a_small_entry_has_no_zip64_field() {
        let mut out = Vec::new();
        push_local_header(&mut out, &entry(b"a.txt", 5, 0));
        assert_eq!(&out[..4], b"PK\x03\x04");
        assert_eq!(u16::from_le_bytes([out[4], out[5]]), VERSION_20);
        assert_eq!(u16::from_le_bytes([out[6], out[7]]), FLAG_UTF8);
        assert_eq!(&out[18..22], &5u32.to_le_bytes());
        assert_eq!(out.len(), 30 + 5 + 9);
    }

    #[test]
    fn sizes_and_offsets_past_4_gib_and_many_entries_use_zip64() {
        let entries: Vec<Entry> = (0..70_000u64).map(|i| entry(b"f", 1, i * 50)).collect();
        let mut out = Vec::new();
        push_central_directory(&mut out, &entries, 5 << 30);
        let end = &out[out.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[8], end[9]]), FULL16, "the count is in the zip64 record");
        let locator = &out[out.len() - 22 - 20..out.len() - 22];
        assert_eq!(&locator[..4], b"PK\x06\x07");

        let mut out = Vec::new();
        push_central_directory(&mut out, &[entry(b"big", 5 << 30, 6 << 30)], 12 << 30);
        // size, size, offset in the zip64 field.
        assert_eq!(u16::from_le_bytes([out[30], out[31]]), 9 + 4 + 24);
    }

    #[test]
    fn dos_time_counts_from_1980_in_two_second_steps() {
        // 2023-11-14 22:13:20 UTC.
        let (time, date) = dos_time(1_700_000_000);
        assert_eq!((date >> 9) + 1980, 2023);
        assert_eq!((date >> 5) & 0xF, 11);
        assert_eq!(date & 0x1F, 14);
        assert_eq!((time >> 11, (time >> 5) & 0x3F, (time & 0x1F) * 2), (22, 13, 20));
        assert_eq!(dos_time(0), dos_time(315_532_800), "before 1980 clamps");
    }
}
