//! Identity Provider Management API v1 handlers.
//!
//! Status codes and error codes follow the server code (`ServerIdpManagementService.handleIdPException`
//! and `IdPManagementConstants.ErrorMessage`): not found `IDP-60002` → 404; duplicate name `IDP-60001`
//! → **409** (the handler maps exactly this framework code to CONFLICT; other client errors → 400);
//! invalid input `IDP-60025` → 400; bad filter `IDP-60007` → 400.
//!
//! Delete, disable and PATCH follow the server's code (see each function): deleting an unknown id is
//! 204, deleting an IdP still used by applications is `IDP-65004` (400) unless `force=true`,
//! disabling an IdP or an authenticator that a flow uses is refused (500, `IDP-65005`), and PATCH
//! accepts only `REPLACE` on root attributes, except for the certificate paths (`/certificate/jwksUri`,
//! `/certificate/samlMetadataUri`, `/certificate/certificates/N`), which take ADD / REPLACE / REMOVE.

mod certificate;

use super::ctx::Ctx;
use super::reply::{EmuError, Reply};
use super::state::{StoredIdp, TenantState};
use certificate::{
    certificate_index, patch_certificate_list, patch_certificate_uri, post_certificate,
};
use identity_client::operation::Operation;
use identity_client::wire::{
    self, AttributeSyncMethod, ConnectedApp, ConnectedApps, FederatedAuthenticator,
    FederatedAuthenticatorListItem, FederatedAuthenticatorListResponse, IdentityProviderListItem,
    IdentityProviderListResponse, IdentityProviderPostRequest, IdentityProviderResponse,
    IdpGroupSyncMethod, JitScheme, JustInTimeProvisioning, Patch, PatchOperation, Provisioning,
};

/// Page size when `limit` is absent (the console's comment on product-is#11913 says 15).
pub const DEFAULT_IDP_LIMIT: usize = 15;

fn not_found(id: &str) -> EmuError {
    EmuError::not_found(
        "IDP-60002",
        "Resource not found.",
        format!("Identity Provider with resource ID: {id} does not exists."),
    )
}

fn invalid(description: impl Into<String>) -> EmuError {
    EmuError::bad_request("IDP-60025", "Invalid input.", description)
}

/// A refusal by carbon-identity-framework's `ApplicationIdentityProviderMgtListener.doPreUpdateIdP`:
/// it throws a plain `IdentityProviderManagementException` (not a client exception), which
/// `handleIdPException` turns into a server error with the update code.
fn referred_by_apps(description: String) -> EmuError {
    EmuError::internal("IDP", &description)
        .with_code("IDP-65005", "Error while updating Identity Provider.")
}

