//! A local Asgardeo / WSO2 Identity Server compatible server, for tests, demos and CI.
//!
//! It serves `POST /t/{tenant}/oauth2/token` (client_credentials) and the parts of the Identity Provider
//! and Application Management APIs the operator uses, with the real server's status codes, `Location`
//! headers, error bodies and defaults (see `idp.rs` and `app.rs` for the codes). Every tenant path works
//! and has its own state; state can be saved to a JSON file.
//!
//! Emulator-only admin endpoints (outside `/t/`, never on a real server):
//! - `GET /_emulator/stats` – request counters per operation, reads/writes, token requests, statuses;
//! - `POST /_emulator/reset-stats` – zero the counters;
//! - `GET|POST /_emulator/faults` – read / replace the injected faults ([`Faults`]), the request
//!   quota ([`Quota`]) included;
//! - `POST /_emulator/revoke-tokens` – invalidate every issued token;
//! - `GET /_emulator/state` – dump all tenants as JSON, secrets masked (confidential authenticator
//!   properties and OIDC client secrets: the endpoint has no authentication);
//! - `POST /_emulator/simulate-login` – run a login through an application's flow and script
//!   ([`simulate`]).
//!
//! From tests, start one in-process with [`Emulator::start`] and use the returned [`EmulatorHandle`].

mod app;
mod ctx;
mod filter;
mod http;
mod idp;
pub mod idp_mappings;
mod meta;
mod reply;
mod shared;
pub mod simulate;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use filter::Filter;
pub use shared::{Faults, Quota, SpoiledCreate, Stats};
pub use state::{StoredApp, StoredIdp, TenantState};

use identity_client::Secret;

/// Command-line arguments of `identity-emulator`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "identity-emulator",
    version,
    about = "A local Asgardeo / WSO2 Identity Server compatible API (for tests, demos and CI)"
)]
pub struct EmulatorArgs {
    /// Address to listen on, e.g. 127.0.0.1:8443.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// OAuth client id the token endpoint accepts.
    #[arg(long, env = "EMULATOR_CLIENT_ID", default_value = "emulator")]
    pub client_id: String,
    /// OAuth client secret the token endpoint accepts (prefer the environment variable).
    #[arg(long, env = "EMULATOR_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Secret,
    /// Serve HTTPS with a freshly generated CA and server certificate (for localhost / 127.0.0.1).
    #[arg(long, requires = "ca_out")]
    pub tls: bool,
    /// Where to write the CA certificate (PEM) when `--tls` is set; point the client's CA bundle at it.
    #[arg(long)]
    pub ca_out: Option<PathBuf>,
    /// Save all tenants to this JSON file after every write, and load it at start.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Lifetime of issued access tokens, seconds (the real servers use 3600).
    #[arg(long, default_value_t = 3600)]
    pub token_lifetime: u64,
    /// Scopes the M2M app is authorized for (comma separated); requested scopes outside the list are
    /// dropped from the token. Default: every scope the operator may ask for.
    #[arg(long, value_delimiter = ',')]
    pub grant_scopes: Option<Vec<String>>,
    /// Compare IdP and application names exactly (a case-sensitive database such as H2 or
    /// PostgreSQL); by default "Google" and "google" clash, as on a case-insensitive collation.
    #[arg(long)]
    pub case_sensitive_names: bool,
    /// Inject this much latency into every request, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fail this fraction (0..=1) of requests with HTTP 500.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Enforce a quota like Asgardeo's: at most this many requests per minute (sliding window) to
    /// the API and, separately, to the token endpoint; beyond it 429 with `Retry-After`.
    #[arg(long)]
    pub quota_per_minute: Option<u32>,
}

/// Configuration of an in-process emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Client id the token endpoint accepts.
    pub client_id: String,
    /// Client secret the token endpoint accepts.
    pub client_secret: Secret,
    /// Lifetime of issued tokens.
    pub token_lifetime: Duration,
    /// Scopes the M2M app is authorized for (`None`: every scope the operator may ask for, the
    /// script scope included). Requested scopes outside it are dropped from the token.
    pub grant_scopes: Option<Vec<String>>,
    /// Compare names exactly; by default uniqueness and `name eq` ignore case.
    pub case_sensitive_names: bool,
    /// JSON file to load at start and save after writes.
    pub state_file: Option<PathBuf>,
    /// Faults active from the start.
    pub faults: Faults,
    /// Address to bind (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            client_id: "emulator-client".to_owned(),
            client_secret: Secret::new("emulator-secret"),
            token_lifetime: Duration::from_secs(3600),
            grant_scopes: None,
            case_sensitive_names: false,
            state_file: None,
            faults: Faults::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// Errors starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Binding, reading or writing files failed.
    #[error("emulator I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Certificate generation or TLS setup failed.
    #[error("emulator TLS setup: {0}")]
    Tls(String),
}

/// Entry point for starting emulators in-process.
pub struct Emulator;

impl Emulator {
    /// Starts a plain-HTTP emulator in the background and returns once it accepts connections.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        let shared = build_shared(&config, "http")?;
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let app = http::router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "emulator stopped");
            }
        });
        Ok(EmulatorHandle {
            addr,
            shared,
            task,
            scheme: "http",
        })
    }

    /// Starts an HTTPS emulator with a freshly generated CA; returns the handle and the CA (PEM) that
    /// clients must trust. The certificate is valid for `localhost` and `127.0.0.1`.
    pub async fn start_tls(
        config: EmulatorConfig,
    ) -> Result<(EmulatorHandle, String), EmulatorError> {
        let shared = build_shared(&config, "https")?;
        let (ca_pem, cert, key) =
            generate_certificates().map_err(|e| EmulatorError::Tls(e.to_string()))?;
        let rustls =
            axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls_config(cert, key)?));
        let listener = std::net::TcpListener::bind(config.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let app = http::router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum_server::from_tcp_rustls(listener, rustls)
                .serve(app.into_make_service())
                .await
            {
                tracing::error!(error = %e, "emulator stopped");
            }
        });
        Ok((
            EmulatorHandle {
                addr,
                shared,
                task,
                scheme: "https",
            },
            ca_pem,
        ))
    }
}

