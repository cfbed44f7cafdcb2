//! Replay: reads a log directory into records, and tells a torn tail from damage.
//!
//! # Ground rules
//!
//! - Reading changes nothing on disk. [`replay`] returns what it found, including what
//!   `open` must repair (a torn tail to cut, stale files to remove); `open` does the repairs.
//! - The newest snapshot wins; an older one, and any `.snap.tmp`, is stale (a crash between
//!   the steps of a compaction leaves them). Segments numbered below the snapshot's
//!   `next_segment` are covered by it: they are not read, only removed.
//! - The remaining segments must be contiguous in number and in lsn, the first one starting
//!   at or before the snapshot's `upto` (or at 0 without a snapshot). Records below `upto`
//!   are skipped.
//! - A segment's records end at its end of file, or where nothing but zeros follows to the end
//!   of file: space the writer preallocated and had not reached (no frame starts with nine zero
//!   bytes: every payload is at least 8 bytes long, so its `len` is not 0). The last segment's
//!   unused zeros are reported, for `open` to give back.
//! - Only the **last** segment can have a torn tail: a sealed segment was fsynced before the
//!   next one was created. At the first bad frame of the last segment, the bytes from there
//!   to the end are a torn tail if no whole, checksummed frame starts anywhere after it (a torn
//!   write is a prefix of one group commit, so nothing valid can follow its first bad frame);
//!   otherwise the damage is in the middle of the data and is `Error::Corruption`. A frame
//!   whose checksum matches but whose payload does not decode is always corruption.

use std::path::{Path, PathBuf};

use super::format::{
    self, decode_header, kind, FileKind, Header, HeaderError, LogFileName, FRAME_HEADER_LEN,
    HEADER_LEN,
};
use super::fs::FileSystem;
use super::record::{decode_end, read_frame, Frame, Record};
use super::{Error, Result};

/// The snapshot `replay` used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SnapshotFile {
    /// It holds the state of every record with lsn below this.
    pub(crate) upto: u64,
    /// The first segment it does not cover.
    pub(crate) next_segment: u64,
    /// Its size.
    pub(crate) bytes: u64,
}

/// A live segment `replay` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    /// Its number.
    pub(crate) number: u64,
    /// The lsn of its first record.
    pub(crate) first_lsn: u64,
    /// The lsn just past its last good record.
    pub(crate) end_lsn: u64,
    /// Its size once a torn tail is cut.
    pub(crate) bytes: u64,
}

/// A torn tail found at the end of the last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Torn {
    /// The segment.
    pub(crate) segment: u64,
    /// Where the good data ends; 0 with `whole_file` (even the header is incomplete).
    pub(crate) offset: u64,
    /// The bytes past `offset`.
    pub(crate) bytes: u64,
    /// The file has no whole header: remove it rather than cut it.
    pub(crate) whole_file: bool,
}

/// Preallocated space the writer had not reached, at the end of the last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unused {
    /// The segment.
    pub(crate) segment: u64,
    /// Where its records end and the zeros begin.
    pub(crate) offset: u64,
}

/// Everything `replay` found.
#[derive(Debug)]
pub(crate) struct Replay {
    /// Snapshot records, then segment records at or past the snapshot's `upto`.
    pub(crate) records: Vec<Record>,
    /// How many of `records` came from the snapshot.
    pub(crate) snapshot_records: usize,
    /// The snapshot used, if any.
    pub(crate) snapshot: Option<SnapshotFile>,
    /// The live segments, oldest first (a torn tail's segment with its cut size; a segment
    /// removed whole for a torn header is not here).
    pub(crate) segments: Vec<SegmentFile>,
    /// The torn tail of the last segment, if any.
    pub(crate) torn: Option<Torn>,
    /// The unused zeros at the end of the last segment, if any.
    pub(crate) unused: Option<Unused>,
    /// Files to remove: stale snapshots and temporaries, segments the snapshot covers.
    pub(crate) stale: Vec<PathBuf>,
    /// The lsn the next record gets.
    pub(crate) next_lsn: u64,
    /// The number the next segment gets.
    pub(crate) next_segment: u64,
}

