//! Read-only paths the program created.
//!
//! A `read_only` path of the policy that does not exist at launch has no
//! mount to guard it (a mount needs something to sit on), so a program that
//! may write the tree around it can create it: `.git/hooks` in a workspace
//! that is not yet a repository, whose hooks the person's next `git commit`
//! outside the sandbox would run. So when the session ends, after the
//! program and everything it left are gone, the supervisor looks at each
//! such path ([`policies::FsPolicy::absent_read_only`]) beneath the writable
//! tree that holds it, and moves aside, to `NAME.sluice-quarantine-SESSION`
//! in the same directory:
//!
//! - the path, if it now exists;
//! - else the first symlink on the way to it, which could lead the path
//!   anywhere.
//!
//! The walk follows no symlink (every step is an `O_PATH | O_NOFOLLOW`
//! descriptor of the one before), so a link the program planted cannot
//! make the supervisor move anything elsewhere. Nothing is deleted: the
//! person is told on the terminal, the end record of the audit lists it,
//! and the person decides.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::audit::Quarantined;
use crate::broker::safe_open;

/// Moves aside what the program created at `paths` (see the module's
/// documentation); `writable` are the trees the program could write. What
/// was found, each with where it went.
pub fn sweep(paths: &[PathBuf], writable: &[PathBuf], session: &str) -> Vec<Quarantined> {
    let mut found = Vec::new();
    for path in paths {
        let Some(root) = writable.iter().filter(|w| path.starts_with(w)).max() else {
            continue;
        };
        let created = match created_on_the_way(root, path) {
            Ok(Some(created)) => created,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(path = %path.display(), "checking a read-only path: {e}");
                continue;
            }
        };
        let moved = created.move_aside(session);
        let shown = created.path.display();
        match &moved {
            Ok(to) => crate::say!(
                "sluice: the program created {shown}, where the policy keeps {} read-only \
                 (it did not exist at launch); moved to {}",
                path.display(),
                to.display()
            ),
            Err(e) => crate::say!(
                "sluice: the program created {shown}, where the policy keeps {} read-only \
                 (it did not exist at launch), and it could not be moved aside ({e}): \
                 check it before using it outside the sandbox",
                path.display()
            ),
        }
        found.push(Quarantined {
            path: created.path,
            moved_to: moved.ok(),
            why: None,
        });
    }
    found
}

/// Something found on the way to a read-only path: its directory (a
/// descriptor), its name there, and its whole path (for the person).
struct Created {
    parent: OwnedFd,
    name: CString,
    path: PathBuf,
}

impl Created {
    fn move_aside(&self, session: &str) -> io::Result<PathBuf> {
        let mut aside = OsString::from(OsStr::from_bytes(self.name.as_bytes()));
        aside.push(format!(".sluice-quarantine-{session}"));
        let from = self.name.as_bytes();
        safe_open::rename_noreplace(self.parent.as_raw_fd(), from, aside.as_bytes())?;
        Ok(self.path.with_file_name(aside))
    }
}

/// Walks from `root` down to `path` without following symlinks: the path
/// itself if it exists, else the first symlink on the way; `None` when the
/// way ends in nothing (or in something that is not a directory).
fn created_on_the_way(root: &Path, path: &Path) -> io::Result<Option<Created>> {
    let rest = path.strip_prefix(root).map_err(io::Error::other)?;
    let names: Vec<&OsStr> = rest
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(io::Error::other("not a plain path")),
        })
        .collect::<io::Result<_>>()?;
    let mut dir = open_path(libc::AT_FDCWD, root.as_os_str(), true)?;
    let mut so_far = root.to_path_buf();
    for (i, name) in names.iter().enumerate() {
        so_far.push(name);
        let st = match lstat_at(&dir, name) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        let kind = st.st_mode & libc::S_IFMT;
        let last = i + 1 == names.len();
        if last || kind == libc::S_IFLNK {
            return Ok(Some(Created {
                parent: dir,
                name: CString::new(name.as_bytes()).map_err(io::Error::other)?,
                path: so_far,
            }));
        }
        if kind != libc::S_IFDIR {
            return Ok(None);
        }
        dir = open_path(dir.as_raw_fd(), name, false)?;
    }
    Ok(None)
}

/// An `O_PATH` descriptor of `name` in `dir`, following no symlink (none at
/// all when `whole`: `name` is then an absolute path walked from `/`).
pub(crate) fn open_path(dir: libc::c_int, name: &OsStr, whole: bool) -> io::Result<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let resolve = if whole {
        libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS
    } else {
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS
    };
    safe_open::openat2(dir, name.as_bytes(), flags, 0, resolve)
}

pub(crate) fn lstat_at(dir: &OwnedFd, name: &OsStr) -> io::Result<libc::stat> {
    let c = CString::new(name.as_bytes()).map_err(io::Error::other)?;
    crate::sys::fs::lstat_at(dir, &c)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!(
                "sluice-unit-quarantine-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir.canonicalize().unwrap())
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn what_was_created_at_the_path_is_moved_aside_and_nothing_else() {
        let d = Dir::new("created");
        let ws = d.0.join("ws");
        std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
        std::fs::write(ws.join(".git/hooks/pre-commit"), "evil").unwrap();
        std::fs::create_dir_all(ws.join(".git/info")).unwrap();
        let paths = [ws.join(".git/hooks"), ws.join(".git/config")];
        let found = sweep(&paths, std::slice::from_ref(&ws), "s1");
        let aside = ws.join(".git/hooks.sluice-quarantine-s1");
        assert_eq!(
            found,
            [Quarantined {
                path: ws.join(".git/hooks"),
                moved_to: Some(aside.clone()),
                why: None,
            }]
        );
        assert!(!ws.join(".git/hooks").exists());
        assert_eq!(std::fs::read(aside.join("pre-commit")).unwrap(), b"evil");
        assert!(ws.join(".git/info").is_dir(), "a sibling was moved");
        // Nothing left to find the second time.
        assert!(sweep(&paths, std::slice::from_ref(&ws), "s2").is_empty());
    }

    #[test]
    fn a_symlink_on_the_way_is_moved_and_never_followed() {
        let d = Dir::new("symlink");
        let (ws, elsewhere) = (d.0.join("ws"), d.0.join("elsewhere"));
        std::fs::create_dir_all(elsewhere.join("hooks")).unwrap();
        std::fs::create_dir_all(&ws).unwrap();
        std::os::unix::fs::symlink(&elsewhere, ws.join(".git")).unwrap();
        let found = sweep(&[ws.join(".git/hooks")], std::slice::from_ref(&ws), "s");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, ws.join(".git"));
        let aside = ws.join(".git.sluice-quarantine-s");
        assert!(std::fs::symlink_metadata(&aside).unwrap().is_symlink());
        assert!(elsewhere.join("hooks").is_dir(), "followed the link");
    }

    #[test]
    fn paths_outside_every_writable_tree_or_not_there_are_left_alone() {
        let d = Dir::new("alone");
        let ws = d.0.join("ws");
        std::fs::create_dir_all(ws.join(".git")).unwrap();
        std::fs::create_dir_all(d.0.join("other/hooks")).unwrap();
        let paths = [ws.join(".git/hooks"), d.0.join("other/hooks")];
        assert!(sweep(&paths, std::slice::from_ref(&ws), "s").is_empty());
        assert!(d.0.join("other/hooks").is_dir());
    }
}
