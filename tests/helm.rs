//! The Helm chart (charts/identity-operator) against the real control plane of `scripts/dev-env up`:
//! `helm lint`, `helm template` checked by a server-side dry run, `helm install`, the ServiceAccount's
//! permissions against [`CALLS`] (every Kubernetes API call the operator makes), and the operator
//! itself running on that ServiceAccount's token.
//!
//! There is no kubelet: the installed pods stay Pending. That they are created at all shows the pod
//! template passes the `restricted` Pod Security Standard (the namespaces enforce it).

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestEnv;
use serde_json::{json, Value};

/// Where the operator's API calls are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// In every namespace it watches (all, or each of `watchNamespaces`).
    Watched,
    /// In the release namespace, for leader election only.
    Lease,
}

/// One Kubernetes API call the operator makes.
struct Call {
    verb: &'static str,
    /// API group ("" for the core group).
    group: &'static str,
    resource: &'static str,
    subresource: Option<&'static str>,
    /// When the rule may be limited to one object name.
    name: Option<&'static str>,
    scope: Scope,
    /// The code that makes the call.
    code: &'static str,
}

const fn call(
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    code: &'static str,
) -> Call {
    Call {
        verb,
        group,
        resource,
        subresource: None,
        name: None,
        scope: Scope::Watched,
        code,
    }
}

const fn status(resource: &'static str, code: &'static str) -> Call {
    Call {
        subresource: Some("status"),
        ..call("patch", GROUP, resource, code)
    }
}

const fn lease(verb: &'static str, name: Option<&'static str>) -> Call {
    Call {
        name,
        scope: Scope::Lease,
        ..call(
            verb,
            "coordination.k8s.io",
            "leases",
            "src/leader.rs try_acquire_or_renew, release",
        )
    }
}

const GROUP: &str = "identity-operator.io";

/// EVERY Kubernetes API call of the operator, and the code that makes it. The chart's RBAC
/// (templates/_helpers.tpl `identity-operator.rules`, templates/rbac.yaml) must grant each of them
/// and the tests below check that it does. A new call in the code goes here first.
const CALLS: &[Call] = &[
    // Caches and watches of the three kinds: watcher() in src/run.rs (primary,
    // Controller::watches) — list + watch.
    call(
        "list",
        GROUP,
        "identitybackends",
        "src/run.rs primary/watches",
    ),
    call(
        "watch",
        GROUP,
        "identitybackends",
        "src/run.rs primary/watches",
    ),
    call(
        "list",
        GROUP,
        "identityproviders",
        "src/run.rs primary/watches",
    ),
    call(
        "watch",
        GROUP,
        "identityproviders",
        "src/run.rs primary/watches",
    ),
    call("list", GROUP, "applications", "src/run.rs primary/watches"),
    call("watch", GROUP, "applications", "src/run.rs primary/watches"),
    // A fresh read of a referenced IdP when the cache lags behind a trigger.
    call(
        "get",
        GROUP,
        "identityproviders",
        "src/controller/application.rs referenced_idp",
    ),
    // A fresh read of the named backend when the cache lags behind a just created one.
    call(
        "get",
        GROUP,
        "identitybackends",
        "src/controller/managed.rs find_backend",
    ),
    // Finalizer add/remove (kube::runtime::finalizer, JSON patch) and the create-pending /
    // secret-version annotations (merge patch).
    call(
        "patch",
        GROUP,
        "identityproviders",
        "src/controller/identity_provider.rs finalizer, mark_pending, secret version",
    ),
    call(
        "patch",
        GROUP,
        "applications",
        "src/controller/application.rs finalizer, mark_pending",
    ),
    call(
        "patch",
        GROUP,
        "identitybackends",
        "src/controller/identity_backend.rs in-use finalizer",
    ),
    // Status by server-side apply.
    status("identitybackends", "src/controller/mod.rs apply_status"),
    status("identityproviders", "src/controller/mod.rs apply_status"),
    status("applications", "src/controller/mod.rs apply_status"),
    // The credentials Secret's controller ownerReference sets blockOwnerDeletion, which the
    // OwnerReferencesPermissionEnforcement admission plugin allows only with this.
    Call {
        subresource: Some("finalizers"),
        ..call(
            "update",
            GROUP,
            "applications",
            "src/controller/application.rs write_secret (controller_owner_ref)",
        )
    },
    // Secrets: metadata-only watch, reads of referenced Secrets, and the Application's credentials
    // Secret by server-side apply (which creates it the first time: create + patch).
    call("list", "", "secrets", "src/run.rs meta_api watcher"),
    call("watch", "", "secrets", "src/run.rs meta_api watcher"),
    call(
        "get",
        "",
        "secrets",
        "src/controller/mod.rs read_secret; application.rs write_secret get_opt",
    ),
    call(
        "create",
        "",
        "secrets",
        "src/controller/application.rs write_secret (server-side apply)",
    ),
    call(
        "patch",
        "",
        "secrets",
        "src/controller/application.rs write_secret (server-side apply)",
    ),
    // Events: kube::runtime::events::Recorder creates an events.k8s.io/v1 Event, then patches its
    // series when it repeats.
    call(
        "create",
        "events.k8s.io",
        "events",
        "src/controller/mod.rs publish (Recorder)",
    ),
    call(
        "patch",
        "events.k8s.io",
        "events",
        "src/controller/mod.rs publish (Recorder)",
    ),
    // Leader election on the `identity-operator` Lease (get_opt, create, replace).
    lease("create", None),
    lease("get", Some("identity-operator")),
    lease("update", Some("identity-operator")),
];