/// Reads the log in `dir`.
///
/// # Errors
///
/// [`Error::Io`] (with the path) when the directory or a file cannot be read;
/// [`Error::Corruption`] / [`Error::CorruptSnapshot`] for damage that is not a torn tail;
/// [`Error::UnsupportedLogVersion`] for a file from a newer format.
pub(crate) fn replay(fs: &dyn FileSystem, dir: &Path) -> Result<Replay> {
    let names = fs
        .list(dir)
        .map_err(|e| with_path(e, "cannot list the log directory", dir))?;
    let mut segments = Vec::new();
    let mut snapshots = Vec::new();
    let mut stale = Vec::new();
    for name in &names {
        match format::parse_name(name) {
            Some(LogFileName::Segment(n)) => segments.push(n),
            Some(LogFileName::Snapshot(n)) => snapshots.push(n),
            Some(LogFileName::SnapshotTemp(_)) => stale.push(dir.join(name)),
            None => {}
        }
    }
    segments.sort_unstable();
    snapshots.sort_unstable();

    let mut out = Replay {
        records: Vec::new(),
        snapshot_records: 0,
        snapshot: None,
        segments: Vec::new(),
        torn: None,
        unused: None,
        stale,
        next_lsn: 0,
        next_segment: 0,
    };
    if let Some((&newest, older)) = snapshots.split_last() {
        out.stale
            .extend(older.iter().map(|&n| format::snapshot_path(dir, n)));
        let snap = read_snapshot(fs, dir, newest, &mut out.records)?;
        out.snapshot_records = out.records.len();
        out.next_lsn = snap.upto;
        out.next_segment = snap.next_segment;
        out.snapshot = Some(snap);
    }
    let first_live = segments.partition_point(|&n| n < out.next_segment);
    out.stale.extend(
        segments[..first_live]
            .iter()
            .map(|&n| format::segment_path(dir, n)),
    );
    let live = &segments[first_live..];
    for (i, &number) in live.iter().enumerate() {
        read_segment(fs, dir, number, i + 1 == live.len(), &mut out)?;
    }
    Ok(out)
}

/// Reads the snapshot covering lsns below `upto`, appending its records to `records`.
fn read_snapshot(
    fs: &dyn FileSystem,
    dir: &Path,
    upto: u64,
    records: &mut Vec<Record>,
) -> Result<SnapshotFile> {
    let path = format::snapshot_path(dir, upto);
    let data = fs
        .read(&path)
        .map_err(|e| with_path(e, "cannot read the log snapshot", &path))?;
    let bad = |offset: usize, reason: &'static str| Error::CorruptSnapshot {
        file: path.clone(),
        offset: to_u64(offset),
        reason,
    };
    let header = match decode_header(FileKind::Snapshot, &data) {
        Ok(h) => h,
        Err(HeaderError::Short) => return Err(bad(0, "snapshot is shorter than its header")),
        Err(HeaderError::Bad(reason)) => return Err(bad(0, reason)),
        Err(HeaderError::Newer(found)) => return Err(newer(&path, found)),
    };
    if header.b != upto {
        return Err(bad(
            0,
            "snapshot header names another lsn than its file name",
        ));
    }
    let start = records.len();
    let mut at = HEADER_LEN;
    loop {
        match read_frame(&data[at..]) {
            Frame::Good {
                kind: kind::END,
                payload,
                len,
            } => {
                let count = decode_end(payload).map_err(|e| bad(at, e.reason()))?;
                if count != to_u64(records.len() - start) {
                    return Err(bad(
                        at,
                        "snapshot record count does not match its end record",
                    ));
                }
                if at + len != data.len() {
                    return Err(bad(at + len, "snapshot has data after its end record"));
                }
                break;
            }
            Frame::Good { kind, payload, len } => {
                records.push(Record::decode(kind, payload).map_err(|e| bad(at, e.reason()))?);
                at += len;
            }
            Frame::Incomplete => {
                return Err(bad(at, "snapshot ends before its end record"));
            }
            Frame::Bad(reason) => return Err(bad(at, reason)),
        }
    }
    Ok(SnapshotFile {
        upto,
        next_segment: header.a,
        bytes: to_u64(data.len()),
    })
}

/// One segment being read: where it is, for error reports.
struct SegmentCtx<'a> {
    dir: &'a Path,
    number: u64,
    is_last: bool,
}

impl SegmentCtx<'_> {
    fn bad(&self, offset: usize, reason: &'static str) -> Error {
        Error::Corruption {
            dir: self.dir.to_path_buf(),
            segment: self.number,
            offset: to_u64(offset),
            reason,
        }
    }
}

