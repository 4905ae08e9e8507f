//! `identity-operator export`: bring an existing tenant under Git.
//!
//! Steps: connect with read-only scopes → read the whole tenant (`backend::inventory`, progress on
//! stderr) → build the resources (`plan`, pure) → write one file per object, the IdentityBackend, and a
//! README listing the Secrets to create and what the resources cannot express. Every object is
//! exported with `adopt: true`. No secret value is ever read into the output: the inventory drops them
//! before this module sees the data.

mod plan;

pub use plan::{dns_label, plan, Names, Note, NoteKind, Options, Plan, SecretToCreate};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::api::DeletionPolicy;
use crate::backend::asgardeo::{AsgardeoClient, AsgardeoConfig, Target};
use crate::backend::inventory::{Phase, TenantSnapshot};
use crate::backend::{BackendError, Secret};

/// The environment variable that holds the M2M client secret for `export` and `audit`.
pub const CLIENT_SECRET_ENV: &str = "IDENTITY_CLIENT_SECRET";

/// How `export` and `audit` reach a tenant. The client secret comes from `IDENTITY_CLIENT_SECRET`
/// only: a command-line argument would show in the process list and shell history.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Asgardeo organization (API at https://api.asgardeo.io/t/ORG).
    #[arg(long, conflicts_with_all = ["url", "tenant"], required_unless_present = "url")]
    pub organization: Option<String>,
    /// WSO2 Identity Server (or emulator) base URL, e.g. https://is.example:9443.
    #[arg(long, requires = "tenant")]
    pub url: Option<String>,
    /// Tenant domain on the WSO2 Identity Server, e.g. carbon.super.
    #[arg(long, requires = "url")]
    pub tenant: Option<String>,
    /// Client id of an M2M application with the idp and application view scopes.
    #[arg(long)]
    pub client_id: String,
    /// Extra CA certificates (PEM file) to trust for the server.
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
}

/// Errors of `export` and `audit`: all of them mean exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing or contradictory input.
    #[error("{0}")]
    Usage(String),
    /// The server could not be read.
    #[error("reading the tenant at {url}: {source}")]
    Backend {
        /// Tenant URL.
        url: String,
        /// Why (boxed: the error is large and rare).
        source: Box<BackendError>,
    },
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl ConnectionArgs {
    /// The server and tenant.
    pub fn target(&self) -> Result<Target, Error> {
        match (&self.organization, &self.url, &self.tenant) {
            (Some(o), None, None) => Ok(Target::Asgardeo {
                organization: o.clone(),
            }),
            (None, Some(u), Some(t)) => Ok(Target::Wso2IdentityServer {
                url: u.clone(),
                tenant: t.clone(),
            }),
            _ => Err(Error::Usage(
                "give either --organization, or --url and --tenant".into(),
            )),
        }
    }

    /// A client that asks only for the two view scopes: reading a tenant needs nothing else.
    pub fn client(&self) -> Result<(Arc<AsgardeoClient>, String), Error> {
        let secret = std::env::var(CLIENT_SECRET_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "set {CLIENT_SECRET_ENV} to the client secret of --client-id"
                ))
            })?;
        let target = self.target()?;
        let url = target
            .tenant_url()
            .map_err(|source| Error::Backend {
                url: "(invalid)".into(),
                source: Box::new(source),
            })?
            .to_string();
        let mut config = AsgardeoConfig::new(target, &self.client_id, Secret::new(secret));
        config.scopes = vec![
            "internal_idp_view".into(),
            "internal_application_mgt_view".into(),
        ];
        if let Some(path) = &self.ca_bundle {
            config.ca_bundle_pem = Some(std::fs::read(path).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?);
        }
        let client = AsgardeoClient::new(config, None).map_err(|source| Error::Backend {
            url: url.clone(),
            source: Box::new(source),
        })?;
        Ok((Arc::new(client), url))
    }

    /// Reads the whole tenant, with progress on stderr.
    pub async fn read(&self) -> Result<(TenantSnapshot, String), Error> {
        let (client, url) = self.client()?;
        let mut last = (None, usize::MAX);
        let snapshot = client
            .read_tenant(|phase, done, total| {
                // At most about 20 lines per phase, however large the tenant.
                let step = (total / 20).max(1);
                let what = match phase {
                    Phase::IdentityProviders => "identity providers",
                    Phase::Applications => "applications",
                };
                if last.0 != Some(phase) || done == total || done / step != last.1 / step {
                    eprintln!("reading {what}: {done}/{total}");
                    last = (Some(phase), done);
                }
            })
            .await
            .map_err(|source| Error::Backend {
                url: url.clone(),
                source: Box::new(source),
            })?;
        Ok((snapshot, url))
    }
}

