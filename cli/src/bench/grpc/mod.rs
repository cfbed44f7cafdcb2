//! The `grpc` scenario's machinery: a load generator for any etcd-compatible server (etcd
//! itself, `lessor serve`), over tonic and tokio.
//!
//! Files: [`client`] (etcd's `Lease` calls and a keep-alive stream used one request at a
//! time) and [`load`] (the clients, their rounds, the checks against what the server lists).
//! `bench::solo` runs it at every operation and concurrency asked for.

pub(crate) mod client;
pub(crate) mod load;
