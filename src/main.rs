//! The `identity-operator` binary: parses the command line and hands over to the library.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "identity-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a local Asgardeo / WSO2 Identity Server compatible API (for tests, demos and CI).
    Emulator(identity_operator::emulator::EmulatorArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Emulator(args) => identity_operator::emulator::serve(args).await,
    }
}
