//! Issue 24 items 4 and 5 on the real control plane: one tenant's broken server must not hurt the
//! others, and a create whose answer is lost or unusable neither ends `AlreadyExists` forever nor
//! leaks or duplicates its server object.

mod common;

use std::time::{Duration, Instant};

use common::{TestEnv, CLIENT_ID, TENANT};
use identity_emulator::{Emulator, EmulatorConfig, Faults, SpoiledCreate};
use identity_operator::backend::Secret;

const T: Duration = Duration::from_secs(90);

const GH_SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: gh-oauth, labels: {identity-operator.io/use: identity-provider-client-secret}}\nstringData: {client-secret: gh-secret-value}\n";

fn idp_yaml(name: &str, backend: &str) -> String {
    format!(
        r#"
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {{name: {name}}}
spec:
  backendRef: {{name: {backend}}}
  displayName: IdP-{name}
  github: {{clientID: "gh-{name}", clientSecretRef: {{name: gh-oauth, key: client-secret}}}}
  jit: {{enabled: true}}
"#
    )
}

fn app_yaml(name: &str, backend: &str, idp: &str) -> String {
    format!(
        r#"
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {{name: {name}}}
spec:
  backendRef: {{name: {backend}}}
  displayName: App-{name}
  oidc: {{grantTypes: [authorization_code], callbackURLs: ["https://{name}.example/cb"]}}
  credentialsSecret: {{name: {name}-oidc}}
  loginFlow:
    steps:
      - options: [{{identityProviderRef: {{name: {idp}}}}}]
      - options: [{{authenticator: totp}}]
"#
    )
}

/// The server's names of IdPs and applications, sorted (duplicates kept).
fn server_names(env: &TestEnv) -> (Vec<String>, Vec<String>) {
    env.emulator.with_tenant(TENANT, |t| {
        let mut idps: Vec<String> = t.idps.iter().map(|i| i.name.clone()).collect();
        let mut apps: Vec<String> = t.apps.iter().map(|a| a.name.clone()).collect();
        idps.sort();
        apps.sort();
        (idps, apps)
    })
}

#[tokio::test]
async fn creates_whose_answer_is_lost_or_unusable_are_recovered_once() {
    let mut env = TestEnv::new("spoiled").await;
    env.create_backend("asgardeo").await;
    env.apply(GH_SECRET).await.expect("secret");
    // A short attempt timeout, so that a create whose answer never comes (Hang) fails fast.
    env.start_operator(&["--backend-request-timeout", "2s"]);
    env.ready("IdentityBackend", "asgardeo", T).await;
    let kinds = [
        ("nolocation", SpoiledCreate::NoLocation),
        ("oversized", SpoiledCreate::Oversized),
        ("hang", SpoiledCreate::Hang),
    ];
    for (tag, how) in kinds {
        // Each write kind: the server stores the object, then its answer goes wrong.
        let idp = format!("gh-{tag}");
        let app = format!("wiki-{tag}");
        for (kind, name, yaml) in [
            ("IdentityProvider", &idp, idp_yaml(&idp, "asgardeo")),
            ("Application", &app, app_yaml(&app, "asgardeo", &idp)),
        ] {
            let spoiled = env.emulator.stats().faults_injected;
            env.emulator.set_faults(Faults {
                spoil_next_creates: 1,
                spoiled_create: how,
                ..Default::default()
            });
            env.apply(&yaml).await.expect("applies");
            env.ready(kind, name, T).await;
            assert_eq!(
                env.emulator.stats().faults_injected,
                spoiled + 1,
                "{kind} {name}: the create's answer was spoiled ({how:?})"
            );
            let obj = env.get(kind, name).await.expect("object");
            assert!(
                obj["metadata"]["annotations"]
                    .get("identity-operator.io/create-pending")
                    .is_none(),
                "{kind} {name}: mark cleared once the id is in status: {}",
                obj["metadata"]
            );
            let id = obj["status"]["id"]
                .as_str()
                .expect("id in status")
                .to_string();
            let on_server = env.emulator.with_tenant(TENANT, |t| {
                t.idps.iter().any(|i| i.id == id) || t.apps.iter().any(|a| a.id == id)
            });
            assert!(
                on_server,
                "{kind} {name}: status id {id} is the server's object"
            );
        }
    }
    let (idps, apps) = server_names(&env);
    let want_idps: Vec<String> = ["IdP-gh-hang", "IdP-gh-nolocation", "IdP-gh-oversized"]
        .map(String::from)
        .to_vec();
    let want_apps: Vec<String> = ["App-wiki-hang", "App-wiki-nolocation", "App-wiki-oversized"]
        .map(String::from)
        .to_vec();
    assert_eq!(idps, want_idps, "one IdP per object, no duplicate");
    assert_eq!(apps, want_apps, "one application per object, no duplicate");
    // Nothing leaks on delete: each object knows its server object.
    for (tag, _) in kinds {
        env.delete("Application", &format!("wiki-{tag}")).await;
    }
    for (tag, _) in kinds {
        env.wait_gone("Application", &format!("wiki-{tag}"), T)
            .await;
        env.delete("IdentityProvider", &format!("gh-{tag}")).await;
    }
    for (tag, _) in kinds {
        env.wait_gone("IdentityProvider", &format!("gh-{tag}"), T)
            .await;
    }
    assert_eq!(
        server_names(&env),
        (vec![], vec![]),
        "nothing left on the server"
    );
}