/// Reads segment `number` into `out`, checking that it continues the segments before it.
fn read_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    is_last: bool,
    out: &mut Replay,
) -> Result<()> {
    let path = format::segment_path(dir, number);
    let data = fs
        .read(&path)
        .map_err(|e| with_path(e, "cannot read log segment", &path))?;
    let seg = SegmentCtx {
        dir,
        number,
        is_last,
    };
    let expected = match out.segments.last() {
        Some(prev) => prev.number + 1,
        None => out.next_segment,
    };
    if number != expected && (out.snapshot.is_some() || !out.segments.is_empty()) {
        return Err(SegmentCtx {
            number: expected,
            ..seg
        }
        .bad(0, "a segment file is missing"));
    }
    let header: Header = match decode_header(FileKind::Segment, &data) {
        Ok(h) => h,
        Err(HeaderError::Short) if is_last => {
            // Created, then the crash came before its header was down.
            out.torn = Some(Torn {
                segment: number,
                offset: 0,
                bytes: to_u64(data.len()),
                whole_file: true,
            });
            out.next_segment = number;
            return Ok(());
        }
        Err(HeaderError::Short) => return Err(seg.bad(0, "segment is shorter than its header")),
        Err(HeaderError::Bad(reason)) => return Err(seg.bad(0, reason)),
        Err(HeaderError::Newer(found)) => return Err(newer(&path, found)),
    };
    if header.a != number {
        return Err(seg.bad(0, "segment header names another segment"));
    }
    check_continuity(&seg, header.b, out)?;
    scan_records(&seg, &data, header.b, out)
}

/// The first lsn of a segment must follow on from the segment before it, or from the
/// snapshot, or be 0.
fn check_continuity(seg: &SegmentCtx<'_>, first_lsn: u64, out: &Replay) -> Result<()> {
    match (out.segments.last(), &out.snapshot) {
        (Some(prev), _) if prev.end_lsn != first_lsn => {
            Err(seg.bad(0, "segment does not continue the previous one"))
        }
        (None, Some(snap)) if first_lsn > snap.upto => Err(seg.bad(
            0,
            "records between the snapshot and this segment are missing",
        )),
        (None, None) if first_lsn != 0 => Err(seg.bad(
            0,
            "the first segment does not start the log and no snapshot covers the gap",
        )),
        _ => Ok(()),
    }
}

/// Decodes the records after the header, keeping those at or past the snapshot's `upto`,
/// stops at unused preallocated zeros, and tells a torn tail (last segment only) from damage.
fn scan_records(seg: &SegmentCtx<'_>, data: &[u8], first_lsn: u64, out: &mut Replay) -> Result<()> {
    let upto = out.snapshot.map_or(0, |s| s.upto);
    let mut lsn = first_lsn;
    let mut at = HEADER_LEN;
    while at < data.len() {
        match read_frame(&data[at..]) {
            Frame::Good { kind, payload, len } => {
                let record = Record::decode(kind, payload).map_err(|e| seg.bad(at, e.reason()))?;
                if lsn >= upto {
                    out.records.push(record);
                }
                lsn += 1;
                at += len;
            }
            Frame::Incomplete | Frame::Bad(_) if data[at..].iter().all(|&b| b == 0) => {
                if seg.is_last {
                    out.unused = Some(Unused {
                        segment: seg.number,
                        offset: to_u64(at),
                    });
                }
                break;
            }
            Frame::Incomplete | Frame::Bad(_) if seg.is_last && !any_frame_after(data, at + 1) => {
                out.torn = Some(Torn {
                    segment: seg.number,
                    offset: to_u64(at),
                    bytes: to_u64(data.len() - at),
                    whole_file: false,
                });
                break;
            }
            Frame::Incomplete => {
                return Err(seg.bad(at, "incomplete record before the end of the log"))
            }
            Frame::Bad(reason) => return Err(seg.bad(at, reason)),
        }
    }
    out.segments.push(SegmentFile {
        number: seg.number,
        first_lsn,
        end_lsn: lsn,
        bytes: to_u64(at),
    });
    out.next_lsn = out.next_lsn.max(lsn);
    out.next_segment = seg.number + 1;
    Ok(())
}

/// How many payload bytes the search for a frame after a bad one may checksum (1 GiB): past
/// that, a pathological tail is called damaged rather than searched for ever.
const SEARCH_BUDGET: usize = 1 << 30;

/// True if a whole frame with a matching checksum starts at any offset from `from` on (or the
/// search ran out of budget, which is treated the same: not provably a torn tail).
fn any_frame_after(data: &[u8], from: usize) -> bool {
    let mut budget = SEARCH_BUDGET;
    let mut at = from;
    while at + FRAME_HEADER_LEN <= data.len() {
        let rest = &data[at..];
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len <= rest.len() - FRAME_HEADER_LEN {
            if budget < len {
                return true;
            }
            budget -= len;
            if matches!(read_frame(rest), Frame::Good { .. }) {
                return true;
            }
        }
        at += 1;
    }
    false
}

fn newer(path: &Path, found: u16) -> Error {
    Error::UnsupportedLogVersion {
        file: path.to_path_buf(),
        found,
        supported: format::VERSION,
    }
}

/// An I/O error that names the path and what was being done.
pub(crate) fn with_path(e: std::io::Error, what: &str, path: &Path) -> Error {
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    ))
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