/// Command-line arguments of `identity-operator export`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    /// The tenant.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Namespace of the exported objects.
    #[arg(long)]
    pub namespace: String,
    /// Name of the exported IdentityBackend.
    #[arg(long)]
    pub backend_name: String,
    /// Name of the Secret the IdentityBackend reads its credentials from (default BACKEND-credentials).
    #[arg(long)]
    pub credentials_secret: Option<String>,
    /// deletionPolicy of the exported objects. Orphan by default: removing a file from Git then never
    /// deletes a production connection by accident; switch to Delete once the repository is trusted.
    #[arg(long, value_enum, default_value_t = PolicyArg::Orphan)]
    pub deletion_policy: PolicyArg,
    /// Folder to write into (created; existing files of the same names are replaced).
    #[arg(long)]
    pub out: PathBuf,
}

/// `--deletion-policy` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyArg {
    /// Delete the server object with the Kubernetes object.
    Delete,
    /// Keep the server object.
    Orphan,
}

/// Runs `export`; returns the plan it wrote.
pub async fn run(args: &ExportArgs) -> Result<Plan, Error> {
    let (snapshot, url) = args.connection.read().await?;
    let opts = Options {
        namespace: args.namespace.clone(),
        backend_name: args.backend_name.clone(),
        target: args.connection.target()?,
        credentials_secret: args
            .credentials_secret
            .clone()
            .unwrap_or_else(|| format!("{}-credentials", args.backend_name)),
        deletion_policy: match args.deletion_policy {
            PolicyArg::Delete => DeletionPolicy::Delete,
            PolicyArg::Orphan => DeletionPolicy::Orphan,
        },
    };
    let plan = plan(&snapshot, &opts);
    write(
        &args.out,
        &plan,
        &url,
        &args.namespace,
        &args.connection.client_id,
    )?;
    eprintln!(
        "wrote {} identity provider(s), {} application(s) and the IdentityBackend to {}; {} Secret(s) to create and {} report entries in {}",
        plan.idps.len(),
        plan.applications.len(),
        args.out.display(),
        plan.secrets.len(),
        plan.notes.len(),
        args.out.join("README.md").display()
    );
    for n in &plan.notes {
        eprintln!("  {}: {}", n.kind.label(), note_line(n));
    }
    Ok(plan)
}

