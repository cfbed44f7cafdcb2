//! One peer listener's accept loop: HTTP/1.1 connections served by hyper until the server's
//! stop signal, then a graceful close (see the ground rules in [`super`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::handler::handle;
use super::HEADER_READ_TIMEOUT;
use crate::errors::ServerError;
use crate::shutdown::StopSignal;
use crate::state::State;

/// How long the loop pauses after a failed accept (out of file descriptors, mostly) before
/// it tries again, so that it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves leasehttp on `listener` until `signal` fires, then stops accepting, lets every
/// in-flight request finish and returns once every connection is closed.
///
/// Never fails: a failed accept is logged and retried, a failed connection is logged.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    signal: StopSignal,
) -> Result<(), ServerError> {
    let addr = listener.local_addr().ok();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let stopped = signal.stopped();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = ended {
                    tracing::warn!(error = %e, "a peer connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let connection = Connection { stream, peer, state: Arc::clone(&state) };
                    connections.spawn(connection.serve(&http, &graceful));
                }
                Err(e) => {
                    tracing::warn!(?addr, error = %e, "cannot accept a peer connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
    drop(listener);
    tracing::debug!(
        ?addr,
        open = graceful.count(),
        "peer listener closed: draining"
    );
    graceful.shutdown().await;
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// An accepted connection, before hyper takes it.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<State>,
}

impl Connection {
    /// The connection served until the client closes it, or until a graceful shutdown
    /// closes it after its in-flight request.
    fn serve(
        self,
        http: &http1::Builder,
        graceful: &GracefulShutdown,
    ) -> impl Future<Output = ()> + Send + 'static {
        let Connection {
            stream,
            peer,
            state,
        } = self;
        let _ = stream.set_nodelay(true);
        let service = service_fn(move |request| handle(Arc::clone(&state), request));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "peer connection ended with an error");
            }
        }
    }
}