/// Things the operator never does, so its ServiceAccount must not be able to: (verb, resource).
const DENIED_IN_WATCHED: &[(&str, &str)] = &[
    ("delete", "secrets"),
    ("update", "secrets"),
    ("deletecollection", "secrets"),
    ("get", "pods"),
    ("create", "pods"),
    ("get", "configmaps"),
    ("list", "deployments.apps"),
    ("create", "identityproviders.identity-operator.io"),
    ("delete", "identityproviders.identity-operator.io"),
    ("delete", "applications.identity-operator.io"),
    ("update", "applications.identity-operator.io"),
    ("delete", "identitybackends.identity-operator.io"),
    ("delete", "events.events.k8s.io"),
    ("create", "events"),
    ("create", "leases.coordination.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
];

/// Cluster-scoped things the ServiceAccount must never have.
const DENIED_CLUSTER: &[(&str, &str)] = &[
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("list", "namespaces"),
    ("list", "nodes"),
    ("impersonate", "serviceaccounts"),
];

fn chart() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("charts/identity-operator")
        .display()
        .to_string()
}

/// A tool from TOOLS_BIN (scripts/dev-env), else from PATH; skips this test binary when it is in
/// neither (no dev environment: helm and kubectl come from scripts/install-tools).
fn tool(name: &str) -> Command {
    let path = std::env::var_os("TOOLS_BIN")
        .map(|d| PathBuf::from(d).join(name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name));
    let found = path.is_absolute()
        || std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    if !found {
        common::skip_binary(&format!("no {name} (TOOLS_BIN unset and not on PATH)"));
    }
    Command::new(path)
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a command that must succeed; returns its stdout.
fn must(cmd: Command, stdin: Option<&str>) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd, stdin);
    assert!(out.ok, "{shown} failed:\n{}\n{}", out.stdout, out.stderr);
    out.stdout
}

fn helm(args: &[&str]) -> Command {
    let mut c = tool("helm");
    c.args(args);
    c
}

