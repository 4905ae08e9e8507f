//! `identity-operator lint` as a pull-request check runs it: exit status and output.

use std::process::Command;

fn lint(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_identity-operator"))
        .arg("lint")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn flags_exactly_the_jit_off_variant() {
    let (code, out) = lint(&["examples/"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.matches("InterconnectionConflict").count(), 1, "{out}");
    assert!(
        out.contains("examples/jit-off/payroll.yaml:3 (document 1)"),
        "{out}"
    );
    assert!(
        out.contains("1 problem(s) in 12 object(s) from 17 file(s)"),
        "{out}"
    );
}

#[test]
fn clean_variant_exits_zero() {
    let (code, out) = lint(&["examples/jit-on"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 problem(s)"), "{out}");
}

#[test]
fn unreadable_input_exits_two() {
    let (code, out) = lint(&["tests/fixtures/lint-unreadable.yaml"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not valid YAML"), "{out}");
    let (code, _) = lint(&["no/such/folder"]);
    assert_eq!(code, 2);
}

#[test]
fn github_format_annotates_the_file_and_line() {
    let (code, out) = lint(&["--format", "github", "examples/"]);
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("no annotation in {out}"));
    assert!(
        line.starts_with(
            "::error file=examples/jit-off/payroll.yaml,line=3,title=InterconnectionConflict::Application identity-jit-off/payroll step 1"
        ),
        "{line}"
    );
    assert_eq!(out.matches("::error ").count(), 1, "{out}");
}

#[test]
fn json_format_is_data() {
    let (code, out) = lint(&["--format", "json", "examples/"]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(v["problems"], 1);
    assert_eq!(v["objects"], 12);
    assert_eq!(v["findings"][0]["file"], "examples/jit-off/payroll.yaml");
    assert_eq!(v["findings"][0]["line"], 3);
}
