//! The login-flow graph and the JIT/MFA interconnection rule. Pure: no Kubernetes, no HTTP.
//!
//! An application's login flow conflicts with identity provider P when P's JIT provisioning is
//! disabled (a missing JIT block counts as disabled) or skipped on lookup failure (on, but users that
//! no local account matches are not provisioned: [`Jit::SkippedOnLookupFailure`]), P is an option in some step i, and a later step
//! j > i has an option whose authenticator keeps its secret on the local account. Alternatives inside
//! one step never conflict with each other: the user picks one. This is stricter than WSO2's console,
//! which checks only IdPs in the subject step and only a fixed list of authenticators.
//!
//! Callers choose what identifies an IdP (a Kubernetes name, a server name): the module only compares
//! keys.
//!
//! The seed's remedy is conditional authentication: a step can be skipped for users who signed in
//! through given IdPs in an earlier step ([`Skip`]). A skipped step does not need those users to have
//! a local account, so the rule asks whether some login can actually reach the local-account step
//! after the IdP without JIT (see [`check_flow`]). The skip reaches the server as a generated
//! conditional-auth script ([`script`]); a script that is not exactly the generated one is not
//! analysed by the rule, but can be proved by simulation ([`proof`]: the script run in an embedded
//! JavaScript engine against a model of the adaptive-authentication API, for every choice a user can
//! make); the emulator's simulated login uses the same engine.

mod index;
pub mod proof;
pub mod script;

pub use index::DependencyIndex;

use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// The `idp` value of a flow option that names a local (resident) authenticator, as the server
/// writes it in an authentication step.
pub const LOCAL_IDP: &str = "LOCAL";

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

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
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

/// Who skips one login step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Skip {
    /// Everybody completes the step.
    #[default]
    Never,
    /// Users who signed in through one of these identity providers (caller's keys) in an earlier
    /// step skip it.
    For(BTreeSet<String>),
    /// Users who signed in through any identity provider in an earlier step skip it.
    FederatedUsers,
}

impl Skip {
    /// Whether signing in through `option` makes a later step with this skip be skipped.
    pub fn triggered_by(&self, option: &FlowOption) -> bool {
        match (self, option) {
            (Skip::For(idps), FlowOption::IdentityProvider(idp)) => idps.contains(idp),
            (Skip::FederatedUsers, FlowOption::IdentityProvider(_)) => true,
            _ => false,
        }
    }
}

/// What is known about the application's conditional-auth script.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ScriptOrigin {
    /// No script: every step runs for everyone.
    #[default]
    None,
    /// Exactly the script [`script::generate`] makes from the flow's skips: its behaviour is the skips.
    Generated,
    /// Some other script: it may skip or add steps in ways the rule cannot see, so it is not analysed
    /// and its conflicts say so.
    NotVerified,
    /// Some other script that was proved safe by simulation: every login through it, with JIT off on
    /// every IdP, ends without a local-account failure (and it uses only the modelled adaptive API).
    /// No conflict can come from this flow.
    Proved,
}

/// A login flow: steps in order, each a list of alternatives, and who skips which step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// The steps; `steps[0]` is step 1.
    pub steps: Vec<Vec<FlowOption>>,
    /// Who skips each step; `skips[i]` belongs to `steps[i]`, and a missing entry is [`Skip::Never`].
    pub skips: Vec<Skip>,
    /// The script the skips come from.
    pub script: ScriptOrigin,
}

impl Flow {
    /// A flow without skips or script.
    pub fn new(steps: Vec<Vec<FlowOption>>) -> Self {
        Self {
            steps,
            ..Self::default()
        }
    }

    /// Who skips step `i` (0-based).
    pub fn skip(&self, i: usize) -> &Skip {
        self.skips.get(i).unwrap_or(&Skip::Never)
    }

    /// Whether some step is skipped for some users.
    pub fn has_skips(&self) -> bool {
        self.skips.iter().any(|s| *s != Skip::Never)
    }

    /// Whether a login can run step `i` (0-based) through `first` and then reach later step `j`,
    /// given the skips: some choice at every other step lets both steps run. The state of
    /// a partial login that matters is which later steps are already skipped (a bit mask), so the
    /// search keeps the set of masks reachable after each step: at most 2^10 of them.
    fn reachable(&self, i: usize, first: &FlowOption, j: usize) -> bool {
        if self.script == ScriptOrigin::Proved {
            return false;
        }
        if !self.has_skips() || self.script == ScriptOrigin::NotVerified {
            return true;
        }
        let n = self.steps.len().min(u16::BITS as usize);
        if j >= n {
            return true; // Outside what the mask can hold (the CRD allows 10 steps): do not prove safe.
        }
        let triggers = |option: &FlowOption, k: usize| -> u16 {
            (k + 1..n)
                .filter(|&l| self.skip(l).triggered_by(option))
                .fold(0, |m, l| m | (1 << l))
        };
        let mut masks: BTreeSet<u16> = BTreeSet::from([0]);
        for k in 0..j {
            let mut next = BTreeSet::new();
            for &mask in &masks {
                let skipped = mask & (1 << k) != 0;
                if k == i {
                    if !skipped {
                        next.insert(mask | triggers(first, k));
                    }
                } else if skipped {
                    next.insert(mask);
                } else {
                    for option in &self.steps[k] {
                        next.insert(mask | triggers(option, k));
                    }
                }
            }
            masks = next;
            if masks.is_empty() {
                return false;
            }
        }
        masks.iter().any(|m| m & (1 << j) == 0)
    }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Jit {
    /// JIT provisioning creates local accounts.
    Enabled,
    /// JIT is on, but the server first looks the federated user up by its account-lookup mappings
    /// and, with `skipJITForLookupFailure`, provisions nobody whom no local account matches: those
    /// users have no local account, exactly as with JIT off.
    SkippedOnLookupFailure,
    /// JIT provisioning is off.
    Disabled,
    /// No JIT block at all: counts as disabled.
    Missing,
}

impl Jit {
    /// The state of a JIT configuration: `enabled`, whether it has account-lookup mappings, and
    /// whether it skips provisioning when the lookup finds nobody. The skip means nothing without
    /// mappings (there is no lookup to fail), so it counts only with them.
    pub fn from_settings(
        enabled: bool,
        account_lookup: bool,
        skip_on_lookup_failure: bool,
    ) -> Self {
        match (enabled, account_lookup && skip_on_lookup_failure) {
            (false, _) => Jit::Disabled,
            (true, true) => Jit::SkippedOnLookupFailure,
            (true, false) => Jit::Enabled,
        }
    }

