//! What the guard refuses: pure decisions on real paths, no kernel calls.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use policies::Protect;

/// The prefix of the names the guard itself makes (a git configuration's
/// copy on its way into place): never the program's to touch.
pub const OWN_PREFIX: &[u8] = b".sluice-guard-";

/// What a call does to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Opened for writing, created, truncated (an open).
    Write,
    /// A directory made (empty: what is put in it is judged then).
    Mkdir,
    /// A new name made for something that exists or is given: the
    /// destination of a rename or link, a symlink, a device node.
    Name,
    /// The existing file a hard link is made to.
    LinkSource,
    /// The name a rename takes away.
    RenameSource,
    /// A mode that makes the file executable (nothing is made: a directory
    /// on the way to a protected path may change its mode).
    Chmod,
    /// An extended attribute set (an access ACL can make it executable).
    Xattr,
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rule, as the person would write it, or a sentence.
    pub rule: String,
    pub why: &'static str,
}

/// The refusal for `act` on `path` (absolute, real), or `None`.
pub fn judge(protect: &Protect, path: &Path, act: Act) -> Option<Refusal> {
    let own = path
        .file_name()
        .is_some_and(|n| n.as_bytes().starts_with(OWN_PREFIX));
    if own {
        return Some(Refusal {
            rule: "sluice's own temporary file".to_owned(),
            why: "a file sluice is putting in place",
        });
    }
    if matches!(act, Act::Chmod | Act::Xattr) && is_git_config(path) {
        // Read, never run; and `git init` sets and clears its execute bit
        // to learn whether the file system keeps modes (`core.filemode`).
        return None;
    }
    if let Some(rule) = protect.protects(path) {
        let why = match act {
            Act::Write | Act::Mkdir | Act::Name => "it runs code outside the sandbox later",
            Act::Chmod => "made executable, it would run outside the sandbox later",
            Act::Xattr => "an access list could make it executable",
            Act::LinkSource => "a second name for it would be writable",
            Act::RenameSource => return None,
        };
        return Some(Refusal {
            rule: rule.to_string(),
            why,
        });
    }
    if matches!(act, Act::Write | Act::Name) {
        if let Some(rule) = protect.leads_to(path) {
            return Some(Refusal {
                rule: rule.to_string(),
                why: "a protected path would lie beneath this new name",
            });
        }
    }
    None
}

/// The refusal for making the name `dst` (a rename's, link's or exchange's
/// destination, a symlink, a device node) inside a protected tree (a
/// pattern with `**` in the middle, [`Protect::region`]) from `src`, or
/// `None`. Beneath such a tree any name may lead to a protected path, and
/// what is in it was judged by its rules when it was written there: so a
/// name is made there only from within the same tree (git's objects and refs
/// are renamed into place beside their temporary files), never moved,
/// linked or symlinked in from outside (`mv evil .git/modules/x`).
pub fn judge_region(protect: &Protect, src: Option<&Path>, dst: &Path) -> Option<Refusal> {
    let (rule, root) = protect.region(dst)?;
    if src.is_some_and(|src| src.starts_with(&root) && src != root) {
        return None;
    }
    Some(Refusal {
        rule: rule.to_string(),
        why: "only what is already in this protected tree may be given a name in it",
    })
}

