//! `lessor`: the command-line face of the lessor lease engine.
//!
//! Two subcommands:
//!
//! - `serve` runs the etcd-compatible server ([`lessor_server`]): etcd's Lease, KV,
//!   Maintenance and Cluster gRPC services over a durable lessor, so that `etcdctl` and etcd's
//!   client libraries work against it. Flags take etcd's names where etcd has them, and each
//!   can come from an environment variable instead (`LESSOR_DATA_DIR`, ...).
//! - `bench`, a benchmark harness for lease and session-TTL workloads that runs every scenario
//!   against lessor, an etcd-style reference lessor and (for the map operations) a bare
//!   `hashbrown` floor in the same process, and reports all three with their ratios.
//!
//! ```text
//! lessor serve --data-dir ./default.lessor --listen-client-urls http://127.0.0.1:2379
//! lessor bench renew --leases 1e6 --threads 2 --duration 3
//! lessor bench expiry --leases 1e5 --ttl uniform:1s..5s --json
//! lessor bench grant --sweep --plot grant.svg
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lessor::FsyncPolicy;
use lessor_server::{parse_fsync, parse_urls, Config, ConfigError, HttpUrl};

mod bench;

/// The `lessor` command line.
#[derive(Debug, Parser)]
#[command(
    name = "lessor",
    version,
    about = "The lessor lease engine's command-line tool."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `lessor` can do. Each variant owns its argument struct, so adding one touches only
/// this enum and the `match` in [`main`].
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the etcd-compatible lease server (etcd's v3 gRPC Lease and KV services).
    Serve(ServeArgs),
    /// Measure a lease workload on lessor, an etcd-style reference lessor and a hashbrown floor.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => bench::run(args),
    }
}

// ===== lessor serve =====

/// `lessor serve`: etcd's flag names where etcd has them; each flag also reads an
/// environment variable.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Where the write-ahead log lives (created if missing).
    #[arg(long, env = "LESSOR_DATA_DIR", default_value = "./default.lessor")]
    data_dir: PathBuf,
    /// Comma-separated http:// URLs to serve the client API on (port 0: any free port).
    #[arg(
        long,
        env = "LESSOR_LISTEN_CLIENT_URLS",
        default_value = "http://127.0.0.1:2379",
        value_parser = url_list
    )]
    listen_client_urls: UrlList,
    /// Comma-separated http:// URLs for member-to-member lease forwarding.
    #[arg(
        long,
        env = "LESSOR_LISTEN_PEER_URLS",
        default_value = "http://127.0.0.1:2380",
        value_parser = url_list
    )]
    listen_peer_urls: UrlList,
    /// Comma-separated client URLs to tell clients about (default: the listen URLs).
    #[arg(long, env = "LESSOR_ADVERTISE_CLIENT_URLS", value_parser = url_list)]
    advertise_client_urls: Option<UrlList>,
    /// This member's human-readable name.
    #[arg(long, env = "LESSOR_NAME", default_value = "default")]
    name: String,
    /// When a change is durable: always (fsync before every answer), interval or interval:MS
    /// (at most that long after, default 10 ms) or never (left to the OS).
    #[arg(long, env = "LESSOR_FSYNC", default_value = "always", value_parser = parse_fsync)]
    fsync: FsyncPolicy,
    /// The expiry wheel's tick in milliseconds (1 to 1000): how late past its deadline a lease
    /// may be revoked.
    #[arg(long, env = "LESSOR_TICK", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    tick: u64,
    /// The least TTL a lease gets, in seconds; shorter requests are raised to it.
    #[arg(long, env = "LESSOR_MIN_TTL", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    min_ttl: u64,
}

/// A comma-separated list of URLs, as one flag value.
#[derive(Debug, Clone)]
struct UrlList(Vec<HttpUrl>);

fn url_list(text: &str) -> Result<UrlList, ConfigError> {
    parse_urls(text).map(UrlList)
}

impl ServeArgs {
    fn into_config(self) -> Config {
        let mut config = Config::new(self.data_dir);
        config.name = self.name;
        config.listen_client_urls = self.listen_client_urls.0;
        config.listen_peer_urls = self.listen_peer_urls.0;
        config.advertise_client_urls = self.advertise_client_urls.map_or_else(Vec::new, |u| u.0);
        config.fsync = self.fsync;
        config.tick = Duration::from_millis(self.tick);
        config.min_ttl = Duration::from_secs(self.min_ttl);
        config
    }
}

/// Runs the server until SIGINT or SIGTERM, then shuts down cleanly.
fn serve(args: ServeArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in log files and journals.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("lessor-serve");
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(serve_workers());
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lessor serve: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(lessor_server::serve(args.into_config(), shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lessor serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The async workers `lessor serve` runs: half the cores it may use, at least one
/// (`TOKIO_WORKER_THREADS` overrides it). The engine's own threads (the log writer, the expiry
/// worker, the blocking pool that waits for fsyncs) want the rest, and the fewer workers
/// share a connection's streams, the more of their answers leave in one write (see
/// `server/src/coalesce.rs`). Measured on 2 cores, with the load generator on the same cores:
/// keep-alives at 64 streams went from 107-128k/s with two workers to 183-203k/s with one;
/// grants at 64 clients stayed within noise (29-35k/s).
fn serve_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
