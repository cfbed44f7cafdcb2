//! Replay: records come back exactly; torn tails at every offset are cut; bit flips at every
//! byte are corruption errors (or, in the last record, a cut tail), never a wrong record.

use std::path::PathBuf;

use super::support::{self, default_opts, dir, grant, open, opts, reopen_twice, samples};
use crate::error::Error;
use crate::wal::fake::MemFs;
use crate::wal::format::{self, HEADER_LEN};
use crate::wal::record::encode_frame;
use crate::wal::{FileSystem, FsyncPolicy, Lsn, Record, TruncatedTail};

#[test]
fn records_come_back_exactly() {
    let fs = MemFs::new();
    let (wal, rec) = open(default_opts(fs.clone()));
    assert!(rec.records.is_empty());
    assert_eq!(rec.next_lsn, Lsn(0));
    let mut all = samples();
    all.extend((0..1000).map(grant));
    let mut end = 0;
    for chunk in all.chunks(7) {
        end += chunk.len() as u64;
        assert_eq!(wal.append(chunk).expect("append"), Lsn(end));
    }
    assert_eq!(wal.append(&[]).expect("empty append"), Lsn(end));
    wal.close().expect("close");

    let rec = reopen_twice(&fs);
    assert_eq!(rec.records, all);
    assert_eq!(rec.truncated_tail, None);
    assert_eq!(rec.snapshot_records, 0);
    assert_eq!(rec.next_lsn, Lsn(end));
}

#[test]
fn lsns_continue_across_reopens() {
    let fs = MemFs::new();
    let mut expected = Vec::new();
    for round in 0..5i64 {
        let (wal, rec) = open(default_opts(fs.clone()));
        assert_eq!(rec.records, expected);
        assert_eq!(rec.next_lsn, Lsn(expected.len() as u64));
        for i in 0..3 {
            let r = grant(round * 10 + i);
            let lsn = wal.append(std::slice::from_ref(&r)).expect("append");
            expected.push(r);
            assert_eq!(lsn, Lsn(expected.len() as u64));
        }
    }
    // Each open starts a segment, as the one before it holds records.
    assert_eq!(support::segments(&fs, &dir()), vec![0, 1, 2, 3, 4]);
}

#[test]
fn reopening_without_appends_reuses_the_empty_segment() {
    let fs = MemFs::new();
    for _ in 0..5 {
        let (wal, rec) = open(default_opts(fs.clone()));
        assert!(rec.records.is_empty());
        drop(wal);
    }
    assert_eq!(support::segments(&fs, &dir()), vec![0]);
    let (wal, _) = open(default_opts(fs.clone()));
    wal.append(&[grant(1)]).expect("append");
    drop(wal);
    for _ in 0..3 {
        let (wal, rec) = open(default_opts(fs.clone()));
        assert_eq!(rec.records, vec![grant(1)]);
        drop(wal);
    }
    assert_eq!(support::segments(&fs, &dir()), vec![0, 1]);
    assert_eq!(reopen_twice(&fs.crashed()).records, vec![grant(1)]);
}

#[test]
fn rotation_across_many_small_segments() {
    let fs = MemFs::new();
    let (wal, _) = open(opts(fs.clone(), FsyncPolicy::Always, 100));
    let mut all = Vec::new();
    for i in 0..300 {
        let batch: Vec<Record> = (0..(i % 3 + 1)).map(|j| grant(i * 10 + j)).collect();
        wal.append(&batch).expect("append");
        all.extend(batch);
    }
    // The writer rotates after answering; the next request waits for that.
    wal.append(&[]).expect("empty append");
    let stats = wal.stats();
    wal.close().expect("close");
    let segs = support::segments(&fs, &dir());
    assert!(segs.len() > 50, "only {} segments", segs.len());
    assert_eq!(stats.segments, segs.len() as u64);
    assert_eq!(segs, (0..segs.len() as u64).collect::<Vec<_>>());
    assert_eq!(reopen_twice(&fs).records, all);
}

// ===== torn tails and bit flips =====

/// A log of two segments, each with a few records: the files, and the records per segment.
struct Fixture {
    files: Vec<(PathBuf, Vec<u8>)>,
    first: Vec<Record>,
    last: Vec<Record>,
}

impl Fixture {
    fn new() -> Fixture {
        let first = vec![
            grant(1),
            Record::Attach {
                id: 1,
                keys: vec![b"a".to_vec(), b"bc".to_vec()],
            },
            Record::Revoke { id: -5 },
        ];
        let last = vec![
            grant(i64::MAX),
            Record::Checkpoint {
                id: i64::MAX,
                remaining_ms: 77,
            },
            Record::Put {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                lease: i64::MAX,
                revision: 3,
            },
            Record::Revoke { id: i64::MIN },
        ];
        let fs = MemFs::new();
        for part in [&first, &last] {
            let (wal, _) = open(default_opts(fs.clone()));
            wal.append(&part[..1]).expect("append");
            wal.append(&part[1..]).expect("append");
            wal.close().expect("close");
        }
        let files = support::segments(&fs, &dir())
            .into_iter()
            .map(|n| {
                let p = format::segment_path(&dir(), n);
                let bytes = fs.file(&p).expect("segment");
                (p, bytes)
            })
            .collect::<Vec<_>>();
        // The second open's segment is the last; a third is not there (closed twice only).
        assert_eq!(files.len(), 2);
        Fixture { files, first, last }
    }

