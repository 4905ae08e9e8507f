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
        out.contains("1 problem(s) in 9 object(s) from 12 file(s)"),
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
