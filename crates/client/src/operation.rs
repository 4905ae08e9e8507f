//! The API operations the operator uses, shared by the client (metric labels, required scopes) and
//! the emulator (routing, scope checks, request counters). A closed enum keeps metric labels bounded.

/// Scope needed to send a conditional-auth `script` (IS code since Oct 2025, see asgardeo-api.md §2).
pub const SCRIPT_SCOPE: &str = "internal_application_script_update";

/// Scope that lets a token see an application's client secret in the OIDC GET. Newer servers (Asgardeo
/// today) leave `clientSecret` out without it, and the OIDC PUT must echo the stored secret, so the
/// operator cannot update OIDC settings or fill a credentials Secret without it. Confirmed in
/// wso2/product-is `ApplicationClientSecretAuthorizationTestCase`
/// (`testClientSecretPropertiesStrippedWithoutClientSecretViewScope`: `clientSecret`,
/// `clientSecretExpiresAt`, `multipleClientSecretsConfigured` absent without this scope).
pub const SECRET_VIEW_SCOPE: &str = "internal_application_mgt_client_secret_view";

/// One operation of the management API (or the token endpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// `POST /oauth2/token`.
    Token,
    /// `GET /identity-providers` (getIDPs).
    ListIdps,
    /// `POST /identity-providers` (addIDP).
    CreateIdp,
    /// `GET /identity-providers/{id}` (getIDP).
    GetIdp,
    /// `PATCH /identity-providers/{id}` (patchIDP).
    PatchIdp,
    /// `DELETE /identity-providers/{id}` (deleteIDP).
    DeleteIdp,
    /// `GET /identity-providers/{id}/federated-authenticators`.
    ListFederatedAuthenticators,
    /// `GET /identity-providers/{id}/federated-authenticators/{aid}`.
    GetFederatedAuthenticator,
    /// `PUT /identity-providers/{id}/federated-authenticators/{aid}`.
    UpdateFederatedAuthenticator,
    /// `GET /identity-providers/meta/federated-authenticators/{aid}`: an authenticator's properties
    /// and which of them are confidential.
    GetAuthenticatorMeta,
    /// `GET /identity-providers/{id}/provisioning`.
    GetProvisioning,
    /// `GET /identity-providers/{id}/provisioning/jit`.
    GetJit,
    /// `PUT /identity-providers/{id}/provisioning/jit`.
    UpdateJit,
    /// `GET /identity-providers/{id}/connected-apps`.
    ConnectedApps,
    /// `GET /identity-providers/{id}/claims`.
    GetClaims,
    /// `PUT /identity-providers/{id}/claims` (replaces the whole claim config).
    UpdateClaims,
    /// `GET /identity-providers/{id}/roles`.
    GetRoles,
    /// `PUT /identity-providers/{id}/roles` (replaces the whole role config).
    UpdateRoles,
    /// `GET /identity-providers/{id}/groups`.
    GetGroups,
    /// `PUT /identity-providers/{id}/groups` (replaces the group list).
    UpdateGroups,
    /// `GET /applications`.
    ListApplications,
    /// `POST /applications`.
    CreateApplication,
    /// `GET /applications/{id}`.
    GetApplication,
    /// `PATCH /applications/{id}`.
    PatchApplication,
    /// `DELETE /applications/{id}`.
    DeleteApplication,
    /// `GET /applications/{id}/inbound-protocols/oidc`.
    GetOidc,
    /// `PUT /applications/{id}/inbound-protocols/oidc`.
    UpdateOidc,
}

impl Operation {
    /// Every operation, for iteration.
    pub const ALL: [Operation; 27] = [
        Self::Token,
        Self::ListIdps,
        Self::CreateIdp,
        Self::GetIdp,
        Self::PatchIdp,
        Self::DeleteIdp,
        Self::ListFederatedAuthenticators,
        Self::GetFederatedAuthenticator,
        Self::UpdateFederatedAuthenticator,
        Self::GetAuthenticatorMeta,
        Self::GetProvisioning,
        Self::GetJit,
        Self::UpdateJit,
        Self::ConnectedApps,
        Self::GetClaims,
        Self::UpdateClaims,
        Self::GetRoles,
        Self::UpdateRoles,
        Self::GetGroups,
        Self::UpdateGroups,
        Self::ListApplications,
        Self::CreateApplication,
        Self::GetApplication,
        Self::PatchApplication,
        Self::DeleteApplication,
        Self::GetOidc,
        Self::UpdateOidc,
    ];

