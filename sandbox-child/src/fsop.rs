//! The guard's file operations, made by the connector ([`crate::connector`])
//! inside the program's own sandbox.
//!
//! The supervisor's guard judges every call that writes a file or makes,
//! links or renames a name against `[filesystem] protect`, and never lets
//! the kernel run the call on the program's say-so afterwards (`CONTINUE`):
//! another thread could rewrite the path in between. Nor does it make the
//! call itself: the program's Landlock rules, mount view and dropped
//! capabilities do not bind the supervisor. It resolves the parent
//! directory (in the program's root, `RESOLVE_IN_ROOT`), judges the real
//! path, and sends the connector that directory (an `O_PATH` descriptor)
//! and the final name; the connector makes the call on them, following no
//! symlink at the name, in the program's sandbox, with the program's umask,
//! and answers with the result (and the opened file).
//!
//! One request is one `SOCK_SEQPACKET` record: [`encode`] writes it, the
//! connector's loop hands it to [`serve`]. The answer comes back on the
//! same socket: a 4-byte result (0, or a negative errno) and, for an open,
//! the descriptor. Raw system calls only: this runs in a process forked
//! between fork and exec.

use std::os::raw::c_int;

use crate::sys;

/// The request kind byte that marks a file operation (the connector's
/// other kinds are its `connect` requests).
pub const KIND: u8 = 2;

/// The longest request: the header, two names and a symlink's target.
pub const MAX_REQUEST: usize = HEADER + 3 * 2 + 2 * NAME_MAX + PATH_MAX;

const HEADER: usize = 2 + 4 + 4 + 4 + 8;
const NAME_MAX: usize = 255;
const PATH_MAX: usize = 4096;

/// What the connector is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// `openat(dir, name, flags | O_NOFOLLOW, mode)`; answers the file.
    Open = 0,
    /// `mkdirat(dir, name, mode)`.
    Mkdir = 1,
    /// `mknodat(dir, name, mode, dev)`.
    Mknod = 2,
    /// `symlinkat(target, dir, name)`.
    Symlink = 3,
    /// `linkat(dir, name, dir2, name2, 0)`.
    Link = 4,
    /// `renameat2(dir, name, dir2, name2, flags)`.
    Rename = 5,
    /// `unlinkat(dir, name, 0)`.
    Unlink = 6,
    /// `openat2(dir, target, { flags, mode, resolve: dev })`: the program's
    /// own `openat2` with `resolve` restrictions, made as asked.
    Openat2 = 7,
    /// `fchmodat2(dir, name, mode, flags)`: `AT_SYMLINK_NOFOLLOW` at a
    /// name (a symlink there fails), or `AT_EMPTY_PATH` for the file `dir`
    /// is a descriptor of.
    Chmod = 8,
    /// `setxattrat(dir, name, dev as AT_ flags, target, { value, mode as
    /// size, flags })`: the value is read from the memory file sent as the
    /// second descriptor (none for an empty value).
    Setxattr = 9,
}

impl Op {
    fn from_u8(b: u8) -> Option<Op> {
        Some(match b {
            0 => Op::Open,
            1 => Op::Mkdir,
            2 => Op::Mknod,
            3 => Op::Symlink,
            4 => Op::Link,
            5 => Op::Rename,
            6 => Op::Unlink,
            7 => Op::Openat2,
            8 => Op::Chmod,
            9 => Op::Setxattr,
            _ => return None,
        })
    }
}

/// One request's values (the directories travel as descriptors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub op: Op,
    pub flags: i32,
    pub mode: u32,
    /// The program's umask, set for the call.
    pub umask: u32,
    pub dev: u64,
    pub name: &'a [u8],
    pub name2: &'a [u8],
    pub target: &'a [u8],
}

/// Writes `req` into `out`; returns its length. `None` if a name is longer
/// than `NAME_MAX`, the target than `PATH_MAX`, or a name holds a `/` or NUL.
pub fn encode(req: &Request<'_>, out: &mut Vec<u8>) -> Option<usize> {
    let bad_name = |n: &[u8]| n.len() > NAME_MAX || n.contains(&b'/') || n.contains(&0);
    if bad_name(req.name) || bad_name(req.name2) || req.target.len() >= PATH_MAX {
        return None;
    }
    if req.target.contains(&0) {
        return None;
    }
    out.clear();
    out.extend_from_slice(&[KIND, req.op as u8]);
    out.extend_from_slice(&req.flags.to_ne_bytes());
    out.extend_from_slice(&req.mode.to_ne_bytes());
    out.extend_from_slice(&req.umask.to_ne_bytes());
    out.extend_from_slice(&req.dev.to_ne_bytes());
    for part in [req.name, req.name2, req.target] {
        out.extend_from_slice(&(part.len() as u16).to_ne_bytes());
        out.extend_from_slice(part);
    }
    Some(out.len())
}