#[tokio::test]
async fn a_tarpit_backend_does_not_stall_the_others_and_says_so() {
    let mut env = TestEnv::new("tarpit").await;
    env.create_backend("fast").await;
    env.apply(GH_SECRET).await.expect("secret");
    // A second tenant's server that accepts connections and never answers.
    let tarpit_secret = format!("emu-{}", uuid::Uuid::new_v4().simple());
    let tarpit = Emulator::start(EmulatorConfig {
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(tarpit_secret.clone()),
        faults: Faults {
            latency_ms: 3_600_000,
            ..Default::default()
        },
        ..EmulatorConfig::default()
    })
    .await
    .expect("tarpit emulator");
    env.apply(&format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: slow-m2m, labels: {{identity-operator.io/use: backend-credentials}}}}
stringData: {{client-id: {CLIENT_ID}, client-secret: {tarpit_secret}}}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityBackend
metadata: {{name: slow}}
spec:
  wso2IdentityServer: {{url: "{}", tenant: {TENANT}}}
  credentialsSecretRef: {{name: slow-m2m}}
"#,
        tarpit.url()
    ))
    .await
    .expect("slow backend");
    // Few slots, default timeouts (30 s per attempt): the tarpit's objects alone could hold every
    // slot for minutes.
    env.start_operator(&["--concurrency", "4"]);
    for i in 0..8 {
        env.apply(&idp_yaml(&format!("slow-{i}"), "slow"))
            .await
            .expect("slow idp");
    }
    // Let the tarpit's objects take what they can before the others arrive.
    common::wait_until(T, || async {
        let s = tarpit.stats();
        (s.operations.values().sum::<u64>() >= 2).then_some(())
    })
    .await
    .expect("the operator talks to the tarpit");
    let started = Instant::now();
    for i in 0..4 {
        env.apply(&idp_yaml(&format!("fast-{i}"), "fast"))
            .await
            .expect("fast idp");
    }
    env.apply(&app_yaml("wiki", "fast", "fast-0"))
        .await
        .expect("fast app");
    // Well within a single 30 s attempt against the tarpit: nothing of "fast" waited for it.
    let normal = Duration::from_secs(25);
    for i in 0..4 {
        env.wait_condition(
            "IdentityProvider",
            &format!("fast-{i}"),
            "Ready",
            "True",
            normal,
        )
        .await;
    }
    env.ready("Application", "wiki", normal).await;
    env.ready("IdentityBackend", "fast", normal).await;
    let took = started.elapsed();
    // The tarpit's backend says what is wrong, and its objects are not Ready.
    let degraded = env
        .wait_condition(
            "IdentityBackend",
            "slow",
            "Degraded",
            "True",
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(degraded["reason"], "ServerTimeout", "{degraded}");
    assert!(
        degraded["message"].as_str().is_some_and(
            |m| m.contains(&tarpit.url()) && m.contains("other backends are not affected")
        ),
        "{degraded}"
    );
    let fast = env.get("IdentityBackend", "fast").await.expect("fast");
    assert!(
        fast["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["type"] != "Degraded")),
        "the healthy backend is not marked: {}",
        fast["status"]
    );
    let slow_ready = env.get("IdentityProvider", "slow-0").await.expect("slow-0");
    assert!(
        slow_ready["status"]["conditions"]
            .as_array()
            .is_none_or(|c| c
                .iter()
                .all(|c| !(c["type"] == "Ready" && c["status"] == "True"))),
        "{}",
        slow_ready["status"]
    );
    eprintln!("fast backend converged in {took:?} next to a tarpit");
}

#[tokio::test]
async fn an_invalid_credentials_secret_name_stalls_before_any_write() {
    let env = TestEnv::started("badsecret").await;
    env.apply(
        r#"
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {name: wiki}
spec:
  backendRef: {name: asgardeo}
  displayName: Wiki
  oidc: {grantTypes: [authorization_code], callbackURLs: ["https://wiki.example/cb"]}
  credentialsSecret: {name: Wiki_OIDC}
"#,
    )
    .await
    .expect("the CRD takes the name; the apiserver refuses it for a Secret");
    let c = common::wait_until(T, || async {
        let obj = env.get("Application", "wiki").await?;
        obj["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready" && c["reason"] == "InvalidCredentialsSecretName")
            .cloned()
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "not reported; log:\n{}",
            common::tail(&env.operator_log(), 30)
        )
    });
    assert!(
        c["message"]
            .as_str()
            .is_some_and(|m| m.contains("Wiki_OIDC")),
        "{c}"
    );
    // Reported before anything was made: no application whose credentials cannot be stored.
    assert_eq!(server_names(&env).1, Vec::<String>::new());
    let stalled = env.get("Application", "wiki").await.expect("wiki");
    assert!(
        stalled["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs
                .iter()
                .any(|c| c["type"] == "Stalled" && c["status"] == "True")),
        "a spec change is needed: Stalled, not retried as a Kubernetes error: {}",
        stalled["status"]
    );
}

