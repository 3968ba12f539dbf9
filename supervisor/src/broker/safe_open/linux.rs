//! The safe open on Linux ([`super`]'s interface). The requester controls
//! the path bytes, the symlinks and the renames along the way; so the name
//! is resolved first (an `O_PATH`
//! descriptor, with `openat2(RESOLVE_NO_MAGICLINKS)` so `/proc/*/fd` and
//! `/proc/*/root` links cannot jump anywhere), asks the kernel which file that
//! descriptor really is (`/proc/self/fd/N`), decides on that path, and only
//! then reopens *the same descriptor* with the access granted. Whatever the
//! requester swaps after the resolution changes nothing: the file that was
//! judged is the file that is opened.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{
    check_kind, identity, kind_of, normalize, served, unsupported, Found, Kind, Lookup, Missing,
    Mode,
};
use crate::sys;
pub(crate) use crate::sys::fs::{openat2, rename_noreplace};

/// A path resolved to a file that exists: an `O_PATH` descriptor and the
/// kernel's name for it.
#[derive(Debug)]
pub struct Resolved {
    pub fd: OwnedFd,
    /// Absolute, canonical: symlinks followed, `..` applied.
    pub real: PathBuf,
    pub kind: Kind,
}

impl Found for Resolved {
    fn real(&self) -> &Path {
        &self.real
    }
    fn kind(&self) -> Kind {
        self.kind
    }
    fn in_dir<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>) -> io::Result<T> {
        // An O_PATH descriptor: openat and mkdirat work relative to it.
        f(self.fd.as_fd())
    }
}

/// Resolves an absolute path to the file it names now.
///
/// Symlinks are followed (a requester may legitimately use them) but magic
/// links are not. When the last component is missing, the parent is
/// resolved instead, so the caller can decide on the real location of a
/// file to create; when the parent is missing too, the lexical path is used.
pub fn lookup(path: &Path) -> io::Result<Lookup> {
    lookup_with(path, false)
}

/// [`lookup`], optionally without following a symlink as the last
/// component (`O_NOFOLLOW`): the link itself is then found, a kind never
/// served.
pub fn lookup_with(path: &Path, nofollow: bool) -> io::Result<Lookup> {
    let extra = if nofollow { libc::O_NOFOLLOW } else { 0 };
    match resolve(libc::AT_FDCWD, path.as_os_str().as_bytes(), extra) {
        Ok(found) => Ok(Lookup::Found(found)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(Lookup::Missing(missing(path))),
        Err(e) => Err(e),
    }
}

fn missing(path: &Path) -> Missing {
    let lexical = normalize(path);
    let name = path
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    // `a/b/..` or `a/.`: no name to create; decide on the lexical path.
    let parent = match (path.parent(), name.is_empty()) {
        (Some(parent), false) => resolve(
            libc::AT_FDCWD,
            parent.as_os_str().as_bytes(),
            libc::O_DIRECTORY,
        )
        .ok(),
        _ => None,
    };
    let real = match &parent {
        Some(p) => p.real.join(OsStr::from_bytes(&name)),
        None => lexical,
    };
    Missing { parent, name, real }
}

/// `openat2(dirfd, path, O_PATH | extra, RESOLVE_NO_MAGICLINKS)` and the
/// real path and kind of what it opened.
fn resolve(dirfd: libc::c_int, path: &[u8], extra: libc::c_int) -> io::Result<Resolved> {
    let fd = openat2(
        dirfd,
        path,
        libc::O_PATH | libc::O_CLOEXEC | extra,
        0,
        libc::RESOLVE_NO_MAGICLINKS,
    )?;
    describe(fd)
}

fn describe(fd: OwnedFd) -> io::Result<Resolved> {
    let real = real_path(&fd)?;
    let kind = kind_of(&fd)?;
    Ok(Resolved { fd, real, kind })
}

/// The kernel's current name of the file behind `fd`.
pub fn real_path(fd: &OwnedFd) -> io::Result<PathBuf> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    // A file removed since it was opened reads back as "PATH (deleted)";
    // a file in no reachable mount does not start with '/'. Neither can be
    // decided on by name.
    if !link.is_absolute() || link.as_os_str().as_bytes().ends_with(b" (deleted)") {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("'{}' has no usable path", link.display()),
        ));
    }
    Ok(link)
}

