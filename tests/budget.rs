//! The request budget (issue 22). Against the emulator enforcing a quota like Asgardeo's (a sliding
//! window per client, 429 with `Retry-After` beyond it): a 429 pauses every request of the backend,
//! not only the one that got it; and on a real kube-apiserver + etcd, an operator whose budget is
//! below the quota converges several objects without a single 429, and says with a Warning Event
//! that their drift checks do not fit in the resync interval at the budget's share.

mod common;

use std::time::{Duration, Instant};

use common::TestEnv;
use identity_emulator::{Emulator, EmulatorConfig, Faults, Quota};
use identity_operator::backend::asgardeo::{AsgardeoClient, AsgardeoConfig, RetryPolicy, Target};
use identity_operator::backend::ratelimit::Limit;
use identity_operator::backend::{IdentityServer, Secret};

const T: Duration = Duration::from_secs(180);

#[tokio::test]
async fn a_429_pauses_every_request_of_the_backend() {
    let emu = Emulator::start(EmulatorConfig {
        client_id: "operator".into(),
        client_secret: Secret::new("s3cret-value"),
        ..Default::default()
    })
    .await
    .expect("emulator");
    let mut config = AsgardeoConfig::new(
        Target::Wso2IdentityServer {
            url: emu.url(),
            tenant: common::TENANT.to_owned(),
        },
        "operator",
        Secret::new("s3cret-value"),
    );
    // No budget (a self-hosted server): only the pause can make the second caller wait.
    config.limit = Limit::Unlimited;
    config.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(10),
    };
    let client = std::sync::Arc::new(AsgardeoClient::new(config, None).expect("client"));
    client.check_access().await.expect("warm token");
    emu.set_faults(Faults {
        rate_limit_next: 1,
        retry_after_secs: 3,
        ..Default::default()
    });
    let first = {
        let client = client.clone();
        tokio::spawn(async move { client.find_idp_by_name("a").await })
    };
    common::wait_until(Duration::from_secs(10), || async {
        (emu.stats().statuses.get(&429) == Some(&1)).then_some(())
    })
    .await
    .expect("the first caller got its 429");
    // Asked after the 429, by another caller that got none: it waits out the same Retry-After
    // (3 s from the 429, which came before we saw it), instead of going through at once.
    let asked = Instant::now();
    client.find_idp_by_name("b").await.expect("second caller");
    let waited = asked.elapsed();
    first.await.expect("join").expect("first caller");
    assert!(
        waited >= Duration::from_millis(1500),
        "the second caller went through after {waited:?}, during the pause"
    );
    assert_eq!(emu.stats().statuses.get(&429), Some(&1), "one 429 in all");
}

/// IdentityProviders and Applications on backend `asgardeo` (a login flow on each IdP).
fn objects(idps: usize, apps_per_idp: usize) -> String {
    let mut yaml = String::from(
        r#"
apiVersion: v1
kind: Secret
metadata: {name: idp-oidc, labels: {identity-operator.io/use: identity-provider-client-secret}}
stringData: {client-secret: idp-very-secret-value}
---
"#,
    );
    for i in 0..idps {
        yaml.push_str(&format!(
            r#"
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {{name: idp-{i}}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: IdP {i}
  oidc:
    clientID: "client-{i}"
    clientSecretRef: {{name: idp-oidc, key: client-secret}}
    authorizationEndpoint: https://idp{i}.example/authorize
    tokenEndpoint: https://idp{i}.example/token
  jit: {{enabled: true}}
---
"#
        ));
        for a in 0..apps_per_idp {
            yaml.push_str(&format!(
                r#"
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {{name: app-{i}-{a}}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: App {i} {a}
  oidc: {{grantTypes: [authorization_code], callbackURLs: ["https://app{i}{a}.example/callback"]}}
  loginFlow:
    steps:
      - options: [{{authenticator: BasicAuthenticator}}, {{identityProviderRef: {{name: idp-{i}}}}}]
---
"#
            ));
        }
    }
    yaml
}

#[tokio::test]
async fn a_budget_below_the_quota_converges_without_a_429() {
    let mut env = TestEnv::new("budget").await;
    // 12 requests per 10 s window (the server's 200 per 60 s, scaled down to keep the test short).
    let quota = Quota {
        requests: 12,
        window_secs: 10,
    };
    env.emulator.set_faults(Faults {
        quota: Some(quota),
        ..Default::default()
    });
    env.start_operator(&[]);
    // 48 per minute: 0.8 a second with a burst of 2, so any 10 s window holds at most 10 < 12.
    env.apply(&format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: asgardeo-m2m, labels: {{identity-operator.io/use: backend-credentials}}}}
stringData: {{client-id: {}, client-secret: {}}}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityBackend
metadata: {{name: asgardeo}}
spec:
  wso2IdentityServer: {{url: "{}", tenant: {}}}
  credentialsSecretRef: {{name: asgardeo-m2m}}
  maxRequestsPerMinute: 48
"#,
        common::CLIENT_ID,
        env.client_secret,
        env.emulator.url(),
        common::TENANT
    ))
    .await
    .expect("backend");
    env.wait_condition("IdentityBackend", "asgardeo", "Ready", "True", T)
        .await;
    env.apply(&objects(3, 2)).await.expect("objects");
    for i in 0..3 {
        env.wait_condition("IdentityProvider", &format!("idp-{i}"), "Ready", "True", T)
            .await;
        for a in 0..2 {
            env.wait_condition("Application", &format!("app-{i}-{a}"), "Ready", "True", T)
                .await;
        }
    }
    // Nine objects × 3 reads at half of 48/min is a 68 s round, far beyond the 3 s resync: the
    // drift checks are stretched, and the backend says so (once, with the objects it saw then).
    let (_, kind, note) = env.wait_event("asgardeo", "DriftChecksOverBudget", T).await;
    assert_eq!(kind, "Warning", "{note}");
    assert!(
        note.contains("objects") && note.contains("maxRequestsPerMinute"),
        "{note}"
    );
    let stats = env.emulator.stats();
    let api_requests = stats.reads + stats.writes;
    assert!(
        api_requests > u64::from(quota.requests),
        "the converge must need more than one window's quota to prove anything: {api_requests}"
    );
    assert_eq!(stats.over_quota, 0, "{stats:?}");
    assert_eq!(stats.statuses.get(&429), None, "{stats:?}");
}

#[tokio::test]
async fn a_budget_is_declared_once_and_in_range() {
    let env = TestEnv::new("budget-cel").await;
    let backend = |extra: &str| {
        format!(
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityBackend\nmetadata: {{name: b}}\nspec: {{asgardeo: {{organization: acme}}, credentialsSecretRef: {{name: s}}, {extra}}}"
        )
    };
    let cases = [
        (
            "maxRequestsPerMinute: 100, maxRequestsPerSecond: 2",
            "set maxRequestsPerMinute or the deprecated maxRequestsPerSecond, not both",
        ),
        (
            "maxRequestsPerMinute: 0",
            "maxRequestsPerMinute must be between 1 and 1000000",
        ),
        (
            "driftCheckBudgetPercent: 101",
            "driftCheckBudgetPercent must be between 1 and 100",
        ),
    ];
    for (extra, expected) in cases {
        let err = env.apply(&backend(extra)).await.expect_err(expected);
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    }
    for valid in [
        "maxRequestsPerMinute: 150",
        "maxRequestsPerSecond: 2",
        "driftCheckBudgetPercent: 100",
    ] {
        env.apply(&backend(valid)).await.expect(valid);
    }
}
