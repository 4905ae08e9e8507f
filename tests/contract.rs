//! Contract test: the emulator's responses, over real HTTP, against the official OpenAPI schemas.
//!
//! The specs are read at test time from `../shared/specs/wso2-identity-api/` next to the repository
//! (or the folder named by `IDENTITY_API_SPECS`); they are reference data of the upstream project and
//! are never copied into this repository. The test fails, saying where it looked, when they are
//! absent: a contract test that silently passes without its contract would prove nothing.
//!
//! OpenAPI 3.0 schemas are JSON Schema draft 4 plus a few keywords; the only one that changes
//! validation, `nullable`, is rewritten to a `null` type before compiling. Every `$ref` resolves
//! inside the spec document, which is embedded as the schema's root.

use std::path::PathBuf;

use identity_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use identity_operator::backend::operation::{Operation, SCRIPT_SCOPE};
use identity_operator::backend::wire::authenticator_id;
use identity_operator::backend::Secret;
use reqwest::Method;
use serde_json::{json, Value};

const TENANT: &str = "acme";
const CLIENT_SECRET: &str = "contract-client-secret";

fn spec_dir() -> PathBuf {
    let dir = std::env::var_os("IDENTITY_API_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/specs/wso2-identity-api")
        });
    assert!(
        dir.join("idp.yaml").is_file() && dir.join("applications.yaml").is_file(),
        "the official OpenAPI specs are missing: expected idp.yaml and applications.yaml in {} \
         (the shared/ folder beside the repository, or set IDENTITY_API_SPECS)",
        dir.display()
    );
    dir
}

/// YAML to JSON; map keys become strings (response codes are integers in YAML).
fn to_json(y: serde_yaml::Value) -> Value {
    match y {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(v) => Value::Array(v.into_iter().map(to_json).collect()),
        serde_yaml::Value::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        serde_yaml::Value::String(s) => s,
                        other => serde_yaml::to_string(&other)
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        serde_yaml::Value::Tagged(t) => to_json(t.value),
    }
}

/// `nullable: true` (OpenAPI 3.0) as JSON Schema: the type also admits null.
fn openapi_to_json_schema(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(t)) = m.get("type").cloned() {
                    m.insert("type".into(), json!([t, "null"]));
                }
            }
            for child in m.values_mut() {
                openapi_to_json_schema(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(openapi_to_json_schema),
        _ => {}
    }
}

struct Spec {
    name: &'static str,
    doc: Value,
}

impl Spec {
    fn load(file: &'static str) -> Self {
        let path = spec_dir().join(file);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut doc = to_json(yaml);
        openapi_to_json_schema(&mut doc);
        Self { name: file, doc }
    }

    /// The path template matching a concrete API path (`identity-providers/abc` →
    /// `/identity-providers/{identity-provider-id}`).
    fn template(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let paths = self.doc["paths"].as_object()?;
        // Literal segments beat parameters (`/meta/...` before `/{id}/...`).
        let mut best: Option<(usize, &String)> = None;
        for template in paths.keys() {
            let t: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
            if t.len() != segs.len() {
                continue;
            }
            let literal = t.iter().zip(&segs).try_fold(0, |n, (t, s)| {
                if t.starts_with('{') {
                    Some(n)
                } else if t == s {
                    Some(n + 1)
                } else {
                    None
                }
            });
            if let Some(n) = literal {
                if best.is_none_or(|(b, _)| n > b) {
                    best = Some((n, template));
                }
            }
        }
        best.map(|(_, t)| t.clone())
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or(&Value::Null),
            None => v,
        }
    }

    /// The JSON schema of the response `status` of `method path`; errors fall back to the spec's
    /// `Error` schema when the operation does not declare that status.
    fn response_schema(&self, method: &Method, path: &str, status: u16) -> Value {
        let template = self
            .template(path)
            .unwrap_or_else(|| panic!("{}: no path matches {path}", self.name));
        let op = &self.doc["paths"][&template][method.as_str().to_lowercase()];
        assert!(
            op.is_object(),
            "{}: {method} {template} is not in the spec",
            self.name
        );
        let declared = self.resolve(&op["responses"][status.to_string()]);
        let schema = declared["content"]["application/json"]["schema"].clone();
        if schema.is_object() {
            return schema;
        }
        assert!(
            status >= 400,
            "{}: {method} {template} declares no JSON body for {status}",
            self.name
        );
        json!({"$ref": "#/components/schemas/Error"})
    }

    /// Validates `body` (the response of `method path` with `status`); returns the errors.
    fn check(&self, method: &Method, path: &str, status: u16, body: &Value) -> Vec<String> {
        let schema = self.response_schema(method, path, status);
        let root = json!({"components": self.doc["components"], "allOf": [schema]});
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(false)
            .build(&root)
            .unwrap_or_else(|e| panic!("{}: schema for {method} {path}: {e}", self.name));
        validator
            .iter_errors(body)
            .map(|e| format!("{method} {path} -> {status}: {e} at {}", e.instance_path()))
            .collect()
    }
}

