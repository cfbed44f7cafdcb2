//! etcd's `KV` service over the engine's key-value store: `Put`, `Range` and `DeleteRange`.
//! `Txn` and `Compact` answer Unimplemented.
//!
//! The engine returns every key of a range, ascending; this module applies etcd's read
//! options on top, in etcd's order (`applierV3backend.Range`): the revision check, the
//! min/max mod and create revision filters, the sort, the limit (`more` set when it cut
//! something), then `keys_only`. `count` is the number of keys in the range, before filters
//! and limit, as etcd reports it.

use std::cmp::Ordering;
use std::sync::Arc;

use lessor::{LeaseId, PutOptions};
use tonic::{Request, Response, Status};

use crate::errors::{COMPACTED, FUTURE_REV};
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use crate::proto::mvccpb;
use crate::state::State;

/// The `KV` service.
#[derive(Debug, Clone)]
pub(crate) struct KvService {
    state: Arc<State>,
}

impl KvService {
    pub(crate) fn new(state: Arc<State>) -> Self {
        KvService { state }
    }
}

/// etcd's answer for an empty key, checked before anything else (`checkPutRequest`).
fn require_key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() {
        return Err(Status::invalid_argument("etcdserver: key is not provided"));
    }
    Ok(())
}

fn to_pb(kv: lessor::KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease.get(),
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        let req = request.into_inner();
        require_key(&req.key)?;
        // A read, but a wide range copies many keys: off the async workers with it.
        let (key, end) = (req.key.clone(), req.range_end.clone());
        let outcome = self
            .state
            .blocking(move |state| state.lessor.range(&key, &end))
            .await?;
        check_revision(req.revision, outcome.revision)?;
        let count = i64::try_from(outcome.kvs.len()).unwrap_or(i64::MAX);
        let (kvs, more) = if req.count_only {
            (Vec::new(), false)
        } else {
            select(&req, outcome.kvs)
        };
        Ok(Response::new(RangeResponse {
            header: Some(self.state.header_at(outcome.revision)),
            kvs: kvs.into_iter().map(to_pb).collect(),
            more,
            count,
        }))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let req = request.into_inner();
        require_key(&req.key)?;
        self.state.check_size(&req)?;
        let opts = PutOptions {
            lease: LeaseId::new(req.lease),
            prev_kv: req.prev_kv,
            ignore_value: req.ignore_value,
            ignore_lease: req.ignore_lease,
        };
        let outcome = self
            .state
            .blocking(move |state| state.lessor.put(&req.key, &req.value, opts))
            .await?;
        Ok(Response::new(PutResponse {
            header: Some(self.state.header_at(outcome.revision)),
            prev_kv: outcome.prev.map(to_pb),
        }))
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let req = request.into_inner();
        require_key(&req.key)?;
        self.state.check_size(&req)?;
        let outcome = self
            .state
            .blocking(move |state| {
                state
                    .lessor
                    .delete_range(&req.key, &req.range_end, req.prev_kv)
            })
            .await?;
        Ok(Response::new(DeleteRangeResponse {
            header: Some(self.state.header_at(outcome.revision)),
            deleted: outcome.deleted,
            prev_kvs: outcome.prev.into_iter().map(to_pb).collect(),
        }))
    }

    async fn txn(&self, _request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        Err(Status::unimplemented(
            "lessor does not implement KV.Txn: use Put, Range and DeleteRange",
        ))
    }

    async fn compact(
        &self,
        _request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        Err(Status::unimplemented(
            "lessor does not implement KV.Compact: it keeps no history to compact",
        ))
    }
}

/// The store keeps no history: only the current revision (or "newest", <= 0) can be read.
fn check_revision(asked: i64, current: i64) -> Result<(), Status> {
    match asked {
        r if r <= 0 || r == current => Ok(()),
        r if r > current => Err(Status::out_of_range(FUTURE_REV)),
        _ => Err(Status::out_of_range(COMPACTED)),
    }
}

