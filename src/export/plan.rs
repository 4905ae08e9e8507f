//! The pure half of `export`: a tenant snapshot in, the custom resources that describe it out, with
//! the Secrets to create and a report of what the resources cannot express.
//!
//! Specs are built as JSON and parsed with the operator's own types, so a field added to a kind later
//! (with a default) does not break this code, and an invalid spec is caught here, not by the apiserver.
//! Every exported object is then checked with the controller's own diff functions
//! (`controller::translate`): whatever the operator would still write on adoption is reported.

use std::collections::{BTreeSet, HashMap};

use serde_json::json;

use crate::api::{Application, IdentityProvider};
use crate::api::{DeletionPolicy, IdentityBackend, IdentityBackendSpec};
use crate::backend::asgardeo::Target;
use crate::backend::inventory::TenantSnapshot;

mod app;
mod idp;

use app::app_object;
#[cfg(test)]
pub(crate) use idp::certificates_expressible;
use idp::idp_object;

/// The key every exported client-secret Secret uses.
pub const CLIENT_SECRET_KEY: &str = "client-secret";
/// The key export uses in the Secret it asks for an Apple IdP: the private key's PEM text.
pub const APPLE_PRIVATE_KEY_KEY: &str = "private-key";

/// The longest Kubernetes object name export produces (a DNS-1123 label, so it also fits everywhere a
/// label is needed).
const MAX_NAME: usize = 63;

/// What to export into.
#[derive(Clone, Debug)]
pub struct Options {
    /// Namespace of every object.
    pub namespace: String,
    /// Name of the IdentityBackend.
    pub backend_name: String,
    /// Where the tenant is.
    pub target: Target,
    /// Name of the Secret with the M2M credentials.
    pub credentials_secret: String,
    /// Deletion policy of every exported object.
    pub deletion_policy: DeletionPolicy,
}

/// A Secret the user must create before applying (export never knows or writes its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretToCreate {
    /// Secret name.
    pub name: String,
    /// Keys it must hold.
    pub keys: Vec<String>,
    /// What goes in it.
    pub purpose: String,
    /// The value of the consent label (`identity-operator.io/use`) it must carry.
    pub usage: &'static str,
}

/// How serious a report entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoteKind {
    /// The object was not exported at all.
    Skipped,
    /// Exported, but a part of it stays on the server unmanaged.
    NotManaged,
    /// Exported, and the operator will change this on the server when it adopts the object.
    WillChange,
}

impl NoteKind {
    /// A short label for the report.
    pub fn label(self) -> &'static str {
        match self {
            NoteKind::Skipped => "not exported",
            NoteKind::NotManaged => "left unmanaged",
            NoteKind::WillChange => "will change on adoption",
        }
    }
}

/// One report entry: something the resources cannot express, or a change adoption would make.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    /// What kind of problem.
    pub kind: NoteKind,
    /// `IdentityProvider` or `Application`.
    pub object_kind: &'static str,
    /// The server name.
    pub server_name: String,
    /// What it was exported as, when it was.
    pub exported_as: Option<String>,
    /// What and why.
    pub message: String,
}

/// The exported objects, in server list order.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The IdentityBackend.
    pub backend: IdentityBackend,
    /// (server name, server id, object).
    pub idps: Vec<(String, String, IdentityProvider)>,
    /// (server name, server id, object).
    pub applications: Vec<(String, String, Application)>,
    /// Secrets to create first.
    pub secrets: Vec<SecretToCreate>,
    /// The report, sorted.
    pub notes: Vec<Note>,
}

/// Kubernetes names for server names: DNS-1123 labels, unique per kind, stable for a given tenant
/// (assigned in server list order). `audit` uses the same names, so its messages match `lint`'s on
/// the exported files.
#[derive(Clone, Debug, Default)]
pub struct Names {
    idps: HashMap<String, String>,
    apps: HashMap<String, String>,
}

impl Names {
    /// Names every IdP and application of the snapshot, exportable or not.
    pub fn new(snapshot: &TenantSnapshot) -> Self {
        Self {
            idps: assign(snapshot.idps.iter().map(|d| d.idp.name.as_str()), "idp"),
            apps: assign(
                snapshot.applications.iter().map(|d| d.app.name.as_str()),
                "app",
            ),
        }
    }

    /// The Kubernetes name of an IdP, by server name.
    pub fn idp(&self, server_name: &str) -> String {
        self.idps
            .get(server_name)
            .cloned()
            .unwrap_or_else(|| dns_label(server_name, "idp"))
    }

    /// The Kubernetes name of an application, by server name.
    pub fn app(&self, server_name: &str) -> String {
        self.apps
            .get(server_name)
            .cloned()
            .unwrap_or_else(|| dns_label(server_name, "app"))
    }
}

/// A DNS-1123 label made from any text: lower case, runs of other characters become one dash, no
/// dash at either end, at most 63 characters; `fallback` when nothing is left.
pub fn dns_label(text: &str, fallback: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(MAX_NAME).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        fallback.to_string()
    } else {
        out
    }
}

