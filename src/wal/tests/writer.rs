//! The writer's pure decisions.

use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::wal::options::FsyncPolicy;
use crate::wal::writer::sync_deadline;

#[test]
fn sync_deadline_follows_the_policy() {
    let t = SystemClock.now();
    let d = Duration::from_millis(5);
    assert_eq!(sync_deadline(FsyncPolicy::Always, Some(t)), None);
    assert_eq!(sync_deadline(FsyncPolicy::Never, Some(t)), None);
    assert_eq!(sync_deadline(FsyncPolicy::Interval(d), None), None);
    assert_eq!(
        sync_deadline(FsyncPolicy::Interval(d), Some(t)),
        Some(t + d)
    );
    assert_eq!(
        sync_deadline(FsyncPolicy::Interval(Duration::MAX), Some(t)),
        None
    );
}
