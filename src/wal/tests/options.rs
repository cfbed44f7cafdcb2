//! Option defaults and validation.

use crate::error::Error;
use crate::wal::options::*;

#[test]
fn defaults_and_validation() {
    let o = WalOptions::default();
    assert_eq!(o.fsync, FsyncPolicy::Always);
    assert_eq!(o.segment_bytes, 64 << 20);
    o.validate().expect("defaults are valid");
    let bad = WalOptions {
        segment_bytes: 0,
        ..WalOptions::default()
    };
    assert!(matches!(
        bad.validate(),
        Err(Error::InvalidConfig {
            field: "segment_bytes",
            ..
        })
    ));
    assert_eq!(format!("{:?} {}", Lsn(7), Lsn(7)), "Lsn(7) 7");
}