    /// A file system with the fixture's files, `edit` applied to file `which`.
    fn fs_with(&self, which: usize, mut edit: impl FnMut(&mut Vec<u8>)) -> MemFs {
        let fs = MemFs::new();
        fs.create_dir_all(&dir()).expect("mkdir");
        for (i, (p, bytes)) in self.files.iter().enumerate() {
            let mut b = bytes.clone();
            if i == which {
                edit(&mut b);
            }
            fs.set_file(p, &b);
        }
        fs
    }

    /// Where each record of the last segment ends.
    fn last_ends(&self) -> Vec<usize> {
        let mut at = HEADER_LEN;
        self.last
            .iter()
            .map(|r| {
                let mut buf = Vec::new();
                encode_frame(r, &mut buf).expect("fits");
                at += buf.len();
                at
            })
            .collect()
    }

    fn with_last(&self, k: usize) -> Vec<Record> {
        let mut v = self.first.clone();
        v.extend_from_slice(&self.last[..k]);
        v
    }
}

#[test]
fn torn_tail_at_every_offset_is_cut() {
    let fx = Fixture::new();
    let ends = fx.last_ends();
    let len = fx.files[1].1.len();
    assert_eq!(*ends.last().expect("records"), len);
    for cut in 0..=len {
        let fs = fx.fs_with(1, |b| b.truncate(cut));
        let (wal, rec) = open(default_opts(fs.clone()));
        wal.close().expect("close");
        let k = if cut < HEADER_LEN {
            0
        } else {
            ends.iter().filter(|&&e| e <= cut).count()
        };
        let good = if k == 0 { HEADER_LEN } else { ends[k - 1] };
        let tail = match cut {
            0 => None,
            c if c < HEADER_LEN => Some(TruncatedTail {
                segment: 1,
                offset: 0,
                bytes: c as u64,
            }),
            c if c == good => None,
            c => Some(TruncatedTail {
                segment: 1,
                offset: good as u64,
                bytes: (c - good) as u64,
            }),
        };
        assert_eq!(rec.truncated_tail, tail, "cut at {cut}");
        assert_eq!(rec.records, fx.with_last(k), "cut at {cut}");
        let again = reopen_twice(&fs);
        assert_eq!(again.truncated_tail, None, "cut at {cut}: second open");
        assert_eq!(again.records, fx.with_last(k), "cut at {cut}: second open");
    }
}

#[test]
fn bit_flips_at_every_byte_are_caught() {
    let fx = Fixture::new();
    let ends = fx.last_ends();
    let last_start = ends[ends.len() - 2];
    let (mut cut, mut corrupt, mut newer) = (0, 0, 0);
    for which in 0..fx.files.len() {
        let len = fx.files[which].1.len();
        for off in 0..len {
            for mask in [1u8 << (off % 8), 0xff] {
                let fs = fx.fs_with(which, |b| b[off] ^= mask);
                let what = format!("file {which} byte {off} mask {mask:#x}");
                match crate::wal::Wal::open(&dir(), default_opts(fs)) {
                    Ok((wal, rec)) => {
                        wal.close().expect("close");
                        assert!(which == 1 && off >= last_start, "{what}: opened");
                        assert_eq!(rec.records, fx.with_last(fx.last.len() - 1), "{what}");
                        assert_eq!(
                            rec.truncated_tail,
                            Some(TruncatedTail {
                                segment: 1,
                                offset: last_start as u64,
                                bytes: (len - last_start) as u64,
                            }),
                            "{what}"
                        );
                        cut += 1;
                    }
                    Err(Error::Corruption {
                        segment, offset, ..
                    }) => {
                        assert_eq!(segment, which as u64, "{what}");
                        assert!(offset <= off as u64, "{what}: reported at {offset}");
                        corrupt += 1;
                    }
                    Err(Error::UnsupportedLogVersion { found, .. }) => {
                        assert!((8..10).contains(&off), "{what}: version {found}");
                        newer += 1;
                    }
                    Err(e) => panic!("{what}: {e}"),
                }
            }
        }
    }
    assert!(
        cut > 0 && corrupt > 0 && newer > 0,
        "{cut} {corrupt} {newer}"
    );
}

