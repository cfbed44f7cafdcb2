//! Writing a snapshot: a temporary file, fsynced, renamed into place, the directory fsynced.
//!
//! The file is a header, the records, and a closing `End { count }` record
//! ([`super::format`](mod@super::format)): a snapshot without a matching end record is never trusted. Until the
//! rename is durable, the old snapshot and segments stay authoritative; a crash before it
//! leaves a `.snap.tmp` that the next open removes.

use std::io;
use std::path::Path;

use super::format::{self, encode_header, FileKind, Header, MAX_PAYLOAD};
use super::fs::FileSystem;
use super::reader::with_path;
use super::record::{encode_end_frame, encode_frame, Record};
use super::{Error, Result};

/// Records are written out in chunks of about this many bytes.
const CHUNK: usize = 1 << 20;

/// Writes the snapshot of the state before lsn `upto`, not covering segment `next_segment` or
/// later, and makes it durable under its final name. Returns its size.
///
/// # Errors
///
/// [`Error::Io`] (naming the file) if a write, fsync, rename or directory fsync fails; the
/// temporary file is then removed (best effort). [`Error::RecordTooLarge`] for a record that
/// cannot be framed. Either way the log as it was stays authoritative.
pub(crate) fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    upto: u64,
    next_segment: u64,
    records: impl Iterator<Item = Record>,
) -> Result<u64> {
    let tmp = format::snapshot_temp_path(dir, upto);
    let path = format::snapshot_path(dir, upto);
    let written = write_temp(fs, &tmp, upto, next_segment, records);
    let placed = written.and_then(|bytes| {
        fs.rename(&tmp, &path)
            .map_err(|e| with_path(e, "cannot rename the log snapshot into place", &path))?;
        Ok(bytes)
    });
    match placed {
        Ok(bytes) => {
            fs.sync_dir(dir)
                .map_err(|e| with_path(e, "cannot fsync the log directory", dir))?;
            Ok(bytes)
        }
        Err(e) => {
            let _ = fs.remove(&tmp);
            Err(e)
        }
    }
}

fn write_temp(
    fs: &dyn FileSystem,
    tmp: &Path,
    upto: u64,
    next_segment: u64,
    records: impl Iterator<Item = Record>,
) -> Result<u64> {
    let io_err = |e: io::Error| with_path(e, "cannot write the log snapshot", tmp);
    let mut file = fs.create(tmp).map_err(io_err)?;
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    buf.extend_from_slice(&encode_header(
        FileKind::Snapshot,
        Header {
            a: next_segment,
            b: upto,
        },
    ));
    let mut count = 0u64;
    let mut total = 0u64;
    for record in records {
        encode_frame(&record, &mut buf).map_err(|e| Error::RecordTooLarge {
            given: e.given,
            limit: MAX_PAYLOAD,
        })?;
        count += 1;
        if buf.len() >= CHUNK {
            file.append(&buf).map_err(io_err)?;
            total += u64::try_from(buf.len()).unwrap_or(u64::MAX);
            buf.clear();
        }
    }
    encode_end_frame(count, &mut buf);
    file.append(&buf).map_err(io_err)?;
    total += u64::try_from(buf.len()).unwrap_or(u64::MAX);
    file.sync().map_err(io_err)?;
    Ok(total)
}
