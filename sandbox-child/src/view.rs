//! The program's view of the file system, prepared before fork: the
//! protective mounts with their placeholders ([`crate::mounts`]), the veil
//! over the other sessions' directories, the policy-built root
//! ([`crate::root`]) and what the view holds besides the policy's trees (the
//! program's terminal, a [`StandIn`]), each with its strings ready for the
//! child's raw calls.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::FileType;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use policies::Policy;

use crate::mounts::{self, MountKind, SHM};
use crate::prepare_error::{cstring, PrepareError};
use crate::root;
use crate::ChildTerminal;

/// What the host's paths are (`stat`, following symlinks), each asked once
/// for the whole plan: the writable trees, the protective mounts, the
/// policy-built root's skeleton and `/dev/shm` asked the same paths two or
/// three times each. Every step then also sees the same answer for a path.
/// Keyed by the path's bytes (the plan's paths are canonical).
#[derive(Default)]
pub(crate) struct HostKinds(RefCell<HashMap<OsString, Option<FileType>>>);

impl HostKinds {
    /// The path's type; `None` when it cannot be looked up (missing).
    pub(crate) fn of(&self, path: &Path) -> Option<FileType> {
        if let Some(kind) = self.0.borrow().get(path.as_os_str()) {
            return *kind;
        }
        let kind = path.metadata().ok().map(|meta| meta.file_type());
        self.0
            .borrow_mut()
            .insert(path.as_os_str().to_owned(), kind);
        kind
    }

    /// `Path::is_dir`, remembered.
    pub(crate) fn is_dir(&self, path: &Path) -> bool {
        self.of(path).is_some_and(|kind| kind.is_dir())
    }
}

/// A file of the host that the sandbox sees replaced by `source`: bound
/// over `path` in the policy-built root, read-only and nosuid, when `path`
/// is a regular file (not a symlink) inside a tree the policy allows (a mount needs
/// something to sit on; the host's tree is never written to make one).
#[derive(Debug, Clone)]
pub struct StandIn {
    pub path: PathBuf,
    pub source: PathBuf,
}

/// A path of the host that the sandbox sees replaced by a file or directory
/// of the session (`source`), writable but never executable: an agent's
/// state file the program may rewrite but whose command-bearing keys the
/// supervisor keeps from reaching the host's file, or an empty directory
/// that keeps the program from other sessions' entries (shell snapshots
/// an agent sources). Bound over the host's tree before the policy-built
/// root is made from it, so under `--transparent` too; `path` must exist.
#[derive(Debug, Clone)]
pub struct SessionCopy {
    pub path: PathBuf,
    pub source: PathBuf,
}

/// A directory of the program's `TMPDIR` (`path`, where the policy points
/// `PYTHONPYCACHEPREFIX`) seen as an overlay: `lower`, a directory no
/// sandbox reaches (the supervisor's cache of bytecode it copied from the
/// host, `supervisor/src/pycache.rs`), read-only, under an upper layer
/// where the program's writes land. The upper layer and overlayfs's work
/// directory are those of a tmpfs of the session's own (bounded as its
/// `/dev/shm`, [`crate::mounts::LAYERS_OPTIONS`]) mounted at `path` first
/// and covered by the overlay, so out of the program's reach; the child
/// hands a descriptor of it to the supervisor with its root, which reads
/// the names the program's Python wrote through it once the session has
/// ended, and frees the tmpfs by closing it. Mounted `nosuid`, `nodev`,
/// `noexec`, `volatile`; where the overlay fails (a kernel without
/// overlayfs in user namespaces, or without user xattrs on tmpfs) the
/// tmpfs is unmounted and the program has the plain directory as a cache
/// of its own: nothing the supervisor trusts depends on the mount.
#[derive(Debug, Clone)]
pub struct SessionOverlay {
    pub path: PathBuf,
    pub lower: PathBuf,
}

/// A [`SessionOverlay`]'s strings for the child's `mount`.
pub(crate) struct PreparedOverlay {
    pub target: CString,
    /// `lowerdir=…,upperdir=<target>/upper,workdir=<target>/work,userxattr,volatile`.
    pub options: CString,
}

/// The names of the upper and work directories in the layers' tmpfs (the
/// supervisor reads the upper one at the session's end).
pub const LAYERS_UPPER: &std::ffi::CStr = c"upper";
pub(crate) const LAYERS_WORK: &std::ffi::CStr = c"work";

