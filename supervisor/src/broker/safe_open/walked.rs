//! The safe open where there is no `openat2`, `O_PATH` or `/proc/self/fd`
//! (macOS): the same interface as [`super::linux`], kept by walking.
//!
//! - A lookup takes the real path from `realpath(3)` (symlinks followed,
//!   `..` applied), then walks it again from `/`, one real directory at a
//!   time, each opened from the one before with `O_NOFOLLOW`
//!   ([`crate::platform::walk`], with `O_NOFOLLOW_ANY` too on macOS): a
//!   directory swapped for a symlink since `realpath` fails the walk
//!   (`ELOOP`/`ENOTDIR`) instead of leading elsewhere. The file itself is
//!   not opened: its directory is kept, with its name there, its kind and
//!   its identity (device, inode) from `fstatat(AT_SYMLINK_NOFOLLOW)`.
//! - The judged file is opened in that directory by that name, following
//!   nothing, and refused (`ESTALE`) unless it is still the same file:
//!   whatever was swapped in after the decision is not opened, and a move
//!   of a directory above it changes nothing (the directory is held).
//! - The short way (`open_plain`) walks the asked path itself, refusing
//!   `..` and any symlink on the way, as `RESOLVE_NO_SYMLINKS` does.
//!
//! The cost: one `openat` per directory on the way, at every lookup and
//! short open (the paths asked are a handful deep), and one more at the
//! open. What it cannot give: a read-only copy of the mount tree (a
//! descriptor served for reading can change the file's mode and times, as
//! where Linux has no copy); a directory on the way that the supervisor
//! cannot read (search permission only) fails the walk, where `O_PATH`
//! would pass.
//!
//! Nothing here is macOS-only: it is compiled and tested on Linux too,
//! against the attacks the Linux way is tested with.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::{
    check_kind, identity, identity_of, kind_in, kind_of, normalize, served, Found, Kind, Mode,
};
use crate::platform::walk::{self, DirOps, OpenAt};
use crate::sys;

pub type Lookup = super::Lookup<Resolved>;
pub type Missing = super::Missing<Resolved>;

/// A path resolved to a file that exists: the directory holding it, its
/// name there, and what it was when resolved.
#[derive(Debug)]
pub struct Resolved {
    /// Reached from `/` through real directories.
    dir: OwnedFd,
    /// One component (`.` for `/` itself).
    name: OsString,
    /// Absolute, canonical: symlinks followed, `..` applied.
    pub real: PathBuf,
    pub kind: Kind,
    /// Device and inode: what is opened must still be this file.
    id: (u64, u64),
}

impl Found for Resolved {
    fn real(&self) -> &Path {
        &self.real
    }
    fn kind(&self) -> Kind {
        self.kind
    }
    fn in_dir<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>) -> io::Result<T> {
        let dir = self.open_as(libc::O_RDONLY | libc::O_DIRECTORY)?;
        f(dir.as_fd())
    }
}

