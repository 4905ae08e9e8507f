//! The field matrix at unit level (`tests/field-matrix.yaml`): every leaf of the generated CRDs has
//! a row; each server row's spec → server translation reads what the row expects, and export of
//! that server object gives the patched spec back (spec → server → spec is the identity).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::Value;

use crate::api::{ApplicationSpec, IdentityProviderSpec};
use crate::backend::inventory::{AppDetail, IdpDetail, TenantSnapshot};
use crate::backend::{
    wire, Application, AuthenticatorSummary, FlowKind, Idp, Jit, LoginFlow, OidcSettings, Secret,
};
use crate::controller::translate;

/// The matrix as both tests read it.
#[derive(Deserialize)]
pub struct Matrix {
    /// Kind → Kubernetes name → spec (without backendRef).
    pub bases: BTreeMap<String, BTreeMap<String, Value>>,
    /// One row per CRD leaf.
    pub fields: Vec<Row>,
}

/// One leaf of a CRD spec.
#[derive(Deserialize, Clone, Debug)]
pub struct Row {
    /// `Kind spec.path` as the CRD walk spells it.
    pub field: String,
    /// Which base the change applies to.
    #[serde(default)]
    pub base: Option<String>,
    /// A JSON merge patch of the base's spec that changes this field alone.
    #[serde(default)]
    pub patch: Option<Value>,
    /// The locator of the server property it maps to.
    #[serde(default)]
    pub server: Option<String>,
    /// What the locator reads after the change.
    #[serde(default)]
    pub expect: Option<Value>,
    /// What a console edit writes there.
    #[serde(default)]
    pub console: Option<Value>,
    /// For a field with no server property: what it controls.
    #[serde(default)]
    pub operator: Option<String>,
    /// For an operator row: `path fn_name` of the test that covers it.
    #[serde(default)]
    pub test: Option<String>,
}

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn matrix() -> Matrix {
    let text = std::fs::read_to_string(root().join("tests/field-matrix.yaml")).expect("matrix");
    serde_saphyr::from_str(&text).expect("matrix parses")
}

/// Every leaf of every CRD's spec in `crds/`, as `Kind spec.a.b[]`.
fn crd_leaves() -> BTreeSet<String> {
    fn walk(s: &Value, path: &str, out: &mut BTreeSet<String>, kind: &str) {
        match (s.get("type").and_then(Value::as_str), s.get("properties")) {
            (Some("object"), Some(Value::Object(props))) => {
                for (k, v) in props {
                    walk(v, &format!("{path}.{k}"), out, kind);
                }
            }
            (Some("array"), _) => walk(&s["items"], &format!("{path}[]"), out, kind),
            _ => {
                out.insert(format!("{kind} {path}"));
            }
        }
    }
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("crds")).expect("crds/") {
        let path = entry.expect("entry").path();
        let crd: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&path).expect("crd")).expect("yaml");
        let kind = crd["spec"]["names"]["kind"]
            .as_str()
            .expect("kind")
            .to_string();
        for v in crd["spec"]["versions"].as_array().expect("versions") {
            walk(
                &v["schema"]["openAPIV3Schema"]["properties"]["spec"],
                "spec",
                &mut out,
                &kind,
            );
        }
    }
    out
}

