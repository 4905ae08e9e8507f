//! The field matrix end to end (`tests/field-matrix.yaml`, whose rows the unit test
//! `export::matrix_tests` checks against the generated CRDs): on the real control plane against the
//! emulator, for every server row,
//! 1. the row's change alone is on the server when the object says Ready=True for that generation;
//! 2. a console edit of the property it maps to is corrected as drift, with a DriftCorrected Event.
//!
//! The rows run one after the other on the same objects (the bases), so each change starts from the
//! state the rows before it left.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{wait_until, TestEnv};
use serde::Deserialize;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);
use common::TENANT;

#[derive(Deserialize)]
struct Matrix {
    bases: BTreeMap<String, BTreeMap<String, Value>>,
    fields: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    field: String,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    patch: Option<Value>,
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    expect: Option<Value>,
    #[serde(default)]
    console: Option<Value>,
}

fn matrix() -> Matrix {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/field-matrix.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("matrix")).expect("matrix parses")
}

/// Where a row's object lives in the emulator's state: the IdP or application with that server
/// name, as JSON (the emulator's own stored model, serialized).
#[derive(Clone, Copy)]
enum Place {
    Idp,
    App,
}

fn place_of(locator: &str) -> Place {
    match locator.split(' ').next() {
        Some("authenticator" | "idp" | "certificate" | "jit") => Place::Idp,
        _ => Place::App,
    }
}

/// The value the locator points at in a stored object (JSON), and a setter for it.
fn pointer(locator: &str, obj: &Value) -> Option<String> {
    let (place, key) = locator.split_once(' ')?;
    Some(match place {
        "authenticator" => {
            let default = obj["defaultAuthenticatorId"].as_str()?;
            let auths = obj["authenticators"].as_array()?;
            let i = auths.iter().position(|a| a["authenticatorId"] == default)?;
            let props = auths[i]["properties"].as_array()?;
            let j = props.iter().position(|p| p["key"] == key)?;
            format!("/authenticators/{i}/properties/{j}/value")
        }
        "idp" | "app" => format!("/{key}"),
        "certificate" => format!("/certificate/{key}"),
        "jit" => format!("/jit/{key}"),
        "oidc" => format!("/oidc/{key}"),
        "flow" => match key {
            "steps" => "/sequence/steps".to_string(),
            _ => "/sequence/script".to_string(),
        },
        _ => return None,
    })
}