impl Resolved {
    /// Opens the resolved file with `flags` (and `O_NONBLOCK`: a FIFO
    /// swapped in cannot block), in its directory, following nothing;
    /// `ESTALE` unless it is still the file resolved. `O_TRUNC` is applied
    /// only after that check, so a file swapped in is never truncated.
    fn open_as(&self, flags: libc::c_int) -> io::Result<OwnedFd> {
        let opening = (flags & !libc::O_TRUNC) | libc::O_NONBLOCK;
        let fd = OpenAt.open_last(&self.dir, &self.name, opening, 0)?;
        if identity(&fd)? != self.id {
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        if flags & libc::O_TRUNC != 0 {
            nix::unistd::ftruncate(&fd, 0)?;
        }
        Ok(fd)
    }
}

/// Resolves an absolute path to the file it names now (see the module's
/// description). When the last component is missing, the parent is
/// resolved instead, so the caller can decide on the real location of a
/// file to create; when the parent is missing too, the lexical path is used.
pub fn lookup(path: &Path) -> io::Result<Lookup> {
    lookup_with(path, false)
}

/// [`lookup`], optionally without following a symlink as the last
/// component: the link itself is then found, a kind never served.
pub fn lookup_with(path: &Path, nofollow: bool) -> io::Result<Lookup> {
    let found = match (nofollow, path.parent(), last_name(path)) {
        (true, Some(parent), Some(name)) => {
            real_path(parent).and_then(|dir| resolve(&dir.join(name)))
        }
        _ => real_path(path).and_then(|real| resolve(&real)),
    };
    match found {
        Ok(found) => Ok(Lookup::Found(found)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(Lookup::Missing(missing(path))),
        Err(e) => Err(e),
    }
}

/// The last component of `path` when it is a name (not `.` or `..`,
/// which are never symlinks).
fn last_name(path: &Path) -> Option<&OsStr> {
    let bytes = path.as_os_str().as_bytes();
    let last = bytes.rsplit(|&b| b == b'/').next()?;
    match last {
        b"" | b"." | b".." => None,
        name => Some(OsStr::from_bytes(name)),
    }
}

/// `realpath(3)` of `path`: absolute, every symlink followed.
fn real_path(path: &Path) -> io::Result<PathBuf> {
    std::fs::canonicalize(path)
}

fn missing(path: &Path) -> Missing {
    let lexical = normalize(path);
    let name = path
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    // `a/b/..` or `a/.`: no name to create; decide on the lexical path.
    let parent = match (path.parent(), name.is_empty()) {
        (Some(parent), false) => real_path(parent)
            .and_then(|real| resolve(&real))
            .ok()
            .filter(|p| p.kind == Kind::Directory),
        _ => None,
    };
    let real = match &parent {
        Some(p) => p.real.join(OsStr::from_bytes(&name)),
        None => lexical,
    };
    Missing { parent, name, real }
}

/// `/`, the walk's starting point, opened plainly (it is no symlink, and
/// nothing is above it).
fn root() -> io::Result<OwnedFd> {
    Ok(std::fs::File::open("/")?.into())
}

/// `real` (absolute, no `..`) walked from `/` through real directories,
/// and its last component taken as it is there (a symlink not followed).
fn resolve(real: &Path) -> io::Result<Resolved> {
    let inside = real.strip_prefix("/").map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not an absolute path", real.display()),
        )
    })?;
    let root = root()?;
    let (dir, name) = match (inside.parent(), inside.file_name()) {
        (_, None) => (root, OsString::from(".")),
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
            let flags = libc::O_RDONLY | libc::O_DIRECTORY;
            let dir = walk::open_beneath_fd(&root, parent, flags, 0)?;
            (dir, name.to_owned())
        }
        (_, Some(name)) => (root, name.to_owned()),
    };
    let c_name = std::ffi::CString::new(name.clone().into_vec())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let st = sys::fs::lstat_at(&dir, &c_name)?;
    Ok(Resolved {
        dir,
        name,
        real: real.to_path_buf(),
        kind: kind_in(&st),
        id: identity_of(&st),
    })
}

/// Opens the judged file behind `found` with exactly `mode`, in the
/// directory it was found in; `ESTALE` if another file has taken its name
/// since. `within` (a read-only copy of the mount tree) does not exist
/// here: given one, the open is refused rather than made elsewhere.
pub fn reopen(found: &Resolved, mode: Mode, within: Option<BorrowedFd<'_>>) -> io::Result<OwnedFd> {
    no_copy(within)?;
    check_kind(found.kind, mode)?;
    served(found.open_as(mode.flags())?, mode)
}