fn duplicate(name: &str) -> EmuError {
    EmuError::conflict(
        "IDP-60001",
        "Identity Provider already exists.",
        format!("Identity Provider with the name: {name} already exists."),
    )
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, EmuError> {
    serde_json::from_slice(body).map_err(|e| invalid(format!("Invalid request body: {e}")))
}

/// Handles one IdP operation. `ids` are the path parameters (IdP id, then authenticator id).
pub fn handle(
    op: Operation,
    ids: &[String],
    ctx: &Ctx<'_>,
    st: &mut TenantState,
) -> Result<Reply, EmuError> {
    let id = ids.first().map(String::as_str).unwrap_or_default();
    match op {
        Operation::ListIdps => list(ctx, st),
        Operation::CreateIdp => create(ctx, st),
        Operation::GetIdp => {
            let local = super::idp_mappings::local_claims(st);
            let idp = st.idp(id).ok_or_else(|| not_found(id))?;
            Reply::json(&response(ctx, idp, &local))
        }
        Operation::PatchIdp => patch(id, ctx, st),
        Operation::DeleteIdp => delete(id, ctx, st),
        Operation::ListFederatedAuthenticators => Reply::json(&authenticator_list(
            ctx,
            st.idp(id).ok_or_else(|| not_found(id))?,
        )),
        Operation::GetFederatedAuthenticator => {
            let idp = st.idp(id).ok_or_else(|| not_found(id))?;
            let aid = ids.get(1).map(String::as_str).unwrap_or_default();
            let auth = idp.authenticators.iter().find(|a| a.authenticator_id == aid).ok_or_else(|| {
                EmuError::not_found(
                    "IDP-60002",
                    "Resource not found.",
                    format!("Federated authenticator {aid} is not configured for identity provider {id}."),
                )
            })?;
            Reply::json(auth)
        }
        Operation::UpdateFederatedAuthenticator => update_authenticator(id, ids.get(1), ctx, st),
        Operation::GetProvisioning => {
            let idp = st.idp(id).ok_or_else(|| not_found(id))?;
            Reply::json(&provisioning(idp))
        }
        Operation::GetJit => Reply::json(&st.idp(id).ok_or_else(|| not_found(id))?.jit),
        Operation::UpdateJit => {
            let req: JustInTimeProvisioning = parse(ctx.body)?;
            let jit = normalize_jit(req)?;
            let idp = st.idp_mut(id).ok_or_else(|| not_found(id))?;
            idp.jit = jit;
            Reply::json(&idp.jit)
        }
        Operation::ConnectedApps => connected_apps(id, ctx, st),
        Operation::GetClaims
        | Operation::UpdateClaims
        | Operation::GetRoles
        | Operation::UpdateRoles
        | Operation::GetGroups
        | Operation::UpdateGroups => super::idp_mappings::handle(op, id, ctx, st),
        Operation::GetAuthenticatorMeta => super::meta::get(id),
        _ => Err(EmuError::internal(
            "IDP",
            "operation routed to the wrong handler",
        )),
    }
}

/// Applies the server's JIT PUT semantics: `isEnabled` is required; every other absent field takes the
/// generated model's default (the PUT is a full replace); unknown fields are dropped.
pub fn normalize_jit(req: JustInTimeProvisioning) -> Result<JustInTimeProvisioning, EmuError> {
    let Some(is_enabled) = req.is_enabled else {
        return Err(invalid("isEnabled must not be null."));
    };
    if req
        .account_lookup_attribute_mappings
        .as_ref()
        .is_some_and(|m| m.len() > 2)
    {
        return Err(invalid(
            "The maximum number of account lookup attribute mappings is 2.",
        ));
    }
    Ok(JustInTimeProvisioning {
        is_enabled: Some(is_enabled),
        scheme: Some(req.scheme.unwrap_or(JitScheme::ProvisionSilently)),
        userstore: Some(
            req.userstore
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| "PRIMARY".to_owned()),
        ),
        associate_local_user: Some(req.associate_local_user.unwrap_or(false)),
        skip_jit_for_lookup_failure: Some(req.skip_jit_for_lookup_failure.unwrap_or(false)),
        account_lookup_attribute_mappings: req.account_lookup_attribute_mappings,
        attribute_sync_method: Some(
            req.attribute_sync_method
                .unwrap_or(AttributeSyncMethod::OverrideAll),
        ),
        idp_group_sync_method: Some(
            req.idp_group_sync_method
                .unwrap_or(IdpGroupSyncMethod::MergeWithExisting),
        ),
        extra: Default::default(),
    })
}

/// JIT of an IdP that never had one: the model defaults.
pub fn default_jit() -> JustInTimeProvisioning {
    normalize_jit(JustInTimeProvisioning {
        is_enabled: Some(false),
        ..Default::default()
    })
    .unwrap_or_default()
}

fn self_path(ctx: &Ctx<'_>, idp_id: &str) -> String {
    ctx.api_path(&format!("identity-providers/{idp_id}"))
}

fn authenticator_list(ctx: &Ctx<'_>, idp: &StoredIdp) -> FederatedAuthenticatorListResponse {
    FederatedAuthenticatorListResponse {
        default_authenticator_id: idp.default_authenticator_id.clone(),
        authenticators: idp
            .authenticators
            .iter()
            .map(|a| FederatedAuthenticatorListItem {
                authenticator_id: a.authenticator_id.clone(),
                name: a.name.clone().unwrap_or_default(),
                is_enabled: a.is_enabled.unwrap_or(false),
                defined_by: a.defined_by,
                tags: a.tags.clone(),
                self_link: format!(
                    "{}/federated-authenticators/{}",
                    self_path(ctx, &idp.id),
                    a.authenticator_id
                ),
            })
            .collect(),
    }
}

fn provisioning(idp: &StoredIdp) -> Provisioning {
    Provisioning {
        jit: Some(idp.jit.clone()),
        outbound_connectors: Some(serde_json::json!({"connectors": []})),
    }
}

