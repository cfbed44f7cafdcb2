//! The load generator: C clients, each a tokio task with its own `Lease` client (clients share
//! the pool's connections round-robin), doing one operation at a time for the duration.
//!
//! # Ground rules
//!
//! - A **round** is: list the server's leases; set up, untimed (revoke: N leases are granted by
//!   [`SETUP_TASKS`] tasks at once and dealt out to the clients; keep-alive: each client grants
//!   its lease and opens its stream); all clients meet at a barrier; each runs its timed loop until the budget is spent (revoke: or its leases run
//!   out); then every lease the round still holds is revoked (untimed) and the leases are
//!   listed again. grant and keep-alive run one round; revoke runs rounds until the duration
//!   is spent (`scenario::common::Rounds`).
//! - Each client times itself from the barrier to its last answer; a round's elapsed time is
//!   the longest client's. Every operation is timed (a gRPC round trip is tens of
//!   microseconds at least, so two clock reads are noise).
//! - An operation is one request and its answer: the next request waits for it, so a client
//!   has one request in flight, as etcd's `benchmark lease-keepalive` does.
//! - Checks compare what the clients counted with what the server lists (`LeaseLeases`): the
//!   grants it gained, the leases it holds after the cleanup, and every request answered
//!   without error.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::client::{KeepAlive, LeaseClient};
use crate::bench::args::{GrpcOp, TtlDist};
use crate::bench::outcome::Outcome;
use crate::bench::rng::{count_of, hash64};

/// Concurrent tasks that grant a revoke round's leases beforehand and revoke what a round
/// leaves, whatever the clients: that part is untimed, and one client alone would take long.
const SETUP_TASKS: usize = 32;
use crate::bench::scenario::common::Rounds;
use crate::bench::stats::{now, Hist};

/// The connections every client shares: `per_endpoint` to each endpoint, in order.
#[derive(Debug)]
pub(crate) struct Pool {
    conns: Vec<LeaseClient>,
}

impl Pool {
    /// Connects `per_endpoint` times to each endpoint.
    ///
    /// # Errors
    ///
    /// "cannot connect to URL: why", for the first endpoint that does not answer.
    pub(crate) async fn connect(endpoints: &[String], per_endpoint: usize) -> Result<Pool, String> {
        let mut conns = Vec::with_capacity(endpoints.len() * per_endpoint);
        for _ in 0..per_endpoint {
            for url in endpoints {
                let client = LeaseClient::connect(url)
                    .await
                    .map_err(|e| format!("cannot connect to {url}: {}", describe(&e)))?;
                conns.push(client);
            }
        }
        Ok(Pool { conns })
    }

    /// Client `i`'s handle: the connections taken round-robin (so clients alternate endpoints).
    fn client(&self, i: usize) -> LeaseClient {
        self.conns[i % self.conns.len()].clone()
    }

    /// The server's lease count, as the first endpoint lists it.
    async fn lease_count(&self) -> Result<u64, String> {
        let ids = self
            .client(0)
            .leases()
            .await
            .map_err(|s| status("LeaseLeases", &s))?;
        Ok(ids.len() as u64)
    }
}

/// One run of the load: an operation at a concurrency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// The operation.
    pub(crate) op: GrpcOp,
    /// Concurrent clients.
    pub(crate) clients: usize,
    /// The timed time.
    pub(crate) duration: Duration,
    /// revoke: leases granted beforehand per round.
    pub(crate) leases: u64,
    /// The TTLs granted (rounded up to whole seconds, etcd's unit).
    pub(crate) ttl: TtlDist,
    /// The seed of the TTLs.
    pub(crate) seed: u64,
}

impl Load {
    /// The TTL of client `c`'s `k`-th grant, in whole seconds.
    fn ttl_secs(&self, c: usize, k: u64) -> i64 {
        let ttl = self.ttl.sample(hash64(self.seed, ((c as u64) << 40) ^ k));
        i64::try_from(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).unwrap_or(i64::MAX)
    }
}

/// What a client does in its timed loop.
enum Work {
    /// Grant leases, keeping their ids.
    Grant,
    /// Renew `id` on `stream` (boxed: a stream is large next to the other variants).
    KeepAlive { stream: Box<KeepAlive>, id: i64 },
    /// Revoke `ids`, from the back.
    Revoke { ids: Vec<i64> },
}

/// One client's round.
#[derive(Debug, Default)]
struct ClientRun {
    ops: u64,
    ok: u64,
    took: Duration,
    hist: Hist,
    /// Leases this client holds after its timed loop: revoked in the cleanup.
    left: Vec<i64>,
    first_error: Option<String>,
}

/// Runs `load` on `pool`: one round, or rounds until the duration is spent for revoke.
///
/// # Errors
///
/// A failed set-up (a grant before the timed part, opening a stream, listing the leases).
/// Failures in the timed part are counted, not returned.
pub(crate) async fn measure(pool: &Pool, load: &Load) -> Result<(Outcome, Option<String>), String> {
    let mut out = Outcome::default();
    let mut first_error = None;
    let mut rounds = Rounds::new(load.duration);
    loop {
        let budget = rounds.left();
        let elapsed = round(pool, load, budget, &mut out, &mut first_error).await?;
        rounds.record(elapsed);
        if load.op != GrpcOp::Revoke || rounds.done() {
            return Ok((out, first_error));
        }
    }
}

