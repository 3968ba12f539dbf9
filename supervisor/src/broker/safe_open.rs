//! Opening files for a requester without being fooled by it.
//!
//! The requester controls the path bytes and, through the workspace it may
//! write, the symlinks and renames along the way. So the broker never decides
//! on the name it was given: it resolves the name first (an `O_PATH`
//! descriptor, with `openat2(RESOLVE_NO_MAGICLINKS)` so `/proc/*/fd` and
//! `/proc/*/root` links cannot jump anywhere), asks the kernel which file that
//! descriptor really is (`/proc/self/fd/N`), decides on that path, and only
//! then reopens *the same descriptor* with the access granted. Whatever the
//! requester swaps after the resolution changes nothing: the file that was
//! judged is the file that is opened.
//!
//! Only regular files and directories are served: a FIFO would block the
//! broker on open, and device files are not the broker's business.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use proto::OpenFlags;

use crate::sys;
pub(crate) use crate::sys::fs::{openat2, rename_noreplace};

/// What kind of file a resolved path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    /// A FIFO, socket or device: never served.
    Other,
}

/// A path resolved to a file that exists: an `O_PATH` descriptor and the
/// kernel's name for it.
#[derive(Debug)]
pub struct Resolved {
    pub fd: OwnedFd,
    /// Absolute, canonical: symlinks followed, `..` applied.
    pub real: PathBuf,
    pub kind: Kind,
}

/// A path whose last component does not exist (yet): its parent directory,
/// resolved, and the name to create in it.
#[derive(Debug)]
pub struct Missing {
    pub parent: Option<Resolved>,
    pub name: Vec<u8>,
    /// `parent.real/name` when the parent resolved, else the lexically
    /// normalised absolute path: what a policy decides on.
    pub real: PathBuf,
}

/// The outcome of resolving a requested path.
#[derive(Debug)]
pub enum Lookup {
    Found(Resolved),
    Missing(Missing),
}

impl Lookup {
    /// The path the policy decides on.
    pub fn real(&self) -> &Path {
        match self {
            Lookup::Found(r) => &r.real,
            Lookup::Missing(m) => &m.real,
        }
    }
}

/// Makes a requested path absolute: relative paths are taken against the
/// requester's working directory. Empty paths and paths with NUL bytes are
/// refused (`InvalidInput`).
pub fn absolute(asked: &[u8], cwd: impl FnOnce() -> io::Result<PathBuf>) -> io::Result<PathBuf> {
    if asked.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
    }
    if asked.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains a NUL byte",
        ));
    }
    let path = Path::new(OsStr::from_bytes(asked));
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(cwd()?.join(path))
    }
}

/// `path` with `.` and `..` applied lexically (no file-system access). Used
/// only to decide about paths that do not exist; `..` above `/` stays at `/`.
pub fn normalize(path: &Path) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&lexical(&[path.as_os_str().as_bytes()])))
}