impl SessionOverlay {
    /// `None` where a path cannot be written in overlayfs's options (a
    /// `,`, `:` or `\\` in it): the program then has the plain directory.
    pub(crate) fn prepare(&self) -> Result<Option<PreparedOverlay>, PrepareError> {
        let plain = |p: &Path| !p.as_os_str().as_bytes().iter().any(|b| b",:\\".contains(b));
        if ![&self.lower, &self.path].iter().all(|p| plain(p)) {
            return Ok(None);
        }
        let mut options = b"lowerdir=".to_vec();
        options.extend_from_slice(self.lower.as_os_str().as_bytes());
        for (name, dir) in [(",upperdir=", LAYERS_UPPER), (",workdir=", LAYERS_WORK)] {
            options.extend_from_slice(name.as_bytes());
            options.extend_from_slice(
                self.path
                    .join(OsStr::from_bytes(dir.to_bytes()))
                    .as_os_str()
                    .as_bytes(),
            );
        }
        // `volatile`: no sync of the upper layer's file system, at the
        // mount's end either (the session's writes are dropped anyway).
        options.extend_from_slice(b",userxattr,volatile");
        Ok(Some(PreparedOverlay {
            target: cstring(self.path.as_os_str())?,
            options: cstring(OsStr::from_bytes(&options))?,
        }))
    }
}

/// Every sluice session directory of the user lives under `parent`; in the
/// sandbox `parent` is a read-only directory holding only `keep` (the
/// session's own `tmp/`, beneath `parent`), so no sandbox reaches another
/// session's directory, nor its own `private/`, even one made after it
/// started. Both paths are canonical.
pub struct Veil {
    pub parent: PathBuf,
    pub keep: PathBuf,
}

/// One mount, with its strings ready for the raw syscalls.
pub(crate) struct PreparedMount {
    pub kind: MountKind,
    pub target: CString,
    /// The bind source: the target itself, or a placeholder for `Deny`.
    pub source: CString,
}

/// The veil's paths, for the child (see [`Veil`]).
pub(crate) struct PreparedVeil {
    /// Covered by a tmpfs.
    pub parent: CString,
    /// The session's own `tmp/`: cloned before the parent is covered, then
    /// moved onto the same path in the tmpfs.
    pub keep: CString,
    /// Made in the tmpfs, parents first: the way to `keep` and to the
    /// policy-built root's mount point.
    pub dirs: Vec<CString>,
}

/// One step of building the policy's root ([`crate::root`]), with its
/// paths already under the new root.
pub(crate) enum RootEntry {
    Dir(CString),
    File(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    Bind {
        source: CString,
        target: CString,
    },
    /// A [`StandIn`]: `source` bound over the file `target`, read-only.
    StandIn {
        source: CString,
        target: CString,
    },
}

/// The new root: a tmpfs mounted on `dir`, filled by `entries`.
pub(crate) struct PreparedRoot {
    pub dir: CString,
    pub entries: Vec<RootEntry>,
}

/// The session's own directory on the host (only the supervisor's to
/// reach) and the program's `TMPDIR` in it, the one entry it holds on disk.
#[derive(Debug, Clone)]
pub struct SessionDirs {
    pub dir: PathBuf,
    /// `dir/tmp`.
    pub tmp: PathBuf,
}

impl SessionDirs {
    /// `dir/private`, in the child's tmpfs only: the deny placeholders and
    /// the policy-built root's mount point.
    pub fn private(&self) -> PathBuf {
        self.dir.join("private")
    }
}

/// The session's directory as the child sees it: a tmpfs it mounts over
/// [`SessionDirs::dir`] once every mount but the deny placeholders is made,
/// holding the program's `TMPDIR` (cloned first, with the flags those
/// mounts gave it, and moved back) and `private/` with the deny
/// placeholders (mode 000, mounted read-only, so neither their content,
/// empty anyway, nor their mode can be used) and the policy-built root's
/// mount point. Made in memory by the child rather than on the host's disk
/// by the supervisor: on ext4 every directory made and removed at each
/// launch costs (without a journal a new inode skips those deleted in the
/// last 30 s; mounted `discard`, each removal waits for the device), and
/// the host keeps nothing a program could chmod or that must be opened up
/// to be removed.
pub(crate) struct PreparedPrivate {
    /// The tmpfs's mount point: the session's directory.
    pub dir: CString,
    /// The program's `TMPDIR`, moved back into the tmpfs.
    pub keep: CString,
    /// Directories made in the tmpfs, parents first, mode 0700: `keep`'s
    /// mount point, `private/`, the root's mount point.
    pub dirs: Vec<CString>,
    /// The placeholders, `true` for a directory, made mode 000.
    pub placeholders: Vec<(CString, bool)>,
}

/// The placeholder of each kind: one serves every denied path of that kind.
fn placeholder(dir: &Path, is_dir: bool) -> PathBuf {
    dir.join(if is_dir { "deny-dir" } else { "deny-file" })
}

/// What the child makes in its tmpfs over the session's directory: the
/// placeholders `mounts` bind, and the root's mount point.
pub(crate) fn prepare_private(
    session: &SessionDirs,
    mounts: &[PreparedMount],
    root: Option<&PreparedRoot>,
) -> Result<PreparedPrivate, PrepareError> {
    if session.tmp.parent() != Some(session.dir.as_path()) {
        return Err(PrepareError::Placeholder {
            path: session.tmp.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not in {}", session.dir.display()),
            ),
        });
    }
    let private = session.private();
    let mut placeholders = Vec::new();
    for is_dir in [true, false] {
        let path = cstring(placeholder(&private, is_dir).as_os_str())?;
        if mounts.iter().any(|m| m.source == path) {
            placeholders.push((path, is_dir));
        }
    }
    let root_dir = root
        .map(|r| PathBuf::from(std::ffi::OsStr::from_bytes(r.dir.as_bytes())))
        .filter(|d| d.parent() == Some(private.as_path()));
    let dirs = [session.tmp.clone(), private]
        .into_iter()
        .chain(root_dir)
        .map(|d| cstring(d.as_os_str()))
        .collect::<Result<_, _>>()?;
    Ok(PreparedPrivate {
        dir: cstring(session.dir.as_os_str())?,
        keep: cstring(session.tmp.as_os_str())?,
        dirs,
        placeholders,
    })
}

