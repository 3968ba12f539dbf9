//! What a tool's configuration there at launch names: Mercurial's
//! `%include` files, extensions and hook files (an `.hg/hgrc`), yarn's
//! `yarnPath` and plugins (a `.yarnrc.yml`) and `yarn-path` (a `.yarnrc`),
//! cargo's compiler and its wrappers (a `.cargo/config.toml`).
//! `default` protects the configurations themselves, and keeps in place
//! those there at launch, but the person's next `hg status` or `yarn` runs
//! the files they name too: a program that edited `tools/hgext.py`, named
//! by the person's `[extensions]`, or the `scripts/yarn.cjs` their
//! `yarnPath` names, had its code run outside. So the launch reads each
//! such configuration among what it pins (the walk found them) and
//! protects each file it names, as [`super::hooks_path`] does for git's
//! `core.hooksPath` and includes.
//!
//! A superset where the tool's answer depends on more than the file: an
//! extension's relative path is taken from the repository's root (hg takes
//! it from where it runs), a shell hook's every word holding a `/` from the
//! root (where hg runs hooks). Not read: environment variables in paths.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::hooks_path::{read_capped, resolve};

/// How deep `%include`s are followed.
const MAX_INCLUDE_DEPTH: usize = 10;

/// How many files `%include`s make the launch read, over all `hgrc`s: each
/// is read once (an `hgrc` including itself sixteen times was read 16^10
/// times, and the program never started), and no more than this many.
const MAX_INCLUDED: usize = 256;

/// The files the tool configurations among `found` name, each as named
/// (lexically normal) and where a symlink on the way leads.
pub(super) fn named(found: &[PathBuf], home: &Path) -> Vec<PathBuf> {
    let mut named = Vec::new();
    let mut included = HashSet::new();
    for file in found {
        let name = file.file_name().and_then(|n| n.to_str());
        let dir = file.parent();
        let in_hg = dir.and_then(Path::file_name).is_some_and(|d| d == ".hg");
        match name {
            Some("hgrc" | "hgrc-not-shared") if in_hg => {
                let root = dir.and_then(Path::parent).unwrap_or(Path::new("/"));
                hgrc(file, root, home, 0, &mut included, &mut named);
            }
            Some(".yarnrc.yml") => yarnrc_yml(file, home, &mut named),
            Some(".yarnrc") => yarnrc(file, home, &mut named),
            Some("config.toml" | "config") if in_dot_cargo(dir) => {
                cargo_config(file, home, &mut named)
            }
            _ => {}
        }
    }
    // Each once: a file naming the same path many times made as many
    // protect rules, each asked of every path the program writes.
    let mut paths = Vec::new();
    let mut seen = HashSet::new();
    for path in named {
        let path = crate::broker::safe_open::normalize(&path);
        if !seen.insert(path.clone()) {
            continue;
        }
        let real = path.canonicalize().ok().filter(|real| *real != path);
        paths.push(path);
        paths.extend(real);
    }
    paths
}

/// Whether `dir` is a `.cargo` directory.
fn in_dot_cargo(dir: Option<&Path>) -> bool {
    dir.and_then(Path::file_name).is_some_and(|d| d == ".cargo")
}

