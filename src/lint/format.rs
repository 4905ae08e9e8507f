//! Output formats of `lint` and `audit`, for people and for pull-request tools.
//!
//! - `text`: one line per finding and a summary (the default);
//! - `json`: the findings as data, for scripts;
//! - `sarif`: SARIF 2.1.0, which GitHub code scanning (`upload-sarif`) and other review tools ingest;
//! - `github`: GitHub Actions workflow commands (`::error file=...,line=...::`), which show as
//!   annotations on the pull request's diff.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::{Finding, Report};

/// An output format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Lines for people, and a summary.
    #[default]
    Text,
    /// JSON: `{"findings": [...], "problems", "objects", "files"}`.
    Json,
    /// SARIF 2.1.0 (code-scanning uploads).
    Sarif,
    /// GitHub Actions workflow commands (annotations on the pull request).
    Github,
}

/// The rules a finding can come from, with their descriptions (SARIF `tool.driver.rules`).
const RULES: &[(&str, &str, &str)] = &[
    (
        "InterconnectionConflict",
        "An application's login flow needs a local account after an identity provider without JIT provisioning.",
        "Federated users of an identity provider with JIT provisioning disabled have no local account, so a later login step whose authenticator keeps its secret on the local account (TOTP, passkeys, backup codes, email OTP, ...) fails for them.",
    ),
    (
        "DanglingReference",
        "A reference to an object that is not declared.",
        "An IdentityProvider or Application references an IdentityBackend or IdentityProvider that is not among the given files.",
    ),
    (
        "Invalid",
        "An object that does not match the schema, or two objects that clash.",
        "An object of the identity-operator.io kinds does not parse, or two objects claim the same name or server name.",
    ),
    (
        "Drift",
        "A declared object that the server holds differently.",
        "audit --declared: an IdentityProvider's certificate (JWKS URI, SAML metadata URI or PEM certificates) on the server differs from the declared one, so the operator will rewrite it.",
    ),
];

