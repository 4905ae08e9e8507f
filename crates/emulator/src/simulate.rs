//! Emulator-only: simulate a login (`POST /_emulator/simulate-login`), never on a real server.
//!
//! Body: `{"tenant": "carbon.super", "application": "Payroll", "choices": {"1": "Partner Okta"}}`.
//! `application` is a name or an id; `choices` maps a step number to the option picked there, named
//! by its IdP (a federated option) or its authenticator (a local one). A step with one option needs no
//! choice. `localAccountAuthenticators` optionally replaces the default list of authenticators that
//! need a local account. The answer says which steps ran and whether the login succeeded
//! ([`Outcome`]); the application's stored `authenticationSequence` (steps and script) and the
//! tenant's IdPs' JIT settings decide it, the script through [`super::script`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::shared::{lock, Shared};
use super::state::TenantState;
use identity_client::wire::{JustInTimeProvisioning, SequenceType, LOCAL_IDP};
use identity_model::proof::{run_login, Choice, Outcome};
use identity_model::LocalAccountAuthenticators;

/// What to simulate.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulateRequest {
    /// Tenant domain (default `carbon.super`).
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Application name or id.
    pub application: String,
    /// Step number → the option picked: an IdP name or a local authenticator name.
    #[serde(default)]
    pub choices: BTreeMap<u32, String>,
    /// Replaces the default authenticators that need a local account.
    #[serde(default)]
    pub local_account_authenticators: Option<Vec<String>>,
}

fn default_tenant() -> String {
    "carbon.super".to_owned()
}

/// The answer: the login's [`Outcome`] and whether a script decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulateResponse {
    /// The application's name.
    pub application: String,
    /// The application has a conditional-auth script.
    pub script: bool,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Builds the user's choices from the stored application and IdPs; `Err` is a message for a 400.
pub fn choices_for(
    st: &TenantState,
    steps: &[Vec<(String, String)>],
    picked: &BTreeMap<u32, String>,
    needs_local: &LocalAccountAuthenticators,
) -> Result<Vec<Choice>, String> {
    if let Some(extra) = picked
        .keys()
        .find(|k| **k == 0 || **k as usize > steps.len())
    {
        return Err(format!(
            "choice for step {extra}, but the flow has {} step(s)",
            steps.len()
        ));
    }
    steps
        .iter()
        .enumerate()
        .map(|(i, options)| {
            let n = i as u32 + 1;
            let (idp, authenticator) = match (picked.get(&n), options.as_slice()) {
                (None, [only]) => only.clone(),
                (None, _) => {
                    return Err(format!(
                        "step {n} has {} options: choose one in choices",
                        options.len()
                    ))
                }
                (Some(want), _) => options
                    .iter()
                    .find(|(idp, auth)| {
                        (idp != LOCAL_IDP && idp == want) || (idp == LOCAL_IDP && auth == want)
                    })
                    .cloned()
                    .ok_or_else(|| {
                        format!("step {n} offers no option {want:?} (name an IdP or a local authenticator)")
                    })?,
            };
            let needs = needs_local.contains(&authenticator);
            let federated = idp != LOCAL_IDP && !needs;
            let jit_on = federated
                && st
                    .idp_by_name(&idp)
                    .is_some_and(|p| provisions_unmatched_user(&p.jit));
            Ok(Choice {
                idp,
                authenticator,
                federated,
                needs_local: needs,
                jit_on,
            })
        })
        .collect()
}

/// Whether the server's JIT gives a local account to a federated user whom no local account matches
/// (the simulated user): JIT on, and not skipped on lookup failure. The skip acts only with lookup
/// mappings: without them the server does no lookup, so none can fail.
pub fn provisions_unmatched_user(jit: &JustInTimeProvisioning) -> bool {
    let looks_up = jit
        .account_lookup_attribute_mappings
        .as_ref()
        .is_some_and(|m| !m.is_empty());
    let skips = looks_up && jit.skip_jit_for_lookup_failure == Some(true);
    jit.is_enabled == Some(true) && !skips
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({ "message": message.into() })),
    )
        .into_response()
}