/// The text of `file`, if it can be read whole as UTF-8 (lossily).
fn text(file: &Path) -> Option<String> {
    read_capped(file).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// An `hgrc` (or a file it includes) of the repository at `root`: what
/// `%include` names (from the including file's directory, followed), each
/// `[extensions]` path and each `[hooks]` file (`python:PATH:FUNC`, or a
/// shell command's words holding a `/`), from the root.
/// Each file is followed once (`included`, at most [`MAX_INCLUDED`]); one
/// included again is named again.
fn hgrc(
    file: &Path,
    root: &Path,
    home: &Path,
    depth: usize,
    included: &mut HashSet<PathBuf>,
    out: &mut Vec<PathBuf>,
) {
    if depth > MAX_INCLUDE_DEPTH {
        return;
    }
    let Some(text) = text(file) else {
        return;
    };
    let mut section = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("%include") {
            if rest.starts_with([' ', '\t']) {
                if let Some(name) = resolve(rest.trim(), file.parent(), home) {
                    let name = crate::broker::safe_open::normalize(&name);
                    out.push(name.clone());
                    if included.len() < MAX_INCLUDED && included.insert(name.clone()) {
                        hgrc(&name, root, home, depth + 1, included, out);
                    }
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            if let Some((name, _)) = rest.split_once(']') {
                section = name.trim().to_owned();
            }
            continue;
        }
        if line.starts_with([' ', '\t', ';', '#']) {
            continue;
        }
        let Some((_, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let paths: Vec<&str> = match section.as_str() {
            "extensions" if !value.starts_with('!') => vec![value],
            "hooks" => match value.strip_prefix("python:") {
                Some(rest) => rest.rsplit_once(':').map(|(p, _)| p).into_iter().collect(),
                None => value
                    .split_whitespace()
                    .filter(|w| w.contains('/'))
                    .collect(),
            },
            _ => Vec::new(),
        };
        out.extend(
            paths
                .into_iter()
                .filter_map(|p| resolve(p, Some(root), home)),
        );
    }
}

/// A `.yarnrc.yml`: `yarnPath` and each plugin's `path` (a plugin written
/// `- PATH`, or an item with `path: PATH`), from the file's directory.
fn yarnrc_yml(file: &Path, home: &Path, out: &mut Vec<PathBuf>) {
    let Some(text) = text(file) else {
        return;
    };
    let mut in_plugins = false;
    for line in text.lines() {
        let top = !line.starts_with([' ', '\t', '-']);
        if top {
            in_plugins = line.starts_with("plugins:");
        }
        let value = if top {
            line.strip_prefix("yarnPath:")
        } else if in_plugins {
            // `- PATH`, or `path: PATH` of an item (its first line or not).
            let line = line.trim_start();
            let item = line.strip_prefix('-').map(str::trim_start);
            let entry = item.unwrap_or(line);
            match entry.strip_prefix("path:") {
                Some(path) => Some(path),
                None => item.filter(|i| !i.contains(": ")),
            }
        } else {
            None
        };
        let value = value.map(|v| v.trim().trim_matches(['"', '\'']));
        if let Some(path) = value.filter(|v| !v.is_empty() && !v.ends_with(':')) {
            out.extend(resolve(path, file.parent(), home));
        }
    }
}

/// A `.cargo/config.toml` (or `config`): the programs cargo runs for the
/// compiler's version on any build, `cargo metadata` too (`build.rustc`,
/// `rustc-wrapper`, `rustc-workspace-wrapper`), where named by a path (a
/// bare name is looked up on `PATH`): from the directory holding `.cargo`,
/// as cargo takes a configuration's relative path.
fn cargo_config(file: &Path, home: &Path, out: &mut Vec<PathBuf>) {
    let Some(table) = text(file).and_then(|t| t.parse::<toml::Table>().ok()) else {
        return;
    };
    let Some(build) = table.get("build").and_then(toml::Value::as_table) else {
        return;
    };
    let base = file.parent().and_then(Path::parent);
    for key in ["rustc", "rustc-wrapper", "rustc-workspace-wrapper"] {
        let value = build.get(key).and_then(toml::Value::as_str);
        if let Some(path) = value.filter(|v| v.contains('/')) {
            out.extend(resolve(path, base, home));
        }
    }
}

/// A `.yarnrc` (yarn 1): `yarn-path`, from the file's directory.
fn yarnrc(file: &Path, home: &Path, out: &mut Vec<PathBuf>) {
    let Some(text) = text(file) else {
        return;
    };
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("yarn-path") else {
            continue;
        };
        let value = rest.trim().trim_matches(['"', '\'']);
        if rest.starts_with([' ', '\t']) && !value.is_empty() {
            out.extend(resolve(value, file.parent(), home));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn an_hgrc_names_its_includes_extensions_and_hook_files() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().canonicalize().unwrap();
        let home = Path::new("/home/p");
        let hgrc = write(
            &ws,
            "r/.hg/hgrc",
            "[paths]\ndefault = ../up\n%include ../team.hgrc\n\
             [extensions]\nrebase =\nmine = tools/hgext.py\noff = !tools/off.py\n\
             [hooks]\npre-status = sh scripts/check.sh --quick\n\
             commit.py = python:hooks/c.py:run\nin = python:hgext.x.y\n",
        );
        write(&ws, "r/team.hgrc", "%include ~/shared.hgrc\n");
        let named = named(&[hgrc], home);
        let r = ws.join("r");
        let want = [
            r.join("team.hgrc"),
            home.join("shared.hgrc"),
            r.join("tools/hgext.py"),
            r.join("scripts/check.sh"),
            r.join("hooks/c.py"),
        ];
        assert_eq!(named, want);
    }

    #[test]
    fn a_yarnrc_names_yarns_release_and_plugins() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().canonicalize().unwrap();
        let home = Path::new("/home/p");
        let yml = write(
            &ws,
            "app/.yarnrc.yml",
            "nodeLinker: node-modules\nyarnPath: \"scripts/yarn.cjs\"\nplugins:\n  \
             - path: .yarn/plugins/a.cjs\n    spec: x\n  - ../p/b.cjs\n  - spec: y\n    path: c.cjs\n\
             enableTelemetry: false\n",
        );
        let v1 = write(&ws, "old/.yarnrc", "yarn-path \"./bin/yarn.js\"\n");
        let other = write(&ws, "x/.hg/config", "%include evil\n");
        let named = named(&[yml, v1, other], home);
        let want = [
            ws.join("app/scripts/yarn.cjs"),
            ws.join("app/.yarn/plugins/a.cjs"),
            ws.join("p/b.cjs"),
            ws.join("app/c.cjs"),
            ws.join("old/bin/yarn.js"),
        ];
        assert_eq!(named, want);
    }

    #[test]
    fn a_cargo_configuration_names_the_compilers_wrapper() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().canonicalize().unwrap();
        let home = Path::new("/home/p");
        let toml = write(
            &ws,
            "c/.cargo/config.toml",
            "[build]\nrustc-wrapper = \"tools/wrap.sh\"\nrustc = \"sccache\"\n\
             [env]\nX = \"a/b\"\n",
        );
        let legacy = write(&ws, "d/.cargo/config", "build.rustc = \"~/bin/rustc\"\n");
        let not_cargo = write(&ws, "e/config", "[build]\nrustc = \"x/y\"\n");
        let named = named(&[toml, legacy, not_cargo], home);
        assert_eq!(named, [ws.join("c/tools/wrap.sh"), home.join("bin/rustc")]);
    }

    #[test]
    fn includes_stop_at_the_depth_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().canonicalize().unwrap();
        // A chain of distinct files, each including the next.
        for i in 0..MAX_INCLUDE_DEPTH + 5 {
            write(
                &ws,
                &format!("r/{i}.hgrc"),
                &format!("%include {}.hgrc\n", i + 1),
            );
        }
        let hgrc = write(&ws, "r/.hg/hgrc", "%include ../0.hgrc\n");
        let named = named(&[hgrc], Path::new("/home/p"));
        assert_eq!(named.len(), MAX_INCLUDE_DEPTH + 1);
    }

    /// attack15: an `hgrc` including itself many times, and a file
    /// including more distinct files than the launch reads: each file is
    /// read once, at most `MAX_INCLUDED`, and what is named is still
    /// named, each once. Mutation-checked: followed each time it is named,
    /// the test ran until killed (16^10 reads); each name kept, the wide
    /// one named 266 times over.
    #[test]
    fn an_include_bomb_is_read_once_and_within_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().canonicalize().unwrap();
        let hgrc = write(&ws, "r/.hg/hgrc", &"%include hgrc\n".repeat(16));
        assert_eq!(
            named(std::slice::from_ref(&hgrc), Path::new("/home/p")),
            [hgrc]
        );
        // A wide one: each of many files includes them all.
        let many = MAX_INCLUDED + 10;
        let all: String = (0..many).map(|i| format!("%include {i}.hgrc\n")).collect();
        for i in 0..many {
            write(&ws, &format!("w/.hg/{i}.hgrc"), &all);
        }
        let wide = write(&ws, "w/.hg/hgrc", &all);
        let named = named(&[wide], Path::new("/home/p"));
        assert_eq!(named.len(), many);
        assert!(named.contains(&ws.join(format!("w/.hg/{}.hgrc", many - 1))));
    }
}
