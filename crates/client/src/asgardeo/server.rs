//! The [`IdentityServer`] operations, each on the transport (`transport.rs`) and the wire
//! conversions (`convert.rs`).

use super::*;

#[async_trait]
impl IdentityServer for AsgardeoClient {
    async fn check_access(&self) -> Result<ServerInfo, BackendError> {
        let mut url = self.url(&["identity-providers"]);
        url.query_pairs_mut().append_pair("limit", "1");
        let _: wire::IdentityProviderListResponse = self.get_json(Operation::ListIdps, url).await?;
        // The token the read went through (a 401 on the way replaces it): its scopes are current.
        let token = self.token(None).await?;
        let missing_scopes = self
            .scopes
            .iter()
            .filter(|s| !token.scopes.contains(s))
            .cloned()
            .collect();
        Ok(ServerInfo {
            tenant_url: self.tenant_url.as_str().trim_end_matches('/').to_owned(),
            granted_scopes: token.scopes,
            missing_scopes,
        })
    }

    async fn find_idp_by_name(&self, name: &str) -> Result<Option<IdpSummary>, BackendError> {
        let filter = Self::name_filter(name);
        let all = self
            .list_all(
                Operation::ListIdps,
                &["identity-providers"],
                filter.as_deref(),
                |p: wire::IdentityProviderListResponse| (p.identity_providers, p.links),
            )
            .await?;
        Ok(pick_by_name(all, name, |i| &i.name).map(|i| IdpSummary {
            id: i.id,
            name: i.name,
            is_enabled: i.is_enabled,
        }))
    }

    async fn get_idp(&self, id: &str) -> Result<Idp, BackendError> {
        let r: wire::IdentityProviderResponse = self
            .get_json(Operation::GetIdp, self.url(&["identity-providers", id]))
            .await?;
        let fa = r.federated_authenticators.unwrap_or_default();
        Ok(Idp {
            id: r.id,
            name: r.name,
            description: r.description,
            image: r.image,
            is_enabled: r.is_enabled,
            default_authenticator_id: fa.default_authenticator_id,
            authenticators: fa
                .authenticators
                .into_iter()
                .map(|a| crate::AuthenticatorSummary {
                    id: a.authenticator_id,
                    name: a.name,
                    is_enabled: a.is_enabled,
                })
                .collect(),
            jit: r.provisioning.and_then(|p| p.jit).map(|j| Jit::from(&j)),
            certificate: Box::new(
                r.certificate
                    .map(crate::IdpCertificate::from)
                    .unwrap_or_default(),
            ),
            mappings: Box::new(IdpMappings::from_wire(
                r.claims.as_ref(),
                r.roles.as_ref(),
                r.groups.as_deref(),
            )),
        })
    }

    async fn create_idp(&self, idp: &NewIdp) -> Result<String, BackendError> {
        let op = Operation::CreateIdp;
        let mut auth = authenticator_to_wire(&idp.authenticator);
        auth.is_default = Some(true);
        let req = wire::IdentityProviderPostRequest {
            name: idp.name.clone(),
            description: idp.description.clone(),
            image: idp.image.clone(),
            federated_authenticators: Some(wire::FederatedAuthenticatorRequest {
                default_authenticator_id: idp.authenticator.authenticator_id.clone(),
                authenticators: vec![auth],
            }),
            provisioning: idp.jit.as_ref().map(|j| wire::Provisioning {
                jit: Some(j.into()),
                outbound_connectors: None,
            }),
            certificate: wire::Certificate::of(
                idp.jwks_uri.as_deref(),
                idp.saml_metadata_uri.as_deref(),
                &idp.certificates,
            ),
            ..Default::default()
        };
        self.create(
            op,
            self.url(&["identity-providers"]),
            Self::encode(op, &req)?,
        )
        .await
    }

