//! # lessor-server
//!
//! An etcd-compatible gRPC server over the [`lessor`] lease engine, so that `etcdctl lease
//! ...`, `etcdctl put --lease` and etcd's client libraries work against it unchanged.
//!
//! It speaks etcd v3's client API (package `etcdserverpb`, etcd 3.4's field numbers):
//!
//! - `Lease`: `LeaseGrant` (id 0 lets the server pick), `LeaseRevoke` (deletes the lease's
//!   keys), `LeaseKeepAlive` (a stream; a lease that is gone is answered with TTL 0),
//!   `LeaseTimeToLive` (with keys; a lease that is gone is answered with TTL -1),
//!   `LeaseLeases`.
//! - `KV`: `Put` (with a lease), `Range` and `DeleteRange` with etcd's options; `Txn` and
//!   `Compact` answer Unimplemented.
//! - `Maintenance.Status` and `Cluster.MemberList` describe this one-member cluster; `Watch`
//!   and the other rpcs answer Unimplemented at once, as does any unknown service.
//!
//! On the peer URLs (`--listen-peer-urls`) it serves etcd's leasehttp, the HTTP/1.1 routes
//! members forward lease calls to the leader with: `POST /leases` (a protobuf
//! `LeaseKeepAliveRequest`: renew) and `POST /leases/internal` (a `leasepb.LeaseInternalRequest`:
//! time-to-live), with etcd's status codes (404 "lease not found", 405, 400, 413 over
//! [`LEASE_HTTP_BODY_LIMIT`]). [`renew_http`] and [`time_to_live_http`] are the client side,
//! etcd's `RenewHTTP` and `TimeToLiveHTTP`.
//!
//! Errors are etcd's statuses and messages ("etcdserver: requested lease not found", ...).
//! The engine revokes expired leases itself and deletes their keys, as etcd's leader does.
//! Every change is in the engine's write-ahead log in the data directory before it is
//! acknowledged (per the fsync policy); a server restarted on the same directory has every
//! lease and key back. Shutdown stops accepting, lets in-flight calls finish, then flushes.
//!
//! ```no_run
//! use lessor_server::{serve, Config};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), lessor_server::ServerError> {
//!     let config = Config::new("./default.lessor");
//!     serve(config, async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await
//! }
//! ```
#![deny(rustdoc::broken_intra_doc_links)]

mod batcher;
mod cluster;
mod coalesce;
mod config;
mod errors;
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub mod fuzz;
mod grants;
mod header;
mod kv_svc;
mod lease_svc;
mod leasehttp;
mod maintenance;
mod revokes;
mod server;
mod shutdown;
mod state;
mod watch_svc;

/// The protobuf messages and tonic service traits generated from `proto/` (etcd's packages
/// `etcdserverpb`, `mvccpb` and `leasepb`, with etcd's field numbers).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod proto {
    /// etcd's client API: `Lease`, `KV`, `Watch`, `Maintenance`, `Cluster`.
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
    /// etcd's key-value types: `KeyValue`, `Event`.
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    /// etcd's lease storage and member-to-member messages.
    pub mod leasepb {
        tonic::include_proto!("leasepb");
    }
}

pub use crate::coalesce::Coalesced;
pub use crate::config::{
    parse_fsync, parse_urls, Config, ConfigError, HttpUrl, DEFAULT_FSYNC_INTERVAL,
    DEFAULT_MAX_REQUEST_BYTES, GRPC_OVERHEAD_BYTES,
};
pub use crate::errors::ServerError;
pub use crate::leasehttp::{
    renew_http, time_to_live_http, LeaseHttpError, LEASES_INTERNAL_PATH, LEASES_PATH,
    LEASE_HTTP_BODY_LIMIT, LEASE_HTTP_TIMEOUT,
};
pub use crate::maintenance::ETCD_VERSION;
pub use crate::server::{serve, Server};
