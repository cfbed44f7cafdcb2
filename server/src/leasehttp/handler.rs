//! The two routes of the peer listeners: reads a request, answers it as etcd's
//! `leaseHandler.ServeHTTP` behind etcd's peer mux does.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use lessor::LeaseId;
use prost::Message;

use super::{
    BODY_READ_TIMEOUT, DRAIN_LIMIT, LEASES_INTERNAL_PATH, LEASES_PATH, LEASE_HTTP_BODY_LIMIT,
    LEASE_NOT_FOUND, PROTOBUF,
};
use crate::lease_svc::{secs_ceil, time_to_live};
use crate::proto::etcdserverpb::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
use crate::proto::leasepb::{LeaseInternalRequest, LeaseInternalResponse};
use crate::state::State;

/// Every answer: a whole body, in memory.
pub(super) type Answer = Response<Full<Bytes>>;

/// net/http's answer for a path no handler is registered for.
const PAGE_NOT_FOUND: &str = "404 page not found";

/// The two paths etcd's peer mux sends to the lease handler (exact matches: a pattern
/// without a trailing slash matches one path only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `POST /leases`: a keep-alive.
    Renew,
    /// `POST /leases/internal`: a time-to-live lookup.
    TimeToLive,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        match path {
            LEASES_PATH => Some(Route::Renew),
            LEASES_INTERNAL_PATH => Some(Route::TimeToLive),
            _ => None,
        }
    }
}

/// Why a request body was not taken.
#[derive(Debug, PartialEq, Eq)]
enum BodyError {
    /// Over [`LEASE_HTTP_BODY_LIMIT`].
    TooLarge,
    /// The connection failed or closed mid-body, the framing was bad, or the body did not
    /// arrive within [`BODY_READ_TIMEOUT`].
    Unreadable,
}

/// hyper's service: one answer per request, never an error (a failure is a status code).
pub(super) async fn handle<B>(state: Arc<State>, request: Request<B>) -> Result<Answer, Infallible>
where
    B: Body<Data = Bytes>,
{
    Ok(answer(&state, request).await)
}

/// The mux, then etcd's handler: the method first, then the body, then the route.
async fn answer<B>(state: &State, request: Request<B>) -> Answer
where
    B: Body<Data = Bytes>,
{
    let Some(route) = Route::of(request.uri().path()) else {
        discard(request.into_body()).await;
        return text(StatusCode::NOT_FOUND, PAGE_NOT_FOUND);
    };
    if request.method() != Method::POST {
        discard(request.into_body()).await;
        let mut answer = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        answer
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return answer;
    }
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, read_body(request.into_body())).await {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
        }
        Ok(Err(BodyError::Unreadable)) | Err(_) => {
            return text(StatusCode::BAD_REQUEST, "error reading body")
        }
    };
    match route {
        Route::Renew => renew(state, &body),
        Route::TimeToLive => lookup(state, &body),
    }
}

/// `/leases`: renews the lease, answers its granted TTL.
fn renew(state: &State, body: &[u8]) -> Answer {
    let Ok(request) = LeaseKeepAliveRequest::decode(body) else {
        return text(StatusCode::BAD_REQUEST, "error unmarshalling request");
    };
    match state.lessor.renew(LeaseId::new(request.id)) {
        Ok(ttl) => protobuf(&LeaseKeepAliveResponse {
            header: Some(state.header()),
            id: request.id,
            ttl: secs_ceil(ttl),
        }),
        Err(err) => refusal(&err),
    }
}

/// `/leases/internal`: etcd's `LeaseTimeToLive` answer for a lease this member has; 404 for
/// one it has not (where the gRPC call answers TTL -1).
fn lookup(state: &State, body: &[u8]) -> Answer {
    let Ok(request) = LeaseInternalRequest::decode(body) else {
        return text(StatusCode::BAD_REQUEST, "error unmarshalling request");
    };
    // etcd dereferences the field unchecked (a missing one panics its handler); a missing
    // one reads as lease 0 here, which no grant hands out.
    let request = request.lease_time_to_live_request.unwrap_or_default();
    if state.lessor.lookup(LeaseId::new(request.id)).is_none() {
        return text(StatusCode::NOT_FOUND, LEASE_NOT_FOUND);
    }
    protobuf(&LeaseInternalResponse {
        lease_time_to_live_response: Some(time_to_live(state, &request)),
    })
}