/// Reads a request written by [`encode`].
pub fn decode(data: &[u8]) -> Option<Request<'_>> {
    if data.len() < HEADER || data[0] != KIND {
        return None;
    }
    let word = |at: usize| u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    let op = Op::from_u8(data[1])?;
    let mut dev = [0u8; 8];
    dev.copy_from_slice(&data[14..22]);
    let mut at = HEADER;
    let mut parts: [&[u8]; 3] = [&[], &[], &[]];
    for part in &mut parts {
        let len = u16::from_ne_bytes([*data.get(at)?, *data.get(at + 1)?]) as usize;
        at += 2;
        *part = data.get(at..at + len)?;
        at += len;
    }
    Some(Request {
        op,
        flags: word(2) as i32,
        mode: word(6),
        umask: word(10),
        dev: u64::from_ne_bytes(dev),
        name: parts[0],
        name2: parts[1],
        target: parts[2],
    })
}

/// Sends a request ([`encode`]) with its directories (one or two).
pub fn send(socket: c_int, request: &[u8], dirs: &[c_int]) -> Result<(), i32> {
    sys::send_fds(socket, request, dirs)
}

/// Serves one request received on `socket` with descriptors `fds`
/// (`[dir, dir2]`) and answers on `socket`. The caller closes `fds`.
pub(crate) fn serve(socket: c_int, data: &[u8], fds: &[c_int; sys::MAX_FDS]) {
    let result = match decode(data) {
        Some(req) => perform(&req, fds[0], fds[1]),
        None => Err(libc::EINVAL),
    };
    match result {
        Ok(Some(fd)) => {
            if sys::send_fds(socket, &0i32.to_ne_bytes(), &[fd]).is_err() {
                let _ = sys::write_all(socket, &(-libc::EIO).to_ne_bytes());
            }
            // SAFETY: the descriptor opened for this request, now sent.
            unsafe { libc::close(fd) };
        }
        Ok(None) => {
            let _ = sys::write_all(socket, &0i32.to_ne_bytes());
        }
        Err(errno) => {
            let _ = sys::write_all(socket, &(-errno).to_ne_bytes());
        }
    }
}

/// `fchmodat2` (Linux 6.6; sluice needs 6.15): the same number on every
/// architecture, and libc names it only for some.
const SYS_FCHMODAT2: libc::c_long = 452;

/// `setxattrat` (Linux 6.13), the same number on every architecture.
const SYS_SETXATTRAT: libc::c_long = 463;

/// [`Op::Setxattr`]: `dev` bit asking for the descriptor to be reopened
/// for reading first (it is a path descriptor).
pub const REOPEN: u64 = 1 << 32;

/// The largest extended attribute value the kernel takes.
pub const XATTR_SIZE_MAX: usize = 65536;

