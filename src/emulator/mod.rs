//! A local Asgardeo / WSO2 Identity Server compatible server (placeholder).

/// Command-line arguments of `identity-operator emulator`.
#[derive(clap::Args, Debug, Clone)]
pub struct EmulatorArgs {
    /// Address to listen on, e.g. 127.0.0.1:8443.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
}

/// Runs the emulator until the process is stopped.
pub async fn serve(_args: EmulatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