/// Whether the host mounts `path` `noexec` (unknown counts as not).
fn host_noexec(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statvfs is plain data; all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and st is a valid out-pointer for the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_flag & libc::ST_NOEXEC != 0
}

pub(crate) fn prepare_mounts(
    policy: &Policy,
    placeholder_dir: &Path,
    kinds: &HostKinds,
) -> Result<Vec<PreparedMount>, PrepareError> {
    // Directories and regular files only: a device node is written through
    // whatever its mount says, and binding one would be pointless.
    let bindable = |p: &Path| kinds.of(p).is_some_and(|k| k.is_dir() || k.is_file());
    let mut ops = mounts::writable_roots(&policy.filesystem, bindable);
    ops.extend(mounts::plan_with_exec(
        &policy.filesystem,
        |p| kinds.is_dir(p),
        host_noexec,
    ));
    // One placeholder of each kind serves every denied path of that kind.
    let (mut file, mut dir) = (None, None);
    ops.into_iter()
        .map(|op| {
            let source = match op.kind {
                MountKind::Deny { dir: is_dir } => {
                    let slot = if is_dir { &mut dir } else { &mut file };
                    slot.get_or_insert_with(|| placeholder(placeholder_dir, is_dir))
                        .clone()
                }
                MountKind::Writable { .. }
                | MountKind::Executable
                | MountKind::Pin
                | MountKind::ReadOnly
                | MountKind::SessionCopy => op.path.clone(),
            };
            Ok(PreparedMount {
                kind: op.kind,
                target: cstring(op.path.as_os_str())?,
                source: cstring(source.as_os_str())?,
            })
        })
        .collect()
}

