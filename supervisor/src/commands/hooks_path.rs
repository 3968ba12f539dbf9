//! The hooks directory git's configuration names (`core.hooksPath`): where
//! the person's next commit, checkout or merge runs hooks from, which
//! `default`'s `protect` list names only at `.git/hooks` and `.husky`.
//! A repository that keeps its hooks in its work tree (`.githooks`,
//! `scripts/hooks`) would otherwise have them written by the program.
//! Likewise the files a configuration includes (`include.path`,
//! `includeIf.COND.path`): git reads each as part of the including one, so
//! a `core.fsmonitor` the program wrote into `../.gitconfig` of a
//! repository set up with `git config include.path ../.gitconfig` would run
//! on the person's next `git status`.
//!
//! [`to_protect`] reads the value as git would for the workspace's
//! repository (its own configuration, then the person's global ones and
//! the system's) and gives the directory it names, which the launch adds
//! to the `protect` list as a tree; every file those configurations
//! include, and what those include in turn, is added too, with the hooks
//! directory each names. Repositories nested in the workspace (a `.git`
//! directory, or a submodule's or worktree's `.git` file) are found by the
//! launch's walk for the `deny` patterns, which needs no walk of its own,
//! and [`to_protect_nested`] reads each one's own. A linked worktree's
//! (the workspace's own `.git` file too) is read with its common
//! directory's configuration, whose relative `core.hooksPath` names a
//! directory of the worktree. Not read: `GIT_CONFIG_*` variables.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The most of one configuration file read.
const MAX_CONFIG: u64 = 1 << 20;

/// How deep includes are followed: git's own limit (`MAX_INCLUDE_DEPTH`).
const MAX_INCLUDE_DEPTH: usize = 10;

/// The paths to protect for the hooks directory git's configuration names
/// for the repository whose `.git` is `git_entry` (a
/// directory, or a worktree's or submodule's file naming one; `None`: the
/// workspace is in none): the directory as named and, where it is a
/// symlink on the way, where it leads (the guard judges real paths);
/// nothing where it is something else than a directory (`core.hooksPath =
/// /dev/null` turns hooks off, and `/dev/null` must stay writable). Then
/// every file the configurations include ([`included`]), with the hooks
/// directory each names (wherever it stands among them: a superset of
/// git's answer).
pub fn to_protect(git_entry: Option<&Path>, home: &Path) -> Vec<PathBuf> {
    let work_tree = git_entry.and_then(Path::parent);
    let git_dir = git_entry.and_then(git_dir_of);
    let mut files = git_dir.as_deref().map_or_else(Vec::new, repository_files);
    files.extend(global_files(home));
    let mut paths = from_files(&files, work_tree, home);
    paths.extend(git_dir.as_deref().map_or_else(Vec::new, linked_out));
    paths
}

/// [`to_protect`] for a repository nested in the workspace, found by the
/// launch's walk at `git_entry`: only its own configuration is read (the
/// global ones are read once, for the workspace).
pub fn to_protect_nested(git_entry: &Path, home: &Path) -> Vec<PathBuf> {
    let (Some(work_tree), Some(git_dir)) = (git_entry.parent(), git_dir_of(git_entry)) else {
        return Vec::new();
    };
    let mut paths = from_files(&repository_files(&git_dir), Some(work_tree), home);
    paths.extend(linked_out(&git_dir));
    paths
}

/// Where the entries of `git_dir` that run code or name a configuration
/// (`hooks`, `config`, `config.worktree`, `commondir`) lead where one is a
/// symlink (projects keep their hooks in the work tree and link
/// `.git/hooks` to them): the guard judges real paths, which `default`'s
/// patterns name only inside a `.git`.
fn linked_out(git_dir: &Path) -> Vec<PathBuf> {
    ["hooks", "config", "config.worktree", "commondir"]
        .iter()
        .map(|name| git_dir.join(name))
        .filter(|entry| entry.symlink_metadata().is_ok_and(|m| m.is_symlink()))
        .filter_map(|entry| entry.canonicalize().ok())
        .collect()
}

/// What [`to_protect`] gives for the configuration `files` (highest
/// precedence first) of the work tree `work_tree`.
fn from_files(files: &[PathBuf], work_tree: Option<&Path>, home: &Path) -> Vec<PathBuf> {
    let value =
        (files.iter()).find_map(|file| crate::broker::guard::hooks_path(&read_capped(file)?));
    let mut paths = value
        .and_then(|v| resolve(&v, work_tree, home))
        .map_or_else(Vec::new, tree);
    let mut includes = Vec::new();
    for file in files {
        included(file, home, 0, &mut includes);
    }
    paths.extend(protect_included(&includes, work_tree, home));
    paths
}

