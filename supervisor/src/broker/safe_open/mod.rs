//! Opening files for a requester without being fooled by it.
//!
//! The requester controls the path bytes and, through the workspace it may
//! write, the symlinks and renames along the way. So the broker never decides
//! on the name it was given: it resolves the name first, decides on the
//! real path the file has, and then opens *that same file* with the access
//! granted. Whatever the requester swaps after the resolution changes
//! nothing: the file that was judged is the file that is opened.
//!
//! Only regular files and directories are served: a FIFO would block the
//! broker on open, and device files are not the broker's business.
//!
//! One interface, two ways to keep it (`lookup`, `lookup_with`, `reopen`,
//! `open_plain`, `create`, and [`Resolved`], the same on both):
//! - Linux ([`linux`]): an `O_PATH` descriptor from
//!   `openat2(RESOLVE_NO_MAGICLINKS)`, its real path from
//!   `/proc/self/fd/N`, reopened through that link; a read-only copy of the
//!   mount tree for what is granted for reading.
//! - where there is no `openat2` (macOS, [`walked`]): the real path from
//!   `realpath(3)`, then walked again from `/` one real directory at a time
//!   with `O_NOFOLLOW` (`platform::walk`), the file's identity (device,
//!   inode) taken in its directory; opened in that same directory,
//!   following nothing, and refused (`ESTALE`) unless it is still the file
//!   judged. `walked` is compiled and its tests run on Linux too.
//!
//! What both share is here: the types of a lookup, the open mode, the
//! lexical path functions, and the create in a resolved directory.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use proto::OpenFlags;

use crate::sys;

#[cfg(target_os = "linux")]
mod linux;
#[cfg_attr(target_os = "linux", allow(dead_code))] // tested here, used on macOS
pub(crate) mod walked;

#[cfg(target_os = "linux")]
pub(crate) use linux::{
    lookup, lookup_with, make_dirs_beneath, open_plain, openat2, real_path, rename_noreplace,
    reopen, Resolved,
};
#[cfg(not(target_os = "linux"))]
pub(crate) use walked::{lookup, lookup_with, open_plain, reopen, Resolved};

/// What kind of file a resolved path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    /// A FIFO, socket or device: never served.
    Other,
}

/// What a resolved file gives the shared code, on either platform.
pub trait Found {
    /// Its real path: what the policy decides on.
    fn real(&self) -> &Path;
    fn kind(&self) -> Kind;
    /// `f` with a descriptor of this file itself, a directory to create in
    /// (on Linux the `O_PATH` one held; elsewhere opened for the call, and
    /// checked to be the file resolved).
    fn in_dir<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>) -> io::Result<T>;
}

/// A path whose last component does not exist (yet): its parent directory,
/// resolved, and the name to create in it.
#[derive(Debug)]
pub struct Missing<R = Resolved> {
    pub parent: Option<R>,
    pub name: Vec<u8>,
    /// `parent.real/name` when the parent resolved, else the lexically
    /// normalised absolute path: what a policy decides on.
    pub real: PathBuf,
}

/// The outcome of resolving a requested path.
#[derive(Debug)]
pub enum Lookup<R = Resolved> {
    Found(R),
    Missing(Missing<R>),
}

impl<R: Found> Lookup<R> {
    /// The path the policy decides on.
    pub fn real(&self) -> &Path {
        match self {
            Lookup::Found(r) => r.real(),
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

pub(crate) fn kind_of(fd: &OwnedFd) -> io::Result<Kind> {
    Ok(kind_in(&stat(fd)?))
}

/// The kind `st` says (a symlink, not followed, is [`Kind::Other`]).
fn kind_in(st: &libc::stat) -> Kind {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Directory,
        _ => Kind::Other,
    }
}

/// The file behind `fd`: its device and inode.
pub(crate) fn identity(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    Ok(identity_of(&stat(fd)?))
}

/// The device and inode in `st`.
#[allow(clippy::unnecessary_cast)] // dev_t is an i32 on macOS
fn identity_of(st: &libc::stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

/// Whether a file of `kind` may be opened with `mode`: never a FIFO,
/// socket or device; a directory only for reading, a file never as a
/// directory.
fn check_kind(kind: Kind, mode: Mode) -> io::Result<()> {
    match kind {
        Kind::Other => Err(unsupported()),
        Kind::Directory if mode.write => Err(io::Error::from_raw_os_error(libc::EISDIR)),
        Kind::File if mode.flags.directory => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        _ => Ok(()),
    }
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
pub fn create<R: Found>(missing: &Missing<R>, mode: Mode, perm: u32) -> io::Result<OwnedFd> {
    let Some(parent) = &missing.parent else {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    };
    if parent.kind() != Kind::Directory {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    if mode.flags.directory {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot create a directory with open",
        ));
    }
    if mode.call.mkdir {
        return parent.in_dir(|dir| make_directory(dir, &missing.name, mode, perm));
    }
    // openat relative to the parent's descriptor. The name is one
    // component (no '/'), so nothing but the name is walked.
    let flags = mode.flags() | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let name = CString::new(missing.name.clone())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // Never create set-id or sticky files on someone's behalf.
    let perm = perm & 0o777;
    let fd = parent.in_dir(|dir| sys::fs::openat(dir, &name, flags, perm))?;
    // The kernel applied the supervisor's umask too; a file made for a
    // program (whose umask `perm` has already been through) gets its own.
    if mode.call.exact_perm {
        sys::fs::fchmod(&fd, perm)?;
    }
    Ok(fd)
}

/// `mkdirat` of `name` in `parent`, then the new directory opened for
/// reading (never through a symlink), `fchmod`ed to `perm` when exact.
fn make_directory(
    parent: BorrowedFd<'_>,
    name: &[u8],
    mode: Mode,
    perm: u32,
) -> io::Result<OwnedFd> {
    // Never set-id directories on someone's behalf; sticky is fine.
    let perm = perm & 0o1777;
    // Fits `mode_t` on both (a u16 on macOS).
    let bits =
        libc::mode_t::try_from(perm).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    sys::fs::mkdirat(parent, name, bits)?;
    let name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let fd = sys::fs::openat(parent, &name, flags, 0)?;
    if mode.call.exact_perm {
        sys::fs::fchmod(&fd, perm)?;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The modes the tests of both ways open with.
    pub(super) const READ: Mode = Mode {
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
    pub(super) const WRITE: Mode = Mode {
        read: false,
        write: true,
        ..READ
    };

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
}
