//! Tests over the public API, with real files in private temporary directories.

mod broker;
mod builtins;
mod decide;
mod errors;
mod extends;
mod nested;
mod resolve;

use std::fs;
use std::path::{Path, PathBuf};

use crate::{load_str, Policy, PolicySpec, Vars};

/// A fresh private directory under the system's temporary directory, by its
/// canonical path, removed on drop.
pub(crate) struct TempDir {
    path: PathBuf,
    /// Removes the directory on drop.
    _dir: tempfile::TempDir,
}

impl TempDir {
    pub(crate) fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("policies-test-")
            .tempdir()
            .expect("create temporary directory");
        let path = fs::canonicalize(dir.path()).expect("canonicalise temporary directory");
        TempDir { path, _dir: dir }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates `relative` and its parents as directories.
    pub(crate) fn mkdir(&self, relative: &str) -> PathBuf {
        let path = self.path.join(relative);
        fs::create_dir_all(&path).expect("mkdir");
        path
    }

    /// Writes a file, creating its parent directories.
    pub(crate) fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path.join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, text).expect("write");
        path
    }
}

/// A home, a workspace and a session temporary directory under `root`.
pub(crate) fn vars_in(root: &TempDir) -> Vars {
    Vars {
        home: root.mkdir("home"),
        workspace: root.mkdir("ws"),
        tmpdir: root.mkdir("tmp"),
    }
}

/// Loads `text` as a policy named `p.toml` whose directory is `/`.
pub(crate) fn spec(text: &str) -> PolicySpec {
    load_str("p.toml", text, Path::new("/")).expect("policy loads")
}

/// The message of the error loading `text` as `p.toml`.
pub(crate) fn load_error(text: &str) -> String {
    load_str("p.toml", text, Path::new("/"))
        .expect_err("policy should not load")
        .to_string()
}

/// Loads and resolves `text` against `vars`.
pub(crate) fn resolve(text: &str, vars: &Vars) -> Policy {
    spec(text).resolve(vars).expect("policy resolves")
}

/// The message of the error resolving `text` against `vars`.
pub(crate) fn resolve_error(text: &str, vars: &Vars) -> String {
    spec(text)
        .resolve(vars)
        .expect_err("policy should not resolve")
        .to_string()
}