fn response(ctx: &Ctx<'_>, idp: &StoredIdp, local: &[String]) -> IdentityProviderResponse {
    IdentityProviderResponse {
        id: idp.id.clone(),
        name: idp.name.clone(),
        description: idp.description.clone(),
        template_id: idp.template_id.clone(),
        is_enabled: idp.is_enabled,
        is_primary: idp.is_primary,
        image: idp.image.clone(),
        is_federation_hub: idp.is_federation_hub,
        home_realm_identifier: idp.home_realm_identifier.clone(),
        alias: idp.alias.clone(),
        idp_issuer_name: idp.idp_issuer_name.clone(),
        federated_authenticators: Some(authenticator_list(ctx, idp)),
        provisioning: Some(provisioning(idp)),
        certificate: idp.certificate.clone(),
        // `createIDPResponse` sets all three.
        claims: Some(super::idp_mappings::claims_response(idp, local)),
        roles: Some(super::idp_mappings::roles_response(idp)),
        groups: Some(idp.groups.clone()),
        extra: idp.extra.clone(),
    }
}

fn list(ctx: &Ctx<'_>, st: &TenantState) -> Result<Reply, EmuError> {
    let filter = match ctx.query("filter") {
        Some(f) if !f.trim().is_empty() => {
            let parsed = super::filter::Filter::parse(f, false).map_err(|e| {
                EmuError::bad_request(
                    "IDP-60007",
                    "Search request validation failed.",
                    format!("Invalid search filter. {e}"),
                )
            })?;
            if let Some(bad) = parsed
                .attributes()
                .find(|a| !matches!(*a, "name" | "isEnabled" | "description"))
            {
                return Err(EmuError::bad_request(
                    "IDP-60007",
                    "Search request validation failed.",
                    format!("Invalid search filter. Unsupported attribute '{bad}'."),
                ));
            }
            Some(parsed)
        }
        _ => None,
    };
    let (limit, offset) = ctx.page(DEFAULT_IDP_LIMIT, "IDP-60025")?;
    let required = ctx.query("requiredAttributes").unwrap_or_default();
    let want_auth = required
        .split(',')
        .any(|a| a.trim() == "federatedAuthenticators");
    let want_prov = required.split(',').any(|a| a.trim() == "provisioning");
    let matching: Vec<&StoredIdp> = st
        .idps
        .iter()
        .filter(|i| {
            filter.as_ref().is_none_or(|f| {
                f.matches_case(
                    |attr| match attr {
                        "name" => Some(i.name.clone()),
                        "isEnabled" => Some(i.is_enabled.to_string()),
                        "description" => i.description.clone(),
                        _ => None,
                    },
                    ctx.ignore_name_case,
                )
            })
        })
        .collect();
    let page: Vec<IdentityProviderListItem> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|i| IdentityProviderListItem {
            id: i.id.clone(),
            name: i.name.clone(),
            description: i.description.clone(),
            is_enabled: i.is_enabled,
            image: i.image.clone(),
            federated_authenticators: want_auth.then(|| authenticator_list(ctx, i)),
            provisioning: want_prov.then(|| provisioning(i)),
            self_link: self_path(ctx, &i.id),
        })
        .collect();
    Reply::json(&IdentityProviderListResponse {
        total_results: matching.len() as u64,
        start_index: offset as u64 + 1,
        count: page.len() as u64,
        links: ctx.links("identity-providers", matching.len(), limit, offset),
        identity_providers: page,
    })
}

fn check_authenticators(auths: &mut [FederatedAuthenticator]) -> Result<(), EmuError> {
    for a in auths.iter_mut() {
        let name = wire::authenticator_name(&a.authenticator_id)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                invalid(format!(
                    "Invalid federated authenticator id: {}",
                    a.authenticator_id
                ))
            })?;
        a.name = Some(name);
        a.is_enabled = Some(a.is_enabled.unwrap_or(false));
        a.defined_by = Some(a.defined_by.unwrap_or(wire::DefinedBy::System));
    }
    Ok(())
}

