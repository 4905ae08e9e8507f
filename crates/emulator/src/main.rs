//! The `identity-emulator` binary: a local Asgardeo / WSO2 Identity Server compatible API for tests,
//! the demo and the bench. Its own binary so that the operator's image carries no fake server.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = identity_emulator::EmulatorArgs::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    identity_emulator::serve(args).await
}