    /// Bounded label for metrics and stats, e.g. `get_idp`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::ListIdps => "list_idps",
            Self::CreateIdp => "create_idp",
            Self::GetIdp => "get_idp",
            Self::PatchIdp => "patch_idp",
            Self::DeleteIdp => "delete_idp",
            Self::ListFederatedAuthenticators => "list_federated_authenticators",
            Self::GetFederatedAuthenticator => "get_federated_authenticator",
            Self::UpdateFederatedAuthenticator => "update_federated_authenticator",
            Self::GetAuthenticatorMeta => "get_authenticator_meta",
            Self::GetProvisioning => "get_provisioning",
            Self::GetJit => "get_jit",
            Self::UpdateJit => "update_jit",
            Self::ConnectedApps => "connected_apps",
            Self::GetClaims => "get_claims",
            Self::UpdateClaims => "update_claims",
            Self::GetRoles => "get_roles",
            Self::UpdateRoles => "update_roles",
            Self::GetGroups => "get_groups",
            Self::UpdateGroups => "update_groups",
            Self::ListApplications => "list_applications",
            Self::CreateApplication => "create_application",
            Self::GetApplication => "get_application",
            Self::PatchApplication => "patch_application",
            Self::DeleteApplication => "delete_application",
            Self::GetOidc => "get_oidc",
            Self::UpdateOidc => "update_oidc",
        }
    }

    /// The scope the server requires (from the operation descriptions in the specs); `None` for the
    /// token endpoint.
    pub fn scope(self) -> Option<&'static str> {
        Some(match self {
            Self::Token => return None,
            Self::ListIdps
            | Self::GetIdp
            | Self::ListFederatedAuthenticators
            | Self::GetFederatedAuthenticator
            | Self::GetAuthenticatorMeta
            | Self::GetProvisioning
            | Self::GetJit
            | Self::ConnectedApps
            | Self::GetClaims
            | Self::GetRoles
            | Self::GetGroups => "internal_idp_view",
            Self::CreateIdp => "internal_idp_create",
            Self::PatchIdp
            | Self::UpdateFederatedAuthenticator
            | Self::UpdateJit
            | Self::UpdateClaims
            | Self::UpdateRoles
            | Self::UpdateGroups => "internal_idp_update",
            Self::DeleteIdp => "internal_idp_delete",
            Self::ListApplications | Self::GetApplication | Self::GetOidc => {
                "internal_application_mgt_view"
            }
            Self::CreateApplication => "internal_application_mgt_create",
            Self::PatchApplication | Self::UpdateOidc => "internal_application_mgt_update",
            Self::DeleteApplication => "internal_application_mgt_delete",
        })
    }

    /// True for operations that change server state.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::CreateIdp
                | Self::PatchIdp
                | Self::DeleteIdp
                | Self::UpdateFederatedAuthenticator
                | Self::UpdateJit
                | Self::UpdateClaims
                | Self::UpdateRoles
                | Self::UpdateGroups
                | Self::CreateApplication
                | Self::PatchApplication
                | Self::DeleteApplication
                | Self::UpdateOidc
        )
    }

    /// True for IdP operations (error codes `IDP-…`), false for applications (`APP-…`).
    pub fn is_idp(self) -> bool {
        matches!(
            self,
            Self::ListIdps
                | Self::CreateIdp
                | Self::GetIdp
                | Self::PatchIdp
                | Self::DeleteIdp
                | Self::ListFederatedAuthenticators
                | Self::GetFederatedAuthenticator
                | Self::UpdateFederatedAuthenticator
                | Self::GetAuthenticatorMeta
                | Self::GetProvisioning
                | Self::GetJit
                | Self::UpdateJit
                | Self::ConnectedApps
                | Self::GetClaims
                | Self::UpdateClaims
                | Self::GetRoles
                | Self::UpdateRoles
                | Self::GetGroups
                | Self::UpdateGroups
        )
    }

    /// Every scope the operations need (script scope excluded: only when managed; the secret-view
    /// scope excluded: no operation requires it, see [`Operation::needed_scopes`]).
    pub fn all_scopes() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = Self::ALL.iter().filter_map(|o| o.scope()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The scopes the operator asks for by default and reports as missing when not granted: every
    /// operation's scope plus [`SECRET_VIEW_SCOPE`] (needed to read and echo client secrets).
    pub fn needed_scopes() -> Vec<&'static str> {
        let mut v = Self::all_scopes();
        v.push(SECRET_VIEW_SCOPE);
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_scopes_cover_the_api() {
        let mut labels: Vec<_> = Operation::ALL.iter().map(|o| o.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Operation::ALL.len());
        assert_eq!(Operation::all_scopes().len(), 8);
        let needed = Operation::needed_scopes();
        assert_eq!(needed.len(), 9);
        assert!(needed.contains(&SECRET_VIEW_SCOPE));
    }
}