/// `parts` joined and made lexically normal: `.` and empty components
/// dropped, `..` applied (never above `/`). The first part is taken
/// as absolute. One pass, one allocation: transparent brokering runs it
/// for every notified call.
pub fn lexical(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for name in parts.iter().flat_map(|p| p.split(|&b| b == b'/')) {
        match name {
            b"" | b"." => {}
            b".." => {
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            _ => {
                out.push(b'/');
                out.extend_from_slice(name);
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
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

pub(crate) fn kind_of(fd: &OwnedFd) -> io::Result<Kind> {
    Ok(match stat(fd)?.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Directory,
        _ => Kind::Other,
    })
}

/// The file behind `fd`: its device and inode.
pub(crate) fn identity(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    let st = stat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

fn stat(fd: &OwnedFd) -> io::Result<libc::stat> {
    sys::fs::fstat(fd)
}

/// How to open a file that was judged: the access, and the flags of the
/// request ([`OpenFlags`]) and of the program's own call ([`CallFlags`]).
/// The flags' `create` and `mode` are the caller's to act on (a missing file
/// is [`create`]d).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode {
    pub read: bool,
    pub write: bool,
    pub flags: OpenFlags,
    pub call: CallFlags,
}

/// The flags of a program's own `open` or `mkdir` that an SDK request never
/// carries, apart from [`OpenFlags`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallFlags {
    /// `O_CREAT|O_EXCL`: an existing file is `EEXIST`, not opened.
    pub exclusive: bool,
    /// `O_NOFOLLOW`: a symlink as the last component is not followed.
    pub nofollow: bool,
    /// `O_SYNC` and `O_DSYNC` as asked (they cannot be set after the open).
    pub sync: libc::c_int,
    /// A created file gets exactly the permissions asked: the requester's
    /// umask is applied already, and the supervisor's own is undone.
    pub exact_perm: bool,
    /// [`create`] makes a directory (and opens it for reading).
    pub mkdir: bool,
}

impl Mode {
    pub(crate) fn flags(self) -> libc::c_int {
        let access = match (self.read, self.write) {
            (_, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
        };
        let mut flags = access | libc::O_CLOEXEC | libc::O_NOCTTY;
        if self.flags.append {
            flags |= libc::O_APPEND;
        }
        if self.flags.truncate {
            flags |= libc::O_TRUNC;
        }
        if self.flags.directory {
            flags |= libc::O_DIRECTORY;
        }
        flags | (self.call.sync & (libc::O_SYNC | libc::O_DSYNC))
    }
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
    match found.kind {
        Kind::Other => return Err(unsupported()),
        Kind::Directory if mode.write => return Err(io::Error::from_raw_os_error(libc::EISDIR)),
        Kind::File if mode.flags.directory => {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR))
        }
        _ => {}
    }
    if let Some(root) = within {
        let bytes = found.real.as_os_str().as_bytes();
        let fd = open_nonblocking(Some(root), bytes, mode)?;
        if identity(&fd)? != identity(&found.fd)? {
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        return served(fd, mode);
    }
    let proc_path = format!("/proc/self/fd/{}", found.fd.as_raw_fd());
    // The magic link is ours: resolve it with a plain open.
    let c = CString::new(proc_path).expect("no NUL in a formatted number");
    sys::fs::open(&c, mode.flags())
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

/// `fd`, opened without blocking and of a kind the caller checked (a
/// regular file, or a directory), made what is served: the status flags of
/// `mode` and no `O_NONBLOCK`.
fn served(fd: OwnedFd, mode: Mode) -> io::Result<OwnedFd> {
    let status = if mode.flags.append { libc::O_APPEND } else { 0 };
    sys::fs::set_status_flags(&fd, status)?;
    Ok(fd)
}

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "only regular files and directories are served",
    )
}

/// Creates `missing.name` in its (resolved) parent, exclusively and without
/// following a symlink at the name, and opens it with `mode`.
///
/// `EEXIST` means something appeared at the name since the lookup: the
/// caller looks the path up again and decides again.
pub fn create(missing: &Missing, mode: Mode, perm: u32) -> io::Result<OwnedFd> {
    let Some(parent) = &missing.parent else {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    };
    if parent.kind != Kind::Directory {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    if mode.flags.directory {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot create a directory with open",
        ));
    }
    if mode.call.mkdir {
        return make_directory(&parent.fd, &missing.name, mode, perm);
    }
    // The parent is an O_PATH descriptor: openat works relative to it. The
    // name is one component (no '/'), so nothing but the name is walked.
    let flags = mode.flags() | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let name = CString::new(missing.name.clone())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // Never create set-id or sticky files on someone's behalf.
    let perm = perm & 0o777;
    let fd = sys::fs::openat(&parent.fd, &name, flags, perm)?;
    // The kernel applied the supervisor's umask too; a file made for a
    // program (whose umask `perm` has already been through) gets its own.
    if mode.call.exact_perm {
        sys::fs::fchmod(&fd, perm)?;
    }
    Ok(fd)
}

/// `mkdirat` of `name` in `parent`, then the new directory opened for
/// reading (never through a symlink), `fchmod`ed to `perm` when exact.
fn make_directory(parent: &OwnedFd, name: &[u8], mode: Mode, perm: u32) -> io::Result<OwnedFd> {
    // Never set-id directories on someone's behalf; sticky is fine.
    let perm = perm & 0o1777;
    sys::fs::mkdirat(parent, name, perm)?;
    let name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let fd = sys::fs::openat(parent, &name, flags, 0)?;
    if mode.call.exact_perm {
        sys::fs::fchmod(&fd, perm)?;
    }
    Ok(fd)
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
    use super::*;
    use nix::fcntl::{fcntl, FcntlArg};
    use nix::sys::stat::Mode as Perms;
    use nix::unistd::mkfifo;
    use std::fs;
    use std::io::{Read, Write};
    use std::os::unix::fs::{symlink, PermissionsExt};

    const READ: Mode = Mode {
        read: true,
        write: false,
        flags: OpenFlags {
            create: false,
            truncate: false,
            append: false,
            directory: false,
            mode: 0,
        },
        call: CallFlags {
            exclusive: false,
            nofollow: false,
            sync: 0,
            exact_perm: false,
            mkdir: false,
        },
    };
    const WRITE: Mode = Mode {
        read: false,
        write: true,
        ..READ
    };

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
    fn relative_paths_join_the_requesters_cwd() {
        let cwd = || Ok(PathBuf::from("/work/ws"));
        assert_eq!(absolute(b"a/b", cwd).unwrap(), Path::new("/work/ws/a/b"));
        assert_eq!(absolute(b"/etc/x", cwd).unwrap(), Path::new("/etc/x"));
        assert!(absolute(b"", cwd).is_err());
        assert!(absolute(b"/a\0b", cwd).is_err());
    }

    #[test]
    fn lexical_joins_then_applies_dots() {
        for (parts, want) in [
            (&[&b"/ws"[..], b"tree/d1/f1"][..], "/ws/tree/d1/f1"),
            (&[&b"/ws"[..], b"./a//b/"][..], "/ws/a/b"),
            (&[&b"/ws/x"[..], b"../../../etc/passwd"][..], "/etc/passwd"),
            (&[&b"/"[..], b".."][..], "/"),
            (&[&b"/a/b/.."[..]][..], "/a"),
            (&[&b"/"[..]][..], "/"),
        ] {
            let got = lexical(parts);
            assert_eq!(std::str::from_utf8(&got).unwrap(), want, "{parts:?}");
        }
    }

    #[test]
    fn normalize_is_lexical_and_stops_at_root() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(normalize(Path::new("/../../x")), Path::new("/x"));
        assert_eq!(normalize(Path::new("/a/b/..")), Path::new("/a"));
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
