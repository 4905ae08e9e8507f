//! The emulator's data: one [`TenantState`] per tenant, optionally saved to a JSON file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use identity_client::wire::{
    self, AuthenticationSequence, AuthenticationStep, AuthenticatorOption, Certificate, Extra,
    FederatedAuthenticator, JustInTimeProvisioning, OpenIdConnectConfiguration, SequenceType,
};

/// An identity provider as the emulator stores it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredIdp {
    /// Resource id (UUID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Logo URL.
    pub image: Option<String>,
    /// Template id.
    pub template_id: Option<String>,
    /// Enabled flag.
    pub is_enabled: bool,
    /// Primary flag.
    pub is_primary: bool,
    /// Federation hub flag.
    pub is_federation_hub: bool,
    /// Home realm identifier.
    pub home_realm_identifier: Option<String>,
    /// Alias.
    pub alias: Option<String>,
    /// Issuer name.
    pub idp_issuer_name: Option<String>,
    /// Default authenticator id.
    pub default_authenticator_id: Option<String>,
    /// Authenticators with properties (`name` always filled).
    pub authenticators: Vec<FederatedAuthenticator>,
    /// JIT settings, always complete (defaults applied on write).
    pub jit: JustInTimeProvisioning,
    /// Certificates, a JWKS URI or a SAML metadata URI (one of them, as the server keeps it).
    pub certificate: Option<Certificate>,
    /// Claim config, in the server's internal shape (see [`super::idp_mappings`]).
    #[serde(default)]
    pub claims: StoredClaimConfig,
    /// Role config.
    #[serde(default)]
    pub roles: wire::Roles,
    /// Groups the IdP can return, each with its server id.
    #[serde(default)]
    pub groups: Vec<wire::IdpGroup>,
    /// Fields the emulator stores but does not interpret (implicit association, ...).
    pub extra: Extra,
}

/// An application as the emulator stores it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredApp {
    /// Resource id (UUID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Logo URL.
    pub image_url: Option<String>,
    /// Access URL.
    pub access_url: Option<String>,
    /// Template id.
    pub template_id: Option<String>,
    /// Login flow, normalized (type always set, steps sorted).
    pub sequence: AuthenticationSequence,
    /// OIDC inbound settings with generated credentials.
    pub oidc: Option<OpenIdConnectConfiguration>,
    /// Fields stored but not interpreted.
    pub extra: Extra,
}

/// Everything one tenant holds. Vectors keep creation order, which is the list order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantState {
    /// Identity providers.
    pub idps: Vec<StoredIdp>,
    /// Applications.
    pub apps: Vec<StoredApp>,
    /// The tenant's local claim URIs; `None`: the server's default dialect
    /// ([`DEFAULT_LOCAL_CLAIMS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_claims: Option<Vec<String>>,
}

impl TenantState {
    /// IdP by id.
    pub fn idp(&self, id: &str) -> Option<&StoredIdp> {
        self.idps.iter().find(|i| i.id == id)
    }

    /// IdP by id, mutable.
    pub fn idp_mut(&mut self, id: &str) -> Option<&mut StoredIdp> {
        self.idps.iter_mut().find(|i| i.id == id)
    }

    /// IdP by exact name.
    pub fn idp_by_name(&self, name: &str) -> Option<&StoredIdp> {
        self.idps.iter().find(|i| i.name == name)
    }

    /// IdP whose name clashes with `name` on a server whose database compares names
    /// case-insensitively (`ignore_case`), or exactly otherwise.
    pub fn idp_name_clash(&self, name: &str, ignore_case: bool) -> Option<&StoredIdp> {
        self.idps
            .iter()
            .find(|i| same_name(&i.name, name, ignore_case))
    }

    /// Application whose name clashes with `name` (see [`TenantState::idp_name_clash`]).
    pub fn app_name_clash(&self, name: &str, ignore_case: bool) -> Option<&StoredApp> {
        self.apps
            .iter()
            .find(|a| same_name(&a.name, name, ignore_case))
    }

    /// Ids of applications with a user-defined step that uses `authenticator` of IdP `idp_name`.
    pub fn apps_using_authenticator(&self, idp_name: &str, authenticator: &str) -> Vec<String> {
        self.apps
            .iter()
            .filter(|a| a.sequence.kind == Some(SequenceType::UserDefined))
            .filter(|a| {
                a.sequence
                    .steps
                    .iter()
                    .flatten()
                    .flat_map(|s| &s.options)
                    .any(|o| o.idp == idp_name && o.authenticator == authenticator)
            })
            .map(|a| a.id.clone())
            .collect()
    }

    /// Application by id.
    pub fn app(&self, id: &str) -> Option<&StoredApp> {
        self.apps.iter().find(|a| a.id == id)
    }

    /// Application by id, mutable.
    pub fn app_mut(&mut self, id: &str) -> Option<&mut StoredApp> {
        self.apps.iter_mut().find(|a| a.id == id)
    }

