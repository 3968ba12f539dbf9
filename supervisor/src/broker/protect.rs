//! What the guard refuses, and the broker's own writes too (`decide::judge`):
//! pure decisions on real paths under `[filesystem] protect`, no kernel
//! calls; shared by both platforms.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
        let head = path.file_name().is_some_and(|n| n.as_bytes() == HEAD);
        let why = match act {
            Act::Write | Act::Mkdir | Act::Name if head => HEAD_WHY,
            Act::Write | Act::Mkdir | Act::Name if !rule.pinned() => BYTECODE_WHY,
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

/// What holds a name the program chooses that the person's tools print
/// later: a file's name, a symlink's target (`ls -l`, `find -printf %l`),
/// an extended attribute's name (`getfattr -d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    File,
    Target,
    Attribute,
}

/// Why a name holding a control character is not made: said with it.
pub const NAME_WHY: &str = "a terminal acts on it when the person's tools print the \
    name later (grep -r, find, git status with core.quotePath=false, a build log: \
    OSC 52 sets the clipboard, CSI rewrites the screen)";

/// The refusal for making a name holding a character a terminal acts on
/// ([`crate::audit::escape::terminal_control`]: C0 and C1 controls, DEL,
/// a lone byte 0x80 to 0x9F), or `None`. Whatever the path and the
/// policy's lists: such a name reaches the person's terminal from any
/// directory they list or search later, and a directory made where it
/// would be allowed (the session's TMPDIR) could be moved, names and all.
pub fn judge_name(name: &[u8], naming: Naming) -> Option<Refusal> {
    let control = crate::audit::escape::terminal_control(name)?;
    let what = match naming {
        Naming::File => "a name",
        Naming::Target => "a symlink's target",
        Naming::Attribute => "an extended attribute's name",
    };
    Some(Refusal {
        rule: format!("{what} holding the control character {control}"),
        why: NAME_WHY,
    })
}

/// The module an extension module's file name is for, Python's way
/// (`FileFinder`, any of the `.so` suffixes: `a.so`, `a.abi3.so`,
/// `a.cpython-311-x86_64-linux-gnu.so` are `a`): the name up to its first
/// dot, for a name ending `.so`; `None` for any other.
pub fn extension_module(name: &[u8]) -> Option<&[u8]> {
    let stem = name.strip_suffix(b".so")?;
    let module = stem.split(|&b| b == b'.').next()?;
    (!module.is_empty()).then_some(module)
}

/// Whether `name` is a package's initialisation module, which Python
/// imports for the package: `__init__.py`, or an extension module
/// `__init__` (`__init__.cpython-311-x86_64-linux-gnu.so`).
pub fn is_package_init(name: &[u8]) -> bool {
    name == b"__init__.py" || extension_module(name) == Some(b"__init__")
}

/// Why a package and a source of its name are not made beside each other.
const PACKAGE_WHY: &str = "Python imports the package, not the source of its name \
    beside it, and a .gitignore of `*` in the package hides it from the person's review \
    (to turn the module into a package, move the source in: `git mv a.py a/__init__.py`)";

/// Why an extension module and a source of the same module are not made
/// beside each other: said with the path.
const EXTENSION_WHY: &str = "Python imports the extension module, not the source of \
    the same name beside it, and `*.so` is in every Python .gitignore: the person's review \
    shows the source while the binary runs (build it outside sluice, or out of place: \
    `build_ext` without --inplace)";

/// What shadows a Python source of the same module name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shadow {
    /// An extension module, `a.so` beside `a.py`.
    Extension,
    /// A package, `a/__init__.py` beside `a.py`.
    Package,
}

/// The refusal for `shadow` made beside the source `other` (`a.py`), or
/// (`source_made`) for a source made beside `other`, the `shadow`.
pub fn shadow_refusal(shadow: Shadow, other: &[u8], source_made: bool) -> Refusal {
    let other =
        crate::audit::escape::for_terminal(&crate::audit::escape::escape_bytes(other)).into_owned();
    let (a, the, why) = match shadow {
        Shadow::Extension => ("an extension module", "the extension module", EXTENSION_WHY),
        Shadow::Package => ("a package", "the package", PACKAGE_WHY),
    };
    let rule = if source_made {
        format!("a Python source beside {the} {other}")
    } else {
        format!("{a} beside the Python source {other}")
    };
    Refusal { rule, why }
}

