//! References and policies shared by the kinds.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// CEL rule on every `displayName`: no control characters (C0, DEL, C1: newlines, tabs, NEL) and no
/// line or paragraph separators (U+2028, U+2029). Display names reach the server's login flows and,
/// as escaped string literals, the generated conditional-auth script (issue 24).
pub const DISPLAY_NAME_CHARACTERS_RULE: &str = r"!self.matches('[\\p{Cc}\\p{Zl}\\p{Zp}]')";
/// Message of [`DISPLAY_NAME_CHARACTERS_RULE`].
pub const DISPLAY_NAME_CHARACTERS_MESSAGE: &str =
    "displayName must not contain control characters (such as newlines or tabs) or line or paragraph separators (U+2028, U+2029)";
/// CEL rule on every `displayName`: no leading or trailing whitespace (RE2's `\s` is ASCII only, so
/// the Unicode spaces `\p{Z}` too). The server trims names: an untrimmed one would never equal the
/// server's and be renamed on every resync.
pub const DISPLAY_NAME_TRIMMED_RULE: &str = r"!self.matches('^[\\s\\p{Z}]|[\\s\\p{Z}]$')";
/// Message of [`DISPLAY_NAME_TRIMMED_RULE`].
pub const DISPLAY_NAME_TRIMMED_MESSAGE: &str =
    "displayName must not start or end with whitespace (the server trims names)";

/// What [`DISPLAY_NAME_CHARACTERS_RULE`] and [`DISPLAY_NAME_TRIMMED_RULE`] refuse, checked again by
/// the controllers: an object stored before the rules existed is kept by the apiserver's validation
/// ratcheting, and must be stopped rather than pushed (or renamed on every resync). Rust's
/// `is_whitespace` is Unicode White_Space, which covers `\s` and `\p{Z}`.
pub fn display_name_problem(name: &str) -> Option<&'static str> {
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        Some(DISPLAY_NAME_CHARACTERS_MESSAGE)
    } else if name.trim() != name {
        Some(DISPLAY_NAME_TRIMMED_MESSAGE)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_names_with_controls_separators_or_surrounding_spaces_are_refused() {
        for bad in [
            "a\nb",
            "a\rb",
            "a\tb",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{2029}b",
            "\u{7f}",
        ] {
            assert_eq!(
                super::display_name_problem(bad),
                Some(super::DISPLAY_NAME_CHARACTERS_MESSAGE),
                "{bad:?}"
            );
        }
        for bad in [" a", "a ", "a\u{a0}", "\u{3000}a"] {
            assert_eq!(
                super::display_name_problem(bad),
                Some(super::DISPLAY_NAME_TRIMMED_MESSAGE),
                "{bad:?}"
            );
        }
        for good in ["Partner Okta", "Müller SSO", "a b", "O'Brien \"IdP\""] {
            assert_eq!(super::display_name_problem(good), None, "{good:?}");
        }
    }
}

/// A reference to an IdentityBackend in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
pub struct BackendRef {
    /// Name of the IdentityBackend (same namespace).
    #[x_kube(validation = Rule::new("self != ''").message("backendRef.name must not be empty"))]
    pub name: String,
}

/// A reference to an object by name in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
pub struct LocalObjectRef {
    /// Name of the object (same namespace).
    #[x_kube(validation = Rule::new("self != ''").message("name must not be empty"))]
    pub name: String,
}

/// A key of a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret (same namespace).
    #[x_kube(validation = Rule::new("self != ''").message("secret name must not be empty"))]
    pub name: String,
    /// Key inside the Secret's data.
    #[x_kube(validation = Rule::new("self != ''").message("secret key must not be empty"))]
    pub key: String,
}

/// What happens on the identity server when the Kubernetes object is deleted.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    /// Delete the object on the server (a 404 counts as deleted).
    #[default]
    Delete,
    /// Leave the object on the server; only the Kubernetes object goes away.
    Orphan,
}

/// Condition type names and the shared status helpers live in `conditions`; this is the one
/// `conditions` field schema all kinds share: a list of `metav1.Condition` keyed by `type`.
pub type Conditions = Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>;
