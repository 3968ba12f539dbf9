//! The trees and policies the deny walk's tests build.

use crate::model::FsPolicy;
use crate::{load_str, Vars};
use std::path::PathBuf;

pub struct Tree(pub PathBuf);

impl Tree {
    pub fn new(tag: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("deny-walk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Tree(dir.canonicalize().unwrap())
    }
    pub fn file(&self, rel: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "x").unwrap();
        path
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn policy(tree: &Tree, deny: &str) -> FsPolicy {
    policy_with(tree, &format!("deny = [{deny}]\n"))
}

/// A policy writing `$WORKSPACE` (`tree/ws`), reading `tree/ro`, with
/// `lines` more in its `[filesystem]`.
pub fn policy_with(tree: &Tree, lines: &str) -> FsPolicy {
    let text = format!(
        "[filesystem]\nwrite = [\"$WORKSPACE\"]\nread = [\"{}/ro\"]\n{lines}",
        tree.0.display()
    );
    let vars = Vars {
        home: tree.0.join("home"),
        workspace: tree.0.join("ws"),
        tmpdir: tree.0.join("tmp"),
    };
    load_str("p.toml", &text, &tree.0)
        .unwrap()
        .resolve(&vars)
        .unwrap()
        .filesystem
}