#[tokio::test]
async fn a_blocked_idp_does_not_push_its_client_secret_every_resync() {
    use identity_operator::backend::operation::Operation;
    let mut env = TestEnv::new("blockpush").await;
    env.create_backend("asgardeo").await;
    env.apply(GH_SECRET).await.expect("secret");
    env.start_operator(&[]); // resync every 3 s
    env.apply(&idp_yaml("gh", "asgardeo")).await.expect("idp");
    env.apply(&app_yaml("wiki", "asgardeo", "gh"))
        .await
        .expect("app");
    env.ready("Application", "wiki", T).await;
    // JIT off while wiki's TOTP step needs a local account: Block holds it back.
    env.patch(
        "IdentityProvider",
        "gh",
        serde_json::json!({"spec": {"jit": {"enabled": false}}}),
    )
    .await
    .expect("jit off");
    let c = env.not_ready("IdentityProvider", "gh", T).await;
    assert_eq!(c["reason"], "JITDisableBlocked", "{c}");
    // The Secret rotates while the IdP is blocked: the new value is pushed once, and recorded.
    let pushes = || {
        env.emulator
            .stats()
            .count(Operation::UpdateFederatedAuthenticator)
    };
    let before = pushes();
    env.apply(&GH_SECRET.replace("gh-secret-value", "rotated-value"))
        .await
        .expect("rotate");
    let version = env.get("Secret", "gh-oauth").await.expect("secret")["metadata"]
        ["resourceVersion"]
        .as_str()
        .expect("version")
        .to_string();
    let stats = || env.emulator.stats();
    let reads = |s: &identity_emulator::Stats| s.count(Operation::GetFederatedAuthenticator);
    let first = common::wait_until(T, || async {
        let obj = env.get("IdentityProvider", "gh").await?;
        (obj["metadata"]["annotations"]["identity-operator.io/client-secret-version"] == version)
            .then(stats)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the pushed Secret version is not recorded on the blocked IdP; log:\n{}",
            common::tail(&env.operator_log(), 20)
        )
    });
    assert!(pushes() > before, "the rotated secret was pushed");
    // Three resyncs (each reads the authenticator) without another push.
    let after = common::wait_until(T, || async {
        let s = stats();
        (reads(&s) >= reads(&first) + 3).then_some(s)
    })
    .await
    .expect("the blocked IdP is still resynced");
    assert_eq!(
        after.count(Operation::UpdateFederatedAuthenticator),
        first.count(Operation::UpdateFederatedAuthenticator),
        "no client-secret push on a resync of a blocked IdP"
    );
}
