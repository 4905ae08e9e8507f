//! The workspace's direction, as Cargo resolves it (issue 23): model ← api, client ← operator;
//! the emulator and the bench are nobody's normal dependency but the bench's. `cargo tree` on the
//! committed lock file, offline.

use std::collections::BTreeSet;
use std::process::Command;

/// The packages `package` pulls in as normal (not dev, not build) dependencies, itself excluded.
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != package)
        .map(str::to_owned)
        .collect()
}

#[test]
fn crates_depend_in_one_direction_and_the_operator_carries_no_emulator() {
    // (package, must include, must not include)
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "identity-model",
            &["rquickjs"],
            &[
                "identity-api",
                "identity-client",
                "kube",
                "k8s-openapi",
                "reqwest",
                "axum",
                "tokio",
            ],
        ),
        (
            "identity-api",
            &["kube", "schemars"],
            &["identity-model", "identity-client", "reqwest", "axum"],
        ),
        (
            "identity-client",
            &["identity-model", "reqwest"],
            &[
                "identity-api",
                "kube",
                "k8s-openapi",
                "axum",
                "identity-emulator",
            ],
        ),
        (
            "identity-operator",
            &["identity-model", "identity-api", "identity-client", "kube"],
            &["identity-emulator", "identity-bench", "identity-testkit"],
        ),
        // The test kit serves tests and the bench; it knows nothing of the operator's crates.
        (
            "identity-testkit",
            &["anyhow", "tokio"],
            &[
                "identity-operator",
                "identity-emulator",
                "identity-client",
                "kube",
            ],
        ),
        (
            "identity-emulator",
            &["identity-model", "identity-client", "axum"],
            &[
                "identity-operator",
                "identity-api",
                "kube",
                "identity-bench",
            ],
        ),
    ];
    for (package, with, without) in cases {
        let deps = normal_dependencies(package);
        for d in *with {
            assert!(
                deps.contains(*d),
                "{package} should depend on {d}: {deps:?}"
            );
        }
        for d in *without {
            assert!(!deps.contains(*d), "{package} must not depend on {d}");
        }
    }
}
