//! Deny-within-allow on Linux: which mounts the child makes in its private
//! mount namespace.
//!
//! Landlock only ever adds access beneath a directory; it cannot take access
//! back for a subtree. So a read-only or denied path inside an allowed tree is
//! covered by a mount in a private mount namespace:
//!
//! - `ReadOnly`: the path is bind-mounted onto itself and made read-only.
//! - `Deny`: an empty placeholder (mode 000, read-only mount) is mounted over it.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A writable tree bound onto itself and made writable again after the
    /// whole mount tree was made read-only (see [`writable_roots`]).
    Writable,
    Pin,
    ReadOnly,
    Deny {
        dir: bool,
    },
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

/// The mounts that make `fs`'s `read_only` and `deny` entries hold inside the
/// trees it allows, ordered shallowest first (a mount must exist before the
/// mounts beneath it). `is_dir` tells directories from files.
pub fn plan(fs: &FsPolicy, is_dir: impl Fn(&Path) -> bool) -> Vec<MountOp> {
    let allowed: Vec<PathBuf> = fs
        .read
        .iter()
        .chain(&fs.write)
        .chain(&fs.execute)
        .cloned()
        .collect();
    let mut ops: Vec<MountOp> = Vec::new();
    let pin_below_writable = |path: &Path, ops: &mut Vec<MountOp>| {
        if let Some(root) = under_any(path, &fs.write) {
            for a in ancestors_below(path, root) {
                ops.push(MountOp {
                    kind: MountKind::Pin,
                    path: a,
                });
            }
        }
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
pub fn writable_roots(fs: &FsPolicy, bindable: impl Fn(&Path) -> bool) -> Vec<MountOp> {
    let mut roots: Vec<&PathBuf> = fs.write.iter().filter(|p| bindable(p)).collect();
    roots.sort_by_key(|p| (p.components().count(), p.as_path()));
    roots.dedup();
    let mut out: Vec<MountOp> = Vec::new();
    for root in roots {
        if !out.iter().any(|o| root.starts_with(&o.path)) {
            out.push(MountOp {
                kind: MountKind::Writable,
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
        MountKind::Writable => -1,
        MountKind::Pin => 0,
        MountKind::ReadOnly => 1,
        MountKind::Deny { .. } => 2,
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
    let mut out: Vec<MountOp> = Vec::with_capacity(ops.len());
    for op in ops {
        match out.last() {
            Some(prev) if prev.path == op.path => {
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
        }
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
                assert_eq!(o.kind, MountKind::Writable);
                o.path
            })
            .collect();
        assert_eq!(got, [p("/h"), p("/tmp/s")]);
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
