//! `lessor`: the command-line face of the lessor lease engine.
//!
//! Today it has one subcommand, `bench`, a benchmark harness for lease and session-TTL
//! workloads that runs every scenario against lessor, an etcd-style reference lessor and (for
//! the map operations) a bare `hashbrown` floor in the same process, and reports all three
//! with their ratios. A `serve` subcommand (the etcd-compatible server) slots in beside it as
//! another [`Command`] variant.
//!
//! ```text
//! lessor bench renew --leases 1e6 --threads 2 --duration 3
//! lessor bench expiry --leases 1e5 --ttl uniform:1s..5s --json
//! lessor bench grant --sweep --plot grant.svg
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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

/// What `lessor` can do. Each variant owns its argument struct and its module, so adding one
/// (`Serve(ServeArgs)` next) touches only this enum and the `match` in [`main`].
#[derive(Debug, Subcommand)]
enum Command {
    /// Measure a lease workload on lessor, an etcd-style reference lessor and a hashbrown floor.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::run(args),
    }
}
