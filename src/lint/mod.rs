//! `identity-operator lint`: the conflict check for a GitOps repository, before anything is applied.
//!
//! Steps: load every YAML document under the given paths (multi-document files, other kinds
//! ignored) → parse the three kinds with the operator's own types → resolve references inside each
//! namespace → run the same conflict rule as the operator (`crate::flow`) → report with file and
//! document position. Exit status: 0 clean, 1 problems found, 2 unreadable input.

mod format;
mod load;

pub use format::{render, run_cli, Format};
pub use load::{load_paths, Document, LoadError};

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::api::{Application, IdentityBackend, IdentityProvider, GROUP, VERSION};
use crate::flow::{self, Flow, FlowOption, Jit, LocalAccountAuthenticators};

/// Where a finding points: a file and a document in it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// The file, as given or found under a given folder.
    pub file: String,
    /// The line the document starts on (1-based); 0 when the finding is about an object on a live
    /// server rather than in a file (then `file` is the object's URL).
    pub line: usize,
    /// The position of the document in the file (1-based).
    pub document: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // Not a place in a file: an object on a live server (`audit`).
            return write!(f, "{}", self.file);
        }
        write!(
            f,
            "{}:{} (document {})",
            self.file, self.line, self.document
        )
    }
}

/// What lint found wrong.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// An application's login flow needs a local account after an IdP without JIT provisioning.
    Conflict(String),
    /// A reference to an object that is not in the given files.
    DanglingReference(String),
    /// An object of one of our kinds that does not parse, or two objects that clash.
    Invalid(String),
    /// A declared object that the server holds differently (`audit --declared`): the operator would
    /// rewrite it on its next pass.
    Drift(String),
}

impl Problem {
    /// The rule id tools show (SARIF `ruleId`, annotation title).
    pub fn rule_id(&self) -> &'static str {
        match self {
            Problem::Conflict(_) => "InterconnectionConflict",
            Problem::DanglingReference(_) => "DanglingReference",
            Problem::Invalid(_) => "Invalid",
            Problem::Drift(_) => "Drift",
        }
    }

    /// The message without the rule id.
    pub fn message(&self) -> &str {
        match self {
            Problem::Conflict(m)
            | Problem::DanglingReference(m)
            | Problem::Invalid(m)
            | Problem::Drift(m) => m,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Conflict(m) => write!(f, "InterconnectionConflict: {m}"),
            Problem::DanglingReference(m) => write!(f, "DanglingReference: {m}"),
            Problem::Invalid(m) => write!(f, "Invalid: {m}"),
            Problem::Drift(m) => write!(f, "Drift: {m}"),
        }
    }
}

/// One finding with its place.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Where it is.
    pub location: Location,
    /// What it is.
    pub problem: Problem,
}

/// The result of a lint run.
#[derive(Debug, Default)]
pub struct Report {
    /// Every finding, sorted by place.
    pub findings: Vec<Finding>,
    /// How many documents of the three kinds were read.
    pub objects: usize,
    /// How many files were read.
    pub files: usize,
}

impl Report {
    /// The process exit status: 0 when clean, 1 when something was found.
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.findings.is_empty())
    }
}

/// A parsed object with its place, keyed by (namespace, name).
struct Placed<T> {
    object: T,
    location: Location,
}

type Key = (String, String);

fn key_of(ns: Option<&String>, name: Option<&String>) -> Key {
    (
        ns.cloned().unwrap_or_else(|| "default".to_string()),
        name.cloned().unwrap_or_default(),
    )
}

/// The conflict message, shared by `lint` (files) and `audit` (a live tenant) so that both say the
/// same thing from "step" on. `app` and `idp` name the objects (`namespace/name` in files, the
/// server's names in an audit); `idp_place` says where the IdP is; `jit` completes "which ..."
/// (e.g. `has jit.enabled: false`); `short` is the IdentityProvider's Kubernetes name that the
/// remedy (`skipFor`) refers to.
pub fn conflict_message(
    app: &str,
    idp: &str,
    idp_place: &str,
    jit: &str,
    c: &flow::Conflict,
    short: &str,
) -> String {
    format!(
        "Application {app} step {} offers IdentityProvider {idp} ({idp_place}), which {jit}; step {} offers {}, which needs a local account, so its users fail at step {}. {} on {short}, or add skipFor: {{identityProviders: [{{name: {short}}}]}} to step {} (the operator generates the conditional-auth script that skips it for those users).",
        c.identity_provider_step, c.authenticator_step, c.authenticator, c.authenticator_step,
        if c.lookup_skip { "Turn skipForLookupFailure off in the jit" } else { "Enable JIT" },
        c.authenticator_step
    )
}

