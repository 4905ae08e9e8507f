//! Reading a whole tenant: every identity provider with its authenticators and JIT settings, every
//! application with its login flow and OIDC settings. `export` and `audit` start from this snapshot.
//!
//! Secrets are dropped here, at the edge, so nothing downstream can write them anywhere: confidential
//! authenticator properties keep their key with no value (export still learns that a secret exists),
//! and an application's OIDC client secret is never kept.

use futures::{StreamExt, TryStreamExt};

use super::asgardeo::AsgardeoClient;
use super::operation::Operation;
use super::wire;
use super::{
    Application, ApplicationSummary, BackendError, Confidential, FederatedAuthenticator,
    IdentityServer, Idp, IdpSummary, OidcSettings,
};

/// How many objects are read at once; the client bounds its own concurrency as well.
const PARALLEL_READS: usize = 8;

/// An identity provider with everything export and audit need.
#[derive(Clone, Debug, PartialEq)]
pub struct IdpDetail {
    /// The IdP (root attributes, authenticator list, JIT).
    pub idp: Idp,
    /// Each authenticator with its properties, confidential values removed.
    pub authenticators: Vec<FederatedAuthenticator>,
    /// JIT settings (from the IdP read, or read separately when the server left them out).
    pub jit: super::Jit,
    /// Which properties of each authenticator (by id) the server declares confidential.
    pub confidential: std::collections::BTreeMap<String, Confidential>,
}

impl IdpDetail {
    /// The default authenticator (or the only one).
    pub fn default_authenticator(&self) -> Option<&FederatedAuthenticator> {
        self.authenticators
            .iter()
            .find(|a| Some(&a.authenticator_id) == self.idp.default_authenticator_id.as_ref())
            .or_else(|| (self.authenticators.len() == 1).then(|| &self.authenticators[0]))
    }

    /// The confidential keys of an authenticator: as read with the snapshot, else the explicit table.
    pub fn confidential_of(&self, authenticator_id: &str) -> Confidential {
        self.confidential
            .get(authenticator_id)
            .cloned()
            .unwrap_or_else(|| Confidential::fallback(authenticator_id))
    }
}

/// An application with everything export and audit need.
#[derive(Clone, Debug, PartialEq)]
pub struct AppDetail {
    /// The application with its login flow.
    pub app: Application,
    /// OIDC settings when the application has them; `client_secret` is always `None`.
    pub oidc: Option<OidcSettings>,
}

/// Everything on one tenant, in the server's list order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantSnapshot {
    /// Identity providers.
    pub idps: Vec<IdpDetail>,
    /// Applications.
    pub applications: Vec<AppDetail>,
}

/// Which part of the read is running, for progress output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading identity providers.
    IdentityProviders,
    /// Reading applications.
    Applications,
}

impl AsgardeoClient {
    /// Every identity provider on the tenant (all pages).
    pub async fn list_idps(&self) -> Result<Vec<IdpSummary>, BackendError> {
        let all = self
            .list_all(
                Operation::ListIdps,
                &["identity-providers"],
                None,
                |p: wire::IdentityProviderListResponse| (p.identity_providers, p.links),
            )
            .await?;
        Ok(all
            .into_iter()
            .map(|i| IdpSummary {
                id: i.id,
                name: i.name,
                is_enabled: i.is_enabled,
            })
            .collect())
    }

    /// Every application on the tenant (all pages).
    pub async fn list_applications(&self) -> Result<Vec<ApplicationSummary>, BackendError> {
        let all = self
            .list_all(
                Operation::ListApplications,
                &["applications"],
                None,
                |p: wire::ApplicationListResponse| (p.applications, p.links),
            )
            .await?;
        Ok(all
            .into_iter()
            .map(|a| ApplicationSummary {
                id: a.id,
                name: a.name,
                client_id: a.client_id,
            })
            .collect())
    }

