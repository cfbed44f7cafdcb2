//! [`Record`]: what the log holds, and its encoding into frames.
//!
//! The byte layout is documented once, in [`super::format`](mod@super::format):
//! `| len: u32 | crc32c: u32 (of kind and payload) | kind: u8 | payload |`.
//!
//! Decoding never panics and never allocates more than the input could hold: a count or a
//! length is checked against the bytes left before anything is reserved. Decode errors are a
//! private [`DecodeError`] here; the reader maps them to `Error::Corruption`.

use super::format::{kind, FRAME_HEADER_LEN, MAX_PAYLOAD};

/// One logged change. A renew logs only the clearing of a checkpoint (a `Checkpoint` of 0, as
/// etcd proposes one); its new deadline is never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// A lease was granted with this TTL.
    Grant {
        /// The lease id (any `i64` but 0).
        id: i64,
        /// The granted TTL in milliseconds.
        ttl_ms: u64,
    },
    /// A lease was revoked (or expired and removed).
    Revoke {
        /// The lease id.
        id: i64,
    },
    /// Keys were attached to a lease.
    Attach {
        /// The lease id.
        id: i64,
        /// The keys, in the order given.
        keys: Vec<Vec<u8>>,
    },
    /// Keys were detached from a lease.
    Detach {
        /// The lease id.
        id: i64,
        /// The keys, in the order given.
        keys: Vec<Vec<u8>>,
    },
    /// A lease's remaining TTL was checkpointed, or (0) its checkpoint was cleared.
    Checkpoint {
        /// The lease id.
        id: i64,
        /// The remaining TTL in milliseconds; 0 clears the checkpoint.
        remaining_ms: u64,
    },
    /// A key was put in the key-value store (the etcd-compatible server).
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// The lease the key is attached to (0 for none).
        lease: i64,
        /// The store revision of the put.
        revision: i64,
    },
    /// A range of keys was deleted from the key-value store (etcd's `range_end` rules).
    DeleteRange {
        /// The first key.
        key: Vec<u8>,
        /// The end of the range (empty: the single key).
        range_end: Vec<u8>,
        /// The store revision of the delete.
        revision: i64,
    },
    /// One key of the key-value store as a snapshot holds it, with its history counters.
    StoreEntry {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// The lease the key is attached to (0 for none).
        lease: i64,
        /// The revision that created the key.
        create_revision: i64,
        /// The revision of the key's last put.
        mod_revision: i64,
        /// Puts since creation.
        version: i64,
    },
    /// The key-value store's revision as a snapshot holds it (its last change may have been
    /// a delete, which no `StoreEntry` shows).
    StoreRevision {
        /// The revision.
        revision: i64,
    },
}

/// Why a frame's payload did not decode. Private to the log: the reader turns it into
/// `Error::Corruption` with [`DecodeError::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The kind byte names no record kind.
    UnknownKind(u8),
    /// The payload ended inside a field.
    Truncated,
    /// A varint ran over 10 bytes or past `u64::MAX`.
    BadVarint,
    /// Bytes were left after the last field.
    TrailingBytes,
}

impl DecodeError {
    /// The reason named in the corruption error.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            DecodeError::UnknownKind(_) => "unknown record kind",
            DecodeError::Truncated => "record payload ends inside a field",
            DecodeError::BadVarint => "record payload has a malformed varint",
            DecodeError::TrailingBytes => "record payload has trailing bytes",
        }
    }
}

/// A payload over [`MAX_PAYLOAD`] bytes: such a record cannot be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge {
    /// The payload's size.
    pub(crate) given: usize,
}

// ===== impl Record =====

impl Record {
    /// The frame's kind byte for this record.
    pub(crate) fn kind(&self) -> u8 {
        match self {
            Record::Grant { .. } => kind::GRANT,
            Record::Revoke { .. } => kind::REVOKE,
            Record::Attach { .. } => kind::ATTACH,
            Record::Detach { .. } => kind::DETACH,
            Record::Checkpoint { .. } => kind::CHECKPOINT,
            Record::Put { .. } => kind::PUT,
            Record::DeleteRange { .. } => kind::DELETE_RANGE,
            Record::StoreEntry { .. } => kind::STORE_ENTRY,
            Record::StoreRevision { .. } => kind::STORE_REVISION,
        }
    }

