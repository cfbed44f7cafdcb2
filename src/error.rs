//! The one error type of the crate.

use std::path::PathBuf;
use std::time::Duration;

use crate::lease::LeaseId;

/// Everything that can go wrong in lessor.
///
/// Each variant carries the values that caused it, and each message says what to do.
///
/// # Examples
///
/// ```
/// use lessor::{Error, LeaseId, Lessor};
/// use std::time::Duration;
///
/// let lessor = Lessor::builder().build()?;
/// let err = lessor.renew(LeaseId::new(7)).unwrap_err();
/// assert!(matches!(err, Error::LeaseNotFound { id } if id == LeaseId::new(7)));
/// assert_eq!(err.to_string(), "lease 7 (0x7) not found: grant it first");
/// # Ok::<(), lessor::Error>(())
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lease does not exist (never granted, revoked, or the id is 0).
    #[error("lease {id} ({id:#x}) not found: grant it first")]
    LeaseNotFound {
        /// The id that was asked for.
        id: LeaseId,
    },
    /// The lease exists but has expired; an expired lease is never brought back.
    #[error("lease {id} ({id:#x}) has expired: grant a new lease")]
    LeaseExpired {
        /// The expired lease.
        id: LeaseId,
    },
    /// A grant named an id that is already in use.
    #[error("lease {id} ({id:#x}) already exists: revoke it first or pick another id")]
    LeaseExists {
        /// The id that is taken.
        id: LeaseId,
    },
    /// A grant asked for more than the maximum TTL.
    #[error("ttl {given:?} is larger than the maximum {max:?}: ask for a shorter ttl")]
    TtlTooLarge {
        /// The TTL asked for.
        given: Duration,
        /// The largest TTL a lease may have.
        max: Duration,
    },
    /// The lessor is not primary: renewals are refused and nothing expires.
    #[error("this lessor is not primary: renew on the primary or promote this one")]
    NotPrimary,
    /// A key was empty; keys must have at least one byte.
    #[error("empty key: keys must have at least one byte")]
    EmptyKey,
    /// A put asked to keep the value or lease of a key that does not exist.
    #[error("key not found: ignore_value and ignore_lease need an existing key")]
    KeyNotFound,
    /// A key-value call on a lessor built without the store.
    #[error("this lessor has no key-value store: build it with key_value_store(true)")]
    StoreDisabled,
    /// A key was longer than the configured limit.
    #[error(
        "key of {given} bytes is over the {limit}-byte limit: shorten it or raise max_key_size"
    )]
    KeyTooLarge {
        /// The key's length in bytes.
        given: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A builder option was out of range.
    #[error("invalid config `{field}`: {reason}")]
    InvalidConfig {
        /// The builder method that was given the bad value.
        field: &'static str,
        /// What is wrong and what range is allowed.
        reason: &'static str,
    },
    /// An I/O error (starting the expiry thread, or the log).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The lessor was stopped; build a new one.
    #[error("the lessor is stopped: build a new one to go on")]
    Stopped,
    /// A log segment holds a bad record (or header) that is not a torn tail: a checksum
    /// mismatch, an impossible length, an unknown kind or a payload that does not decode,
    /// anywhere but at the very end of the last segment. Nothing was loaded.
    #[error(
        "the log in {dir} is damaged at segment {segment} offset {offset}: {reason}; \
         restore it from a backup or move it aside"
    )]
    Corruption {
        /// The log directory.
        dir: PathBuf,
        /// The damaged segment's number (its file is `{segment:020}.wal`).
        segment: u64,
        /// The byte offset of the bad header or record in that segment.
        offset: u64,
        /// What is wrong there.
        reason: &'static str,
    },
    /// The log's snapshot file is damaged (a bad record, or it ends before its end record).
    /// Nothing was loaded.
    #[error(
        "the log snapshot {file} is damaged at offset {offset}: {reason}; \
         restore the log from a backup or move it aside"
    )]
    CorruptSnapshot {
        /// The snapshot file.
        file: PathBuf,
        /// The byte offset of the bad header or record in it.
        offset: u64,
        /// What is wrong there.
        reason: &'static str,
    },
    /// Another log handle (in this process or another) holds the directory's lock file (after
    /// half a second of trying again: a child forked while a log was open holds its lock until
    /// it execs).
    #[error(
        "the log in {dir} is in use (its lock file is held): stop the other lessor or use \
         another directory"
    )]
    LogLocked {
        /// The log directory.
        dir: PathBuf,
    },
    /// A log file was written by a newer lessor, in a format this version cannot read.
    #[error(
        "{file} has log format version {found}, newer than the {supported} this lessor reads: \
         open it with a newer lessor"
    )]
    UnsupportedLogVersion {
        /// The file whose header names the version.
        file: PathBuf,
        /// The version in the file.
        found: u16,
        /// The newest version this build reads.
        supported: u16,
    },
    /// One record to log is larger than a log record may be.
    #[error(
        "a log record of {given} bytes is over the {limit}-byte limit: \
         attach fewer or smaller keys per call"
    )]
    RecordTooLarge {
        /// The encoded record's payload size in bytes.
        given: usize,
        /// The largest payload a record may have.
        limit: usize,
    },
}

/// `Result` with lessor's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
