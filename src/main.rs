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
    /// Print the CustomResourceDefinitions as YAML (or write one file per kind with --out-dir).
    Crd {
        /// Write <plural>.yaml files into this folder instead of printing.
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Serve a local Asgardeo / WSO2 Identity Server compatible API (for tests, demos and CI).
    Emulator(identity_operator::emulator::EmulatorArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { out_dir } => {
            for (plural, crd) in identity_operator::api::crds() {
                let yaml = identity_operator::api::crd_yaml(&crd)?;
                match &out_dir {
                    Some(dir) => std::fs::write(dir.join(format!("{plural}.yaml")), yaml)?,
                    None => print!("---\n{yaml}"),
                }
            }
            Ok(())
        }
        Command::Emulator(args) => identity_operator::emulator::serve(args).await,
    }
}
