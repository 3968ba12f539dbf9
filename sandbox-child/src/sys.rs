//! Raw system calls used between fork and exec.
//!
//! Everything here is async-signal-safe: no allocation, no locks, no std I/O.
//! Each wrapper returns `Err(errno)` so the child sequence can report exactly
//! which step failed and why.

use std::os::raw::{c_char, c_int, c_ulong, c_void};

/// The calling thread's errno.
pub fn errno() -> i32 {
    // SAFETY: __errno_location always returns a valid thread-local pointer.
    unsafe { *libc::__errno_location() }
}

/// Maps a libc return value (-1 on error) to `Result`.
pub fn check(ret: libc::c_long) -> Result<libc::c_long, i32> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

pub fn prctl(option: c_int, arg2: c_ulong) -> Result<(), i32> {
    // SAFETY: prctl with integer arguments only; no pointers are passed.
    check(unsafe { libc::prctl(option, arg2, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) } as _)
        .map(drop)
}

pub fn write_all(fd: c_int, mut buf: &[u8]) -> Result<(), i32> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast::<c_void>(), buf.len()) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Opens `path` (a NUL-terminated C string prepared before fork) and writes
/// `data` to it: how `/proc/self/uid_map` and friends are filled in.
pub fn write_file(path: &[u8], data: &[u8]) -> Result<(), i32> {
    debug_assert_eq!(path.last(), Some(&0));
    // SAFETY: path is NUL-terminated (prepared before fork).
    let fd = unsafe {
        libc::open(
            path.as_ptr().cast::<c_char>(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    let res = write_all(fd, data);
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    res
}

/// Closes every descriptor from 3 upward except those in `keep`, which must be
/// sorted ascending.
pub fn close_all_except(keep: &[c_int]) -> Result<(), i32> {
    let mut lo: u32 = 3;
    for &fd in keep {
        let fd = fd as u32;
        if fd < lo {
            continue;
        }
        if fd > lo {
            close_range(lo, fd - 1)?;
        }
        lo = fd + 1;
    }
    close_range(lo, u32::MAX)
}

fn close_range(lo: u32, hi: u32) -> Result<(), i32> {
    // SAFETY: close_range takes integers only.
    check(unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) }).map(drop)
}

/// A new session whose controlling terminal is `slave`, which becomes
/// standard input and output (and error with `stderr`); `slave` itself is
/// then closed. Whatever stood at 0, 1 (and 2) before, the person's
/// terminal, is gone from this process.
pub fn take_terminal(slave: c_int, stderr: bool) -> Result<(), i32> {
    // SAFETY: setsid takes no arguments; we are not a group leader (forked).
    check(unsafe { libc::setsid() } as _)?;
    // SAFETY: TIOCSCTTY takes an integer (0: do not steal from another session).
    check(unsafe { libc::ioctl(slave, libc::TIOCSCTTY, 0) } as _)?;
    let targets: &[c_int] = if stderr { &[0, 1, 2] } else { &[0, 1] };
    for &fd in targets {
        // SAFETY: dup2 on a descriptor we own onto a standard number.
        check(unsafe { libc::dup2(slave, fd) } as _)?;
    }
    if slave > 2 {
        // SAFETY: closing our own copy; 0..=2 now hold the terminal.
        check(unsafe { libc::close(slave) } as _)?;
    }
    Ok(())
}

/// `mount(2)` with C strings prepared before fork (null pointers allowed).
pub fn mount(
    src: *const c_char,
    target: *const c_char,
    fstype: *const c_char,
    flags: c_ulong,
) -> Result<(), i32> {
    // SAFETY: the caller passes NUL-terminated strings or null, prepared before fork.
    check(unsafe { libc::mount(src, target, fstype, flags, std::ptr::null()) } as _).map(drop)
}

/// The kernel's `struct mount_attr`.
#[repr(C)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

const AT_RECURSIVE: u32 = 0x8000;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// Sets attributes on the mount at `path` without touching the others, so
/// flags the kernel locked when the mount namespace was copied (nosuid,
/// nodev, ...) are kept, which a classic `MS_REMOUNT` would have to repeat.
/// `recursive`: submounts too (a read-only tree stays read-only all the way
/// down).
pub fn mount_setattr(path: *const c_char, attr: &MountAttr, recursive: bool) -> Result<(), i32> {
    let flags = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: path is NUL-terminated; attr is a valid struct of the given size.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path,
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

const OPEN_TREE_CLONE: u32 = 1;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;

/// `open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)`: a detached copy of the mount
/// tree at `path` (close-on-exec), to be attached elsewhere by [`move_mount`]
/// even once `path` no longer resolves.
pub fn open_tree_clone(path: *const c_char) -> Result<c_int, i32> {
    let flags = OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as u32;
    // SAFETY: path is NUL-terminated, prepared before fork.
    check(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path, flags) })
        .map(|fd| fd as c_int)
}

