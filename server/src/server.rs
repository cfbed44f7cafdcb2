//! [`Server`]: opens the engine, binds the listeners, serves until the shutdown future
//! resolves, then drains and stops.
//!
//! # Ground rules
//!
//! - Startup: bind every client and peer listener first (a taken port fails fast, before the
//!   log is replayed), then open the engine on the blocking pool (replay may take a while), then
//!   spawn one tonic server task per client listener and one leasehttp task per peer listener,
//!   all sharing one [`State`].
//! - The supervisor task owns the [`Stopper`]. It waits for the caller's shutdown future (or
//!   for a listener to fail), fires the stop signal — listeners stop accepting, open keep-alive
//!   streams end, in-flight calls finish — waits up to `shutdown_grace` for the listener tasks,
//!   aborts what is left, and only then stops the engine, which flushes its log and releases
//!   the data directory's lock.
//! - In [`ExpiryMode::Revoke`] the engine revokes expired leases itself (deleting their keys)
//!   and reports them on its expired channel; a named thread drains that channel (so expiry
//!   never stalls on a full channel) and ends when the engine is dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use lessor::{ExpiryMode, Lessor};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_stream::StreamExt;
use tonic::transport::server::TcpIncoming;

use crate::cluster::ClusterService;
use crate::coalesce::Coalesced;
use crate::config::{Config, ConfigError, HttpUrl, GRPC_OVERHEAD_BYTES};
use crate::errors::ServerError;
use crate::header::Identity;
use crate::kv_svc::KvService;
use crate::lease_svc::LeaseService;
use crate::leasehttp;
use crate::maintenance::MaintenanceService;
use crate::proto::etcdserverpb::cluster_server::ClusterServer;
use crate::proto::etcdserverpb::kv_server::KvServer;
use crate::proto::etcdserverpb::lease_server::LeaseServer;
use crate::proto::etcdserverpb::maintenance_server::MaintenanceServer;
use crate::proto::etcdserverpb::watch_server::WatchServer;
use crate::shutdown::Stopper;
use crate::state::{MemberInfo, State};
use crate::watch_svc::WatchService;

