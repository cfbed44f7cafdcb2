//! Entry points for the cargo-fuzz targets in `fuzz/`, compiled only with `--cfg fuzzing`
//! (which cargo-fuzz sets). They reach the crate-private log through its in-memory file
//! system; nothing here is part of the public API.

use std::path::Path;

use crate::error::Error;
use crate::wal::fake::MemFs;
use crate::wal::{shared_fs, FsyncPolicy, Record, Wal, WalOptions};

fn options(fs: &MemFs) -> WalOptions {
    WalOptions {
        fsync: FsyncPolicy::Always,
        segment_bytes: 1 << 12,
        fs: shared_fs(fs.clone()),
    }
}

/// Opens a log directory whose only segment holds `data` (after a valid header, so the fuzzer
/// reaches the record reader): never panics; a second open after a successful one finds the
/// same records and nothing more to cut.
pub fn wal_segment(data: &[u8]) {
    let dir = Path::new("/log");
    let fs = MemFs::new();
    // A real, empty segment gives the header; the fuzzer's bytes follow it.
    {
        let (wal, _) = Wal::open(dir, options(&fs)).expect("a fresh log opens");
        wal.close().expect("closes");
    }
    let names = crate::wal::FileSystem::list(&fs, dir).expect("lists");
    let Some(segment) = names.iter().find(|n| n.ends_with(".wal")) else {
        return;
    };
    let path = dir.join(segment);
    let mut bytes = fs.file(&path).unwrap_or_default();
    bytes.extend_from_slice(data);
    fs.set_file(&path, &bytes);
    match Wal::open(dir, options(&fs)) {
        Ok((wal, first)) => {
            wal.close().expect("closes");
            let (wal, again) = Wal::open(dir, options(&fs)).expect("a repaired log reopens");
            assert_eq!(first.records, again.records, "a reopen changed the records");
            assert!(again.truncated_tail.is_none(), "a second open cut again");
            wal.close().expect("closes");
        }
        Err(Error::Corruption { .. } | Error::CorruptSnapshot { .. }) => {}
        Err(e) => panic!("unexpected error opening fuzzed log: {e}"),
    }
}

/// Writes a real log of records derived from `data`, damages one of its files (a cut at one
/// offset and a bit flip at another, both chosen by `data`), and opens it: the result is a
/// prefix of what was written (a cut tail) or a corruption error, never other records.
pub fn wal_damage(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let (control, body) = data.split_at(8);
    let dir = Path::new("/log");
    let fs = MemFs::new();
    let mut written = Vec::new();
    {
        let (wal, _) = Wal::open(dir, options(&fs)).expect("a fresh log opens");
        for chunk in body.chunks(3) {
            let id = i64::from(chunk[0]) - 128;
            let record = match chunk.len() {
                1 => Record::Revoke { id },
                2 => Record::Grant {
                    id,
                    ttl_ms: u64::from(chunk[1]) * 1000,
                },
                _ => Record::Attach {
                    id,
                    keys: vec![chunk[1..].to_vec(); usize::from(chunk[2] % 4)],
                },
            };
            wal.append(std::slice::from_ref(&record)).expect("appends");
            written.push(record);
        }
        wal.close().expect("closes");
    }
    let mut names = crate::wal::FileSystem::list(&fs, dir).expect("lists");
    names.retain(|n| n.ends_with(".wal"));
    names.sort();
    if names.is_empty() {
        return;
    }
    let pick = usize::from(control[0]) % names.len();
    let path = dir.join(&names[pick]);
    let mut bytes = fs.file(&path).unwrap_or_default();
    if bytes.is_empty() {
        return;
    }
    let cut =
        u32::from_le_bytes([control[1], control[2], control[3], 0]) as usize % (bytes.len() + 1);
    let flip = u32::from_le_bytes([control[4], control[5], control[6], 0]) as usize % bytes.len();
    if control[7] & 1 == 1 {
        bytes[flip] ^= 1 << (control[7] >> 5);
    }
    bytes.truncate(cut);
    fs.set_file(&path, &bytes);
    match Wal::open(dir, options(&fs)) {
        Ok((wal, recovered)) => {
            let n = recovered.records.len();
            assert!(n <= written.len(), "more records than were written");
            assert_eq!(recovered.records[..], written[..n], "records changed");
            wal.close().expect("closes");
        }
        // A flip in a header's version field reads as a file from a newer lessor: an error
        // naming the file, which is all a damaged log may give besides a prefix.
        Err(
            Error::Corruption { .. }
            | Error::CorruptSnapshot { .. }
            | Error::UnsupportedLogVersion { .. },
        ) => {}
        Err(e) => panic!("unexpected error opening a damaged log: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_entry_points_accept_simple_inputs() {
        super::wal_segment(&[]);
        super::wal_segment(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        super::wal_damage(&[0, 5, 0, 0, 3, 0, 0, 1, 10, 20, 30, 40, 50, 60, 70]);
        super::wal_damage(&[0; 40]);
    }

    /// Crash inputs the fuzzer found, kept as named regressions.
    #[test]
    fn wal_damage_header_version_bit_flip() {
        super::wal_damage(include_bytes!(
            "../tests/it/fuzz_data/wal_damage/header_version_bit_flip"
        ));
    }
}