/// An engine refusal: 404 for a lease that is gone or expired (etcd's `Renew` says
/// `ErrLeaseNotFound` for both), 400 with the engine's message for anything else.
fn refusal(err: &lessor::Error) -> Answer {
    match err {
        lessor::Error::LeaseNotFound { .. } | lessor::Error::LeaseExpired { .. } => {
            text(StatusCode::NOT_FOUND, LEASE_NOT_FOUND)
        }
        other => text(StatusCode::BAD_REQUEST, &other.to_string()),
    }
}

/// Reads a whole body, keeping at most [`LEASE_HTTP_BODY_LIMIT`] bytes. A body over the
/// limit is read on, and thrown away, up to [`DRAIN_LIMIT`] more bytes, so that the 413
/// is delivered on an orderly close; a larger one (by its `Content-Length`, or as it
/// arrives) is refused at once.
async fn read_body<B>(body: B) -> Result<Vec<u8>, BodyError>
where
    B: Body<Data = Bytes>,
{
    let give_up = LEASE_HTTP_BODY_LIMIT + DRAIN_LIMIT;
    let declared = body.size_hint().exact();
    if declared.is_some_and(|n| usize::try_from(n).map_or(true, |n| n > give_up)) {
        return Err(BodyError::TooLarge);
    }
    let mut body = std::pin::pin!(body);
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Unreadable)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total = total.saturating_add(data.len());
        if total <= LEASE_HTTP_BODY_LIMIT {
            kept.extend_from_slice(&data);
        } else if total > give_up {
            return Err(BodyError::TooLarge);
        }
    }
    if total > LEASE_HTTP_BODY_LIMIT {
        return Err(BodyError::TooLarge);
    }
    Ok(kept)
}

/// Reads and throws away a body that is not wanted (bounded by [`DRAIN_LIMIT`] and
/// [`BODY_READ_TIMEOUT`]), so that the answer is not lost to a connection reset.
async fn discard<B>(body: B)
where
    B: Body<Data = Bytes>,
{
    let _ = tokio::time::timeout(BODY_READ_TIMEOUT, read_body(body)).await;
}

/// A plain-text answer, as net/http's `http.Error` writes one.
fn text(status: StatusCode, message: &str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *answer.status_mut() = status;
    let headers = answer.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    answer
}

/// A 200 with a protobuf message.
fn protobuf(message: &impl Message) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(message.encode_to_vec())));
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    fn chunked(chunks: usize, size: usize) -> impl Body<Data = Bytes, Error = Infallible> {
        let frames = (0..chunks).map(move |_| Ok(Frame::data(Bytes::from(vec![7u8; size]))));
        StreamBody::new(tokio_stream::iter(frames))
    }

    #[test]
    fn only_the_two_exact_paths_are_routed() {
        assert_eq!(Route::of("/leases"), Some(Route::Renew));
        assert_eq!(Route::of("/leases/internal"), Some(Route::TimeToLive));
        for other in [
            "/",
            "/leases/",
            "/leases/internal/",
            "/lease",
            "/leases/x",
            "",
        ] {
            assert_eq!(Route::of(other), None, "{other:?}");
        }
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_limit_is_read() {
        let body = Full::new(Bytes::from(vec![1u8; LEASE_HTTP_BODY_LIMIT]));
        assert_eq!(read_body(body).await.unwrap().len(), LEASE_HTTP_BODY_LIMIT);
        let in_pieces = chunked(16, LEASE_HTTP_BODY_LIMIT / 16);
        assert_eq!(
            read_body(in_pieces).await.unwrap().len(),
            LEASE_HTTP_BODY_LIMIT
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_too_large_however_it_comes() {
        let sized = Full::new(Bytes::from(vec![1u8; LEASE_HTTP_BODY_LIMIT + 1]));
        assert_eq!(read_body(sized).await, Err(BodyError::TooLarge));
        let huge = Full::new(Bytes::from(vec![
            1u8;
            LEASE_HTTP_BODY_LIMIT + DRAIN_LIMIT + 1
        ]));
        assert_eq!(read_body(huge).await, Err(BodyError::TooLarge));
        let streamed = chunked(17, LEASE_HTTP_BODY_LIMIT / 16);
        assert_eq!(read_body(streamed).await, Err(BodyError::TooLarge));
        let endless = chunked(usize::MAX, 1 << 14);
        assert_eq!(read_body(endless).await, Err(BodyError::TooLarge));
    }

    #[test]
    fn error_answers_are_plain_text_lines() {
        let answer = text(StatusCode::NOT_FOUND, LEASE_NOT_FOUND);
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
        assert_eq!(answer.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
        let gone = refusal(&lessor::Error::LeaseExpired {
            id: LeaseId::new(9),
        });
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
        let refused = refusal(&lessor::Error::NotPrimary);
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    }
}
