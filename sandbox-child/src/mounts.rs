//! Deny-within-allow on Linux: which mounts the child makes in its private
//! mount namespace.
//!
//! Landlock only ever adds access beneath a directory; it cannot take access
//! back for a subtree. So a read-only or denied path inside an allowed tree is
//! covered by a mount in a private mount namespace:
//!
//! - `ReadOnly`: the path is bind-mounted onto itself and made read-only.
//! - `Deny`: an empty placeholder (mode 000, read-only mount) is mounted over it.
//! - `Writable`: a writable tree, bound back read-write; `noexec` unless the
//!   policy lets the program execute it, because Landlock checks `execve`
//!   but not `mmap(PROT_EXEC)`, so without it the dynamic loader
//!   (`ld.so FILE`) would run what the program wrote there.
//! - `Executable`: an `execute` tree inside such a writable tree, bound onto
//!   itself with `noexec` cleared again.
//! - `SessionCopy`: a file or directory of the session's own (an agent's
//!   state file, copied at launch; an empty directory) bound over a path of
//!   the host, writable, never executable: the program changes the copy and
//!   the supervisor decides at the end what reaches the host's file
//!   (`supervisor/src/agent_state/`).
//! - `Pin`: an ancestor between a writable root and a protected path is
//!   bind-mounted onto itself, only so that it becomes a mount point: the kernel
//!   refuses to rename or remove a mount point (EBUSY), so the program cannot move
//!   the protected path away and recreate an unprotected one under the same name.
//!
//! The protected paths themselves are mount points too, for the same reason.
//! Mount syscalls are then refused three times over: capabilities are dropped,
//! Landlock forbids mount topology changes, and seccomp denies the mount family.

use std::path::{Path, PathBuf};

use policies::FsPolicy;

/// Each session's own POSIX shared memory (`shm_open`, `sem_open`: Python's
/// multiprocessing locks): a tmpfs mounted here in the sandbox's view over
/// the host's, which it hides, bound into the policy-built root like a
/// policy tree. Read and write, never execute, no device nodes or setuid.
pub const SHM: &str = "/dev/shm";

/// The mount options of [`SHM`]: its size is bounded, as memory it uses
/// is no process's and RLIMIT_AS does not count it.
#[cfg(target_os = "linux")]
pub(crate) const SHM_OPTIONS: &std::ffi::CStr = c"mode=1777,size=256m,nr_inodes=16384";

/// The mount options of the tmpfs holding the upper and work layers of
/// Python's bytecode cache (`view::SessionOverlay`): bounded as [`SHM`] is,
/// for the same reason.
#[cfg(target_os = "linux")]
pub(crate) const LAYERS_OPTIONS: &std::ffi::CStr = c"mode=0700,size=256m,nr_inodes=16384";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A writable tree bound onto itself and made writable again after the
    /// whole mount tree was made read-only (see [`writable_roots`]); with
    /// `exec: false`, made `noexec`, with every mount beneath it.
    Writable {
        exec: bool,
    },
    /// An `execute` tree inside a writable tree that is not executable:
    /// bound onto itself and made executable again (this mount only).
    Executable,
    Pin,
    ReadOnly,
    Deny {
        dir: bool,
    },
    /// A file or directory of the session bound over the path, writable,
    /// `noexec`, `nosuid`, `nodev` (see [`crate::view::SessionCopy`] on
    /// Linux). Never planned here: the supervisor names them.
    SessionCopy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOp {
    pub kind: MountKind,
    pub path: PathBuf,
}

/// The shallowest root strictly containing `path`. Every ancestor below it
/// sits in a writable directory (when `roots` are the writable trees), so every
/// one of them could be renamed.
fn under_any<'a>(path: &Path, roots: &'a [PathBuf]) -> Option<&'a PathBuf> {
    roots
        .iter()
        .filter(|r| path.starts_with(r) && path != r.as_path())
        .min_by_key(|r| r.components().count())
}

/// Ancestors of `path` strictly below `root`.
fn ancestors_below(path: &Path, root: &Path) -> Vec<PathBuf> {
    path.ancestors()
        .skip(1)
        .take_while(|a| *a != root && a.starts_with(root))
        .map(Path::to_path_buf)
        .collect()
}