    async fn patch_idp(&self, id: &str, ops: &[IdpPatch]) -> Result<(), BackendError> {
        let op = Operation::PatchIdp;
        if ops.is_empty() {
            return Ok(());
        }
        let body: Vec<wire::Patch> = ops
            .iter()
            .map(|p| {
                // The spec types `value` as a string; the server parses booleans from it.
                let replace = wire::PatchOperation::Replace;
                let (operation, path, value) = match p {
                    IdpPatch::Name(v) => (replace, "/name", v.clone()),
                    IdpPatch::Description(v) => (replace, "/description", v.clone()),
                    IdpPatch::Image(v) => (replace, "/image", v.clone()),
                    IdpPatch::Enabled(v) => (replace, "/isEnabled", v.to_string()),
                    IdpPatch::AddJwksUri(v) => {
                        (wire::PatchOperation::Add, "/certificate/jwksUri", v.clone())
                    }
                    IdpPatch::JwksUri(v) => (replace, "/certificate/jwksUri", v.clone()),
                    IdpPatch::AddSamlMetadataUri(v) => (
                        wire::PatchOperation::Add,
                        "/certificate/samlMetadataUri",
                        v.clone(),
                    ),
                    IdpPatch::SamlMetadataUri(v) => {
                        (replace, "/certificate/samlMetadataUri", v.clone())
                    }
                    IdpPatch::AddCertificate(i, pem) => {
                        return wire::Patch {
                            operation: wire::PatchOperation::Add,
                            path: format!("/certificate/certificates/{i}"),
                            value: Some(serde_json::Value::String(pem.clone())),
                        }
                    }
                    IdpPatch::RemoveCertificate(i) => {
                        return wire::Patch {
                            operation: wire::PatchOperation::Remove,
                            path: format!("/certificate/certificates/{i}"),
                            value: None,
                        }
                    }
                };
                wire::Patch {
                    operation,
                    path: path.to_owned(),
                    value: Some(serde_json::Value::String(value)),
                }
            })
            .collect();
        self.send(
            op,
            Method::PATCH,
            self.url(&["identity-providers", id]),
            Some(Self::encode(op, &body)?),
        )
        .await?;
        Ok(())
    }

    async fn delete_idp(&self, id: &str) -> Result<bool, BackendError> {
        self.delete(Operation::DeleteIdp, self.url(&["identity-providers", id]))
            .await
    }

    async fn get_federated_authenticator(
        &self,
        idp_id: &str,
        authenticator_id: &str,
    ) -> Result<FederatedAuthenticator, BackendError> {
        let url = self.url(&[
            "identity-providers",
            idp_id,
            "federated-authenticators",
            authenticator_id,
        ]);
        let a: wire::FederatedAuthenticator = self
            .get_json(Operation::GetFederatedAuthenticator, url)
            .await?;
        Ok(authenticator_from_wire(a))
    }

    async fn confidential_properties(
        &self,
        authenticator_id: &str,
    ) -> Result<crate::Confidential, BackendError> {
        let cached = self
            .confidential
            .lock()
            .map_err(|_| BackendError::Config("confidential-properties cache poisoned".into()))?
            .get(authenticator_id)
            .cloned();
        if let Some(c) = cached {
            return Ok(c);
        }
        let op = Operation::GetAuthenticatorMeta;
        let url = self.url(&[
            "identity-providers",
            "meta",
            "federated-authenticators",
            authenticator_id,
        ]);
        // identity-api-server's getMetaFederatedAuthenticator answers 200 with no entity for an
        // authenticator it does not know, and 400 for an id that is not base64url: both, and a
        // server without the endpoint or the scope, mean "use the explicit table". A transient
        // failure is not cached: the next pass asks again.
        let answer = match self.send(op, Method::GET, url, None).await {
            Ok(resp) if resp.body.iter().all(u8::is_ascii_whitespace) => {
                crate::Confidential::fallback(authenticator_id)
            }
            Ok(resp) => match Self::decode::<wire::MetaFederatedAuthenticator>(op, &resp.body) {
                Ok(meta) if !meta.properties.is_empty() => crate::Confidential::from_meta(&meta),
                _ => crate::Confidential::fallback(authenticator_id),
            },
            Err(
                BackendError::NotFound { .. }
                | BackendError::Invalid { .. }
                | BackendError::Forbidden { .. },
            ) => crate::Confidential::fallback(authenticator_id),
            Err(e) => return Err(e),
        };
        if let Ok(mut cache) = self.confidential.lock() {
            cache.insert(authenticator_id.to_string(), answer.clone());
        }
        Ok(answer)
    }

    async fn update_federated_authenticator(
        &self,
        idp_id: &str,
        authenticator: &FederatedAuthenticator,
    ) -> Result<(), BackendError> {
        let op = Operation::UpdateFederatedAuthenticator;
        let url = self.url(&[
            "identity-providers",
            idp_id,
            "federated-authenticators",
            &authenticator.authenticator_id,
        ]);
        let body = Self::encode(op, &authenticator_to_wire(authenticator))?;
        self.send(op, Method::PUT, url, Some(body)).await?;
        Ok(())
    }