/// The git directory of the `.git` entry `git_entry`: itself, or the one a
/// `.git` file names (`gitdir: PATH`, relative to its work tree).
fn git_dir_of(git_entry: &Path) -> Option<PathBuf> {
    let meta = std::fs::metadata(git_entry).ok()?;
    if meta.is_dir() {
        return Some(git_entry.to_path_buf());
    }
    let dir = gitfile_target(&read_capped(git_entry)?)?;
    Some(git_entry.parent()?.join(dir))
}

/// The configuration files of the repository whose git directory is
/// `git_dir`, highest precedence first: a linked worktree's
/// `config.worktree`, then the configuration of the common directory its
/// `commondir` names (where the main work tree's `core.hooksPath`, relative,
/// names a directory of this work tree too), or its own.
fn repository_files(git_dir: &Path) -> Vec<PathBuf> {
    let common = read_capped(&git_dir.join("commondir"))
        .and_then(|text| String::from_utf8(text).ok())
        .map(|text| text.lines().next().unwrap_or("").trim().to_owned())
        .filter(|dir| !dir.is_empty())
        .map(|dir| git_dir.join(dir));
    let mut files = vec![git_dir.join("config.worktree")];
    if let Some(common) = &common {
        files.push(common.join("config.worktree"));
        files.push(common.join("config"));
    }
    files.push(git_dir.join("config"));
    files
}

/// The files `config` includes, each resolved as git resolves it (`~/`
/// from the home directory, a relative path from the including file's
/// directory), and what they include in turn, at most [`MAX_INCLUDE_DEPTH`]
/// deep, added to `out` (each once). A file not there yet is listed too:
/// the program must not make it either.
fn included(config: &Path, home: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth >= MAX_INCLUDE_DEPTH {
        return;
    }
    let Some(text) = read_capped(config) else {
        return;
    };
    let from = config.parent().unwrap_or(Path::new("/"));
    for value in crate::broker::guard::include_paths(&text).unwrap_or_default() {
        let Some(file) = resolve(&value, Some(from), home) else {
            continue;
        };
        // The guard judges real paths: `.git/../.gitconfig` is the work
        // tree's file (where it is a symlink, [`protect_included`] adds
        // where it leads).
        let file = crate::broker::safe_open::normalize(&file);
        if !out.contains(&file) {
            out.push(file.clone());
            included(&file, home, depth + 1, out);
        }
    }
}

/// The paths to protect for included configuration files: each as named
/// and where a symlink leads it, and the hooks directory each names.
fn protect_included(files: &[PathBuf], work_tree: Option<&Path>, home: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for file in files {
        paths.push(file.clone());
        paths.extend((file.canonicalize().ok()).filter(|real| real != file));
        let value = read_capped(file).and_then(|text| crate::broker::guard::hooks_path(&text));
        if let Some(dir) = value.and_then(|v| resolve(&v, work_tree, home)) {
            paths.extend(tree(dir));
        }
    }
    paths
}

/// The directory a `.git` file names (`gitdir: PATH`), as written.
fn gitfile_target(text: &[u8]) -> Option<PathBuf> {
    let text = std::str::from_utf8(text).ok()?;
    let dir = text.lines().next()?.strip_prefix("gitdir:")?.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// At most [`MAX_CONFIG`] bytes of `file`; `None` if it cannot be read or
/// is not a regular file (a FIFO planted as a `config` would hold the
/// launch: it is opened without waiting and not read).
pub(super) fn read_capped(file: &Path) -> Option<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(file)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = Vec::new();
    f.by_ref().take(MAX_CONFIG).read_to_end(&mut text).ok()?;
    Some(text)
}

/// The paths to protect for the hooks directory `dir`: see [`to_protect`].
fn tree(dir: PathBuf) -> Vec<PathBuf> {
    match std::fs::metadata(&dir) {
        Ok(meta) if !meta.is_dir() => Vec::new(),
        Ok(_) => {
            let real = dir.canonicalize().ok().filter(|real| *real != dir);
            std::iter::once(dir).chain(real).collect()
        }
        // Not there yet: the program must not make it either.
        Err(_) => vec![dir],
    }
}

/// The person's global configuration files and the system's, highest
/// precedence first (the repository's own come before them).
fn global_files(home: &Path) -> Vec<PathBuf> {
    let xdg = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("git/config"),
        _ => home.join(".config/git/config"),
    };
    vec![
        home.join(".gitconfig"),
        xdg,
        PathBuf::from("/etc/gitconfig"),
    ]
}

