//! The policy-built root: the child's `/` holds only what the policy allows.
//!
//! Landlock (ABI 7) has no right for `connect()` on a named unix socket, and
//! does not restrict walking through directories, so in the host's view a
//! sandboxed program could connect to any socket file it can name (a GnuPG
//! agent, a session bus, `docker.sock`). So the child builds a new root: an
//! empty tmpfs holding the directories leading to each allowed tree, the
//! host's top-level symlinks (`/bin -> usr/bin`, `/lib64 -> usr/lib64`), and
//! a recursive bind of every allowed tree (with the protective mounts already
//! made inside it), then `pivot_root`s into it and detaches the host's tree.
//! Outside the allowed trees nothing exists to connect to, or to stat, list
//! or guess at.
//!
//! This module computes the skeleton (portable, tested anywhere); the child
//! carries it out with raw system calls (`child.rs`).

use std::path::{Path, PathBuf};

use policies::FsPolicy;

/// What a path is on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// Anything bindable that is not a directory: a regular file, a device
    /// node, a socket or FIFO inside an allowed list.
    File,
}

/// One step of building the skeleton, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An empty directory of the skeleton.
    Dir(PathBuf),
    /// An empty file: the mount point of a file bind.
    File(PathBuf),
    /// A symlink copied from the host's `/`.
    Symlink { path: PathBuf, target: PathBuf },
    /// The host's tree (or file) at `path`, bound recursively onto the same
    /// path of the skeleton.
    Bind { path: PathBuf, kind: Kind },
}