/// The veil (see [`Veil`]), drawn after every other mount: a tmpfs over the
/// parent holding `<id>/tmp` (the session's own tree, moved there) and, when
/// the policy-built root's mount point is beneath the parent, the way to it.
/// A tmpfs rather than a directory under `private/`, so that no directory on
/// the host's disk is left a mount point of the child's namespace (removing
/// those afterwards makes the kernel detach the mounts, which is slow).
/// Nothing when the parent is denied anyway.
pub(crate) fn prepare_veil(
    policy: &Policy,
    veil: &Veil,
    root_dir: Option<&Path>,
) -> Result<Option<PreparedVeil>, PrepareError> {
    if policy
        .filesystem
        .deny
        .iter()
        .any(|d| veil.parent.starts_with(d))
    {
        return Ok(None);
    }
    if !veil.keep.starts_with(&veil.parent) || veil.keep == veil.parent {
        return Err(PrepareError::Placeholder {
            path: veil.keep.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not beneath {}", veil.parent.display()),
            ),
        });
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for target in std::iter::once(veil.keep.as_path()).chain(root_dir) {
        if !target.starts_with(&veil.parent) || target == veil.parent {
            continue;
        }
        let mut way: Vec<PathBuf> = target
            .ancestors()
            .take_while(|a| *a != veil.parent)
            .map(Path::to_path_buf)
            .collect();
        way.reverse();
        for dir in way {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    Ok(Some(PreparedVeil {
        parent: cstring(veil.parent.as_os_str())?,
        keep: cstring(veil.keep.as_os_str())?,
        dirs: dirs
            .iter()
            .map(|d| cstring(d.as_os_str()))
            .collect::<Result<_, _>>()?,
    }))
}

/// The skeleton of the child's root, under `placeholder_dir/root` (made by
/// the child in its tmpfs over the session's directory, or in the veil's:
/// [`PreparedPrivate`]; the child mounts a tmpfs on it).
pub(crate) fn prepare_root(
    policy: &Policy,
    placeholder_dir: &Path,
    cwd: &Path,
    terminal: Option<&ChildTerminal>,
    shm: bool,
    stand_ins: &[StandIn],
    kinds: &HostKinds,
) -> Result<PreparedRoot, PrepareError> {
    let dir = placeholder_dir.join("root");
    let kind = |p: &Path| {
        kinds.of(p).map(|k| {
            if k.is_dir() {
                root::Kind::Dir
            } else {
                root::Kind::File
            }
        })
    };
    let links = root::host_top_symlinks();
    let under = |p: &Path| -> Result<CString, PrepareError> {
        let rel = p.strip_prefix("/").unwrap_or(p);
        cstring(dir.join(rel).as_os_str())
    };
    // The program's own terminal exists in its view, so ttyname(3) works.
    // So is the session's own /dev/shm, mounted before the root is built.
    let also: Vec<PathBuf> = terminal
        .and_then(|t| std::fs::read_link(format!("/proc/self/fd/{}", t.slave.as_raw_fd())).ok())
        .filter(|p| p.is_absolute())
        .into_iter()
        .chain(shm.then(|| PathBuf::from(SHM)))
        .collect();
    let mut entries = root::skeleton(&policy.filesystem, &also, cwd, &links, kind)
        .into_iter()
        .map(|entry| {
            Ok(match entry {
                root::Entry::Dir(p) => RootEntry::Dir(under(&p)?),
                root::Entry::File(p) => RootEntry::File(under(&p)?),
                root::Entry::Symlink { path, target } => RootEntry::Symlink {
                    target: cstring(target.as_os_str())?,
                    link: under(&path)?,
                },
                root::Entry::Bind { path, .. } => RootEntry::Bind {
                    source: cstring(path.as_os_str())?,
                    target: under(&path)?,
                },
            })
        })
        .collect::<Result<Vec<_>, PrepareError>>()?;
    // Last: each sits on a file that one of the binds above brought in.
    let in_view = |p: &Path| {
        let fs = &policy.filesystem;
        let allowed = fs.read.iter().chain(&fs.write).chain(&fs.execute);
        let denied = fs.deny.iter().any(|d| p.starts_with(d));
        // Not a symlink: a mount on one lands where it leads, which the
        // view may not hold (the launch would fail).
        let file = p.symlink_metadata().is_ok_and(|m| m.is_file());
        file && !denied && allowed.clone().any(|t| p.starts_with(t))
    };
    for s in stand_ins.iter().filter(|s| in_view(&s.path)) {
        entries.push(RootEntry::StandIn {
            source: cstring(s.source.as_os_str())?,
            target: under(&s.path)?,
        });
    }
    Ok(PreparedRoot {
        dir: cstring(dir.as_os_str())?,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path's kind is what `metadata` says (a directory, a file, a
    /// device, missing), asked once: the mounts and the root's skeleton
    /// see the same answer though the path changed in between.
    #[test]
    fn host_kinds_answer_as_metadata_once_per_path() {
        let base = std::env::temp_dir().join(format!("sluice-unit-kinds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("dir")).unwrap();
        std::fs::write(base.join("file"), b"").unwrap();
        let kinds = HostKinds::default();
        assert!(kinds.is_dir(&base.join("dir")));
        assert!(kinds.of(&base.join("file")).is_some_and(|k| k.is_file()));
        assert!(kinds
            .of(Path::new("/dev/null"))
            .is_some_and(|k| !k.is_dir() && !k.is_file()));
        assert!(kinds.of(&base.join("missing")).is_none());
        // Changed on the host since: the first answer stands.
        std::fs::remove_file(base.join("file")).unwrap();
        std::fs::create_dir(base.join("file")).unwrap();
        std::fs::create_dir(base.join("missing")).unwrap();
        assert!(kinds.of(&base.join("file")).is_some_and(|k| k.is_file()));
        assert!(kinds.of(&base.join("missing")).is_none());
        // Control: asked afresh, the change shows.
        let fresh = HostKinds::default();
        assert!(fresh.is_dir(&base.join("file")));
        assert!(fresh.is_dir(&base.join("missing")));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
