//! The integration-test harness: a real kube-apiserver (from `scripts/dev-env up`, found through
//! KUBECONFIG), and per test a namespace, an in-process emulator on a random port, and the operator
//! binary as a child process watching only that namespace, with its log captured to a file.
#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use identity_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use identity_operator::api::{Application, IdentityBackend, IdentityProvider};
use identity_operator::backend::asgardeo::{AsgardeoClient, AsgardeoConfig, Target};
use identity_operator::backend::{IdentityServer, Secret};
use identity_testkit::{ControlPlane, Output};
use k8s_openapi::api::core::v1::{Namespace, Secret as KubeSecret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::await_condition;
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

/// The tenant every test uses on its emulator.
pub const TENANT: &str = "acme";
/// The emulator's M2M client id.
pub const CLIENT_ID: &str = "operator-m2m";

/// One test's world.
pub struct TestEnv {
    /// Admin client of the shared control plane.
    pub client: Client,
    /// This test's namespace.
    pub ns: String,
    /// This test's emulator.
    pub emulator: EmulatorHandle,
    /// The emulator's M2M secret (random per test).
    pub client_secret: String,
    /// The operator child process.
    operator: Option<Child>,
    /// Where the operator logs.
    pub operator_log: PathBuf,
    /// A kubeconfig for the operator other than the caller's KUBECONFIG.
    pub kubeconfig: Option<PathBuf>,
}

/// The kinds whose status carries conditions, for [`TestEnv::wait_for`].
pub trait HasConditions {
    /// `status.conditions` (empty before the first status write).
    fn conditions(&self) -> &[Condition];
}

/// One impl per kind: the three status types share no trait in the api crate.
macro_rules! has_conditions {
    ($($kind:ty),*) => {$(
        impl HasConditions for $kind {
            fn conditions(&self) -> &[Condition] {
                self.status.as_ref().map_or(&[], |s| s.conditions.as_slice())
            }
        }
    )*};
}
has_conditions!(IdentityProvider, Application, IdentityBackend);

fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// The admin client from KUBECONFIG (set by `scripts/dev-env up` / `scripts/test`).
pub async fn admin_client() -> Client {
    require_dev_env();
    Client::try_default().await.expect("kubeconfig works")
}

/// Ends this test binary when there is no dev environment (no KUBECONFIG): `cargo test` on a fresh
/// checkout then prints one line per integration-test binary instead of a panic per test. libtest
/// has no runtime "skip", so the binary exits with success after saying it skipped; with
/// IDENTITY_OPERATOR_REQUIRE_CONTROL_PLANE set (scripts/test sets it) a missing control plane is a
/// failure instead, so CI cannot pass by skipping.
pub fn require_dev_env() {
    if std::env::var_os("KUBECONFIG").is_some() {
        return;
    }
    skip_binary("no control plane (KUBECONFIG is unset)");
}

/// See [`require_dev_env`]; `why` says what is missing.
pub fn skip_binary(why: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("IDENTITY_OPERATOR_REQUIRE_CONTROL_PLANE").is_some() {
        panic!("{why}; integration tests need a control plane: run scripts/test, or eval \"$(scripts/dev-env up)\" first");
    }
    // Other test threads that get here block in call_once until the process has exited.
    ONCE.call_once(|| {
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .map(|s| s.rsplit_once('-').map_or(s.clone(), |(name, _hash)| name.to_string()))
            .unwrap_or_else(|| "integration".into());
        // Straight to fd 2: libtest captures eprintln! output and would drop it at exit.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped tests/{binary}.rs: {why}; run scripts/test, or eval \"$(scripts/dev-env up)\" first"
        );
        std::process::exit(0);
    });
}

/// Applies the generated CRDs (idempotent) and waits until they are Established.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in identity_operator::api::crds() {
        let name = crd.name_any();
        let mut body = serde_json::to_value(&crd).expect("crd json");
        body["apiVersion"] = "apiextensions.k8s.io/v1".into();
        body["kind"] = "CustomResourceDefinition".into();
        api.patch(
            &name,
            &PatchParams::apply("identity-operator-tests").force(),
            &Patch::Apply(&body),
        )
        .await
        .expect("apply CRD");
        wait_until(Duration::from_secs(30), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .find(|c| c.type_ == "Established" && c.status == "True")
                    .map(|_| ())
            }
        })
        .await
        .unwrap_or_else(|| panic!("CRD {name} not Established"));
    }
}

