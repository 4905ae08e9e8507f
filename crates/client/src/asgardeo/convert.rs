//! Wire ↔ domain: the login flow, federated authenticators and OIDC settings as the API writes
//! them, and as the operator's domain types hold them.

use super::*;

pub(crate) fn flow_to_wire(flow: &FlowUpdate) -> wire::AuthenticationSequence {
    wire::AuthenticationSequence {
        kind: Some(wire::SequenceType::UserDefined),
        steps: Some(
            flow.steps
                .iter()
                .enumerate()
                .map(|(i, s)| wire::AuthenticationStep {
                    id: i as i64 + 1,
                    options: s
                        .options
                        .iter()
                        .map(|o| wire::AuthenticatorOption {
                            idp: o.idp.clone(),
                            authenticator: o.authenticator.clone(),
                        })
                        .collect(),
                })
                .collect(),
        ),
        request_path_authenticators: None,
        script: flow.script.clone(),
        subject_step_id: flow.subject_step_id.map(i64::from),
        attribute_step_id: flow.attribute_step_id.map(i64::from),
    }
}

pub(crate) fn flow_from_wire(seq: Option<&wire::AuthenticationSequence>) -> LoginFlow {
    let Some(seq) = seq else {
        return LoginFlow {
            kind: FlowKind::Default,
            steps: vec![],
            script: None,
            subject_step_id: 1,
            attribute_step_id: 1,
        };
    };
    let mut steps = seq.steps.clone().unwrap_or_default();
    steps.sort_by_key(|s| s.id);
    let to_u32 = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(1);
    LoginFlow {
        kind: match seq.kind {
            Some(wire::SequenceType::UserDefined) => FlowKind::UserDefined,
            _ => FlowKind::Default,
        },
        steps: steps
            .into_iter()
            .map(|s| FlowStep {
                options: s
                    .options
                    .into_iter()
                    .map(|o| FlowOption {
                        idp: o.idp,
                        authenticator: o.authenticator,
                    })
                    .collect(),
            })
            .collect(),
        script: seq.script.clone().filter(|s| !s.trim().is_empty()),
        subject_step_id: to_u32(seq.subject_step_id),
        attribute_step_id: to_u32(seq.attribute_step_id),
    }
}

pub(crate) fn authenticator_from_wire(a: wire::FederatedAuthenticator) -> FederatedAuthenticator {
    FederatedAuthenticator {
        authenticator_id: a.authenticator_id,
        name: a.name,
        is_enabled: a.is_enabled.unwrap_or(false),
        is_default: a.is_default.unwrap_or(false),
        properties: a.properties.unwrap_or_default(),
    }
}

pub(crate) fn authenticator_to_wire(a: &FederatedAuthenticator) -> wire::FederatedAuthenticator {
    wire::FederatedAuthenticator {
        authenticator_id: a.authenticator_id.clone(),
        is_enabled: Some(a.is_enabled),
        is_default: Some(a.is_default),
        properties: Some(a.properties.clone()),
        ..Default::default()
    }
}

pub(crate) fn oidc_from_wire(o: wire::OpenIdConnectConfiguration) -> OidcSettings {
    OidcSettings {
        client_id: o.client_id,
        client_secret: o.client_secret.filter(|s| !s.is_empty()),
        grant_types: o.grant_types,
        callback_urls: o.callback_urls.unwrap_or_default(),
        allowed_origins: o.allowed_origins.unwrap_or_default(),
        public_client: o.public_client.unwrap_or(false),
        state: o.state,
    }
}

pub(crate) fn apply_oidc_change(o: &mut wire::OpenIdConnectConfiguration, change: &OidcChange) {
    o.grant_types = change.grant_types.clone();
    o.callback_urls = Some(change.callback_urls.clone());
    o.allowed_origins = Some(change.allowed_origins.clone());
    if let Some(p) = change.public_client {
        o.public_client = Some(p);
    }
    // Read-only on the server; sending it back is at best ignored.
    o.state = None;
}