/// One round (see the module's ground rules); adds its figures and checks to `out` and returns
/// its elapsed time.
async fn round(
    pool: &Pool,
    load: &Load,
    budget: Duration,
    out: &mut Outcome,
    first_error: &mut Option<String>,
) -> Result<Duration, String> {
    let before = pool.lease_count().await?;
    let mut dealt = vec![Vec::new(); load.clients];
    if load.op == GrpcOp::Revoke {
        let ids = grant_many(pool, load, load.leases).await?;
        for (k, id) in ids.into_iter().enumerate() {
            dealt[k % load.clients].push(id);
        }
    }
    let barrier = Arc::new(Barrier::new(load.clients));
    let mut tasks = JoinSet::new();
    for (c, ids) in dealt.into_iter().enumerate() {
        let (client, barrier, load) = (pool.client(c), barrier.clone(), *load);
        tasks.spawn(async move {
            let work = set_up(client.clone(), &load, c, ids).await;
            barrier.wait().await;
            Ok::<_, String>(timed(client, work?, &load, c, budget).await)
        });
    }
    let mut runs = Vec::with_capacity(load.clients);
    while let Some(joined) = tasks.join_next().await {
        runs.push(joined.map_err(|e| format!("a client task failed: {e}"))??);
    }
    let mut elapsed = Duration::ZERO;
    let (mut ops, mut ok) = (0, 0);
    for run in &mut runs {
        elapsed = elapsed.max(run.took);
        ops += run.ops;
        ok += run.ok;
        out.latency.merge(&run.hist);
        if first_error.is_none() {
            *first_error = run.first_error.take();
        }
    }
    out.ops += ops;
    out.errors += ops - ok;
    out.elapsed += elapsed;
    out.rounds += 1;
    out.check("requests that failed", 0, ops - ok);
    if load.op == GrpcOp::Grant {
        let after = pool.lease_count().await?;
        out.check(
            "leases the server lists = before + grants",
            before + ok,
            after,
        );
    }
    let left: Vec<i64> = runs.into_iter().flat_map(|r| r.left).collect();
    let held = left.len() as u64;
    let revoked = clean_up(pool, left).await;
    out.check(
        "leases held after the timed part, revoked in the cleanup",
        held,
        revoked,
    );
    let after = pool.lease_count().await?;
    out.check(
        "leases the server lists after the cleanup = before",
        before,
        after,
    );
    Ok(elapsed)
}

/// Client `c`'s untimed set-up for `load.op` (revoke: the leases dealt to it).
async fn set_up(
    mut client: LeaseClient,
    load: &Load,
    c: usize,
    ids: Vec<i64>,
) -> Result<Work, String> {
    match load.op {
        GrpcOp::Grant => Ok(Work::Grant),
        GrpcOp::KeepAlive => {
            let id = grant_one(&mut client, load.ttl_secs(c, 0)).await?;
            let (stream, _) = client
                .keep_alive(id)
                .await
                .map_err(|s| status("LeaseKeepAlive", &s))?;
            Ok(Work::KeepAlive {
                stream: Box::new(stream),
                id,
            })
        }
        GrpcOp::Revoke => Ok(Work::Revoke { ids }),
    }
}

/// Grants `count` leases on [`SETUP_TASKS`] tasks (untimed), returning their ids.
async fn grant_many(pool: &Pool, load: &Load, count: u64) -> Result<Vec<i64>, String> {
    let mut tasks = JoinSet::new();
    for t in 0..SETUP_TASKS {
        let (mut client, load) = (pool.client(t), *load);
        tasks.spawn(async move {
            let share = count_of(t, SETUP_TASKS, 0, count);
            let mut ids = Vec::with_capacity(share as usize);
            for k in 0..share {
                // Streams past the clients' own, so TTLs never repeat a client's draw.
                let ttl = load.ttl_secs(load.clients + t, k);
                ids.push(grant_one(&mut client, ttl).await?);
            }
            Ok::<_, String>(ids)
        });
    }
    let mut ids = Vec::with_capacity(count as usize);
    while let Some(joined) = tasks.join_next().await {
        ids.extend(joined.map_err(|e| format!("a set-up task failed: {e}"))??);
    }
    Ok(ids)
}

/// A grant that must succeed (set-up), returning the id.
async fn grant_one(client: &mut LeaseClient, ttl_secs: i64) -> Result<i64, String> {
    let resp = client
        .grant(ttl_secs)
        .await
        .map_err(|s| status("LeaseGrant", &s))?;
    if !resp.error.is_empty() || resp.id == 0 {
        return Err(format!(
            "LeaseGrant failed: {} (id {})",
            resp.error, resp.id
        ));
    }
    Ok(resp.id)
}

