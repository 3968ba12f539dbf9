//! Changes that can make a file runnable without writing it: a mode with an
//! execute bit (`chmod` in all its forms) and an extended attribute (an
//! access ACL grants execute). Judged like a write of the file, made by the
//! connector on the judged name or on the supervisor's own copy of the
//! program's descriptor.

use super::*;

/// An extended attribute set (an access ACL can make a file executable):
/// the file is judged as for `chmod` (any attribute of a protected file is
/// refused), and the connector sets it on the judged name, or on the file
/// the descriptor names, with the value the supervisor read once and hands
/// over in a memory file.
pub(super) fn setxattr(
    env: &Env<'_>,
    target: &Target<'_>,
    root: BorrowedFd<'_>,
    (dirfd, path, at_flags): (Option<i32>, Option<u64>, i32),
    name: u64,
    args: XattrArgs,
) -> Result<Answer, Stop> {
    if at_flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Stop::Errno(libc::EINVAL));
    }
    let (value, size, flags) = match args {
        XattrArgs::Registers { value, size, flags } => (value, size, flags),
        XattrArgs::Memory { addr, size } => {
            if size != 16 {
                return Err(Stop::Errno(libc::EINVAL));
            }
            let raw = target.read_struct(addr, 16)?;
            let word = |at: usize| u32::from_ne_bytes(raw[at..at + 4].try_into().unwrap());
            let value = u64::from_ne_bytes(raw[..8].try_into().unwrap());
            (value, u64::from(word(8)), word(12))
        }
    };
    if size > fsop::XATTR_SIZE_MAX as u64 {
        return Err(Stop::Errno(libc::E2BIG));
    }
    let attr = target.read_path(name)?;
    if attr.is_empty() || attr.len() > 255 {
        return Err(Stop::Errno(libc::ERANGE));
    }
    let value = if size > 0 {
        target.read_struct(value, size as usize)?
    } else {
        Vec::new()
    };
    let memfd = value_file(&value)?;
    let on_descriptor = match path {
        None => true,
        Some(path) => at_flags & libc::AT_EMPTY_PATH != 0 && target.read_path(path)?.is_empty(),
    };
    let (file, name, reopen): (OwnedFd, Vec<u8>, bool) = if on_descriptor {
        let (file, reopen) = descriptor_file(target, dirfd.unwrap_or(libc::AT_FDCWD))?;
        let real = safe_open::real_path(&file);
        if let Ok(real) = &real {
            check_path(env, real.clone(), Act::Xattr)?;
        }
        let named =
            || real.unwrap_or_else(|_| PathBuf::from(format!("fd {}", dirfd.unwrap_or(-1))));
        check_naming(&attr, judge::Naming::Attribute, named)?;
        (file, Vec::new(), reopen)
    } else {
        let named = read_named(target, dirfd, path.unwrap_or(0))?;
        target.valid()?;
        let place = match env.guard.place(root, named.base.as_deref(), &named.asked)? {
            Some(place) if at_flags & libc::AT_SYMLINK_NOFOLLOW != 0 => place,
            Some(place) => follow(env, root, place)?,
            None => Place {
                parent: the_directory(env, root, &named, Act::Xattr)?,
                real: PathBuf::new(),
                name: Vec::new(),
            },
        };
        if !place.name.is_empty() {
            check(env, &place, Act::Xattr)?;
        }
        check_naming(&attr, judge::Naming::Attribute, || place.path())?;
        let reopen = place.name.is_empty();
        (place.parent, place.name, reopen)
    };
    let req = fsop::Request {
        mode: size as u32,
        flags: flags as i32,
        dev: match (name.is_empty(), reopen) {
            (false, _) => 0,
            (true, false) => libc::AT_EMPTY_PATH as u64,
            (true, true) => libc::AT_EMPTY_PATH as u64 | fsop::REOPEN,
        },
        target: &attr,
        ..request(Op::Setxattr, &name, 0)
    };
    done(perform(
        env,
        &req,
        file.as_fd(),
        memfd.as_ref().map(|m| m.as_fd()),
    )?)
}

/// A memory file holding `value` for the connector (`None` if empty).
fn value_file(value: &[u8]) -> Result<Option<OwnedFd>, Stop> {
    if value.is_empty() {
        return Ok(None);
    }
    Ok(Some(crate::sys::fs::memory_file(c"sluice-xattr", value)?))
}

