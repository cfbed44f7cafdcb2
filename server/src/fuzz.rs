//! The fuzz entry point of the server's request handling (the `server_requests` target in
//! `fuzz/`, and the saved inputs replayed by `server/tests/it/fuzz_regressions.rs`).
//!
//! # Ground rules
//!
//! - An input is a sequence of frames `| method: u8 | len: u16 le | body: [u8; len] |`; the
//!   body is decoded with prost as the request of that method (exactly what tonic's codec
//!   does with a gRPC message), and a request that decodes is handled by the real service
//!   against one in-memory engine with a key-value store. A short tail is one last body.
//! - The engine is shared by every input of a process (as a server's is by its clients); it
//!   runs on a manual clock, which frames of method [`ADVANCE`] move on, so leases expire
//!   and are revoked with their keys while the input runs.
//! - What must hold: nothing panics; every answer's header revision is at least the one
//!   before it; a put on a lease shows the key in that lease's time-to-live; the engine's own
//!   invariants (`Lessor::check_invariants`) hold after every frame.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use lessor::{ExpiryMode, Lessor, ManualClock};
use prost::Message;
use tonic::Request;

use crate::cluster::ClusterService;
use crate::header::Identity;
use crate::kv_svc::KvService;
use crate::lease_svc::{time_to_live, LeaseService};
use crate::maintenance::MaintenanceService;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::proto::etcdserverpb::lease_server::Lease as LeaseRpc;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::{
    DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseLeasesRequest,
    LeaseRevokeRequest, LeaseTimeToLiveRequest, MemberListRequest, PutRequest, RangeRequest,
    ResponseHeader, StatusRequest,
};
use crate::shutdown::Stopper;
use crate::state::{MemberInfo, State};

/// The method byte that moves the manual clock on by `body[0]` × 100 ms.
pub const ADVANCE: u8 = 11;

/// One engine, its clock and the services, for every input of the process.
struct Harness {
    runtime: tokio::runtime::Runtime,
    clock: ManualClock,
    state: Arc<State>,
    lease: LeaseService,
    kv: KvService,
    maintenance: MaintenanceService,
    cluster: ClusterService,
    last_revision: Mutex<i64>,
    serial: Mutex<()>,
    _stopper: Stopper,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let clock = ManualClock::new();
        let lessor = Lessor::builder()
            .clock(clock.clone())
            .expiry_thread(false)
            .expiry_mode(ExpiryMode::Revoke)
            .min_ttl(Duration::from_secs(1))
            .key_value_store(true)
            .build()
            .expect("the fuzz engine's options are valid");
        let (stopper, stop) = Stopper::new();
        let state = Arc::new(State::new(
            Arc::new(lessor),
            Identity::for_data_dir(std::path::Path::new("fuzz")),
            MemberInfo {
                name: "fuzz".into(),
                peer_urls: vec!["http://127.0.0.1:2380".into()],
                client_urls: vec!["http://127.0.0.1:2379".into()],
            },
            std::path::PathBuf::from("fuzz"),
            crate::DEFAULT_MAX_REQUEST_BYTES,
            stop,
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        // The service starts its grant and revoke batchers on the runtime; each input's
        // `block_on` then drives them.
        let lease = runtime.block_on(async { LeaseService::new(Arc::clone(&state)) });
        Harness {
            runtime,
            clock,
            lease,
            kv: KvService::new(Arc::clone(&state)),
            maintenance: MaintenanceService::new(Arc::clone(&state)),
            cluster: ClusterService::new(Arc::clone(&state)),
            state,
            last_revision: Mutex::new(0),
            serial: Mutex::new(()),
            _stopper: stopper,
        }
    })
}

/// Runs one fuzz input (see the module docs for its layout).
///
/// # Panics
///
/// When a property in the module docs does not hold: that is the finding.
pub fn requests(mut data: &[u8]) {
    let h = harness();
    // One input at a time (tests may call from several threads): the revision check compares
    // answers in the order one client saw them.
    let _alone = h.serial.lock().unwrap_or_else(PoisonError::into_inner);
    while let Some((&method, rest)) = data.split_first() {
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => (rest.len(), &[][..]),
        };
        let (body, rest) = rest.split_at(len.min(rest.len()));
        data = rest;
        h.runtime.block_on(frame(h, method, body));
        if let Err(broken) = h.state.lessor.check_invariants() {
            panic!("after method {method}: {broken}");
        }
    }
}

