//! What can go wrong: [`ServerError`] when a server starts or stops, and the mapping of the
//! engine's [`lessor::Error`] to the gRPC statuses (codes and messages) etcd answers with.

use std::io;
use std::path::PathBuf;

use tonic::Status;

use crate::config::ConfigError;

/// Why a server could not start, or stopped with a failure.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The lease engine could not be opened on the data directory.
    #[error("cannot open the lessor in {dir}: {source}")]
    Lessor {
        /// The data directory.
        dir: PathBuf,
        /// The engine's error.
        source: lessor::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {url}: {source}; is another server using the port?")]
    Bind {
        /// The URL (with the address it resolved to) that was to be bound.
        url: String,
        /// The socket error.
        source: io::Error,
    },
    /// A listener failed while serving.
    #[error("the listener on {addr} failed: {source}")]
    Serve {
        /// The listener's address.
        addr: std::net::SocketAddr,
        /// tonic's transport error.
        source: tonic::transport::Error,
    },
    /// The thread that drains expired leases could not be started.
    #[error("cannot start the thread that drains expired leases: {0}")]
    Thread(io::Error),
    /// A task of the server panicked or was cancelled.
    #[error("a server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// etcd's message for a missing lease (`rpctypes.ErrGRPCLeaseNotFound`).
pub(crate) const LEASE_NOT_FOUND: &str = "etcdserver: requested lease not found";
/// etcd's message for a request over `--max-request-bytes` (`ErrGRPCRequestTooLarge`).
pub(crate) const REQUEST_TOO_LARGE: &str = "etcdserver: request is too large";
/// etcd's message for a range at a revision older than the current one (`ErrGRPCCompacted`).
pub(crate) const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
/// etcd's message for a range at a revision not yet reached (`ErrGRPCFutureRev`).
pub(crate) const FUTURE_REV: &str = "etcdserver: mvcc: required revision is a future revision";

/// The gRPC status etcd answers with for an engine error.
///
/// Engine errors etcd has no counterpart for (the log failing, a stopped engine) keep the
/// engine's own message, which says what went wrong and what to do.
pub(crate) fn status_of(err: &lessor::Error) -> Status {
    use lessor::Error as E;
    match err {
        E::LeaseNotFound { .. } | E::LeaseExpired { .. } => Status::not_found(LEASE_NOT_FOUND),
        E::LeaseExists { .. } => Status::failed_precondition("etcdserver: lease already exists"),
        E::TtlTooLarge { .. } => Status::out_of_range("etcdserver: too large lease TTL"),
        E::EmptyKey => Status::invalid_argument("etcdserver: key is not provided"),
        E::KeyNotFound => Status::invalid_argument("etcdserver: key not found"),
        E::KeyTooLarge { .. } | E::RecordTooLarge { .. } => {
            Status::invalid_argument(REQUEST_TOO_LARGE)
        }
        E::NotPrimary => Status::unavailable("etcdserver: not leader"),
        E::Stopped => Status::unavailable("etcdserver: server stopped"),
        E::StoreDisabled => Status::failed_precondition(format!("lessor: {err}")),
        other => Status::internal(format!("lessor: {other}")),
    }
}

/// The status for a blocking task that panicked or was cancelled.
pub(crate) fn status_of_join(err: &tokio::task::JoinError) -> Status {
    Status::internal(format!("lessor: the engine call did not finish: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lessor::LeaseId;
    use tonic::Code;

    #[test]
    fn lease_errors_map_to_etcds_statuses() {
        let id = LeaseId::new(5);
        let cases = [
            (
                lessor::Error::LeaseNotFound { id },
                Code::NotFound,
                LEASE_NOT_FOUND,
            ),
            (
                lessor::Error::LeaseExists { id },
                Code::FailedPrecondition,
                "etcdserver: lease already exists",
            ),
            (
                lessor::Error::TtlTooLarge {
                    given: lessor::MAX_TTL * 2,
                    max: lessor::MAX_TTL,
                },
                Code::OutOfRange,
                "etcdserver: too large lease TTL",
            ),
            (
                lessor::Error::EmptyKey,
                Code::InvalidArgument,
                "etcdserver: key is not provided",
            ),
            (
                lessor::Error::KeyNotFound,
                Code::InvalidArgument,
                "etcdserver: key not found",
            ),
        ];
        for (err, code, message) in cases {
            let status = status_of(&err);
            assert_eq!(status.code(), code, "{err}");
            assert_eq!(status.message(), message, "{err}");
        }
        let io = status_of(&lessor::Error::Io(io::Error::other("disk on fire")));
        assert_eq!(io.code(), Code::Internal);
        assert!(io.message().contains("disk on fire"), "{}", io.message());
    }
}