/// Whether `path` is a repository's own configuration, which a program may
/// write whole (through a rename, as git does) when the content passes
/// [`super::gitconfig::check`]: `.git/config`, a submodule's in
/// `.git/modules/NAME/` (a name may hold `/`), a worktree's
/// `.git/worktrees/NAME/config.worktree`, and `config.worktree` beside each.
pub fn is_git_config(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.as_bytes());
    if !matches!(name, Some(b"config" | b"config.worktree")) {
        return false;
    }
    let dirs: Vec<&[u8]> = path
        .parent()
        .map(|p| p.iter().map(|c| c.as_bytes()).collect())
        .unwrap_or_default();
    let from_end = |i: usize| dirs.len().checked_sub(i + 1).map(|at| dirs[at]);
    let submodule = dirs
        .windows(2)
        .take(dirs.len().saturating_sub(2))
        .any(|w| w == [&b".git"[..], &b"modules"[..]]);
    let worktree = from_end(1) == Some(b"worktrees") && from_end(2) == Some(b".git");
    from_end(0) == Some(b".git") || submodule || worktree
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protect() -> Protect {
        Protect::from_patterns([
            "**/.git/hooks/*",
            "!**/.git/hooks/*.sample",
            "**/.git/config",
            "**/.vscode",
        ])
        .unwrap()
    }

    #[test]
    fn writes_and_new_names_on_protected_paths_are_refused() {
        let p = protect();
        let j = |path: &str, act| judge(&p, Path::new(path), act).is_some();
        assert!(j("/ws/sub/.git/hooks/pre-commit", Act::Write));
        assert!(j("/ws/sub/.git/hooks/pre-commit", Act::Name));
        assert!(!j("/ws/.git/hooks/pre-commit.sample", Act::Write));
        assert!(j("/ws/.vscode", Act::Mkdir));
        assert!(j("/ws/.vscode/tasks.json", Act::Write));
        // On the way: a new name `.git` (a rename, a symlink, or a file
        // pointing git elsewhere) is refused, an empty directory is not.
        assert!(j("/ws/.git", Act::Name));
        assert!(j("/ws/.git", Act::Write));
        assert!(!j("/ws/.git", Act::Mkdir));
        assert!(!j("/ws/.git/hooks", Act::Mkdir));
        assert!(j("/ws/x/.git/hooks", Act::Name));
        // A second name for a protected file; taking one away is allowed.
        assert!(j("/ws/.git/config", Act::LinkSource));
        assert!(!j("/ws/.git/config", Act::RenameSource));
        assert!(!j("/ws/src/main.rs", Act::Write));
        assert!(j("/ws/.git/.sluice-guard-1", Act::Write));
        // A hook made executable; the directories on the way may change mode.
        assert!(j("/ws/sub/.git/hooks/pre-commit", Act::Chmod));
        assert!(!j("/ws/sub/.git/hooks", Act::Chmod));
        assert!(!j("/ws/sub/.git/hooks/pre-commit.sample", Act::Chmod));
        assert!(!j("/ws/build.sh", Act::Chmod));
        assert!(!j("/ws/.git/config", Act::Chmod));
        assert!(j("/ws/.sluice-guard-1", Act::RenameSource));
    }

    #[test]
    fn git_configuration_is_told_apart() {
        assert!(is_git_config(Path::new("/ws/.git/config")));
        assert!(is_git_config(Path::new("/ws/a/.git/config.worktree")));
        assert!(is_git_config(Path::new("/ws/.git/modules/x/config")));
        assert!(is_git_config(Path::new("/ws/.git/modules/lib/x/config")));
        assert!(is_git_config(Path::new(
            "/ws/.git/worktrees/w/config.worktree"
        )));
        assert!(!is_git_config(Path::new("/ws/.git/modules/config")));
        assert!(!is_git_config(Path::new("/ws/.git/worktrees/config")));
        assert!(!is_git_config(Path::new("/ws/.git/modules/x/HEAD")));
        assert!(!is_git_config(Path::new("/ws/config")));
    }

    #[test]
    fn names_in_a_protected_tree_come_only_from_within_it() {
        let p = Protect::from_patterns(["**/.git/modules/**/config"]).unwrap();
        let j = |src: Option<&str>, dst: &str| {
            judge_region(&p, src.map(Path::new), Path::new(dst)).is_some()
        };
        let objects = "/ws/.git/modules/a/objects/ab/cd";
        assert!(!j(Some("/ws/.git/modules/a/objects/tmp_obj"), objects));
        assert!(!j(Some("/ws/.git/modules/b/x"), objects));
        assert!(j(Some("/ws/evil"), "/ws/.git/modules/a"));
        assert!(j(Some("/ws/evil/objects"), objects));
        assert!(j(Some("/ws/.git/modules"), objects));
        assert!(j(None, objects));
        assert!(!j(Some("/ws/evil"), "/ws/src/x"));
        assert!(!j(None, "/ws/.git/modules"));
    }
}