/// Opens `path` (absolute) with `mode` in one step when nothing on the way
/// can make the file opened another than the one `path` names: no `..`
/// (`Ok(None)`: the caller takes the long way) and no symlink (the walk
/// fails with `ELOOP` or `ENOTDIR`). A directory is closed and `Ok(None)`;
/// a FIFO, socket or device is refused. As [`super::linux::open_plain`].
pub fn open_plain(
    path: &Path,
    mode: Mode,
    within: Option<BorrowedFd<'_>>,
) -> io::Result<Option<OwnedFd>> {
    no_copy(within)?;
    let bytes = path.as_os_str().as_bytes();
    if bytes.split(|&b| b == b'/').any(|name| name == b"..") {
        return Ok(None);
    }
    let Ok(inside) = path.strip_prefix("/") else {
        return Ok(None);
    };
    if inside.as_os_str().is_empty() {
        // `/` itself: a directory.
        return Ok(None);
    }
    let fd = walk::open_beneath_fd(&root()?, inside, mode.flags() | libc::O_NONBLOCK, 0)?;
    match kind_of(&fd)? {
        Kind::Directory => Ok(None),
        Kind::Other => Err(super::unsupported()),
        Kind::File => served(fd, mode).map(Some),
    }
}

fn no_copy(within: Option<BorrowedFd<'_>>) -> io::Result<()> {
    match within {
        None => Ok(()),
        Some(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no read-only copy of the mount tree on this platform",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::create;
    use super::super::tests::{READ, WRITE};
    use super::*;
    use nix::sys::stat::Mode as Perms;
    use nix::unistd::mkfifo;
    use proto::OpenFlags;
    use std::fs;
    use std::io::{Read, Write};
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn dir() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().canonicalize().unwrap();
        (tmp, path)
    }

    fn found(l: Lookup) -> Resolved {
        match l {
            Lookup::Found(r) => r,
            Lookup::Missing(m) => panic!("missing: {}", m.real.display()),
        }
    }

    fn read_all(fd: OwnedFd) -> String {
        let mut s = String::new();
        fs::File::from(fd).read_to_string(&mut s).unwrap();
        s
    }

    /// The control: symlinks (relative, absolute, through `..`) are
    /// followed to the file they name, which is judged and opened.
    #[test]
    fn symlinks_resolve_to_the_file_actually_named() {
        let (_tmp, d) = dir();
        fs::create_dir(d.join("secret")).unwrap();
        fs::write(d.join("secret/key"), "k").unwrap();
        symlink(d.join("secret/key"), d.join("absolute")).unwrap();
        symlink("secret", d.join("dirlink")).unwrap();
        let r = found(lookup(&d.join("absolute")).unwrap());
        assert_eq!((&r.real, r.kind), (&d.join("secret/key"), Kind::File));
        assert_eq!(read_all(reopen(&r, READ, None).unwrap()), "k");
        let r = found(lookup(&d.join("dirlink/../secret/./key")).unwrap());
        assert_eq!(r.real, d.join("secret/key"));
        let r = found(lookup(&d.join("dirlink")).unwrap());
        assert_eq!((r.real, r.kind), (d.join("secret"), Kind::Directory));
        let r = found(lookup(Path::new("/")).unwrap());
        assert_eq!(
            (r.real.as_path(), r.kind),
            (Path::new("/"), Kind::Directory)
        );
    }

    /// Without following the last component, a symlink is found as
    /// itself, a kind never served.
    #[test]
    fn a_symlink_not_followed_is_never_served() {
        let (_tmp, d) = dir();
        fs::write(d.join("file"), "f").unwrap();
        symlink(d.join("file"), d.join("link")).unwrap();
        let r = found(lookup_with(&d.join("link"), true).unwrap());
        assert_eq!((&r.real, r.kind), (&d.join("link"), Kind::Other));
        let e = reopen(&r, READ, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        // The control: followed, the file.
        let r = found(lookup_with(&d.join("link"), false).unwrap());
        assert_eq!((&r.real, r.kind), (&d.join("file"), Kind::File));
    }

    /// The file judged is the file opened: a link swapped after the
    /// lookup changes nothing, and another file renamed over the judged
    /// one is refused (`ESTALE`), never opened.
    #[test]
    fn the_judged_file_is_the_opened_file_even_after_a_swap() {
        let (_tmp, d) = dir();
        fs::write(d.join("allowed"), "allowed").unwrap();
        fs::write(d.join("denied"), "denied").unwrap();
        symlink(d.join("allowed"), d.join("link")).unwrap();
        let r = found(lookup(&d.join("link")).unwrap());
        assert_eq!(r.real, d.join("allowed"));
        fs::remove_file(d.join("link")).unwrap();
        symlink(d.join("denied"), d.join("link")).unwrap();
        assert_eq!(read_all(reopen(&r, READ, None).unwrap()), "allowed");
        // The judged name itself taken by another file: not opened, and
        // not truncated either.
        fs::rename(d.join("denied"), d.join("allowed")).unwrap();
        let e = reopen(&r, READ, None).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}");
        let truncate = Mode {
            flags: OpenFlags {
                truncate: true,
                ..OpenFlags::default()
            },
            ..WRITE
        };
        let e = reopen(&r, truncate, None).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}");
        assert_eq!(fs::read_to_string(d.join("allowed")).unwrap(), "denied");
        // The control: the file judged is truncated as asked.
        let r = found(lookup(&d.join("allowed")).unwrap());
        drop(reopen(&r, truncate, None).unwrap());
        assert_eq!(fs::read_to_string(d.join("allowed")).unwrap(), "");
    }

    /// A directory on the way to the real path swapped for a symlink after
    /// `realpath` (the walk is given the old real path) fails the walk:
    /// nothing is resolved through the link.
    #[test]
    fn a_directory_swapped_for_a_symlink_mid_walk_fails_the_walk() {
        let (_tmp, d) = dir();
        fs::create_dir_all(d.join("in/sub")).unwrap();
        fs::write(d.join("in/sub/f"), "in").unwrap();
        fs::create_dir_all(d.join("out/sub")).unwrap();
        fs::write(d.join("out/sub/f"), "out").unwrap();
        // The control: the real path resolves.
        assert_eq!(resolve(&d.join("in/sub/f")).unwrap().kind, Kind::File);
        fs::rename(d.join("in"), d.join("moved")).unwrap();
        symlink(d.join("out"), d.join("in")).unwrap();
        let e = resolve(&d.join("in/sub/f")).unwrap_err();
        assert!(
            matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)),
            "{e}"
        );
    }

    /// A directory above the judged file moved after the lookup: the
    /// directory is held, so the file opened is still the one judged.
    #[test]
    fn a_moved_ancestor_changes_nothing() {
        let (_tmp, d) = dir();
        fs::create_dir(d.join("a")).unwrap();
        fs::write(d.join("a/f"), "judged").unwrap();
        let r = found(lookup(&d.join("a/f")).unwrap());
        fs::rename(d.join("a"), d.join("b")).unwrap();
        fs::create_dir(d.join("a")).unwrap();
        fs::write(d.join("a/f"), "planted").unwrap();
        assert_eq!(read_all(reopen(&r, READ, None).unwrap()), "judged");
    }

    /// The short way takes no symlink (absolute or relative, on the way or
    /// last) and no `..`; the same file on a plain path is opened.
    #[test]
    fn plain_opens_take_no_symlink_and_no_dot_dot() {
        let (_tmp, d) = dir();
        fs::create_dir(d.join("sub")).unwrap();
        fs::write(d.join("sub/f"), "plain").unwrap();
        symlink(d.join("sub"), d.join("abs")).unwrap();
        symlink("sub/f", d.join("rel")).unwrap();
        let fd = open_plain(&d.join("sub/f"), READ, None).unwrap().unwrap();
        assert_eq!(read_all(fd), "plain");
        for link in ["abs/f", "rel"] {
            let e = open_plain(&d.join(link), READ, None).unwrap_err();
            assert!(
                matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)),
                "{link}: {e}"
            );
        }
        assert!(open_plain(&d.join("sub/../sub/f"), READ, None)
            .unwrap()
            .is_none());
        // A directory takes the long way; a FIFO neither blocks nor is served.
        assert!(open_plain(&d.join("sub"), READ, None).unwrap().is_none());
        mkfifo(&d.join("fifo"), Perms::from_bits_truncate(0o600)).unwrap();
        let e = open_plain(&d.join("fifo"), READ, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        // Append is kept, the access is the one asked.
        let append = Mode {
            flags: OpenFlags {
                append: true,
                ..OpenFlags::default()
            },
            ..WRITE
        };
        let fd = open_plain(&d.join("sub/f"), append, None).unwrap().unwrap();
        fs::File::from(fd).write_all(b"+").unwrap();
        assert_eq!(fs::read_to_string(d.join("sub/f")).unwrap(), "plain+");
    }

    /// Creating: judged where it would be made (through a symlinked
    /// parent, its real place); never through a symlink at the name, and
    /// never set-id.
    #[test]
    fn creates_are_made_where_judged_and_never_through_a_link() {
        let (_tmp, d) = dir();
        fs::create_dir(d.join("real")).unwrap();
        symlink(d.join("real"), d.join("via")).unwrap();
        let Lookup::Missing(m) = lookup(&d.join("via/new")).unwrap() else {
            panic!("exists");
        };
        assert_eq!(m.real, d.join("real/new"));
        drop(create(&m, WRITE, 0o4755).unwrap());
        let meta = fs::metadata(d.join("real/new")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7000, 0, "set-id bit created");
        let e = create(&m, WRITE, 0o600).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        // O_CREAT on a dangling symlink: EEXIST, nothing made at its target.
        symlink(d.join("elsewhere"), d.join("real/dangling")).unwrap();
        let Lookup::Missing(m) = lookup(&d.join("real/dangling")).unwrap() else {
            panic!("a dangling link resolved");
        };
        let e = create(&m, WRITE, 0o600).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert!(!d.join("elsewhere").exists());
        // The parent swapped for another directory after the lookup: the
        // create is refused, not made in the new one.
        let Lookup::Missing(m) = lookup(&d.join("real/later")).unwrap() else {
            panic!("exists");
        };
        fs::rename(d.join("real"), d.join("old")).unwrap();
        fs::create_dir(d.join("real")).unwrap();
        let e = create(&m, WRITE, 0o600).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}");
        assert!(!d.join("real/later").exists() && !d.join("old/later").exists());
        // A missing parent: judged lexically, nothing made.
        let Lookup::Missing(m) = lookup(&d.join("no/such/../file")).unwrap() else {
            panic!("exists");
        };
        assert!(m.parent.is_none());
        assert_eq!(m.real, d.join("no/file"));
    }

    /// The kind is checked against the mode; a FIFO is found but never
    /// opened; there is no read-only copy to open in.
    #[test]
    fn kinds_are_checked_and_no_copy_is_pretended() {
        let (_tmp, d) = dir();
        fs::write(d.join("f"), "").unwrap();
        let r = found(lookup(&d).unwrap());
        let e = reopen(&r, WRITE, None).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
        let as_dir = Mode {
            flags: OpenFlags {
                directory: true,
                ..OpenFlags::default()
            },
            ..READ
        };
        assert!(reopen(&r, as_dir, None).is_ok());
        let file = found(lookup(&d.join("f")).unwrap());
        let e = reopen(&file, as_dir, None).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
        mkfifo(&d.join("fifo"), Perms::from_bits_truncate(0o600)).unwrap();
        let fifo = found(lookup(&d.join("fifo")).unwrap());
        assert_eq!(fifo.kind, Kind::Other);
        let e = reopen(&fifo, READ, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        let copy = root().unwrap();
        let e = reopen(&file, READ, Some(copy.as_fd())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        let e = open_plain(&d.join("f"), READ, Some(copy.as_fd())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }
}
