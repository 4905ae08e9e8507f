//! The SARIF output of `lint` and `audit` against the SARIF 2.1.0 JSON schema (tests/fixtures/sarif,
//! see its NOTICE.md), so a code-scanning upload does not reject it.

use std::process::Command;

use identity_emulator::{Emulator, EmulatorConfig};
use identity_operator::backend::asgardeo::{AsgardeoClient, AsgardeoConfig, Target};
use identity_operator::backend::{
    wire, FederatedAuthenticator, FlowOption, FlowStep, FlowUpdate, IdentityServer, NewApplication,
    NewIdp, Secret,
};
use serde_json::Value;

fn validator() -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sarif/sarif-2.1.0-rtm.5.json"
    );
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema file")).expect("json");
    jsonschema::draft4::new(&schema).expect("the schema compiles")
}

fn assert_valid(log: &Value) {
    let v = validator();
    let errors: Vec<String> = v
        .iter_errors(log)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{log:#}");
}

#[test]
fn the_schema_rejects_a_broken_log() {
    // Proves the validation can fail: a result without a message is not SARIF.
    let broken = serde_json::json!({
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"ruleId": "r"}]}]
    });
    assert!(!validator().is_valid(&broken));
}

#[test]
fn lint_sarif_is_valid_and_points_at_the_file_and_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_identity-operator"))
        .args(["lint", "--format", "sarif", "examples/"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let log: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_valid(&log);
    let results = log["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 1);
    let loc = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(
        loc["artifactLocation"]["uri"],
        "examples/jit-off/payroll.yaml"
    );
    assert_eq!(loc["region"]["startLine"], 3);
    assert_eq!(results[0]["ruleId"], "InterconnectionConflict");
}

#[tokio::test]
async fn audit_sarif_is_valid_and_points_at_the_server_object() {
    let secret = format!("emu-{}", uuid::Uuid::new_v4().simple());
    let emulator = Emulator::start(EmulatorConfig {
        client_id: "m2m".into(),
        client_secret: Secret::new(secret.clone()),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let target = Target::Wso2IdentityServer {
        url: emulator.url(),
        tenant: "acme".into(),
    };
    let console = AsgardeoClient::new(
        AsgardeoConfig::new(target, "m2m", Secret::new(secret.clone())),
        None,
    )
    .expect("client");
    console
        .create_idp(&NewIdp {
            name: "Google".into(),
            description: None,
            image: None,
            authenticator: FederatedAuthenticator {
                authenticator_id: wire::authenticator_id("GoogleOIDCAuthenticator"),
                name: None,
                is_enabled: true,
                is_default: true,
                properties: vec![],
            },
            jit: None,
            jwks_uri: None,
            certificates: Vec::new(),
            saml_metadata_uri: None,
        })
        .await
        .expect("idp");
    let step = |idp: &str, a: &str| FlowStep {
        options: vec![FlowOption {
            idp: idp.into(),
            authenticator: a.into(),
        }],
    };
    let app_id = console
        .create_application(&NewApplication {
            name: "Payroll".into(),
            login_flow: Some(FlowUpdate {
                steps: vec![
                    step("Google", "GoogleOIDCAuthenticator"),
                    step("LOCAL", "FIDOAuthenticator"),
                ],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("app");
    let url = emulator.url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_identity-operator"))
            .args([
                "audit",
                "--url",
                &url,
                "--tenant",
                "acme",
                "--client-id",
                "m2m",
                "--format",
                "sarif",
            ])
            .env("IDENTITY_CLIENT_SECRET", &secret)
            .output()
            .expect("runs")
    })
    .await
    .expect("joins");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_valid(&log);
    let results = log["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 1);
    let uri = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .expect("uri");
    assert!(
        uri.ends_with(&format!("/t/acme/api/server/v1/applications/{app_id}")),
        "{uri}"
    );
    assert!(results[0]["message"]["text"]
        .as_str()
        .expect("text")
        .contains("FIDOAuthenticator"));
}
