//! Building the `conditions` list the kstatus way: `lastTransitionTime` moves only when a condition's
//! status flips, every condition carries the generation it describes, and abnormal-true conditions
//! (Reconciling, Stalled) are present only while true.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::conditions::{READY, RECONCILING, STALLED};

/// One condition to set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    /// Condition type.
    pub type_: &'static str,
    /// True or False.
    pub status: bool,
    /// CamelCase reason.
    pub reason: String,
    /// What happened and what to do.
    pub message: String,
}

impl Cond {
    /// A condition.
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// How a reconcile ended, summarised for Ready / Reconciling / Stalled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server matches the spec.
    Ready(String),
    /// Still working; will retry without user action.
    Progressing { reason: String, message: String },
    /// Needs a user's action; the message says which.
    Stalled { reason: String, message: String },
}

impl Outcome {
    /// Needs a user's action.
    pub fn stalled(reason: &str, message: impl Into<String>) -> Self {
        Outcome::Stalled {
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// Still working; will retry without user action.
    pub fn progressing(reason: &str, message: impl Into<String>) -> Self {
        Outcome::Progressing {
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// The conditions this outcome stands for.
    pub fn conditions(&self) -> Vec<Cond> {
        match self {
            Outcome::Ready(message) => vec![Cond::new(READY, true, "Reconciled", message.clone())],
            Outcome::Progressing { reason, message } => vec![
                Cond::new(READY, false, reason.clone(), message.clone()),
                Cond::new(RECONCILING, true, reason.clone(), message.clone()),
            ],
            Outcome::Stalled { reason, message } => vec![
                Cond::new(READY, false, reason.clone(), message.clone()),
                Cond::new(STALLED, true, reason.clone(), message.clone()),
            ],
        }
    }

    /// Whether it is Ready.
    pub fn is_ready(&self) -> bool {
        matches!(self, Outcome::Ready(_))
    }
}

/// Merges `wanted` into `previous`: conditions of the managed types not in `wanted` are dropped, a
/// condition whose status did not change keeps its `lastTransitionTime`.
pub fn merge(
    previous: &[Condition],
    wanted: &[Cond],
    managed: &[&str],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = previous
        .iter()
        .filter(|c| {
            !managed.contains(&c.type_.as_str()) && !wanted.iter().any(|w| w.type_ == c.type_)
        })
        .cloned()
        .collect();
    for w in wanted {
        let status = if w.status { "True" } else { "False" }.to_string();
        let old = previous.iter().find(|c| c.type_ == w.type_);
        let last_transition_time = match old {
            Some(o) if o.status == status => o.last_transition_time.clone(),
            _ => now.clone(),
        };
        out.push(Condition {
            type_: w.type_.to_string(),
            status,
            reason: w.reason.clone(),
            message: w.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// The condition of a type, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of a type is True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Every condition type a controller manages, so stale ones are removed.
pub const MANAGED: &[&str] = &[
    READY,
    RECONCILING,
    STALLED,
    crate::api::conditions::INTERCONNECTION_CONFLICT,
    crate::api::conditions::DEGRADED,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().expect("timestamp"))
    }

    #[test]
    fn transition_time_moves_only_on_flip() {
        let first = merge(
            &[],
            &Outcome::Ready("ok".into()).conditions(),
            MANAGED,
            Some(1),
            &t("2026-01-01T00:00:00Z"),
        );
        let same = merge(
            &first,
            &Outcome::Ready("ok again".into()).conditions(),
            MANAGED,
            Some(2),
            &t("2026-01-02T00:00:00Z"),
        );
        assert_eq!(same[0].last_transition_time, t("2026-01-01T00:00:00Z"));
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = merge(
            &same,
            &Outcome::Stalled {
                reason: "X".into(),
                message: "m".into(),
            }
            .conditions(),
            MANAGED,
            Some(3),
            &t("2026-01-03T00:00:00Z"),
        );
        let ready = find(&flipped, READY).expect("ready");
        assert_eq!(ready.last_transition_time, t("2026-01-03T00:00:00Z"));
        assert!(is_true(&flipped, STALLED));
        let back = merge(
            &flipped,
            &Outcome::Ready("ok".into()).conditions(),
            MANAGED,
            Some(3),
            &t("2026-01-04T00:00:00Z"),
        );
        assert!(
            find(&back, STALLED).is_none(),
            "abnormal-true conditions are removed when clear"
        );
    }
}