/// The name that makes a directory a git repository to git's discovery
/// (`setup.c`, `is_git_directory`: a valid `HEAD` beside `objects/` and
/// `refs/`), bare or not: `default` protects it outside the places git
/// keeps one in a `.git` directory.
pub const HEAD: &[u8] = b"HEAD";

/// Why a `HEAD` is not made: said to the person with the path.
const HEAD_WHY: &str = "a directory holding HEAD is a git repository to git, whose \
    configuration the person's next git command there would run (`git init --bare`, \
    `git clone --bare` or `--mirror` are refused in the sandbox: make the bare \
    repository outside sluice)";

/// Why Python's bytecode is not written (`ProtectRule::pinned` tells its
/// rules): said to the person with the path.
const BYTECODE_WHY: &str = "Python would run this bytecode instead of the source the \
    person reviews (Python in the sandbox caches in $TMPDIR/pycache, \
    PYTHONPYCACHEPREFIX; a run without that variable, `python3 -E`, imports all the same)";

/// What a git directory holds that makes git run code or read a
/// configuration: judged, in a directory that holds a `HEAD`, as it would
/// be in a `.git` ([`judge_as_git_directory`]). A submodule's or worktree's
/// directory beneath holds a `HEAD` of its own and is judged in its turn.
const GIT_DIR_ENTRIES: [&[u8]; 4] = [b"config", b"config.worktree", b"commondir", b"hooks"];

/// A directory that holds a `HEAD` is a git directory whatever its name (a
/// bare repository, `repo.git`, or `mv sub/.git sub/x`): what the program
/// does to its configuration, hooks and `commondir` is judged as if the
/// directory were named `.git` (`judge` by the caller's lists), and a
/// `HEAD` is made (where the lists allow one) only in a directory whose
/// such entries were judged so. Together with `default`'s rule that no
/// `HEAD` is made outside a `.git`, every `config` beside a `HEAD` has been
/// judged as a repository's (or was there at launch): moving the directory
/// anywhere changes nothing, so no walk beneath a renamed directory is
/// needed.
///
/// A directory where the lists allow a `HEAD` only by an exception
/// (`keeps_head(D/HEAD)`: `.git/logs`, `.git/worktrees/NAME`,
/// `.git/refs/remotes/NAME`) is judged so whether it holds one or not:
/// git itself makes that `HEAD` later, outside the session too (the
/// person's next commit writes `logs/HEAD`), after the program removed it
/// and planted a `config`.
///
/// `holds(dir, name)`: whether `dir` holds `name` now (a symlink not
/// followed); only asked where the answer changes the judgement, so a
/// write costs nothing unless its name is one of [`GIT_DIR_ENTRIES`] (or
/// beneath `hooks`) or is a `HEAD` outside a `.git`. An error is the
/// caller's to fail closed on.
pub fn judge_as_git_directory(
    path: &Path,
    act: Act,
    judge: impl Fn(&Path, Act) -> Option<Refusal>,
    keeps_head: impl Fn(&Path) -> bool,
    mut holds: impl FnMut(&Path, &[u8]) -> io::Result<bool>,
) -> io::Result<Option<Refusal>> {
    if matches!(act, Act::RenameSource) {
        return Ok(None);
    }
    let parts: Vec<&[u8]> = path
        .iter()
        .map(|c| c.as_bytes())
        .filter(|c| *c != b"/")
        .collect();
    let joined = |parts: &[&[u8]]| -> PathBuf {
        let mut p = PathBuf::from("/");
        p.extend(parts.iter().map(|c| std::ffi::OsStr::from_bytes(c)));
        p
    };
    // `D/config`, `D/hooks/x`: D, the directory `parts[..k]`, judged as a
    // `.git` where it holds a HEAD.
    for k in 1..parts.len() {
        if !GIT_DIR_ENTRIES.contains(&parts[k]) || parts[k - 1] == b".git" {
            continue;
        }
        let alt: Vec<&[u8]> = (parts[..k - 1].iter().copied())
            .chain([&b".git"[..]])
            .chain(parts[k..].iter().copied())
            .collect();
        let alt = joined(&alt);
        if let Some(refusal) = judge(&alt, act) {
            let dir = joined(&parts[..k]);
            if keeps_head(&dir.join("HEAD")) || holds(&dir, HEAD)? {
                return Ok(Some(Refusal {
                    rule: format!(
                        "{} (its directory holds HEAD: a git repository)",
                        refusal.rule
                    ),
                    why: refusal.why,
                }));
            }
        }
    }
    // A HEAD made where the lists allow one (inside a `.git`): not beside
    // a configuration, hooks or commondir that was not judged as a git
    // directory's (`.git/logs/config`, written before git makes
    // `logs/HEAD`).
    let n = parts.len();
    let making = matches!(act, Act::Write | Act::Name);
    if making && n >= 2 && parts[n - 1] == HEAD && parts[n - 2] != b".git" {
        let dir = joined(&parts[..n - 1]);
        for entry in GIT_DIR_ENTRIES {
            let here = dir.join(std::ffi::OsStr::from_bytes(entry));
            let alt = joined(&parts[..n - 2])
                .join(".git")
                .join(std::ffi::OsStr::from_bytes(entry));
            if judge(&here, Act::Name).is_some() {
                continue;
            }
            if let Some(refusal) = judge(&alt, Act::Name) {
                if holds(&dir, entry)? {
                    return Ok(Some(Refusal {
                        rule: format!(
                            "{} (this directory holds {}: HEAD would make it a git repository)",
                            refusal.rule,
                            String::from_utf8_lossy(entry)
                        ),
                        why: HEAD_WHY,
                    }));
                }
            }
        }
    }
    Ok(None)
}

