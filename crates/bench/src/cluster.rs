//! The control-plane side of a bench run: resources, server-side apply, CRD install, the
//! operator's ServiceAccount identity, listing objects and the apiserver's request counters.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

use crate::{probe, MANAGER};

pub(crate) fn ar(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

pub(crate) fn crd_resource(kind: &str) -> ApiResource {
    ar("identity-operator.io/v1alpha1", kind)
}

/// Server-side applies one object in `ns`; retries a few times (a CRD just Established may still
/// answer 404 for a moment, and the apiserver may be briefly busy).
pub(crate) async fn apply(client: &Client, ns: &str, obj: &Value) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &ar(
            obj["apiVersion"].as_str().unwrap_or("v1"),
            obj["kind"].as_str().unwrap_or_default(),
        ),
    );
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let mut attempt = 0;
    loop {
        match api
            .patch(
                name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(obj),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 10 && retryable(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(anyhow!("applying {} {name}: {e}", obj["kind"])),
        }
    }
}

pub(crate) fn retryable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 404 || s.code == 429 || s.code >= 500,
        _ => true,
    }
}

/// Applies the generated CRDs and waits until they are Established.
pub(crate) async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in identity_api::crds() {
        let name = crd.name_any();
        let mut body = serde_json::to_value(&crd)?;
        body["apiVersion"] = "apiextensions.k8s.io/v1".into();
        body["kind"] = "CustomResourceDefinition".into();
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .with_context(|| format!("applying CRD {name}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let crd = api.get(&name).await?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if Instant::now() > deadline {
                bail!("CRD {name} not Established after 60s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// A ServiceAccount bound to cluster-admin, a FlowSchema matching only it (exempt priority level,
/// like the admin user: no throttling), a token, and a kubeconfig with that token. Returns the
/// kubeconfig's path.
pub(crate) async fn operator_identity(
    client: &Client,
    ns: &str,
    flow_schema: &str,
    admin_kubeconfig: &Path,
    workdir: &Path,
) -> anyhow::Result<PathBuf> {
    let sa_name = "identity-operator";
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": sa_name}}))?,
    )
    .await
    .context("creating the operator's ServiceAccount")?;
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": flow_schema},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}]
    });
    let schema = json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": flow_schema},
        "spec": {
            "priorityLevelConfiguration": {"name": "exempt"},
            "matchingPrecedence": 10,
            "rules": [{
                "subjects": [{"kind": "ServiceAccount", "serviceAccount": {"name": sa_name, "namespace": ns}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": true}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
            }]
        }
    });
    for obj in [&binding, &schema] {
        let api: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ar(
                obj["apiVersion"].as_str().unwrap_or_default(),
                obj["kind"].as_str().unwrap_or_default(),
            ),
        );
        api.patch(
            obj["metadata"]["name"].as_str().unwrap_or_default(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await
        .with_context(|| format!("applying {}", obj["kind"]))?;
    }
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 6 * 3600}}))?;
    let token = sas
        .create_token_request(sa_name, &PostParams::default(), &request)
        .await
        .context("requesting a token for the operator")?
        .status
        .map(|s| s.token)
        .context("TokenRequest without a token")?;
    // The admin kubeconfig with every user replaced by the token (a client certificate would win
    // over the token and make the operator an admin again).
    let mut kc: Value = serde_saphyr::from_str(&std::fs::read_to_string(admin_kubeconfig)?)?;
    if let Some(users) = kc.get_mut("users").and_then(|u| u.as_array_mut()) {
        for user in users {
            user["user"] = json!({ "token": token });
        }
    }
    kc["contexts"][0]["context"]["namespace"] = ns.into();
    let path = workdir.join("operator.kubeconfig");
    write_private(&path, &serde_saphyr::to_string(&kc)?)?;
    Ok(path)
}

pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

pub(crate) async fn cleanup_cluster_scoped(client: &Client, name: &str) {
    for (api_version, kind) in [
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
    ] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar(api_version, kind));
        let _ = api.delete(name, &Default::default()).await;
    }
}

/// Every object of `kind` in `ns`, listed in pages of 500.
pub(crate) async fn list_all(
    client: &Client,
    ns: &str,
    kind: &str,
) -> anyhow::Result<Vec<DynamicObject>> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &crd_resource(kind));
    let mut out = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// Status of condition `type_` of an object.
pub(crate) fn condition<'a>(obj: &'a DynamicObject, type_: &str) -> Option<&'a Value> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

pub(crate) fn has_condition(obj: &DynamicObject, type_: &str, status: &str) -> bool {
    condition(obj, type_).is_some_and(|c| c["status"] == status)
}

pub(crate) async fn metrics_text(client: &Client) -> anyhow::Result<String> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    Ok(client.request_text(req).await?)
}

/// Requests the operator made so far (its FlowSchema's dispatched requests).
pub(crate) async fn operator_requests(client: &Client, flow_schema: &str) -> anyhow::Result<u64> {
    let text = metrics_text(client).await?;
    Ok(probe::sum(
        &text,
        "apiserver_flowcontrol_dispatched_requests_total",
        &[("flow_schema", flow_schema)],
    ) as u64)
}

/// Requests of every client so far (`apiserver_request_total`).
pub(crate) async fn apiserver_total(client: &Client) -> anyhow::Result<u64> {
    let text = metrics_text(client).await?;
    Ok(probe::sum(&text, "apiserver_request_total", &[]) as u64)
}

/// Requests of every client so far by `VERB resource`.
pub(crate) async fn apiserver_by_verb(
    client: &Client,
) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    Ok(probe::requests_by_verb(&metrics_text(client).await?))
}
