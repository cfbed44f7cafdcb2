//! Opening and closing: the lock file, unreadable directories, newer versions, stopped logs,
//! the fsync policies, and the real file system.

use std::io;

use super::support::{self, default_opts, dir, grant, open, opts, reopen_twice};
use crate::error::Error;
use crate::wal::fake::{FailingFs, MemFs, Op};
use crate::wal::format::{self, VERSION};
use crate::wal::{
    FsyncPolicy, Lsn, Record, StdFs, Wal, WalOptions, WalStats, DEFAULT_SEGMENT_BYTES,
};

#[test]
fn a_second_open_of_the_same_dir_is_locked() {
    let fs = MemFs::new();
    let (wal, _) = open(default_opts(fs.clone()));
    match Wal::open(&dir(), default_opts(fs.clone())) {
        Err(e @ Error::LogLocked { .. }) => {
            assert!(e.to_string().contains("/data/log is in use"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    wal.close().expect("close");
    let (again, _) = open(default_opts(fs));
    drop(again);
}

#[test]
fn a_second_open_on_disk_is_locked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("log");
    let (wal, _) = Wal::open(&path, WalOptions::default()).expect("open");
    assert!(matches!(
        Wal::open(&path, WalOptions::default()),
        Err(Error::LogLocked { dir }) if dir == path
    ));
    drop(wal);
    let (wal, _) = Wal::open(&path, WalOptions::default()).expect("open after drop");
    wal.close().expect("close");
}

#[test]
fn the_real_file_system_round_trips() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("a/b/log");
    let o = || WalOptions {
        segment_bytes: 512,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&path, o()).expect("open");
    let mut all: Vec<Record> = (0..200).map(grant).collect();
    all.push(Record::Attach {
        id: 3,
        keys: vec![vec![0; 5000]],
    });
    for chunk in all.chunks(3) {
        wal.append(chunk).expect("append");
    }
    let upto = wal.begin_compaction().expect("begin");
    wal.finish_compaction(upto, all[..10].iter().cloned())
        .expect("finish");
    wal.append(&[grant(-1)]).expect("append");
    wal.close().expect("close");
    let (wal, rec) = Wal::open(&path, o()).expect("reopen");
    let mut expected = all[..10].to_vec();
    expected.push(grant(-1));
    assert_eq!(rec.records, expected);
    assert_eq!(rec.snapshot_records, 10);
    assert_eq!(rec.next_lsn, Lsn(all.len() as u64 + 1));
    drop(wal);
}

/// The real file system's segment size in these tests.
#[cfg(target_os = "linux")]
const REAL_SEGMENT: u64 = 64 << 10;

/// Default options with [`REAL_SEGMENT`]-byte segments.
#[cfg(target_os = "linux")]
fn real_opts() -> WalOptions {
    WalOptions {
        segment_bytes: REAL_SEGMENT,
        ..WalOptions::default()
    }
}

/// The size on disk of segment `n` of the log in `path`.
#[cfg(target_os = "linux")]
fn segment_len(path: &std::path::Path, n: u64) -> u64 {
    std::fs::metadata(format::segment_path(path, n))
        .expect("segment")
        .len()
}

#[cfg(target_os = "linux")]
#[test]
fn real_segments_are_preallocated_written_over_and_given_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("log");
    let o = real_opts;
    let size = |n| segment_len(&path, n);
    let (wal, _) = Wal::open(&path, o()).expect("open");
    // (On a file system without fallocate segments grow as they go, and this would fail;
    // ext4, xfs, btrfs and tmpfs all have it.)
    assert_eq!(size(0), REAL_SEGMENT, "a new segment is preallocated");
    let all: Vec<Record> = (0..100).map(grant).collect();
    for chunk in all.chunks(10) {
        wal.append(chunk).expect("append");
    }
    assert_eq!(
        size(0),
        REAL_SEGMENT,
        "appends went into the preallocated space"
    );
    wal.close().expect("close");
    let (wal, rec) = Wal::open(&path, o()).expect("reopen");
    assert_eq!(rec.records, all);
    assert_eq!(rec.truncated_tail, None);
    let used = size(0);
    assert!(used < 4096, "the unused space was given back: {used} bytes");
    assert_eq!(size(1), REAL_SEGMENT);
    drop(wal);
    let (_, rec) = Wal::open(&path, o()).expect("reopen");
    assert_eq!(rec.records, all);
}

#[cfg(target_os = "linux")]
#[test]
fn a_reopened_empty_segment_is_reused_preallocated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("log");
    let o = real_opts;
    for _ in 0..3 {
        let (wal, rec) = Wal::open(&path, o()).expect("open");
        assert!(rec.records.is_empty());
        assert_eq!(rec.truncated_tail, None);
        wal.close().expect("close");
    }
    assert_eq!(support::segments(&StdFs, &path), vec![0]);
    assert_eq!(segment_len(&path, 0), REAL_SEGMENT);
    let (wal, _) = Wal::open(&path, o()).expect("open");
    wal.append(&[grant(7)]).expect("append");
    wal.close().expect("close");
    assert_eq!(segment_len(&path, 0), REAL_SEGMENT);
    let (_, rec) = Wal::open(&path, o()).expect("reopen");
    assert_eq!(rec.records, vec![grant(7)]);
}

