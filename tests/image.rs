//! The image `scripts/image` builds, run with podman the way the chart runs it, against the real
//! control plane of `scripts/dev-env up`: the chart is installed (ServiceAccount, RBAC), its
//! Deployment's pod settings are turned into `podman run` flags (user, read-only root filesystem,
//! dropped capabilities, no privilege escalation, args, env, memory limit, the ServiceAccount token
//! where in-cluster config reads it), and the seed scenario of `examples/jit-on` converges through
//! the container. What the kernel then shows for the container's process (uid, capabilities,
//! no_new_privs, seccomp, a read-only `/`) is checked, not only the flags.
//!
//! Needs podman, runc and the image in local storage (`scripts/image`); `scripts/test` builds it
//! and sets IMAGE_TEST=required, so that a missing image fails there instead of skipping.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestEnv;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool from TOOLS_BIN (scripts/dev-env), else from PATH.
fn tool(name: &str) -> Command {
    let path = std::env::var_os("TOOLS_BIN")
        .map(|d| PathBuf::from(d).join(name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name));
    Command::new(path)
}

fn output(mut cmd: Command) -> (bool, String, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a command that must succeed; returns its stdout. (Never used with a secret in the args.)
fn must(cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let (ok, stdout, stderr) = output(cmd);
    assert!(ok, "{shown} failed:\n{stdout}\n{stderr}");
    stdout
}

fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The reference `scripts/image` tags, if that image is in local storage; else why not. With
/// IMAGE_TEST=required (scripts/test) a missing piece fails the test instead.
fn image_or_skip() -> Option<String> {
    let reference = must(cmd(
        &repo().join("scripts/image").display().to_string(),
        &["ref"],
    ))
    .trim()
    .to_string();
    let missing = ["podman", "runc"]
        .into_iter()
        .find(|p| !on_path(p))
        .map(|p| format!("{p} not found (Debian: apt-get install podman runc buildah)"))
        .or_else(|| {
            let (present, _, _) = output(cmd("podman", &["image", "exists", &reference]));
            (!present).then(|| format!("{reference} not in local storage (run scripts/image)"))
        });
    match missing {
        None => Some(reference),
        Some(why) if std::env::var("IMAGE_TEST").as_deref() == Ok("required") => {
            panic!("IMAGE_TEST=required but {why}")
        }
        Some(why) => {
            // Straight to stderr: the test harness captures eprintln! of a passing test.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "image test skipped: {why}");
            None
        }
    }
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A container removed on drop, whatever the test's outcome.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = output(cmd("podman", &["rm", "--force", "--time", "5", &self.0]));
    }
}

/// `kubernetes.io/serviceaccount` as the kubelet projects it: token, ca.crt and namespace, readable
/// by the pod's fsGroup only.
fn service_account_dir(ns: &str, sa: &str, fs_group: u64) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("io-image-sa-")
        .tempdir()
        .expect("tempdir");
    let mut create = tool("kubectl");
    create.args(["create", "token", sa, "-n", ns, "--duration=1h"]);
    let token = must(create);
    let mut view = tool("kubectl");
    view.args([
        "config",
        "view",
        "--raw",
        "--minify",
        "--flatten",
        "-o",
        "jsonpath={.clusters[0].cluster.certificate-authority-data}",
    ]);
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(must(view).trim())
        .expect("CA of the kubeconfig");
    for (name, data) in [
        ("token", token.trim().as_bytes()),
        ("ca.crt", &ca[..]),
        ("namespace", ns.as_bytes()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, data).expect("write");
        set_group_readable(&path, fs_group, 0o640);
    }
    set_group_readable(dir.path(), fs_group, 0o750);
    dir
}

