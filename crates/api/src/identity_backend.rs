//! `IdentityBackend`: where an identity server is and how the operator logs in to it.

// kube's printcolumn(...) lists repeat `type_ = "string"`, which clippy reads as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::Conditions;

/// Where an identity server (Asgardeo or WSO2 Identity Server) is and how the operator logs in to it.
/// IdentityProviders and Applications point at it with `backendRef`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "identity-operator.io",
    version = "v1alpha1",
    kind = "IdentityBackend",
    namespaced,
    status = "IdentityBackendStatus",
    shortname = "idbackend",
    shortname = "idb",
    category = "identity",
    doc = "An identity server (Asgardeo or WSO2 Identity Server) and the machine-to-machine credentials the operator uses to manage it.",
    printcolumn(name = "Type", type_ = "string", json_path = ".status.type"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("(has(self.asgardeo) ? 1 : 0) + (has(self.wso2IdentityServer) ? 1 : 0) == 1").message("set exactly one of asgardeo or wso2IdentityServer"))]
// Changing the target would silently recreate every object on the other server (the ids in the
// resources' status belong to the old one), so it is fixed for the backend's life, like backendRef.
#[x_kube(validation = Rule::new("has(self.asgardeo) == has(oldSelf.asgardeo) && (!has(self.asgardeo) || self.asgardeo.organization == oldSelf.asgardeo.organization) && has(self.wso2IdentityServer) == has(oldSelf.wso2IdentityServer) && (!has(self.wso2IdentityServer) || (self.wso2IdentityServer.url == oldSelf.wso2IdentityServer.url && self.wso2IdentityServer.tenant == oldSelf.wso2IdentityServer.tenant))").message("the target (asgardeo.organization, wso2IdentityServer.url and tenant) is immutable: create a new IdentityBackend for another server"))]
#[x_kube(validation = Rule::new("!has(self.maxRequestsPerMinute) || !has(self.maxRequestsPerSecond)").message("set maxRequestsPerMinute or the deprecated maxRequestsPerSecond, not both"))]
#[serde(rename_all = "camelCase")]
pub struct IdentityBackendSpec {
    /// An Asgardeo organization (API at https://api.asgardeo.io/t/{organization}). Exactly one of
    /// asgardeo or wso2IdentityServer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asgardeo: Option<AsgardeoBackend>,
    /// A WSO2 Identity Server (API at {url}/t/{tenant}). Exactly one of asgardeo or wso2IdentityServer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wso2_identity_server: Option<Wso2IdentityServerBackend>,
    /// The Secret with the client id and secret of a machine-to-machine application that may use the
    /// client_credentials grant with the idp and application management scopes.
    pub credentials_secret_ref: CredentialsSecretRef,
    /// A Secret key holding PEM CA certificates to trust for this server, added to the system roots.
    /// TLS verification is always on for https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<super::common::SecretKeyRef>,
    /// Authenticator names that keep their secret on the local account, so they break for federated
    /// users without JIT provisioning. Replaces the default list (totp, FIDOAuthenticator,
    /// backup-code-authenticator, email-otp-authenticator, IproovAuthenticator, DuoAuthenticator,
    /// password-reset-enforcer) for resources on this backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub local_account_authenticators: Option<Vec<String>>,
    /// The most requests the operator sends to this server at once (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 64").message("maxConcurrentRequests must be between 1 and 64"))]
    pub max_concurrent_requests: Option<i32>,
    /// Deprecated: use maxRequestsPerMinute (the unit servers publish their quotas in). The most
    /// requests per second the operator sends to this server, token requests included (a token
    /// bucket that allows a burst of one second's worth). Not together with maxRequestsPerMinute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("maxRequestsPerSecond must be at least 1"))]
    #[schemars(range(min = 1))]
    pub max_requests_per_second: Option<i32>,
    /// The request budget: the most requests per minute the operator sends to this server, token
    /// requests included (a token bucket with a burst of a twentieth of it), shared by everything
    /// the operator does with this backend. Default for Asgardeo: 150 (its published limit is 200
    /// per minute per client IP); for a self-hosted WSO2 Identity Server: no budget. Set it below
    /// the server's quota, minus what else shares the cluster's egress IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 1000000").message("maxRequestsPerMinute must be between 1 and 1000000"))]
    #[schemars(range(min = 1, max = 1000000))]
    pub max_requests_per_minute: Option<i32>,
    /// The share of the request budget, in percent, one round of drift checks (every object of
    /// this backend compared with the server) may use; the rest is left to changes. The objects'
    /// drift-check interval is stretched beyond the operator's resync when a round needs it (a
    /// Warning Event says so). Default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 100").message("driftCheckBudgetPercent must be between 1 and 100"))]
    #[schemars(range(min = 1, max = 100))]
    pub drift_check_budget_percent: Option<i32>,
}