struct Harness {
    emu: EmulatorHandle,
    token: String,
    idp: Spec,
    app: Spec,
    failures: Vec<String>,
    checked: usize,
}

impl Harness {
    async fn start() -> Self {
        let (idp, app) = (Spec::load("idp.yaml"), Spec::load("applications.yaml"));
        let emu = Emulator::start(EmulatorConfig {
            client_id: "contract".into(),
            client_secret: Secret::new(CLIENT_SECRET),
            ..Default::default()
        })
        .await
        .expect("emulator");
        let scopes = Operation::needed_scopes()
            .into_iter()
            .chain([SCRIPT_SCOPE])
            .collect::<Vec<_>>()
            .join(" ");
        let token: Value = reqwest::Client::new()
            .post(format!("{}/t/{TENANT}/oauth2/token", emu.url()))
            .basic_auth("contract", Some(CLIENT_SECRET))
            .form(&[("grant_type", "client_credentials"), ("scope", &scopes)])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token json");
        Self {
            token: token["access_token"].as_str().expect("token").to_owned(),
            emu,
            idp,
            app,
            failures: Vec::new(),
            checked: 0,
        }
    }

    /// Sends a request, validates a JSON answer against the spec, returns status, headers, body.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = reqwest::Client::new()
            .request(
                method.clone(),
                format!("{}/t/{TENANT}/api/server/v1/{path}", self.emu.url()),
            )
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        if bytes.is_empty() {
            return (status, headers, Value::Null);
        }
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method} {path}: body is not JSON: {e}"));
        let spec = if path.starts_with("applications") {
            &self.app
        } else {
            &self.idp
        };
        self.failures
            .extend(spec.check(&method, path, status, &value));
        self.checked += 1;
        (status, headers, value)
    }
}

fn id_from_location(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.rsplit('/').next())
        .expect("Location")
        .to_owned()
}

#[test]
fn the_specs_are_found_and_parse() {
    let idp = Spec::load("idp.yaml");
    assert_eq!(
        idp.template("identity-providers/abc/provisioning/jit")
            .as_deref(),
        Some("/identity-providers/{identity-provider-id}/provisioning/jit")
    );
    // The validator is real: a body missing a required field fails.
    let errors = idp.check(
        &Method::GET,
        "identity-providers/abc/provisioning/jit",
        200,
        &json!({"scheme": "NOT_A_SCHEME"}),
    );
    assert!(errors.len() >= 2, "{errors:?}");
}

