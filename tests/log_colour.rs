//! Log lines carry ANSI colour codes only on a terminal: written to a pipe or a file they are plain
//! text (what log collectors and `kubectl logs` get); under a pseudo-terminal (`script`) they are
//! coloured. No control plane needed: the operator is pointed at a kubeconfig whose server does not
//! answer, and only its first log lines are read.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const ESC: char = '\u{1b}';

fn kubeconfig() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        file.path(),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:9\"}\nusers:\n- name: u\n  user: {token: not-a-real-token}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
    )
    .expect("write kubeconfig");
    file
}

/// The operator's stderr up to and including its "serving /metrics" line.
fn first_lines(mut cmd: Command) -> String {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let (tx, rx) = mpsc::channel();
    // Both streams: the pty variant (script) writes everything to stdout.
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let mut seen = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("serving /metrics") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.contains("serving /metrics"),
        "the operator did not log its first lines:\n{seen}"
    );
    seen
}

fn operator_args() -> [&'static str; 5] {
    [
        "run",
        "--namespace",
        "colour-test",
        "--metrics-addr",
        "127.0.0.1:0",
    ]
}

#[test]
fn a_pipe_gets_plain_text() {
    let kc = kubeconfig();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_identity-operator"));
    cmd.args(operator_args())
        .env("KUBECONFIG", kc.path())
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR");
    let out = first_lines(cmd);
    assert!(out.contains("INFO"), "{out}");
    assert!(!out.contains(ESC), "colour codes in piped logs:\n{out:?}");
}

#[test]
fn a_terminal_gets_colour_unless_no_color() {
    // `script` runs the command on a pseudo-terminal and copies what it prints to our pipe.
    if Command::new("script").arg("--version").output().is_err() {
        panic!("this test needs util-linux `script` (a pseudo-terminal)");
    }
    let kc = kubeconfig();
    let line = format!(
        "{} {}",
        env!("CARGO_BIN_EXE_identity-operator"),
        operator_args().join(" ")
    );
    let run = |no_color: bool| {
        let mut cmd = Command::new("script");
        cmd.args(["-qfec", &line, "/dev/null"])
            .env("KUBECONFIG", kc.path())
            .env("RUST_LOG", "info");
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        first_lines(cmd)
    };
    let coloured = run(false);
    assert!(
        coloured.contains(ESC),
        "no colour on a terminal:\n{coloured:?}"
    );
    let plain = run(true);
    assert!(!plain.contains(ESC), "colour despite NO_COLOR:\n{plain:?}");
}