    /// Reads the whole tenant. `progress(phase, done, total)` is called as objects are read, so a
    /// command can show progress for large tenants. Objects deleted between list and read are
    /// skipped (the snapshot is of one moment per object, not of the whole tenant).
    pub async fn read_tenant(
        &self,
        mut progress: impl FnMut(Phase, usize, usize),
    ) -> Result<TenantSnapshot, BackendError> {
        let idps = self.list_idps().await?;
        let total = idps.len();
        progress(Phase::IdentityProviders, 0, total);
        let mut done = 0;
        let mut read_idps: Vec<(usize, IdpDetail)> = Vec::with_capacity(total);
        let mut stream = futures::stream::iter(idps.into_iter().enumerate())
            .map(|(i, s)| async move { Ok::<_, BackendError>((i, self.idp_detail(&s.id).await?)) })
            .buffer_unordered(PARALLEL_READS);
        while let Some((i, detail)) = stream.try_next().await? {
            done += 1;
            progress(Phase::IdentityProviders, done, total);
            read_idps.extend(detail.map(|d| (i, d)));
        }
        drop(stream);
        read_idps.sort_by_key(|(i, _)| *i);

        let apps = self.list_applications().await?;
        let total = apps.len();
        progress(Phase::Applications, 0, total);
        let mut done = 0;
        let mut read_apps: Vec<(usize, AppDetail)> = Vec::with_capacity(total);
        let mut stream = futures::stream::iter(apps.into_iter().enumerate())
            .map(|(i, s)| async move { Ok::<_, BackendError>((i, self.app_detail(&s.id).await?)) })
            .buffer_unordered(PARALLEL_READS);
        while let Some((i, detail)) = stream.try_next().await? {
            done += 1;
            progress(Phase::Applications, done, total);
            read_apps.extend(detail.map(|d| (i, d)));
        }
        drop(stream);
        read_apps.sort_by_key(|(i, _)| *i);

        Ok(TenantSnapshot {
            idps: read_idps.into_iter().map(|(_, d)| d).collect(),
            applications: read_apps.into_iter().map(|(_, d)| d).collect(),
        })
    }

    async fn idp_detail(&self, id: &str) -> Result<Option<IdpDetail>, BackendError> {
        let idp = match self.get_idp(id).await {
            Ok(i) => i,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut authenticators = Vec::with_capacity(idp.authenticators.len());
        let mut confidential = std::collections::BTreeMap::new();
        for a in &idp.authenticators {
            match self.get_federated_authenticator(id, &a.id).await {
                Ok(full) => {
                    let secret_keys = self.confidential_properties(&a.id).await?;
                    authenticators.push(without_secrets(full, &secret_keys));
                    confidential.insert(a.id.clone(), secret_keys);
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        let jit = match idp.jit.clone() {
            Some(j) => j,
            None => self.get_jit(id).await?,
        };
        Ok(Some(IdpDetail {
            idp,
            authenticators,
            jit,
            confidential,
        }))
    }

    async fn app_detail(&self, id: &str) -> Result<Option<AppDetail>, BackendError> {
        let app = match self.get_application(id).await {
            Ok(a) => a,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let oidc = if app.client_id.is_some() {
            match self.get_oidc(id).await {
                Ok(mut o) => {
                    o.client_secret = None;
                    Some(o)
                }
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        Ok(Some(AppDetail { app, oidc }))
    }
}

/// Keeps the keys of the properties the server declares confidential and drops their values.
fn without_secrets(
    mut a: FederatedAuthenticator,
    confidential: &Confidential,
) -> FederatedAuthenticator {
    for p in &mut a.properties {
        if confidential.contains(&p.key) {
            p.value = None;
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Property;

    #[test]
    fn confidential_values_are_dropped_keys_kept() {
        let a = without_secrets(
            FederatedAuthenticator {
                authenticator_id: "x".into(),
                name: None,
                is_enabled: true,
                is_default: true,
                properties: vec![
                    Property::new("ClientId", "id-1"),
                    Property::new("ClientSecret", "s3cr3t"),
                    Property::new("OAuth2TokenEPUrl", "https://idp.example/token"),
                ],
            },
            &Confidential::of(&["ClientSecret"]),
        );
        assert_eq!(a.properties[0].value.as_deref(), Some("id-1"));
        assert_eq!(a.properties[1].key, "ClientSecret");
        assert_eq!(a.properties[1].value, None);
        // A URL whose key spells "token" is kept: the server does not call it confidential.
        assert_eq!(
            a.properties[2].value.as_deref(),
            Some("https://idp.example/token")
        );
    }
}