/// `POST /_emulator/simulate-login`.
pub(crate) async fn simulate_login(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: SimulateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("invalid body: {e}")),
    };
    let needs_local = req
        .local_account_authenticators
        .clone()
        .map(LocalAccountAuthenticators::from_names)
        .unwrap_or_default();
    // Read what the login needs, then run the script without holding the lock.
    let prepared = {
        let tenants = lock(&shared.tenants);
        let Some(st) = tenants.get(&req.tenant) else {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({ "message": format!("no tenant {}", req.tenant) })),
            )
                .into_response();
        };
        let Some(app) = st
            .app(&req.application)
            .or_else(|| st.app_by_name(&req.application))
        else {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(
                    serde_json::json!({ "message": format!("no application {}", req.application) }),
                ),
            )
                .into_response();
        };
        let seq = &app.sequence;
        let steps: Vec<Vec<(String, String)>> = seq
            .steps
            .iter()
            .flatten()
            .map(|s| {
                s.options
                    .iter()
                    .map(|o| (o.idp.clone(), o.authenticator.clone()))
                    .collect()
            })
            .collect();
        // A DEFAULT sequence has no script to run (the server ignores it there).
        let script = (seq.kind == Some(SequenceType::UserDefined))
            .then(|| seq.script.clone())
            .flatten();
        choices_for(st, &steps, &req.choices, &needs_local)
            .map(|choices| (app.name.clone(), script, choices))
    };
    let (name, script, choices) = match prepared {
        Ok(p) => p,
        Err(m) => return bad_request(m),
    };
    let has_script = script.as_deref().is_some_and(|s| !s.trim().is_empty());
    let run = tokio::task::spawn_blocking(move || run_login(script.as_deref(), &choices)).await;
    match run {
        Ok(Ok(outcome)) => axum::Json(SimulateResponse {
            application: name,
            script: has_script,
            outcome,
        })
        .into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({ "message": e.to_string() })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({ "message": format!("simulation task failed: {e}") })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoredIdp;
    use identity_client::wire::AccountLookupAttributeMapping;

    fn tenant() -> TenantState {
        let mut st = TenantState::default();
        for (name, jit) in [("Okta", false), ("Google", true)] {
            st.idps.push(StoredIdp {
                name: name.into(),
                jit: JustInTimeProvisioning {
                    is_enabled: Some(jit),
                    ..Default::default()
                },
                ..Default::default()
            });
        }
        st
    }

    fn steps() -> Vec<Vec<(String, String)>> {
        vec![
            vec![
                ("LOCAL".into(), "BasicAuthenticator".into()),
                ("Okta".into(), "OpenIDConnectAuthenticator".into()),
                ("Google".into(), "GoogleOIDCAuthenticator".into()),
            ],
            vec![("LOCAL".into(), "totp".into())],
        ]
    }

    #[test]
    fn choices_resolve_by_idp_or_authenticator_and_carry_jit() {
        let st = tenant();
        let needs = LocalAccountAuthenticators::default();
        let pick = |s: &str| BTreeMap::from([(1, s.to_owned())]);
        let okta = choices_for(&st, &steps(), &pick("Okta"), &needs).expect("valid");
        assert!(okta[0].federated && !okta[0].jit_on);
        assert!(
            okta[1].needs_local && !okta[1].federated,
            "step 2 has one option"
        );
        let google = choices_for(&st, &steps(), &pick("Google"), &needs).expect("valid");
        assert!(google[0].jit_on);
        let local = choices_for(&st, &steps(), &pick("BasicAuthenticator"), &needs).expect("valid");
        assert_eq!(local[0].idp, "LOCAL");
        assert!(!local[0].federated);
    }

    #[test]
    fn lookup_skip_leaves_the_unmatched_user_without_an_account() {
        let mapping = || {
            Some(vec![AccountLookupAttributeMapping {
                local_attribute: Some("http://wso2.org/claims/emailaddress".into()),
                federated_attribute: Some("email".into()),
            }])
        };
        // (case, enabled, mappings, skip, provisioned)
        let cases = [
            ("on", true, None, Some(false), true),
            ("on with a lookup", true, mapping(), Some(false), true),
            (
                "skip without a lookup means nothing",
                true,
                None,
                Some(true),
                true,
            ),
            ("skip with a lookup", true, mapping(), Some(true), false),
            ("off", false, mapping(), Some(false), false),
        ];
        for (name, enabled, mappings, skip, want) in cases {
            let jit = JustInTimeProvisioning {
                is_enabled: Some(enabled),
                account_lookup_attribute_mappings: mappings,
                skip_jit_for_lookup_failure: skip,
                ..Default::default()
            };
            assert_eq!(provisions_unmatched_user(&jit), want, "{name}");
        }
        let mut st = tenant();
        st.idps[1].jit.account_lookup_attribute_mappings = mapping();
        st.idps[1].jit.skip_jit_for_lookup_failure = Some(true);
        let pick = BTreeMap::from([(1, "Google".to_owned())]);
        let google = choices_for(&st, &steps(), &pick, &LocalAccountAuthenticators::default())
            .expect("valid");
        assert!(!google[0].jit_on, "Google skips JIT for an unmatched user");
    }

    #[test]
    fn bad_choices_are_refused_with_a_reason() {
        let st = tenant();
        let needs = LocalAccountAuthenticators::default();
        let cases = [
            (
                "no choice where there are several",
                BTreeMap::new(),
                "choose one",
            ),
            (
                "an unknown option",
                BTreeMap::from([(1, "Nope".to_owned())]),
                "offers no option",
            ),
            (
                "LOCAL is not an IdP choice",
                BTreeMap::from([(1, "LOCAL".to_owned())]),
                "offers no option",
            ),
            (
                "a step that does not exist",
                BTreeMap::from([(1, "Okta".to_owned()), (3, "totp".to_owned())]),
                "has 2 step(s)",
            ),
        ];
        for (name, picked, want) in cases {
            let err = choices_for(&st, &steps(), &picked, &needs).expect_err(name);
            assert!(err.contains(want), "{name}: {err}");
        }
    }
}
