//! The Application side of admission (issue 20): a validating webhook served by every replica.
//!
//! CEL in a ValidatingAdmissionPolicy sees only the object under admission (and params), never the
//! IdentityProviders its flow references, so the Application check needs code that can read them:
//! this webhook, deciding from the operator's own reflector of IdentityProviders and
//! IdentityBackends ([`decide`]), never asking the identity server.
//!
//! - [`decide`]: the pure decision (the reconciler's `plan_flow`, the old spec standing in for the
//!   server's flow).
//! - [`certs`]: the CA and serving certificate, generated and rotated by the operator.
//! - [`server`]: the HTTPS endpoint and the ValidatingWebhookConfiguration it registers.
//!
//! It does not depend on leadership: the caches of the controllers exist only on the leader, so
//! the webhook keeps its own watches (one per kind and namespace) and answers on every replica.

pub mod certs;
pub mod decide;
pub mod server;

use std::net::SocketAddr;

pub use decide::{decide, Decision};
pub use server::{configuration, start, ClientConfig};

/// The default name of the ValidatingWebhookConfiguration (cluster-scoped).
pub const DEFAULT_NAME: &str = "identity-operator";
/// The path the webhook answers on.
pub const PATH: &str = "/validate-application";
/// The apiserver waits this long for an answer before it lets the request through.
pub const TIMEOUT_SECONDS: i32 = 5;

/// Options of `identity-operator run` for the webhook.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WebhookArgs {
    /// Serve the Application admission webhook (HTTPS) on this address, e.g. 127.0.0.1:9443 on a
    /// local control plane or 0.0.0.0:9443 in a cluster, and register the ValidatingWebhookConfiguration
    /// (create or update) with this replica's CA. Without it no webhook is served.
    #[arg(long)]
    pub webhook_listen: Option<SocketAddr>,
    /// Reach the webhook through this Service (NAMESPACE/NAME[:PORT], port default 443) instead of
    /// the URL https://<--webhook-listen>; the certificate names the Service's DNS names.
    #[arg(long)]
    pub webhook_service: Option<String>,
    /// Keep the CA and serving certificate in this Secret (in --webhook-secret-namespace), created
    /// once by the first replica and shared by all; without it each process generates its own in
    /// memory (fine for one process on a local control plane).
    #[arg(long)]
    pub webhook_secret: Option<String>,
    /// Serve the certificate in this directory (`tls.crt`, `tls.key`, `ca.crt`: a cert-manager
    /// Certificate's Secret mounted as a volume) instead of generating one; re-read every
    /// --webhook-cert-reload, and its `ca.crt` becomes the configuration's caBundle. Excludes
    /// --webhook-secret.
    #[arg(long, conflicts_with = "webhook_secret")]
    pub webhook_cert_dir: Option<std::path::PathBuf>,
    /// How often every replica re-reads the certificate (Secret, files or memory), renews it when
    /// due and re-registers the caBundle when it changed.
    #[arg(long, value_parser = crate::duration::parse_duration, default_value = "5m")]
    pub webhook_cert_reload: std::time::Duration,
    /// Namespace of --webhook-secret (default: POD_NAMESPACE, else "default").
    #[arg(long)]
    pub webhook_secret_namespace: Option<String>,
    /// Name of the ValidatingWebhookConfiguration the operator creates or updates.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub webhook_configuration: String,
}
