//! An in-memory [`IdentityServer`] for the planner's unit tests: no HTTP, no cluster. It keeps
//! what the controllers read (ids, names, descriptions, JIT, flows) and answers like the real
//! server where the decisions depend on it: a duplicate name is refused, deleting an IdP that a
//! flow uses is refused with `IDP-60005`, a missing id is a 404.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::backend::*;

/// The fake's state.
#[derive(Default)]
pub struct FakeServer {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u32,
    idps: BTreeMap<String, Idp>,
    apps: BTreeMap<String, Application>,
}

fn not_found(resource: &'static str) -> BackendError {
    BackendError::NotFound {
        resource,
        code: None,
        trace_id: None,
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeServer {
    /// Adds an IdP directly (as someone else would) and returns its id.
    pub fn add_idp(&self, name: &str, description: Option<&str>, jit: bool) -> String {
        let mut s = lock(&self.state);
        s.next += 1;
        let id = format!("idp-{}", s.next);
        let mut j = Jit::from(&wire::JustInTimeProvisioning::default());
        j.enabled = jit;
        s.idps.insert(
            id.clone(),
            Idp {
                id: id.clone(),
                name: name.into(),
                description: description.map(Into::into),
                image: None,
                is_enabled: true,
                default_authenticator_id: None,
                authenticators: Vec::new(),
                jit: Some(j),
                certificate: Default::default(),
                mappings: Default::default(),
            },
        );
        id
    }

    /// Adds an application with a user-defined flow and returns its id.
    pub fn add_app(&self, name: &str, steps: Vec<FlowStep>) -> String {
        let mut s = lock(&self.state);
        s.next += 1;
        let id = format!("app-{}", s.next);
        s.apps.insert(
            id.clone(),
            Application {
                id: id.clone(),
                name: name.into(),
                description: None,
                client_id: None,
                login_flow: LoginFlow {
                    kind: FlowKind::UserDefined,
                    steps,
                    script: None,
                    subject_step_id: 1,
                    attribute_step_id: 1,
                },
            },
        );
        id
    }

    /// Removes an object behind the operator's back.
    pub fn remove(&self, id: &str) {
        let mut s = lock(&self.state);
        s.idps.remove(id);
        s.apps.remove(id);
    }
}

#[async_trait]
impl IdentityServer for FakeServer {
    async fn check_access(&self) -> Result<ServerInfo, BackendError> {
        Ok(ServerInfo {
            tenant_url: "fake".into(),
            granted_scopes: Vec::new(),
            missing_scopes: Vec::new(),
        })
    }

    async fn find_idp_by_name(&self, name: &str) -> Result<Option<IdpSummary>, BackendError> {
        Ok(lock(&self.state)
            .idps
            .values()
            .find(|i| i.name == name)
            .map(|i| IdpSummary {
                id: i.id.clone(),
                name: i.name.clone(),
                is_enabled: i.is_enabled,
            }))
    }

    async fn get_idp(&self, id: &str) -> Result<Idp, BackendError> {
        lock(&self.state)
            .idps
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("identity provider"))
    }

    async fn create_idp(&self, idp: &NewIdp) -> Result<String, BackendError> {
        if self.find_idp_by_name(&idp.name).await?.is_some() {
            return Err(BackendError::AlreadyExists {
                resource: "identity provider",
                code: Some("IDP-60001".into()),
                description: None,
                trace_id: None,
            });
        }
        Ok(self.add_idp(&idp.name, idp.description.as_deref(), false))
    }

    async fn patch_idp(&self, id: &str, ops: &[IdpPatch]) -> Result<(), BackendError> {
        let mut s = lock(&self.state);
        let idp = s
            .idps
            .get_mut(id)
            .ok_or_else(|| not_found("identity provider"))?;
        for op in ops {
            match op {
                IdpPatch::Name(n) => idp.name = n.clone(),
                IdpPatch::Description(d) => idp.description = Some(d.clone()),
                IdpPatch::Image(i) => idp.image = Some(i.clone()),
                IdpPatch::Enabled(e) => idp.is_enabled = *e,
                IdpPatch::AddJwksUri(u) | IdpPatch::JwksUri(u) => {
                    idp.certificate.certificates.clear();
                    idp.certificate.saml_metadata_uri = None;
                    idp.certificate.jwks_uri = Some(u.clone());
                }
                IdpPatch::AddSamlMetadataUri(u) | IdpPatch::SamlMetadataUri(u) => {
                    idp.certificate.certificates.clear();
                    idp.certificate.jwks_uri = None;
                    idp.certificate.saml_metadata_uri = Some(u.clone());
                }
                IdpPatch::AddCertificate(i, pem) => {
                    idp.certificate.jwks_uri = None;
                    idp.certificate.saml_metadata_uri = None;
                    let at = (*i).min(idp.certificate.certificates.len());
                    idp.certificate.certificates.insert(at, pem.clone());
                }
                IdpPatch::RemoveCertificate(i) => {
                    if *i < idp.certificate.certificates.len() {
                        idp.certificate.certificates.remove(*i);
                    }
                }
            }
        }
        Ok(())
    }

    async fn delete_idp(&self, id: &str) -> Result<bool, BackendError> {
        let mut s = lock(&self.state);
        let Some(name) = s.idps.get(id).map(|i| i.name.clone()) else {
            return Ok(false);
        };
        let used = s.apps.values().any(|a| {
            a.login_flow
                .steps
                .iter()
                .flat_map(|st| &st.options)
                .any(|o| o.idp == name)
        });
        if used {
            return Err(BackendError::Invalid {
                status: 400,
                code: Some("IDP-60005".into()),
                message: None,
                description: Some(format!("Identity Provider {name} is used by applications")),
                trace_id: None,
            });
        }
        s.idps.remove(id);
        Ok(true)
    }

    async fn get_federated_authenticator(
        &self,
        _idp_id: &str,
        _authenticator_id: &str,
    ) -> Result<FederatedAuthenticator, BackendError> {
        Err(not_found("authenticator"))
    }

    async fn update_federated_authenticator(
        &self,
        _idp_id: &str,
        _authenticator: &FederatedAuthenticator,
    ) -> Result<(), BackendError> {
        Ok(())
    }

    async fn get_jit(&self, idp_id: &str) -> Result<Jit, BackendError> {
        self.get_idp(idp_id)
            .await?
            .jit
            .ok_or_else(|| not_found("jit"))
    }

    async fn update_jit(&self, idp_id: &str, change: &JitChange) -> Result<Jit, BackendError> {
        let mut s = lock(&self.state);
        let idp = s
            .idps
            .get_mut(idp_id)
            .ok_or_else(|| not_found("identity provider"))?;
        let jit = idp
            .jit
            .get_or_insert_with(|| Jit::from(&wire::JustInTimeProvisioning::default()));
        if let Some(e) = change.enabled {
            jit.enabled = e;
        }
        Ok(jit.clone())
    }

    async fn update_mappings(
        &self,
        idp_id: &str,
        change: &MappingsChange,
    ) -> Result<IdpMappings, BackendError> {
        let mut s = lock(&self.state);
        let idp = s
            .idps
            .get_mut(idp_id)
            .ok_or_else(|| not_found("identity provider"))?;
        let m = &mut idp.mappings;
        if let Some(v) = &change.claim_mappings {
            m.claim_mappings = v.clone();
        }
        if let Some(v) = &change.role_mappings {
            m.role_mappings = v.clone();
        }
        Ok((**m).clone())
    }

    async fn connected_apps(&self, idp_id: &str) -> Result<Vec<String>, BackendError> {
        let s = lock(&self.state);
        let name = s
            .idps
            .get(idp_id)
            .map(|i| i.name.clone())
            .ok_or_else(|| not_found("identity provider"))?;
        Ok(s.apps
            .values()
            .filter(|a| {
                a.login_flow
                    .steps
                    .iter()
                    .flat_map(|st| &st.options)
                    .any(|o| o.idp == name)
            })
            .map(|a| a.id.clone())
            .collect())
    }

    async fn find_application_by_name(
        &self,
        name: &str,
    ) -> Result<Option<ApplicationSummary>, BackendError> {
        Ok(lock(&self.state)
            .apps
            .values()
            .find(|a| a.name == name)
            .map(|a| ApplicationSummary {
                id: a.id.clone(),
                name: a.name.clone(),
                client_id: None,
            }))
    }

    async fn get_application(&self, id: &str) -> Result<Application, BackendError> {
        lock(&self.state)
            .apps
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("application"))
    }

    async fn create_application(&self, app: &NewApplication) -> Result<String, BackendError> {
        let steps = app.login_flow.clone().map(|f| f.steps).unwrap_or_default();
        let id = self.add_app(&app.name, steps);
        if let Some(a) = lock(&self.state).apps.get_mut(&id) {
            a.description = app.description.clone();
        }
        Ok(id)
    }

    async fn patch_application(
        &self,
        id: &str,
        patch: &ApplicationPatch,
    ) -> Result<(), BackendError> {
        let mut s = lock(&self.state);
        let app = s.apps.get_mut(id).ok_or_else(|| not_found("application"))?;
        if let Some(n) = &patch.name {
            app.name = n.clone();
        }
        if let Some(d) = &patch.description {
            app.description = Some(d.clone());
        }
        if let Some(f) = &patch.login_flow {
            app.login_flow.steps = f.steps.clone();
        }
        Ok(())
    }

    async fn delete_application(&self, id: &str) -> Result<bool, BackendError> {
        Ok(lock(&self.state).apps.remove(id).is_some())
    }

    async fn get_oidc(&self, _app_id: &str) -> Result<OidcSettings, BackendError> {
        Err(not_found("oidc"))
    }

    async fn update_oidc(
        &self,
        _app_id: &str,
        _change: &OidcChange,
    ) -> Result<OidcSettings, BackendError> {
        Err(not_found("oidc"))
    }
}