    /// Application by exact name.
    pub fn app_by_name(&self, name: &str) -> Option<&StoredApp> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// Ids of applications whose user-defined steps use the IdP, as the server's SQL computes them
    /// (auth steps only; a script mentioning the IdP does not count).
    pub fn connected_app_ids(&self, idp_name: &str) -> Vec<String> {
        self.apps
            .iter()
            .filter(|a| a.sequence.kind == Some(SequenceType::UserDefined))
            .filter(|a| {
                a.sequence
                    .steps
                    .iter()
                    .flatten()
                    .flat_map(|s| &s.options)
                    .any(|o| o.idp == idp_name)
            })
            .map(|a| a.id.clone())
            .collect()
    }

    /// Adds an application directly (bypassing HTTP and validation), e.g. to simulate an app that
    /// exists only on the server. Returns its id.
    pub fn insert_app(&mut self, name: &str, steps: Vec<Vec<(String, String)>>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let sequence = if steps.is_empty() {
            default_sequence()
        } else {
            AuthenticationSequence {
                kind: Some(SequenceType::UserDefined),
                steps: Some(
                    steps
                        .into_iter()
                        .enumerate()
                        .map(|(i, opts)| AuthenticationStep {
                            id: i as i64 + 1,
                            options: opts
                                .into_iter()
                                .map(|(idp, authenticator)| AuthenticatorOption {
                                    idp,
                                    authenticator,
                                })
                                .collect(),
                        })
                        .collect(),
                ),
                subject_step_id: Some(1),
                attribute_step_id: Some(1),
                ..Default::default()
            }
        };
        self.apps.push(StoredApp {
            id: id.clone(),
            name: name.to_owned(),
            sequence,
            ..Default::default()
        });
        id
    }
}

/// Name equality under the server's collation: MySQL/MSSQL default collations (and so, likely,
/// Asgardeo) compare case-insensitively; H2 and PostgreSQL compare exactly.
pub fn same_name(a: &str, b: &str, ignore_case: bool) -> bool {
    if ignore_case {
        a.to_lowercase() == b.to_lowercase()
    } else {
        a == b
    }
}

/// The flow a new application gets (and what `type: DEFAULT` resets to): username and password.
pub fn default_sequence() -> AuthenticationSequence {
    AuthenticationSequence {
        kind: Some(SequenceType::Default),
        steps: Some(vec![AuthenticationStep {
            id: 1,
            options: vec![AuthenticatorOption {
                idp: wire::LOCAL_IDP.to_owned(),
                authenticator: "BasicAuthenticator".to_owned(),
            }],
        }]),
        request_path_authenticators: None,
        script: None,
        subject_step_id: Some(1),
        attribute_step_id: Some(1),
    }
}

/// All tenants, keyed by tenant domain.
pub type Tenants = BTreeMap<String, TenantState>;

/// Loads tenants from a JSON file; a missing file is an empty state.
pub fn load(path: &Path) -> std::io::Result<Tenants> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tenants::new()),
        Err(e) => Err(e),
    }
}

/// Saves tenants atomically (write a sibling file, then rename) so a crash never leaves half a file.
pub fn save(path: &Path, tenants: &Tenants) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(tenants).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// The local claims a tenant has unless its state lists its own: the common part of the server's
/// default `http://wso2.org/claims` dialect (carbon-identity-framework `claim-config.xml`).
pub const DEFAULT_LOCAL_CLAIMS: &[&str] = &[
    "http://wso2.org/claims/username",
    "http://wso2.org/claims/userid",
    "http://wso2.org/claims/emailaddress",
    "http://wso2.org/claims/givenname",
    "http://wso2.org/claims/lastname",
    "http://wso2.org/claims/fullname",
    "http://wso2.org/claims/nickname",
    "http://wso2.org/claims/displayName",
    "http://wso2.org/claims/mobile",
    "http://wso2.org/claims/telephone",
    "http://wso2.org/claims/country",
    "http://wso2.org/claims/locality",
    "http://wso2.org/claims/organization",
    "http://wso2.org/claims/department",
    "http://wso2.org/claims/title",
    "http://wso2.org/claims/role",
    "http://wso2.org/claims/roles",
    "http://wso2.org/claims/groups",
    "http://wso2.org/claims/dob",
    "http://wso2.org/claims/gender",
    "http://wso2.org/claims/preferredLanguage",
    "http://wso2.org/claims/photourl",
];

/// The claim config as the server keeps it internally (`ClaimConfig`): provisioning claims are
/// mappings with a default value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredClaimConfig {
    /// `userClaimURI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_claim_uri: Option<String>,
    /// `roleClaimURI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_claim_uri: Option<String>,
    /// `claimMappings`.
    #[serde(default)]
    pub claim_mappings: Vec<StoredClaimMapping>,
}

/// One internal `ClaimMapping`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredClaimMapping {
    /// The IdP's claim (blank for a local-dialect provisioning claim).
    #[serde(default)]
    pub remote_claim: String,
    /// The local claim.
    #[serde(default)]
    pub local_claim: String,
    /// Default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    /// Set with a default value (provisioning claim).
    #[serde(default)]
    pub requested: bool,
}
