//! The scenarios, one file each. Every scenario is a function generic over the target it runs
//! against (`run::<T: Target>` for the map operations, `run::<E: Engine>` for those that need
//! expiry or promote), so lessor, the reference lessor and the floor run the same code on the
//! same workload; `bench::run` calls each one once per target and lease count.
//!
//! | scenario | one operation | floor | checked against the engine |
//! |---|---|---|---|
//! | [`grant`] | a grant of a fresh id (N -> 2N) | insert | leases = N + grants |
//! | [`renew`] | a renew of a random lease | lookup + store | every renew found its lease |
//! | [`revoke`] | a revoke, keys included (N -> N/2) | remove | leases = N - revokes |
//! | [`attach`] | an attach of K fresh keys | K inserts | every key maps back |
//! | [`mixed`] | a session's renew, or its replacement | - | leases = N + grants - revokes |
//! | [`expiry`] | a lease delivered as expired | - | leases = N - revokes |
//! | [`promote`] | a lease promoted | - | every lease has a deadline |
//! | [`recovery`] | a lease rebuilt by a reopen | - | leases and keys rebuilt = N, N x K |
//! | [`durable`] | a grant through the log | - | leases (and, reopened, the log) = N + grants |
//!
//! recovery and durable-grant share [`logdir`] (a temporary data directory and a durable
//! lessor on it); they, and grpc (`bench::grpc`), are run by `bench::solo`.

pub(crate) mod attach;
pub(crate) mod common;
pub(crate) mod driver;
pub(crate) mod durable;
pub(crate) mod expiry;
pub(crate) mod grant;
pub(crate) mod logdir;
pub(crate) mod mixed;
pub(crate) mod promote;
pub(crate) mod recovery;
pub(crate) mod renew;
pub(crate) mod revoke;
