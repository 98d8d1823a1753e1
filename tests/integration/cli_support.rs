//! Helpers for the `resptree` command-line tests: run the built binary against a
//! temporary store, with no ambient configuration leaking in.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A temporary store and a way to run `resptree` on it.
pub(crate) struct Cli {
    _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) store: PathBuf,
    env: Vec<(String, String)>,
}

impl Cli {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        Self {
            store: root.join("store"),
            root,
            _dir: dir,
            env: Vec::new(),
        }
    }

    /// Adds an environment variable to every run.
    pub(crate) fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// `resptree --store STORE ARGS...` with a clean environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = bare_command();
        cmd.arg("--store").arg(&self.store).args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        check_ok(args, &self.run(args))
    }

    /// Runs a command that must fail with `code`; returns its stderr.
    pub(crate) fn fails(&self, args: &[&str], code: i32) -> String {
        check_fails(args, &self.run(args), code)
    }

    /// Runs a command with `--json` output and parses it.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Asks a question against the embedded emulator; returns the new node's id.
    pub(crate) fn ask(&self, parent: Option<&str>, text: &str) -> String {
        let mut args = vec!["--emulator", "ask"];
        if let Some(p) = parent {
            args.extend(["--parent", p]);
        }
        args.push(text);
        last_line(&self.ok(&args))
    }

    /// Every node of the tree, as `show --json` prints them.
    pub(crate) fn nodes(&self) -> Vec<Value> {
        self.json(&["show", "--json"]).as_array().unwrap().clone()
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// `resptree` with no store option and none of the variables it reads.
pub(crate) fn bare_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_resptree"));
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "RESPTREE_STORE",
        "RESPTREE_MODEL",
        "RESPTREE_BACKEND",
        "XDG_DATA_HOME",
        "XDG_CONFIG_HOME",
        "RESPTREE_PRICES",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs a blocking command off the async workers, so an in-process emulator
/// keeps serving while the CLI talks to it.
pub(crate) async fn run(command: Command) -> Output {
    let mut command = command;
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

pub(crate) fn check_ok(args: &[&str], out: &Output) -> String {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        out.status.success(),
        "resptree {args:?} failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains('\x1b'), "no colour on a pipe: {stdout:?}");
    stdout
}

pub(crate) fn check_fails(args: &[&str], out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "resptree {args:?}: stdout {:?} stderr {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
}

pub(crate) fn last_line(text: &str) -> String {
    text.trim_end().lines().last().unwrap_or("").to_owned()
}

pub(crate) fn ids(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}