fn assign<'a>(
    server_names: impl Iterator<Item = &'a str>,
    fallback: &str,
) -> HashMap<String, String> {
    let mut taken = BTreeSet::new();
    let mut out = HashMap::new();
    for name in server_names {
        if out.contains_key(name) {
            continue;
        }
        let base = dns_label(name, fallback);
        let mut candidate = base.clone();
        let mut n = 2;
        while taken.contains(&candidate) {
            let suffix = format!("-{n}");
            let keep = MAX_NAME - suffix.len();
            candidate = format!(
                "{}{suffix}",
                base.chars()
                    .take(keep)
                    .collect::<String>()
                    .trim_end_matches('-')
            );
            n += 1;
        }
        taken.insert(candidate.clone());
        out.insert(name.to_string(), candidate);
    }
    out
}

fn policy(p: DeletionPolicy) -> &'static str {
    match p {
        DeletionPolicy::Delete => "Delete",
        DeletionPolicy::Orphan => "Orphan",
    }
}

struct Ctx<'a> {
    opts: &'a Options,
    names: &'a Names,
    notes: Vec<Note>,
}

impl Ctx<'_> {
    fn note(
        &mut self,
        kind: NoteKind,
        object_kind: &'static str,
        server_name: &str,
        exported_as: Option<&str>,
        message: impl Into<String>,
    ) {
        self.notes.push(Note {
            kind,
            object_kind,
            server_name: server_name.to_string(),
            exported_as: exported_as.map(str::to_string),
            message: message.into(),
        });
    }

    /// Whether a server name can be a `displayName` (the CRDs allow 120 characters); a name that
    /// cannot is noted as skipped, since renaming it on export would rename it on the server.
    /// The same holds for the characters the CRDs' CEL rules refuse (controls, line separators,
    /// surrounding whitespace): the exported object would not apply.
    fn display_name_fits(&mut self, object_kind: &'static str, server_name: &str) -> bool {
        let problem = if server_name.chars().count() > DISPLAY_NAME_MAX {
            Some(format!(
                "its name is longer than the {DISPLAY_NAME_MAX} characters displayName allows"
            ))
        } else {
            crate::api::common::display_name_problem(server_name)
                .map(|p| format!("its name cannot be a displayName: {p}"))
        };
        let Some(message) = problem else {
            return true;
        };
        self.note(NoteKind::Skipped, object_kind, server_name, None, message);
        false
    }
}

/// The longest `displayName` the CRDs accept (`#[schemars(length(max = 120))]` on both kinds).
const DISPLAY_NAME_MAX: usize = 120;

/// Builds the plan. Pure: same snapshot and options, same output.
pub fn plan(snapshot: &TenantSnapshot, opts: &Options) -> Plan {
    let names = Names::new(snapshot);
    let mut ctx = Ctx {
        opts,
        names: &names,
        notes: Vec::new(),
    };
    let backend = backend_object(opts);
    let mut secrets = vec![SecretToCreate {
        name: opts.credentials_secret.clone(),
        keys: vec!["client-id".into(), "client-secret".into()],
        purpose: "the M2M application the operator logs in with (client_credentials); client-id is the one given to export".into(),
        usage: crate::controller::USE_BACKEND_CREDENTIALS,
    }];

    // IdP server name -> (Kubernetes name, authenticator name its flows use) for exported IdPs.
    let mut exported_idps: HashMap<String, (String, String)> = HashMap::new();
    let mut idps = Vec::new();
    for d in &snapshot.idps {
        if let Some((obj, secret)) = idp_object(&mut ctx, d) {
            let kind = obj
                .spec
                .provider_type()
                .map(|t| t.authenticator_name().to_string());
            exported_idps.insert(
                d.idp.name.clone(),
                (
                    obj.metadata.name.clone().unwrap_or_default(),
                    kind.unwrap_or_default(),
                ),
            );
            secrets.extend(secret);
            idps.push((d.idp.name.clone(), d.idp.id.clone(), obj));
        }
    }
    let mut applications = Vec::new();
    for d in &snapshot.applications {
        if let Some(obj) = app_object(&mut ctx, d, &exported_idps) {
            applications.push((d.app.name.clone(), d.app.id.clone(), obj));
        }
    }
    let mut notes = ctx.notes;
    notes.sort();
    Plan {
        backend,
        idps,
        applications,
        secrets,
        notes,
    }
}

fn backend_object(opts: &Options) -> IdentityBackend {
    let target = match &opts.target {
        Target::Asgardeo { organization } => json!({"asgardeo": {"organization": organization}}),
        Target::Wso2IdentityServer { url, tenant } => {
            json!({"wso2IdentityServer": {"url": url, "tenant": tenant}})
        }
    };
    let mut spec = target;
    spec["credentialsSecretRef"] = json!({"name": opts.credentials_secret});
    let spec: IdentityBackendSpec =
        serde_json::from_value(spec).expect("a backend spec built from known fields parses");
    let mut obj = IdentityBackend::new(&opts.backend_name, spec);
    obj.metadata.namespace = Some(opts.namespace.clone());
    obj
}