/// Applies the filters, sort and limit of `req` to every key of the range (ascending by key);
/// returns the keys to send and whether the limit cut any off.
fn select(req: &RangeRequest, mut kvs: Vec<lessor::KeyValue>) -> (Vec<lessor::KeyValue>, bool) {
    let bound = |min: i64, max: i64, v: i64| (min == 0 || v >= min) && (max == 0 || v <= max);
    kvs.retain(|kv| {
        bound(req.min_mod_revision, req.max_mod_revision, kv.mod_revision)
            && bound(
                req.min_create_revision,
                req.max_create_revision,
                kv.create_revision,
            )
    });
    let target = SortTarget::try_from(req.sort_target).unwrap_or(SortTarget::Key);
    let mut order = SortOrder::try_from(req.sort_order).unwrap_or(SortOrder::None);
    if target != SortTarget::Key && order == SortOrder::None {
        // etcd sorts ascending by the target when only the target is given.
        order = SortOrder::Ascend;
    }
    match order {
        SortOrder::None => {}
        SortOrder::Ascend => kvs.sort_by(|a, b| compare(target, a, b)),
        SortOrder::Descend => kvs.sort_by(|a, b| compare(target, b, a)),
    }
    let mut more = false;
    if let Ok(limit @ 1..) = usize::try_from(req.limit) {
        if kvs.len() > limit {
            kvs.truncate(limit);
            more = true;
        }
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value = Vec::new();
        }
    }
    (kvs, more)
}

/// Orders two keys by a sort target; ties keep key order (the sort is stable).
fn compare(target: SortTarget, a: &lessor::KeyValue, b: &lessor::KeyValue) -> Ordering {
    match target {
        SortTarget::Key => a.key.cmp(&b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, create: i64, modified: i64, version: i64, value: &str) -> lessor::KeyValue {
        lessor::KeyValue {
            key: key.as_bytes().to_vec(),
            create_revision: create,
            mod_revision: modified,
            version,
            value: value.as_bytes().to_vec(),
            lease: LeaseId::NONE,
        }
    }

    fn keys(kvs: &[lessor::KeyValue]) -> Vec<&str> {
        kvs.iter()
            .map(|kv| std::str::from_utf8(&kv.key).unwrap())
            .collect()
    }

    fn sample() -> Vec<lessor::KeyValue> {
        vec![
            kv("a", 2, 9, 3, "z"),
            kv("b", 3, 3, 1, "y"),
            kv("c", 4, 7, 2, "x"),
        ]
    }

    #[test]
    fn filters_sort_and_limit_as_etcd() {
        let mut req = RangeRequest {
            min_mod_revision: 4,
            ..RangeRequest::default()
        };
        assert_eq!(keys(&select(&req, sample()).0), ["a", "c"]);
        req = RangeRequest {
            max_create_revision: 3,
            ..RangeRequest::default()
        };
        assert_eq!(keys(&select(&req, sample()).0), ["a", "b"]);
        req = RangeRequest {
            sort_target: SortTarget::Mod.into(),
            ..RangeRequest::default()
        };
        assert_eq!(keys(&select(&req, sample()).0), ["b", "c", "a"]);
        req = RangeRequest {
            sort_target: SortTarget::Value.into(),
            sort_order: SortOrder::Descend.into(),
            limit: 2,
            keys_only: true,
            ..RangeRequest::default()
        };
        let (got, more) = select(&req, sample());
        assert_eq!(keys(&got), ["a", "b"]);
        assert!(more);
        assert!(got.iter().all(|kv| kv.value.is_empty()));
        req = RangeRequest {
            limit: 3,
            ..RangeRequest::default()
        };
        assert!(!select(&req, sample()).1);
    }

    #[test]
    fn only_the_current_revision_can_be_read() {
        assert!(check_revision(0, 5).is_ok());
        assert!(check_revision(-1, 5).is_ok());
        assert!(check_revision(5, 5).is_ok());
        assert_eq!(check_revision(6, 5).unwrap_err().message(), FUTURE_REV);
        assert_eq!(check_revision(4, 5).unwrap_err().message(), COMPACTED);
    }
}
