//! Record encoding: every kind round-trips, damage is detected, decoding never panics.

use proptest::prelude::*;

use crate::wal::format::{kind, MAX_PAYLOAD};
use crate::wal::record::*;
use crate::wal::tests::support::samples;

fn round_trip(r: &Record) -> Record {
    let mut buf = Vec::new();
    encode_frame(r, &mut buf).expect("fits");
    match read_frame(&buf) {
        Frame::Good { kind, payload, len } => {
            assert_eq!(len, buf.len());
            Record::decode(kind, payload).expect("decodes")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_kind_round_trips() {
    for r in samples() {
        assert_eq!(round_trip(&r), r);
    }
}

#[test]
fn end_frame_round_trips() {
    for count in [0, 1, 127, 128, u64::MAX] {
        let mut buf = Vec::new();
        encode_end_frame(count, &mut buf);
        let Frame::Good { kind, payload, .. } = read_frame(&buf) else {
            panic!("end frame");
        };
        assert_eq!(kind, kind::END);
        assert_eq!(decode_end(payload), Ok(count));
        assert_eq!(
            Record::decode(kind, payload),
            Err(DecodeError::UnknownKind(127))
        );
    }
}

#[test]
fn varint_edges() {
    // `decode_end` is one varint and nothing after it.
    for v in [
        0,
        1,
        127,
        128,
        300,
        u64::from(u32::MAX),
        u64::MAX - 1,
        u64::MAX,
    ] {
        let mut buf = Vec::new();
        put_varint(&mut buf, v);
        assert!(buf.len() <= 10);
        assert_eq!(decode_end(&buf), Ok(v));
    }
    assert_eq!(decode_end(&[0xff; 10]), Err(DecodeError::BadVarint));
    let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
    assert_eq!(decode_end(&over), Err(DecodeError::BadVarint));
    assert_eq!(decode_end(&[0x80]), Err(DecodeError::Truncated));
    assert_eq!(decode_end(&[0x01, 0x00]), Err(DecodeError::TrailingBytes));
}

#[test]
fn bad_payloads_are_errors() {
    assert_eq!(Record::decode(0, &[]), Err(DecodeError::UnknownKind(0)));
    assert_eq!(
        Record::decode(kind::REVOKE, &[1, 2]),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        Record::decode(kind::REVOKE, &[0; 9]),
        Err(DecodeError::TrailingBytes)
    );
    // A count of keys far beyond the bytes left.
    let mut p = 1i64.to_le_bytes().to_vec();
    put_varint(&mut p, u64::MAX);
    assert_eq!(
        Record::decode(kind::ATTACH, &p),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn frames_detect_damage() {
    let mut buf = Vec::new();
    encode_frame(&Record::Revoke { id: 3 }, &mut buf).expect("fits");
    for cut in 0..buf.len() {
        assert_eq!(read_frame(&buf[..cut]), Frame::Incomplete, "cut at {cut}");
    }
    for i in 0..buf.len() * 8 {
        let mut bad = buf.clone();
        bad[i / 8] ^= 1 << (i % 8);
        assert!(
            !matches!(read_frame(&bad), Frame::Good { .. }),
            "bit {i} went unnoticed"
        );
    }
    let mut huge = buf.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(read_frame(&huge), Frame::Bad("record length is impossible"));
}

#[test]
fn too_large_is_refused_and_leaves_the_buffer() {
    let r = Record::Put {
        key: vec![0; MAX_PAYLOAD],
        value: vec![],
        lease: 0,
        revision: 0,
    };
    let mut buf = vec![1, 2, 3];
    let err = encode_frame(&r, &mut buf).unwrap_err();
    assert!(err.given > MAX_PAYLOAD);
    assert_eq!(buf, [1, 2, 3]);
}

fn arb_key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..40)
}

fn arb_record() -> impl Strategy<Value = Record> {
    prop_oneof![
        (any::<i64>(), any::<u64>()).prop_map(|(id, ttl_ms)| Record::Grant { id, ttl_ms }),
        any::<i64>().prop_map(|id| Record::Revoke { id }),
        (any::<i64>(), proptest::collection::vec(arb_key(), 0..5))
            .prop_map(|(id, keys)| Record::Attach { id, keys }),
        (any::<i64>(), proptest::collection::vec(arb_key(), 0..5))
            .prop_map(|(id, keys)| Record::Detach { id, keys }),
        (any::<i64>(), any::<u64>())
            .prop_map(|(id, remaining_ms)| Record::Checkpoint { id, remaining_ms }),
        (arb_key(), arb_key(), any::<i64>(), any::<i64>()).prop_map(
            |(key, value, lease, revision)| Record::Put {
                key,
                value,
                lease,
                revision
            }
        ),
        (arb_key(), arb_key(), any::<i64>()).prop_map(|(key, range_end, revision)| {
            Record::DeleteRange {
                key,
                range_end,
                revision,
            }
        }),
        (arb_key(), arb_key(), any::<[i64; 4]>()).prop_map(|(key, value, n)| {
            Record::StoreEntry {
                key,
                value,
                lease: n[0],
                create_revision: n[1],
                mod_revision: n[2],
                version: n[3],
            }
        }),
        any::<i64>().prop_map(|revision| Record::StoreRevision { revision }),
    ]
}

proptest! {
    #[test]
    fn any_record_round_trips(r in arb_record()) {
        prop_assert_eq!(round_trip(&r), r);
    }

    #[test]
    fn any_bytes_decode_without_panic(kind in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Record::decode(kind, &payload);
        let _ = decode_end(&payload);
        let _ = read_frame(&payload);
    }
}