/// Opens the judged file behind `found` with exactly `mode`: a reopen of the
/// same `O_PATH` descriptor through `/proc/self/fd`, so no path is walked
/// again. The file's kind is checked against the mode.
///
/// `within`: the root of a read-only copy of the mount tree
/// ([`super::readonly`]) to open the file in instead, by its real path; what
/// is opened there must be the very file judged (same device and inode),
/// else `ESTALE`.
pub fn reopen(found: &Resolved, mode: Mode, within: Option<BorrowedFd<'_>>) -> io::Result<OwnedFd> {
    check_kind(found.kind, mode)?;
    if let Some(root) = within {
        let bytes = found.real.as_os_str().as_bytes();
        let fd = open_nonblocking(Some(root), bytes, mode)?;
        if identity(&fd)? != identity(&found.fd)? {
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        return served(fd, mode);
    }
    sys::fs::reopen(&found.fd, mode.flags())
}

/// Opens `path` (absolute) with `mode` in one step, when nothing on the way
/// can make the file opened another than the one `path` names: no `..`
/// component (checked here) and no symlink (`RESOLVE_NO_SYMLINKS`, so the
/// kernel refuses with `ELOOP`). The file is then the one at
/// [`normalize`]`(path)`, which the caller has judged already. `Ok(None)`
/// when `path` has a `..`; an error when the kernel refuses (a symlink, a
/// missing file): the caller then takes the long way ([`lookup`]).
/// `within`: as for [`reopen`], the path taken from that root.
///
/// Opened with `O_NONBLOCK` (cleared after), so a FIFO cannot block; a file
/// that is neither regular nor a directory is closed and refused, as
/// [`reopen`] refuses it. Such a file can only be one that was there
/// before: the sandbox cannot make special files where it cannot write,
/// and where it can write the broker is not asked. A directory is closed
/// too, and `Ok(None)`: it is served from the sandbox's own view
/// ([`super::sandbox_view`]), on the long way.
pub fn open_plain(
    path: &Path,
    mode: Mode,
    within: Option<BorrowedFd<'_>>,
) -> io::Result<Option<OwnedFd>> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.split(|&b| b == b'/').any(|name| name == b"..") {
        return Ok(None);
    }
    let fd = open_nonblocking(within, bytes, mode)?;
    match kind_of(&fd)? {
        Kind::Directory => Ok(None),
        Kind::Other => Err(unsupported()),
        Kind::File => served(fd, mode).map(Some),
    }
}

/// `openat2` of `path` with `mode` and `O_NONBLOCK`, following no symlink
/// and no magic link; beneath `within` (as its root) when given.
fn open_nonblocking(
    within: Option<BorrowedFd<'_>>,
    path: &[u8],
    mode: Mode,
) -> io::Result<OwnedFd> {
    let resolve = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let (dirfd, resolve) = match within {
        Some(root) => (root.as_raw_fd(), resolve | libc::RESOLVE_IN_ROOT),
        None => (libc::AT_FDCWD, resolve),
    };
    openat2(dirfd, path, mode.flags() | libc::O_NONBLOCK, 0, resolve)
}