/// `move_mount` of the detached tree `fd` onto `target`.
pub fn move_mount(fd: c_int, target: *const c_char) -> Result<(), i32> {
    // SAFETY: "" and target are NUL-terminated; fd is a mount tree we opened.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target,
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// Linux capability header and data for `capset(2)`, version 3 (64-bit sets).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Clears the effective, permitted and inheritable sets of the calling thread.
pub fn capset_clear() -> Result<(), i32> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and data are valid for capset v3 (two data elements).
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) })
        .map(drop)
}

/// The calling thread's effective capabilities cleared until this is
/// dropped, its permitted set kept (they are raised again then): what the
/// thread does meanwhile the kernel checks as for a process of the same
/// user with no capability, as the sandbox's. For the supervisor's work on
/// the program's behalf that the kernel would check against the
/// program's own credentials (a transparent watch).
pub struct EffectiveCleared {
    saved: [CapData; 2],
}

/// See [`EffectiveCleared`].
pub fn clear_effective() -> Result<EffectiveCleared, i32> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and data are valid for capget v3 (two data elements).
    check(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    })?;
    let saved = data;
    for d in &mut data {
        d.effective = 0;
    }
    // SAFETY: as above, for capset.
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) })?;
    Ok(EffectiveCleared { saved })
}

impl Drop for EffectiveCleared {
    fn drop(&mut self) {
        let header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        // SAFETY: as in `clear_effective`; raising what is still permitted.
        unsafe {
            libc::syscall(
                libc::SYS_capset,
                &header as *const CapHeader,
                self.saved.as_ptr(),
            )
        };
    }
}

pub fn landlock_restrict_self(ruleset_fd: c_int) -> Result<(), i32> {
    // SAFETY: integers only.
    check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset_fd, 0u32) }).map(drop)
}

pub fn setrlimit(resource: c_int, value: u64) -> Result<(), i32> {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: lim is a valid rlimit.
    check(unsafe { libc::setrlimit(resource as _, &lim) } as _).map(drop)
}

/// Resets every catchable signal to its default disposition and unblocks all
/// signals: ignored signals and the signal mask survive exec, and the
/// supervisor blocks some and Rust ignores SIGPIPE.
pub fn reset_signals() -> Result<(), i32> {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is always a valid disposition. Failures for
        // signals glibc reserves internally are expected and harmless.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    unblock_all()
}

/// Blocks no signal.
pub fn unblock_all() -> Result<(), i32> {
    // SAFETY: an empty set built on the stack.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        check(libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) as _).map(drop)
    }
}

/// Room for a control message of up to [`MAX_FDS`] descriptors, aligned for
/// `cmsghdr` (CMSG_SPACE(12) is 32 bytes on 64-bit Linux).
type Control = [u64; 6];

/// The most descriptors [`send_fds`] and [`recv_fds`] carry at once.
pub const MAX_FDS: usize = 3;

/// A message of one buffer, `iov`, with room for control data in `control`
/// (its length is the caller's to set).
fn message(iov: &mut libc::iovec, control: &mut Control) -> libc::msghdr {
    // SAFETY: an all-zero msghdr is a valid "no name, no iov, no control".
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg
}

