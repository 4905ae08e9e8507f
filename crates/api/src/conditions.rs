//! Condition types and reasons (constants, so tools and tests can rely on them), following kstatus:
//! `Ready` is the summary, `Reconciling` / `Stalled` are abnormal-true conditions.

/// The summary condition: True when the server matches the spec.
pub const READY: &str = "Ready";
/// True while the operator is still working towards the spec.
pub const RECONCILING: &str = "Reconciling";
/// True when progress needs a user's action (the reason says which).
pub const STALLED: &str = "Stalled";
/// True when JIT is disabled on an IdP that an application's MFA depends on.
pub const INTERCONNECTION_CONFLICT: &str = "InterconnectionConflict";
/// On an IdentityBackend: True while its server misbehaves (timeouts, oversized answers, lists
/// without end); the reason says which. Its objects then get one reconcile slot and back off.
/// Absent otherwise (an abnormal-true condition, like Stalled).
pub const DEGRADED: &str = "Degraded";