pub use identity_testkit::{tail, wait_until};

impl TestEnv {
    /// A namespace, an emulator and CRDs; the operator is started with [`TestEnv::start_operator`].
    pub async fn new(name: &str) -> Self {
        Self::with_client(name, admin_client().await, None).await
    }

    /// Like [`TestEnv::new`] on another control plane (its admin client and kubeconfig file).
    pub async fn with_client(name: &str, client: Client, kubeconfig: Option<PathBuf>) -> Self {
        install_crds(&client).await;
        let ns = format!("t-{name}-{}", random_suffix());
        let nss: Api<Namespace> = Api::all(client.clone());
        let body: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).expect("ns");
        nss.create(&PostParams::default(), &body)
            .await
            .expect("create namespace");
        let client_secret = format!("emu-{}", uuid::Uuid::new_v4().simple());
        let emulator = Emulator::start(EmulatorConfig {
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(client_secret.clone()),
            ..EmulatorConfig::default()
        })
        .await
        .expect("emulator starts");
        let operator_log = std::env::temp_dir().join(format!("identity-operator-{ns}.log"));
        Self {
            client,
            ns,
            emulator,
            client_secret,
            operator: None,
            operator_log,
            kubeconfig,
        }
    }

    /// The usual start of a test: [`TestEnv::new`], the backend `asgardeo` on the emulator
    /// ([`TestEnv::create_backend`]) and the operator watching the namespace.
    pub async fn started(name: &str) -> Self {
        let mut env = Self::new(name).await;
        env.create_backend("asgardeo").await;
        env.start_operator(&[]);
        env
    }

    /// Starts the operator binary watching this namespace.
    pub fn start_operator(&mut self, extra: &[&str]) {
        let ns = self.ns.clone();
        self.start_operator_in(&ns, extra);
    }

    /// A second namespace on this control plane (for tests across namespaces); apply to it with
    /// [`TestEnv::in_namespace`].
    pub async fn extra_namespace(&self, suffix: &str) -> String {
        let ns = format!("{}-{suffix}", self.ns);
        let nss: Api<Namespace> = Api::all(self.client.clone());
        let body: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).expect("ns");
        nss.create(&PostParams::default(), &body)
            .await
            .expect("create namespace");
        ns
    }

    /// Makes `ns` the namespace that [`TestEnv::apply`], [`TestEnv::get`] and the other helpers
    /// use; returns the one used before.
    pub fn in_namespace(&mut self, ns: &str) -> String {
        std::mem::replace(&mut self.ns, ns.to_string())
    }

    /// Starts the operator binary watching `namespaces` (comma-separated).
    pub fn start_operator_in(&mut self, namespaces: &str, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.operator_log)
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_identity-operator"));
        // A test may set its own resync interval (the flag may appear only once).
        let resync: &[&str] = if extra.contains(&"--resync-interval") {
            &[]
        } else {
            &["--resync-interval", "3s"]
        };
        cmd.args([
            "run",
            "--namespace",
            namespaces,
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args(resync)
        .args(extra)
        .envs(self.kubeconfig.iter().map(|k| ("KUBECONFIG", k.clone())))
        .env(
            "RUST_LOG",
            std::env::var("OPERATOR_RUST_LOG")
                .unwrap_or_else(|_| "info,identity_operator=debug".into()),
        )
        .stdout(Stdio::null())
        .stderr(log);
        self.operator = Some(cmd.spawn().expect("operator starts"));
    }

    /// Kills the operator with SIGKILL (no cleanup of its own).
    pub fn kill_operator(&mut self) {
        if let Some(mut child) = self.operator.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The operator's log so far.
    pub fn operator_log(&self) -> String {
        std::fs::read_to_string(&self.operator_log).unwrap_or_default()
    }

    /// A client of this test's emulator, for reading and changing the server behind the operator.
    pub fn server(&self) -> Arc<dyn IdentityServer> {
        let target = Target::Wso2IdentityServer {
            url: self.emulator.url(),
            tenant: TENANT.into(),
        };
        let config =
            AsgardeoConfig::new(target, CLIENT_ID, Secret::new(self.client_secret.clone()));
        Arc::new(AsgardeoClient::new(config, None).expect("client"))
    }

    /// The backend Secret and IdentityBackend named `name`, pointing at the emulator.
    pub async fn create_backend(&self, name: &str) {
        self.apply(&format!(
            r#"
apiVersion: v1
kind: Secret
metadata: {{name: {name}-m2m, labels: {{identity-operator.io/use: backend-credentials}}}}
stringData: {{client-id: {CLIENT_ID}, client-secret: {}}}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityBackend
metadata: {{name: {name}}}
spec:
  wso2IdentityServer: {{url: "{}", tenant: {TENANT}}}
  credentialsSecretRef: {{name: {name}-m2m}}
"#,
            self.client_secret,
            self.emulator.url()
        ))
        .await
        .expect("backend applies");
    }

    /// Server-side applies every document of `yaml` in this namespace. Returns the apiserver's error
    /// message for the first rejected document.
    pub async fn apply(&self, yaml: &str) -> Result<(), String> {
        for doc in yaml.split("\n---\n") {
            if doc.trim().is_empty() {
                continue;
            }
            let value: Value = serde_yaml::from_str(doc).map_err(|e| e.to_string())?;
            let api = self.dynamic(&value);
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            api.patch(
                &name,
                &PatchParams::apply("tests").force(),
                &Patch::Apply(&value),
            )
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) => s.message,
                other => other.to_string(),
            })?;
        }
        Ok(())
    }

    /// Server-side apply of one document (its kind from the YAML), as a dry run or for real: the
    /// apiserver's message when it is refused (by schema, CEL, a policy or a webhook).
    pub async fn apply_one(&self, yaml: &str, dry_run: bool) -> Result<(), String> {
        let value: Value = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        let mut params = PatchParams::apply("tests").force();
        if dry_run {
            params = params.dry_run();
        }
        let name = value["metadata"]["name"].as_str().unwrap_or_default();
        self.dynamic(&value)
            .patch(name, &params, &Patch::Apply(&value))
            .await
            .map(|_| ())
            .map_err(|e| match e {
                kube::Error::Api(s) => s.message,
                other => other.to_string(),
            })
    }

    /// `kubectl apply --server-side` of `yaml` in this namespace (kube-rs does not surface
    /// admission warnings; kubectl prints them on stderr as `Warning: ...`): (success, stderr).
    pub fn kubectl_apply(&self, yaml: &str, dry_run: bool) -> (bool, String) {
        use std::io::Write;
        let kubectl = std::env::var_os("TOOLS_BIN")
            .map(|d| PathBuf::from(d).join("kubectl"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| "kubectl".into());
        let mut cmd = Command::new(kubectl);
        cmd.args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "tests",
            "-n",
            &self.ns,
            "-f",
            "-",
        ]);
        if dry_run {
            cmd.arg("--dry-run=server");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(yaml.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("kubectl ends");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Merge-patches an object.
    pub async fn patch(&self, kind: &str, name: &str, patch: Value) -> Result<(), String> {
        let api = self.api_for(kind);
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Merge-patches the object's `spec` with `spec`; panics when the apiserver refuses it (a test
    /// that expects a refusal uses [`TestEnv::patch`]).
    pub async fn set_spec(&self, kind: &str, name: &str, spec: Value) {
        let patch = serde_json::json!({ "spec": spec });
        if let Err(e) = self.patch(kind, name, patch).await {
            panic!("patching the spec of {kind} {name}: {e}");
        }
    }

    /// Deletes an object.
    pub async fn delete(&self, kind: &str, name: &str) {
        let _ = self
            .api_for(kind)
            .delete(name, &DeleteParams::default())
            .await;
    }

    fn dynamic(&self, value: &Value) -> Api<DynamicObject> {
        let (group, version) = match value["apiVersion"].as_str().unwrap_or("v1").split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                value["apiVersion"].as_str().unwrap_or("v1").to_string(),
            ),
        };
        let kind = value["kind"].as_str().unwrap_or_default();
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, &version, kind));
        Api::namespaced_with(self.client.clone(), &self.ns, &ar)
    }

    fn api_for(&self, kind: &str) -> Api<DynamicObject> {
        let api_version = match kind {
            "Secret" => "v1",
            _ => "identity-operator.io/v1alpha1",
        };
        self.dynamic(&serde_json::json!({"apiVersion": api_version, "kind": kind}))
    }

    /// The object as JSON, if it exists.
    pub async fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let obj = self.api_for(kind).get_opt(name).await.ok()??;
        serde_json::to_value(obj).ok()
    }

    /// Waits until condition `type_` of the object has `status`; returns the condition as JSON.
    /// The three kinds of this operator are watched ([`TestEnv::wait_for`]); other kinds polled.
    pub async fn wait_condition(
        &self,
        kind: &str,
        name: &str,
        type_: &str,
        status: &str,
        timeout: Duration,
    ) -> Value {
        let typed = match kind {
            "IdentityProvider" => {
                self.wait_for::<IdentityProvider>(name, type_, status, timeout)
                    .await
            }
            "Application" => {
                self.wait_for::<Application>(name, type_, status, timeout)
                    .await
            }
            "IdentityBackend" => {
                self.wait_for::<IdentityBackend>(name, type_, status, timeout)
                    .await
            }
            _ => {
                return self
                    .poll_condition(kind, name, type_, status, timeout)
                    .await
            }
        };
        serde_json::to_value(typed).expect("a condition is JSON")
    }

    /// Waits until condition `type_` of the `K` named `name` in this namespace has `status`, with
    /// kube's `await_condition` (a watch: it returns on the event that makes it true, no polling);
    /// returns the condition. On timeout it panics with the object's status and the operator log.
    pub async fn wait_for<K>(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        timeout: Duration,
    ) -> Condition
    where
        K: HasConditions
            + kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + 'static,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.ns);
        let find = |obj: &K| {
            obj.conditions()
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .cloned()
        };
        let holds = |obj: Option<&K>| obj.and_then(find).is_some();
        let reached =
            tokio::time::timeout(timeout, await_condition(api.clone(), name, holds)).await;
        if let Ok(Ok(Some(obj))) = &reached {
            if let Some(c) = find(obj) {
                return c;
            }
        }
        let now = api.get_opt(name).await.ok().flatten();
        panic!(
            "{} {name}: condition {type_}={status} not reached in {timeout:?} ({}); conditions: {}\noperator log tail:\n{}",
            K::kind(&()),
            match reached {
                Ok(Err(e)) => format!("watch failed: {e}"),
                Ok(Ok(None)) => "the object was deleted".to_string(),
                _ => "timed out".to_string(),
            },
            now.map(|o| serde_json::to_string(o.conditions()).unwrap_or_default())
                .unwrap_or_else(|| "(no object)".into()),
            tail(&self.operator_log(), 30)
        );
    }

    /// [`TestEnv::wait_condition`] for a kind without a type here: polls its JSON.
    async fn poll_condition(
        &self,
        kind: &str,
        name: &str,
        type_: &str,
        status: &str,
        timeout: Duration,
    ) -> Value {
        let found = wait_until(timeout, || async {
            let obj = self.get(kind, name).await?;
            let conds = obj["status"]["conditions"].as_array()?.clone();
            conds
                .into_iter()
                .find(|c| c["type"] == type_ && c["status"] == status)
        })
        .await;
        match found {
            Some(c) => c,
            None => {
                let obj = self.get(kind, name).await;
                panic!(
                    "{kind} {name}: condition {type_}={status} not reached in {timeout:?}; status: {}\noperator log tail:\n{}",
                    obj.map(|o| o["status"].to_string()).unwrap_or_default(),
                    tail(&self.operator_log(), 30)
                );
            }
        }
    }

    /// Waits until the object is Ready=True; returns the condition.
    pub async fn ready(&self, kind: &str, name: &str, timeout: Duration) -> Value {
        self.wait_condition(kind, name, "Ready", "True", timeout)
            .await
    }

    /// Waits until the object is Ready=False; returns the condition (its reason says why).
    pub async fn not_ready(&self, kind: &str, name: &str, timeout: Duration) -> Value {
        self.wait_condition(kind, name, "Ready", "False", timeout)
            .await
    }

    /// Waits until the object reports InterconnectionConflict=True; returns the condition.
    pub async fn conflict(&self, kind: &str, name: &str, timeout: Duration) -> Value {
        self.wait_condition(kind, name, "InterconnectionConflict", "True", timeout)
            .await
    }

    /// Waits until the object is gone.
    pub async fn wait_gone(&self, kind: &str, name: &str, timeout: Duration) {
        let gone = wait_until(timeout, || async {
            self.get(kind, name).await.is_none().then_some(())
        })
        .await;
        assert!(
            gone.is_some(),
            "{kind} {name} still exists after {timeout:?}\n{}",
            tail(&self.operator_log(), 30)
        );
    }

    /// Events of one object (reason, type, note).
    pub async fn events(&self, name: &str) -> Vec<(String, String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &self.ns);
        api.list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                    .map(|e| {
                        (
                            e.reason.unwrap_or_default(),
                            e.type_.unwrap_or_default(),
                            e.note.unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until an Event with `reason` exists on the object.
    pub async fn wait_event(
        &self,
        name: &str,
        reason: &str,
        timeout: Duration,
    ) -> (String, String, String) {
        match wait_until(timeout, || async {
            self.events(name).await.into_iter().find(|e| e.0 == reason)
        })
        .await
        {
            Some(e) => e,
            None => panic!(
                "no {reason} event on {name}; events: {:?}",
                self.events(name).await
            ),
        }
    }

    /// A Secret's data as strings.
    pub async fn secret_data(
        &self,
        name: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let api: Api<KubeSecret> = Api::namespaced(self.client.clone(), &self.ns);
        let s = api.get_opt(name).await.ok()??;
        Some(
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect(),
        )
    }
}

/// A control plane of a test's own (`scripts/dev-env up --no-emulator` in a temp state dir), for
/// tests that restart the apiserver and must not disturb the shared one. Stopped on drop (by the
/// testkit's [`ControlPlane`], the same starter the bench uses).
pub struct OwnControlPlane {
    /// The state dir.
    pub dir: PathBuf,
    /// Its admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The started control plane; `down` when dropped.
    plane: ControlPlane,
}

impl OwnControlPlane {
    /// Starts it (the tools are already built by then).
    pub fn start(name: &str) -> Self {
        // Without a dev environment the tools may not be built: building them here would take
        // many minutes inside a test.
        require_dev_env();
        let dir = std::env::temp_dir().join(format!("io-cp-{name}-{}", random_suffix()));
        let plane = ControlPlane::start(&dev_env_script(), &dir, "tests", Output::Capture)
            .unwrap_or_else(|e| panic!("dev-env up: {e:#}"));
        Self {
            dir,
            kubeconfig: plane.kubeconfig.clone(),
            plane,
        }
    }

    /// Its admin client.
    pub async fn client(&self) -> Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("config");
        Client::try_from(config).expect("client")
    }

    /// Stops and starts kube-apiserver (same flags and ports); returns when /readyz is 200 again.
    pub fn restart_apiserver(&self) {
        self.dev_env(&["restart-apiserver", "--kill"]);
    }

    /// Stops kube-apiserver (SIGTERM, or SIGKILL with `kill`) and waits until its port is free, so
    /// that a following start cannot race the old process for the port.
    pub fn stop_apiserver(&self, kill: bool) {
        let args: &[&str] = if kill {
            &["stop-apiserver", "--kill"]
        } else {
            &["stop-apiserver"]
        };
        self.dev_env(args);
        let port = self.api_port();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "port {port} still taken 60 s after stop-apiserver"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts kube-apiserver again; returns when /readyz is 200.
    pub fn start_apiserver(&self) {
        self.dev_env(&["start-apiserver"]);
    }

    /// The apiserver's port, from the kubeconfig's server URL.
    pub fn api_port(&self) -> u16 {
        let kc = std::fs::read_to_string(&self.kubeconfig).expect("kubeconfig");
        kc.lines()
            .find_map(|l| l.trim().strip_prefix("server: https://127.0.0.1:"))
            .and_then(|p| p.trim().parse().ok())
            .expect("server: https://127.0.0.1:PORT in the kubeconfig")
    }

    /// `dev-env ARGS` in this control plane's state dir; its stdout.
    fn dev_env(&self, args: &[&str]) -> String {
        self.plane
            .run(args)
            .unwrap_or_else(|e| panic!("dev-env {args:?}: {e:#}"))
    }
}

/// This repository's `scripts/dev-env`.
fn dev_env_script() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dev-env")
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.kill_operator();
    }
}