/// A mode that makes a file executable, set by name: the file (through
/// symlinks at the name, unless `AT_SYMLINK_NOFOLLOW`) is judged as if it
/// were written, and the connector sets the mode on the judged name without
/// following a symlink there.
pub(super) fn chmod(
    env: &Env<'_>,
    target: &Target<'_>,
    root: BorrowedFd<'_>,
    (dirfd, path): (Option<i32>, u64),
    mode: u32,
    flags: i32,
) -> Result<Answer, Stop> {
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Stop::Errno(libc::EINVAL));
    }
    if flags & libc::AT_EMPTY_PATH != 0 && target.read_path(path)?.is_empty() {
        return fchmod(env, target, dirfd.unwrap_or(libc::AT_FDCWD), mode);
    }
    let named = read_named(target, dirfd, path)?;
    target.valid()?;
    let place = match env.guard.place(root, named.base.as_deref(), &named.asked)? {
        Some(place) if flags & libc::AT_SYMLINK_NOFOLLOW != 0 => place,
        Some(place) => follow(env, root, place)?,
        None => {
            let dir = the_directory(env, root, &named, Act::Chmod)?;
            let req = fsop::Request {
                mode,
                flags: libc::AT_EMPTY_PATH,
                ..request(Op::Chmod, b"", 0)
            };
            return done(perform(env, &req, dir.as_fd(), None)?);
        }
    };
    check(env, &place, Act::Chmod)?;
    let req = fsop::Request {
        mode,
        ..request(Op::Chmod, &place.name, 0)
    };
    done(perform(env, &req, place.parent.as_fd(), None)?)
}

/// A path ending in `.` or `..`: the directory itself, resolved in the
/// program's root and judged for `act`.
fn the_directory(
    env: &Env<'_>,
    root: BorrowedFd<'_>,
    named: &Named,
    act: Act,
) -> Result<OwnedFd, Stop> {
    let dir = match &named.base {
        Some(base) => [base.as_slice(), b"/", &named.asked].concat(),
        None => named.asked.clone(),
    };
    let dir = safe_open::openat2(
        root.as_raw_fd(),
        &dir,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )?;
    check_path(env, safe_open::real_path(&dir)?, act)?;
    Ok(dir)
}

/// A mode that makes a file executable, set on a descriptor (`fchmod`, or
/// `fchmodat2` with `AT_EMPTY_PATH`): the file the descriptor names now is
/// judged, and the connector sets the mode on that same file (never the
/// program's descriptor number, which another thread could point elsewhere
/// meanwhile). A file with no name left (removed, unnamed) is not judged:
/// it can only get one through a call judged in its turn.
pub(super) fn fchmod(
    env: &Env<'_>,
    target: &Target<'_>,
    fd: i32,
    mode: u32,
) -> Result<Answer, Stop> {
    let (file, _) = descriptor_file(target, fd)?;
    // A failure (-1) has every bit, O_PATH's too: refused as before.
    let status = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL).unwrap_or(-1);
    if fd >= 0 && status & libc::O_PATH != 0 {
        // The kernel refuses a mode change through an `O_PATH` descriptor.
        return Err(Stop::Errno(libc::EBADF));
    }
    if let Ok(real) = safe_open::real_path(&file) {
        check_path(env, real, Act::Chmod)?;
    }
    let req = fsop::Request {
        mode,
        flags: libc::AT_EMPTY_PATH,
        ..request(Op::Chmod, b"", 0)
    };
    done(perform(env, &req, file.as_fd(), None)?)
}

/// The file the program's descriptor `fd` names now: the supervisor's own
/// copy of that open file (`pidfd_getfd`), taken once; for `AT_FDCWD`, its
/// working directory as a path descriptor (`true`: to be reopened in the
/// sandbox for a call that needs an open file).
fn descriptor_file(target: &Target<'_>, fd: i32) -> Result<(OwnedFd, bool), Stop> {
    let taken = match fd {
        libc::AT_FDCWD => safe_open::openat2(
            libc::AT_FDCWD,
            format!("/proc/{}/cwd", target.tid).as_bytes(),
            libc::O_PATH | libc::O_CLOEXEC,
            0,
            0,
        )
        .map(|cwd| (cwd, true)),
        fd if fd >= 0 => crate::broker::transparent::caller::take_descriptor(target.tid, fd)
            .map(|file| (file, false)),
        _ => return Err(Stop::Errno(libc::EBADF)),
    };
    let taken = taken.map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => Stop::Errno(libc::EBADF),
        _ => Stop::from(e),
    })?;
    target.valid()?;
    Ok(taken)
}
