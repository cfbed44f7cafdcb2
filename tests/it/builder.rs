//! The builder: every bad option is `Error::InvalidConfig` naming it; messages say what to do.

use std::time::Duration;

use lessor::{Error, LeaseId, Lessor, LessorBuilder, ManualClock, MAX_TTL};

use crate::support::{id, ms, secs};

fn field_of(b: LessorBuilder) -> &'static str {
    match b.build() {
        Err(Error::InvalidConfig { field, reason }) => {
            assert!(!reason.is_empty());
            field
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

fn base() -> LessorBuilder {
    Lessor::builder()
        .clock(ManualClock::new())
        .expiry_thread(false)
}

#[test]
fn bad_shard_counts_are_refused() {
    for n in [0, 3, 6, 100, 1 << 17, (1 << 16) + 1, usize::MAX] {
        assert_eq!(field_of(base().shards(n)), "shards", "shards({n})");
    }
    for n in [1, 2, 64, 1 << 16] {
        assert!(base().shards(n).build().is_ok(), "shards({n})");
    }
}

#[test]
fn bad_min_ttls_are_refused() {
    for d in [
        Duration::ZERO,
        Duration::from_micros(999),
        MAX_TTL + Duration::from_nanos(1),
        MAX_TTL + secs(1),
    ] {
        assert_eq!(field_of(base().min_ttl(d)), "min_ttl", "min_ttl({d:?})");
    }
    for d in [ms(1), secs(2), MAX_TTL] {
        assert!(base().min_ttl(d).build().is_ok(), "min_ttl({d:?})");
    }
}

#[test]
fn a_min_ttl_of_max_ttl_raises_every_grant_to_it() {
    let l = base().min_ttl(MAX_TTL).build().unwrap();
    assert_eq!(l.grant(id(1), secs(1)).unwrap().ttl(), MAX_TTL);
}

#[test]
fn bad_ticks_are_refused() {
    for d in [
        Duration::ZERO,
        Duration::from_micros(10),
        Duration::from_micros(999),
        Duration::from_millis(1001),
        secs(2),
    ] {
        assert_eq!(field_of(base().tick(d)), "tick", "tick({d:?})");
    }
    for d in [ms(1), ms(10), secs(1)] {
        assert!(base().tick(d).build().is_ok(), "tick({d:?})");
    }
}

#[test]
fn a_zero_revoke_rate_is_refused() {
    assert_eq!(field_of(base().revoke_rate(0)), "revoke_rate");
    assert!(base().revoke_rate(1).build().is_ok());
    assert!(base().revoke_rate(u32::MAX).build().is_ok());
}

#[test]
fn a_zero_max_key_size_is_refused() {
    assert_eq!(field_of(base().max_key_size(0)), "max_key_size");
    let l = base().max_key_size(1).build().unwrap();
    l.grant(id(1), secs(5)).unwrap();
    l.attach(id(1), ["a"]).unwrap();
    assert!(matches!(
        l.attach(id(1), ["ab"]),
        Err(Error::KeyTooLarge { given: 2, limit: 1 })
    ));
}

#[test]
fn the_defaults() {
    let l = LessorBuilder::new()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    assert!(l.is_primary());
    assert!(l.is_empty());
    assert_eq!(l.grant(id(1), secs(1)).unwrap().ttl(), secs(2));
    let l = LessorBuilder::default().build().unwrap();
    assert!(l.is_primary());
    assert!(!Lessor::builder()
        .primary(false)
        .build()
        .unwrap()
        .is_primary());
}

#[test]
fn messages_are_lowercase_and_say_what_to_do() {
    let err = base().shards(3).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid config `shards`: must be a power of two from 1 to 65536"
    );
    let err = base().revoke_rate(0).build().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid config `revoke_rate`: "),
        "{err}"
    );

    let l = base().max_key_size(4).build().unwrap();
    let nf = l.renew(LeaseId::new(7)).unwrap_err();
    assert_eq!(nf.to_string(), "lease 7 (0x7) not found: grant it first");
    l.grant(id(255), secs(5)).unwrap();
    let exists = l.grant(id(255), secs(5)).unwrap_err();
    assert!(
        exists
            .to_string()
            .starts_with("lease 255 (0xff) already exists: "),
        "{exists}"
    );
    let too_big = l.attach(id(255), ["12345"]).unwrap_err();
    assert_eq!(
        too_big.to_string(),
        "key of 5 bytes is over the 4-byte limit: shorten it or raise max_key_size"
    );

    let mut all = vec![nf, exists, too_big];
    all.push(l.grant(id(1), MAX_TTL + secs(1)).unwrap_err());
    all.push(l.attach(id(255), [""]).unwrap_err());
    l.demote();
    all.push(l.renew(id(255)).unwrap_err());
    l.stop();
    all.push(l.grant(id(2), secs(1)).unwrap_err());
    all.push(base().min_ttl(Duration::ZERO).build().unwrap_err());
    all.push(base().tick(secs(5)).build().unwrap_err());
    for err in &all {
        let msg = err.to_string();
        let first = msg.chars().next().unwrap();
        assert!(!first.is_uppercase(), "{msg}");
        assert!(!msg.ends_with('.'), "{msg}");
        let (what, todo) = msg.split_once(": ").unwrap_or_else(|| panic!("{msg}"));
        assert!(!what.is_empty() && todo.len() > 5, "{msg}");
    }
}

#[test]
fn an_expired_lease_message_says_to_grant_a_new_one() {
    let clock = ManualClock::new();
    let l = Lessor::builder().clock(clock.clone()).build().unwrap();
    l.grant(id(-1), secs(2)).unwrap();
    clock.advance(secs(3));
    let err = l.renew(id(-1)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("lease -1 "), "{msg}");
    assert!(msg.ends_with("has expired: grant a new lease"), "{msg}");
}
