//! The identity server as the controllers see it.
//!
//! [`IdentityServer`] is the one trait the controllers hold (as `Arc<dyn IdentityServer>`); its types are
//! this module's own and carry no Kubernetes types, so another server (Keycloak, Zitadel) can implement
//! it later. [`asgardeo::AsgardeoClient`] implements it over the Asgardeo / WSO2 Identity Server REST
//! API, whose request/response types live in [`wire`] (shared with the emulator).

pub mod asgardeo;
pub mod health;
pub mod inventory;
pub mod metrics;
pub mod operation;
pub mod ratelimit;
pub mod secrecy;
pub mod secret;
mod token;
pub mod wire;

mod application;
mod error;
mod idp;

use async_trait::async_trait;

pub use application::*;
pub use error::BackendError;
pub use idp::*;
pub use metrics::BackendMetrics;
pub use secrecy::Confidential;
pub use secret::Secret;
pub use wire::{AttributeSyncMethod, IdpGroupSyncMethod, JitScheme, Property, LOCAL_IDP};

/// Result of [`IdentityServer::check_access`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// The tenant base URL (`https://api.asgardeo.io/t/acme`), without credentials.
    pub tenant_url: String,
    /// Scopes the token was granted.
    pub granted_scopes: Vec<String>,
    /// Scopes the client asked for and the server did not grant (Asgardeo drops, without an error,
    /// scopes the M2M application is not authorized for).
    pub missing_scopes: Vec<String>,
}

/// The identity server as the controllers need it. Object safe: hold it as `Arc<dyn IdentityServer>`.
///
/// Every call may retry internally (transient errors, rate limits, one re-authentication); an error
/// returned here is final for this attempt.
#[async_trait]
pub trait IdentityServer: Send + Sync {
    /// Gets a token and makes one cheap read: proves URL, credentials and scopes work.
    async fn check_access(&self) -> Result<ServerInfo, BackendError>;

    /// Looks an IdP up by exact name.
    async fn find_idp_by_name(&self, name: &str) -> Result<Option<IdpSummary>, BackendError>;
    /// Reads an IdP (with its authenticator list and JIT settings).
    async fn get_idp(&self, id: &str) -> Result<Idp, BackendError>;
    /// Creates an IdP and returns its id (taken from the `Location` header).
    async fn create_idp(&self, idp: &NewIdp) -> Result<String, BackendError>;
    /// Changes root attributes of an IdP.
    async fn patch_idp(&self, id: &str, ops: &[IdpPatch]) -> Result<(), BackendError>;
    /// Deletes an IdP. `Ok(false)` when it was already gone.
    async fn delete_idp(&self, id: &str) -> Result<bool, BackendError>;

    /// Reads one authenticator of an IdP with its properties.
    async fn get_federated_authenticator(
        &self,
        idp_id: &str,
        authenticator_id: &str,
    ) -> Result<FederatedAuthenticator, BackendError>;
    /// Which properties of an authenticator are confidential: the server's metadata of it, or
    /// [`secrecy::FALLBACK`] when the server does not answer that. Cached per client.
    async fn confidential_properties(
        &self,
        authenticator_id: &str,
    ) -> Result<Confidential, BackendError> {
        Ok(Confidential::fallback(authenticator_id))
    }
    /// Writes one authenticator of an IdP (enabled/default flags and properties).
    async fn update_federated_authenticator(
        &self,
        idp_id: &str,
        authenticator: &FederatedAuthenticator,
    ) -> Result<(), BackendError>;

    /// Reads the JIT settings of an IdP.
    async fn get_jit(&self, idp_id: &str) -> Result<Jit, BackendError>;
    /// Read-merge-write of JIT settings: only `Some` fields of `change` are changed. Returns the result.
    async fn update_jit(&self, idp_id: &str, change: &JitChange) -> Result<Jit, BackendError>;
    /// Read-merge-write of the claim, role and group configuration: for each of the three objects
    /// the change touches, reads it, replaces the declared fields and writes it whole. A write the
    /// server refuses does not hold back the other two; the first error is returned after all
    /// were tried. Returns what was written.
    async fn update_mappings(
        &self,
        idp_id: &str,
        change: &MappingsChange,
    ) -> Result<IdpMappings, BackendError>;
    /// Ids of the applications that use the IdP in a login step (all pages).
    async fn connected_apps(&self, idp_id: &str) -> Result<Vec<String>, BackendError>;

    /// Looks an application up by exact name.
    async fn find_application_by_name(
        &self,
        name: &str,
    ) -> Result<Option<ApplicationSummary>, BackendError>;
    /// Reads an application with its login flow.
    async fn get_application(&self, id: &str) -> Result<Application, BackendError>;
    /// Creates an application and returns its id (taken from the `Location` header).
    async fn create_application(&self, app: &NewApplication) -> Result<String, BackendError>;
    /// Changes an application partially.
    async fn patch_application(
        &self,
        id: &str,
        patch: &ApplicationPatch,
    ) -> Result<(), BackendError>;
    /// Deletes an application. `Ok(false)` when it was already gone.
    async fn delete_application(&self, id: &str) -> Result<bool, BackendError>;

    /// Reads the OIDC settings and credentials of an application.
    async fn get_oidc(&self, app_id: &str) -> Result<OidcSettings, BackendError>;
    /// Read-merge-write of the OIDC settings; returns the result.
    async fn update_oidc(
        &self,
        app_id: &str,
        change: &OidcChange,
    ) -> Result<OidcSettings, BackendError>;
}