/// RFC 7386 merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Whether every leaf of `patch` has the same value in `got` (arrays compared whole).
fn covers(got: &Value, patch: &Value, at: &str) -> Result<(), String> {
    match patch.as_object() {
        Some(p) => {
            for (k, v) in p {
                covers(&got[k], v, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        None if got == patch => Ok(()),
        None => Err(format!("{at}: export gives {got}, the spec says {patch}")),
    }
}

fn spec_of(m: &Matrix, kind: &str, name: &str, patch: Option<&Value>) -> Value {
    let mut spec = m.bases[kind][name].clone();
    spec["backendRef"] = serde_json::json!({"name": "asgardeo"});
    if let Some(p) = patch {
        merge(&mut spec, p);
    }
    spec
}

/// The IdP as the server holds it after the operator pushed `spec` (what translate sends).
fn idp_on_server(spec: &IdentityProviderSpec) -> IdpDetail {
    let secret = Secret::new("the-client-secret");
    let auth = translate::desired_authenticator(spec, Some(&secret)).expect("authenticator");
    let mut jit = Jit::from(&wire::JustInTimeProvisioning::default());
    if let Some(change) = translate::jit_change(spec) {
        let mut w = wire::JustInTimeProvisioning::from(&jit);
        change.apply_to(&mut w);
        jit = Jit::from(&w);
    }
    let confidential = crate::backend::Confidential::fallback(&auth.authenticator_id);
    let mut stored = auth.clone();
    // What an inventory read keeps: confidential values blanked.
    for p in &mut stored.properties {
        if confidential.contains(&p.key) {
            p.value = None;
        }
    }
    IdpDetail {
        idp: Idp {
            id: format!("id-{}", spec.display_name),
            name: spec.display_name.clone(),
            description: spec.description.clone(),
            image: None,
            is_enabled: true,
            default_authenticator_id: Some(auth.authenticator_id.clone()),
            authenticators: vec![AuthenticatorSummary {
                id: auth.authenticator_id.clone(),
                name: auth.name.clone().unwrap_or_default(),
                is_enabled: true,
            }],
            jit: Some(jit.clone()),
            certificate: Box::new(crate::backend::IdpCertificate {
                jwks_uri: translate::desired_jwks_uri(spec).map(str::to_string),
                certificates: translate::desired_certificates(spec),
                saml_metadata_uri: translate::desired_saml_metadata_uri(spec).map(str::to_string),
            }),
            mappings: Box::new(mappings_on_server(spec)),
        },
        authenticators: vec![stored],
        jit,
        confidential: [(auth.authenticator_id.clone(), confidential)].into(),
    }
}

/// The claim, role and group config the server holds after the operator pushed `spec` onto an
/// IdP with none: the client's merge bodies through the emulator's copy of the server's semantics.
fn mappings_on_server(spec: &IdentityProviderSpec) -> crate::backend::IdpMappings {
    use identity_emulator::idp_mappings as emu;
    let mut stored = identity_emulator::StoredIdp::default();
    if let Some(change) = translate::mappings_change(spec) {
        if let Some(body) = change.claims_body(&wire::Claims::default()) {
            emu::set_claims(&mut stored, &body);
        }
        if let Some(body) = change.roles_body(&wire::Roles::default()) {
            emu::set_roles(&mut stored, &body);
        }
        if let Some(body) = change.groups_body(&[]) {
            emu::set_groups(&mut stored, &body);
        }
    }
    let local: Vec<String> = emu::DEFAULT_LOCAL_CLAIMS
        .iter()
        .map(|s| s.to_string())
        .collect();
    crate::backend::IdpMappings::from_wire(
        Some(&emu::claims_response(&stored, &local)),
        Some(&emu::roles_response(&stored)),
        Some(&stored.groups),
    )
}

/// A mappings locator (`claims FIELD`, `roles mappings`, `groups names`) in the matrix's compact
/// form: pairs as `a=b` joined by `,` in the server's sorted order; single claims as strings.
pub fn mappings_text(locator: &str, m: &crate::backend::IdpMappings) -> Value {
    let join = |v: Vec<String>| Value::String(v.join(","));
    match locator {
        "claims userIdClaim" => m.user_id_claim.clone().into(),
        "claims roleClaim" => m.role_claim.clone().into(),
        "claims mappings" => join(
            m.claim_mappings
                .iter()
                .map(|c| format!("{}={}", c.idp_claim, c.local_claim))
                .collect(),
        ),
        "claims provisioningClaims" => join(
            m.provisioning_claims
                .iter()
                .map(|p| format!("{}={}", p.claim, p.default_value))
                .collect(),
        ),
        "roles mappings" => join(
            m.role_mappings
                .iter()
                .map(|r| format!("{}={}", r.idp_role, r.local_role))
                .collect(),
        ),
        "groups names" => join(m.group_names()),
        other => panic!("unknown mappings locator {other}"),
    }
}

/// The application as the server holds it after the operator pushed `spec`.
fn app_on_server(
    spec: &ApplicationSpec,
    idps: &HashMap<String, (String, String)>,
) -> (AppDetail, Option<String>) {
    let flow = translate::desired_flow(spec, |n| idps.get(n).cloned())
        .expect("flow resolves")
        .expect("flow");
    let oidc = translate::desired_oidc(spec).expect("oidc");
    let detail = AppDetail {
        app: Application {
            id: format!("id-{}", spec.display_name),
            name: spec.display_name.clone(),
            description: spec.description.clone(),
            client_id: Some("generated".into()),
            login_flow: LoginFlow {
                kind: FlowKind::UserDefined,
                steps: flow.steps.clone(),
                script: flow.script.clone(),
                subject_step_id: 1,
                attribute_step_id: 1,
            },
        },
        oidc: Some(OidcSettings {
            client_id: Some("generated".into()),
            client_secret: None,
            grant_types: oidc.grant_types,
            callback_urls: oidc.callback_urls,
            allowed_origins: oidc.allowed_origins,
            public_client: oidc.public_client.unwrap_or(false),
            state: Some("ACTIVE".into()),
        }),
    };
    (detail, flow.script)
}

/// Reads a locator from the server objects, as JSON.
fn read(locator: &str, idp: Option<&IdpDetail>, app: Option<&AppDetail>) -> Value {
    let (place, key) = locator.split_once(' ').expect("locator is `place key`");
    match place {
        "authenticator" => {
            let a = &idp.expect("idp").authenticators[0];
            a.properties
                .iter()
                .find(|p| p.key == key)
                .and_then(|p| p.value.clone())
                .map(Value::String)
                .unwrap_or(Value::Null)
        }
        "idp" => {
            let i = &idp.expect("idp").idp;
            match key {
                "name" => i.name.clone().into(),
                "description" => i.description.clone().into(),
                other => panic!("idp {other}"),
            }
        }
        "certificate" => {
            let i = &idp.expect("idp").idp.certificate;
            match key {
                "jwksUri" => i.jwks_uri.clone().into(),
                "samlMetadataUri" => i.saml_metadata_uri.clone().into(),
                other => match other.strip_prefix("certificates/") {
                    Some(n) => n
                        .parse::<usize>()
                        .ok()
                        .and_then(|n| i.certificates.get(n).cloned())
                        .into(),
                    None => panic!("certificate {other}"),
                },
            }
        }
        "claims" | "roles" | "groups" => mappings_text(locator, &idp.expect("idp").idp.mappings),
        "jit" => {
            let w = wire::JustInTimeProvisioning::from(&idp.expect("idp").jit);
            let v = serde_json::to_value(w).expect("jit");
            v.pointer(&format!("/{key}"))
                .cloned()
                .unwrap_or(Value::Null)
        }
        "app" => {
            let a = &app.expect("app").app;
            match key {
                "name" => a.name.clone().into(),
                "description" => a.description.clone().into(),
                other => panic!("app {other}"),
            }
        }
        "oidc" => {
            let o = app.expect("app").oidc.clone().expect("oidc");
            match key {
                "grantTypes" => serde_json::json!(o.grant_types),
                "callbackURLs" => serde_json::json!(o.callback_urls),
                "allowedOrigins" => serde_json::json!(o.allowed_origins),
                "publicClient" => o.public_client.into(),
                other => panic!("oidc {other}"),
            }
        }
        "flow" => {
            let f = &app.expect("app").app.login_flow;
            match key {
                "steps" => steps_text(&f.steps).into(),
                "script" => f.script.clone().into(),
                other => panic!("flow {other}"),
            }
        }
        other => panic!("unknown locator {other}"),
    }
}

/// Steps in the matrix's compact form.
pub fn steps_text(steps: &[crate::backend::FlowStep]) -> String {
    steps
        .iter()
        .map(|s| {
            s.options
                .iter()
                .map(|o| format!("{}:{}", o.idp, o.authenticator))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Whether a locator's value matches a row's `expect` (a script only has to contain it).
pub fn matches(locator: &str, got: &Value, expect: &Value) -> bool {
    if locator == "flow script" {
        return got
            .as_str()
            .zip(expect.as_str())
            .is_some_and(|(g, e)| g.contains(e));
    }
    got == expect
}

#[test]
fn every_crd_leaf_has_exactly_one_row() {
    let m = matrix();
    let rows: Vec<&str> = m.fields.iter().map(|r| r.field.as_str()).collect();
    let unique: BTreeSet<String> = rows.iter().map(|s| (*s).to_string()).collect();
    assert_eq!(unique.len(), rows.len(), "a field has two rows");
    let leaves = crd_leaves();
    let missing: Vec<_> = leaves.difference(&unique).collect();
    let stale: Vec<_> = unique.difference(&leaves).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "CRD leaves without a row in tests/field-matrix.yaml: {missing:#?}; rows for no CRD leaf: {stale:#?}"
    );
    for r in &m.fields {
        let server = r.server.is_some() && r.patch.is_some() && r.expect.is_some();
        let console = r.console.is_some();
        let operator = r.operator.is_some() && r.test.is_some();
        assert!(
            (server && console) != operator,
            "{}: a row is either a server row (base, patch, server, expect, console) or an operator row (operator, test)",
            r.field
        );
    }
}

#[test]
fn operator_rows_name_a_test_that_exists() {
    for r in matrix().fields {
        let Some(test) = r.test else { continue };
        let (file, name) = test.split_once(' ').expect("`path fn_name`");
        let text = std::fs::read_to_string(root().join(file)).unwrap_or_default();
        assert!(
            text.contains(&format!("fn {name}(")),
            "{}: {file} has no fn {name}",
            r.field
        );
    }
}

#[test]
fn each_field_goes_to_its_server_property_and_comes_back_through_export() {
    let m = matrix();
    let mut failures = Vec::new();
    for r in m.fields.iter().filter(|r| r.patch.is_some()) {
        let (base, patch) = (r.base.as_deref().expect("base"), r.patch.as_ref());
        let kind = r.field.split(' ').next().expect("kind");
        // Every IdP of the bases on the server, the row's base patched.
        let mut idps = Vec::new();
        let mut refs: HashMap<String, (String, String)> = HashMap::new();
        for name in m.bases["IdentityProvider"].keys() {
            let p = (kind == "IdentityProvider" && name == base)
                .then_some(patch)
                .flatten();
            let spec: IdentityProviderSpec =
                serde_json::from_value(spec_of(&m, "IdentityProvider", name, p)).expect("idp spec");
            let kind_name = spec.provider_type().expect("type").authenticator_name();
            refs.insert(
                name.clone(),
                (spec.display_name.clone(), kind_name.to_string()),
            );
            idps.push((name.clone(), spec.clone(), idp_on_server(&spec)));
        }
        let app_patch = (kind == "Application").then_some(patch).flatten();
        let app_json = spec_of(&m, "Application", "mx-app", app_patch);
        let app_spec: ApplicationSpec = serde_json::from_value(app_json.clone()).expect("app spec");
        let (app, _) = app_on_server(&app_spec, &refs);

        // spec -> server: the locator reads what the row expects.
        let on_server_idp = idps.iter().find(|(n, _, _)| n == base).map(|(_, _, d)| d);
        let got = read(
            r.server.as_deref().expect("server"),
            on_server_idp,
            Some(&app),
        );
        let expect = r.expect.as_ref().expect("expect");
        if !matches(r.server.as_deref().unwrap_or_default(), &got, expect) {
            failures.push(format!(
                "{}: the server gets {got}, the row expects {expect}",
                r.field
            ));
            continue;
        }

        // server -> spec: export gives the patched fields back.
        let snapshot = TenantSnapshot {
            idps: idps.iter().map(|(_, _, d)| d.clone()).collect(),
            applications: vec![app.clone()],
        };
        let plan = crate::export::plan(&snapshot, &crate::export::tests::options());
        let (exported, wanted) = if kind == "IdentityProvider" {
            let wanted = spec_of(&m, kind, base, patch);
            let display = wanted["displayName"].clone();
            let found = plan
                .idps
                .iter()
                .find(|(server, _, _)| Value::String(server.clone()) == display)
                .map(|(_, _, o)| serde_json::to_value(&o.spec).expect("spec"));
            (found, wanted)
        } else {
            let found = plan
                .applications
                .first()
                .map(|(_, _, o)| serde_json::to_value(&o.spec).expect("spec"));
            (found, app_json.clone())
        };
        let Some(exported) = exported else {
            failures.push(format!(
                "{}: export dropped the object: {:#?}",
                r.field, plan.notes
            ));
            continue;
        };
        let patched_part = patch.expect("patch");
        if let Err(e) = covers(&exported, patched_part, "spec") {
            failures.push(format!("{}: {e}", r.field));
        }
        // And what the patch did not touch is still what the base said.
        if let Err(e) = covers(&exported, &wanted_without_refs(&wanted), "spec") {
            failures.push(format!("{} (rest of the spec): {e}", r.field));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The spec without the fields export writes its own way (backend and Secret references).
fn wanted_without_refs(spec: &Value) -> Value {
    let mut v = spec.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("backendRef");
        for k in ["google", "github", "facebook", "apple", "oidc"] {
            if let Some(p) = o.get_mut(k).and_then(Value::as_object_mut) {
                p.remove("clientSecretRef");
                p.remove("privateKeySecretRef");
            }
        }
    }
    v
}
