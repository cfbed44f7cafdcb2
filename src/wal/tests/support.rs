//! Helpers for the log's tests: options over fake file systems, sample records, a state model
//! that replays records, and a spin-wait with a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::wal::fake::MemFs;
use crate::wal::format;
use crate::wal::{FileSystem, FsyncPolicy, Record, Recovered, Wal, WalOptions};

/// The log directory used on fake file systems.
pub(crate) fn dir() -> PathBuf {
    PathBuf::from("/data/log")
}

/// Options over `fs`.
pub(crate) fn opts(fs: impl FileSystem, fsync: FsyncPolicy, segment_bytes: u64) -> WalOptions {
    WalOptions {
        fsync,
        segment_bytes,
        fs: crate::wal::shared_fs(fs),
    }
}

/// Options over `fs` with the defaults otherwise.
pub(crate) fn default_opts(fs: impl FileSystem) -> WalOptions {
    opts(fs, FsyncPolicy::Always, 64 << 20)
}

/// Opens the log in [`dir`], which must work.
pub(crate) fn open(o: WalOptions) -> (Wal, Recovered) {
    Wal::open(&dir(), o).expect("the log opens")
}

/// Opens and closes the log in [`dir`] and returns its records, after checking that a second
/// open finds no torn tail and the same records.
pub(crate) fn reopen_twice(fs: &MemFs) -> Recovered {
    let (wal, first) = open(default_opts(fs.clone()));
    wal.close().expect("close");
    let (wal, second) = open(default_opts(fs.clone()));
    wal.close().expect("close");
    assert_eq!(second.truncated_tail, None, "the first open left a tail");
    assert_eq!(second.records, first.records);
    first
}

/// One record of every kind, with edge values (negative ids, `i64::MIN/MAX`, empty and
/// 1.5 MiB keys).
pub(crate) fn samples() -> Vec<Record> {
    let big = vec![0xab; 3 << 19];
    vec![
        Record::Grant { id: 1, ttl_ms: 0 },
        Record::Grant {
            id: -1,
            ttl_ms: u64::MAX,
        },
        Record::Grant {
            id: i64::MAX,
            ttl_ms: 9_000_000_000_000,
        },
        Record::Revoke { id: i64::MIN },
        Record::Attach {
            id: -42,
            keys: vec![vec![], b"a".to_vec(), big.clone()],
        },
        Record::Attach {
            id: 5,
            keys: vec![],
        },
        Record::Detach {
            id: i64::MAX,
            keys: vec![b"session/alice".to_vec(), vec![0; 200]],
        },
        Record::Checkpoint {
            id: i64::MIN,
            remaining_ms: 1,
        },
        Record::Put {
            key: big.clone(),
            value: vec![],
            lease: -7,
            revision: i64::MAX,
        },
        Record::Put {
            key: b"k".to_vec(),
            value: big,
            lease: 0,
            revision: 1,
        },
        Record::DeleteRange {
            key: vec![],
            range_end: vec![0],
            revision: i64::MIN,
        },
    ]
}

/// A small grant.
pub(crate) fn grant(id: i64) -> Record {
    Record::Grant {
        id,
        ttl_ms: 1000 + id.unsigned_abs(),
    }
}

/// `n` pseudo-random records of every kind over a few ids and keys (xorshift, fixed seed).
pub(crate) fn ops(seed: u64, n: usize) -> Vec<Record> {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n)
        .map(|i| {
            let r = next();
            let id = i64::try_from(r % 7).expect("small") - 3;
            let key = format!("k{}", (r >> 8) % 5).into_bytes();
            let rev = i64::try_from(i).expect("small");
            match (r >> 16) % 8 {
                0 | 1 => Record::Grant {
                    id,
                    ttl_ms: r % 10_000,
                },
                2 => Record::Revoke { id },
                3 => Record::Attach {
                    id,
                    keys: vec![key],
                },
                4 => Record::Detach {
                    id,
                    keys: vec![key],
                },
                5 => Record::Checkpoint {
                    id,
                    remaining_ms: r % 500,
                },
                6 => Record::Put {
                    key,
                    value: r.to_le_bytes().to_vec(),
                    lease: id,
                    revision: rev,
                },
                _ => Record::DeleteRange {
                    key,
                    range_end: vec![],
                    revision: rev,
                },
            }
        })
        .collect()
}

