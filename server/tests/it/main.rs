//! lessor-server's integration tests: a server started in-process on 127.0.0.1:0 over a
//! temporary data directory, driven by etcd's Rust client (`etcd-client`), by raw gRPC calls
//! (for what clients hide: TTL 0 answers, malformed bodies) and by the real `etcdctl`.
//!
//! Nothing here asserts a timing: expiry is polled with generous deadlines.

mod common;
mod errors;
mod etcdctl;
mod fuzz_regressions;
mod kv;
mod lease;
mod leasehttp;
mod lifecycle;