    /// Appends the payload (not the frame) to `out`.
    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            Record::Grant { id, ttl_ms } => {
                put_i64(out, *id);
                put_varint(out, *ttl_ms);
            }
            Record::Revoke { id } => put_i64(out, *id),
            Record::Attach { id, keys } | Record::Detach { id, keys } => {
                put_i64(out, *id);
                put_varint(out, len_u64(keys.len()));
                for key in keys {
                    put_bytes(out, key);
                }
            }
            Record::Checkpoint { id, remaining_ms } => {
                put_i64(out, *id);
                put_varint(out, *remaining_ms);
            }
            Record::Put {
                key,
                value,
                lease,
                revision,
            } => {
                put_bytes(out, key);
                put_bytes(out, value);
                put_i64(out, *lease);
                put_i64(out, *revision);
            }
            Record::DeleteRange {
                key,
                range_end,
                revision,
            } => {
                put_bytes(out, key);
                put_bytes(out, range_end);
                put_i64(out, *revision);
            }
            Record::StoreEntry {
                key,
                value,
                lease,
                create_revision,
                mod_revision,
                version,
            } => {
                put_bytes(out, key);
                put_bytes(out, value);
                for n in [lease, create_revision, mod_revision, version] {
                    put_i64(out, *n);
                }
            }
            Record::StoreRevision { revision } => put_i64(out, *revision),
        }
    }

    /// Decodes a payload of kind `kind`; the whole payload must be consumed.
    pub(crate) fn decode(kind: u8, payload: &[u8]) -> Result<Record, DecodeError> {
        let mut r = Reader { rest: payload };
        let record = match kind {
            kind::GRANT => Record::Grant {
                id: r.i64()?,
                ttl_ms: r.varint()?,
            },
            kind::REVOKE => Record::Revoke { id: r.i64()? },
            kind::ATTACH => Record::Attach {
                id: r.i64()?,
                keys: r.keys()?,
            },
            kind::DETACH => Record::Detach {
                id: r.i64()?,
                keys: r.keys()?,
            },
            kind::CHECKPOINT => Record::Checkpoint {
                id: r.i64()?,
                remaining_ms: r.varint()?,
            },
            kind::PUT => Record::Put {
                key: r.bytes()?,
                value: r.bytes()?,
                lease: r.i64()?,
                revision: r.i64()?,
            },
            kind::DELETE_RANGE => Record::DeleteRange {
                key: r.bytes()?,
                range_end: r.bytes()?,
                revision: r.i64()?,
            },
            kind::STORE_ENTRY => Record::StoreEntry {
                key: r.bytes()?,
                value: r.bytes()?,
                lease: r.i64()?,
                create_revision: r.i64()?,
                mod_revision: r.i64()?,
                version: r.i64()?,
            },
            kind::STORE_REVISION => Record::StoreRevision { revision: r.i64()? },
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(record)
    }
}

// ===== frames =====

/// Appends one framed record to `out`. On error `out` is left as it was.
pub(crate) fn encode_frame(record: &Record, out: &mut Vec<u8>) -> Result<(), TooLarge> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN - 1]);
    out.push(record.kind());
    record.encode_payload(out);
    seal_frame(out, start)
}

/// Appends the snapshot's closing `End { count }` frame to `out`.
pub(crate) fn encode_end_frame(count: u64, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN - 1]);
    out.push(kind::END);
    put_varint(out, count);
    // A varint is at most 10 bytes: never too large.
    let _ = seal_frame(out, start);
}

/// Decodes the payload of an `End` frame: the snapshot's record count.
pub(crate) fn decode_end(payload: &[u8]) -> Result<u64, DecodeError> {
    let mut r = Reader { rest: payload };
    let count = r.varint()?;
    r.finish()?;
    Ok(count)
}

/// Fills in `len` and `crc32c` of the frame that starts at `start` and runs to the end of
/// `out`; undoes the frame if its payload is too large.
fn seal_frame(out: &mut Vec<u8>, start: usize) -> Result<(), TooLarge> {
    let payload = out.len() - start - FRAME_HEADER_LEN;
    let len = match u32::try_from(payload) {
        Ok(len) if payload <= MAX_PAYLOAD => len,
        _ => {
            out.truncate(start);
            return Err(TooLarge { given: payload });
        }
    };
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// What the frame at the start of some bytes is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A whole frame whose checksum matches: `len` bytes in all.
    Good {
        /// The kind byte.
        kind: u8,
        /// The payload.
        payload: &'a [u8],
        /// The frame's size, header included.
        len: usize,
    },
    /// The bytes end before the frame does (a torn write looks like this).
    Incomplete,
    /// The frame is damaged: the reason says how.
    Bad(&'static str),
}

/// Reads the frame at the start of `data` (which may run on past it).
pub(crate) fn read_frame(data: &[u8]) -> Frame<'_> {
    let Some(head) = data.get(..FRAME_HEADER_LEN) else {
        return Frame::Incomplete;
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_PAYLOAD {
        return Frame::Bad("record length is impossible");
    }
    let total = FRAME_HEADER_LEN + len;
    let Some(body) = data.get(8..total) else {
        return Frame::Incomplete;
    };
    if crc32c::crc32c(body) != crc {
        return Frame::Bad("record checksum mismatch");
    }
    Frame::Good {
        kind: body[0],
        payload: &body[1..],
        len: total,
    }
}

// ===== primitive encodings =====

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Unsigned LEB128.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, len_u64(b.len()));
    out.extend_from_slice(b);
}

/// A cursor over a payload.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(b))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.take(1)?.first().ok_or(DecodeError::Truncated)?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(DecodeError::BadVarint);
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::BadVarint)
    }

    /// A varint length, checked against the bytes left (so nothing huge is allocated).
    fn len(&mut self, min_each: usize) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated)?;
        if n.saturating_mul(min_each.max(1)) > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.len(1)?;
        Ok(self.take(n)?.to_vec())
    }

    fn keys(&mut self) -> Result<Vec<Vec<u8>>, DecodeError> {
        // Each key takes at least its one-byte length.
        let n = self.len(1)?;
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            keys.push(self.bytes()?);
        }
        Ok(keys)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}