/// A lease in the [`Model`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LeaseState {
    ttl_ms: u64,
    checkpoint: Option<u64>,
    keys: BTreeSet<Vec<u8>>,
}

/// The state the records describe, replayed the way the engine will (idempotently: a grant
/// replaces, a record for a missing lease does nothing).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Model {
    leases: BTreeMap<i64, LeaseState>,
    kv: BTreeMap<Vec<u8>, (Vec<u8>, i64, i64)>,
}

impl Model {
    /// The state after `records`.
    pub(crate) fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Model {
        let mut m = Model::default();
        for r in records {
            m.apply(r);
        }
        m
    }

    /// Applies one record.
    pub(crate) fn apply(&mut self, r: &Record) {
        match r {
            Record::Grant { id, ttl_ms } => {
                self.leases.insert(
                    *id,
                    LeaseState {
                        ttl_ms: *ttl_ms,
                        ..LeaseState::default()
                    },
                );
            }
            Record::Revoke { id } => {
                self.leases.remove(id);
            }
            Record::Attach { id, keys } => {
                if let Some(l) = self.leases.get_mut(id) {
                    l.keys.extend(keys.iter().cloned());
                }
            }
            Record::Detach { id, keys } => {
                if let Some(l) = self.leases.get_mut(id) {
                    for k in keys {
                        l.keys.remove(k);
                    }
                }
            }
            Record::Checkpoint { id, remaining_ms } => {
                if let Some(l) = self.leases.get_mut(id) {
                    l.checkpoint = Some(*remaining_ms);
                }
            }
            Record::Put {
                key,
                value,
                lease,
                revision,
            } => {
                self.kv
                    .insert(key.clone(), (value.clone(), *lease, *revision));
            }
            Record::DeleteRange { key, range_end, .. } => {
                if range_end.is_empty() {
                    self.kv.remove(key);
                } else {
                    let all = range_end.as_slice() == [0];
                    self.kv
                        .retain(|k, _| k < key || (!all && k.as_slice() >= range_end.as_slice()));
                }
            }
            Record::StoreEntry {
                key,
                value,
                lease,
                mod_revision,
                ..
            } => {
                self.kv
                    .insert(key.clone(), (value.clone(), *lease, *mod_revision));
            }
            Record::StoreRevision { .. } => {}
        }
    }

    /// Records that rebuild this state.
    pub(crate) fn snapshot(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for (id, l) in &self.leases {
            out.push(Record::Grant {
                id: *id,
                ttl_ms: l.ttl_ms,
            });
            if let Some(remaining_ms) = l.checkpoint {
                out.push(Record::Checkpoint {
                    id: *id,
                    remaining_ms,
                });
            }
            if !l.keys.is_empty() {
                out.push(Record::Attach {
                    id: *id,
                    keys: l.keys.iter().cloned().collect(),
                });
            }
        }
        for (key, (value, lease, revision)) in &self.kv {
            out.push(Record::Put {
                key: key.clone(),
                value: value.clone(),
                lease: *lease,
                revision: *revision,
            });
        }
        out
    }
}

/// The segment files in `dir`, by number.
pub(crate) fn segments(fs: &dyn FileSystem, dir: &Path) -> Vec<u64> {
    let mut out: Vec<u64> = fs
        .list(dir)
        .expect("list")
        .iter()
        .filter_map(|n| match format::parse_name(n) {
            Some(format::LogFileName::Segment(n)) => Some(n),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out
}

/// The names in `dir` that are snapshots or snapshot temporaries.
pub(crate) fn snapshot_files(fs: &dyn FileSystem, dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs
        .list(dir)
        .expect("list")
        .into_iter()
        .filter(|n| n.starts_with("snapshot-"))
        .collect();
    out.sort();
    out
}

/// Spins (yielding) until `done` holds; panics after 20 s of real time.
pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = SystemClock.now() + Duration::from_secs(20);
    while !done() {
        assert!(SystemClock.now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}
