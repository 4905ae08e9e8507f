//! The one control-plane starter: `scripts/dev-env up --no-emulator` in a state directory of its
//! own (other runs and tests may use theirs at the same time), stopped with `scripts/dev-env down`
//! when its owner is done, also on error, panic or Ctrl-C (Drop). The bench starts one per run; a
//! test that restarts the apiserver starts one so as not to disturb the shared one; everything else
//! uses the one KUBECONFIG points at ([`ControlPlane::from_env`]), which is never stopped here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// Where the output of `dev-env` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// To this process's stderr, as it happens (the bench: a person watches it start).
    Inherit,
    /// Kept, and put into the error when a command fails (tests: libtest shows it on failure only).
    Capture,
}

/// A control plane this process started (stopped on drop), or one it only uses.
pub struct ControlPlane {
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// `Some` when this process started it (and so stops it).
    owned: Option<Owned>,
}

/// What `down` (and other `dev-env` commands) need.
struct Owned {
    /// The `dev-env` script.
    script: PathBuf,
    /// Its DEV_ENV_DIR.
    dir: PathBuf,
    /// Who says what is happening in this process's messages ("bench", "tests").
    who: String,
    /// Where `dev-env`'s stderr goes.
    output: Output,
}

impl ControlPlane {
    /// Uses the control plane KUBECONFIG points at (the one `eval "$(scripts/dev-env up)"`
    /// exported); never stops it.
    pub fn from_env() -> anyhow::Result<Self> {
        let kubeconfig = std::env::var_os("KUBECONFIG").context("KUBECONFIG is not set")?;
        Ok(Self {
            kubeconfig: PathBuf::from(kubeconfig),
            owned: None,
        })
    }

    /// Runs `SCRIPT up --no-emulator` with DEV_ENV_DIR=`dir` and reads its export lines. `who`
    /// prefixes this process's messages.
    pub fn start(script: &Path, dir: &Path, who: &str, output: Output) -> anyhow::Result<Self> {
        if !script.exists() {
            bail!(
                "{} not found: run from the repository, or pass --dev-env PATH",
                script.display()
            );
        }
        eprintln!(
            "{who}: starting the control plane ({} up --no-emulator, DEV_ENV_DIR={})",
            script.display(),
            dir.display()
        );
        // From here on `down` must run, even if `up` fails half way.
        let mut plane = Self {
            kubeconfig: PathBuf::new(),
            owned: Some(Owned {
                script: script.to_owned(),
                dir: dir.to_owned(),
                who: who.to_owned(),
                output,
            }),
        };
        let stdout = plane.run(&["up", "--no-emulator"])?;
        plane.kubeconfig = parse_exports(&stdout)
            .get("KUBECONFIG")
            .map(PathBuf::from)
            .context("dev-env up printed no KUBECONFIG")?;
        Ok(plane)
    }

    /// The state directory, when this process started the control plane.
    pub fn dir(&self) -> Option<&Path> {
        self.owned.as_ref().map(|o| o.dir.as_path())
    }

    /// Runs `dev-env ARGS` (e.g. `restart-apiserver --kill`) in this control plane's state
    /// directory; returns its stdout. Only for a control plane this process started: the shared
    /// one belongs to whoever started it.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let owned = self
            .owned
            .as_ref()
            .context("dev-env commands need a control plane this process started")?;
        let stderr = match owned.output {
            Output::Inherit => Stdio::inherit(),
            Output::Capture => Stdio::piped(),
        };
        let out = Command::new(&owned.script)
            .args(args)
            .env("DEV_ENV_DIR", &owned.dir)
            .stdin(Stdio::null())
            .stderr(stderr)
            .output()
            .with_context(|| format!("running {}", owned.script.display()))?;
        if !out.status.success() {
            bail!(
                "{} {} failed ({}){}",
                owned.script.display(),
                args.join(" "),
                out.status,
                match String::from_utf8_lossy(&out.stderr).trim() {
                    "" => String::new(),
                    err => format!(":\n{err}"),
                }
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the control plane if this process started it (once; drop calls it too).
    pub fn stop(&mut self) {
        if let Some(owned) = self.owned.take() {
            let Owned {
                script, dir, who, ..
            } = owned;
            eprintln!("{who}: stopping the control plane ({})", dir.display());
            let status = run_with_timeout(
                Command::new(&script)
                    .arg("down")
                    .env("DEV_ENV_DIR", &dir)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null()),
                DOWN_TIMEOUT,
            );
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!(
                    "{who}: `{} down` failed ({status:?}); stop it by hand: DEV_ENV_DIR={} {} down",
                    script.display(),
                    dir.display(),
                    script.display()
                );
            }
        }
    }
}

/// How long `dev-env down` may take (it waits up to 15 s per component itself).
const DOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a command; kills it after `timeout`, so that a hung `down` cannot hang its owner's exit.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> std::io::Result<ExitStatus> {
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("still running after {timeout:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `export NAME=VALUE` lines (VALUE as printed by bash's `printf %q`, or in single or double
/// quotes) into a map. Other lines are ignored.
pub fn parse_exports(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), unquote(v.trim())))
        .collect()
}

/// One VALUE of [`parse_exports`] without its quoting.
fn unquote(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        return v[1..v.len() - 1].to_owned();
    }
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        return v[1..v.len() - 1].to_owned();
    }
    // %q output: backslash escapes
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dev_env_exports() {
        let m = parse_exports(
            "export KUBECONFIG=/tmp/x\\ y/kubeconfig\nexport DEV_ENV_DIR='/tmp/d'\nexport PATH=/t/bin:\"$PATH\"\nnoise\n",
        );
        assert_eq!(m["KUBECONFIG"], "/tmp/x y/kubeconfig");
        assert_eq!(m["DEV_ENV_DIR"], "/tmp/d");
        assert!(m.contains_key("PATH"));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn a_control_plane_from_the_environment_runs_no_dev_env_commands() {
        let plane = ControlPlane {
            kubeconfig: PathBuf::from("/nowhere"),
            owned: None,
        };
        assert!(plane.dir().is_none());
        let err = plane.run(&["down"]).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("dev-env commands need a control plane this process started")
        );
    }
}