    /// Whether every federated user of this IdP gets a local account (matched or provisioned).
    pub fn provisions_local_accounts(self) -> bool {
        self == Jit::Enabled
    }

    /// How many users get a local account: the order [`Jit::weaker`] compares by.
    fn rank(self) -> u8 {
        match self {
            Jit::Missing => 0,
            Jit::Disabled => 1,
            Jit::SkippedOnLookupFailure => 2,
            Jit::Enabled => 3,
        }
    }

    /// Of two views of one IdP (declared and on the server), the one that provisions fewer users:
    /// a login fails if either would make it fail.
    pub fn weaker(self, other: Jit) -> Jit {
        if other.rank() < self.rank() {
            other
        } else {
            self
        }
    }

    /// The value of `status.jit` (as observed on the server).
    pub fn status_value(self) -> &'static str {
        match self {
            Jit::Enabled => "Enabled",
            Jit::SkippedOnLookupFailure => "SkippedOnLookupFailure",
            Jit::Disabled | Jit::Missing => "Disabled",
        }
    }

    /// The state a `status.jit` value names; `None` for a value this version does not write.
    pub fn from_status_value(value: &str) -> Option<Jit> {
        match value {
            "Enabled" => Some(Jit::Enabled),
            "SkippedOnLookupFailure" => Some(Jit::SkippedOnLookupFailure),
            "Disabled" => Some(Jit::Disabled),
            _ => None,
        }
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
    /// The application has a conditional-auth script the operator did not generate: it might skip
    /// the step, but that is not proved, so the conflict stands.
    pub unverified_script: bool,
    /// JIT is on for the identity provider but skipped on lookup failure
    /// ([`Jit::SkippedOnLookupFailure`]): its users whom no local account matches have none.
    pub lookup_skip: bool,
}

/// What the user can do about a conflict, appended to every conflict message: enable JIT, or skip
/// the step for the IdP's users (the seed's remedy, generated as a conditional-auth script).
pub const REMEDY: &str = "Enable JIT provisioning on the identity provider, or skip the step for its users with skipFor on that step (skipFor: {identityProviders: [{name: ...}]} or {federatedUsers: true}; the operator generates the conditional-auth script).";

/// The remedy when JIT is on but skipped on lookup failure: provision the unmatched users too, or
/// skip the step for them.
pub const LOOKUP_SKIP_REMEDY: &str = "Turn skipForLookupFailure off in the identity provider's jit (users that no local account matches are then provisioned), or skip the step for its users with skipFor on that step (skipFor: {identityProviders: [{name: ...}]} or {federatedUsers: true}; the operator generates the conditional-auth script).";

/// Said of an application whose conditional-auth script was not written by the operator.
pub const UNVERIFIED_SCRIPT: &str =
    "has a conditional-auth script that was not verified (not generated by the operator from skipFor)";

impl Conflict {
    /// The note on the script, when there is one to make (with a leading space).
    pub fn script_note(&self) -> String {
        if self.unverified_script {
            format!(
                " The application {} {UNVERIFIED_SCRIPT}, so the conflict stands.",
                self.application
            )
        } else {
            String::new()
        }
    }
}

impl Conflict {
    /// Why the identity provider's users can lack a local account, for messages.
    pub fn why_no_account(&self) -> &'static str {
        if self.lookup_skip {
            "JIT provisioning is on but skipped on lookup failure (skipForLookupFailure with accountLookup), so users that no local account matches get none"
        } else {
            "JIT provisioning is disabled on it"
        }
    }

    /// The remedy for this conflict.
    pub fn remedy(&self) -> &'static str {
        if self.lookup_skip {
            LOOKUP_SKIP_REMEDY
        } else {
            REMEDY
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "application {} offers identity provider {} in step {} but {}, \
             and step {} offers {}, which needs a local account: users who sign in with {} will fail at step {}.{} {}",
            self.application,
            self.identity_provider,
            self.identity_provider_step,
            self.why_no_account(),
            self.authenticator_step,
            self.authenticator,
            self.identity_provider,
            self.authenticator_step,
            self.script_note(),
            self.remedy(),
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

/// Checks one application's flow against the identity providers' JIT settings. With skips, a pair
/// (IdP without JIT in step i, local-account authenticator in step j) is a conflict only when some
/// login runs both steps: that is, exactly when some login of a federated user fails for want of a
/// local account (proved against the emulator's script engine by a property test).
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
                        if needs_local.contains(name) && flow.reachable(i, option, j) {
                            out.conflicts.push(Conflict {
                                application: application.to_string(),
                                identity_provider: idp.clone(),
                                identity_provider_step: i + 1,
                                authenticator: name.clone(),
                                authenticator_step: j + 1,
                                unverified_script: flow.script == ScriptOrigin::NotVerified,
                                lookup_skip: *jit == Jit::SkippedOnLookupFailure,
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