#[test]
fn a_bad_record_followed_by_good_ones_is_corruption_not_a_tail() {
    let fx = Fixture::new();
    let ends = fx.last_ends();
    // Claim a length past the end of the file for the first record of the last segment: it
    // looks torn, but whole records follow it.
    let fs = fx.fs_with(1, |b| {
        b[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&4096u32.to_le_bytes())
    });
    match crate::wal::Wal::open(&dir(), default_opts(fs)) {
        Err(e @ Error::Corruption { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("segment 1 offset 32"), "{msg}");
            assert!(msg.contains("/data/log"), "{msg}");
            assert!(msg.contains("restore it from a backup"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(ends[0] > HEADER_LEN);
}

#[test]
fn garbage_after_the_last_record_is_a_torn_tail() {
    let fx = Fixture::new();
    let len = fx.files[1].1.len();
    for garbage in [
        &[0xff; 3][..],
        &[7; 9][..],
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1][..],
    ] {
        let fs = fx.fs_with(1, |b| b.extend_from_slice(garbage));
        let rec = reopen_twice(&fs);
        assert_eq!(rec.records, fx.with_last(fx.last.len()));
        let fs2 = fx.fs_with(1, |b| b.extend_from_slice(garbage));
        let (wal, first) = open(default_opts(fs2));
        wal.close().expect("close");
        assert_eq!(
            first.truncated_tail,
            Some(TruncatedTail {
                segment: 1,
                offset: len as u64,
                bytes: garbage.len() as u64,
            })
        );
    }
}

#[test]
fn zeros_after_the_records_are_unused_space_and_given_back() {
    let fx = Fixture::new();
    let len = fx.files[1].1.len();
    for zeros in [1, 8, 9, 40, 4096] {
        let fs = fx.fs_with(1, |b| b.resize(len + zeros, 0));
        let (wal, first) = open(default_opts(fs.clone()));
        wal.close().expect("close");
        assert_eq!(first.records, fx.with_last(fx.last.len()), "{zeros} zeros");
        assert_eq!(
            first.truncated_tail, None,
            "{zeros} zeros are not a torn tail"
        );
        // Cut back to the records; the log went on in a new segment.
        assert_eq!(fs.file(&fx.files[1].0).expect("segment").len(), len);
        assert_eq!(support::segments(&fs, &dir()), vec![0, 1, 2]);
        assert_eq!(reopen_twice(&fs).records, fx.with_last(fx.last.len()));
    }
    // A sealed segment that kept its zeros (a file system that lost the cut) reads the same.
    let sealed = fx.files[0].1.len();
    let fs = fx.fs_with(0, |b| b.resize(sealed + 100, 0));
    assert_eq!(reopen_twice(&fs).records, fx.with_last(fx.last.len()));
}

#[test]
fn a_torn_record_before_unused_zeros_is_a_torn_tail() {
    let fx = Fixture::new();
    let ends = fx.last_ends();
    // The last record half written into preallocated space: its start, then zeros.
    let cut = ends[ends.len() - 2];
    let half = (ends[ends.len() - 1] - cut) / 2;
    let fs = fx.fs_with(1, |b| {
        b.truncate(cut + half);
        b.resize(cut + half + 1000, 0);
    });
    let (wal, first) = open(default_opts(fs.clone()));
    wal.close().expect("close");
    assert_eq!(first.records, fx.with_last(fx.last.len() - 1));
    assert_eq!(
        first.truncated_tail,
        Some(TruncatedTail {
            segment: 1,
            offset: cut as u64,
            bytes: (half + 1000) as u64,
        })
    );
    assert_eq!(reopen_twice(&fs).records, fx.with_last(fx.last.len() - 1));
}

#[test]
fn a_torn_sealed_segment_is_corruption() {
    let fx = Fixture::new();
    let len = fx.files[0].1.len();
    let fs = fx.fs_with(0, |b| b.truncate(len - 1));
    assert!(matches!(
        crate::wal::Wal::open(&dir(), default_opts(fs)),
        Err(Error::Corruption { segment: 0, .. })
    ));
}

#[test]
fn a_missing_segment_is_corruption() {
    let fs = MemFs::new();
    for i in 0..3 {
        let (wal, _) = open(default_opts(fs.clone()));
        wal.append(&[grant(i)]).expect("append");
        wal.close().expect("close");
    }
    fs.delete_file(&format::segment_path(&dir(), 1));
    match crate::wal::Wal::open(&dir(), default_opts(fs.clone())) {
        Err(Error::Corruption {
            segment: 1, reason, ..
        }) => assert_eq!(reason, "a segment file is missing"),
        other => panic!("{other:?}"),
    }
    fs.delete_file(&format::segment_path(&dir(), 0));
    assert!(matches!(
        crate::wal::Wal::open(&dir(), default_opts(fs)),
        Err(Error::Corruption { segment: 2, .. })
    ));
}

#[test]
fn random_files_never_panic() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..200),
        0usize..3,
        any::<bool>(),
    );
    runner
        .run(&strategy, |(tail, which, with_header)| {
            let fs = MemFs::new();
            fs.create_dir_all(&dir()).expect("mkdir");
            let mut bytes = Vec::new();
            if with_header {
                bytes.extend_from_slice(&format::encode_header(
                    format::FileKind::Segment,
                    format::Header { a: 0, b: 0 },
                ));
            }
            bytes.extend_from_slice(&tail);
            let path = match which {
                0 => format::segment_path(&dir(), 0),
                1 => format::snapshot_path(&dir(), 0),
                _ => format::snapshot_temp_path(&dir(), 0),
            };
            fs.set_file(&path, &bytes);
            if let Ok((wal, _)) = crate::wal::Wal::open(&dir(), default_opts(fs)) {
                wal.close().expect("close");
            }
            Ok(())
        })
        .expect("no panic");
}