/// A running server.
///
/// # Examples
///
/// ```no_run
/// use lessor_server::{Config, Server};
///
/// # async fn run() -> Result<(), lessor_server::ServerError> {
/// let mut config = Config::new("./default.lessor");
/// config.listen_client_urls = vec!["http://127.0.0.1:0".parse()?];
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = Server::start(config, async {
///     let _ = stopped.await;
/// })
/// .await?;
/// println!("serving on {:?}", server.client_addrs());
/// stop.send(()).ok();
/// server.wait().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Server {
    client_addrs: Vec<SocketAddr>,
    peer_addrs: Vec<SocketAddr>,
    supervisor: JoinHandle<Result<(), ServerError>>,
}

impl Server {
    /// Opens the engine on `config.data_dir`, binds the client URLs (etcd's gRPC API) and the
    /// peer URLs (leasehttp) and starts serving; the server shuts down cleanly once
    /// `shutdown` resolves (see [`Server::wait`]).
    ///
    /// Must be called within a multi-threaded tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ServerError::Config`] for no client URL or one that does not resolve,
    /// [`ServerError::Bind`] when a port is taken, [`ServerError::Lessor`] when the data
    /// directory cannot be opened (in use by another server, damaged log...).
    pub async fn start<F>(config: Config, shutdown: F) -> Result<Server, ServerError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if config.listen_client_urls.is_empty() {
            return Err(ConfigError::BadUrl {
                url: String::new(),
                reason: "give at least one client URL to listen on",
            }
            .into());
        }
        let listeners = bind_all(&config.listen_client_urls).await?;
        let client_addrs = bound_addrs(&listeners, "a bound client listener")?;
        let peer_listeners = bind_all(&config.listen_peer_urls).await?;
        let peer_addrs = bound_addrs(&peer_listeners, "a bound peer listener")?;
        let lessor = Arc::new(open_lessor(&config).await?);
        spawn_expired_drain(&lessor)?;

        let (stopper, signal) = Stopper::new();
        let state = Arc::new(State::new(
            Arc::clone(&lessor),
            Identity::for_data_dir(&config.data_dir),
            member_info(&config, &client_addrs),
            config.data_dir.clone(),
            config.max_request_bytes,
            signal.clone(),
        ));
        let max_decode = config.max_request_bytes.saturating_add(GRPC_OVERHEAD_BYTES);
        let mut tasks = JoinSet::new();
        for (listener, addr) in listeners.into_iter().zip(client_addrs.iter().copied()) {
            let router = routes(&state, max_decode);
            let stopped = signal.clone().stopped();
            // Answers of many streams leave together (coalesce.rs).
            let incoming = TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .map(|conn| conn.map(Coalesced::new));
            tasks.spawn(async move {
                router
                    .serve_with_incoming_shutdown(incoming, stopped)
                    .await
                    .map_err(|source| ServerError::Serve { addr, source })
            });
            tracing::info!(%addr, "serving etcd's client API");
        }
        // ===== peer listeners (leasehttp) =====
        // etcd's member-to-member lease forwarding (`POST /leases`, `/leases/internal`), in
        // `tasks` so that it is drained and stopped with the client listeners.
        for (listener, addr) in peer_listeners.into_iter().zip(peer_addrs.iter().copied()) {
            tasks.spawn(leasehttp::serve(
                listener,
                Arc::clone(&state),
                signal.clone(),
            ));
            tracing::info!(%addr, "serving leasehttp to peers");
        }
        drop(signal);

        let grace = config.shutdown_grace;
        let supervisor = tokio::spawn(supervise(shutdown, stopper, tasks, lessor, grace));
        Ok(Server {
            client_addrs,
            peer_addrs,
            supervisor,
        })
    }

    /// The addresses the client listeners are bound to, in the order of
    /// `listen_client_urls` (useful with port 0).
    pub fn client_addrs(&self) -> &[SocketAddr] {
        &self.client_addrs
    }

    /// The addresses the peer listeners (leasehttp: `POST /leases`, `/leases/internal`) are
    /// bound to, in the order of `listen_peer_urls` (useful with port 0); empty when there is
    /// no peer URL.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use lessor::LeaseId;
    /// use lessor_server::{renew_http, Config, HttpUrl, Server};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut config = Config::new("./default.lessor");
    /// config.listen_client_urls = vec!["http://127.0.0.1:0".parse()?];
    /// config.listen_peer_urls = vec!["http://127.0.0.1:0".parse()?];
    /// let server = Server::start(config, std::future::pending()).await?;
    /// let peer_url = HttpUrl::from_addr(server.peer_addrs()[0]).to_string();
    /// let ttl = renew_http(&peer_url, LeaseId::new(7)).await?;
    /// # let _ = ttl;
    /// # Ok(())
    /// # }
    /// ```
    pub fn peer_addrs(&self) -> &[SocketAddr] {
        &self.peer_addrs
    }

    /// Waits until the server has shut down: the shutdown future resolved (or a listener
    /// failed), in-flight calls finished and the engine stopped with its log flushed.
    ///
    /// # Errors
    ///
    /// [`ServerError::Serve`] if a listener failed, [`ServerError::Task`] if a server task
    /// panicked.
    pub async fn wait(self) -> Result<(), ServerError> {
        self.supervisor.await?
    }
}

/// Runs a server until `shutdown` resolves: [`Server::start`] then [`Server::wait`].
///
/// # Errors
///
/// As [`Server::start`] and [`Server::wait`].
pub async fn serve<F>(config: Config, shutdown: F) -> Result<(), ServerError>
where
    F: Future<Output = ()> + Send + 'static,
{
    Server::start(config, shutdown).await?.wait().await
}

/// Binds each URL's first resolved address.
async fn bind_all(urls: &[HttpUrl]) -> Result<Vec<TcpListener>, ServerError> {
    let mut listeners = Vec::with_capacity(urls.len());
    for url in urls {
        let addr = url.socket_addrs()?[0];
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                url: format!("{url} ({addr})"),
                source,
            })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// The addresses bound listeners have (their ports, for port 0).
fn bound_addrs(listeners: &[TcpListener], what: &str) -> Result<Vec<SocketAddr>, ServerError> {
    listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ServerError::Bind {
            url: what.to_owned(),
            source,
        })
}

