//! The login-flow graph and the JIT/MFA interconnection rule. Pure: no Kubernetes, no HTTP.
//!
//! An application's login flow conflicts with identity provider P when P's JIT provisioning is
//! disabled (a missing JIT block counts as disabled), P is an option in some step i, and a later step
//! j > i has an option whose authenticator keeps its secret on the local account. Alternatives inside
//! one step never conflict with each other: the user picks one. This is stricter than WSO2's console,
//! which checks only IdPs in the subject step and only a fixed list of authenticators.
//!
//! Callers choose what identifies an IdP (a Kubernetes name, a server name): the module only compares
//! keys.

mod index;

pub use index::DependencyIndex;

use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// Authenticators that keep their secret on the local account, by their server names (product.md).
pub const DEFAULT_LOCAL_ACCOUNT_AUTHENTICATORS: &[&str] = &[
    "totp",
    "FIDOAuthenticator",
    "backup-code-authenticator",
    "email-otp-authenticator",
    "IproovAuthenticator",
    "DuoAuthenticator",
    "password-reset-enforcer",
];

/// The set of authenticators that need a local account. Data, not code: a backend may replace it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAccountAuthenticators(BTreeSet<String>);

impl Default for LocalAccountAuthenticators {
    fn default() -> Self {
        Self::from_names(DEFAULT_LOCAL_ACCOUNT_AUTHENTICATORS.iter().copied())
    }
}

impl LocalAccountAuthenticators {
    /// A set made of the given names (replacing the default list).
    pub fn from_names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self(names.into_iter().map(Into::into).collect())
    }

    /// Whether `authenticator` needs a local account.
    pub fn contains(&self, authenticator: &str) -> bool {
        self.0.contains(authenticator)
    }
}

/// One alternative in a login step.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FlowOption {
    /// A local authenticator, by server name (`totp`, `BasicAuthenticator`, ...).
    Authenticator(String),
    /// A federated identity provider, by the caller's key.
    IdentityProvider(String),
}

/// A login flow: steps in order, each a list of alternatives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// The steps; `steps[0]` is step 1.
    pub steps: Vec<Vec<FlowOption>>,
}

impl Flow {
    /// The distinct identity providers the flow offers, in order of first appearance.
    pub fn identity_providers(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.steps
            .iter()
            .flatten()
            .filter_map(|o| match o {
                FlowOption::IdentityProvider(idp) if seen.insert(idp.as_str()) => {
                    Some(idp.as_str())
                }
                _ => None,
            })
            .collect()
    }
}

/// JIT provisioning as declared or observed for one identity provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jit {
    /// JIT provisioning creates local accounts.
    Enabled,
    /// JIT provisioning is off.
    Disabled,
    /// No JIT block at all: counts as disabled.
    Missing,
}

impl Jit {
    /// Whether federated users of this IdP get a local account.
    pub fn provisions_local_accounts(self) -> bool {
        self == Jit::Enabled
    }
}

impl From<Option<bool>> for Jit {
    fn from(value: Option<bool>) -> Self {
        match value {
            Some(true) => Jit::Enabled,
            Some(false) => Jit::Disabled,
            None => Jit::Missing,
        }
    }
}

/// A conflict with its explanation: which IdP in which step, which authenticator in which later step.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Conflict {
    /// The application (caller's key).
    pub application: String,
    /// The identity provider without JIT (caller's key).
    pub identity_provider: String,
    /// The 1-based step that offers the identity provider.
    pub identity_provider_step: usize,
    /// The authenticator that needs a local account.
    pub authenticator: String,
    /// The 1-based later step that offers that authenticator.
    pub authenticator_step: usize,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "application {} offers identity provider {} in step {} but JIT provisioning is disabled on it, \
             and step {} offers {}, which needs a local account: users who sign in with {} will fail at step {}",
            self.application,
            self.identity_provider,
            self.identity_provider_step,
            self.authenticator_step,
            self.authenticator,
            self.identity_provider,
            self.authenticator_step,
        )
    }
}

/// A flow option naming an identity provider that is not known.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnknownReference {
    /// The application (caller's key).
    pub application: String,
    /// The identity provider key that was not found.
    pub identity_provider: String,
    /// The 1-based step of the option.
    pub step: usize,
}

/// The outcome of checking one or more flows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Every conflict, sorted.
    pub conflicts: Vec<Conflict>,
    /// Every reference to an identity provider that is not in the given set, sorted.
    pub unknown_references: Vec<UnknownReference>,
}

/// Checks one application's flow against the identity providers' JIT settings.
pub fn check_flow(
    application: &str,
    flow: &Flow,
    idps: &HashMap<String, Jit>,
    needs_local: &LocalAccountAuthenticators,
) -> Analysis {
    let mut out = Analysis::default();
    // The last step index at which each local-account authenticator appears is not enough: every
    // (IdP step, authenticator step) pair is reported so the message can name both.
    for (i, step) in flow.steps.iter().enumerate() {
        for option in step {
            let FlowOption::IdentityProvider(idp) = option else {
                continue;
            };
            let Some(jit) = idps.get(idp) else {
                out.unknown_references.push(UnknownReference {
                    application: application.to_string(),
                    identity_provider: idp.clone(),
                    step: i + 1,
                });
                continue;
            };
            if jit.provisions_local_accounts() {
                continue;
            }
            for (j, later) in flow.steps.iter().enumerate().skip(i + 1) {
                for later_option in later {
                    if let FlowOption::Authenticator(name) = later_option {
                        if needs_local.contains(name) {
                            out.conflicts.push(Conflict {
                                application: application.to_string(),
                                identity_provider: idp.clone(),
                                identity_provider_step: i + 1,
                                authenticator: name.clone(),
                                authenticator_step: j + 1,
                            });
                        }
                    }
                }
            }
        }
    }
    out.conflicts.sort();
    out.conflicts.dedup();
    out.unknown_references.sort();
    out.unknown_references.dedup();
    out
}

/// Checks many applications at once.
pub fn check_all<'a>(
    apps: impl IntoIterator<Item = (&'a str, &'a Flow)>,
    idps: &HashMap<String, Jit>,
    needs_local: &LocalAccountAuthenticators,
) -> Analysis {
    let mut out = Analysis::default();
    for (app, flow) in apps {
        let one = check_flow(app, flow, idps, needs_local);
        out.conflicts.extend(one.conflicts);
        out.unknown_references.extend(one.unknown_references);
    }
    out.conflicts.sort();
    out.unknown_references.sort();
    out
}

#[cfg(test)]
mod tests;