/// Makes the directory `path` and its missing parents, each with `mode`,
/// strictly beneath `base` (an existing directory; `path` lies under it):
/// every component below `base` is walked with `openat2(RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS)`, so a symlink planted on the way (by a sandbox
/// that could write there) is refused with ELOOP, never followed elsewhere.
pub fn make_dirs_beneath(base: &Path, path: &Path, mode: libc::mode_t) -> io::Result<()> {
    let rest = path
        .strip_prefix(base)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not beneath its base"))?;
    let directory = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let beneath = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let mut dir = openat2(
        libc::AT_FDCWD,
        base.as_os_str().as_bytes(),
        directory,
        0,
        libc::RESOLVE_NO_MAGICLINKS,
    )?;
    for name in rest.iter() {
        let name = name.as_bytes();
        if let Err(e) = sys::fs::mkdirat(&dir, name, mode) {
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        dir = openat2(dir.as_raw_fd(), name, directory, 0, beneath)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::create;
    use super::super::tests::{READ, WRITE};
    use super::*;
    use nix::fcntl::{fcntl, FcntlArg};
    use nix::sys::stat::Mode as Perms;
    use nix::unistd::mkfifo;
    use std::fs;
    use std::io::{Read, Write};
    use std::os::unix::fs::{symlink, PermissionsExt};

    use proto::OpenFlags;

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "sluice-safe_open-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Dir(p.canonicalize().unwrap())
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn read_all(fd: OwnedFd) -> String {
        let mut s = String::new();
        fs::File::from(fd).read_to_string(&mut s).unwrap();
        s
    }

    fn found(l: Lookup) -> Resolved {
        match l {
            Lookup::Found(r) => r,
            Lookup::Missing(m) => panic!("missing: {}", m.real.display()),
        }
    }

    #[test]
    fn symlinks_resolve_to_the_file_actually_named() {
        let d = Dir::new("symlink");
        fs::create_dir(d.0.join("secret")).unwrap();
        fs::write(d.0.join("secret/key"), "k").unwrap();
        symlink(d.0.join("secret/key"), d.0.join("innocent")).unwrap();
        symlink("secret", d.0.join("dirlink")).unwrap();
        let r = found(lookup(&d.0.join("innocent")).unwrap());
        assert_eq!(r.real, d.0.join("secret/key"));
        assert_eq!(r.kind, Kind::File);
        let r = found(lookup(&d.0.join("dirlink/../secret/./key")).unwrap());
        assert_eq!(r.real, d.0.join("secret/key"));
        let r = found(lookup(&d.0.join("dirlink")).unwrap());
        assert_eq!((r.real, r.kind), (d.0.join("secret"), Kind::Directory));
    }

    #[test]
    fn magic_links_are_not_followed() {
        let f = fs::File::open("/etc/hostname")
            .or_else(|_| fs::File::open("/etc/passwd"))
            .unwrap();
        let path = format!("/proc/self/fd/{}", f.as_raw_fd());
        let err = lookup(Path::new(&path)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        let err = lookup(Path::new("/proc/self/root/etc")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        let err = lookup(Path::new("/proc/self/cwd")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
    }

    #[test]
    fn reopen_gives_exactly_the_access_asked() {
        let d = Dir::new("reopen");
        let p = d.0.join("f");
        fs::write(&p, "hello").unwrap();
        let r = found(lookup(&p).unwrap());
        let fd = reopen(&r, READ, None).unwrap();
        let (fl, fdfl) = (
            fcntl(&fd, FcntlArg::F_GETFL).unwrap(),
            fcntl(&fd, FcntlArg::F_GETFD).unwrap(),
        );
        assert_eq!(fl & libc::O_ACCMODE, libc::O_RDONLY);
        assert_eq!(fdfl & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        let mut file = fs::File::from(fd);
        assert!(file.write_all(b"x").is_err(), "read-only descriptor wrote");
        let mut s = String::new();
        file.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");

        let fd = reopen(
            &r,
            Mode {
                write: true,
                flags: OpenFlags {
                    append: true,
                    ..OpenFlags::default()
                },
                ..Mode::default()
            },
            None,
        )
        .unwrap();
        let fl = fcntl(&fd, FcntlArg::F_GETFL).unwrap();
        assert_eq!(fl & libc::O_ACCMODE, libc::O_WRONLY);
        assert_ne!(fl & libc::O_APPEND, 0);
        fs::File::from(fd).write_all(b" world").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "hello world");

        let fd = reopen(
            &r,
            Mode {
                read: true,
                write: true,
                flags: OpenFlags {
                    truncate: true,
                    ..OpenFlags::default()
                },
                ..Mode::default()
            },
            None,
        )
        .unwrap();
        drop(fd);
        assert_eq!(fs::read_to_string(&p).unwrap(), "");
    }

    #[test]
    fn the_judged_file_is_the_opened_file_even_after_a_swap() {
        let d = Dir::new("swap");
        fs::write(d.0.join("allowed"), "allowed").unwrap();
        fs::write(d.0.join("denied"), "denied").unwrap();
        symlink(d.0.join("allowed"), d.0.join("link")).unwrap();
        let r = found(lookup(&d.0.join("link")).unwrap());
        assert_eq!(r.real, d.0.join("allowed"));
        // The requester swaps the link after the decision...
        fs::remove_file(d.0.join("link")).unwrap();
        symlink(d.0.join("denied"), d.0.join("link")).unwrap();
        // ...and still gets the file that was judged.
        let fd = reopen(&r, READ, None).unwrap();
        assert_eq!(read_all(fd), "allowed");
    }

    #[test]
    fn plain_opens_take_no_symlink_and_no_dot_dot() {
        let d = Dir::new("plain");
        fs::create_dir(d.0.join("sub")).unwrap();
        fs::write(d.0.join("sub/f"), "plain").unwrap();
        symlink(d.0.join("sub"), d.0.join("link")).unwrap();
        let fd = open_plain(&d.0.join("sub/f"), READ, None).unwrap().unwrap();
        // O_NONBLOCK was only for the open.
        let fl = fcntl(&fd, FcntlArg::F_GETFL).unwrap();
        assert_eq!(fl & libc::O_NONBLOCK, 0);
        assert_eq!(read_all(fd), "plain");
        // Control: the same file through a symlink, or through `..`, is not
        // opened here.
        let e = open_plain(&d.0.join("link/f"), READ, None).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        assert!(open_plain(&d.0.join("sub/../sub/f"), READ, None)
            .unwrap()
            .is_none());
        // A directory takes the long way too: it is served from the
        // sandbox's view, never from here.
        let dir = Mode {
            flags: OpenFlags {
                directory: true,
                ..OpenFlags::default()
            },
            ..READ
        };
        assert!(open_plain(&d.0.join("sub"), dir, None).unwrap().is_none());
        // A FIFO neither blocks nor is served.
        mkfifo(&d.0.join("fifo"), Perms::from_bits_truncate(0o600)).unwrap();
        let e = open_plain(&d.0.join("fifo"), READ, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        // Append is kept; the access is exactly the one asked.
        let append = Mode {
            flags: OpenFlags {
                append: true,
                ..OpenFlags::default()
            },
            ..WRITE
        };
        let fd = open_plain(&d.0.join("sub/f"), append, None)
            .unwrap()
            .unwrap();
        let fl = fcntl(&fd, FcntlArg::F_GETFL).unwrap();
        assert_eq!(
            fl & (libc::O_APPEND | libc::O_ACCMODE),
            libc::O_APPEND | libc::O_WRONLY
        );
        fs::File::from(fd).write_all(b"+").unwrap();
        assert_eq!(fs::read_to_string(d.0.join("sub/f")).unwrap(), "plain+");
    }

    #[test]
    fn kinds_are_checked_against_the_mode() {
        let d = Dir::new("kinds");
        fs::write(d.0.join("f"), "").unwrap();
        let dir = found(lookup(&d.0).unwrap());
        let err = reopen(&dir, WRITE, None).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EISDIR));
        let fd = reopen(
            &dir,
            Mode {
                read: true,
                flags: OpenFlags {
                    directory: true,
                    ..OpenFlags::default()
                },
                ..Mode::default()
            },
            None,
        )
        .unwrap();
        let names: Vec<_> = fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
        let file = found(lookup(&d.0.join("f")).unwrap());
        let err = reopen(
            &file,
            Mode {
                read: true,
                flags: OpenFlags {
                    directory: true,
                    ..OpenFlags::default()
                },
                ..Mode::default()
            },
            None,
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
        // A FIFO is never opened (it would block the broker).
        let fifo = d.0.join("fifo");
        mkfifo(&fifo, Perms::from_bits_truncate(0o600)).unwrap();
        let r = found(lookup(&fifo).unwrap());
        assert_eq!(r.kind, Kind::Other);
        let err = reopen(&r, READ, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn missing_files_are_judged_where_they_would_be_created() {
        let d = Dir::new("create");
        fs::create_dir(d.0.join("real")).unwrap();
        symlink(d.0.join("real"), d.0.join("via")).unwrap();
        let Lookup::Missing(m) = lookup(&d.0.join("via/new")).unwrap() else {
            panic!("exists");
        };
        assert_eq!(m.real, d.0.join("real/new"));
        let fd = create(&m, WRITE, 0o4755).unwrap();
        drop(fd);
        let meta = fs::metadata(d.0.join("real/new")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7000, 0, "set-id bit created");
        // A second create of the same name is EEXIST (decide again), never
        // an open of whatever appeared there.
        let err = create(&m, WRITE, 0o600).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        // A dangling symlink planted at the name is not followed.
        symlink(d.0.join("elsewhere"), d.0.join("real/dangling")).unwrap();
        let Lookup::Missing(m) = lookup(&d.0.join("real/dangling")).unwrap() else {
            panic!("dangling link resolved");
        };
        let err = create(&m, WRITE, 0o600).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        assert!(!d.0.join("elsewhere").exists());
    }

    #[test]
    fn a_missing_parent_is_judged_lexically() {
        let d = Dir::new("lexical");
        let Lookup::Missing(m) = lookup(&d.0.join("no/such/../file")).unwrap() else {
            panic!("exists");
        };
        assert!(m.parent.is_none());
        assert_eq!(m.real, d.0.join("no/file"));
    }
}
