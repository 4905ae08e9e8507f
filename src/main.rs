//! The `identity-operator` binary: parses the command line and hands over to the library.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "identity-operator", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = identity_operator::telemetry::LogFormat::Text)]
    log_format: identity_operator::telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers (kubeconfig or in-cluster credentials).
    Run(identity_operator::run::RunArgs),
    /// Print the CustomResourceDefinitions as YAML (or write one file per kind with --out-dir).
    Crd {
        /// Write <plural>.yaml files into this folder instead of printing.
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Print the ValidatingAdmissionPolicies (and bindings) that refuse, under conflictPolicy:
    /// Block, a spec update turning an IdentityProvider's JIT off while status.jitRequiredBy names
    /// applications, and warn about it under Warn (the chart ships them too).
    AdmissionPolicy {
        /// Prefix of the objects' names (they are cluster-scoped).
        #[arg(long, default_value = identity_operator::admission::DEFAULT_NAME)]
        name: String,
        /// Bind to these namespaces only (repeatable or comma-separated); all when absent.
        #[arg(long = "namespace", value_delimiter = ',')]
        namespaces: Vec<String>,
    },
    /// Check YAML files and folders (as a GitOps repo holds them) for interconnection conflicts and
    /// dangling references. Exit status: 0 clean, 1 problems found, 2 unreadable input.
    Lint {
        /// Files or folders; folders are read recursively (*.yaml, *.yml).
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
        /// Output format: text, json, sarif (code scanning) or github (workflow annotations).
        #[arg(long, value_enum, default_value_t = identity_operator::lint::Format::Text)]
        format: identity_operator::lint::Format,
    },
    /// Read a live tenant and write the resources that describe it (adopt: true), the Secrets to
    /// create and a report of what they cannot express. Client secret from IDENTITY_CLIENT_SECRET.
    Export(identity_operator::export::ExportArgs),
    /// The conflict check against a live tenant: every application, every IdP's JIT, the rule and
    /// messages of lint. Exit status: 0 clean, 1 conflicts, 2 the tenant could not be read.
    Audit(identity_operator::audit::AuditArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            identity_operator::telemetry::init_logging(cli.log_format);
            identity_operator::run::run(args).await
        }
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
        Command::AdmissionPolicy { name, namespaces } => {
            let opts = identity_operator::admission::Options { name, namespaces };
            print!("{}", identity_operator::admission::yaml(&opts)?);
            Ok(())
        }
        Command::Lint { paths, format } => {
            std::process::exit(identity_operator::lint::run_cli(&paths, format));
        }
        Command::Export(args) => match identity_operator::export::run(&args).await {
            Ok(_) => Ok(()),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        },
        Command::Audit(args) => std::process::exit(identity_operator::audit::run(&args).await),
    }
}
