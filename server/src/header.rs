//! The [`ResponseHeader`] every answer carries, and the member's identity in it.
//!
//! etcd fills `cluster_id` and `member_id` from its raft membership; a lessor server is one
//! member of a one-member cluster, so both ids are derived from the canonical path of the data
//! directory: stable across restarts on the same directory, different for different
//! directories. There is no raft, so `raft_term` is the constant [`RAFT_TERM`].

use std::path::Path;

use crate::proto::etcdserverpb::ResponseHeader;

/// The raft term every header reports: a single member that never holds an election.
pub(crate) const RAFT_TERM: u64 = 1;

/// This member's ids, as the header reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) cluster_id: u64,
    pub(crate) member_id: u64,
}

impl Identity {
    /// The ids for a data directory (canonicalized when it exists, so that `./d` and its
    /// absolute path name the same member).
    pub(crate) fn for_data_dir(dir: &Path) -> Identity {
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let path = canonical.as_os_str().as_encoded_bytes();
        Identity {
            cluster_id: nonzero(fnv1a(&[b"lessor cluster\0", path])),
            member_id: nonzero(fnv1a(&[b"lessor member\0", path])),
        }
    }

    /// A header at `revision`.
    pub(crate) fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id,
            revision,
            raft_term: RAFT_TERM,
        }
    }
}

/// 64-bit FNV-1a over the concatenated parts: a hash that never changes between builds, unlike
/// std's.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    parts
        .iter()
        .flat_map(|p| p.iter())
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// etcd never uses id 0 (it means "none").
fn nonzero(id: u64) -> u64 {
    id.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_differ_per_directory() {
        let a = Identity::for_data_dir(Path::new("/nonexistent/a"));
        assert_eq!(a, Identity::for_data_dir(Path::new("/nonexistent/a")));
        let b = Identity::for_data_dir(Path::new("/nonexistent/b"));
        assert_ne!(a.member_id, b.member_id);
        assert_ne!(a.cluster_id, a.member_id);
        // FNV-1a's published test vector.
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        let h = a.header(7);
        assert_eq!((h.revision, h.raft_term), (7, RAFT_TERM));
    }
}
