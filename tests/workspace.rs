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

/// Folders of the operator whose files count as modules of their own (the others are one module
/// each, as are the files at a crate's top level).
const SPLIT_FOLDERS: &[&str] = &["controller", "webhook", "export", "lint"];

/// The module a source file belongs to: `controller::memo`, `webhook`, `http`, … (`mod.rs`,
/// `lib.rs` and `main.rs` stand for their folder).
fn module_of(rel: &[String]) -> Vec<String> {
    let mut parts: Vec<String> = rel.to_vec();
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".rs").to_owned();
    }
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn key(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [first, second, ..] if SPLIT_FOLDERS.contains(&first.as_str()) => {
            format!("{first}::{second}")
        }
        [first, ..] => first.clone(),
    }
}

/// The module paths a file names after `prefix` (`crate::a::b`, `crate::{a, b::c}`), first two
/// segments each; comments and the trailing test module are ignored.
fn references(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let code: String = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or_default()
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect()
    };
    let path = |s: &str| -> Vec<String> {
        s.trim()
            .split("::")
            .take(2)
            .map(ident)
            .take_while(|p| !p.is_empty())
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(list) = rest.strip_prefix('{') {
            let end = list.find('}').unwrap_or(list.len());
            out.extend(list[..end].split(',').map(path).filter(|p| !p.is_empty()));
        } else {
            let p = path(rest);
            if !p.is_empty() {
                out.push(p);
            }
        }
    }
    out
}

/// The import graph of one crate's `src`, module → modules it names.
fn import_graph(src: &std::path::Path) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    fn files(dir: &std::path::Path, rel: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            rel.push(name.clone());
            if e.path().is_dir() && name != "tests" {
                files(&e.path(), rel, out);
            } else if name.ends_with(".rs") && name != "tests.rs" && !name.ends_with("_tests.rs") {
                out.push(rel.clone());
            }
            rel.pop();
        }
    }
    let mut all = Vec::new();
    files(src, &mut Vec::new(), &mut all);
    let exists = |parts: &[String]| {
        let base = src.join(parts.join("/"));
        base.with_extension("rs").is_file() || base.join("mod.rs").is_file()
    };
    let mut graph: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for rel in &all {
        let text = std::fs::read_to_string(src.join(rel.join("/"))).expect("readable source");
        let me = module_of(rel);
        let me_key = key(&me);
        let parent = &me[..me.len().saturating_sub(1)];
        let mut named = references(&text, "crate::");
        named.extend(references(&text, "super::").into_iter().map(|p| {
            let mut full = parent.to_vec();
            full.extend(p);
            full
        }));
        for p in named {
            // The longest prefix that is a module file: `crate::controller::translate` or `crate::lint`.
            let target = (1..=p.len()).rev().map(|n| &p[..n]).find(|q| exists(q));
            let Some(target) = target else { continue };
            let t = key(target);
            if t != me_key && !me_key.starts_with(&format!("{t}::")) && !t.is_empty() {
                graph.entry(me_key.clone()).or_default().insert(t);
            }
        }
    }
    graph
}

/// Strongly connected components of more than one module (Tarjan).
fn cycles(graph: &std::collections::BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    #[derive(Default)]
    struct Walk<'a> {
        index: std::collections::HashMap<&'a str, usize>,
        low: std::collections::HashMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(
        v: &'a str,
        g: &'a std::collections::BTreeMap<String, BTreeSet<String>>,
        w: &mut Walk<'a>,
    ) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        w.on_stack.insert(v);
        for t in g.get(v).into_iter().flatten() {
            let t = t.as_str();
            if !w.index.contains_key(t) {
                visit(t, g, w);
                let lt = w.low[t];
                let lv = w.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lt);
            } else if w.on_stack.contains(t) {
                let it = w.index[t];
                let lv = w.low.get_mut(v).expect("visited");
                *lv = (*lv).min(it);
            }
        }
        if w.low[v] == w.index[v] {
            let mut comp = Vec::new();
            while let Some(x) = w.stack.pop() {
                w.on_stack.remove(x);
                comp.push(x.to_owned());
                if x == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                w.found.push(comp);
            }
        }
    }
    let mut w = Walk::default();
    for v in graph.keys() {
        if !w.index.contains_key(v.as_str()) {
            visit(v, graph, &mut w);
        }
    }
    w.found
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let g: std::collections::BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        cycles(&g),
        vec![vec!["a".to_owned(), "b".into(), "c".into()]]
    );
    assert_eq!(
        references(
            "use crate::{a, b::c};\n// crate::z\nlet x = super::d::E;",
            "crate::"
        ),
        vec![vec!["a".to_owned()], vec!["b".to_owned(), "c".to_owned()]]
    );
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut srcs = vec![root.join("src")];
    let crates = std::fs::read_dir(root.join("crates")).expect("crates/");
    srcs.extend(crates.flatten().map(|e| e.path().join("src")));
    let mut seen = 0;
    for src in srcs {
        let graph = import_graph(&src);
        seen += graph.len();
        assert_eq!(
            cycles(&graph),
            Vec::<Vec<String>>::new(),
            "import cycles in {}",
            src.display()
        );
    }
    assert!(seen > 20, "the scan found modules with imports ({seen})");
}