/// Client `c`'s timed loop: operations until `budget` is spent (or, for revoke, its leases
/// run out).
async fn timed(
    mut client: LeaseClient,
    mut work: Work,
    load: &Load,
    c: usize,
    budget: Duration,
) -> ClientRun {
    let mut run = ClientRun::default();
    let start = now();
    let deadline = start + budget;
    while now() < deadline {
        let op_start = now();
        let result = match &mut work {
            Work::Grant => {
                let ttl = load.ttl_secs(c, run.ops + 1);
                match client.grant(ttl).await {
                    Ok(r) if r.error.is_empty() && r.id != 0 => Ok(Some(r.id)),
                    Ok(r) => Err(format!(
                        "LeaseGrant answered id {}, error {:?}",
                        r.id, r.error
                    )),
                    Err(s) => Err(status("LeaseGrant", &s)),
                }
            }
            Work::KeepAlive { stream, id } => match stream.renew(*id).await {
                Ok(r) if r.id == *id && r.ttl > 0 => Ok(None),
                Ok(r) => Err(format!(
                    "LeaseKeepAlive of {id} answered id {}, TTL {}",
                    r.id, r.ttl
                )),
                Err(s) => Err(status("LeaseKeepAlive", &s)),
            },
            Work::Revoke { ids } => {
                let Some(id) = ids.pop() else { break };
                client
                    .revoke(id)
                    .await
                    .map(|_| None)
                    .map_err(|s| status("LeaseRevoke", &s))
            }
        };
        run.hist.record_duration(now() - op_start);
        run.ops += 1;
        match result {
            Ok(granted) => {
                run.ok += 1;
                run.left.extend(granted);
            }
            Err(e) => {
                run.first_error.get_or_insert(e);
            }
        }
    }
    run.took = now() - start;
    match work {
        Work::Grant => {}
        Work::KeepAlive { id, .. } => run.left.push(id),
        Work::Revoke { ids } => run.left.extend(ids),
    }
    run
}

/// Revokes every lease in `left` on [`SETUP_TASKS`] tasks, untimed. Returns how many revokes
/// succeeded.
async fn clean_up(pool: &Pool, left: Vec<i64>) -> u64 {
    let left = Arc::new(left);
    let mut tasks = JoinSet::new();
    for t in 0..SETUP_TASKS {
        let (mut client, left) = (pool.client(t), left.clone());
        tasks.spawn(async move {
            let mut ok = 0;
            for &id in left.iter().skip(t).step_by(SETUP_TASKS) {
                ok += u64::from(client.revoke(id).await.is_ok());
            }
            ok
        });
    }
    let mut ok = 0;
    while let Some(n) = tasks.join_next().await {
        ok += n.unwrap_or(0);
    }
    ok
}

/// A status as one line: "LeaseGrant: Unavailable: connection refused".
fn status(rpc: &str, s: &tonic::Status) -> String {
    format!("{rpc}: {:?}: {}", s.code(), s.message())
}

/// A transport error with its causes, which is where the reason ("connection refused") is.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use lessor::FsyncPolicy;
    use lessor_server::{Config, Server};

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn every_op_against_an_in_process_server_holds_its_checks() {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut config = Config::new(dir.path().join("data"));
            config.listen_client_urls = vec!["http://127.0.0.1:0".parse().unwrap()];
            // Not etcd's 2380: the test must not clash with anything else on the machine.
            config.listen_peer_urls = vec!["http://127.0.0.1:0".parse().unwrap()];
            config.fsync = FsyncPolicy::Never;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = Server::start(config, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
            let url = format!("http://{}", server.client_addrs()[0]);
            let pool = Pool::connect(&[url], 2).await.unwrap();
            for op in GrpcOp::ALL {
                for clients in [1, 3] {
                    let load = Load {
                        op,
                        clients,
                        duration: Duration::from_millis(60),
                        leases: 40,
                        ttl: TtlDist::Fixed(Duration::from_secs(60)),
                        seed: 1,
                    };
                    let (out, first_error) = measure(&pool, &load).await.unwrap();
                    let what = format!("{} x {clients}", op.name());
                    assert!(out.checks_ok(), "{what}: {:?}", out.checks);
                    assert_eq!(first_error, None, "{what}");
                    assert!(out.ops > 0 && out.errors == 0, "{what}: {out:?}");
                    assert_eq!(out.latency.len(), out.ops, "{what}: every op is timed");
                    if op == GrpcOp::Revoke {
                        assert!(
                            out.ops <= 40 * out.rounds,
                            "{what}: revokes only what it granted"
                        );
                    }
                }
            }
            assert_eq!(
                pool.lease_count().await,
                Ok(0),
                "every lease was cleaned up"
            );
            stop.send(()).unwrap();
            server.wait().await.unwrap();
        });
    }

    #[test]
    fn an_endpoint_that_does_not_answer_is_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let err = runtime()
            .block_on(Pool::connect(std::slice::from_ref(&url), 1))
            .unwrap_err();
        assert!(
            err.starts_with(&format!("cannot connect to {url}")),
            "{err}"
        );
    }
}