/// The skeleton for `fs`: directories first (shallowest first), then the
/// symlinks, then the binds, outermost allowed trees only. `kind` says what
/// a path is on the host (`None`: missing, skipped). `cwd` gets empty
/// directories if no allowed tree holds it, so the program can start there.
/// `top_symlinks` are the host's `/NAME -> TARGET` links. `also` are paths
/// that must exist in the view though the policy does not list them (the
/// program's own terminal, so `ttyname` works); Landlock still decides
/// whether they can be opened by name.
pub fn skeleton(
    fs: &FsPolicy,
    also: &[PathBuf],
    cwd: &Path,
    top_symlinks: &[(PathBuf, PathBuf)],
    kind: impl Fn(&Path) -> Option<Kind>,
) -> Vec<Entry> {
    let mut roots: Vec<(&PathBuf, Kind)> = fs
        .read
        .iter()
        .chain(&fs.write)
        .chain(&fs.execute)
        .chain(also)
        .filter_map(|p| kind(p).map(|k| (p, k)))
        .collect();
    roots.sort_by_cached_key(|&(p, _)| (p.components().count(), p.as_path()));
    roots.dedup_by_key(|(p, _)| p.as_path());
    let mut outermost: Vec<(&PathBuf, Kind)> = Vec::new();
    for (root, k) in roots {
        if !outermost.iter().any(|(o, _)| root.starts_with(o)) {
            outermost.push((root, k));
        }
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for (root, k) in &outermost {
        add_ancestors(&mut dirs, root);
        match k {
            Kind::Dir => dirs.push(root.to_path_buf()),
            Kind::File => files.push(root.to_path_buf()),
        }
    }
    let under_a_root = |p: &Path| outermost.iter().any(|(o, _)| p.starts_with(o));
    // The symlinks a policy path was named through, outside every bound
    // tree (inside one they are already there).
    let named_links: Vec<&(PathBuf, PathBuf)> = fs
        .links
        .iter()
        .filter(|(path, _)| !under_a_root(path))
        .collect();
    for (path, _) in &named_links {
        add_ancestors(&mut dirs, path);
    }
    if !under_a_root(cwd) {
        add_ancestors(&mut dirs, cwd);
        dirs.push(cwd.to_path_buf());
    }
    dirs.retain(|d| d.parent().is_some());
    // Shallowest first, then by path: each key made once (made at every
    // comparison, it cloned a path each time).
    dirs.sort_by_cached_key(|d| (d.components().count(), d.clone()));
    dirs.dedup();
    let taken = |p: &Path| dirs.iter().chain(&files).any(|d| d.starts_with(p)) || under_a_root(p);
    let mut seen = std::collections::HashSet::new();
    let links: Vec<Entry> = top_symlinks
        .iter()
        .chain(named_links)
        .filter(|(path, _)| !taken(path) && seen.insert(path.clone()))
        .map(|(path, target)| Entry::Symlink {
            path: path.clone(),
            target: target.clone(),
        })
        .collect();
    let mut out: Vec<Entry> = dirs.into_iter().map(Entry::Dir).collect();
    out.extend(files.into_iter().map(Entry::File));
    out.extend(links);
    out.extend(outermost.into_iter().map(|(p, k)| Entry::Bind {
        path: p.clone(),
        kind: k,
    }));
    out
}

/// Every ancestor of `path` below `/`, shallowest first.
fn add_ancestors(dirs: &mut Vec<PathBuf>, path: &Path) {
    let mut chain: Vec<PathBuf> = path
        .ancestors()
        .skip(1)
        .filter(|a| a.parent().is_some())
        .map(Path::to_path_buf)
        .collect();
    chain.reverse();
    dirs.extend(chain);
}

/// The host's top-level symlinks (`/bin -> usr/bin` on merged-/usr systems).
pub fn host_top_symlinks() -> Vec<(PathBuf, PathBuf)> {
    let Ok(entries) = std::fs::read_dir("/") else {
        return Vec::new();
    };
    let mut links: Vec<(PathBuf, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .filter_map(|e| {
            let path = e.path();
            std::fs::read_link(&path).ok().map(|target| (path, target))
        })
        .collect();
    links.sort();
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn kinds(path: &Path) -> Option<Kind> {
        match path.to_str().unwrap() {
            "/missing" => None,
            "/dev/null" | "/home/u/.gitconfig" => Some(Kind::File),
            _ => Some(Kind::Dir),
        }
    }

    #[test]
    fn only_the_allowed_trees_and_the_way_to_them() {
        let fs = FsPolicy {
            read: vec![p("/etc"), p("/home/u/.gitconfig"), p("/missing")],
            write: vec![p("/home/u/ws"), p("/dev/null")],
            execute: vec![p("/usr"), p("/usr/bin"), p("/home/u/ws")],
            ..FsPolicy::default()
        };
        let links = [(p("/bin"), p("usr/bin")), (p("/home"), p("elsewhere"))];
        let got = skeleton(&fs, &[], Path::new("/home/u/ws/src"), &links, kinds);
        assert_eq!(
            got,
            vec![
                Entry::Dir(p("/dev")),
                Entry::Dir(p("/etc")),
                Entry::Dir(p("/home")),
                Entry::Dir(p("/usr")),
                Entry::Dir(p("/home/u")),
                Entry::Dir(p("/home/u/ws")),
                Entry::File(p("/dev/null")),
                Entry::File(p("/home/u/.gitconfig")),
                // /home is a directory of the skeleton: the host's link of
                // the same name is not copied.
                Entry::Symlink {
                    path: p("/bin"),
                    target: p("usr/bin")
                },
                // Shallowest first.
                Entry::Bind {
                    path: p("/etc"),
                    kind: Kind::Dir
                },
                Entry::Bind {
                    path: p("/usr"),
                    kind: Kind::Dir
                },
                Entry::Bind {
                    path: p("/dev/null"),
                    kind: Kind::File
                },
                Entry::Bind {
                    path: p("/home/u/.gitconfig"),
                    kind: Kind::File
                },
                Entry::Bind {
                    path: p("/home/u/ws"),
                    kind: Kind::Dir
                },
            ]
        );
    }

    #[test]
    fn the_links_a_grant_was_named_through_are_in_the_view() {
        let fs = FsPolicy {
            read: vec![p("/data/work"), p("/usr")],
            links: vec![
                (p("/home/u/work"), p("/data/work")),
                // Inside a bound tree: already there.
                (p("/usr/lib64"), p("lib")),
            ],
            ..FsPolicy::default()
        };
        let got = skeleton(&fs, &[], Path::new("/data/work"), &[], kinds);
        assert!(got.contains(&Entry::Dir(p("/home/u"))), "{got:?}");
        assert!(got.contains(&Entry::Symlink {
            path: p("/home/u/work"),
            target: p("/data/work")
        }));
        assert!(!got
            .iter()
            .any(|e| matches!(e, Entry::Symlink { path, .. } if path == Path::new("/usr/lib64"))));
    }

    #[test]
    fn the_programs_terminal_is_in_the_view() {
        let fs = FsPolicy {
            read: vec![p("/usr")],
            write: vec![p("/dev/null")],
            ..FsPolicy::default()
        };
        let got = skeleton(&fs, &[p("/dev/pts/3")], Path::new("/usr"), &[], |p| {
            Some(if p.starts_with("/dev") {
                Kind::File
            } else {
                Kind::Dir
            })
        });
        assert!(got.contains(&Entry::Dir(p("/dev/pts"))), "{got:?}");
        assert!(got.contains(&Entry::File(p("/dev/pts/3"))), "{got:?}");
        assert!(got.contains(&Entry::Bind {
            path: p("/dev/pts/3"),
            kind: Kind::File
        }));
    }

    #[test]
    fn a_working_directory_outside_the_policy_gets_empty_directories() {
        let fs = FsPolicy {
            read: vec![p("/usr")],
            ..FsPolicy::default()
        };
        let got = skeleton(&fs, &[], Path::new("/srv/x"), &[], kinds);
        assert_eq!(
            got,
            vec![
                Entry::Dir(p("/srv")),
                Entry::Dir(p("/usr")),
                Entry::Dir(p("/srv/x")),
                Entry::Bind {
                    path: p("/usr"),
                    kind: Kind::Dir
                },
            ]
        );
    }

    #[test]
    fn allowing_the_whole_file_system_binds_it_whole() {
        let fs = FsPolicy {
            read: vec![p("/"), p("/usr")],
            write: vec![p("/tmp/s")],
            ..FsPolicy::default()
        };
        let got = skeleton(
            &fs,
            &[p("/dev/pts/3")],
            Path::new("/tmp"),
            &[(p("/bin"), p("usr/bin"))],
            kinds,
        );
        assert_eq!(
            got,
            vec![Entry::Bind {
                path: p("/"),
                kind: Kind::Dir
            }]
        );
    }
}