/// Sends `data` with `fds` attached (`SCM_RIGHTS`, at most [`MAX_FDS`]) as
/// one message on a `SOCK_SEQPACKET` socket. Async-signal-safe.
pub fn send_fds(socket: c_int, data: &[u8], fds: &[c_int]) -> Result<(), i32> {
    if fds.is_empty() || fds.len() > MAX_FDS {
        return Err(libc::EINVAL);
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    let mut control: Control = [0; 6];
    let mut msg = message(&mut iov, &mut control);
    let size = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_* are arithmetic on msg, whose control buffer holds
    // CMSG_SPACE(size) bytes for up to MAX_FDS descriptors.
    unsafe {
        msg.msg_controllen = libc::CMSG_SPACE(size) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size) as _;
        let at = libc::CMSG_DATA(cmsg).cast::<c_int>();
        for (i, &fd) in fds.iter().enumerate() {
            std::ptr::write_unaligned(at.add(i), fd);
        }
    }
    loop {
        // SAFETY: msg points at iov and control, alive for the call.
        let n = unsafe { libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Receives one message into `data` and up to [`MAX_FDS`] descriptors into
/// `fds` (close-on-exec; unused slots stay -1); returns the data's length, 0
/// at end of file. A message with more descriptors than fit loses them (the
/// kernel closes them). Async-signal-safe.
pub fn recv_fds(socket: c_int, data: &mut [u8], fds: &mut [c_int; MAX_FDS]) -> Result<usize, i32> {
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut control: Control = [0; 6];
    let mut msg = message(&mut iov, &mut control);
    msg.msg_controllen = std::mem::size_of::<Control>() as _;
    let n = loop {
        // SAFETY: msg points at iov and control, alive for the call.
        let n = unsafe { libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    };
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        let mut next = 0;
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let at = libc::CMSG_DATA(cmsg).cast::<c_int>();
                for i in 0..bytes / std::mem::size_of::<c_int>() {
                    let fd = std::ptr::read_unaligned(at.add(i));
                    if next < MAX_FDS {
                        fds[next] = fd;
                        next += 1;
                    } else {
                        libc::close(fd);
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(n)
}

/// This process's pid in the PID namespace of the procfs `proc` (a
/// descriptor of its root): the target of its `self` link.
pub fn pid_in(proc: c_int) -> Option<i32> {
    let mut buf = [0u8; 16];
    // SAFETY: buf is valid for its length; "self" is NUL-terminated.
    let n = unsafe { libc::readlinkat(proc, c"self".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 || n as usize >= buf.len() {
        return None;
    }
    let mut pid: i32 = 0;
    for &b in &buf[..n as usize] {
        if !b.is_ascii_digit() {
            return None;
        }
        pid = pid.checked_mul(10)?.checked_add((b - b'0') as i32)?;
    }
    Some(pid)
}

/// `n` in decimal, at the end of `buf`: the digits.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The unsigned decimal number at the start of the file `path` (a sysctl),
/// NUL-terminated; `EINVAL` if it holds none.
pub fn read_decimal(path: &[u8]) -> Result<u64, i32> {
    debug_assert_eq!(path.last(), Some(&0));
    // SAFETY: path is NUL-terminated (prepared before fork).
    let fd = unsafe {
        libc::open(
            path.as_ptr().cast::<c_char>(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    let fd = check(fd as _)? as c_int;
    let mut buf = [0u8; 24];
    // SAFETY: buf is valid for its length; fd was opened above.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    let n = check(n as _)? as usize;
    let digits = buf[..n].iter().take_while(|b| b.is_ascii_digit());
    let mut value: Option<u64> = None;
    for &b in digits {
        let so_far = value.unwrap_or(0);
        value = so_far
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')));
        if value.is_none() {
            return Err(libc::ERANGE);
        }
    }
    value.ok_or(libc::EINVAL)
}

/// Whether the pipe whose write end is `fd` still has a reader.
pub fn has_reader(fd: c_int) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n >= 0 && pfd.revents & libc::POLLERR == 0
}

/// The kernel's `struct landlock_path_beneath_attr` (packed).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

const LANDLOCK_RULE_PATH_BENEATH: c_int = 1;

/// Adds to the Landlock ruleset `ruleset` a rule granting `access` beneath
/// `path` (a NUL-terminated C string prepared before fork), as it is now.
pub fn landlock_add_path_rule(
    ruleset: c_int,
    path: &std::ffi::CStr,
    access: u64,
) -> Result<(), i32> {
    // SAFETY: path is NUL-terminated.
    let fd = check(unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) } as _)?;
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: fd as i32,
    };
    // SAFETY: attr is a valid landlock_path_beneath_attr for the call.
    let res = check(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    });
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd as c_int) };
    res.map(drop)
}

/// Exits the child at once, without running destructors or atexit handlers.
pub fn exit(code: c_int) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_and_read_in_decimal() {
        for n in [0, 7, 10, 128, 192_540, u64::MAX] {
            let mut buf = [0; 20];
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
        let dir = std::env::temp_dir().join(format!("sluice-decimal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("n");
        let path = |p: &std::path::Path| format!("{}\0", p.display()).into_bytes();
        for (text, read) in [
            ("128\n", Ok(128)),
            ("192540", Ok(192_540)),
            ("\n", Err(libc::EINVAL)),
            ("99999999999999999999\n", Err(libc::ERANGE)),
        ] {
            std::fs::write(&file, text).unwrap();
            assert_eq!(read_decimal(&path(&file)), read, "{text:?}");
        }
        let missing = dir.join("missing");
        assert_eq!(read_decimal(&path(&missing)), Err(libc::ENOENT));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