#[tokio::test]
async fn every_emulator_response_matches_the_official_schemas() {
    let mut h = Harness::start().await;
    let google = authenticator_id("GoogleOIDCAuthenticator");

    // Identity providers: the happy path.
    let (status, headers, _) = h
        .call(
            Method::POST,
            "identity-providers",
            Some(json!({
                "name": "Google",
                "description": "Google login",
                "federatedAuthenticators": {
                    "defaultAuthenticatorId": google,
                    "authenticators": [{
                        "authenticatorId": google,
                        "isEnabled": true,
                        "properties": [{"key": "ClientId", "value": "123"}, {"key": "ClientSecret", "value": "s"}]
                    }]
                },
                "provisioning": {"jit": {"isEnabled": true, "scheme": "PROMPT_CONSENT", "userstore": "PRIMARY"}}
            })),
        )
        .await;
    assert_eq!(status, 201);
    let idp = id_from_location(&headers);
    for path in [
        "identity-providers".to_owned(),
        "identity-providers?requiredAttributes=federatedAuthenticators,provisioning&limit=1".into(),
        "identity-providers?filter=name%20eq%20%22google%22".into(),
        format!("identity-providers/{idp}"),
        format!("identity-providers/{idp}/federated-authenticators"),
        format!("identity-providers/{idp}/federated-authenticators/{google}"),
        format!("identity-providers/{idp}/provisioning"),
        format!("identity-providers/{idp}/provisioning/jit"),
        format!("identity-providers/{idp}/connected-apps"),
        format!("identity-providers/{idp}/claims"),
        format!("identity-providers/{idp}/roles"),
        format!("identity-providers/{idp}/groups"),
    ] {
        let (status, _, _) = h.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}");
    }
    // Claims, roles, groups: each PUT, then the IdP GET that carries all three.
    for (path, body) in [
        (
            "claims",
            json!({"userIdClaim": {"uri": "email"}, "roleClaim": {"uri": "groups"},
                   "mappings": [{"idpClaim": "email", "localClaim": {"uri": "http://wso2.org/claims/emailaddress"}},
                                {"idpClaim": "groups", "localClaim": {"uri": "http://wso2.org/claims/groups"}}],
                   "provisioningClaims": [{"claim": {"uri": "email"}, "defaultValue": "x@example.com"}]}),
        ),
        (
            "roles",
            json!({"mappings": [{"idpRole": "admins", "localRole": "admin"}], "outboundProvisioningRoles": ["hr"]}),
        ),
        ("groups", json!([{"name": "admins"}, {"name": "devs"}])),
    ] {
        let (status, _, _) = h
            .call(
                Method::PUT,
                &format!("identity-providers/{idp}/{path}"),
                Some(body),
            )
            .await;
        assert_eq!(status, 200, "{path}");
    }
    let (status, _, _) = h
        .call(Method::GET, &format!("identity-providers/{idp}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = h
        .call(
            Method::PATCH,
            &format!("identity-providers/{idp}"),
            Some(json!([{"operation": "REPLACE", "path": "/description", "value": "new"}])),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = h
        .call(
            Method::PUT,
            &format!("identity-providers/{idp}/provisioning/jit"),
            Some(json!({"isEnabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = h
        .call(
            Method::PUT,
            &format!("identity-providers/{idp}/federated-authenticators/{google}"),
            Some(json!({"isEnabled": true, "properties": [{"key": "ClientId", "value": "456"}]})),
        )
        .await;
    assert_eq!(status, 200);

    // Applications.
    let (status, headers, body) = h
        .call(
            Method::POST,
            "applications",
            Some(json!({
                "name": "Payroll",
                "inboundProtocolConfiguration": {"oidc": {
                    "grantTypes": ["authorization_code"],
                    "callbackURLs": ["https://payroll.example/cb"]
                }},
                "authenticationSequence": {
                    "type": "USER_DEFINED",
                    "steps": [
                        {"id": 1, "options": [{"idp": "Google", "authenticator": "GoogleOIDCAuthenticator"}]},
                        {"id": 2, "options": [{"idp": "LOCAL", "authenticator": "totp"}]}
                    ]
                }
            })),
        )
        .await;
    assert_eq!(
        (status, body),
        (201, Value::Null),
        "create answers without a body"
    );
    let app = id_from_location(&headers);
    for path in [
        "applications".to_owned(),
        "applications?filter=name%20eq%20%22payroll%22".into(),
        format!("applications/{app}"),
        format!("applications/{app}/inbound-protocols/oidc"),
        format!("identity-providers/{idp}/connected-apps"),
    ] {
        let (status, _, _) = h.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}");
    }
    let (_, _, oidc) = h
        .call(
            Method::GET,
            &format!("applications/{app}/inbound-protocols/oidc"),
            None,
        )
        .await;
    let mut update = oidc.clone();
    update["callbackURLs"] = json!(["https://payroll.example/new"]);
    let (status, _, _) = h
        .call(
            Method::PUT,
            &format!("applications/{app}/inbound-protocols/oidc"),
            Some(update),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, body) = h
        .call(
            Method::PATCH,
            &format!("applications/{app}"),
            Some(json!({"description": "payroll"})),
        )
        .await;
    assert_eq!((status, body), (200, Value::Null));

    // Errors: each body must be the spec's Error shape.
    let missing_secret =
        json!({"clientId": oidc["clientId"], "grantTypes": ["authorization_code"]});
    let (_, headers, _) = h
        .call(
            Method::POST,
            "applications",
            Some(json!({"name": "NoOidc"})),
        )
        .await;
    let no_oidc = id_from_location(&headers);
    let errors: Vec<(Method, String, Option<Value>, u16)> = vec![
        (Method::GET, "identity-providers/nope".into(), None, 404),
        (
            Method::POST,
            "identity-providers".into(),
            Some(json!({"name": "GOOGLE"})),
            409,
        ),
        (
            Method::DELETE,
            format!("identity-providers/{idp}"),
            None,
            400,
        ),
        (
            Method::PATCH,
            format!("identity-providers/{idp}"),
            Some(json!([{"operation": "ADD", "path": "/description", "value": "x"}])),
            400,
        ),
        (
            Method::PATCH,
            format!("identity-providers/{idp}"),
            Some(json!([{"operation": "REPLACE", "path": "/isEnabled", "value": "false"}])),
            500,
        ),
        (
            Method::GET,
            "identity-providers?filter=name%20xx%20y".into(),
            None,
            400,
        ),
        (
            Method::PUT,
            format!("identity-providers/{idp}/provisioning/jit"),
            Some(json!({"scheme": "PROMPT_CONSENT"})),
            400,
        ),
        (
            Method::PUT,
            format!("identity-providers/{idp}/claims"),
            Some(
                json!({"mappings": [{"idpClaim": "cc", "localClaim": {"uri": "http://wso2.org/claims/costcenter"}}]}),
            ),
            400,
        ),
        (Method::GET, "applications/nope".into(), None, 404),
        (
            Method::GET,
            format!("applications/{no_oidc}/inbound-protocols/oidc"),
            None,
            400,
        ),
        (
            Method::PUT,
            format!("applications/{app}/inbound-protocols/oidc"),
            Some(missing_secret),
            400,
        ),
        (
            Method::POST,
            "applications".into(),
            Some(json!({"name": "payroll"})),
            409,
        ),
    ];
    for (method, path, body, want) in errors {
        let (status, _, value) = h.call(method.clone(), &path, body).await;
        assert_eq!(status, want, "{method} {path}: {value}");
        assert!(value["code"].is_string(), "{method} {path}: {value}");
    }
    // Deletes answer 204 without a body (an unknown IdP id too).
    let (status, _, _) = h
        .call(Method::DELETE, &format!("applications/{app}"), None)
        .await;
    assert_eq!(status, 204);
    for _ in 0..2 {
        let (status, _, _) = h
            .call(Method::DELETE, &format!("identity-providers/{idp}"), None)
            .await;
        assert_eq!(status, 204);
    }

    assert!(h.checked >= 30, "only {} bodies checked", h.checked);
    assert!(
        h.failures.is_empty(),
        "{} response(s) violate the official schemas:\n{}",
        h.failures.len(),
        h.failures.join("\n")
    );
}
