//! The integration-test harness: a real kube-apiserver (from `scripts/dev-env up`, found through
//! KUBECONFIG), and per test a namespace, an in-process emulator on a random port, and the operator
//! binary as a child process watching only that namespace, with its log captured to a file.
#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use identity_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use identity_operator::backend::asgardeo::{AsgardeoClient, AsgardeoConfig, Target};
use identity_operator::backend::{IdentityServer, Secret};
use k8s_openapi::api::core::v1::{Namespace, Secret as KubeSecret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
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

/// Polls `f` until it returns Some or the time is up. This is a wait-for-condition, not a sleep.
pub async fn wait_until<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

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

    /// Waits until condition `type_` of the object has `status`; returns the condition.
    pub async fn wait_condition(
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

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A control plane of a test's own (`scripts/dev-env up --no-emulator` in a temp state dir), for
/// tests that restart the apiserver and must not disturb the shared one. Stopped on drop.
pub struct OwnControlPlane {
    /// The state dir.
    pub dir: PathBuf,
    /// Its admin kubeconfig.
    pub kubeconfig: PathBuf,
}

impl OwnControlPlane {
    /// Starts it (the tools are already built by then).
    pub fn start(name: &str) -> Self {
        // Without a dev environment the tools may not be built: building them here would take
        // many minutes inside a test.
        require_dev_env();
        let dir = std::env::temp_dir().join(format!("io-cp-{name}-{}", random_suffix()));
        let out = dev_env(&dir, &["up", "--no-emulator"]);
        let kubeconfig = out
            .lines()
            .find_map(|l| l.strip_prefix("export KUBECONFIG="))
            .map(PathBuf::from)
            .expect("dev-env prints KUBECONFIG");
        Self { dir, kubeconfig }
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
        dev_env(&self.dir, &["restart-apiserver", "--kill"]);
    }

    /// Stops kube-apiserver (SIGTERM, or SIGKILL with `kill`) and waits until its port is free, so
    /// that a following start cannot race the old process for the port.
    pub fn stop_apiserver(&self, kill: bool) {
        let args: &[&str] = if kill {
            &["stop-apiserver", "--kill"]
        } else {
            &["stop-apiserver"]
        };
        dev_env(&self.dir, args);
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
        dev_env(&self.dir, &["start-apiserver"]);
    }

    /// The apiserver's port, from the kubeconfig's server URL.
    pub fn api_port(&self) -> u16 {
        let kc = std::fs::read_to_string(&self.kubeconfig).expect("kubeconfig");
        kc.lines()
            .find_map(|l| l.trim().strip_prefix("server: https://127.0.0.1:"))
            .and_then(|p| p.trim().parse().ok())
            .expect("server: https://127.0.0.1:PORT in the kubeconfig")
    }
}

fn dev_env(dir: &std::path::Path, args: &[&str]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dev-env");
    let out = Command::new(script)
        .args(args)
        .env("DEV_ENV_DIR", dir)
        .stdin(Stdio::null())
        .output()
        .expect("dev-env runs");
    assert!(
        out.status.success(),
        "dev-env {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for OwnControlPlane {
    fn drop(&mut self) {
        let _ =
            Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dev-env"))
                .args(["down"])
                .env("DEV_ENV_DIR", &self.dir)
                .stdin(Stdio::null())
                .output();
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.kill_operator();
    }
}
