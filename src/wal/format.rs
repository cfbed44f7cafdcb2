//! The on-disk format of the log, in one place: file names, file headers, record framing and
//! every record kind's payload. Nothing else in the crate knows a byte offset.
//!
//! # Layout
//!
//! A log directory holds:
//!
//! ```text
//! LOCK                                  the lock file (flock'd while a log handle is open; empty)
//! 00000000000000000000.wal              segment 0
//! 00000000000000000001.wal              segment 1 ... (numbers are contiguous, no gaps)
//! snapshot-00000000000000004711.snap    the snapshot of the state before lsn 4711 (at most one
//!                                       after a clean open; an older one or a `.snap.tmp` left by
//!                                       a crash is removed by the next open)
//! ```
//!
//! Every file starts with a 32-byte header, little-endian:
//!
//! ```text
//!   0        8         10         12            20        28          32
//!   | magic  | version | reserved | a: u64      | b: u64  | crc32c: u32 |
//!   | [u8;8] | u16     | u16 = 0  |             |         | of 0..28    |
//!
//!   segment  (magic "LSRWAL\r\n"): a = the segment's number (= its file name),
//!                                  b = the lsn of its first record
//!   snapshot (magic "LSRSNP\r\n"): a = the first segment the snapshot does not cover,
//!                                  b = `upto`: the snapshot holds the state of every record
//!                                      with lsn < upto
//! ```
//!
//! A reader checks the magic, then the version (a newer one is refused by name before anything
//! else is read, so a later format may change everything after byte 10), then the checksum.
//!
//! After the header come records, each framed as:
//!
//! ```text
//!   | len: u32 | crc32c: u32            | kind: u8 | payload: [u8; len] |
//!   |          | of kind and payload    |          |                    |
//! ```
//!
//! `len` counts the payload only (the frame is `FRAME_HEADER_LEN + len` bytes) and is at most
//! [`MAX_PAYLOAD`]. Records carry no lsn: a record's lsn is its segment's first lsn plus its
//! index in the segment. Payloads, by kind (`i64` fixed 8 bytes little-endian; `varint` an
//! unsigned LEB128 of at most 10 bytes; `bytes` a varint length then the bytes):
//!
//! ```text
//!   1 Grant        id: i64 | ttl_ms: varint
//!   2 Revoke       id: i64
//!   3 Attach       id: i64 | count: varint | count x key: bytes
//!   4 Detach       id: i64 | count: varint | count x key: bytes
//!   5 Checkpoint   id: i64 | remaining_ms: varint
//!   6 Put          key: bytes | value: bytes | lease: i64 | revision: i64
//!   7 DeleteRange  key: bytes | range_end: bytes | revision: i64
//!   8 StoreEntry   key: bytes | value: bytes | lease: i64 | create_revision: i64
//!                  | mod_revision: i64 | version: i64   (written by compaction)
//!   9 StoreRevision revision: i64                       (written by compaction)
//! 127 End          count: varint   (snapshot only: its last record; count = records before it)
//! ```
//!
//! A payload must be consumed exactly: trailing bytes are as bad as missing ones.

use std::path::{Path, PathBuf};

/// The format version this build writes and the newest it reads.
pub(crate) const VERSION: u16 = 1;

/// The first bytes of a segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"LSRWAL\r\n";

/// The first bytes of a snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"LSRSNP\r\n";

/// Bytes in a file header.
pub(crate) const HEADER_LEN: usize = 32;

/// Bytes in a record frame before the payload: `len`, `crc32c` and `kind`.
pub(crate) const FRAME_HEADER_LEN: usize = 9;

/// The largest payload a record may have (128 MiB). A larger `len` is damage, not data.
pub(crate) const MAX_PAYLOAD: usize = 128 << 20;

/// The name of the lock file in a log directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Record kinds, the `kind` byte of a frame.
pub(crate) mod kind {
    /// `Record::Grant`.
    pub(crate) const GRANT: u8 = 1;
    /// `Record::Revoke`.
    pub(crate) const REVOKE: u8 = 2;
    /// `Record::Attach`.
    pub(crate) const ATTACH: u8 = 3;
    /// `Record::Detach`.
    pub(crate) const DETACH: u8 = 4;
    /// `Record::Checkpoint`.
    pub(crate) const CHECKPOINT: u8 = 5;
    /// `Record::Put`.
    pub(crate) const PUT: u8 = 6;
    /// `Record::DeleteRange`.
    pub(crate) const DELETE_RANGE: u8 = 7;
    /// `Record::StoreEntry`.
    pub(crate) const STORE_ENTRY: u8 = 8;
    /// `Record::StoreRevision`.
    pub(crate) const STORE_REVISION: u8 = 9;
    /// The end of a snapshot, with its record count (never in a segment).
    pub(crate) const END: u8 = 127;
}