fn build_shared(
    config: &EmulatorConfig,
    scheme: &'static str,
) -> Result<Arc<shared::Shared>, EmulatorError> {
    let tenants = match &config.state_file {
        Some(path) => state::load(path)?,
        None => Default::default(),
    };
    let shared = Arc::new(shared::Shared::new(config, scheme, tenants));
    *shared::lock(&shared.faults) = config.faults.clone();
    Ok(shared)
}

/// A running in-process emulator. Dropping it stops the server.
pub struct EmulatorHandle {
    addr: SocketAddr,
    shared: Arc<shared::Shared>,
    task: tokio::task::JoinHandle<()>,
    scheme: &'static str,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT` for TLS) – use as the WSO2 IS URL; the
    /// client adds the tenant path.
    pub fn url(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.addr.port()),
            _ => format!("http://{}", self.addr),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> Stats {
        shared::lock(&self.shared.stats).clone()
    }

    /// Zeroes the request counters.
    pub fn reset_stats(&self) {
        *shared::lock(&self.shared.stats) = Stats::default();
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        *shared::lock(&self.shared.faults) = faults;
    }

    /// Replaces the scopes the M2M app is authorized for (tokens issued from now on), as an admin
    /// changing the app's API authorization would.
    pub fn set_authorized_scopes<S: Into<String>>(&self, scopes: impl IntoIterator<Item = S>) {
        *shared::lock(&self.shared.grant_scopes) = scopes.into_iter().map(Into::into).collect();
    }

    /// Invalidates every issued token.
    pub fn revoke_all_tokens(&self) {
        self.shared.revoke_all_tokens();
    }

    /// Runs `f` on a tenant's state (created empty if new): create or change objects behind the
    /// operator's back. Saved to the state file afterwards, if one is configured.
    pub fn with_tenant<R>(&self, tenant: &str, f: impl FnOnce(&mut TenantState) -> R) -> R {
        let mut tenants = shared::lock(&self.shared.tenants);
        let out = f(tenants.entry(tenant.to_owned()).or_default());
        self.shared.persist(&tenants);
        out
    }

    /// Stops the server.
    pub fn shutdown(self) {
        self.task.abort();
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Generates a CA and a server certificate for `localhost` / `127.0.0.1` / `::1` signed by it.
/// Returns (CA PEM, server certificate DER, server key DER). A separate CA (rather than one
/// self-signed leaf) is needed because webpki refuses a CA certificate as an end-entity certificate.
fn generate_certificates() -> Result<(String, Vec<u8>, Vec<u8>), rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "identity-operator emulator CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "identity-operator emulator");
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok((
        ca_cert.pem(),
        leaf_cert.der().to_vec(),
        leaf_key.serialize_der(),
    ))
}

fn tls_config(cert_der: Vec<u8>, key_der: Vec<u8>) -> Result<rustls::ServerConfig, EmulatorError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    // The ring provider, explicitly: kube uses ring, and one provider per process avoids the
    // "no process-level CryptoProvider" ambiguity when both ring and aws-lc could be linked.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EmulatorError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
        )
        .map_err(|e| EmulatorError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Runs the emulator until the process is stopped.
pub async fn serve(args: EmulatorArgs) -> anyhow::Result<()> {
    let faults = Faults {
        latency_ms: args.latency_ms,
        error_rate: args.error_rate,
        quota: args.quota_per_minute.map(|requests| Quota {
            requests,
            window_secs: 60,
        }),
        ..Default::default()
    };
    let config = EmulatorConfig {
        client_id: args.client_id,
        client_secret: args.client_secret,
        token_lifetime: Duration::from_secs(args.token_lifetime),
        grant_scopes: args.grant_scopes,
        case_sensitive_names: args.case_sensitive_names,
        state_file: args.state_file,
        faults,
        listen: args.listen,
    };
    if args.tls {
        let ca_out = args
            .ca_out
            .ok_or_else(|| anyhow::anyhow!("--tls needs --ca-out FILE"))?;
        let (ca_pem, cert, key) =
            generate_certificates().map_err(|e| EmulatorError::Tls(e.to_string()))?;
        std::fs::write(&ca_out, ca_pem)?;
        let shared = build_shared(&config, "https")?;
        let listener = std::net::TcpListener::bind(config.listen)?;
        let addr = listener.local_addr()?;
        let rustls =
            axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls_config(cert, key)?));
        println!(
            "emulator listening on https://{addr} (CA written to {})",
            ca_out.display()
        );
        axum_server::from_tcp_rustls(listener, rustls)
            .serve(http::router(shared).into_make_service())
            .await?;
        Ok(())
    } else {
        let handle = Emulator::start(config).await?;
        println!("emulator listening on {}", handle.url());
        tokio::signal::ctrl_c().await?;
        handle.shutdown();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_generate() {
        let (ca, cert, key) = generate_certificates().expect("certs");
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!cert.is_empty() && !key.is_empty());
        tls_config(cert, key).expect("rustls accepts them");
    }
}
