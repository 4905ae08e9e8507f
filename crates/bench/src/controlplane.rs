//! The control plane of a bench run: `scripts/dev-env up --no-emulator` in a state directory of its
//! own (other runs and tests may use theirs at the same time), stopped with `scripts/dev-env down`
//! when the run ends, also on error or Ctrl-C (Drop).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// A control plane the bench started (or, with `--kubeconfig-from-env`, one it only uses).
pub struct ControlPlane {
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// `Some` when this bench started it: (script, DEV_ENV_DIR) to run `down` with.
    owned: Option<(PathBuf, PathBuf)>,
}

impl ControlPlane {
    /// Uses the control plane KUBECONFIG points at; never stops it.
    pub fn from_env() -> anyhow::Result<Self> {
        let kubeconfig = std::env::var_os("KUBECONFIG")
            .context("--kubeconfig-from-env: KUBECONFIG is not set")?;
        Ok(Self {
            kubeconfig: PathBuf::from(kubeconfig),
            owned: None,
        })
    }

    /// Runs `SCRIPT up --no-emulator` with DEV_ENV_DIR=`dir` and reads its export lines.
    pub fn start(script: &Path, dir: &Path) -> anyhow::Result<Self> {
        if !script.exists() {
            bail!(
                "{} not found: run from the repository, or pass --dev-env PATH",
                script.display()
            );
        }
        eprintln!(
            "bench: starting the control plane ({} up --no-emulator, DEV_ENV_DIR={})",
            script.display(),
            dir.display()
        );
        // From here on `down` must run, even if `up` fails half way.
        let mut plane = Self {
            kubeconfig: PathBuf::new(),
            owned: Some((script.to_owned(), dir.to_owned())),
        };
        let out = Command::new(script)
            .args(["up", "--no-emulator"])
            .env("DEV_ENV_DIR", dir)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!("{} up failed ({})", script.display(), out.status);
        }
        let exports = parse_exports(&String::from_utf8_lossy(&out.stdout));
        plane.kubeconfig = exports
            .get("KUBECONFIG")
            .map(PathBuf::from)
            .context("dev-env up printed no KUBECONFIG")?;
        Ok(plane)
    }

    /// Stops the control plane if this bench started it.
    pub fn stop(&mut self) {
        if let Some((script, dir)) = self.owned.take() {
            eprintln!("bench: stopping the control plane ({})", dir.display());
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
                    "bench: `{} down` failed ({status:?}); stop it by hand: DEV_ENV_DIR={} {} down",
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

/// Runs a command; kills it after `timeout`.
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
}