/// The pins that keep `path` where it is: its ancestors strictly below the
/// shallowest writable tree holding it (each of them could be renamed away),
/// deepest first. `path` itself must be a mount point of its own.
pub fn pins(fs: &FsPolicy, path: &Path) -> Vec<MountOp> {
    let Some(root) = under_any(path, &fs.write) else {
        return Vec::new();
    };
    ancestors_below(path, root)
        .into_iter()
        .map(|a| MountOp {
            kind: MountKind::Pin,
            path: a,
        })
        .collect()
}

/// The mounts that make `fs`'s `read_only` and `deny` entries hold inside the
/// trees it allows, and its `execute` trees inside writable trees that are
/// not executable (see [`plan_with_exec`]; here no host mount counts as
/// noexec), ordered shallowest first (a mount must exist before the mounts
/// beneath it). `is_dir` tells directories from files.
pub fn plan(fs: &FsPolicy, is_dir: impl Fn(&Path) -> bool) -> Vec<MountOp> {
    plan_with_exec(fs, is_dir, |_| false)
}

/// [`plan`], plus an [`MountKind::Executable`] mount for each `execute` tree
/// strictly inside a writable tree that is not executable, unless
/// `host_noexec` says the host's own mount there is `noexec` already (a
/// flag the child could not clear, and one that leaves nothing to restore).
pub fn plan_with_exec(
    fs: &FsPolicy,
    is_dir: impl Fn(&Path) -> bool,
    host_noexec: impl Fn(&Path) -> bool,
) -> Vec<MountOp> {
    let allowed: Vec<PathBuf> = fs
        .read
        .iter()
        .chain(&fs.write)
        .chain(&fs.execute)
        .cloned()
        .collect();
    let mut ops: Vec<MountOp> = Vec::new();
    let pin_below_writable = |path: &Path, ops: &mut Vec<MountOp>| {
        ops.extend(pins(fs, path));
    };
    for path in &fs.read_only {
        // Outside every writable tree, Landlock already keeps it read-only.
        if under_any(path, &fs.write).is_some() || fs.write.contains(path) {
            pin_below_writable(path, &mut ops);
            ops.push(MountOp {
                kind: MountKind::ReadOnly,
                path: path.clone(),
            });
        }
    }
    for path in &fs.execute {
        let in_noexec_tree = fs
            .write
            .iter()
            .any(|w| path.starts_with(w) && path != w && !executable(fs, w));
        if in_noexec_tree && !host_noexec(path) {
            ops.push(MountOp {
                kind: MountKind::Executable,
                path: path.clone(),
            });
        }
    }
    for path in &fs.deny {
        // Outside every allowed tree, Landlock already denies it.
        if under_any(path, &allowed).is_some() || allowed.contains(path) {
            pin_below_writable(path, &mut ops);
            ops.push(MountOp {
                kind: MountKind::Deny { dir: is_dir(path) },
                path: path.clone(),
            });
        }
    }
    normalise(ops)
}

/// The writable trees to bind back read-write once every mount of the
/// child's namespace has been made read-only: the policy's `write` entries
/// that are directories or regular files (device nodes are written whatever
/// the mount says), outermost only, shallowest first.
///
/// Everything else is then read-only at the mount level, which is what stops
/// `chmod`, `chown`, `utimensat` and xattr changes by path outside the
/// writable trees: Landlock (ABI 7) has no right for them, and seccomp cannot
/// see their path arguments.
/// Whether `path` lies in (or is) one of the policy's `execute` trees.
pub fn executable(fs: &FsPolicy, path: &Path) -> bool {
    fs.execute.iter().any(|e| path.starts_with(e))
}