/// The store revision of the shared engine (for tests of the inputs).
pub fn revision() -> i64 {
    harness().state.lessor.revision()
}

/// Checks that `header`'s revision did not go back, and remembers it.
fn saw(h: &Harness, header: Option<ResponseHeader>) {
    let rev = header.expect("every answer has a header").revision;
    let mut last = h
        .last_revision
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    assert!(
        rev >= *last,
        "a header's revision went back from {} to {rev}",
        *last
    );
    *last = rev;
}

/// Handles one frame; errors are answers too, only panics are findings.
async fn frame(h: &Harness, method: u8, body: &[u8]) {
    match method % 12 {
        0 => {
            if let Ok(req) = LeaseGrantRequest::decode(body) {
                if let Ok(resp) = h.lease.lease_grant(Request::new(req)).await {
                    saw(h, resp.into_inner().header);
                }
            }
        }
        1 => {
            if let Ok(req) = LeaseRevokeRequest::decode(body) {
                if let Ok(resp) = h.lease.lease_revoke(Request::new(req)).await {
                    saw(h, resp.into_inner().header);
                }
            }
        }
        2 => {
            if let Ok(req) = LeaseKeepAliveRequest::decode(body) {
                saw(h, LeaseService::keep_alive_once(&h.state, req.id).header);
            }
        }
        3 => {
            if let Ok(req) = LeaseTimeToLiveRequest::decode(body) {
                saw(h, time_to_live(&h.state, &req).header);
            }
        }
        4 => {
            if let Ok(req) = LeaseLeasesRequest::decode(body) {
                if let Ok(resp) = h.lease.lease_leases(Request::new(req)).await {
                    saw(h, resp.into_inner().header);
                }
            }
        }
        5 => {
            if let Ok(req) = PutRequest::decode(body) {
                put(h, req).await;
            }
        }
        6 => {
            if let Ok(req) = RangeRequest::decode(body) {
                if let Ok(resp) = h.kv.range(Request::new(req)).await {
                    let resp = resp.into_inner();
                    assert!(
                        usize::try_from(resp.count).is_ok_and(|n| n >= resp.kvs.len()),
                        "count {} below the {} keys returned",
                        resp.count,
                        resp.kvs.len()
                    );
                    saw(h, resp.header);
                }
            }
        }
        7 => {
            if let Ok(req) = DeleteRangeRequest::decode(body) {
                if let Ok(resp) = h.kv.delete_range(Request::new(req)).await {
                    saw(h, resp.into_inner().header);
                }
            }
        }
        8 => {
            if let Ok(req) = StatusRequest::decode(body) {
                if let Ok(resp) = h.maintenance.status(Request::new(req)).await {
                    saw(h, resp.into_inner().header);
                }
            }
        }
        9 => {
            if let Ok(req) = MemberListRequest::decode(body) {
                if let Ok(resp) = h.cluster.member_list(Request::new(req)).await {
                    saw(h, resp.into_inner().header);
                }
            }
        }
        10 => {
            // Expiry, as the engine's thread would run it.
            let _ = h.state.lessor.run_expiry_once();
        }
        _ => {
            let steps = body.first().copied().unwrap_or(1);
            h.clock
                .advance(Duration::from_millis(100) * u32::from(steps));
            let _ = h.state.lessor.run_expiry_once();
        }
    }
}

/// A put, then: the key is on the lease it was put with.
async fn put(h: &Harness, req: PutRequest) {
    let (key, lease, ignore_lease) = (req.key.clone(), req.lease, req.ignore_lease);
    let Ok(resp) = h.kv.put(Request::new(req)).await else {
        return;
    };
    saw(h, resp.into_inner().header);
    if lease != 0 && !ignore_lease {
        let ttl = time_to_live(
            &h.state,
            &LeaseTimeToLiveRequest {
                id: lease,
                keys: true,
            },
        );
        assert!(
            ttl.keys.contains(&key),
            "key {key:?} put on lease {lease} is not among its keys {:?}",
            ttl.keys
        );
    }
}
