//! The Application half of the plan: an application of the snapshot as a spec, with its login flow
//! and the `skipFor` of a script the operator generated.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::api::{Application, ApplicationSpec};
use crate::backend::inventory::AppDetail;
use crate::backend::{self, FlowKind};
use crate::controller::translate;

use super::{policy, Ctx, NoteKind};

pub(super) fn app_object(
    ctx: &mut Ctx<'_>,
    d: &AppDetail,
    idps: &HashMap<String, (String, String)>,
) -> Option<Application> {
    const KIND: &str = "Application";
    let server = &d.app.name;
    let name = ctx.names.app(server);
    if !ctx.display_name_fits(KIND, server) {
        return None;
    }
    let mut spec = json!({
        "backendRef": {"name": ctx.opts.backend_name},
        "displayName": server,
        "deletionPolicy": policy(ctx.opts.deletion_policy),
        "adopt": true,
    });
    // An operator's owner marker is the server's record of who manages the object, not the
    // description the user wrote.
    let desc = d
        .app
        .description
        .as_deref()
        .map(crate::controller::managed::strip_markers);
    if let Some(desc) = desc.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        spec["description"] = desc.into();
    }
    if let Some(o) = &d.oidc {
        let oidc = json!({
            "grantTypes": o.grant_types,
            "callbackURLs": o.callback_urls,
            "allowedOrigins": o.allowed_origins,
            "publicClient": o.public_client,
        });
        let redirects = o
            .grant_types
            .iter()
            .any(|g| g == "authorization_code" || g == "implicit");
        match serde_json::from_value::<crate::api::application::OidcSettings>(oidc.clone()) {
            Ok(_) if redirects && o.callback_urls.is_empty() => ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), "its OIDC settings have a browser grant without callback URLs, which the resource rejects; they stay on the server unmanaged"),
            Ok(_) if o.grant_types.is_empty() || o.grant_types.len() > 10 || o.allowed_origins.len() > 50 => ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), "its OIDC settings exceed what the resource allows; they stay on the server unmanaged"),
            Ok(_) => spec["oidc"] = oidc,
            Err(e) => ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), format!("its OIDC settings are not expressible ({e}); they stay on the server unmanaged")),
        }
    }
    let flow = &d.app.login_flow;
    if flow.kind == FlowKind::UserDefined {
        // A script the operator generated is the steps' skipFor, written back as such; any other
        // script stays on the server as it is.
        let skips = generated_skips(flow);
        match flow_block(flow, idps) {
            Ok(mut steps) => {
                if let Some(skips) = &skips {
                    add_skip_for(&mut steps, skips, idps);
                }
                spec["loginFlow"] = json!({"steps": steps})
            }
            Err(why) => ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), format!("its login flow is not expressible ({why}); the flow stays on the server unmanaged, and lint cannot check it (audit does)")),
        }
        if flow.script.is_some() && skips.is_none() {
            ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), "it has a hand-written conditional-auth script; the operator keeps it on the server as it is, it is not in Git, and the conflict check does not analyse it");
        }
        if flow.subject_step_id != 1 || flow.attribute_step_id != 1 {
            ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), format!("its subject step ({}) and attribute step ({}) are not expressible; a later flow change from Git resets them to step 1", flow.subject_step_id, flow.attribute_step_id));
        }
    }
    let spec: ApplicationSpec = match serde_json::from_value(spec) {
        Ok(s) => s,
        Err(e) => {
            ctx.note(
                NoteKind::Skipped,
                KIND,
                server,
                None,
                format!("the resource cannot hold it: {e}"),
            );
            return None;
        }
    };
    // The adoption check, with the controller's own diff functions.
    let by_k8s: HashMap<&str, (&str, &str)> = idps
        .iter()
        .map(|(s, (k, a))| (k.as_str(), (s.as_str(), a.as_str())))
        .collect();
    let resolve = |r: &str| by_k8s.get(r).map(|(s, a)| (s.to_string(), a.to_string()));
    if let Ok(Some(desired)) = translate::desired_flow(&spec, resolve) {
        if translate::flow_differs(&desired, flow) {
            ctx.note(
                NoteKind::WillChange,
                KIND,
                server,
                Some(&name),
                "the operator will rewrite its login flow",
            );
        }
    }
    if let (Some(desired), Some(current)) = (translate::desired_oidc(&spec), d.oidc.as_ref()) {
        if translate::oidc_differs(&desired, current) {
            ctx.note(
                NoteKind::WillChange,
                KIND,
                server,
                Some(&name),
                "the operator will rewrite its OIDC settings",
            );
        }
    }
    let mut obj = Application::new(&name, spec);
    obj.metadata.namespace = Some(ctx.opts.namespace.clone());
    Some(obj)
}