/// Renders a report. `summary` is the closing line of the text and github formats.
pub fn render(report: &Report, format: Format, summary: &str) -> String {
    match format {
        Format::Text => {
            let mut out: String = report
                .findings
                .iter()
                .map(|f| format!("{}: {}\n", f.location, f.problem))
                .collect();
            out.push_str(summary);
            out.push('\n');
            out
        }
        Format::Json => {
            let findings: Vec<Value> = report
                .findings
                .iter()
                .map(|f| {
                    json!({
                        "rule": f.problem.rule_id(),
                        "file": f.location.file,
                        "line": (f.location.line > 0).then_some(f.location.line),
                        "document": (f.location.line > 0).then_some(f.location.document),
                        "message": f.problem.message(),
                    })
                })
                .collect();
            let v = json!({
                "findings": findings,
                "problems": report.findings.len(),
                "objects": report.objects,
                "files": report.files,
            });
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        Format::Sarif => format!(
            "{}\n",
            serde_json::to_string_pretty(&sarif(report)).unwrap_or_default()
        ),
        Format::Github => {
            let mut out: String = report.findings.iter().map(github_annotation).collect();
            out.push_str(summary);
            out.push('\n');
            out
        }
    }
}

/// The SARIF 2.1.0 log of a report: one run, one result per finding.
pub fn sarif(report: &Report) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, short, full)| {
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": short},
                "fullDescription": {"text": full},
                "defaultConfiguration": {"level": "error"},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let rule = f.problem.rule_id();
            let index = RULES.iter().position(|(id, _, _)| *id == rule).unwrap_or(0);
            let mut physical =
                json!({"artifactLocation": {"uri": uri_reference(&f.location.file)}});
            if f.location.line > 0 {
                physical["region"] = json!({"startLine": f.location.line});
            }
            json!({
                "ruleId": rule,
                "ruleIndex": index,
                "level": "error",
                "message": {"text": f.problem.message()},
                "locations": [{"physicalLocation": physical}],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "identity-operator",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

/// A file path as a URI reference (forward slashes, no leading `./`, reserved characters
/// percent-encoded); URLs (audit's server objects) pass through.
fn uri_reference(file: &str) -> String {
    if file.starts_with("https://") || file.starts_with("http://") {
        return file.to_string();
    }
    let path = file.replace('\\', "/");
    let path = path.trim_start_matches("./");
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes the message of a workflow command (GitHub's `escapeData`).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property of a workflow command (GitHub's `escapeProperty`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn github_annotation(f: &Finding) -> String {
    let rule = f.problem.rule_id();
    let mut props = Vec::new();
    if f.location.line > 0 {
        let file = f.location.file.replace('\\', "/");
        props.push(format!(
            "file={}",
            escape_property(file.trim_start_matches("./"))
        ));
        props.push(format!("line={}", f.location.line));
    }
    props.push(format!("title={}", escape_property(rule)));
    let message = if f.location.line > 0 {
        f.problem.message().to_string()
    } else {
        // No file to attach to: say which server object it is about.
        format!("{}: {}", f.location.file, f.problem.message())
    };
    format!("::error {}::{}\n", props.join(","), escape_data(&message))
}

/// `identity-operator lint PATHS --format F`: prints the report, returns the exit status (0 clean,
/// 1 problems, 2 unreadable input).
pub fn run_cli(paths: &[PathBuf], format: Format) -> i32 {
    let docs = match super::load_paths(paths) {
        Ok(docs) => docs,
        Err(e) => {
            if format == Format::Github {
                println!("::error title=lint::{}", escape_data(&e.to_string()));
            }
            eprintln!("error: {e}");
            return 2;
        }
    };
    let report = super::lint_documents(&docs);
    let summary = format!(
        "{} problem(s) in {} object(s) from {} file(s)",
        report.findings.len(),
        report.objects,
        report.files
    );
    print!("{}", render(&report, format, &summary));
    report.exit_code()
}

#[cfg(test)]
mod tests {
    use super::super::{Location, Problem};
    use super::*;

    fn report() -> Report {
        Report {
            findings: vec![
                Finding {
                    location: Location {
                        file: "./repo dir/app,1.yaml".into(),
                        line: 7,
                        document: 2,
                    },
                    problem: Problem::Conflict("50% of users: fail\nat step 2".into()),
                },
                Finding {
                    location: Location {
                        file: "http://127.0.0.1:1/t/acme/api/server/v1/applications/x".into(),
                        line: 0,
                        document: 0,
                    },
                    problem: Problem::DanglingReference("gone".into()),
                },
            ],
            objects: 3,
            files: 1,
        }
    }

    #[test]
    fn github_annotations_escape_data_and_properties() {
        let out = render(&report(), Format::Github, "2 problem(s)");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "::error file=repo dir/app%2C1.yaml,line=7,title=InterconnectionConflict::50%25 of users: fail%0Aat step 2"
        );
        assert_eq!(
            lines[1],
            "::error title=DanglingReference::http://127.0.0.1:1/t/acme/api/server/v1/applications/x: gone"
        );
        assert_eq!(lines[2], "2 problem(s)");
    }

    #[test]
    fn sarif_points_at_file_and_line_or_at_the_server_object() {
        let v = sarif(&report());
        let results = v["runs"][0]["results"].as_array().expect("results");
        assert_eq!(results.len(), 2);
        let loc = &results[0]["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "repo%20dir/app%2C1.yaml");
        assert_eq!(loc["region"]["startLine"], 7);
        assert_eq!(results[0]["ruleId"], "InterconnectionConflict");
        let rules = v["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        assert_eq!(
            rules[results[1]["ruleIndex"].as_u64().expect("index") as usize]["id"],
            "DanglingReference"
        );
        let loc = &results[1]["locations"][0]["physicalLocation"];
        assert!(loc.get("region").is_none());
        assert!(loc["artifactLocation"]["uri"]
            .as_str()
            .expect("uri")
            .starts_with("http://"));
    }

    #[test]
    fn json_has_the_findings_as_data() {
        let v: Value = serde_json::from_str(&render(&report(), Format::Json, "")).expect("json");
        assert_eq!(v["problems"], 2);
        assert_eq!(v["findings"][0]["line"], 7);
        assert_eq!(v["findings"][1]["line"], Value::Null);
        assert_eq!(v["findings"][0]["rule"], "InterconnectionConflict");
    }

    #[test]
    fn text_is_lines_and_the_summary() {
        let out = render(&report(), Format::Text, "2 problem(s)");
        assert!(
            out.starts_with("./repo dir/app,1.yaml:7 (document 2): InterconnectionConflict: 50%")
        );
        assert!(out.contains(
            "\nhttp://127.0.0.1:1/t/acme/api/server/v1/applications/x: DanglingReference: gone\n"
        ));
        assert!(out.ends_with("2 problem(s)\n"));
    }
}