/// [`Op::Setxattr`]: the value mapped from `memfd` (`req.mode` bytes), set
/// on `name` in `dir` (never through a symlink there) or, with
/// `AT_EMPTY_PATH`, on the file `dir` is a descriptor of.
fn setxattr(
    req: &Request<'_>,
    dir: c_int,
    name: *const libc::c_char,
    memfd: c_int,
    buf: &mut [u8; PATH_MAX + 1],
) -> Result<(), i32> {
    let size = req.mode as usize;
    if size > XATTR_SIZE_MAX {
        return Err(libc::E2BIG);
    }
    let attr = c_name(req.target, buf)?.as_ptr();
    let mut value: *mut libc::c_void = std::ptr::null_mut();
    if size > 0 {
        if memfd < 0 {
            return Err(libc::EBADF);
        }
        // SAFETY: a private read-only mapping of the memory file the
        // supervisor wrote, unmapped below.
        value = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                memfd,
                0,
            )
        };
        if value == libc::MAP_FAILED {
            return Err(sys::errno());
        }
    }
    // struct xattr_args { __aligned_u64 value; __u32 size; __u32 flags; }
    let mut args = [0u64; 2];
    // SAFETY: `args` is 16 bytes, 8-aligned: the structure's layout.
    let bytes = unsafe { &mut *args.as_mut_ptr().cast::<[u8; 16]>() };
    bytes[..8].copy_from_slice(&(value as u64).to_ne_bytes());
    bytes[8..12].copy_from_slice(&(size as u32).to_ne_bytes());
    bytes[12..].copy_from_slice(&(req.flags as u32).to_ne_bytes());
    let at = (req.dev as c_int & libc::AT_EMPTY_PATH) | libc::AT_SYMLINK_NOFOLLOW;
    // The kernel sets an attribute through a descriptor only on an open
    // file: a directory the supervisor has as a path descriptor (`.`, the
    // working directory) is reopened here, in the sandbox.
    let open = if at & libc::AT_EMPTY_PATH != 0 && req.dev & REOPEN != 0 {
        reopen_for_reading(dir)
    } else {
        Ok(-1)
    };
    let result = open.and_then(|open| {
        let on = if open >= 0 { open } else { dir };
        let args = args.as_ptr();
        // SAFETY: the names are NUL-terminated buffers alive for the call;
        // `args` is the 16-byte structure the kernel reads; `on` came with
        // the request or was opened above.
        let rc = unsafe { libc::syscall(SYS_SETXATTRAT, on, name, at, attr, args, 16usize) };
        let result = if rc == 0 { Ok(()) } else { Err(sys::errno()) };
        if open >= 0 {
            // SAFETY: the descriptor opened above.
            unsafe { libc::close(open) };
        }
        result
    });
    if size > 0 {
        // SAFETY: the mapping made above, of `size` bytes.
        unsafe { libc::munmap(value, size) };
    }
    result
}

/// A NUL-terminated copy of `name` in `buf`.
fn c_name<'b>(name: &[u8], buf: &'b mut [u8; PATH_MAX + 1]) -> Result<&'b [u8], i32> {
    if name.len() > PATH_MAX || name.contains(&0) {
        return Err(libc::ENAMETOOLONG);
    }
    buf[..name.len()].copy_from_slice(name);
    buf[name.len()] = 0;
    Ok(&buf[..=name.len()])
}