fn note_line(n: &Note) -> String {
    let as_ = n
        .exported_as
        .as_ref()
        .map(|k| format!(" (exported as {k})"))
        .unwrap_or_default();
    format!("{} {:?}{as_}: {}", n.object_kind, n.server_name, n.message)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `s` made safe for a one-line YAML comment: a server-supplied id or name could hold a line break
/// (`\n`, `\r`, or NEL, U+2028, U+2029, which YAML 1.1 readers also break lines at) and put its
/// own YAML after the comment. Controls and those separators become `\u{..}`; the rest is kept.
fn comment_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn yaml_of<T: serde::Serialize>(header: &str, obj: &T) -> String {
    // The types serialize to plain maps; a failure here would be a bug in a derive, not input.
    let body = serde_saphyr::to_string(obj).unwrap_or_default();
    format!("{header}{body}")
}

/// Writes the plan: `identitybackend-NAME.yaml`, `identityprovider-NAME.yaml`,
/// `application-NAME.yaml`, `README.md`.
pub fn write(
    dir: &Path,
    plan: &Plan,
    url: &str,
    namespace: &str,
    client_id: &str,
) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let put = |file: String, text: String| -> Result<(), Error> {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(io(&path))
    };
    let name = |m: &kube::api::ObjectMeta| m.name.clone().unwrap_or_default();
    put(
        format!("identitybackend-{}.yaml", name(&plan.backend.metadata)),
        yaml_of(
            &format!(
                "# Exported by identity-operator export from {}\n",
                comment_safe(url)
            ),
            &plan.backend,
        ),
    )?;
    for (server, id, obj) in &plan.idps {
        put(
            format!("identityprovider-{}.yaml", name(&obj.metadata)),
            yaml_of(
                &format!(
                    "# Exported from {}: identity provider {} (id {})\n",
                    comment_safe(url),
                    comment_safe(&format!("{server:?}")),
                    comment_safe(id)
                ),
                obj,
            ),
        )?;
    }
    for (server, id, obj) in &plan.applications {
        put(
            format!("application-{}.yaml", name(&obj.metadata)),
            yaml_of(
                &format!(
                    "# Exported from {}: application {} (id {})\n",
                    comment_safe(url),
                    comment_safe(&format!("{server:?}")),
                    comment_safe(id)
                ),
                obj,
            ),
        )?;
    }
    put("README.md".into(), readme(plan, url, namespace, client_id))
}

/// The README of an export: how to apply it, the Secrets to create, the report.
pub fn readme(plan: &Plan, url: &str, namespace: &str, client_id: &str) -> String {
    let mut out = Vec::new();
    let _ = writeln!(out, "# Exported from {url}\n");
    let _ = writeln!(
        out,
        "{} identity provider(s) and {} application(s), every one with `adopt: true`: the operator takes \
         the existing server objects over instead of creating new ones.\n",
        plan.idps.len(),
        plan.applications.len()
    );
    let _ = writeln!(out, "## 1. Create these Secrets first\n");
    let _ = writeln!(
        out,
        "Export never reads or writes a secret value; fill them in from where they are kept.\n"
    );
    let _ = writeln!(out, "| Secret | keys | what |\n|---|---|---|");
    for s in &plan.secrets {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            s.name,
            s.keys.join(", "),
            s.purpose
        );
    }
    let _ = writeln!(out, "\n```sh");
    for s in &plan.secrets {
        let literals: Vec<String> = s
            .keys
            .iter()
            .map(|k| {
                if k == "client-id" {
                    format!("--from-literal={k}={client_id}")
                } else {
                    format!("--from-literal={k}=\"$VALUE\"")
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "kubectl -n {namespace} create secret generic {} {}",
            s.name,
            literals.join(" ")
        );
        // The operator sends a Secret's values only with its consent label.
        let _ = writeln!(
            out,
            "kubectl -n {namespace} label secret {} {}={}",
            s.name,
            crate::controller::USE_LABEL,
            s.usage
        );
    }
    let _ = writeln!(out, "```\n");
    let _ = writeln!(out, "## 2. Check and apply\n");
    let _ = writeln!(
        out,
        "```sh\nidentity-operator lint .          # the conflicts the operator will report\nkubectl apply -n {namespace} -f .\nkubectl wait -n {namespace} --for=condition=Ready identityproviders,applications.identity-operator.io --all\n```\n"
    );
    let _ = writeln!(out, "## 3. What the resources cannot express\n");
    if plan.notes.is_empty() {
        let _ = writeln!(
            out,
            "Nothing: every object was exported whole and adopting it changes nothing on the server."
        );
    } else {
        let _ = writeln!(out, "| | object | what |\n|---|---|---|");
        for n in &plan.notes {
            let as_ = n
                .exported_as
                .as_ref()
                .map(|k| format!(" → `{k}`"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} {:?}{as_} | {} |",
                n.kind.label(),
                n.object_kind,
                n.server_name,
                n.message.replace('|', "\\|")
            );
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(crate) mod matrix_tests;
#[cfg(test)]
pub(crate) mod tests;