/// Opens the engine on the data directory, replaying its log.
async fn open_lessor(config: &Config) -> Result<Lessor, ServerError> {
    let builder = Lessor::builder()
        .data_dir(&config.data_dir)
        .fsync(config.fsync)
        .min_ttl(config.min_ttl)
        .tick(config.tick)
        .expiry_mode(ExpiryMode::Revoke)
        .key_value_store(true);
    let dir = config.data_dir.clone();
    let lessor = tokio::task::spawn_blocking(move || builder.build())
        .await?
        .map_err(|source| ServerError::Lessor { dir, source })?;
    if let Some(r) = lessor.recovery() {
        tracing::info!(
            dir = %config.data_dir.display(),
            leases = r.leases,
            keys = r.keys,
            records = r.records,
            "recovered the log"
        );
    }
    Ok(lessor)
}

/// Drains the engine's expired channel on a thread of its own, which ends with the engine.
fn spawn_expired_drain(lessor: &Lessor) -> Result<(), ServerError> {
    let expired = lessor.expired_leases();
    std::thread::Builder::new()
        .name("lessor-expired".to_owned())
        .spawn(move || {
            for batch in expired.iter() {
                for lease in &batch {
                    tracing::debug!(
                        lease = lease.id().get(),
                        keys = lease.keys().len(),
                        "lease expired: revoked with its keys"
                    );
                }
            }
        })
        .map_err(ServerError::Thread)?;
    Ok(())
}

/// What `MemberList` says about this member: the advertised client URLs (else the bound
/// ones) and the peer URLs.
fn member_info(config: &Config, bound: &[SocketAddr]) -> MemberInfo {
    let client_urls = if config.advertise_client_urls.is_empty() {
        bound
            .iter()
            .map(|a| HttpUrl::from_addr(*a).to_string())
            .collect()
    } else {
        config
            .advertise_client_urls
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    MemberInfo {
        name: config.name.clone(),
        peer_urls: config
            .listen_peer_urls
            .iter()
            .map(ToString::to_string)
            .collect(),
        client_urls,
    }
}

/// etcd's client services over one shared state. Unknown services answer Unimplemented
/// (tonic's router default).
fn routes(state: &Arc<State>, max_decode: usize) -> tonic::transport::server::Router {
    tonic::transport::Server::builder()
        .add_service(
            LeaseServer::new(LeaseService::new(Arc::clone(state)))
                .max_decoding_message_size(max_decode),
        )
        .add_service(
            KvServer::new(KvService::new(Arc::clone(state))).max_decoding_message_size(max_decode),
        )
        .add_service(WatchServer::new(WatchService).max_decoding_message_size(max_decode))
        .add_service(
            MaintenanceServer::new(MaintenanceService::new(Arc::clone(state)))
                .max_decoding_message_size(max_decode),
        )
        .add_service(
            ClusterServer::new(ClusterService::new(Arc::clone(state)))
                .max_decoding_message_size(max_decode),
        )
}

/// Waits for shutdown (or a failed listener), drains, then stops the engine.
async fn supervise<F>(
    shutdown: F,
    stopper: Stopper,
    mut tasks: JoinSet<Result<(), ServerError>>,
    lessor: Arc<Lessor>,
    grace: std::time::Duration,
) -> Result<(), ServerError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut failure = None;
    tokio::select! {
        () = shutdown => tracing::info!("shutting down: draining in-flight calls"),
        Some(ended) = tasks.join_next() => {
            let err = flatten(ended).err();
            tracing::error!(error = ?err, "a listener stopped on its own: shutting down");
            failure = err;
        }
    }
    stopper.stop();
    let drain = async {
        while let Some(ended) = tasks.join_next().await {
            if let Err(e) = flatten(ended) {
                failure.get_or_insert(e);
            }
        }
    };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!(
            ?grace,
            "calls still open after the grace period: closing them"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    let engine = Arc::clone(&lessor);
    tokio::task::spawn_blocking(move || engine.stop()).await?;
    drop(lessor);
    tracing::info!("stopped: the log is flushed");
    failure.map_or(Ok(()), Err)
}

fn flatten(
    ended: Result<Result<(), ServerError>, tokio::task::JoinError>,
) -> Result<(), ServerError> {
    ended.map_err(ServerError::Task).and_then(|r| r)
}