/// The part of a conflict message that `lint` and `audit` word alike: the steps, the authenticator
/// and the remedy. The names and places before it differ by design (files name objects by their
/// Kubernetes names, an audit by the server's names and ids), and so does the "which ..." of the
/// IdP's JIT. Other messages come back whole.
pub fn from_the_steps_on(m: &str) -> String {
    let step = m
        .find(") step ")
        .map(|i| i + 1)
        .or_else(|| m.find(" step "));
    match (
        step,
        m.find(" offers IdentityProvider "),
        m.find(", which "),
    ) {
        (Some(a), Some(b), Some(c)) if a < b && b < c => {
            let rest = &m[c..];
            let rest = rest.split_once("; step ").map(|x| x.1).unwrap_or(rest);
            format!("{}; step {rest}", &m[a..b])
        }
        _ => m.to_string(),
    }
}

/// Lints already loaded documents.
pub fn lint_documents(docs: &[Document]) -> Report {
    let mut report = Report {
        files: docs
            .iter()
            .map(|d| d.location.file.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        ..Report::default()
    };
    let mut backends: BTreeMap<Key, Placed<IdentityBackend>> = BTreeMap::new();
    let mut idps: BTreeMap<Key, Placed<IdentityProvider>> = BTreeMap::new();
    let mut apps: BTreeMap<Key, Placed<Application>> = BTreeMap::new();
    let mut problem = |location: &Location, problem: Problem| {
        report.findings.push(Finding {
            location: location.clone(),
            problem,
        })
    };

    for doc in docs {
        let api_version = doc.value.get("apiVersion").and_then(|v| v.as_str());
        let kind = doc.value.get("kind").and_then(|v| v.as_str()).unwrap_or("");
        if api_version != Some(&format!("{GROUP}/{VERSION}")) {
            continue; // Other kinds (including Argo CD's Application) are not ours.
        }
        report.objects += 1;
        let loc = &doc.location;
        let value = doc.value.clone();
        macro_rules! parse_into {
            ($ty:ty, $map:ident) => {
                match serde_json::from_value::<$ty>(value) {
                    Ok(o) => {
                        let k = key_of(o.metadata.namespace.as_ref(), o.metadata.name.as_ref());
                        if k.1.is_empty() {
                            problem(
                                loc,
                                Problem::Invalid(format!("{kind} without metadata.name")),
                            );
                        } else if let Some(first) = $map.get(&k) {
                            problem(
                                loc,
                                Problem::Invalid(format!(
                                    "{kind} {}/{} is declared twice (first at {})",
                                    k.0, k.1, first.location
                                )),
                            );
                        } else {
                            $map.insert(
                                k,
                                Placed {
                                    object: o,
                                    location: loc.clone(),
                                },
                            );
                        }
                    }
                    Err(e) => problem(
                        loc,
                        Problem::Invalid(format!("{kind} does not match the schema: {e}")),
                    ),
                }
            };
        }
        match kind {
            "IdentityBackend" => parse_into!(IdentityBackend, backends),
            "IdentityProvider" => parse_into!(IdentityProvider, idps),
            "Application" => parse_into!(Application, apps),
            other => problem(
                loc,
                Problem::Invalid(format!("unknown kind {other:?} in {GROUP}/{VERSION}")),
            ),
        }
    }

    // Backend references, and two IdPs or two applications with one server name on one backend
    // (they would overwrite each other on the server).
    let mut server_names: HashMap<(String, &str, &str, &str), &Location> = HashMap::new();
    for ((ns, name), p) in &idps {
        let b = &p.object.spec.backend_ref.name;
        if !backends.contains_key(&(ns.clone(), b.clone())) {
            problem(&p.location, Problem::DanglingReference(format!(
                "IdentityProvider {ns}/{name} references IdentityBackend {ns}/{b}, which is not declared"
            )));
        }
        let k = (
            ns.clone(),
            b.as_str(),
            "IdentityProvider",
            p.object.spec.display_name.as_str(),
        );
        if let Some(first) = server_names.insert(k, &p.location) {
            problem(&p.location, Problem::Invalid(format!(
                "IdentityProvider {ns}/{name} uses displayName {:?}, already used on backend {b} at {first}",
                p.object.spec.display_name
            )));
        }
    }
    for ((ns, name), p) in &apps {
        let b = &p.object.spec.backend_ref.name;
        if !backends.contains_key(&(ns.clone(), b.clone())) {
            problem(
                &p.location,
                Problem::DanglingReference(format!(
                "Application {ns}/{name} references IdentityBackend {ns}/{b}, which is not declared"
            )),
            );
        }
        let k = (
            ns.clone(),
            b.as_str(),
            "Application",
            p.object.spec.display_name.as_str(),
        );
        if let Some(first) = server_names.insert(k, &p.location) {
            problem(&p.location, Problem::Invalid(format!(
                "Application {ns}/{name} uses displayName {:?}, already used on backend {b} at {first}",
                p.object.spec.display_name
            )));
        }
    }

    // The conflict rule, per application, with the authenticator set of the application's backend.
    for ((ns, name), p) in &apps {
        let Some(login) = &p.object.spec.login_flow else {
            continue;
        };
        let flow = Flow {
            steps: login
                .steps
                .iter()
                .map(|s| {
                    s.options
                        .iter()
                        .filter_map(|o| match (&o.authenticator, &o.identity_provider_ref) {
                            (Some(a), _) => Some(FlowOption::Authenticator(a.clone())),
                            (None, Some(r)) => Some(FlowOption::IdentityProvider(r.name.clone())),
                            (None, None) => None,
                        })
                        .collect()
                })
                .collect(),
            // The operator generates the script from these skips, so lint may rely on them.
            skips: login
                .steps
                .iter()
                .map(|s| match &s.skip_for {
                    None => flow::Skip::Never,
                    Some(k) if k.federated_users => flow::Skip::FederatedUsers,
                    Some(k) => flow::Skip::For(
                        k.identity_providers
                            .iter()
                            .map(|r| r.name.clone())
                            .collect(),
                    ),
                })
                .collect(),
            script: flow::ScriptOrigin::Generated,
        };
        let known: HashMap<String, Jit> = idps
            .iter()
            .filter(|((idp_ns, _), _)| idp_ns == ns)
            .map(|((_, idp_name), idp)| {
                (
                    idp_name.clone(),
                    // Offline: undeclared lookup fields are unknown, so they count as not set.
                    crate::controller::translate::declared_jit(&idp.object.spec, None),
                )
            })
            .collect();
        let needs_local = backends
            .get(&(ns.clone(), p.object.spec.backend_ref.name.clone()))
            .and_then(|b| b.object.spec.local_account_authenticators.clone())
            .map(LocalAccountAuthenticators::from_names)
            .unwrap_or_default();
        let analysis = flow::check_flow(name, &flow, &known, &needs_local);
        for c in analysis.conflicts {
            let idp = &idps[&(ns.clone(), c.identity_provider.clone())];
            let jit = if idp.object.spec.jit.is_none() {
                "has no jit block (counts as disabled)"
            } else if c.lookup_skip {
                "has jit.enabled: true but skipForLookupFailure: true with accountLookup (JIT is skipped for users that no local account matches: they get none)"
            } else {
                "has jit.enabled: false"
            };
            problem(
                &p.location,
                Problem::Conflict(conflict_message(
                    &format!("{ns}/{name}"),
                    &format!("{ns}/{}", c.identity_provider),
                    &idp.location.to_string(),
                    jit,
                    &c,
                    &c.identity_provider,
                )),
            );
        }
        for u in analysis.unknown_references {
            problem(&p.location, Problem::DanglingReference(format!(
                "Application {ns}/{name} step {} references IdentityProvider {ns}/{}, which is not declared",
                u.step, u.identity_provider
            )));
        }
        // An IdP on another backend cannot be used by this application's flow.
        for idp_name in flow.identity_providers() {
            if let Some(idp) = idps.get(&(ns.clone(), idp_name.to_string())) {
                if idp.object.spec.backend_ref != p.object.spec.backend_ref {
                    problem(&p.location, Problem::Invalid(format!(
                        "Application {ns}/{name} is on backend {} but IdentityProvider {ns}/{idp_name} is on backend {}",
                        p.object.spec.backend_ref.name, idp.object.spec.backend_ref.name
                    )));
                }
            }
        }
    }

    report.findings.sort();
    report.findings.dedup();
    report
}

#[cfg(test)]
mod tests;
