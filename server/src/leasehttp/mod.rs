//! etcd's leasehttp: member-to-member lease forwarding over HTTP/1.1 on the peer listeners
//! (`--listen-peer-urls`), after etcd's `server/lease/leasehttp/http.go`.
//!
//! A member that is not the leader forwards a keep-alive to the leader with
//! `POST /leases` and a time-to-live lookup with `POST /leases/internal`; both bodies are
//! protobuf. This module serves both routes ([`listener`], [`handler`]) and has the client
//! side, etcd's `RenewHTTP` and `TimeToLiveHTTP` ([`client`]).
//!
//! # What is answered (etcd's codes and texts)
//!
//! | request | answer |
//! |---|---|
//! | `POST /leases`, a `LeaseKeepAliveRequest` | 200, a `LeaseKeepAliveResponse{header, ID, TTL}` |
//! | `POST /leases/internal`, a `LeaseInternalRequest` | 200, a `LeaseInternalResponse` |
//! | a lease that is gone or has expired | 404 `lease not found` |
//! | any other refusal of the engine (not primary, stopped) | 400 and the engine's message |
//! | a body that cannot be read in full | 400 `error reading body` |
//! | a body that does not decode | 400 `error unmarshalling request` |
//! | a body over [`LEASE_HTTP_BODY_LIMIT`] | 413 `request body too large` |
//! | another method on either path | 405 `Method Not Allowed` |
//! | any other path | 404 `404 page not found` (net/http's mux) |
//!
//! A 200's body is protobuf (`Content-Type: application/protobuf`); the time-to-live answer
//! is the gRPC `LeaseTimeToLive` one. Error bodies are plain text ending in a newline, as
//! net/http's `http.Error` writes them.
//!
//! # Ground rules
//!
//! - One accept loop per peer listener, a task in the server's task set. Each connection is
//!   a task in a [`tokio::task::JoinSet`] owned by that loop, so aborting the loop (the
//!   server's grace period ran out) aborts its connections too.
//! - Shutdown: when the server's stop signal fires the loop stops accepting, drops the
//!   listener and asks every connection to close once its in-flight request is answered
//!   (hyper's graceful shutdown: idle keep-alive connections close at once), then waits.
//! - A renew is an atomic in the engine and a lookup is a shard lock: both run inline on
//!   the connection's task, nothing goes to the blocking pool.
//! - Bodies are read whole before decoding, at most [`LEASE_HTTP_BODY_LIMIT`] bytes kept.
//!   A body that is a little over is read to its end and discarded before the 413 goes
//!   out, so the client reads the answer instead of a connection reset.

mod client;
mod handler;
mod listener;

use std::time::Duration;

pub use self::client::{renew_http, time_to_live_http, LeaseHttpError};
pub(crate) use self::listener::serve;

/// The path of a forwarded keep-alive (etcd's `leasehttp.LeasePrefix`).
///
/// # Examples
///
/// ```
/// assert_eq!(lessor_server::LEASES_PATH, "/leases");
/// ```
pub const LEASES_PATH: &str = "/leases";

/// The path of a forwarded time-to-live lookup (etcd's `leasehttp.LeaseInternalPrefix`).
///
/// # Examples
///
/// ```
/// assert_eq!(lessor_server::LEASES_INTERNAL_PATH, "/leases/internal");
/// ```
pub const LEASES_INTERNAL_PATH: &str = "/leases/internal";

/// The largest request body the peer listeners read, 64 KiB; a larger one is answered
/// 413. A keep-alive or a time-to-live request is a few bytes.
///
/// # Examples
///
/// ```
/// assert_eq!(lessor_server::LEASE_HTTP_BODY_LIMIT, 64 * 1024);
/// ```
pub const LEASE_HTTP_BODY_LIMIT: usize = 64 << 10;

/// How long [`renew_http`] and [`time_to_live_http`] wait for a peer's whole answer.
///
/// # Examples
///
/// ```
/// assert_eq!(lessor_server::LEASE_HTTP_TIMEOUT.as_secs(), 5);
/// ```
pub const LEASE_HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a peer listener waits for a whole request body: etcd's peer `http.Server`
/// has a 5 minute `ReadTimeout`.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How long a peer listener waits for a request's headers (hyper's default, made explicit).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of an oversized or unwanted request body is read and thrown away so that the
/// answer can be delivered on an orderly close (net/http discards up to 256 KiB the same
/// way); beyond it the connection is closed as it is.
const DRAIN_LIMIT: usize = 256 << 10;

/// The largest answer the client helpers read: etcd's `maxLeaseHTTPResponseSize` (a
/// time-to-live answer carries every key of the lease).
const RESPONSE_LIMIT: usize = 100 << 20;

/// The content type of every protobuf body, both ways.
const PROTOBUF: &str = "application/protobuf";

/// The text of a 404 for a lease that is gone (etcd's `lease.ErrLeaseNotFound`).
const LEASE_NOT_FOUND: &str = "lease not found";