fn kubectl(args: &[&str]) -> Command {
    let mut c = tool("kubectl");
    c.args(args);
    c
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// A fresh namespace that enforces the `restricted` Pod Security Standard.
fn namespace(prefix: &str) -> String {
    let ns = format!("{prefix}-{}", suffix());
    must(kubectl(&["create", "namespace", &ns]), None);
    must(
        kubectl(&[
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
        ]),
        None,
    );
    ns
}

fn delete_namespaces(nss: &[&str]) {
    for ns in nss {
        let _ = run(kubectl(&["delete", "namespace", ns, "--wait=false"]), None);
    }
}

/// The non-default values every test uses: the watched namespaces, two replicas (leader election),
/// JSON logs and a ServiceMonitor (whose CRD this cluster does not have).
fn non_default(watch: &[&str]) -> Vec<String> {
    [
        format!("watchNamespaces={{{}}}", watch.join(",")),
        "replicaCount=2".into(),
        "logFormat=json".into(),
        "serviceMonitor.enabled=true".into(),
        "resyncInterval=1m".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect()
}

fn template(release: &str, ns: &str, extra: &[String]) -> Vec<Value> {
    let mut args = vec!["template", release, &chart(), "--namespace", ns]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let yaml = must(helm(&args), None);
    docs(&yaml)
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .filter_map(|d| {
            let v: Value = serde::Deserialize::deserialize(d).expect("rendered YAML parses");
            (!v.is_null()).then_some(v)
        })
        .collect()
}

fn kinds(objs: &[Value]) -> BTreeSet<String> {
    objs.iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["namespace"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

fn find<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

fn container(objs: &[Value]) -> &Value {
    &find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

fn args_of(objs: &[Value]) -> Vec<String> {
    container(objs)["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn lint_with_default_and_non_default_values() {
    must(helm(&["lint", "--strict", &chart()]), None);
    let mut args = vec!["lint".to_string(), "--strict".into(), chart()];
    args.extend(non_default(&["team-a", "team-b"]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    must(helm(&args), None);

    // values.schema.json rejects what the operator would refuse at startup, and resync intervals
    // below the 30 s minimum.
    for bad in [
        "logFormat=xml",
        "resyncInterval=soon",
        "resyncInterval=29s",
        "resyncInterval=5",
        "resyncInterval=500ms",
        "resyncInterval=0m",
        "watchNamespaces={Team_A}",
        "watchNamespaces={a,a}",
        "leaderElection.leaseDuration=1500ms",
        "replicaCount=-1",
        "unknownValue=1",
    ] {
        let out = run(helm(&["lint", &chart(), "--set", bad]), None);
        assert!(!out.ok, "helm lint accepted {bad}");
    }
    // `helm lint` only reports a template's `fail` as info; install and template refuse it.
    let out = run(
        helm(&["template", "r", &chart(), "--set", "watchNamespace=team-a"]),
        None,
    );
    assert!(!out.ok, "helm template accepted the old watchNamespace");
    assert!(
        out.stderr.contains("replaced by watchNamespaces"),
        "the old value says what replaced it: {}",
        out.stderr
    );
    for good in [
        "resyncInterval=30s",
        "resyncInterval=90",
        "resyncInterval=1m",
        "resyncInterval=2h",
    ] {
        let out = run(helm(&["lint", &chart(), "--set", good]), None);
        assert!(out.ok, "helm lint refused {good}: {}", out.stdout);
    }
}

#[test]
fn template_defaults_watch_everything_with_one_replica() {
    let objs = template("rel", "ops", &[]);
    assert_eq!(
        kinds(&objs),
        [
            "ClusterRole/-",
            "ClusterRoleBinding/-",
            "Deployment/ops",
            "Service/ops",
            "ServiceAccount/ops",
            "ValidatingAdmissionPolicy/-",
            "ValidatingAdmissionPolicyBinding/-"
        ]
        .map(String::from)
        .into()
    );
    let args = args_of(&objs);
    assert_eq!(args[0], "run");
    for want in [
        "--metrics-addr=0.0.0.0:8080",
        "--log-format=text",
        "--resync-interval=5m",
    ] {
        assert!(args.contains(&want.to_string()), "{args:?}");
    }
    assert!(!args.iter().any(|a| a.starts_with("--leader-elect")));
    assert!(!args.iter().any(|a| a.starts_with("--namespace")));

    let c = container(&objs);
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert!(c["resources"]["requests"]["memory"].is_string());
    let env: Vec<(String, String)> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["valueFrom"]["fieldRef"]["fieldPath"]
                    .as_str()?
                    .to_string(),
            ))
        })
        .collect();
    assert!(env.contains(&("POD_NAME".into(), "metadata.name".into())));
    assert!(env.contains(&("POD_NAMESPACE".into(), "metadata.namespace".into())));
    assert_eq!(
        find(&objs, "ClusterRoleBinding")["subjects"][0],
        json!({"kind": "ServiceAccount", "name": "rel-identity-operator", "namespace": "ops"})
    );
    admission_policies_as_generated(&objs, &[]);
}

/// The chart's admission policies: `identity-operator admission-policy`'s (the drift test keeps
/// the chart's copy equal to it) renamed after the release, bound to `watch` (all when empty).
fn admission_policies_as_generated(objs: &[Value], watch: &[&str]) {
    let want = identity_operator::admission::objects(&identity_operator::admission::Options {
        name: "rel-identity-operator".into(),
        namespaces: watch.iter().map(|n| n.to_string()).collect(),
    });
    for w in &want {
        let have = objs
            .iter()
            .find(|o| o["kind"] == w["kind"] && o["metadata"]["name"] == w["metadata"]["name"])
            .unwrap_or_else(|| panic!("{} {} not rendered", w["kind"], w["metadata"]["name"]));
        assert_eq!(have["spec"], w["spec"]);
    }
    let off = template(
        "rel",
        "ops",
        &["--set".into(), "admissionPolicy.enabled=false".into()],
    );
    assert!(
        !kinds(&off)
            .iter()
            .any(|k| k.starts_with("ValidatingAdmissionPolicy")),
        "admissionPolicy.enabled=false ships none"
    );
}

#[test]
fn template_non_default_values_scope_rbac_to_the_listed_namespaces() {
    let objs = template("rel", "ops", &non_default(&["team-a", "team-b"]));
    assert_eq!(
        kinds(&objs),
        [
            "Deployment/ops",
            "Role/ops",
            "Role/team-a",
            "Role/team-b",
            "RoleBinding/ops",
            "RoleBinding/team-a",
            "RoleBinding/team-b",
            "Service/ops",
            "ServiceAccount/ops",
            "ServiceMonitor/ops",
            "ValidatingAdmissionPolicy/-",
            "ValidatingAdmissionPolicyBinding/-"
        ]
        .map(String::from)
        .into(),
        "no ClusterRole when namespaces are listed; a ServiceMonitor even without its CRD"
    );
    admission_policies_as_generated(&objs, &["team-a", "team-b"]);
    for ns in ["team-a", "team-b"] {
        let binding = objs
            .iter()
            .find(|o| o["kind"] == "RoleBinding" && o["metadata"]["namespace"] == ns)
            .expect("binding");
        assert_eq!(binding["roleRef"]["name"], "rel-identity-operator");
        assert_eq!(
            binding["subjects"][0],
            json!({"kind": "ServiceAccount", "name": "rel-identity-operator", "namespace": "ops"})
        );
    }
    let args = args_of(&objs);
    for want in [
        "--leader-elect",
        "--lease-namespace=ops",
        "--lease-duration=15s",
        "--renew-deadline=10s",
        "--retry-period=2s",
        "--namespace=team-a,team-b",
        "--log-format=json",
        "--resync-interval=1m",
    ] {
        assert!(args.contains(&want.to_string()), "{want} not in {args:?}");
    }
    assert_eq!(find(&objs, "Deployment")["spec"]["replicas"], 2);
    let sm = find(&objs, "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    let svc = find(&objs, "Service");
    for (k, v) in sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("labels")
    {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "ServiceMonitor selects the Service"
        );
    }

    // Leader election alone (one replica) also gets the Lease Role.
    let objs = template(
        "rel",
        "ops",
        &["--set".into(), "leaderElection.enabled=true".into()],
    );
    assert!(kinds(&objs).contains("Role/ops"));
    assert!(args_of(&objs).contains(&"--leader-elect".to_string()));
}

/// Everything `helm template` renders (CRDs included, the ServiceMonitor left out: its CRD is not
/// in this cluster) is accepted by the real apiserver in a server-side dry run.
#[test]
fn rendered_objects_pass_a_server_side_dry_run() {
    common::require_dev_env();
    let ns = namespace("helm-dry");
    let watch = namespace("helm-dry-w");
    for extra in [vec!["--include-crds".to_string()], {
        let mut v = non_default(&[&watch]);
        v.push("--include-crds".into());
        v
    }] {
        let objs = template(&format!("dry-{}", suffix()), &ns, &extra);
        assert!(objs.iter().any(|o| o["kind"] == "CustomResourceDefinition"));
        let yaml = objs
            .iter()
            .filter(|o| o["kind"] != "ServiceMonitor")
            .map(|o| serde_yaml::to_string(o).expect("yaml"))
            .collect::<Vec<_>>()
            .join("---\n");
        let out = must(
            kubectl(&["apply", "--dry-run=server", "-f", "-"]),
            Some(&yaml),
        );
        assert!(out.contains("(server dry run)"), "{out}");
    }
    delete_namespaces(&[&ns, &watch]);
}

fn sa_user(ns: &str, sa: &str) -> String {
    format!("system:serviceaccount:{ns}:{sa}")
}

/// `kubectl auth can-i` for the ServiceAccount; `ns` None = all namespaces.
fn can_i(user: &str, verb: &str, resource: &str, sub: Option<&str>, ns: Option<&str>) -> bool {
    let mut args = vec!["auth", "can-i", verb, resource, "--as", user];
    if let Some(s) = sub {
        args.extend(["--subresource", s]);
    }
    match ns {
        Some(ns) => args.extend(["-n", ns]),
        None => args.push("--all-namespaces"),
    }
    let out = run(kubectl(&args), None);
    match out.stdout.trim() {
        "yes" => true,
        "no" => false,
        other => panic!("kubectl {args:?}: {other} {}", out.stderr),
    }
}

fn resource_of(c: &Call) -> String {
    let r = if c.group.is_empty() {
        c.resource.to_string()
    } else {
        format!("{}.{}", c.resource, c.group)
    };
    match c.name {
        Some(n) => format!("{r}/{n}"),
        None => r,
    }
}

/// Every call of [`CALLS`] with `scope` is allowed (or, with `allowed` false, denied) in `ns`.
fn check_calls(user: &str, scope: Scope, ns: Option<&str>, allowed: bool) {
    let mut wrong = Vec::new();
    for c in CALLS.iter().filter(|c| c.scope == scope) {
        let r = resource_of(c);
        if can_i(user, c.verb, &r, c.subresource, ns) != allowed {
            wrong.push(format!(
                "{} {r}{} ({})",
                c.verb,
                c.subresource.map(|s| format!("/{s}")).unwrap_or_default(),
                c.code
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{user} in {ns:?} should {}be allowed:\n  {}",
        if allowed { "" } else { "not " },
        wrong.join("\n  ")
    );
}

fn check_denied(user: &str, ns: Option<&str>) {
    for (verb, resource) in DENIED_IN_WATCHED {
        assert!(
            !can_i(user, verb, resource, None, ns),
            "{user} may {verb} {resource} in {ns:?}"
        );
    }
    for (verb, resource) in DENIED_CLUSTER {
        assert!(
            !can_i(user, verb, resource, None, None),
            "{user} may {verb} {resource} cluster-wide"
        );
    }
}

fn install(release: &str, ns: &str, extra: &[String]) -> String {
    let mut args = vec![
        "install".to_string(),
        release.into(),
        chart(),
        "--namespace".into(),
        ns.into(),
    ];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = must(helm(&args), None);
    println!("$ helm {}\n{out}", args.join(" "));
    out
}

fn get_json(args: &[&str]) -> Value {
    serde_json::from_str(&must(kubectl(args), None)).expect("kubectl json")
}

/// The pods of the release were created: the pod template passed admission, including the
/// `restricted` Pod Security Standard of the namespace. (They stay Pending: no kubelet here.)
async fn wait_for_pods(ns: &str, release: &str, count: usize) {
    let selector = format!("app.kubernetes.io/instance={release}");
    let found = common::wait_until(Duration::from_secs(60), || {
        let selector = selector.clone();
        async move {
            let pods = get_json(&["get", "pods", "-n", ns, "-l", &selector, "-o", "json"]);
            (pods["items"].as_array().map(Vec::len) == Some(count)).then_some(())
        }
    })
    .await;
    if found.is_none() {
        let events = run(kubectl(&["get", "events", "-n", ns]), None).stdout;
        panic!("{count} pods of {release} not created in {ns}; events:\n{events}");
    }
}

#[tokio::test]
async fn install_cluster_wide_grants_exactly_what_the_code_calls() {
    let client = common::admin_client().await;
    common::install_crds(&client).await;
    let ns = namespace("helm-all");
    let other = namespace("helm-other");
    let release = format!("io-{}", suffix());
    // Without the admission policies: bound cluster-wide they would refuse the JIT disable that
    // the seed scenario of the test beside this one expects the reconciler to hold back
    // (tests/admission.rs covers them, each bound to its own namespace).
    let no_policy = [
        "--set".to_string(),
        "admissionPolicy.enabled=false".to_string(),
    ];
    let out = install(&release, &ns, &no_policy);
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(out.contains("all namespaces (ClusterRole)"), "NOTES: {out}");

    let sa = format!("{release}-identity-operator");
    let dep = get_json(&["get", "deployment", &sa, "-n", &ns, "-o", "json"]);
    assert_eq!(dep["spec"]["replicas"], 1);
    get_json(&["get", "serviceaccount", &sa, "-n", &ns, "-o", "json"]);
    get_json(&[
        "get",
        "service",
        &format!("{sa}-metrics"),
        "-n",
        &ns,
        "-o",
        "json",
    ]);
    let role = get_json(&["get", "clusterrole", &sa, "-o", "json"]);
    assert!(role["rules"].as_array().is_some_and(|r| !r.is_empty()));
    get_json(&["get", "clusterrolebinding", &sa, "-o", "json"]);
    wait_for_pods(&ns, &release, 1).await;

    let user = sa_user(&ns, &sa);
    check_calls(&user, Scope::Watched, Some(&other), true);
    check_calls(&user, Scope::Watched, None, true);
    // One replica: no leader election, no Lease access.
    check_calls(&user, Scope::Lease, Some(&ns), false);
    check_denied(&user, Some(&other));

    must(helm(&["uninstall", &release, "--namespace", &ns]), None);
    let gone = run(kubectl(&["get", "clusterrole", &sa]), None);
    assert!(!gone.ok, "helm uninstall removes the ClusterRole");
    delete_namespaces(&[&ns, &other]);
}

/// Two watched namespaces and two replicas: the rules hold in both and nowhere else, the Lease in
/// the release namespace only. Then the operator runs on the ServiceAccount's own token (not the admin
/// kubeconfig) through the seed scenario: if the code needs a call the chart does not grant, this
/// fails even when [`CALLS`] was not updated.
#[tokio::test]
async fn install_one_namespace_with_leader_election_and_run_on_its_token() {
    let mut env = TestEnv::new("helm-sa").await;
    let ns = namespace("helm-op");
    let other = namespace("helm-other");
    let second = namespace("helm-second");
    let release = format!("io-{}", suffix());
    // Without the ServiceMonitor: this cluster has no Prometheus Operator CRDs.
    let values: Vec<String> = non_default(&[&env.ns, &second])
        .chunks(2)
        .filter(|kv| kv[1] != "serviceMonitor.enabled=true")
        .flat_map(|kv| kv.to_vec())
        // The seed scenario below expects the reconciler's Block, not admission, to stop the JIT
        // disable (tests/admission.rs covers the policies).
        .chain([
            "--set".to_string(),
            "admissionPolicy.enabled=false".to_string(),
        ])
        .collect();
    let out = install(&release, &ns, &values);
    assert!(out.contains("STATUS: deployed"), "{out}");

    let sa = format!("{release}-identity-operator");
    for ns in [&env.ns, &second] {
        get_json(&["get", "role", &sa, "-n", ns, "-o", "json"]);
        get_json(&["get", "rolebinding", &sa, "-n", ns, "-o", "json"]);
    }
    get_json(&[
        "get",
        "role",
        &format!("{sa}-leader-election"),
        "-n",
        &ns,
        "-o",
        "json",
    ]);
    assert!(
        !run(kubectl(&["get", "clusterrole", &sa]), None).ok,
        "no ClusterRole when one namespace is watched"
    );
    wait_for_pods(&ns, &release, 2).await;

    let user = sa_user(&ns, &sa);
    check_calls(&user, Scope::Watched, Some(&env.ns), true);
    check_calls(&user, Scope::Watched, Some(&second), true);
    check_calls(&user, Scope::Watched, Some(&other), false);
    check_calls(&user, Scope::Watched, None, false);
    check_calls(&user, Scope::Lease, Some(&ns), true);
    check_calls(&user, Scope::Lease, Some(&env.ns), false);
    assert!(!can_i(
        &user,
        "get",
        "leases.coordination.k8s.io/someone-else",
        None,
        Some(&ns)
    ));
    assert!(!can_i(
        &user,
        "delete",
        "leases.coordination.k8s.io/identity-operator",
        None,
        Some(&ns)
    ));
    check_denied(&user, Some(&env.ns));

    // The operator on the ServiceAccount's token, with leader election in the release namespace.
    let kubeconfig = token_kubeconfig(&ns, &sa);
    // Watching both listed namespaces: a watch the chart did not grant in the second one would
    // show as a 403 in the log.
    let mut operator = start_operator_as(&env, &kubeconfig, &ns, &second);
    seed_scenario(&env).await;
    let lease = get_json(&["get", "lease", "identity-operator", "-n", &ns, "-o", "json"]);
    assert_eq!(lease["spec"]["holderIdentity"], "helm-sa-operator");
    let log = env.operator_log();
    let _ = operator.kill();
    let _ = operator.wait();
    // The log is JSON: a denied call shows as a 403 in the client's HTTP span, and as "forbidden"
    // in the error the controller logs.
    let lower = log.to_lowercase();
    assert!(
        log.contains("\"http.status_code\":200"),
        "the log records HTTP status codes (else this check proves nothing)"
    );
    assert!(
        !lower.contains("forbidden") && !log.contains("\"http.status_code\":403"),
        "the operator was denied an API call: add it to CALLS and the chart:\n{}",
        common::tail(&log, 40)
    );

    env.kill_operator();
    must(helm(&["uninstall", &release, "--namespace", &ns]), None);
    delete_namespaces(&[&ns, &other, &second, &env.ns]);
}

/// A kubeconfig for the admin kubeconfig's cluster with a token of `sa` instead of the admin
/// credentials.
fn token_kubeconfig(ns: &str, sa: &str) -> PathBuf {
    let token = must(
        kubectl(&["create", "token", sa, "-n", ns, "--duration=1h"]),
        None,
    );
    let admin = get_json(&[
        "config",
        "view",
        "--raw",
        "--minify",
        "--flatten",
        "-o",
        "json",
    ]);
    let cluster = admin["clusters"][0]["cluster"].clone();
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "dev", "cluster": cluster}],
        "users": [{"name": sa, "user": {"token": token.trim()}}],
        "contexts": [{"name": "sa", "context": {"cluster": "dev", "user": sa, "namespace": ns}}],
        "current-context": "sa",
    });
    let path = std::env::temp_dir().join(format!("kubeconfig-{ns}-{sa}.yaml"));
    std::fs::write(&path, serde_yaml::to_string(&config).expect("yaml")).expect("write kubeconfig");
    path
}

fn start_operator_as(env: &TestEnv, kubeconfig: &PathBuf, release_ns: &str, second: &str) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&env.operator_log)
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_identity-operator"))
        .args([
            "--log-format",
            "json",
            "run",
            "--namespace",
            &format!("{},{second}", env.ns),
            "--resync-interval",
            "3s",
            "--metrics-addr",
            "127.0.0.1:0",
            "--leader-elect",
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", "helm-sa-operator")
        .env("POD_NAMESPACE", release_ns)
        .env("RUST_LOG", "info,identity_operator=debug,kube=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("operator starts")
}

const T: Duration = Duration::from_secs(60);

/// The seed scenario of tests/e2e.rs, short: every kind reaches Ready, the credentials Secret is
/// written, a blocked JIT change raises a conflict Event, and deleting runs the finalizers.
async fn seed_scenario(env: &TestEnv) {
    env.create_backend("asgardeo").await;
    env.apply(
        r#"
apiVersion: v1
kind: Secret
metadata: {name: google-oauth, labels: {identity-operator.io/use: identity-provider-client-secret}}
stringData: {client-secret: google-very-secret-value}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {name: google}
spec:
  backendRef: {name: asgardeo}
  displayName: Google
  google: {clientID: "123.apps.example", clientSecretRef: {name: google-oauth, key: client-secret}}
  jit: {enabled: true, scheme: ProvisionSilently}
  conflictPolicy: Block
---
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {name: payroll}
spec:
  backendRef: {name: asgardeo}
  displayName: Payroll
  oidc: {grantTypes: [authorization_code, refresh_token], callbackURLs: ["https://payroll.example/callback"]}
  credentialsSecret: {name: payroll-oidc}
  loginFlow:
    steps:
      - options: [{authenticator: BasicAuthenticator}, {identityProviderRef: {name: google}}]
      - options: [{authenticator: totp}]
"#,
    )
    .await
    .expect("apply");
    env.ready("IdentityBackend", "asgardeo", T).await;
    env.ready("IdentityProvider", "google", T).await;
    env.ready("Application", "payroll", T).await;
    let creds = env
        .secret_data("payroll-oidc")
        .await
        .expect("credentials Secret written by the operator's ServiceAccount");
    assert!(creds.get("client-secret").is_some_and(|s| !s.is_empty()));

    env.set_spec(
        "IdentityProvider",
        "google",
        json!({"jit": {"enabled": false}}),
    )
    .await;
    env.conflict("IdentityProvider", "google", T).await;
    // A repeated Event is patched (series), a first one created: wait for one of each kind.
    env.wait_event("google", "InterconnectionConflict", T).await;
    env.wait_event("payroll", "Created", T).await;

    env.delete("Application", "payroll").await;
    env.wait_gone("Application", "payroll", T).await;
    env.delete("IdentityProvider", "google").await;
    env.wait_gone("IdentityProvider", "google", T).await;
    assert!(
        env.server()
            .find_application_by_name("Payroll")
            .await
            .expect("list")
            .is_none(),
        "cleanup removed the application from the server"
    );
}

/// webhook.enabled: the Service over every replica, the flags that make the operator serve it,
/// register the configuration and share one certificate Secret, and RBAC for exactly those two
/// objects; nothing of it by default.
#[test]
fn webhook_enabled_renders_its_service_flags_and_rbac() {
    let set = |s: &str| ["--set".to_string(), s.to_string()];
    let objs = template(
        "rel",
        "ops",
        &[set("webhook.enabled=true"), set("watchNamespaces={team-a}")].concat(),
    );
    let args = args_of(&objs);
    for want in [
        "--webhook-listen=0.0.0.0:9443",
        "--webhook-service=ops/rel-identity-operator-webhook:443",
        "--webhook-secret=rel-identity-operator-webhook-tls",
        "--webhook-secret-namespace=ops",
        "--webhook-configuration=rel-identity-operator",
        "--namespace=team-a",
    ] {
        assert!(args.iter().any(|a| a == want), "{want} not in {args:?}");
    }
    let svc = objs
        .iter()
        .find(|o| {
            o["kind"] == "Service" && o["metadata"]["name"] == "rel-identity-operator-webhook"
        })
        .expect("webhook Service");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "webhook");
    let cluster_role = objs
        .iter()
        .find(|o| {
            o["kind"] == "ClusterRole" && o["metadata"]["name"] == "rel-identity-operator-webhook"
        })
        .expect("webhook ClusterRole");
    assert_eq!(
        cluster_role["rules"][1]["resourceNames"],
        serde_json::json!(["rel-identity-operator"])
    );
    let role = objs
        .iter()
        .find(|o| o["kind"] == "Role" && o["metadata"]["name"] == "rel-identity-operator-webhook")
        .expect("webhook Role");
    assert_eq!(role["metadata"]["namespace"], "ops");
    assert_eq!(
        role["rules"][1]["resourceNames"],
        serde_json::json!(["rel-identity-operator-webhook-tls"])
    );
    let off = template("rel", "ops", &[]);
    assert!(!args_of(&off).iter().any(|a| a.starts_with("--webhook")));
    assert!(!off
        .iter()
        .any(|o| o["metadata"]["name"] == "rel-identity-operator-webhook"));
}

/// webhook.certManager.enabled: cert-manager issues the certificate (a self-signed Issuer unless one
/// is named), every replica mounts it and serves it from files, and the operator gets no rights on
/// any certificate Secret.
#[test]
fn webhook_with_cert_manager_mounts_its_certificate_and_grants_no_secret_rights() {
    let set = |s: &str| ["--set".to_string(), s.to_string()];
    let on = [
        set("webhook.enabled=true"),
        set("webhook.certManager.enabled=true"),
    ]
    .concat();
    let objs = template("rel", "ops", &on);
    let args = args_of(&objs);
    assert!(
        args.iter()
            .any(|a| a == "--webhook-cert-dir=/etc/identity-operator/webhook-tls"),
        "{args:?}"
    );
    assert!(
        !args.iter().any(|a| a.starts_with("--webhook-secret")),
        "{args:?}"
    );
    let cert = objs
        .iter()
        .find(|o| o["kind"] == "Certificate")
        .expect("Certificate");
    assert_eq!(
        cert["spec"]["secretName"],
        "rel-identity-operator-webhook-cert"
    );
    assert_eq!(
        cert["spec"]["dnsNames"][0],
        "rel-identity-operator-webhook.ops.svc"
    );
    assert_eq!(
        cert["spec"]["issuerRef"]["name"],
        "rel-identity-operator-webhook"
    );
    assert!(objs
        .iter()
        .any(|o| o["kind"] == "Issuer" && o["spec"]["selfSigned"].is_object()));
    let c = container(&objs);
    assert_eq!(
        c["volumeMounts"][0]["mountPath"],
        "/etc/identity-operator/webhook-tls"
    );
    let pod = &objs
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("Deployment")["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "rel-identity-operator-webhook-cert"
    );
    assert!(
        !objs.iter().any(
            |o| o["kind"] == "Role" && o["metadata"]["name"] == "rel-identity-operator-webhook"
        ),
        "no Role for a certificate Secret the operator never writes"
    );

    // A named ClusterIssuer: no Issuer of the chart's own.
    let named = template(
        "rel",
        "ops",
        &[
            on.clone(),
            set("webhook.certManager.issuerRef.name=corp-ca").to_vec(),
            set("webhook.certManager.issuerRef.kind=ClusterIssuer").to_vec(),
        ]
        .concat(),
    );
    let cert = named
        .iter()
        .find(|o| o["kind"] == "Certificate")
        .expect("Certificate");
    assert_eq!(cert["spec"]["issuerRef"]["name"], "corp-ca");
    assert_eq!(cert["spec"]["issuerRef"]["kind"], "ClusterIssuer");
    assert!(!named.iter().any(|o| o["kind"] == "Issuer"));
    // Off by default: nothing of cert-manager.
    let plain = template("rel", "ops", &set("webhook.enabled=true"));
    assert!(!plain.iter().any(|o| o["kind"] == "Certificate"));
    assert!(container(&plain)["volumeMounts"].is_null());
    let mut lint = vec!["lint".to_string(), "--strict".into(), chart()];
    lint.extend(on);
    let lint: Vec<&str> = lint.iter().map(String::as_str).collect();
    must(helm(&lint), None);
}

/// webhook.enabled on the ServiceAccount's own token: the chart's RBAC is enough for the operator to
/// create the certificate Secret and the ValidatingWebhookConfiguration, and the apiserver then
/// refuses a conflicting Application through it. (The URL form of --webhook-listen: this control
/// plane has no cluster network to reach the chart's Service.)
#[tokio::test]
async fn install_with_the_webhook_and_run_it_on_the_service_accounts_token() {
    let env = TestEnv::new("helm-hook").await;
    let ns = namespace("helm-hook-op");
    let release = format!("wh-{}", suffix());
    let fullname = format!("{release}-identity-operator");
    let values: Vec<String> = [
        format!("watchNamespaces={{{}}}", env.ns),
        "webhook.enabled=true".into(),
        "admissionPolicy.enabled=false".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect();
    let out = install(&release, &ns, &values);
    assert!(out.contains("STATUS: deployed"), "{out}");
    let kubeconfig = token_kubeconfig(&ns, &fullname);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&env.operator_log)
        .expect("log file");
    let mut operator = Command::new(env!("CARGO_BIN_EXE_identity-operator"))
        .args(["--log-format", "json", "run", "--namespace", &env.ns])
        .args(["--metrics-addr", "127.0.0.1:0", "--resync-interval", "3s"])
        .args(["--webhook-listen", &format!("127.0.0.1:{port}")])
        .args(["--webhook-secret", &format!("{fullname}-webhook-tls")])
        .args(["--webhook-secret-namespace", &ns])
        .args(["--webhook-configuration", &fullname])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info,identity_operator=debug,kube=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("operator starts");

    env.create_backend("asgardeo").await;
    env.apply(
        r#"
apiVersion: v1
kind: Secret
metadata: {name: google-oauth, labels: {identity-operator.io/use: identity-provider-client-secret}}
stringData: {client-secret: google-very-secret-value}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {name: google}
spec:
  backendRef: {name: asgardeo}
  displayName: Google
  google: {clientID: "123.apps.example", clientSecretRef: {name: google-oauth, key: client-secret}}
  jit: {enabled: false}
  conflictPolicy: Block
"#,
    )
    .await
    .expect("idp");
    env.ready("IdentityProvider", "google", T).await;
    let app = r#"
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {name: payroll}
spec:
  backendRef: {name: asgardeo}
  displayName: Payroll
  loginFlow:
    steps:
      - options: [{identityProviderRef: {name: google}}]
      - options: [{authenticator: totp}]
"#;
    let refused = common::wait_until(T, || async {
        env.apply(app)
            .await
            .err()
            .filter(|e| e.contains("applications.identity-operator.io"))
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "never refused; log:\n{}",
            common::tail(&env.operator_log(), 30)
        )
    });
    assert!(refused.contains("step 2 offers totp"), "{refused}");
    get_json(&[
        "get",
        "secret",
        &format!("{fullname}-webhook-tls"),
        "-n",
        &ns,
        "-o",
        "json",
    ]);
    let _ = operator.kill();
    let _ = operator.wait();
    let log = env.operator_log();
    assert!(
        !log.to_lowercase().contains("forbidden") && !log.contains("\"http.status_code\":403"),
        "the operator was denied an API call:\n{}",
        common::tail(&log, 40)
    );
    let _ = run(
        kubectl(&["delete", "validatingwebhookconfiguration", &fullname]),
        None,
    );
    must(helm(&["uninstall", &release, "--namespace", &ns]), None);
    delete_namespaces(&[&ns, &env.ns]);
}
