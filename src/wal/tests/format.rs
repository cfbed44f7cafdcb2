//! File headers and names (`format.rs`).

use std::path::Path;

use crate::wal::format::*;

#[test]
fn header_round_trips() {
    for kind in [FileKind::Segment, FileKind::Snapshot] {
        let h = Header { a: 7, b: u64::MAX };
        let bytes = encode_header(kind, h);
        assert_eq!(decode_header(kind, &bytes), Ok(h));
        assert_eq!(decode_header(kind, &bytes[..31]), Err(HeaderError::Short));
    }
    let seg = encode_header(FileKind::Segment, Header { a: 1, b: 2 });
    assert!(matches!(
        decode_header(FileKind::Snapshot, &seg),
        Err(HeaderError::Bad(_))
    ));
}

#[test]
fn every_header_bit_flip_is_refused() {
    let good = encode_header(FileKind::Segment, Header { a: 3, b: 99 });
    for i in 0..HEADER_LEN * 8 {
        let mut bad = good;
        bad[i / 8] ^= 1 << (i % 8);
        let r = decode_header(FileKind::Segment, &bad);
        assert!(
            matches!(r, Err(HeaderError::Bad(_) | HeaderError::Newer(_))),
            "bit {i}: {r:?}"
        );
    }
}

#[test]
fn newer_version_is_named() {
    let mut h = encode_header(FileKind::Segment, Header { a: 0, b: 0 });
    h[8..10].copy_from_slice(&(VERSION + 1).to_le_bytes());
    assert_eq!(
        decode_header(FileKind::Segment, &h),
        Err(HeaderError::Newer(VERSION + 1))
    );
}

#[test]
fn names_round_trip() {
    let dir = Path::new("/d");
    for n in [0, 1, 42, u64::MAX] {
        let seg = segment_path(dir, n);
        let snap = snapshot_path(dir, n);
        let tmp = snapshot_temp_path(dir, n);
        let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(parse_name(&name(&seg)), Some(LogFileName::Segment(n)));
        assert_eq!(parse_name(&name(&snap)), Some(LogFileName::Snapshot(n)));
        assert_eq!(parse_name(&name(&tmp)), Some(LogFileName::SnapshotTemp(n)));
    }
    assert_eq!(
        segment_path(dir, 5),
        Path::new("/d/00000000000000000005.wal")
    );
    for other in [
        "LOCK",
        "5.wal",
        "0000000000000000000x.wal",
        "snapshot-1.snap",
        "notes.txt",
        "99999999999999999999.wal",
    ] {
        assert_eq!(parse_name(other), None, "{other}");
    }
}