/// The per-step skips of a flow whose script the operator generated; `None` for no script or any
/// other script.
fn generated_skips(flow: &backend::LoginFlow) -> Option<Vec<crate::flow::Skip>> {
    flow.script.as_ref()?;
    let rule = translate::flow_for_rule(
        &flow.steps,
        flow.script.as_deref(),
        &crate::flow::LocalAccountAuthenticators::default(),
    );
    (rule.script == crate::flow::ScriptOrigin::Generated).then_some(rule.skips)
}

/// Writes each step's skip as its `skipFor`, IdPs by their exported Kubernetes names.
fn add_skip_for(
    steps: &mut [Value],
    skips: &[crate::flow::Skip],
    idps: &HashMap<String, (String, String)>,
) {
    use crate::flow::Skip;
    for (step, skip) in steps.iter_mut().zip(skips) {
        match skip {
            Skip::Never => {}
            Skip::FederatedUsers => step["skipFor"] = json!({"federatedUsers": true}),
            Skip::For(names) => {
                let refs: Vec<Value> = names
                    .iter()
                    .filter_map(|n| idps.get(n).map(|(k8s, _)| json!({"name": k8s})))
                    .collect();
                if !refs.is_empty() {
                    step["skipFor"] = json!({"identityProviders": refs});
                }
            }
        }
    }
}

/// The `loginFlow.steps` of a user-defined flow, or why it cannot be expressed.
fn flow_block(
    flow: &backend::LoginFlow,
    idps: &HashMap<String, (String, String)>,
) -> Result<Vec<Value>, String> {
    if flow.steps.is_empty() || flow.steps.len() > 10 {
        return Err(format!(
            "{} steps (the resource allows 1 to 10)",
            flow.steps.len()
        ));
    }
    let mut steps = Vec::new();
    for (i, step) in flow.steps.iter().enumerate() {
        if step.options.is_empty() || step.options.len() > 20 {
            return Err(format!(
                "step {} has {} options (1 to 20 allowed)",
                i + 1,
                step.options.len()
            ));
        }
        let mut options = Vec::new();
        for o in &step.options {
            if o.is_local() {
                let ok = !o.authenticator.is_empty()
                    && o.authenticator.len() <= 128
                    && o.authenticator
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                if !ok {
                    return Err(format!(
                        "step {} uses local authenticator {:?}",
                        i + 1,
                        o.authenticator
                    ));
                }
                options.push(json!({"authenticator": o.authenticator}));
            } else {
                match idps.get(&o.idp) {
                    Some((k8s, auth)) if *auth == o.authenticator => {
                        options.push(json!({"identityProviderRef": {"name": k8s}}))
                    }
                    Some((_, auth)) => {
                        return Err(format!(
                            "step {} uses identity provider {:?} through authenticator {}, but the resource can only use its {auth}",
                            i + 1, o.idp, o.authenticator
                        ))
                    }
                    None => {
                        return Err(format!(
                            "step {} uses identity provider {:?} ({}), which was not exported",
                            i + 1, o.idp, o.authenticator
                        ))
                    }
                }
            }
        }
        steps.push(json!({"options": options}));
    }
    Ok(steps)
}
