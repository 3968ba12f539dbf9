//! Opening a path beneath a directory without following any symlink and
//! without leaving the directory, where there is no `openat2`
//! (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` on Linux): macOS.
//!
//! The path is checked lexically first: relative, no `..`, no NUL. Then
//! each directory on the way is opened from the one before with
//! `O_DIRECTORY | O_NOFOLLOW` (a symlink fails with `ELOOP` or `ENOTDIR`;
//! a directory swapped for a symlink after the check fails the same way,
//! since the kernel follows nothing), and the last component with the
//! caller's flags and `O_NOFOLLOW`. What is opened is always the file
//! reached through real directories from the starting one. The cost: one
//! `openat` per component (the broker's paths are a handful deep).
//!
//! The walk is written against [`DirOps`], so its logic is tested with a
//! recording fake; the real one ([`OpenAt`], `openat(2)`, which behaves
//! the same on both kernels for these flags) is tested on Linux against a
//! real tree with symlinks planted on the way.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// The two opens the walk makes; `O_NOFOLLOW` is the implementation's to
/// add (with `O_CLOEXEC`), on every call.
pub trait DirOps {
    type Fd;
    /// Opens directory `name` (one component) in `dir`, following no
    /// symlink.
    fn open_dir(&mut self, dir: &Self::Fd, name: &OsStr) -> io::Result<Self::Fd>;
    /// Opens `name` (one component) in `dir` with `flags`, following no
    /// symlink.
    fn open_last(
        &mut self,
        dir: &Self::Fd,
        name: &OsStr,
        flags: i32,
        mode: u32,
    ) -> io::Result<Self::Fd>;
}

/// The real opens: `openat(2)` with `O_NOFOLLOW | O_CLOEXEC` added (and
/// on macOS `O_NOFOLLOW_ANY`, which refuses a symlink in any component:
/// the walk's single component can have none, so it only adds a check).
pub struct OpenAt;

#[cfg(target_os = "macos")]
const NOFOLLOW: i32 = libc::O_NOFOLLOW | libc::O_NOFOLLOW_ANY;
#[cfg(not(target_os = "macos"))]
const NOFOLLOW: i32 = libc::O_NOFOLLOW;

fn openat(dir: &OwnedFd, name: &OsStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let name =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    crate::sys::fs::openat(dir, &name, flags | NOFOLLOW | libc::O_CLOEXEC, mode)
}

impl DirOps for OpenAt {
    type Fd = OwnedFd;
    fn open_dir(&mut self, dir: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
        openat(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
    }
    fn open_last(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        flags: i32,
        mode: u32,
    ) -> io::Result<OwnedFd> {
        openat(dir, name, flags, mode)
    }
}

/// [`open_beneath`] with the real opens: `path` (relative) beneath the
/// directory `root`, following no symlink and never leaving it.
pub fn open_beneath_fd(root: &OwnedFd, path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    open_beneath(&mut OpenAt, root, path, flags, mode)
}

/// Why a path cannot be walked at all (before anything is opened).
fn refuse(why: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{}: {why}", path.display()),
    )
}

/// The components of `path` to walk: refuses an absolute path and `..`
/// (the walk never leaves the starting directory), drops `.`.
pub fn components(path: &Path) -> io::Result<Vec<&OsStr>> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(refuse("a NUL byte in a path", path));
    }
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("'..' would leave the directory", path)),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse(
                    "an absolute path where a relative one is needed",
                    path,
                ))
            }
        }
    }
    Ok(out)
}

