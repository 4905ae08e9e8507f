//! Generated files must equal what the code generates: `crds/` (and the chart's copy), and the
//! chart's admission policies.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check_dir(dir: &str) {
    let dir = root().join(dir);
    let mut expected_files = Vec::new();
    for (plural, crd) in identity_operator::api::crds() {
        let file = format!("{plural}.yaml");
        let want = identity_operator::api::crd_yaml(&crd).expect("CRD renders");
        let have = std::fs::read_to_string(dir.join(&file))
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()));
        assert!(
            have == want,
            "{}/{file} is out of date: run `cargo run -- crd --out-dir {}`",
            dir.display(),
            dir.display()
        );
        expected_files.push(file);
    }
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir exists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    expected_files.sort();
    assert_eq!(
        present,
        expected_files,
        "{} holds stray files",
        dir.display()
    );
}

#[test]
fn crds_folder_matches_the_code() {
    check_dir("crds");
}

/// Helm installs the chart's `crds/` as they are: they must be the generated files, byte for byte.
#[test]
fn chart_crds_match_the_code() {
    check_dir("charts/identity-operator/crds");
}

/// The chart's admission policies are `identity-operator admission-policy`'s output, byte for byte.
#[test]
fn chart_admission_policy_matches_the_code() {
    let file = root().join("charts/identity-operator/files/admission-policy.yaml");
    let have = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let want = identity_operator::admission::yaml(&Default::default()).expect("policy renders");
    assert!(
        have == want,
        "{} is out of date: run `cargo run -- admission-policy > {}`",
        file.display(),
        file.display()
    );
}