    async fn get_jit(&self, idp_id: &str) -> Result<Jit, BackendError> {
        Ok(Jit::from(&self.raw_jit(idp_id).await?))
    }

    async fn update_jit(&self, idp_id: &str, change: &JitChange) -> Result<Jit, BackendError> {
        let op = Operation::UpdateJit;
        // The PUT replaces the whole object: start from what the server has, change only what is declared.
        let mut jit = self.raw_jit(idp_id).await?;
        change.apply_to(&mut jit);
        if jit.is_enabled.is_none() {
            jit.is_enabled = Some(false);
        }
        let url = self.url(&["identity-providers", idp_id, "provisioning", "jit"]);
        let resp = self
            .send(op, Method::PUT, url, Some(Self::encode(op, &jit)?))
            .await?;
        let written: wire::JustInTimeProvisioning = if resp.body.is_empty() {
            jit
        } else {
            Self::decode(op, &resp.body)?
        };
        Ok(Jit::from(&written))
    }

    async fn update_mappings(
        &self,
        idp_id: &str,
        change: &MappingsChange,
    ) -> Result<IdpMappings, BackendError> {
        // Each PUT replaces its whole object: read it, replace the declared fields, write it. The
        // three are independent: one the server refuses does not hold back the others, and the
        // first refusal is returned after all were tried.
        let mut first_error = None;
        let mut keep = |r: Result<(), BackendError>| {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        };
        let (mut claims, mut roles, mut groups) = (None, None, None);
        if change.touches_claims() {
            keep(
                async {
                    let path = ["identity-providers", idp_id, "claims"];
                    let server: wire::Claims =
                        self.get_json(Operation::GetClaims, self.url(&path)).await?;
                    if let Some(body) = change.claims_body(&server) {
                        claims = Some(self.put_json(Operation::UpdateClaims, &path, body).await?);
                    }
                    Ok(())
                }
                .await,
            );
        }
        if change.role_mappings.is_some() {
            keep(
                async {
                    let path = ["identity-providers", idp_id, "roles"];
                    let server: wire::Roles =
                        self.get_json(Operation::GetRoles, self.url(&path)).await?;
                    if let Some(body) = change.roles_body(&server) {
                        roles = Some(self.put_json(Operation::UpdateRoles, &path, body).await?);
                    }
                    Ok(())
                }
                .await,
            );
        }
        if change.groups.is_some() {
            keep(
                async {
                    let path = ["identity-providers", idp_id, "groups"];
                    let server: Vec<wire::IdpGroup> =
                        self.get_json(Operation::GetGroups, self.url(&path)).await?;
                    if let Some(body) = change.groups_body(&server) {
                        groups = Some(self.put_json(Operation::UpdateGroups, &path, body).await?);
                    }
                    Ok(())
                }
                .await,
            );
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        // The parts not written are not read again: the result carries only what was written.
        Ok(IdpMappings::from_wire(
            claims.as_ref(),
            roles.as_ref(),
            groups.as_deref(),
        ))
    }

    async fn connected_apps(&self, idp_id: &str) -> Result<Vec<String>, BackendError> {
        let apps = self
            .list_all(
                Operation::ConnectedApps,
                &["identity-providers", idp_id, "connected-apps"],
                None,
                |p: wire::ConnectedApps| (p.connected_apps, p.links),
            )
            .await?;
        Ok(apps.into_iter().map(|a| a.app_id).collect())
    }

    async fn find_application_by_name(
        &self,
        name: &str,
    ) -> Result<Option<ApplicationSummary>, BackendError> {
        let filter = Self::name_filter(name);
        let all = self
            .list_all(
                Operation::ListApplications,
                &["applications"],
                filter.as_deref(),
                |p: wire::ApplicationListResponse| (p.applications, p.links),
            )
            .await?;
        Ok(
            pick_by_name(all, name, |a| &a.name).map(|a| ApplicationSummary {
                id: a.id,
                name: a.name,
                client_id: a.client_id,
            }),
        )
    }

    async fn get_application(&self, id: &str) -> Result<Application, BackendError> {
        let r: wire::ApplicationResponseModel = self
            .get_json(Operation::GetApplication, self.url(&["applications", id]))
            .await?;
        Ok(Application {
            login_flow: flow_from_wire(r.authentication_sequence.as_ref()),
            id: r.id,
            name: r.name,
            description: r.description,
            client_id: r.client_id,
        })
    }

    async fn create_application(&self, app: &NewApplication) -> Result<String, BackendError> {
        let op = Operation::CreateApplication;
        let oidc = app.oidc.as_ref().map(|c| {
            let mut o = wire::OpenIdConnectConfiguration::default();
            apply_oidc_change(&mut o, c);
            wire::InboundProtocols {
                oidc: Some(o),
                extra: Default::default(),
            }
        });
        let req = wire::ApplicationModel {
            name: app.name.clone(),
            description: app.description.clone(),
            template_id: app.template_id.clone(),
            inbound_protocol_configuration: oidc,
            authentication_sequence: app.login_flow.as_ref().map(flow_to_wire),
            ..Default::default()
        };
        self.create(op, self.url(&["applications"]), Self::encode(op, &req)?)
            .await
    }

    async fn patch_application(
        &self,
        id: &str,
        patch: &ApplicationPatch,
    ) -> Result<(), BackendError> {
        let op = Operation::PatchApplication;
        let req = wire::ApplicationPatchModel {
            name: patch.name.clone(),
            description: patch.description.clone(),
            authentication_sequence: patch.login_flow.as_ref().map(flow_to_wire),
            ..Default::default()
        };
        if req == wire::ApplicationPatchModel::default() {
            return Ok(());
        }
        self.send(
            op,
            Method::PATCH,
            self.url(&["applications", id]),
            Some(Self::encode(op, &req)?),
        )
        .await?;
        Ok(())
    }

    async fn delete_application(&self, id: &str) -> Result<bool, BackendError> {
        self.delete(
            Operation::DeleteApplication,
            self.url(&["applications", id]),
        )
        .await
    }

    async fn get_oidc(&self, app_id: &str) -> Result<OidcSettings, BackendError> {
        let url = self.url(&["applications", app_id, "inbound-protocols", "oidc"]);
        let o: wire::OpenIdConnectConfiguration = self
            .get_json(Operation::GetOidc, url)
            .await
            .map_err(not_configured_as_not_found)?;
        Ok(oidc_from_wire(o))
    }

    async fn update_oidc(
        &self,
        app_id: &str,
        change: &OidcChange,
    ) -> Result<OidcSettings, BackendError> {
        let op = Operation::UpdateOidc;
        let url = self.url(&["applications", app_id, "inbound-protocols", "oidc"]);
        // The PUT replaces the OAuth app: keep every field not managed here (token lifetimes, PKCE...).
        let (mut current, configured): (wire::OpenIdConnectConfiguration, bool) = match self
            .get_json(Operation::GetOidc, url.clone())
            .await
            .map_err(not_configured_as_not_found)
        {
            Ok(c) => (c, true),
            Err(e) if e.server_code() == Some(OIDC_NOT_CONFIGURED) => (Default::default(), false),
            Err(e) => return Err(e),
        };
        // The server refuses an update whose clientId / clientSecret differ from the stored ones
        // (identity-api-server `OAuthInboundFunctions.putOAuthInbound`: 400 "Invalid ClientSecret
        // provided for update."), and newer servers hide the secret from tokens without the
        // secret-view scope. Without it the PUT cannot succeed: say which scope is missing rather
        // than send a request that is bound to fail (or, on a lenient server, blank the secret).
        if configured
            && !current.public_client.unwrap_or(false)
            && current.client_secret.as_ref().is_none_or(|s| s.is_empty())
        {
            let token = self.token(None).await?;
            if !token.scopes.iter().any(|s| s == SECRET_VIEW_SCOPE) {
                return Err(BackendError::Forbidden {
                    missing_scope: Some(SECRET_VIEW_SCOPE.to_owned()),
                    code: None,
                    trace_id: None,
                });
            }
        }
        apply_oidc_change(&mut current, change);
        let resp = self
            .send(op, Method::PUT, url, Some(Self::encode(op, &current)?))
            .await?;
        if resp.body.is_empty() {
            return self.get_oidc(app_id).await;
        }
        Ok(oidc_from_wire(Self::decode(op, &resp.body)?))
    }
}