/// `value` as git takes it: `~/` from the home directory, a relative path
/// from `base` (the work tree's top for a hooks directory, where hooks run;
/// the including file's directory for an include).
pub(super) fn resolve(value: &str, base: Option<&Path>, home: &Path) -> Option<PathBuf> {
    if value.is_empty() {
        return None;
    }
    if let Some(rest) = value.strip_prefix("~/") {
        return Some(home.join(rest));
    }
    let path = Path::new(value);
    if path.is_absolute() {
        return Some(path.to_path_buf());
    }
    Some(base?.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hooks_path_resolves_as_git_takes_it() {
        let home = Path::new("/home/p");
        let tree = Some(Path::new("/ws"));
        assert_eq!(
            resolve(".githooks", tree, home),
            Some("/ws/.githooks".into())
        );
        assert_eq!(resolve("~/hooks", tree, home), Some("/home/p/hooks".into()));
        assert_eq!(resolve("/etc/h", tree, home), Some("/etc/h".into()));
        assert_eq!(resolve(".githooks", None, home), None);
        assert_eq!(resolve("", tree, home), None);
    }

    #[test]
    fn only_a_directory_or_nothing_yet_is_protected() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(t.join("ws/.git")).unwrap();
        std::fs::create_dir_all(t.join("ws/tools/hooks")).unwrap();
        let git = t.join("ws/.git");
        let set = |value: &str| {
            let text = format!("[core]\n\thooksPath = {value}\n");
            std::fs::write(git.join("config"), text).unwrap();
            to_protect(Some(&git), &t)
        };
        assert_eq!(set("/dev/null"), Vec::<PathBuf>::new());
        assert_eq!(set(".githooks"), vec![t.join("ws/.githooks")]);
        std::os::unix::fs::symlink("tools/hooks", t.join("ws/.githooks")).unwrap();
        assert_eq!(
            set(".githooks"),
            vec![t.join("ws/.githooks"), t.join("ws/tools/hooks")]
        );
    }

    #[test]
    fn the_repositorys_own_value_comes_before_the_global_one() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(ws.join(".git")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".gitconfig"), "[core]\n\thooksPath = ~/global\n").unwrap();
        assert_eq!(
            to_protect(Some(&ws.join(".git")), &home),
            vec![home.join("global")]
        );
        std::fs::write(
            ws.join(".git/config"),
            "[core]\n\tbare = false\n[core]\n\thooksPath = \".githooks\"\n",
        )
        .unwrap();
        assert_eq!(
            to_protect(Some(&ws.join(".git")), &home),
            vec![ws.join(".githooks")]
        );
    }

    #[test]
    fn a_nested_repository_is_read_through_its_git_file_too() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().canonicalize().unwrap();
        let home = t.join("home");
        // A submodule: `sub/.git` names `.git/modules/sub`.
        std::fs::create_dir_all(t.join("ws/.git/modules/sub")).unwrap();
        std::fs::create_dir_all(t.join("ws/sub")).unwrap();
        std::fs::write(t.join("ws/sub/.git"), "gitdir: ../.git/modules/sub\n").unwrap();
        let entry = t.join("ws/sub/.git");
        assert_eq!(to_protect_nested(&entry, &home), Vec::<PathBuf>::new());
        std::fs::write(
            t.join("ws/.git/modules/sub/config"),
            "[core]\n\thooksPath = hooks-here\n",
        )
        .unwrap();
        assert_eq!(
            to_protect_nested(&entry, &home),
            vec![t.join("ws/sub/hooks-here")]
        );
        // A nested repository's own `.git` directory; the global value is
        // not read again for it.
        std::fs::create_dir_all(t.join("ws/b/.git")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".gitconfig"), "[core]\n\thooksPath = ~/g\n").unwrap();
        assert_eq!(
            to_protect_nested(&t.join("ws/b/.git"), &home),
            Vec::<PathBuf>::new()
        );
        std::fs::write(t.join("ws/b/.git/config"), "[core]\n\thooksPath = .h\n").unwrap();
        assert_eq!(
            to_protect_nested(&t.join("ws/b/.git"), &home),
            vec![t.join("ws/b/.h")]
        );
        // Not a `gitdir:` file: nothing.
        std::fs::write(t.join("ws/b/.git2"), "something else\n").unwrap();
        assert_eq!(gitfile_target(b"something else\n"), None);
        assert_eq!(gitfile_target(b"gitdir: x\n"), Some(PathBuf::from("x")));
    }

    #[test]
    fn the_files_a_configuration_includes_are_protected_with_their_hooks() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().canonicalize().unwrap();
        let (ws, home) = (t.join("ws"), t.join("home"));
        std::fs::create_dir_all(ws.join(".git")).unwrap();
        std::fs::create_dir_all(ws.join(".hk")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let git = ws.join(".git");
        // Relative to the including file's directory, `~/`, any condition,
        // and what an included file includes in turn, with its hooks.
        std::fs::write(
            git.join("config"),
            "[include]\n\tpath = ../.gitconfig\n\
             [includeIf \"gitdir:/elsewhere/\"]\n\tpath = \"~/inc\"\n",
        )
        .unwrap();
        std::fs::write(
            ws.join(".gitconfig"),
            "[core]\n\thooksPath = .hk\n[include]\n\tpath = deeper\n",
        )
        .unwrap();
        // A loop is followed once.
        std::fs::write(ws.join("deeper"), "[include]\n\tpath = .gitconfig\n").unwrap();
        let got = to_protect(Some(&git), &home);
        for want in [
            ws.join(".gitconfig"),
            home.join("inc"),
            ws.join("deeper"),
            ws.join(".hk"),
        ] {
            assert!(got.contains(&want), "{want:?} in {got:?}");
        }
        // The same read for a nested repository's own configuration.
        let got = to_protect_nested(&git, &home);
        assert!(got.contains(&ws.join(".gitconfig")), "{got:?}");
        assert!(got.contains(&ws.join("deeper")), "{got:?}");
        // Control: a configuration that includes nothing adds nothing.
        std::fs::write(git.join("config"), "[core]\n\tbare = false\n").unwrap();
        assert_eq!(to_protect_nested(&git, &home), Vec::<PathBuf>::new());
    }

    #[test]
    fn a_linked_worktree_is_read_with_its_common_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().canonicalize().unwrap();
        let home = t.join("home");
        // `git worktree add ../ws` in `main`: `ws/.git` names the
        // worktree's directory, whose `commondir` names `main/.git`.
        let wt_git = t.join("main/.git/worktrees/ws");
        std::fs::create_dir_all(&wt_git).unwrap();
        std::fs::create_dir_all(t.join("ws")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(t.join("ws/.git"), format!("gitdir: {}\n", wt_git.display())).unwrap();
        std::fs::write(wt_git.join("commondir"), "../..\n").unwrap();
        let entry = t.join("ws/.git");
        assert_eq!(to_protect_nested(&entry, &home), Vec::<PathBuf>::new());
        std::fs::write(
            t.join("main/.git/config"),
            "[core]\n\thooksPath = .githooks\n[include]\n\tpath = ../shared.gitconfig\n",
        )
        .unwrap();
        // Relative to this work tree, as git runs the hooks of each.
        let want = [t.join("ws/.githooks"), t.join("main/shared.gitconfig")];
        assert_eq!(to_protect_nested(&entry, &home), want);
        let got = to_protect(Some(&entry), &home);
        assert!(want.iter().all(|w| got.contains(w)), "{got:?}");
        // The worktree's own configuration comes first.
        std::fs::write(
            wt_git.join("config.worktree"),
            "[core]\n\thooksPath = mine\n",
        )
        .unwrap();
        assert_eq!(to_protect_nested(&entry, &home)[0], t.join("ws/mine"));
    }

    #[test]
    fn where_a_git_directorys_symlinked_entries_lead_is_protected() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().canonicalize().unwrap();
        let git = t.join("sub/.git");
        std::fs::create_dir_all(&git).unwrap();
        std::fs::create_dir_all(t.join("sub/scripts/hooks")).unwrap();
        std::fs::write(t.join("sub/gitconfig"), "[core]\n\tbare = false\n").unwrap();
        // Control: plain entries add nothing.
        std::fs::create_dir_all(git.join("hooks")).unwrap();
        assert_eq!(to_protect_nested(&git, &t), Vec::<PathBuf>::new());
        std::fs::remove_dir(git.join("hooks")).unwrap();
        std::os::unix::fs::symlink("../scripts/hooks", git.join("hooks")).unwrap();
        std::os::unix::fs::symlink("../gitconfig", git.join("config")).unwrap();
        assert_eq!(
            to_protect_nested(&git, &t),
            vec![t.join("sub/scripts/hooks"), t.join("sub/gitconfig")]
        );
    }

    #[test]
    fn a_configuration_that_is_not_a_file_is_not_waited_for() {
        let tmp = tempfile::tempdir().unwrap();
        let git = tmp.path().join("ws/.git");
        std::fs::create_dir_all(&git).unwrap();
        nix::unistd::mkfifo(&git.join("config"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        // A FIFO with no writer: opened without waiting, and not read.
        assert_eq!(to_protect_nested(&git, tmp.path()), Vec::<PathBuf>::new());
        assert_eq!(read_capped(&git.join("config")), None);
        // Control: a regular file is read.
        std::fs::remove_file(git.join("config")).unwrap();
        std::fs::write(git.join("config"), "[core]\n\thooksPath = h\n").unwrap();
        assert_eq!(
            to_protect_nested(&git, tmp.path()),
            vec![tmp.path().join("ws/h")]
        );
    }
}