fn create(ctx: &Ctx<'_>, st: &mut TenantState) -> Result<Reply, EmuError> {
    let req: IdentityProviderPostRequest = parse(ctx.body)?;
    let name = req.name.trim().to_owned();
    if name.is_empty() {
        return Err(invalid("name must not be null or empty."));
    }
    if st.idp_name_clash(&name, ctx.ignore_name_case).is_some() {
        return Err(duplicate(&name));
    }
    let (default_authenticator_id, authenticators) = match req.federated_authenticators {
        Some(mut fa) => {
            check_authenticators(&mut fa.authenticators)?;
            if !fa
                .authenticators
                .iter()
                .any(|a| a.authenticator_id == fa.default_authenticator_id)
            {
                return Err(invalid(format!(
                    "The default authenticator {} is not among the authenticators.",
                    fa.default_authenticator_id
                )));
            }
            for a in fa.authenticators.iter_mut() {
                a.is_default = Some(a.authenticator_id == fa.default_authenticator_id);
            }
            (Some(fa.default_authenticator_id), fa.authenticators)
        }
        None => (None, Vec::new()),
    };
    let jit = match req.provisioning.and_then(|p| p.jit) {
        Some(j) => normalize_jit(j)?,
        None => default_jit(),
    };
    let mut idp = StoredIdp {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        description: req.description,
        image: req.image,
        template_id: req.template_id,
        is_enabled: true,
        is_primary: req.is_primary.unwrap_or(false),
        default_authenticator_id,
        authenticators,
        jit,
        certificate: post_certificate(req.certificate)?,
        extra: req.extra,
        ..Default::default()
    };
    super::idp_mappings::from_post(&mut idp)?;
    let local = super::idp_mappings::local_claims(st);
    let body = serde_json::to_value(response(ctx, &idp, &local))
        .map_err(|e| EmuError::internal("IDP", &e.to_string()))?;
    let location = ctx.location(&format!("identity-providers/{}", idp.id));
    st.idps.push(idp);
    Ok(Reply::Created {
        location,
        body: Some(body),
    })
}

fn value_str(p: &Patch) -> Result<Option<String>, EmuError> {
    match (&p.operation, &p.value) {
        (_, Some(serde_json::Value::String(s))) => Ok(Some(s.clone())),
        (_, Some(v @ (serde_json::Value::Bool(_) | serde_json::Value::Number(_)))) => {
            Ok(Some(v.to_string()))
        }
        _ => Err(invalid(format!(
            "A value is required for {:?} of {}.",
            p.operation, p.path
        ))),
    }
}

fn value_bool(p: &Patch) -> Result<bool, EmuError> {
    match value_str(p)?.as_deref() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err(invalid(format!("{} needs a boolean value.", p.path))),
    }
}

fn patch(id: &str, ctx: &Ctx<'_>, st: &mut TenantState) -> Result<Reply, EmuError> {
    let ops: Vec<Patch> = parse(ctx.body)?;
    let mut idp = st.idp(id).ok_or_else(|| not_found(id))?.clone();
    let old_name = idp.name.clone();
    for p in &ops {
        if p.path == "/certificate/jwksUri" || p.path == "/certificate/samlMetadataUri" {
            patch_certificate_uri(&mut idp, p)?;
            continue;
        }
        if let Some(index) = certificate_index(&p.path) {
            patch_certificate_list(&mut idp, p, index)?;
            continue;
        }
        // ServerIdpManagementService's patch handling (asgardeo-api.md §1, IdpSvc ~L3197-3263) acts
        // on REPLACE for the root key/value paths and rejects ADD / REMOVE there as invalid input.
        if p.operation != PatchOperation::Replace {
            return Err(invalid(format!(
                "Unsupported patch operation: {:?} on {}. Only REPLACE is supported for this path.",
                p.operation, p.path
            )));
        }
        match p.path.as_str() {
            "/name" => {
                let name = value_str(p)?
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty());
                idp.name = name.ok_or_else(|| invalid("name must not be empty."))?;
            }
            "/description" => idp.description = value_str(p)?,
            "/image" => idp.image = value_str(p)?,
            "/homeRealmIdentifier" => idp.home_realm_identifier = value_str(p)?,
            "/alias" => idp.alias = value_str(p)?,
            "/idpIssuerName" => idp.idp_issuer_name = value_str(p)?,
            "/isEnabled" => idp.is_enabled = value_bool(p)?,
            "/isPrimary" => idp.is_primary = value_bool(p)?,
            "/isFederationHub" => idp.is_federation_hub = value_bool(p)?,
            other => {
                return Err(invalid(format!(
                    "Unsupported patch path: {other}. Only root attributes can be patched."
                )))
            }
        }
    }
    if !idp.is_enabled && !st.connected_app_ids(&old_name).is_empty() {
        return Err(referred_by_apps(
            "Error in disabling identity provider as it is referred by service providers.".into(),
        ));
    }
    if idp.name != old_name {
        if st
            .idp_name_clash(&idp.name, ctx.ignore_name_case)
            .is_some_and(|other| other.id != idp.id)
        {
            return Err(duplicate(&idp.name));
        }
        // The server stores steps by IdP id, so a rename carries through to every flow; the emulator
        // stores names and rewrites them to get the same effect.
        for app in &mut st.apps {
            for opt in app
                .sequence
                .steps
                .iter_mut()
                .flatten()
                .flat_map(|s| s.options.iter_mut())
            {
                if opt.idp == old_name {
                    opt.idp = idp.name.clone();
                }
            }
        }
    }
    let local = super::idp_mappings::local_claims(st);
    let body = response(ctx, &idp, &local);
    if let Some(slot) = st.idp_mut(id) {
        *slot = idp;
    }
    Reply::json(&body)
}