/// The file `examples/<path>` as YAML for [`TestEnv::apply`]: the seeds the README shows, so that a
/// test proves the examples rather than a copy of them. Each document loses its
/// `metadata.namespace` (a test applies into its own) and its placeholder Secret values
/// (`REPLACE_WITH_…`) become `secret` (the value a test then looks for in logs); `edit` then
/// changes the documents a test varies.
pub fn example(path: &str, secret: &str, edit: impl Fn(&mut Value)) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(path);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    text.split("\n---\n")
        .filter(|doc| doc.lines().any(|l| l.starts_with("kind:")))
        .map(|doc| {
            let mut value: Value = serde_yaml::from_str(doc)
                .unwrap_or_else(|e| panic!("{} is YAML: {e}", file.display()));
            if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("namespace");
            }
            // `get_mut`, not `[]`: indexing a missing key would insert a null `stringData`.
            if let Some(data) = value.get_mut("stringData").and_then(Value::as_object_mut) {
                for v in data.values_mut() {
                    if v.as_str().is_some_and(|s| s.starts_with("REPLACE_WITH_")) {
                        *v = secret.into();
                    }
                }
            }
            edit(&mut value);
            serde_yaml::to_string(&value).expect("a document is YAML")
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// The partner's Okta of `examples/jit-off-skip-mfa` (with its client Secret,
/// `okta-very-secret-value`), its client id `0oa-partner`, `jit` as its `spec.jit` and `policy` as
/// its conflict policy.
pub fn partner_okta(jit: Value, policy: &str) -> String {
    example(
        "jit-off-skip-mfa/partner-okta.yaml",
        "okta-very-secret-value",
        |doc| {
            if doc["kind"] == "IdentityProvider" {
                doc["spec"]["oidc"]["clientID"] = "0oa-partner".into();
                doc["spec"]["jit"] = jit.clone();
                doc["spec"]["conflictPolicy"] = policy.into();
            }
        },
    )
}

/// Payroll of `examples/jit-off-skip-mfa` (step 1 password or the partner's Okta, step 2 TOTP)
/// without its credentials Secret and with the authorization-code grant only (what these tests
/// need of it); `skip` (YAML of the TOTP step's `skipFor` entry, or "") replaces the example's skip.
pub fn payroll_via_partner_okta(skip: &str) -> String {
    let skip: Value = if skip.is_empty() {
        Value::Null
    } else {
        serde_yaml::from_str(&format!("{{{skip}}}")).expect("skip is YAML")
    };
    example("jit-off-skip-mfa/payroll.yaml", "", |doc| {
        let spec = &mut doc["spec"];
        if let Some(spec) = spec.as_object_mut() {
            spec.remove("credentialsSecret");
        }
        spec["oidc"]["grantTypes"] = serde_json::json!(["authorization_code"]);
        if let Some(totp) = spec["loginFlow"]["steps"][1].as_object_mut() {
            totp.remove("skipFor");
            if let Some(skip) = skip.as_object() {
                totp.extend(skip.clone());
            }
        }
    })
}