fn perform(req: &Request<'_>, dir: c_int, dir2: c_int) -> Result<Option<c_int>, i32> {
    if dir < 0 {
        return Err(libc::EBADF);
    }
    let mut a = [0u8; PATH_MAX + 1];
    let mut b = [0u8; PATH_MAX + 1];
    let name = c_name(req.name, &mut a)?.as_ptr().cast::<libc::c_char>();
    let two = |buf: &mut [u8; PATH_MAX + 1]| -> Result<*const libc::c_char, i32> {
        if dir2 < 0 {
            return Err(libc::EBADF);
        }
        Ok(c_name(req.name2, buf)?.as_ptr().cast())
    };
    // SAFETY: umask only sets this process's mask.
    unsafe { libc::umask(req.umask as libc::mode_t) };
    // SAFETY: for every call below, the names are NUL-terminated buffers
    // alive for the call; the descriptors were received with the request.
    let rc = unsafe {
        match req.op {
            Op::Open => {
                let asked_nonblock = req.flags & libc::O_NONBLOCK != 0;
                // A FIFO must not hold the connector until a reader comes.
                let flags = req.flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
                let fd = libc::openat(dir, name, flags, req.mode as libc::c_uint);
                if fd >= 0 && req.flags & libc::O_PATH != 0 {
                    // As for openat2 below: no O_PATH descriptor through ADDFD.
                    let reopened = reopen_for_reading(fd);
                    libc::close(fd);
                    return reopened.map(Some);
                }
                if fd >= 0 && !asked_nonblock {
                    let now = libc::fcntl(fd, libc::F_GETFL);
                    libc::fcntl(fd, libc::F_SETFL, now & !libc::O_NONBLOCK);
                }
                if fd >= 0 {
                    return Ok(Some(fd));
                }
                -1
            }
            Op::Mkdir => libc::mkdirat(dir, name, req.mode as libc::mode_t),
            Op::Mknod => libc::mknodat(dir, name, req.mode as libc::mode_t, req.dev),
            Op::Symlink => {
                let target = c_name(req.target, &mut b)?.as_ptr().cast();
                libc::symlinkat(target, dir, name)
            }
            Op::Link => libc::linkat(dir, name, dir2, two(&mut b)?, 0),
            Op::Rename => libc::syscall(
                libc::SYS_renameat2,
                dir,
                name,
                dir2,
                two(&mut b)?,
                req.flags as libc::c_uint,
            ) as c_int,
            Op::Unlink => libc::unlinkat(dir, name, 0),
            Op::Chmod => {
                // Never through a symlink: the guard judged this name.
                let flags = req.flags & libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
                libc::syscall(SYS_FCHMODAT2, dir, name, req.mode, flags) as c_int
            }
            Op::Setxattr => return setxattr(req, dir, name, dir2, &mut b).map(|()| None),
            Op::Openat2 => {
                let path = c_name(req.target, &mut b)?;
                let asked_nonblock = req.flags & libc::O_NONBLOCK != 0;
                let mut how: libc::open_how = std::mem::zeroed();
                // openat2 refuses any flag but a few beside O_PATH.
                let nonblock = if req.flags & libc::O_PATH != 0 {
                    0
                } else {
                    libc::O_NONBLOCK
                };
                how.flags = (req.flags | libc::O_CLOEXEC | nonblock) as u32 as u64;
                how.mode = u64::from(req.mode);
                how.resolve = req.dev;
                let fd = libc::syscall(
                    libc::SYS_openat2,
                    dir,
                    path.as_ptr(),
                    &how as *const libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                ) as c_int;
                if fd >= 0 && req.flags & libc::O_PATH != 0 {
                    // The supervisor cannot place an O_PATH descriptor in
                    // the program (ADDFD takes only open files): give the
                    // same file opened for reading, here in the sandbox.
                    let reopened = reopen_for_reading(fd);
                    libc::close(fd);
                    return reopened.map(Some);
                }
                if fd >= 0 {
                    if !asked_nonblock && nonblock != 0 {
                        let now = libc::fcntl(fd, libc::F_GETFL);
                        libc::fcntl(fd, libc::F_SETFL, now & !libc::O_NONBLOCK);
                    }
                    return Ok(Some(fd));
                }
                -1
            }
        }
    };
    if rc == 0 {
        Ok(None)
    } else {
        Err(sys::errno())
    }
}

/// The file an `O_PATH` descriptor names, opened for reading (close-on-exec;
/// a directory through `.`, anything else through `/proc/self/fd`), in the
/// connector's sandbox: what the program could open itself. A file it may
/// resolve but not read gives that error instead of a path descriptor.
fn reopen_for_reading(fd: c_int) -> Result<c_int, i32> {
    // SAFETY: an all-zero stat is valid; fstat overwrites it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills `st`; `fd` is ours.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(sys::errno());
    }
    let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
    let new = if dir {
        // SAFETY: "." is NUL-terminated; `fd` is ours.
        unsafe { libc::openat(fd, c".".as_ptr(), flags | libc::O_DIRECTORY) }
    } else {
        // "/proc/self/fd/" and the number, NUL-terminated, on the stack.
        let mut path = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        path[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 12];
        let mut n = fd as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            path[prefix.len() + i] = digits[len - 1 - i];
        }
        // SAFETY: `path` is NUL-terminated (zeroed past the digits).
        unsafe { libc::open(path.as_ptr().cast(), flags) }
    };
    if new < 0 {
        return Err(sys::errno());
    }
    // SAFETY: fcntl on the descriptor just opened.
    unsafe {
        let now = libc::fcntl(new, libc::F_GETFL);
        libc::fcntl(new, libc::F_SETFL, now & !libc::O_NONBLOCK);
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_refuse_bad_names() {
        let req = Request {
            op: Op::Rename,
            flags: 1,
            mode: 0o644,
            umask: 0o022,
            dev: 7,
            name: b"a",
            name2: b"b.lock",
            target: b"/x/y",
        };
        let mut out = Vec::new();
        let n = encode(&req, &mut out).unwrap();
        assert!(n <= MAX_REQUEST);
        assert_eq!(decode(&out[..n]), Some(req.clone()));
        assert_eq!(decode(&out[..n - 1]), None);
        let slash = Request {
            name: b"a/b",
            ..req.clone()
        };
        assert_eq!(encode(&slash, &mut out), None);
        let long = [b'x'; 256];
        let long = Request {
            name2: &long,
            ..req
        };
        assert_eq!(encode(&long, &mut out), None);
    }
}
