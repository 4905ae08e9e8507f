//! References and policies shared by the kinds.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

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
