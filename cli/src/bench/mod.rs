//! `lessor bench`: a benchmark harness for lease and session-TTL workloads.
//!
//! Every scenario runs, in the same process and the same run, against three targets:
//!
//! - **lessor** ([`target`]), as its builder makes it, with its expiry thread running;
//! - **the etcd-style reference** ([`baseline`]): one mutex around a hash map and a binary heap,
//!   a checker thread that scans every 500 ms and hands out at most 1000 leases/s, i.e. the
//!   design of etcd's own lessor, which is what most people would reach for instead;
//! - **the floor** ([`floor`]) for the map operations: a bare `hashbrown::HashMap` per thread,
//!   the cost of the operation with nothing else around it.
//!
//! Each run reports throughput, sampled latency percentiles (HDR histogram, [`stats`]), memory
//! per lease (a counting global allocator, [`alloc`]), expiry lateness, and sanity checks that
//! compare the harness's own counts with what the engine shows ([`outcome`]), as a table or one
//! JSON object per run ([`report`]), optionally with an SVG ([`plot`]).
//!
//! Three scenarios measure one target instead, with no in-process reference ([`solo`]):
//! `recovery` (rebuilding N leases from the write-ahead log), `durable-grant` (grants through the
//! log under each fsync policy) and `grpc` (a load generator for any etcd-compatible server,
//! [`grpc`]), which is how lessor's server is compared with etcd itself.
//!
//! Files: [`args`] (command line and plan), [`values`] (what the arguments parse),
//! [`mod@run`] (orchestration), [`solo`] (orchestration of the one-target scenarios),
//! [`scenario`] (one file per workload, plus the threaded driver), [`rng`] (seeded randomness
//! and the id layout), [`progress`] (the progress bar).

mod alloc;
mod args;
mod baseline;
mod floor;
mod grpc;
mod outcome;
mod plot;
mod progress;
mod report;
mod rng;
mod run;
mod scenario;
mod solo;
mod stats;
mod target;
mod values;

pub(crate) use self::args::BenchArgs;
pub(crate) use self::run::run;