pub fn writable_roots(fs: &FsPolicy, bindable: impl Fn(&Path) -> bool) -> Vec<MountOp> {
    let mut roots: Vec<&PathBuf> = fs.write.iter().filter(|p| bindable(p)).collect();
    roots.sort_by_key(|p| (p.components().count(), p.as_path()));
    roots.dedup();
    let mut out: Vec<MountOp> = Vec::new();
    for root in roots {
        if !out.iter().any(|o| root.starts_with(&o.path)) {
            out.push(MountOp {
                kind: MountKind::Writable {
                    exec: executable(fs, root),
                },
                path: root.clone(),
            });
        }
    }
    out
}

/// Drops pins made redundant by a stronger mount on the same path, and orders
/// shallowest first (ties: pins, then read-only, then deny).
fn normalise(mut ops: Vec<MountOp>) -> Vec<MountOp> {
    let rank = |k: MountKind| match k {
        MountKind::Writable { .. } => -2,
        MountKind::Executable => -1,
        MountKind::Pin => 0,
        MountKind::ReadOnly => 1,
        MountKind::Deny { .. } => 2,
        MountKind::SessionCopy => 3,
    };
    ops.sort_by(|a, b| {
        (a.path.components().count(), &a.path, rank(a.kind)).cmp(&(
            b.path.components().count(),
            &b.path,
            rank(b.kind),
        ))
    });
    ops.dedup();
    // On the same path keep only the strongest: it is a mount point as well.
    // An executable mount stays beneath it: a bind copies the flags of the
    // mount it is made from.
    let mut out: Vec<MountOp> = Vec::with_capacity(ops.len());
    for op in ops {
        match out.last() {
            Some(prev) if prev.path == op.path && prev.kind != MountKind::Executable => {
                out.pop();
            }
            _ => {}
        }
        out.push(op);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn fs() -> FsPolicy {
        FsPolicy {
            read: vec![p("/usr"), p("/etc")],
            write: vec![p("/ws"), p("/tmp/s")],
            execute: vec![p("/usr")],
            read_only: vec![p("/ws/.git/hooks"), p("/ws/.git/config"), p("/usr/lib")],
            deny: vec![p("/ws/.env"), p("/etc/shadow"), p("/home/u/.ssh")],
            absent: vec![],
            absent_read_only: vec![],
            protect: Default::default(),
            deny_patterns: Default::default(),
            links: vec![],
        }
    }

    #[test]
    fn pins_are_the_ancestors_below_the_shallowest_writable_tree() {
        let fs = FsPolicy {
            write: vec![p("/t"), p("/t/a/b")],
            ..FsPolicy::default()
        };
        let got: Vec<_> = pins(&fs, &p("/t/a/b/sluice-0"))
            .into_iter()
            .map(|o| (o.kind, o.path))
            .collect();
        assert_eq!(
            got,
            vec![(MountKind::Pin, p("/t/a/b")), (MountKind::Pin, p("/t/a"))]
        );
        assert!(pins(&fs, &p("/elsewhere/sluice-0")).is_empty());
        assert!(pins(&fs, &p("/t/sluice-0")).is_empty());
    }

    #[test]
    fn protects_inside_writable_tree_with_pins() {
        let ops = plan(&fs(), |p| p.ends_with("hooks"));
        let got: Vec<_> = ops.iter().map(|o| (o.kind, o.path.clone())).collect();
        // Depth first, then path; the .git ancestor is pinned against renames.
        assert_eq!(
            got,
            vec![
                (MountKind::Deny { dir: false }, p("/etc/shadow")),
                (MountKind::Deny { dir: false }, p("/ws/.env")),
                (MountKind::Pin, p("/ws/.git")),
                (MountKind::ReadOnly, p("/ws/.git/config")),
                (MountKind::ReadOnly, p("/ws/.git/hooks")),
            ]
        );
    }

    #[test]
    fn landlock_alone_covers_paths_outside_allowed_trees() {
        let ops = plan(&fs(), |_| false);
        // /usr/lib is only readable anyway; ~/.ssh is not under any allowed tree.
        assert!(!ops.iter().any(|o| o.path == p("/usr/lib")));
        assert!(!ops.iter().any(|o| o.path == p("/home/u/.ssh")));
    }

    #[test]
    fn read_only_parent_of_deny_is_mounted_first() {
        let fs = FsPolicy {
            write: vec![p("/ws")],
            read_only: vec![p("/ws/a")],
            deny: vec![p("/ws/a/b/secret")],
            ..FsPolicy::default()
        };
        let ops = plan(&fs, |_| false);
        let kinds: Vec<_> = ops.iter().map(|o| (o.kind, o.path.clone())).collect();
        assert_eq!(
            kinds,
            vec![
                (MountKind::ReadOnly, p("/ws/a")),
                (MountKind::Pin, p("/ws/a/b")),
                (MountKind::Deny { dir: false }, p("/ws/a/b/secret")),
            ]
        );
    }

    #[test]
    fn nothing_to_do_without_deny_within_allow() {
        let fs = FsPolicy {
            read: vec![p("/usr")],
            write: vec![p("/ws")],
            ..FsPolicy::default()
        };
        assert!(plan(&fs, |_| false).is_empty());
    }

    #[test]
    fn writable_roots_are_the_outermost_bindable_write_entries() {
        let fs = FsPolicy {
            write: vec![p("/h/ws"), p("/dev/null"), p("/h"), p("/tmp/s"), p("/h/ws")],
            ..FsPolicy::default()
        };
        let got: Vec<PathBuf> = writable_roots(&fs, |p| !p.starts_with("/dev"))
            .into_iter()
            .map(|o| {
                assert!(matches!(o.kind, MountKind::Writable { .. }));
                o.path
            })
            .collect();
        assert_eq!(got, [p("/h"), p("/tmp/s")]);
    }

    #[test]
    fn writable_trees_are_executable_only_where_the_policy_says() {
        let fs = FsPolicy {
            write: vec![p("/h"), p("/t"), p("/x/w")],
            execute: vec![p("/h/ws"), p("/t"), p("/x")],
            ..FsPolicy::default()
        };
        let roots: Vec<_> = writable_roots(&fs, |_| true)
            .into_iter()
            .map(|o| (o.kind, o.path))
            .collect();
        assert_eq!(
            roots,
            [
                (MountKind::Writable { exec: false }, p("/h")),
                (MountKind::Writable { exec: true }, p("/t")),
                (MountKind::Writable { exec: true }, p("/x/w")),
            ]
        );
        // The execute tree inside the non-executable /h is made executable
        // again, unless the host already mounts it noexec.
        let ops = plan_with_exec(&fs, |_| true, |_| false);
        assert_eq!(
            ops,
            [MountOp {
                kind: MountKind::Executable,
                path: p("/h/ws")
            }]
        );
        assert!(plan_with_exec(&fs, |_| true, |_| true).is_empty());
    }

    #[test]
    fn an_executable_mount_stays_beneath_a_stronger_one_on_the_same_path() {
        let fs = FsPolicy {
            write: vec![p("/h")],
            execute: vec![p("/h/ws")],
            read_only: vec![p("/h/ws")],
            deny: vec![p("/h/ws/.env")],
            ..FsPolicy::default()
        };
        let kinds: Vec<_> = plan_with_exec(&fs, |_| false, |_| false)
            .into_iter()
            .map(|o| (o.kind, o.path))
            .collect();
        assert_eq!(
            kinds,
            [
                (MountKind::Executable, p("/h/ws")),
                (MountKind::ReadOnly, p("/h/ws")),
                (MountKind::Deny { dir: false }, p("/h/ws/.env")),
            ]
        );
    }

    #[test]
    fn nested_writable_roots_pin_up_to_the_shallowest() {
        let fs = FsPolicy {
            write: vec![p("/h"), p("/h/ws")],
            deny: vec![p("/h/ws/x/.env")],
            ..FsPolicy::default()
        };
        let ops = plan(&fs, |_| false);
        assert_eq!(
            ops,
            vec![
                MountOp {
                    kind: MountKind::Pin,
                    path: p("/h/ws")
                },
                MountOp {
                    kind: MountKind::Pin,
                    path: p("/h/ws/x")
                },
                MountOp {
                    kind: MountKind::Deny { dir: false },
                    path: p("/h/ws/x/.env")
                },
            ]
        );
    }
}