fn set_group_readable(path: &Path, gid: u64, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::os::unix::fs::chown(path, None, Some(gid as u32)).expect("chown (the test runs as root)");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The kube-apiserver's port, from the admin kubeconfig (scripts/dev-env serves on 127.0.0.1).
fn apiserver_host_port() -> (String, String) {
    let mut view = tool("kubectl");
    view.args([
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let server = must(view);
    let url = url::Url::parse(server.trim()).expect("server URL");
    (
        url.host_str().expect("host").to_string(),
        url.port_or_known_default().expect("port").to_string(),
    )
}

/// `podman run` flags for the rendered Deployment's container, as a kubelet would run it. Each pod
/// and container setting of the chart is either mapped or rejected here, so a new one in the chart
/// fails this test until it is handled.
fn podman_flags(pod: &Value, pod_name: &str, release_ns: &str, sa_dir: &Path) -> Vec<String> {
    let c = &pod["containers"][0];
    let psc = &pod["securityContext"];
    let sc = &c["securityContext"];
    let mut f: Vec<String> = Vec::new();
    fn push(f: &mut Vec<String>, flag: &str, value: String) {
        f.push(flag.to_string());
        f.push(value);
    }
    let user = sc["runAsUser"].as_u64().or(psc["runAsUser"].as_u64());
    let group = sc["runAsGroup"].as_u64().or(psc["runAsGroup"].as_u64());
    let user = user.expect("the chart sets runAsUser");
    assert_ne!(user, 0, "runAsNonRoot");
    push(
        &mut f,
        "--user",
        format!("{user}:{}", group.unwrap_or(user)),
    );
    if let Some(g) = psc["fsGroup"].as_u64() {
        push(&mut f, "--group-add", g.to_string());
    }
    if sc["readOnlyRootFilesystem"] == true {
        // podman's --read-only alone mounts writable tmpfs on /tmp, /run and /var/tmp; a kubelet
        // does not.
        f.extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
    }
    for cap in sc["capabilities"]["drop"].as_array().into_iter().flatten() {
        push(&mut f, "--cap-drop", cap.as_str().expect("cap").to_string());
    }
    assert!(
        sc["capabilities"]["add"].is_null(),
        "capabilities.add is not mapped"
    );
    if sc["allowPrivilegeEscalation"] == false {
        push(&mut f, "--security-opt", "no-new-privileges".into());
    }
    for profile in [&sc["seccompProfile"], &psc["seccompProfile"]] {
        // podman's default seccomp profile is the container runtime's default.
        assert!(
            profile.is_null() || profile["type"] == "RuntimeDefault",
            "seccomp {profile} is not mapped"
        );
    }
    if let Some(mem) = c["resources"]["limits"]["memory"].as_str() {
        let mib = mem
            .strip_suffix("Mi")
            .unwrap_or_else(|| panic!("memory limit {mem} not in Mi"));
        push(&mut f, "--memory", format!("{mib}m"));
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().expect("env name");
        let value = match (
            &e["value"],
            e["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        ) {
            (Value::String(v), _) => v.clone(),
            (_, Some("metadata.name")) => pod_name.to_string(),
            (_, Some("metadata.namespace")) => release_ns.to_string(),
            other => panic!("env {name}: {other:?} is not mapped"),
        };
        push(&mut f, "--env", format!("{name}={value}"));
    }
    // What a kubelet adds: the apiserver's Service address (here the host's loopback, reached
    // through the host network, which the serving certificate names) and the token.
    let (host, port) = apiserver_host_port();
    push(&mut f, "--env", format!("KUBERNETES_SERVICE_HOST={host}"));
    push(&mut f, "--env", format!("KUBERNETES_SERVICE_PORT={port}"));
    push(
        &mut f,
        "--volume",
        format!(
            "{}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
            sa_dir.display()
        ),
    );
    // A file per container, as a kubelet's CRI keeps them (podman's default here is journald,
    // which this machine does not run).
    push(&mut f, "--log-driver", "k8s-file".into());
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    // IfNotPresent, and here it must be present: no registry is reachable.
    push(&mut f, "--pull", "never".into());
    f
}

fn manifest_objects(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .filter_map(|d| {
            let v: Value = serde::Deserialize::deserialize(d).expect("rendered YAML parses");
            (!v.is_null()).then_some(v)
        })
        .collect()
}

fn podman_json(args: &[&str]) -> Value {
    let v: Value = serde_json::from_str(&must(cmd("podman", args))).expect("podman json");
    v.as_array().and_then(|a| a.first()).cloned().unwrap_or(v)
}

/// A `Name: value` line of /proc/PID/status.
fn proc_status(pid: u64, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} not in /proc/{pid}/status"))
        .trim()
        .to_string()
}

async fn http_code(url: &str) -> Option<u16> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    Some(client.get(url).send().await.ok()?.status().as_u16())
}

/// examples/jit-on in the test's namespace, its backend pointing at the test's emulator (as
/// scripts/demo does).
fn example(file: &str, ns: &str) -> String {
    let yaml = std::fs::read_to_string(repo().join("examples/jit-on").join(file)).expect("example");
    manifest_objects(&yaml)
        .into_iter()
        .map(|mut doc| {
            assert!(doc["metadata"]["namespace"].is_string(), "{file}: {doc}");
            doc["metadata"]["namespace"] = ns.into();
            serde_yaml::to_string(&doc).expect("yaml")
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[tokio::test]
async fn runs_under_the_charts_pod_settings_and_converges_the_seed_scenario() {
    let Some(image) = image_or_skip() else {
        return;
    };
    let env = TestEnv::new("image").await;
    let release_ns = format!("image-op-{}", suffix());
    must({
        let mut c = tool("kubectl");
        c.args(["create", "namespace", &release_ns]);
        c
    });
    let release = format!("io-{}", suffix());
    let metrics_port = free_port();
    let values = [
        format!("watchNamespaces={{{}}}", env.ns),
        "leaderElection.enabled=true".into(),
        "logFormat=json".into(),
        // the host network: the chart's default 8080 may be taken on this machine
        format!("metrics.port={metrics_port}"),
        // This test proves the reconciler's Block inside the container (the patch below must reach
        // the cluster). With the chart's admission policies on, whether that patch is refused at
        // admission depended on whether the operator had written status.jitRequiredBy yet: a race.
        // The policies have their own tests (tests/admission.rs, tests/helm.rs).
        "admissionPolicy.enabled=false".into(),
    ];
    let mut install = tool("helm");
    install.args([
        "install",
        &release,
        &repo()
            .join("charts/identity-operator")
            .display()
            .to_string(),
        "--namespace",
        &release_ns,
    ]);
    for v in &values {
        install.args(["--set", v]);
    }
    must(install);
    let mut manifest = tool("helm");
    manifest.args(["get", "manifest", &release, "--namespace", &release_ns]);
    let objs = manifest_objects(&must(manifest));
    let deployment = objs
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("the chart renders a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["image"], image,
        "the chart's default image is the one scripts/image tags"
    );
    let sa = pod["serviceAccountName"]
        .as_str()
        .expect("serviceAccountName");
    let fs_group = pod["securityContext"]["fsGroup"].as_u64().unwrap_or(0);
    let sa_dir = service_account_dir(&release_ns, sa, fs_group);
    let pod_name = format!("{release}-identity-operator-{}", suffix());

    let name = format!("io-image-{}", suffix());
    let mut run = Command::new(repo().join("scripts/image"));
    run.args(["run", "--detach", "--name", &name, "--network", "host"])
        .args(podman_flags(pod, &pod_name, &release_ns, sa_dir.path()))
        .arg(&image)
        .args(
            c["args"]
                .as_array()
                .expect("args")
                .iter()
                .map(|a| a.as_str().expect("arg")),
        );
    must(run);
    let container = Container(name);
    // podman logs replays the container's stderr (where the operator logs) on its own stderr.
    let logs = || {
        let (ok, stdout, stderr) = output(cmd("podman", &["logs", &container.0]));
        assert!(ok, "podman logs: {stderr}");
        stdout + &stderr
    };

    // The probes, on the port the chart names.
    let probe_port = c["ports"]
        .as_array()
        .and_then(|ps| {
            ps.iter()
                .find(|p| p["name"] == c["readinessProbe"]["httpGet"]["port"])
        })
        .and_then(|p| p["containerPort"].as_u64())
        .expect("the probes' named port");
    assert_eq!(probe_port, u64::from(metrics_port));
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = c[probe]["httpGet"]["path"].as_str().expect("probe path");
        let url = format!("http://127.0.0.1:{probe_port}{path}");
        let ok = common::wait_until(T, || async {
            (http_code(&url).await == Some(200)).then_some(())
        })
        .await;
        assert!(
            ok.is_some(),
            "{probe} {url} never answered 200; container log:\n{}",
            common::tail(&logs(), 30)
        );
    }

    // What the kernel says about the container's process, not only what was asked for.
    let state = podman_json(&["inspect", &container.0]);
    assert_eq!(state["State"]["Running"], true, "{}", logs());
    let pid = state["State"]["Pid"].as_u64().expect("pid");
    let uids = proc_status(pid, "Uid");
    assert!(uids.split_whitespace().all(|u| u == "65532"), "uids {uids}");
    assert!(proc_status(pid, "Groups")
        .split_whitespace()
        .any(|g| g == fs_group.to_string()));
    for caps in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(
            u64::from_str_radix(&proc_status(pid, caps), 16).expect("hex"),
            0,
            "{caps}: all capabilities dropped"
        );
    }
    assert_eq!(proc_status(pid, "NoNewPrivs"), "1");
    assert_eq!(proc_status(pid, "Seccomp"), "2", "seccomp filter on");
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    let root = mountinfo
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(4) == Some(&"/"))
        .expect("a / mount");
    assert!(
        root[5].split(',').any(|o| o == "ro"),
        "read-only root: {root:?}"
    );

    // The seed scenario through the container (examples/jit-on; the backend is the emulator).
    env.create_backend("asgardeo").await;
    env.apply(&example("google.yaml", &env.ns))
        .await
        .expect("google.yaml");
    env.apply(&example("payroll.yaml", &env.ns))
        .await
        .expect("payroll.yaml");
    for (kind, obj) in [
        ("IdentityBackend", "asgardeo"),
        ("IdentityProvider", "google"),
        ("Application", "payroll"),
    ] {
        if common::wait_until(T, || async {
            let o = env.get(kind, obj).await?;
            o["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
                .then_some(())
        })
        .await
        .is_none()
        {
            panic!(
                "{kind} {obj} not Ready: {}\ncontainer log:\n{}",
                env.get(kind, obj)
                    .await
                    .map(|o| o["status"].to_string())
                    .unwrap_or_default(),
                common::tail(&logs(), 30)
            );
        }
        println!("{kind} {obj}: Ready=True (reconciled inside the container)");
    }
    let server = env.server();
    let app = server
        .find_application_by_name("Payroll")
        .await
        .expect("list")
        .expect("Payroll on the server");
    let creds = env
        .secret_data("payroll-oidc")
        .await
        .expect("credentials Secret written by the container");
    assert_eq!(creds.get("client-id"), app.client_id.as_ref());

    // The conflict, held back under Block.
    env.set_spec(
        "IdentityProvider",
        "google",
        json!({"jit": {"enabled": false}}),
    )
    .await;
    let c = env.conflict("IdentityProvider", "google", T).await;
    println!(
        "IdentityProvider google: InterconnectionConflict=True: {}",
        c["message"]
    );
    let ready = env.not_ready("IdentityProvider", "google", T).await;
    assert_eq!(ready["reason"], "JITDisableBlocked");
    let idp = server
        .find_idp_by_name("Google")
        .await
        .expect("list")
        .expect("Google on the server");
    assert!(
        server.get_jit(&idp.id).await.expect("jit").enabled,
        "Block keeps JIT on on the server"
    );

    // The chart's env reached the process: leader election took the Lease as POD_NAME.
    let mut lease = tool("kubectl");
    lease.args([
        "get",
        "lease",
        "identity-operator",
        "-n",
        &release_ns,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(must(lease), pod_name);

    // Finalizers run from the container: the server objects go.
    env.delete("Application", "payroll").await;
    env.wait_gone("Application", "payroll", T).await;
    assert!(server
        .find_application_by_name("Payroll")
        .await
        .expect("list")
        .is_none());

    // A pod's termination: SIGTERM, and the operator exits by itself with 0.
    must(cmd("podman", &["stop", "--time", "30", &container.0]));
    let state = podman_json(&["inspect", &container.0]);
    let log = logs();
    assert_eq!(
        state["State"]["ExitCode"],
        0,
        "exit after SIGTERM; log:\n{}",
        common::tail(&log, 20)
    );
    // The chart's logFormat=json reached the process: every line is a JSON object.
    assert!(log.lines().count() > 3, "{log}");
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<Value>(line).is_ok_and(|v| v.is_object()),
            "not a JSON log line: {line}"
        );
    }
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the chart's RBAC denied a call:\n{}",
        common::tail(&log, 30)
    );
    for secret in [env.client_secret.as_str(), "google-very-secret-value"] {
        assert!(!log.contains(secret), "a secret in the container's log");
    }
    if let Some(s) = creds.get("client-secret") {
        assert!(!log.contains(s.as_str()), "a secret in the container's log");
    }

    let mut uninstall = tool("helm");
    uninstall.args(["uninstall", &release, "--namespace", &release_ns]);
    must(uninstall);
    for ns in [&release_ns, &env.ns] {
        let mut del = tool("kubectl");
        del.args(["delete", "namespace", ns, "--wait=false"]);
        let _ = output(del);
    }
}

/// The image holds the binary, exactly the libraries the loader resolves for it, the CA bundle and
/// the user database, and the Dockerfile describes the same image: its final stage is the same
/// root filesystem (`scripts/image rootfs`) with the same user, entrypoint, command, port and labels.
#[test]
fn image_has_only_what_the_binary_needs_and_matches_the_dockerfile() {
    let Some(image) = image_or_skip() else {
        return;
    };
    let inspect = podman_json(&["image", "inspect", &image]);
    let config = &inspect["Config"];
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], json!(["/identity-operator"]));
    assert_eq!(config["Cmd"], json!(["run"]));
    let labels = config["Labels"].as_object().expect("labels");
    for key in ["source", "version", "revision"] {
        let v = labels
            .get(&format!("org.opencontainers.image.{key}"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(!v.is_empty(), "label org.opencontainers.image.{key}");
    }
    assert_eq!(
        labels["org.opencontainers.image.version"],
        image.rsplit(':').next().expect("tag")
    );

    // The filesystem, exported from a container of the image.
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("io-image-fs-{}", suffix());
    must(cmd("podman", &["create", "--name", &name, &image]));
    let container = Container(name);
    let tar = dir.path().join("fs.tar");
    must(cmd(
        "podman",
        &[
            "export",
            "--output",
            &tar.display().to_string(),
            &container.0,
        ],
    ));
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let listing = must(cmd("tar", &["-tf", &tar.display().to_string()]));
    must(cmd(
        "tar",
        &[
            "-xf",
            &tar.display().to_string(),
            "-C",
            &root.display().to_string(),
        ],
    ));
    let files: BTreeSet<String> = listing
        .lines()
        .map(|l| format!("/{}", l.trim_start_matches("./").trim_end_matches('/')))
        .filter(|p| root.join(&p[1..]).is_file())
        .collect();
    let ldd = must(cmd(
        "ldd",
        &[&root.join("identity-operator").display().to_string()],
    ));
    let libs: BTreeSet<String> = ldd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [_, "=>", path, ..] if path.starts_with('/') => Some(path.to_string()),
                [path, ..] if path.starts_with('/') => Some(path.to_string()),
                _ => None,
            }
        })
        .collect();
    assert!(!libs.is_empty(), "ldd: {ldd}");
    let mut want: BTreeSet<String> = [
        "/identity-operator",
        "/etc/passwd",
        "/etc/group",
        "/etc/nsswitch.conf",
        "/etc/ssl/certs/ca-certificates.crt",
    ]
    .map(String::from)
    .into();
    want.extend(libs);
    // podman adds these mount points to every container's filesystem (empty files).
    let added_by_podman = [
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/hostname",
        "/run/.containerenv",
    ];
    let files: BTreeSet<String> = files
        .into_iter()
        .filter(|f| !added_by_podman.contains(&f.as_str()))
        .collect();
    assert_eq!(files, want, "the image's regular files");

    // The binary carries the operator and the crates it is built from, and no emulator, bench or
    // test kit code (issue 23). The binary is stripped (scripts/image), so symbols are gone, but the
    // panic locations of every crate stay: their source paths name the crate's folder. The client's
    // and the api's must be there, or the scan proves nothing; the emulator's own binary holds
    // hundreds of `crates/emulator/src/` locations.
    let binary = std::fs::read(root.join("identity-operator")).expect("the binary");
    let has = |needle: &str| binary.windows(needle.len()).any(|w| w == needle.as_bytes());
    for present in ["crates/client/src/", "crates/api/src/"] {
        assert!(
            has(present),
            "the binary should hold panic locations of {present}"
        );
    }
    for absent in [
        "crates/emulator/",
        "crates/bench/",
        "crates/testkit/",
        "/_emulator/",
    ] {
        assert!(
            !has(absent),
            "the image's binary contains {absent}: emulator, bench or test kit code"
        );
    }
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("passwd");
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");

    // The Dockerfile: the same rootfs and the same config. (It cannot be built here: its base
    // image comes from a registry this machine cannot reach.)
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let last_from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("FROM");
    assert_eq!(lines[last_from], "FROM scratch", "the final stage");
    assert!(
        dockerfile.contains("scripts/image rootfs /rootfs "),
        "the builder stage lays out the filesystem with scripts/image rootfs"
    );
    let final_stage = &lines[last_from + 1..];
    for want in [
        "COPY --from=builder /rootfs /".to_string(),
        format!("USER {}", config["User"].as_str().expect("user")),
        "ENTRYPOINT [\"/identity-operator\"]".into(),
        "CMD [\"run\"]".into(),
    ] {
        assert!(
            final_stage.contains(&want.as_str()),
            "Dockerfile final stage lacks `{want}`: {final_stage:?}"
        );
    }
    let version = labels["org.opencontainers.image.version"]
        .as_str()
        .expect("version");
    assert!(
        final_stage.contains(&format!("ARG VERSION={version}").as_str()),
        "the Dockerfile's default VERSION is the crate's, {version}"
    );
    for port in config["ExposedPorts"].as_object().expect("ports").keys() {
        let want = format!("EXPOSE {port}");
        let short = format!("EXPOSE {}", port.trim_end_matches("/tcp"));
        assert!(
            final_stage.iter().any(|l| *l == want || *l == short),
            "Dockerfile lacks `{want}`"
        );
    }
    // (buildah adds io.buildah.version of its own)
    for key in labels
        .keys()
        .filter(|k| k.starts_with("org.opencontainers."))
    {
        assert!(
            final_stage.iter().any(|l| l.contains(&format!("{key}="))),
            "Dockerfile lacks LABEL {key}"
        );
    }
}