/// Which kind of file a header belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A log segment.
    Segment,
    /// A snapshot.
    Snapshot,
}

impl FileKind {
    fn magic(self) -> [u8; 8] {
        match self {
            FileKind::Segment => SEGMENT_MAGIC,
            FileKind::Snapshot => SNAPSHOT_MAGIC,
        }
    }
}

/// A decoded file header: the two numbers after the version (see the layout above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Segment: its number. Snapshot: the first segment it does not cover.
    pub(crate) a: u64,
    /// Segment: its first lsn. Snapshot: `upto`.
    pub(crate) b: u64,
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer than [`HEADER_LEN`] bytes.
    Short,
    /// Damaged: the reason says how.
    Bad(&'static str),
    /// Written by a newer format version.
    Newer(u16),
}

/// Encodes a header of `kind` into [`HEADER_LEN`] bytes.
pub(crate) fn encode_header(kind: FileKind, h: Header) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..8].copy_from_slice(&kind.magic());
    out[8..10].copy_from_slice(&VERSION.to_le_bytes());
    // 10..12 reserved, zero.
    out[12..20].copy_from_slice(&h.a.to_le_bytes());
    out[20..28].copy_from_slice(&h.b.to_le_bytes());
    let crc = crc32c::crc32c(&out[..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes the header at the start of `data`: magic first, then the version (a newer one is
/// refused before the rest is looked at), then the checksum.
pub(crate) fn decode_header(kind: FileKind, data: &[u8]) -> Result<Header, HeaderError> {
    let Some(h) = data.get(..HEADER_LEN) else {
        return Err(HeaderError::Short);
    };
    if h[0..8] != kind.magic() {
        return Err(HeaderError::Bad("not a lessor log file (bad magic bytes)"));
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version > VERSION {
        return Err(HeaderError::Newer(version));
    }
    let crc = u32::from_le_bytes([h[28], h[29], h[30], h[31]]);
    if crc32c::crc32c(&h[..28]) != crc {
        return Err(HeaderError::Bad("file header checksum mismatch"));
    }
    if version == 0 || h[10..12] != [0, 0] {
        return Err(HeaderError::Bad("file header has an impossible version"));
    }
    Ok(Header {
        a: le_u64(&h[12..20]),
        b: le_u64(&h[20..28]),
    })
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

// ===== file names =====

/// A file a log directory may hold, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogFileName {
    /// `{n:020}.wal`.
    Segment(u64),
    /// `snapshot-{upto:020}.snap`.
    Snapshot(u64),
    /// `snapshot-{upto:020}.snap.tmp`: a snapshot being written (or abandoned by a crash).
    SnapshotTemp(u64),
}

const SEGMENT_SUFFIX: &str = ".wal";
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".tmp";

/// The path of segment `n` in `dir`.
pub(crate) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}{SEGMENT_SUFFIX}"))
}

/// The path of the snapshot covering lsns below `upto` in `dir`.
pub(crate) fn snapshot_path(dir: &Path, upto: u64) -> PathBuf {
    dir.join(format!("{SNAPSHOT_PREFIX}{upto:020}{SNAPSHOT_SUFFIX}"))
}

/// The temporary path that snapshot is written to before it is renamed into place.
pub(crate) fn snapshot_temp_path(dir: &Path, upto: u64) -> PathBuf {
    dir.join(format!(
        "{SNAPSHOT_PREFIX}{upto:020}{SNAPSHOT_SUFFIX}{TEMP_SUFFIX}"
    ))
}

/// Parses a file name from a log directory; `None` for a name the log does not own.
pub(crate) fn parse_name(name: &str) -> Option<LogFileName> {
    if let Some(n) = name.strip_suffix(SEGMENT_SUFFIX) {
        return number(n).map(LogFileName::Segment);
    }
    let rest = name.strip_prefix(SNAPSHOT_PREFIX)?;
    if let Some(n) = rest.strip_suffix(TEMP_SUFFIX) {
        return number(n.strip_suffix(SNAPSHOT_SUFFIX)?).map(LogFileName::SnapshotTemp);
    }
    number(rest.strip_suffix(SNAPSHOT_SUFFIX)?).map(LogFileName::Snapshot)
}

/// Exactly 20 decimal digits.
fn number(digits: &str) -> Option<u64> {
    if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}
