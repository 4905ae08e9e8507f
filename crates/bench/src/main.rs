//! The `identity-bench` binary: measures the operator binary at scale (`converge`) and the
//! Application webhook's decision in-process (`admission`). Its own binary so that the operator's
//! image carries neither the bench nor the emulator it drives.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "identity-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The operator at scale: a real control plane, the emulator with added latency, N
    /// IdentityProviders and M Applications; prints a table (and JSON with --json).
    Converge(identity_bench::BenchArgs),
    /// The Application admission webhook's decision (p50/p99), in-process: N IdentityProviders in
    /// its cache, M Applications reviewed.
    Admission(identity_bench::admission::AdmissionBenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Converge(args) => identity_bench::run(args).await.map(|_| ()),
        Command::Admission(args) => identity_bench::admission::run(&args).map(|_| ()),
    }
}