/// Steps in the matrix's compact form ("idp:authenticator,... | ...").
fn steps_text(steps: &Value) -> Value {
    let Some(steps) = steps.as_array() else {
        return Value::Null;
    };
    steps
        .iter()
        .map(|s| {
            s["options"]
                .as_array()
                .map(|o| {
                    o.iter()
                        .map(|o| {
                            format!(
                                "{}:{}",
                                o["idp"].as_str().unwrap_or_default(),
                                o["authenticator"].as_str().unwrap_or_default()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" | ")
        .into()
}

fn steps_json(text: &str) -> Value {
    Value::Array(
        text.split(" | ")
            .enumerate()
            .map(|(i, s)| {
                let options: Vec<Value> = s
                    .split(',')
                    .map(|o| {
                        let (idp, a) = o.split_once(':').unwrap_or(("LOCAL", o));
                        json!({"idp": idp, "authenticator": a})
                    })
                    .collect();
                json!({"id": i + 1, "options": options})
            })
            .collect(),
    )
}

fn matches(locator: &str, got: &Value, expect: &Value) -> bool {
    if locator == "flow script" {
        return got
            .as_str()
            .zip(expect.as_str())
            .is_some_and(|(g, e)| g.contains(e));
    }
    got == expect
}

/// The server object of a row, found by its current server name.
fn stored(env: &TestEnv, place: Place, name: &str) -> Option<Value> {
    env.emulator.with_tenant(TENANT, |t| match place {
        Place::Idp => t
            .idps
            .iter()
            .find(|i| i.name == name)
            .and_then(|i| serde_json::to_value(i).ok()),
        Place::App => t
            .apps
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| serde_json::to_value(a).ok()),
    })
}

/// Whether a locator names the claim, role or group config, which the emulator keeps in the
/// server's internal shape: those are read through its GET answers and edited through its PUT
/// semantics, as the console would.
fn is_mappings(locator: &str) -> bool {
    matches!(
        locator.split(' ').next(),
        Some("claims" | "roles" | "groups")
    )
}

/// A mappings locator in the matrix's compact form (see the matrix's header).
fn mappings_text(locator: &str, m: &identity_operator::backend::IdpMappings) -> Value {
    let pairs = |v: Vec<(String, String)>| {
        Value::String(
            v.into_iter()
                .map(|(a, b)| format!("{a}={b}"))
                .collect::<Vec<_>>()
                .join(","),
        )
    };
    match locator {
        "claims userIdClaim" => m.user_id_claim.clone().into(),
        "claims roleClaim" => m.role_claim.clone().into(),
        "claims mappings" => pairs(
            m.claim_mappings
                .iter()
                .map(|c| (c.idp_claim.clone(), c.local_claim.clone()))
                .collect(),
        ),
        "claims provisioningClaims" => pairs(
            m.provisioning_claims
                .iter()
                .map(|p| (p.claim.clone(), p.default_value.clone()))
                .collect(),
        ),
        "roles mappings" => pairs(
            m.role_mappings
                .iter()
                .map(|r| (r.idp_role.clone(), r.local_role.clone()))
                .collect(),
        ),
        "groups names" => m.group_names().join(",").into(),
        other => panic!("unknown mappings locator {other}"),
    }
}

fn read_mappings(env: &TestEnv, locator: &str, name: &str) -> Value {
    use identity_emulator::idp_mappings as emu;
    env.emulator.with_tenant(TENANT, |t| {
        let local = emu::local_claims(t);
        let Some(idp) = t.idps.iter().find(|i| i.name == name) else {
            return Value::Null;
        };
        let m = identity_operator::backend::IdpMappings::from_wire(
            Some(&emu::claims_response(idp, &local)),
            Some(&emu::roles_response(idp)),
            Some(&idp.groups),
        );
        mappings_text(locator, &m)
    })
}

/// A console edit of a mappings locator: the emulator's GET answer with that part replaced by
/// `value` (compact form), written back with its PUT semantics.
fn edit_mappings(env: &TestEnv, locator: &str, name: &str, value: &Value) {
    use identity_emulator::idp_mappings as emu;
    use identity_operator::backend::wire;
    let text = value.as_str().unwrap_or_default().to_string();
    let pairs: Vec<(String, String)> = text
        .split(',')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            p.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    env.emulator.with_tenant(TENANT, |t| {
        let local = emu::local_claims(t);
        let idp = t
            .idps
            .iter_mut()
            .find(|i| i.name == name)
            .expect("object on the server");
        let mut claims = emu::claims_response(idp, &local);
        let mut roles = emu::roles_response(idp);
        let claim = |u: &str| (!u.is_empty()).then(|| wire::Claim::uri(u));
        match locator {
            "claims userIdClaim" => claims.user_id_claim = claim(&text),
            "claims roleClaim" => claims.role_claim = claim(&text),
            "claims mappings" => {
                claims.mappings = Some(
                    pairs
                        .iter()
                        .map(|(i, l)| wire::ClaimMapping {
                            idp_claim: Some(i.clone()),
                            local_claim: Some(wire::Claim::uri(l)),
                        })
                        .collect(),
                )
            }
            "claims provisioningClaims" => {
                claims.provisioning_claims = Some(
                    pairs
                        .iter()
                        .map(|(c, d)| wire::ProvisioningClaim {
                            claim: Some(wire::Claim::uri(c)),
                            default_value: Some(d.clone()),
                        })
                        .collect(),
                )
            }
            "roles mappings" => {
                roles.mappings = Some(
                    pairs
                        .iter()
                        .map(|(i, l)| wire::RoleMapping {
                            idp_role: Some(i.clone()),
                            local_role: Some(l.clone()),
                        })
                        .collect(),
                )
            }
            "groups names" => {
                let groups: Vec<wire::IdpGroup> = text
                    .split(',')
                    .map(|n| wire::IdpGroup {
                        name: n.to_string(),
                        id: None,
                    })
                    .collect();
                emu::set_groups(idp, &groups);
                return;
            }
            other => panic!("unknown mappings locator {other}"),
        }
        emu::set_claims(idp, &claims);
        emu::set_roles(idp, &roles);
    });
}

fn read(env: &TestEnv, locator: &str, name: &str) -> Value {
    if is_mappings(locator) {
        return read_mappings(env, locator, name);
    }
    let Some(obj) = stored(env, place_of(locator), name) else {
        return Value::Null;
    };
    let Some(ptr) = pointer(locator, &obj) else {
        return Value::Null;
    };
    let v = obj.pointer(&ptr).cloned().unwrap_or(Value::Null);
    match locator {
        "flow steps" => steps_text(&v),
        // The owner marker the operator keeps at the end of a description is its own record, not
        // the declared text.
        "idp description" | "app description" => v
            .as_str()
            .map(|d| {
                identity_operator::controller::managed::strip_markers(d)
                    .trim()
                    .to_string()
            })
            .into(),
        // The emulator keeps a certificate as the server does, base64 of its PEM; rows speak PEM.
        l if l.starts_with("certificate certificates/") => v
            .as_str()
            .map(identity_operator::backend::wire::decode_certificate)
            .into(),
        _ => v,
    }
}

/// A console edit: writes `value` at the locator in the emulator's state.
fn edit(env: &TestEnv, locator: &str, name: &str, value: &Value) {
    if is_mappings(locator) {
        return edit_mappings(env, locator, name, value);
    }
    let place = place_of(locator);
    let mut obj = stored(env, place, name).expect("object on the server");
    let ptr = pointer(locator, &obj).expect("locator");
    let value = if locator == "flow steps" {
        steps_json(value.as_str().unwrap_or_default())
    } else if locator.starts_with("certificate certificates/") {
        use base64::Engine as _;
        let pem = value.as_str().unwrap_or_default().trim();
        base64::engine::general_purpose::STANDARD.encode(pem).into()
    } else {
        value.clone()
    };
    let (parent, leaf) = ptr.rsplit_once('/').expect("pointer");
    let slot = if parent.is_empty() {
        Some(&mut obj)
    } else {
        obj.pointer_mut(parent)
    };
    match slot {
        Some(Value::Object(m)) => {
            m.insert(leaf.to_string(), value);
        }
        Some(Value::Array(items)) => {
            match leaf.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => *item = value,
                None => panic!("{locator}: no element {leaf} at {ptr}"),
            }
        }
        other => panic!("{locator}: nothing to edit at {ptr}: {other:?}"),
    }
    env.emulator.with_tenant(TENANT, |t| match place {
        Place::Idp => {
            let new = serde_json::from_value(obj).expect("stored idp");
            if let Some(slot) = t.idps.iter_mut().find(|i| i.name == name) {
                *slot = new;
            }
        }
        Place::App => {
            let new = serde_json::from_value(obj).expect("stored app");
            if let Some(slot) = t.apps.iter_mut().find(|a| a.name == name) {
                *slot = new;
            }
        }
    });
}

/// Waits until the object is Ready=True for its current generation; returns that generation.
async fn ready_for_generation(env: &TestEnv, kind: &str, name: &str) -> Option<i64> {
    wait_until(T, || async {
        let obj = env.get(kind, name).await?;
        let generation = obj["metadata"]["generation"].as_i64()?;
        let status = &obj["status"];
        let ready = status["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        (ready && status["observedGeneration"].as_i64() == Some(generation)).then_some(generation)
    })
    .await
}

/// How many DriftCorrected Events the object has had, counting the repeats of an Event series
/// (the recorder folds identical Events into one with a growing count).
async fn drift_count(env: &TestEnv, name: &str) -> i64 {
    use kube::api::{Api, ListParams};
    let api: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.ns);
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .filter(|e| e.reason.as_deref() == Some("DriftCorrected"))
                .map(|e| {
                    e.series
                        .as_ref()
                        .map(|s| i64::from(s.count))
                        .or(e.deprecated_count.map(i64::from))
                        .unwrap_or(1)
                        .max(1)
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn every_field_reaches_the_server_and_a_console_edit_of_it_is_corrected() {
    common::require_dev_env();
    let m = matrix();
    let mut env = TestEnv::new("matrix").await;
    env.create_backend("asgardeo").await;
    env.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: mx-secret, labels: {identity-operator.io/use: identity-provider-client-secret}}\nstringData: {client-secret: matrix-client-secret}\n",
    )
    .await
    .expect("secret");
    // Current server name of every object (a displayName row renames).
    let mut server_name: BTreeMap<String, String> = BTreeMap::new();
    for (kind, objects) in &m.bases {
        for (name, spec) in objects {
            let mut spec = spec.clone();
            spec["backendRef"] = json!({"name": "asgardeo"});
            server_name.insert(
                name.clone(),
                spec["displayName"].as_str().unwrap_or_default().to_string(),
            );
            let doc = json!({
                "apiVersion": "identity-operator.io/v1alpha1",
                "kind": kind,
                "metadata": {"name": name},
                "spec": spec,
            });
            env.apply(&serde_yaml::to_string(&doc).expect("yaml"))
                .await
                .expect("base applies");
        }
    }
    env.start_operator(&[]);
    for (kind, objects) in &m.bases {
        for name in objects.keys() {
            assert!(
                ready_for_generation(&env, kind, name).await.is_some(),
                "{kind} {name} not Ready\n{}",
                common::tail(&env.operator_log(), 40)
            );
        }
    }

    let mut failures = Vec::new();
    let mut checked = 0;
    for r in m.fields.iter().filter(|r| r.patch.is_some()) {
        let kind = r.field.split(' ').next().expect("kind");
        let base = r.base.as_deref().expect("base");
        let locator = r.server.as_deref().expect("server");
        let (expect, console) = (
            r.expect.clone().expect("expect"),
            r.console.clone().expect("console"),
        );
        let patch = r.patch.clone().expect("patch");
        if let Some(d) = patch["displayName"].as_str() {
            server_name.insert(base.to_string(), d.to_string());
        }
        env.patch(kind, base, json!({"spec": patch}))
            .await
            .unwrap_or_else(|e| panic!("{}: the patch is refused: {e}", r.field));
        // 1. The change alone is on the server by the time Ready=True says this generation.
        if ready_for_generation(&env, kind, base).await.is_none() {
            failures.push(format!(
                "{}: not Ready for the new generation: {}",
                r.field,
                env.get(kind, base)
                    .await
                    .map(|o| o["status"].to_string())
                    .unwrap_or_default()
            ));
            continue;
        }
        let name = &server_name[base];
        let got = read(&env, locator, name);
        if !matches(locator, &got, &expect) {
            failures.push(format!(
                "{}: Ready=True for the generation, but the server's {locator} is {got} (the spec asks {expect})",
                r.field
            ));
            continue;
        }
        // 2. A console edit of that property is corrected, and says so. (A console rename hides the
        // object under its new name until the operator renames it back: reading by the declared
        // name then finds nothing, which is "not corrected yet".)
        let events_before = drift_count(&env, base).await;
        edit(&env, locator, name, &console);
        let corrected = wait_until(T, || async {
            matches(locator, &read(&env, locator, name), &expect).then_some(())
        })
        .await;
        if corrected.is_none() {
            failures.push(format!(
                "{}: a console edit of {locator} to {console} was not corrected (the server says {})",
                r.field,
                read(&env, locator, name)
            ));
            continue;
        }
        let event = wait_until(T, || async {
            (drift_count(&env, base).await > events_before).then_some(())
        })
        .await;
        if event.is_none() {
            failures.push(format!(
                "{}: corrected without a DriftCorrected Event",
                r.field
            ));
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}\noperator log tail:\n{}",
        failures.len(),
        checked + failures.len(),
        failures.join("\n"),
        common::tail(&env.operator_log(), 40)
    );
    assert!(checked >= 30, "only {checked} server rows ran");
}
