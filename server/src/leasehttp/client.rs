//! The client side of leasehttp, etcd's `RenewHTTP` and `TimeToLiveHTTP`: one POST to a
//! peer, its status code mapped back to an error.

use std::error::Error as StdError;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lessor::LeaseId;
use prost::Message;

use super::{LEASES_INTERNAL_PATH, LEASES_PATH, LEASE_HTTP_TIMEOUT, PROTOBUF, RESPONSE_LIMIT};
use crate::config::{ConfigError, HttpUrl};
use crate::proto::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use crate::proto::leasepb::{LeaseInternalRequest, LeaseInternalResponse};

/// Why a forwarded renew or time-to-live failed.
///
/// # Examples
///
/// ```
/// use lessor::LeaseId;
/// use lessor_server::{renew_http, LeaseHttpError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Peer URLs are plain http://host:port, as the peer listeners serve them.
/// let err = renew_http("https://127.0.0.1:2380", LeaseId::new(1)).await.unwrap_err();
/// assert!(matches!(err, LeaseHttpError::Url(_)));
///
/// let gone = LeaseHttpError::LeaseNotFound { id: LeaseId::new(0x2a) };
/// assert_eq!(gone.to_string(), "lease 42 (0x2a) not found on the peer: grant a new lease");
/// # }
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LeaseHttpError {
    /// The peer has no such lease, or it has expired (404, etcd's `ErrLeaseNotFound`).
    #[error("lease {id} ({id:#x}) not found on the peer: grant a new lease")]
    LeaseNotFound {
        /// The lease asked about.
        id: LeaseId,
    },
    /// The peer refused with a message (400): not primary, stopped, a malformed request...
    #[error("the peer refused the request: {message}")]
    Refused {
        /// The peer's message, without its trailing newline.
        message: String,
    },
    /// The peer had not caught up with its applied index in time (408, etcd's
    /// `ErrLeaseHTTPTimeout`).
    #[error("waiting for node to catch up its applied index has timed out: retry")]
    NotCaughtUp,
    /// The peer answered with a status this protocol does not use.
    #[error("the peer answered {status}: {body}")]
    UnexpectedStatus {
        /// The HTTP status code.
        status: u16,
        /// The answer's body, as text (lossy), without its trailing newline.
        body: String,
    },
    /// A 200 whose body is not the expected protobuf message.
    #[error("the peer's answer does not decode: {0}; is the URL a lessor or etcd peer URL?")]
    Decode(#[source] prost::DecodeError),
    /// A 200 about another lease than the one asked about.
    #[error("asked about lease {asked}, the peer answered about lease {answered}")]
    IdMismatch {
        /// The lease asked about.
        asked: LeaseId,
        /// The lease the answer names.
        answered: LeaseId,
    },
    /// The answer is over the size a client reads (etcd's 100 MiB).
    #[error("the peer's answer is over {limit} bytes: is the URL a lessor or etcd peer URL?")]
    ResponseTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// No whole answer within [`LEASE_HTTP_TIMEOUT`].
    #[error("no answer from {url} within {timeout:?}: is the peer up and reachable?")]
    TimedOut {
        /// The URL posted to.
        url: String,
        /// How long the client waited.
        timeout: Duration,
    },
    /// The peer could not be reached, or the connection failed mid-answer.
    #[error("cannot talk to {url}: {source}; is the peer up and is the URL its peer URL?")]
    Transport {
        /// The URL posted to.
        url: String,
        /// The HTTP client's error.
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The peer URL is not `http://host:port`.
    #[error(transparent)]
    Url(#[from] ConfigError),
}

/// Renews lease `id` on the member at `peer_url` (`http://host:port`, one of its
/// `--listen-peer-urls`) with `POST /leases`, etcd's `RenewHTTP`, and returns the lease's
/// granted TTL in seconds.
///
/// Waits at most [`LEASE_HTTP_TIMEOUT`] for the answer; wrap the
/// call in [`tokio::time::timeout`] for a shorter deadline.
///
/// # Errors
///
/// [`LeaseHttpError::LeaseNotFound`] for a lease that is gone or expired,
/// [`LeaseHttpError::Refused`] with the peer's message for any other refusal, and the
/// other variants for a peer that cannot be reached or answers something unexpected.
///
/// # Examples
///
/// ```no_run
/// use lessor::LeaseId;
/// use lessor_server::{renew_http, LeaseHttpError};
///
/// # async fn run() -> Result<(), LeaseHttpError> {
/// match renew_http("http://127.0.0.1:2380", LeaseId::new(0x694d)).await {
///     Ok(ttl) => println!("renewed for {ttl}s"),
///     Err(LeaseHttpError::LeaseNotFound { id }) => println!("lease {id:x} is gone"),
///     Err(other) => return Err(other),
/// }
/// # Ok(())
/// # }
/// ```
pub async fn renew_http(peer_url: &str, id: LeaseId) -> Result<i64, LeaseHttpError> {
    let request = LeaseKeepAliveRequest { id: id.get() };
    let body = post(peer_url, LEASES_PATH, id, request.encode_to_vec()).await?;
    let answer = LeaseKeepAliveResponse::decode(body).map_err(LeaseHttpError::Decode)?;
    check_id(id, answer.id)?;
    Ok(answer.ttl)
}

/// Looks lease `id` up on the member at `peer_url` (`http://host:port`, one of its
/// `--listen-peer-urls`) with `POST /leases/internal`, etcd's `TimeToLiveHTTP`: its
/// remaining and granted TTL in seconds, and its keys if `keys`.
///
/// Waits at most [`LEASE_HTTP_TIMEOUT`] for the answer.
///
/// # Errors
///
/// As [`renew_http`]: [`LeaseHttpError::LeaseNotFound`] for a lease the peer does not
/// have.
///
/// # Examples
///
/// ```no_run
/// use lessor::LeaseId;
///
/// # async fn run() -> Result<(), lessor_server::LeaseHttpError> {
/// let answer =
///     lessor_server::time_to_live_http("http://127.0.0.1:2380", LeaseId::new(0x694d), true)
///         .await?;
/// println!("{}s of {}s left, {} keys", answer.ttl, answer.granted_ttl, answer.keys.len());
/// # Ok(())
/// # }
/// ```
pub async fn time_to_live_http(
    peer_url: &str,
    id: LeaseId,
    keys: bool,
) -> Result<LeaseTimeToLiveResponse, LeaseHttpError> {
    let request = LeaseInternalRequest {
        lease_time_to_live_request: Some(LeaseTimeToLiveRequest { id: id.get(), keys }),
    };
    let body = post(peer_url, LEASES_INTERNAL_PATH, id, request.encode_to_vec()).await?;
    let answer = LeaseInternalResponse::decode(body)
        .map_err(LeaseHttpError::Decode)?
        .lease_time_to_live_response
        .unwrap_or_default();
    check_id(id, answer.id)?;
    Ok(answer)
}

/// POSTs a protobuf body to `path` on the peer and returns the body of a 200; any other
/// status is mapped to its error.
async fn post(
    peer_url: &str,
    path: &str,
    id: LeaseId,
    body: Vec<u8>,
) -> Result<Bytes, LeaseHttpError> {
    let url = format!("{}{path}", peer_url.parse::<HttpUrl>()?);
    let uri: Uri = url.parse().map_err(|_| ConfigError::BadUrl {
        url: peer_url.to_owned(),
        reason: "the host is not one an HTTP request can name",
    })?;
    let mut request = Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    request
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let exchange = async {
        let answer = client.request(request).await?;
        let status = answer.status();
        let body = Limited::new(answer.into_body(), RESPONSE_LIMIT)
            .collect()
            .await?
            .to_bytes();
        Ok::<_, Box<dyn StdError + Send + Sync>>((status, body))
    };
    let (status, body) = match tokio::time::timeout(LEASE_HTTP_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return Err(LeaseHttpError::ResponseTooLarge {
                limit: RESPONSE_LIMIT,
            })
        }
        Ok(Err(source)) => return Err(LeaseHttpError::Transport { url, source }),
        Err(_) => {
            return Err(LeaseHttpError::TimedOut {
                url,
                timeout: LEASE_HTTP_TIMEOUT,
            })
        }
    };
    match status {
        StatusCode::OK => Ok(body),
        StatusCode::NOT_FOUND => Err(LeaseHttpError::LeaseNotFound { id }),
        StatusCode::REQUEST_TIMEOUT => Err(LeaseHttpError::NotCaughtUp),
        StatusCode::BAD_REQUEST => Err(LeaseHttpError::Refused {
            message: line(&body),
        }),
        other => Err(LeaseHttpError::UnexpectedStatus {
            status: other.as_u16(),
            body: line(&body),
        }),
    }
}

/// An answer about another lease is an error, as etcd's helpers have it.
fn check_id(asked: LeaseId, answered: i64) -> Result<(), LeaseHttpError> {
    if answered == asked.get() {
        Ok(())
    } else {
        Err(LeaseHttpError::IdMismatch {
            asked,
            answered: LeaseId::new(answered),
        })
    }
}

/// A text body without the newline net/http's `http.Error` ends it with.
fn line(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_peer_url_fails_before_any_request() {
        for bad in [
            "127.0.0.1:2380",
            "https://127.0.0.1:2380",
            "http://127.0.0.1:2380/x",
        ] {
            let err = renew_http(bad, LeaseId::new(1)).await.unwrap_err();
            assert!(matches!(err, LeaseHttpError::Url(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn answers_about_another_lease_are_refused() {
        assert!(check_id(LeaseId::new(5), 5).is_ok());
        let err = check_id(LeaseId::new(5), 6).unwrap_err();
        assert!(err.to_string().contains("lease 6"), "{err}");
        assert_eq!(line(b"lease not found\n"), "lease not found");
    }
}
