//! `identity-operator audit`: the conflict check against a live tenant.
//!
//! Steps: read the whole tenant (`backend::inventory`) → every application's user-defined flow as the
//! conflict rule sees it (`controller::translate::flow_for_rule`, the controller's own mapping) → the
//! rule (`flow::check_flow`) against every IdP's JIT setting on the server → findings with `lint`'s
//! message (`lint::conflict_message`), naming objects the way `export` names them, so an audit of a
//! tenant and a lint of its export say the same thing. Exit status: 0 clean, 1 conflicts, 2 the
//! tenant could not be read.
//!
//! With `--declared PATH...` (manifests, as `lint` reads them) it also compares each declared
//! IdentityProvider's certificate (JWKS URI, SAML metadata URI or PEM certificates) with the server
//! IdP of the same name, with the controller's own diff (`translate::certificate_patches`): what
//! the operator would rewrite is reported as `Drift`.

use std::collections::HashMap;

use crate::backend::inventory::TenantSnapshot;
use crate::backend::FlowKind;
use crate::controller::translate::flow_for_rule;
use crate::export::{ConnectionArgs, Names};
use crate::flow::{self, Jit, LocalAccountAuthenticators};
use crate::lint::{self, Finding, Format, Location, Problem, Report};

/// Command-line arguments of `identity-operator audit`.
#[derive(clap::Args, Debug, Clone)]
pub struct AuditArgs {
    /// The tenant.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Namespace to name objects in, as `export --namespace` would (messages then match `lint` of
    /// the export).
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Authenticators that need a local account (comma separated); replaces the default list, like
    /// an IdentityBackend's `localAccountAuthenticators`.
    #[arg(long, value_delimiter = ',')]
    pub local_account_authenticators: Option<Vec<String>>,
    /// Manifests (files or folders, as `lint` reads them) whose IdentityProviders are compared
    /// with the server's: a certificate that differs is reported as drift.
    #[arg(long, num_args = 1..)]
    pub declared: Vec<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The conflict check of a snapshot. Pure. `api_url` is the tenant's management API base
/// (`.../api/server/v1/`), used to point each finding at its application.
pub fn audit_snapshot(
    snapshot: &TenantSnapshot,
    api_url: &str,
    namespace: &str,
    needs_local: &LocalAccountAuthenticators,
) -> Report {
    let names = Names::new(snapshot);
    let jit: HashMap<String, Jit> = snapshot
        .idps
        .iter()
        .map(|d| (d.idp.name.clone(), d.jit.rule_state()))
        .collect();
    let ids: HashMap<&str, &str> = snapshot
        .idps
        .iter()
        .map(|d| (d.idp.name.as_str(), d.idp.id.as_str()))
        .collect();
    let mut report = Report {
        objects: snapshot.idps.len() + snapshot.applications.len(),
        ..Report::default()
    };
    for d in &snapshot.applications {
        let app = &d.app;
        if app.login_flow.kind != FlowKind::UserDefined {
            continue; // The tenant default flow is not the application's own.
        }
        let location = Location {
            file: format!("{api_url}applications/{}", app.id),
            line: 0,
            document: 0,
        };
        let rule_flow = flow_for_rule(
            &app.login_flow.steps,
            app.login_flow.script.as_deref(),
            needs_local,
        );
        let analysis = flow::check_flow(&app.name, &rule_flow, &jit, needs_local);
        // Server objects by the names the console shows and their ids; the Kubernetes name only as
        // what `export` would write (the remedy, skipFor, is written against it).
        let app_label = format!(
            "{:?} (id {}; export writes it as {namespace}/{})",
            app.name,
            app.id,
            names.app(&app.name)
        );
        for c in analysis.conflicts {
            let idp = &c.identity_provider;
            let idp_name = names.idp(idp);
            let place = format!(
                "id {}; export writes it as {namespace}/{idp_name}",
                ids.get(idp.as_str()).copied().unwrap_or("unknown")
            );
            report.findings.push(Finding {
                location: location.clone(),
                problem: Problem::Conflict({
                    let mut m = lint::conflict_message(
                        &app_label,
                        &format!("{idp:?}"),
                        &place,
                        if c.lookup_skip {
                            "has JIT provisioning skipped on lookup failure (skipJITForLookupFailure with accountLookupAttributeMappings: users that no local account matches get none)"
                        } else {
                            "has JIT provisioning disabled"
                        },
                        &c,
                        &idp_name,
                    );
                    if c.unverified_script {
                        m.push_str(&format!(" The application {}.", flow::UNVERIFIED_SCRIPT));
                    }
                    m
                }),
            });
        }
        for u in analysis.unknown_references {
            report.findings.push(Finding {
                location: location.clone(),
                problem: Problem::DanglingReference(format!(
                    "Application {app_label} step {} references identity provider {:?}, which is not on the server",
                    u.step, u.identity_provider
                )),
            });
        }
    }
    for d in &snapshot.idps {
        let unmapped = unmapped_lookup(d);
        if unmapped.is_empty() {
            continue;
        }
        report.findings.push(Finding {
            location: Location {
                file: format!("{api_url}identity-providers/{}", d.idp.id),
                line: 0,
                document: 0,
            },
            problem: Problem::Invalid(format!(
                "IdentityProvider {:?} (id {}; export writes it as {namespace}/{}) looks federated users up by {} (JIT accountLookupAttributeMappings), but its claim mappings map no claim to it: the lookup never matches. Map a claim to it, or look up by a mapped claim.",
                d.idp.name,
                d.idp.id,
                names.idp(&d.idp.name),
                unmapped.join(", ")
            )),
        });
    }
    report.findings.sort();
    report.findings.dedup();
    report
}

/// The certificate findings of declared IdentityProviders against the snapshot. Pure. An IdP
/// matches the server IdP with its displayName; one that is not on the server, or that declares
/// no certificate (the server's is then not managed), has none.
pub fn certificate_drift(
    declared: &[(crate::api::IdentityProvider, Location)],
    snapshot: &TenantSnapshot,
    api_url: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (idp, location) in declared {
        let spec = &idp.spec;
        let Some(server) = snapshot
            .idps
            .iter()
            .find(|d| d.idp.name == spec.display_name)
        else {
            continue;
        };
        let patches =
            crate::controller::translate::certificate_patches(spec, &server.idp.certificate);
        if patches.is_empty() {
            continue;
        }
        let declared_text = describe_declared(spec);
        let server_text = describe_server(&server.idp.certificate);
        out.push(Finding {
            location: location.clone(),
            problem: Problem::Drift(format!(
                "IdentityProvider {}/{} declares {declared_text}, but the server's {:?} ({api_url}identity-providers/{}) has {server_text}: the operator will rewrite it ({} certificate change(s)).",
                idp.metadata.namespace.as_deref().unwrap_or("default"),
                idp.metadata.name.as_deref().unwrap_or_default(),
                server.idp.name,
                server.idp.id,
                patches.len(),
            )),
        });
    }
    out
}

fn describe_declared(spec: &crate::api::IdentityProviderSpec) -> String {
    use crate::controller::translate;
    if let Some(u) = translate::desired_jwks_uri(spec) {
        return format!("JWKS URI {u}");
    }
    if let Some(u) = translate::desired_saml_metadata_uri(spec) {
        return format!("SAML metadata URI {u}");
    }
    let n = translate::desired_certificates(spec).len();
    format!("{n} certificate(s)")
}

fn describe_server(c: &crate::backend::IdpCertificate) -> String {
    match (&c.jwks_uri, &c.saml_metadata_uri) {
        (Some(u), _) => format!("JWKS URI {u}"),
        (_, Some(u)) => format!("SAML metadata URI {u}"),
        _ if c.certificates.is_empty() => "no certificate".to_string(),
        _ => format!("{} other certificate(s)", c.certificates.len()),
    }
}

/// The declared IdentityProviders in the documents (other kinds and objects that do not parse are
/// `lint`'s business, not the audit's).
fn declared_idps(docs: &[lint::Document]) -> Vec<(crate::api::IdentityProvider, Location)> {
    docs.iter()
        .filter(|d| d.value.get("kind").and_then(|k| k.as_str()) == Some("IdentityProvider"))
        .filter_map(|d| {
            serde_json::from_value(d.value.clone())
                .ok()
                .map(|o| (o, d.location.clone()))
        })
        .collect()
}

/// The local claims an IdP's JIT looks users up by that its claim mappings do not map (with the
/// local claim dialect, no mappings, every claim arrives as itself). Pure.
fn unmapped_lookup(d: &crate::backend::inventory::IdpDetail) -> Vec<String> {
    let mapped: Vec<&str> = d
        .idp
        .mappings
        .claim_mappings
        .iter()
        .map(|m| m.local_claim.as_str())
        .collect();
    if !d.jit.enabled || mapped.is_empty() {
        return Vec::new();
    }
    d.jit
        .account_lookup
        .iter()
        .filter_map(|l| l.local_attribute.clone())
        .filter(|a| !mapped.contains(&a.as_str()))
        .collect()
}

/// Runs `audit`: prints the report, returns the exit status.
pub async fn run(args: &AuditArgs) -> i32 {
    let (snapshot, tenant_url) = match args.connection.read().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let needs_local = args
        .local_account_authenticators
        .clone()
        .map(LocalAccountAuthenticators::from_names)
        .unwrap_or_default();
    let api_url = format!("{tenant_url}api/server/v1/");
    let mut report = audit_snapshot(&snapshot, &api_url, &args.namespace, &needs_local);
    if !args.declared.is_empty() {
        let docs = match lint::load_paths(&args.declared) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        report.findings.extend(certificate_drift(
            &declared_idps(&docs),
            &snapshot,
            &api_url,
        ));
        report.findings.sort();
    }
    let flows = snapshot
        .applications
        .iter()
        .filter(|a| a.app.login_flow.kind == FlowKind::UserDefined)
        .count();
    let summary = format!(
        "{} problem(s) in {} application(s) ({} with their own login flow) and {} identity provider(s) on {tenant_url}",
        report.findings.len(),
        snapshot.applications.len(),
        flows,
        snapshot.idps.len(),
    );
    print!("{}", lint::render(&report, args.format, &summary));
    report.exit_code()
}

#[cfg(test)]
mod tests;