/// An Asgardeo organization.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct AsgardeoBackend {
    /// The organization (tenant) name as in https://console.asgardeo.io/t/{organization}.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9][a-z0-9-]*$')").message("organization must be lower-case letters, digits and dashes"))]
    pub organization: String,
}

/// A WSO2 Identity Server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
// The client secret and tokens cross this connection: clear text only on the local machine, or
// when the user says so for a server inside the cluster.
#[x_kube(validation = Rule::new("!self.url.startsWith('http://') || self.url.matches(r'^http://(localhost|127\\.[0-9]+\\.[0-9]+\\.[0-9]+|\\[::1\\])(:[0-9]+)?/?$') || (has(self.allowInsecureHTTP) && self.allowInsecureHTTP)").message("plain http:// is only accepted for localhost / loopback addresses; use https://, or set allowInsecureHTTP: true for a server inside the cluster"))]
pub struct Wso2IdentityServerBackend {
    /// Base URL of the server, e.g. https://is.example.com:9443 (no path, no user:pass@). Plain
    /// http:// is accepted for loopback hosts, or anywhere with allowInsecureHTTP.
    #[schemars(length(max = 2048))]
    // CEL messages never echo the value (a pattern error would): the URL may hold credentials.
    #[x_kube(validation = Rule::new("!self.contains('@')").message("url must not carry credentials (user:pass@): put them in the credentials Secret"))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/?#@]+/?$')").message("url must be http(s)://host[:port] without a path"))]
    pub url: String,
    /// The tenant domain (default carbon.super).
    #[serde(default = "default_tenant")]
    #[schemars(length(min = 1, max = 253))]
    pub tenant: String,
    /// Accept a plain http:// URL for a host that is not loopback, e.g. an emulator Service inside
    /// the cluster. The client secret and tokens then cross the network unencrypted.
    #[serde(
        default,
        rename = "allowInsecureHTTP",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_insecure_http: Option<bool>,
}

fn default_tenant() -> String {
    "carbon.super".to_string()
}

/// The Secret with the M2M application's client credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret (same namespace).
    #[x_kube(validation = Rule::new("self != ''").message("credentialsSecretRef.name must not be empty"))]
    pub name: String,
    /// Key of the client id (default client-id).
    #[serde(default = "default_client_id_key")]
    pub client_id_key: String,
    /// Key of the client secret (default client-secret).
    #[serde(default = "default_client_secret_key")]
    pub client_secret_key: String,
}

fn default_client_id_key() -> String {
    "client-id".to_string()
}
fn default_client_secret_key() -> String {
    "client-secret".to_string()
}

/// What the operator observed about the backend.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityBackendStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current state: Ready (credentials work), Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Conditions,
    /// Asgardeo or WSO2IdentityServer.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub backend_type: Option<String>,
    /// The management API base URL the operator uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// The scopes the server granted to the operator's token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted_scopes: Vec<String>,
    /// Scopes the operator needs but the server did not grant (add them to the M2M application).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_scopes: Vec<String>,
}