/// Opens `path` beneath `root` (see the module's description). An empty
/// path (or only `.`) opens nothing: `EINVAL`, since the caller holds
/// `root` already.
pub fn open_beneath<D: DirOps>(
    ops: &mut D,
    root: &D::Fd,
    path: &Path,
    flags: i32,
    mode: u32,
) -> io::Result<D::Fd> {
    let names = components(path)?;
    let Some((last, dirs)) = names.split_last() else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    let mut held: Option<D::Fd> = None;
    for name in dirs {
        let next = ops.open_dir(held.as_ref().unwrap_or(root), name)?;
        held = Some(next);
    }
    ops.open_last(held.as_ref().unwrap_or(root), last, flags, mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;
    use std::io::{Read, Write};

    /// A file tree: path -> what it is; descriptors are the paths they name.
    #[derive(Default)]
    struct Fake {
        tree: HashMap<String, Node>,
        calls: Vec<String>,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Node {
        Dir,
        File,
        Symlink,
    }

    impl Fake {
        fn with(entries: &[(&str, Node)]) -> Fake {
            let mut fake = Fake::default();
            fake.tree.insert(String::new(), Node::Dir);
            for (path, node) in entries {
                fake.tree.insert((*path).to_owned(), *node);
            }
            fake
        }

        fn child(dir: &str, name: &OsStr) -> String {
            let name = name.to_str().unwrap();
            if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            }
        }
    }

    impl DirOps for Fake {
        type Fd = String;
        fn open_dir(&mut self, dir: &String, name: &OsStr) -> io::Result<String> {
            let path = Fake::child(dir, name);
            self.calls.push(format!("dir {path}"));
            match self.tree.get(&path) {
                Some(Node::Dir) => Ok(path),
                // O_NOFOLLOW on a symlink: ELOOP; O_DIRECTORY on a file: ENOTDIR.
                Some(Node::Symlink) => Err(io::Error::from_raw_os_error(libc::ELOOP)),
                Some(Node::File) => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
                None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
            }
        }
        fn open_last(
            &mut self,
            dir: &String,
            name: &OsStr,
            flags: i32,
            _mode: u32,
        ) -> io::Result<String> {
            let path = Fake::child(dir, name);
            self.calls.push(format!("last {path} {flags}"));
            match self.tree.get(&path) {
                Some(Node::Symlink) => Err(io::Error::from_raw_os_error(libc::ELOOP)),
                Some(_) => Ok(path),
                None if flags & libc::O_CREAT != 0 => Ok(path),
                None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
            }
        }
    }

    fn tree() -> Fake {
        Fake::with(&[
            ("a", Node::Dir),
            ("a/b", Node::Dir),
            ("a/b/f", Node::File),
            ("a/link", Node::Symlink),
            ("a/b/flink", Node::Symlink),
            ("file", Node::File),
        ])
    }

    #[test]
    fn a_path_is_walked_one_directory_at_a_time() {
        let mut fake = tree();
        let got = open_beneath(&mut fake, &String::new(), Path::new("a/./b/f"), 0, 0).unwrap();
        assert_eq!(got, "a/b/f");
        assert_eq!(fake.calls, ["dir a", "dir a/b", "last a/b/f 0"]);
        // A single component opens straight from the root.
        let mut fake = tree();
        assert_eq!(
            open_beneath(&mut fake, &String::new(), Path::new("file"), 0, 0).unwrap(),
            "file"
        );
        assert_eq!(fake.calls, ["last file 0"]);
        // Creating: the flags reach the last open only.
        let mut fake = tree();
        let flags = libc::O_CREAT | libc::O_EXCL;
        assert_eq!(
            open_beneath(&mut fake, &String::new(), Path::new("a/new"), flags, 0o600).unwrap(),
            "a/new"
        );
        assert_eq!(
            fake.calls,
            ["dir a", format!("last a/new {flags}").as_str()]
        );
    }

    #[test]
    fn a_symlink_anywhere_on_the_way_fails_the_open() {
        for path in ["a/link/f", "a/link", "a/b/flink"] {
            let mut fake = tree();
            let err = open_beneath(&mut fake, &String::new(), Path::new(path), 0, 0).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{path}");
        }
        // A file where a directory is needed.
        let mut fake = tree();
        let err = open_beneath(&mut fake, &String::new(), Path::new("file/x"), 0, 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
    }

    #[test]
    fn nothing_leaves_the_directory_and_nothing_is_opened_to_try() {
        for path in ["../x", "a/../../x", "a/b/..", "/etc/passwd", "/"] {
            let mut fake = tree();
            let err = open_beneath(&mut fake, &String::new(), Path::new(path), 0, 0).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{path}");
            assert!(fake.calls.is_empty(), "{path}: {:?}", fake.calls);
        }
        let nul = OsString::from(std::ffi::OsStr::new("a\0b"));
        let mut fake = tree();
        assert!(open_beneath(&mut fake, &String::new(), Path::new(&nul), 0, 0).is_err());
        assert!(fake.calls.is_empty());
    }

    #[test]
    fn an_empty_path_opens_nothing() {
        for path in ["", ".", "./."] {
            let mut fake = tree();
            let err = open_beneath(&mut fake, &String::new(), Path::new(path), 0, 0).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{path:?}");
            assert!(fake.calls.is_empty());
        }
    }

    #[test]
    fn a_path_inside_the_tree_through_dot_dot_is_still_refused() {
        // Lexically inside ("a/b/../b/f" is "a/b/f"), but `..` after a
        // directory that may be a moved one is never walked.
        let mut fake = tree();
        assert!(open_beneath(&mut fake, &String::new(), Path::new("a/b/../b/f"), 0, 0).is_err());
        assert!(fake.calls.is_empty());
    }

    /// A real tree: `root/inside/dir/file`, `outside/secret`.
    fn real_tree() -> (tempfile::TempDir, OwnedFd) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("inside/dir")).unwrap();
        std::fs::write(root.join("inside/dir/file"), b"mine").unwrap();
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        std::fs::write(tmp.path().join("outside/secret"), b"secret").unwrap();
        let fd = std::fs::File::open(&root).unwrap().into();
        (tmp, fd)
    }

    fn read(fd: OwnedFd) -> String {
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn the_real_walk_opens_and_creates_beneath_the_directory() {
        // The control: the same opens the attacks below try, on real
        // directories, succeed.
        let (tmp, root) = real_tree();
        let fd = open_beneath_fd(&root, Path::new("inside/dir/file"), libc::O_RDONLY, 0).unwrap();
        assert_eq!(read(fd), "mine");
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
        let fd = open_beneath_fd(&root, Path::new("inside/new"), flags, 0o600).unwrap();
        std::fs::File::from(fd).write_all(b"new").unwrap();
        let made = std::fs::read(tmp.path().join("root/inside/new")).unwrap();
        assert_eq!(made, b"new");
    }

    #[test]
    fn a_symlink_planted_on_the_way_out_of_the_directory_is_never_followed() {
        let (tmp, root) = real_tree();
        let outside = tmp.path().join("outside");
        let inside = tmp.path().join("root/inside");
        // A directory on the way swapped for a link to the outside.
        std::fs::rename(inside.join("dir"), inside.join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("dir")).unwrap();
        // The last component a link to a file outside.
        std::os::unix::fs::symlink(outside.join("secret"), inside.join("link")).unwrap();
        // An absolute link as the first component.
        std::os::unix::fs::symlink(&outside, tmp.path().join("root/abs")).unwrap();
        for path in ["inside/dir/secret", "inside/link", "abs/secret"] {
            let err = open_beneath_fd(&root, Path::new(path), libc::O_RDONLY, 0).unwrap_err();
            assert!(
                matches!(err.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)),
                "{path}: {err}"
            );
        }
        // Creating through the link creates nothing outside.
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
        assert!(open_beneath_fd(&root, Path::new("inside/dir/planted"), flags, 0o600).is_err());
        assert!(!outside.join("planted").exists());
        // `..` is refused before anything is opened.
        let err = open_beneath_fd(
            &root,
            Path::new("inside/../../outside/secret"),
            libc::O_RDONLY,
            0,
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    }
}