/// carbon-identity-framework `IdPManagementDAO`/`CacheBackedIdPMgtDAO.deleteIdPByResourceId`: an id
/// it cannot find is only logged ("not found in cache or DB") and the API answers 204; an IdP still
/// in an application's steps fails with the client exception `ERROR_CODE_DELETE_IDP` ("cannot be
/// deleted as it is referred by Service Providers"), which identity-api-server's
/// `handleIdPException` serves as 400 `IDP-65004`. `force=true` deletes anyway.
fn delete(id: &str, ctx: &Ctx<'_>, st: &mut TenantState) -> Result<Reply, EmuError> {
    let Some(idp) = st.idp(id) else {
        return Ok(Reply::NoContent);
    };
    let name = idp.name.clone();
    let users = st.connected_app_ids(&name);
    if !users.is_empty() {
        if ctx.query("force") != Some("true") {
            return Err(EmuError::bad_request(
                "IDP-65004",
                "Error while deleting Identity Provider.",
                format!("Identity Provider '{name}' cannot be deleted as it is referred by Service Providers."),
            ));
        }
        for app in &mut st.apps {
            super::app::remove_idp_from_flow(&mut app.sequence, &name);
        }
    }
    st.idps.retain(|i| i.id != id);
    Ok(Reply::NoContent)
}

fn update_authenticator(
    id: &str,
    aid: Option<&String>,
    ctx: &Ctx<'_>,
    st: &mut TenantState,
) -> Result<Reply, EmuError> {
    let aid = aid.cloned().unwrap_or_default();
    let mut req: FederatedAuthenticator = parse(ctx.body)?;
    req.authenticator_id = aid.clone();
    check_authenticators(std::slice::from_mut(&mut req))?;
    let idp_name = st.idp(id).ok_or_else(|| not_found(id))?.name.clone();
    let auth_name = req.name.clone().unwrap_or_default();
    // ApplicationIdentityProviderMgtListener.doPreUpdateIdP: a multi-step flow's authenticator of
    // this IdP must stay enabled.
    if !req.is_enabled.unwrap_or(false)
        && !st
            .apps_using_authenticator(&idp_name, &auth_name)
            .is_empty()
    {
        return Err(referred_by_apps(format!(
            "{auth_name} is referred by service providers."
        )));
    }
    let idp = st.idp_mut(id).ok_or_else(|| not_found(id))?;
    let make_default = req.is_default.unwrap_or(false) || idp.default_authenticator_id.is_none();
    if make_default {
        idp.default_authenticator_id = Some(aid.clone());
    }
    for a in idp.authenticators.iter_mut() {
        if make_default && a.authenticator_id != aid {
            a.is_default = Some(false);
        }
    }
    req.is_default = Some(idp.default_authenticator_id.as_deref() == Some(aid.as_str()));
    match idp
        .authenticators
        .iter_mut()
        .find(|a| a.authenticator_id == aid)
    {
        Some(slot) => {
            slot.is_enabled = req.is_enabled;
            slot.is_default = req.is_default;
            slot.properties = req.properties.clone();
            if req.endpoint.is_some() {
                slot.endpoint = req.endpoint.clone();
            }
            Reply::json(slot)
        }
        None => {
            idp.authenticators.push(req.clone());
            Reply::json(&req)
        }
    }
}

fn connected_apps(id: &str, ctx: &Ctx<'_>, st: &TenantState) -> Result<Reply, EmuError> {
    let idp = st.idp(id).ok_or_else(|| not_found(id))?;
    let (limit, offset) = ctx.page(DEFAULT_IDP_LIMIT, "IDP-60008")?;
    let all = st.connected_app_ids(&idp.name);
    let page: Vec<ConnectedApp> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|app_id| ConnectedApp {
            app_id: app_id.clone(),
            self_link: format!("/api/server/v1/applications/{app_id}"),
        })
        .collect();
    Reply::json(&ConnectedApps {
        total_results: all.len() as u64,
        start_index: offset as u64 + 1,
        count: page.len() as u64,
        links: ctx.links(
            &format!("identity-providers/{id}/connected-apps"),
            all.len(),
            limit,
            offset,
        ),
        connected_apps: page,
    })
}

#[cfg(test)]
#[path = "idp_tests.rs"]
mod tests;