/// The path a repository's configuration at `path` is judged as when its
/// directory holds a `HEAD` ([`judge_as_git_directory`]): `D/config` as
/// `.git/config`. `None` where the name is not one ([`is_git_config`]).
pub fn as_git_config(path: &Path) -> Option<PathBuf> {
    let dir = path.parent()?;
    let alt = dir.parent()?.join(".git").join(path.file_name()?);
    is_git_config(&alt).then_some(alt)
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

/// The `.git` directory `path` lies beneath (the outermost: a submodule's
/// repository in `.git/modules` is its), or `None`.
pub fn git_dir_above(path: &Path) -> Option<PathBuf> {
    let mut dir = PathBuf::new();
    for part in path.parent()?.components() {
        dir.push(part);
        if part.as_os_str().as_bytes() == b".git" {
            return Some(dir);
        }
    }
    None
}

/// Why nothing is given a name beneath a `.git` that could lead git out of
/// it: said to the person with the path.
const INTO_GIT_WHY: &str = "git writes some of its files (reflogs, FETCH_HEAD, COMMIT_EDITMSG) \
    through a symlink, so the person's next git command would write where one leads, \
    outside the sandbox: no symlink is made in a .git, nor anything moved or linked in \
    from outside one (git does neither)";

/// The refusal for making the name `dst` beneath a `.git` whose `config`
/// the list protects (a repository the list guards) as a symlink
/// (`src` `None`; [`is_gits_probe`] is not asked about), or from `src` (a rename's, link's or exchange's) outside
/// every `.git`, or `None`. git appends to its reflogs and writes
/// `FETCH_HEAD`, `COMMIT_EDITMSG` and `MERGE_MSG` with a plain `open`,
/// following a symlink there: one to `~/.bashrc` at `.git/logs/HEAD` had
/// the person's `git checkout` append the program's branch name, a `$(...)`
/// in it, to their shell's start-up. So nothing made in the sandbox that
/// could be a symlink leading out, or a directory holding one, reaches a
/// `.git`: no such symlink, and nothing from outside one (its kind could change between
/// a check and the call; git moves and links only within its own
/// directories, and from another repository's objects for `clone`).
pub fn judge_into_git_dir(protect: &Protect, src: Option<&Path>, dst: &Path) -> Option<Refusal> {
    let git = git_dir_above(dst)?;
    if src.is_some_and(|src| git_dir_above(src).is_some()) {
        return None;
    }
    let rule = protect.protects(&git.join("config"))?;
    Some(Refusal {
        rule: rule.to_string(),
        why: INTO_GIT_WHY,
    })
}

/// Whether a symlink to `target` is the one `git init` makes in `.git`
/// (`tXXXXXX -> testing`, removed at once) to learn whether the file
/// system keeps symlinks (`core.symlinks`): [`judge_into_git_dir`] is not
/// asked about it. It leads to an entry beside it in that `.git`. No other
/// plain name is let through: `.git/FETCH_HEAD -> config` would have the
/// person's next fetch write over the repository's configuration.
pub fn is_gits_probe(target: &[u8]) -> bool {
    target == b"testing"
}

/// Whether the guard lets the program put a file of its own in place of
/// the protected file at `path` (renamed over it, its content checked): a
/// repository's configuration ([`is_git_config`]) or a `.gitmodules`. The
/// launch does not pin such a file: removing it does no more than a
/// replacement the guard allows, and a pin would refuse that replacement
/// (`git config`, `git submodule add`).
pub fn replaced_when_checked(path: &Path) -> bool {
    is_git_config(path) || path.file_name().is_some_and(|n| n == ".gitmodules")
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
    fn nothing_that_could_be_a_symlink_reaches_a_git_directory() {
        let p = protect();
        let j = |src: Option<&str>, dst: &str| {
            judge_into_git_dir(&p, src.map(Path::new), Path::new(dst)).is_some()
        };
        // A symlink anywhere beneath a guarded `.git`, a submodule's too.
        assert!(j(None, "/ws/.git/logs/HEAD"));
        assert!(j(None, "/ws/.git/FETCH_HEAD"));
        assert!(j(None, "/ws/sub/.git/logs/refs/heads/main"));
        assert!(j(None, "/ws/.git/modules/m/logs/HEAD"));
        // Moved or linked in from outside every `.git`.
        assert!(j(Some("/ws/link"), "/ws/.git/logs/HEAD"));
        assert!(j(Some("/tmp/dir"), "/ws/.git/logs"));
        // Within a `.git`, or from another repository's (git's own lock
        // files, `clone`'s links), and outside any `.git`: not judged here.
        assert!(!j(Some("/ws/.git/index.lock"), "/ws/.git/index"));
        assert!(!j(
            Some("/ws/a/.git/objects/ab/cd"),
            "/ws/b/.git/objects/ab/cd"
        ));
        assert!(!j(None, "/ws/src/link"));
        assert!(!j(Some("/ws/.git/x"), "/ws/x"));
        // git's own probe links to a plain name beside it; no other.
        assert!(is_gits_probe(b"testing"));
        for target in [&b"/root/.bashrc"[..], b"../x", b"..", b".", b"config", b""] {
            assert!(!is_gits_probe(target), "{target:?}");
        }
        // The name `.git` itself is `judge`'s ("on the way").
        assert!(!j(None, "/ws/.git"));
        // A list that does not guard that repository's configuration.
        let other = Protect::from_patterns(["**/.vscode"]).unwrap();
        assert_eq!(
            judge_into_git_dir(&other, None, Path::new("/ws/.git/logs/HEAD")),
            None
        );
        assert_eq!(
            git_dir_above(Path::new("/ws/.git/modules/m/HEAD")),
            Some("/ws/.git".into())
        );
    }

    /// `default`'s git patterns with its `HEAD` rule.
    fn with_head() -> Protect {
        let text = include_str!("../../../policies/builtin/default.toml");
        let patterns: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('"') && !l.contains('$') && !l.contains('~'))
            .filter(|l| l.contains(".git") || l.contains("HEAD"))
            .map(|l| l.trim_end_matches(',').trim_matches('"'))
            .collect();
        assert!(patterns.contains(&"**/HEAD"), "{patterns:?}");
        Protect::from_patterns(patterns).unwrap()
    }

    #[test]
    fn no_head_is_made_outside_a_git_directory() {
        let p = with_head();
        let j = |path: &str, act| judge(&p, Path::new(path), act);
        for act in [Act::Write, Act::Name, Act::Mkdir] {
            let refusal = j("/ws/sub/HEAD", act).expect("a bare repository's HEAD");
            assert!(refusal.why.contains("git init --bare"), "{refusal:?}");
            assert!(j("/ws/repo.git/HEAD", act).is_some());
            assert!(j("/ws/.git/refs/HEAD", act).is_some());
            assert!(j("/ws/.git/logs/x/HEAD", act).is_some());
            assert!(j("/ws/.git/worktrees/HEAD", act).is_some());
        }
        // Where git keeps one.
        for path in [
            "/ws/.git/HEAD",
            "/ws/sub/.git/HEAD",
            "/ws/.git/logs/HEAD",
            "/ws/.git/refs/remotes/origin/HEAD",
            "/ws/.git/logs/refs/remotes/origin/HEAD",
            "/ws/.git/worktrees/w/HEAD",
            "/ws/.git/worktrees/w/logs/HEAD",
            "/ws/.git/modules/vendor/lib/HEAD",
            "/ws/.git/modules/a/worktrees/w/logs/HEAD",
        ] {
            assert_eq!(j(path, Act::Name), None, "{path}");
            assert_eq!(j(path, Act::Write), None, "{path}");
        }
        // Other names git makes stay free; nothing leads to a HEAD.
        assert_eq!(j("/ws/sub/ORIG_HEAD", Act::Name), None);
        assert_eq!(j("/ws/sub/HEAD.lock", Act::Name), None);
        assert_eq!(j("/ws/sub", Act::Name), None);
        assert_eq!(j("/ws/.git/HEAD", Act::RenameSource), None);
    }

    /// `judge_as_git_directory` with `with_head()`, directories in `heads`
    /// holding HEAD and the names in `entries` existing.
    fn as_git(path: &str, act: Act, heads: &[&str], entries: &[&str]) -> Option<Refusal> {
        let p = with_head();
        let asked = std::cell::RefCell::new(Vec::new());
        let holds = |dir: &Path, name: &[u8]| {
            let at = dir.join(std::ffi::OsStr::from_bytes(name));
            asked.borrow_mut().push(at.clone());
            let at = at.to_str().unwrap().to_owned();
            Ok(match name {
                HEAD => heads.iter().any(|d| at == format!("{d}/HEAD")),
                _ => entries.contains(&at.as_str()),
            })
        };
        let keeps = |head: &Path| p.excepted(head);
        let judged = |p2: &Path, a| judge(&p, p2, a);
        let got = judge_as_git_directory(Path::new(path), act, judged, keeps, holds).unwrap();
        // An ordinary write asks nothing of the file system.
        let named = ["config", "hooks", "commondir"]
            .iter()
            .any(|n| path.contains(n));
        if !named && !path.ends_with("/HEAD") {
            assert!(asked.borrow().is_empty(), "{path}: {asked:?}");
        }
        got
    }

    #[test]
    fn a_directory_holding_head_is_judged_as_a_git_directory() {
        let bare = &["/ws/repo.git"];
        for act in [Act::Write, Act::Name, Act::LinkSource] {
            assert!(as_git("/ws/repo.git/config", act, bare, &[]).is_some());
            assert!(as_git("/ws/repo.git/hooks/pre-commit", act, bare, &[]).is_some());
            assert!(as_git("/ws/repo.git/commondir", act, bare, &[]).is_some());
            assert!(as_git("/ws/repo.git/config.worktree", act, bare, &[]).is_some());
            // Without HEAD, an ordinary file so named.
            assert!(as_git("/ws/src/config", act, bare, &[]).is_none());
            assert!(as_git("/ws/x/hooks/pre-commit", act, bare, &[]).is_none());
        }
        assert!(as_git("/ws/repo.git/hooks", Act::Name, bare, &[]).is_some());
        assert!(as_git("/ws/repo.git/hooks", Act::Mkdir, bare, &[]).is_none());
        assert!(as_git("/ws/repo.git/hooks/a.sample", Act::Write, bare, &[]).is_none());
        assert!(as_git("/ws/repo.git/config", Act::RenameSource, bare, &[]).is_none());
        assert!(as_git("/ws/repo.git/config", Act::Chmod, bare, &[]).is_none());
        assert!(as_git("/ws/repo.git/objects/ab/cd", Act::Name, bare, &[]).is_none());
        assert!(as_git("/ws/repo.git/description", Act::Write, bare, &[]).is_none());
        // A worktree's or a reflog's directory, which holds a HEAD of its
        // own: judged as one (git never writes a `config` there).
        let wt = &["/ws/.git/worktrees/w"];
        assert!(as_git("/ws/.git/worktrees/w/config", Act::Write, wt, &[]).is_some());
        let logs = &["/ws/.git/logs"];
        assert!(as_git("/ws/.git/logs/config", Act::Write, logs, &[]).is_some());
        // Where git makes a HEAD itself, judged so without one.
        let none: &[&str] = &[];
        for path in [
            "/ws/.git/logs/config",
            "/ws/.git/logs/hooks/pre-commit",
            "/ws/.git/worktrees/w/config",
            "/ws/.git/refs/remotes/origin/commondir",
            "/ws/.git/logs/refs/remotes/origin/config",
        ] {
            assert!(as_git(path, Act::Write, none, &[]).is_some(), "{path}");
        }
        assert!(as_git("/ws/x/config", Act::Write, none, &[]).is_none());
        assert!(as_git("/ws/.git/refs/heads/config", Act::Write, none, &[]).is_none());
        // A `.git` itself is judged by the lists alone.
        assert!(as_git("/ws/.git/index", Act::Write, &["/ws/.git"], &[]).is_none());
        let r = as_git("/ws/repo.git/config", Act::Write, bare, &[]).unwrap();
        assert!(r.rule.contains("holds HEAD"), "{r:?}");
    }

    #[test]
    fn a_head_is_not_made_beside_a_configuration_judged_as_no_git_directorys() {
        let none: &[&str] = &[];
        // git's own HEADs, with what git keeps beside them.
        assert!(as_git(
            "/ws/.git/logs/HEAD",
            Act::Name,
            none,
            &["/ws/.git/logs/refs"]
        )
        .is_none());
        let wt = [
            "/ws/.git/worktrees/w/commondir",
            "/ws/.git/worktrees/w/config.worktree",
        ];
        assert!(as_git("/ws/.git/worktrees/w/HEAD", Act::Name, none, &wt).is_none());
        let module = ["/ws/.git/modules/m/config", "/ws/.git/modules/m/hooks"];
        assert!(as_git("/ws/.git/modules/m/HEAD", Act::Name, none, &module).is_none());
        assert!(as_git("/ws/.git/HEAD", Act::Name, none, &["/ws/.git/config"]).is_none());
        // A `config` or `hooks` planted first, the HEAD git makes later.
        for (head, entry) in [
            ("/ws/.git/logs/HEAD", "/ws/.git/logs/config"),
            ("/ws/.git/logs/HEAD", "/ws/.git/logs/hooks"),
            (
                "/ws/.git/refs/remotes/o/HEAD",
                "/ws/.git/refs/remotes/o/config",
            ),
            ("/ws/.git/worktrees/w/HEAD", "/ws/.git/worktrees/w/config"),
        ] {
            for act in [Act::Name, Act::Write] {
                let r = as_git(head, act, none, &[entry]);
                assert!(
                    r.is_some_and(|r| r.why == HEAD_WHY),
                    "{head} beside {entry}"
                );
            }
        }
    }

    #[test]
    fn a_bare_repositorys_configuration_is_checked_as_a_gits() {
        let alt = as_git_config(Path::new("/ws/repo.git/config")).unwrap();
        assert_eq!(alt, Path::new("/ws/.git/config"));
        assert!(as_git_config(Path::new("/ws/.git/worktrees/w/config.worktree")).is_some());
        assert!(as_git_config(Path::new("/ws/repo.git/HEAD")).is_none());
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