#[test]
fn an_unreadable_dir_is_an_io_error_naming_it() {
    let fs = FailingFs::new(MemFs::new());
    fs.fail_nth(Op::List, 1);
    match Wal::open(&dir(), default_opts(fs.clone())) {
        Err(Error::Io(e)) => assert!(e.to_string().contains("/data/log"), "{e}"),
        other => panic!("{other:?}"),
    }
    // A path through a regular file cannot be a directory.
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("plain");
    std::fs::write(&file, b"x").expect("write");
    match Wal::open(&file.join("log"), WalOptions::default()) {
        Err(Error::Io(e)) => assert!(e.to_string().contains("plain"), "{e}"),
        other => panic!("{other:?}"),
    }
    let (wal, _) = open(default_opts(fs));
    drop(wal);
}

#[test]
fn a_newer_format_is_refused_by_name() {
    let fs = MemFs::new();
    let (wal, _) = open(default_opts(fs.clone()));
    wal.append(&[grant(1)]).expect("append");
    drop(wal);
    let path = format::segment_path(&dir(), 0);
    let mut bytes = fs.file(&path).expect("segment");
    bytes[8..10].copy_from_slice(&(VERSION + 1).to_le_bytes());
    fs.set_file(&path, &bytes);
    match Wal::open(&dir(), default_opts(fs)) {
        Err(
            e @ Error::UnsupportedLogVersion {
                found, supported, ..
            },
        ) => {
            assert_eq!((found, supported), (VERSION + 1, VERSION));
            let msg = e.to_string();
            assert!(msg.contains("00000000000000000000.wal"), "{msg}");
            assert!(msg.contains("open it with a newer lessor"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_closed_log_refuses_everything_and_releases_the_lock() {
    let fs = MemFs::new();
    let (wal, _) = open(default_opts(fs.clone()));
    wal.append(&[grant(1)]).expect("append");
    wal.close().expect("close");
    wal.close().expect("close is idempotent");
    assert!(matches!(wal.append(&[grant(2)]), Err(Error::Stopped)));
    assert!(matches!(wal.begin_compaction(), Err(Error::Stopped)));
    assert!(matches!(
        wal.finish_compaction(Lsn(1), std::iter::empty()),
        Err(Error::Stopped)
    ));
    let (other, rec) = open(default_opts(fs));
    assert_eq!(rec.records, vec![grant(1)]);
    drop(other);
    drop(wal);
}

#[test]
fn bad_options_are_refused() {
    assert_eq!(WalOptions::default().segment_bytes, DEFAULT_SEGMENT_BYTES);
    assert!(matches!(
        Wal::open(&dir(), opts(MemFs::new(), FsyncPolicy::Always, 0)),
        Err(Error::InvalidConfig {
            field: "segment_bytes",
            ..
        })
    ));
}

#[test]
fn too_large_a_record_is_refused_before_writing() {
    let fs = MemFs::new();
    let (wal, _) = open(default_opts(fs.clone()));
    let huge = Record::Put {
        key: vec![0; format::MAX_PAYLOAD],
        value: vec![],
        lease: 0,
        revision: 0,
    };
    assert!(matches!(
        wal.append(&[grant(1), huge]),
        Err(Error::RecordTooLarge { limit, .. }) if limit == format::MAX_PAYLOAD
    ));
    assert_eq!(wal.append(&[grant(2)]).expect("append"), Lsn(1));
    wal.close().expect("close");
    assert_eq!(reopen_twice(&fs).records, vec![grant(2)]);
}

#[test]
fn always_survives_a_crash_right_after_append() {
    let fs = MemFs::new();
    let (wal, _) = open(default_opts(fs.clone()));
    wal.append(&[grant(1), grant(2)]).expect("append");
    let crashed = fs.crashed();
    assert_eq!(reopen_twice(&crashed).records, vec![grant(1), grant(2)]);
    drop(wal);
}

#[test]
fn interval_and_never_sync_on_close() {
    for policy in [
        FsyncPolicy::Never,
        FsyncPolicy::Interval(std::time::Duration::from_secs(3600)),
    ] {
        let fs = MemFs::new();
        let (wal, _) = open(opts(fs.clone(), policy, 1 << 20));
        let before = fs.counts().syncs;
        wal.append(&[grant(1)]).expect("append");
        assert_eq!(
            fs.counts().syncs,
            before,
            "{policy:?}: append returned after the write"
        );
        assert!(reopen_twice(&fs.crashed()).records.is_empty(), "{policy:?}");
        wal.close().expect("close");
        assert_eq!(
            reopen_twice(&fs.crashed()).records,
            vec![grant(1)],
            "{policy:?}"
        );
    }
}

#[test]
fn interval_syncs_within_the_interval_without_more_appends() {
    let fs = MemFs::new();
    let (wal, _) = open(opts(
        fs.clone(),
        FsyncPolicy::Interval(std::time::Duration::from_millis(1)),
        1 << 20,
    ));
    let before = fs.counts().syncs;
    wal.append(&[grant(1)]).expect("append");
    // The writer's timed wait runs out and it fsyncs on its own.
    super::support::wait_until("the timed fsync", || fs.counts().syncs > before);
    assert_eq!(reopen_twice(&fs.crashed()).records, vec![grant(1)]);
    drop(wal);
}

#[test]
fn interval_zero_syncs_with_every_group() {
    let fs = MemFs::new();
    let (wal, _) = open(opts(
        fs.clone(),
        FsyncPolicy::Interval(std::time::Duration::ZERO),
        1 << 20,
    ));
    wal.append(&[grant(1)]).expect("append");
    assert_eq!(reopen_twice(&fs.crashed()).records, vec![grant(1)]);
    drop(wal);
}

#[test]
fn a_sealed_segment_is_synced_even_under_never() {
    let fs = MemFs::new();
    let (wal, _) = open(opts(fs.clone(), FsyncPolicy::Never, 64));
    let records: Vec<Record> = (0..10).map(grant).collect();
    wal.append(&records).expect("append");
    // That group filled the segment past 64 bytes, so the writer sealed it and started a new
    // one after answering; the next request is served only after that.
    wal.append(&[]).expect("empty append");
    assert_eq!(reopen_twice(&fs.crashed()).records, records);
    drop(wal);
}

#[test]
fn stats_count_bytes_segments_and_syncs() {
    let fs = MemFs::new();
    let (wal, _) = open(default_opts(fs.clone()));
    let s0: WalStats = wal.stats();
    assert_eq!(s0.segments, 1);
    assert_eq!(s0.segment_bytes, format::HEADER_LEN as u64);
    assert_eq!(s0.snapshot_bytes, 0);
    wal.append(&[grant(1)]).expect("append");
    let s1 = wal.stats();
    assert_eq!(s1.next_lsn, Lsn(1));
    assert!(s1.segment_bytes > s0.segment_bytes);
    assert_eq!(s1.writes, 1);
    assert_eq!(s1.fsyncs, 1);
    wal.close().expect("close");
}

#[test]
fn wal_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Wal>();
    let e = io::Error::other("x");
    assert!(matches!(Error::from(e), Error::Io(_)));
    let _ = StdFs;
}
