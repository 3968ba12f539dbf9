//! Kernel surfaces: io_uring, file handles, TIOCSTI, namespaces, mounts.

use std::ffi::{c_char, c_int, c_long};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::{blocked, cstring, describe, last_error, preview, usage, Fail, Step};

pub(crate) fn io_uring() -> Step {
    // struct io_uring_params is 120 bytes; zeroed means default setup.
    let mut params = [0u8; 120];
    // SAFETY: params is a writable buffer of the size the kernel expects.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4 as c_long, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(last_error("io_uring_setup"));
    }
    // SAFETY: fd was just returned by io_uring_setup.
    drop(unsafe { OwnedFd::from_raw_fd(fd as c_int) });
    Ok("io_uring_setup returned a ring".to_owned())
}

#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: c_int,
    f_handle: [u8; 128],
}

/// name_to_handle_at, formatted as `TYPE:HEX`.
pub(crate) fn handle(path: &str) -> Result<String, Fail> {
    let c_path = cstring(path)?;
    let mut fh = FileHandle {
        handle_bytes: 128,
        handle_type: 0,
        f_handle: [0; 128],
    };
    let mut mount_id: c_int = 0;
    // SAFETY: fh has room for handle_bytes bytes; path and mount_id are valid.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            &mut fh as *mut FileHandle,
            &mut mount_id as *mut c_int,
            0,
        )
    };
    if ret < 0 {
        return Err(last_error(&format!("name_to_handle_at {path}")));
    }
    let bytes = &fh.f_handle[..fh.handle_bytes as usize];
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}:{hex}", fh.handle_type))
}

/// open_by_handle_at with a descriptor of `mount_dir` naming the file system.
pub(crate) fn open_by_handle(mount_dir: &str, handle: &str) -> Step {
    let parse_err = || usage(&format!("bad handle {handle:?}, expected TYPE:HEX"));
    let (kind, hex) = handle.split_once(':').ok_or_else(parse_err)?;
    let mut fh = FileHandle {
        handle_bytes: 0,
        handle_type: kind.parse().map_err(|_| parse_err())?,
        f_handle: [0; 128],
    };
    if hex.len() % 2 != 0 || hex.len() > 256 {
        return Err(parse_err());
    }
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).map_err(|_| parse_err())?;
        fh.f_handle[i] = u8::from_str_radix(pair, 16).map_err(|_| parse_err())?;
        fh.handle_bytes += 1;
    }
    let mount = File::open(mount_dir).map_err(|e| {
        usage(&format!(
            "cannot open mount dir {mount_dir}: {}",
            describe(&e)
        ))
    })?;
    // SAFETY: fh is a valid file_handle; the mount fd is open.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            &fh as *const FileHandle,
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(last_error("open_by_handle_at"));
    }
    // SAFETY: fd was just returned by open_by_handle_at.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd as c_int) });
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| blocked("read opened handle", &e))?;
    Ok(format!(
        "read {} bytes by handle: {}",
        data.len(),
        preview(&data)
    ))
}

/// Pushes a byte into the terminal's input queue, via stdin and via /dev/tty.
pub(crate) fn tiocsti() -> Step {
    let byte: c_char = b'x' as c_char;
    let mut done = Vec::new();
    let mut notes = Vec::new();
    // SAFETY: TIOCSTI reads one byte from the pointer.
    if unsafe { libc::ioctl(0, libc::TIOCSTI, &byte) } == 0 {
        done.push("stdin");
    } else {
        notes.push(format!("stdin: {}", describe(&io::Error::last_os_error())));
    }
    match OpenOptions::new().read(true).write(true).open("/dev/tty") {
        Ok(tty) => {
            // SAFETY: as above, on an open descriptor.
            if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSTI, &byte) } == 0 {
                done.push("/dev/tty");
            } else {
                notes.push(format!(
                    "/dev/tty: {}",
                    describe(&io::Error::last_os_error())
                ));
            }
        }
        Err(e) => notes.push(format!("open /dev/tty: {}", describe(&e))),
    }
    if done.is_empty() {
        Err(Fail::Blocked(notes.join("; ")))
    } else {
        Ok(format!("injected input via {}", done.join(" and ")))
    }
}

pub(crate) fn unshare_userns() -> Step {
    // SAFETY: unshare has no memory arguments; the probe is single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(last_error("unshare(CLONE_NEWUSER)"));
    }
    Ok("new user namespace".to_owned())
}

/// Mounts a tmpfs on `dir` and leaves it there (run it in a throwaway mount
/// namespace outside the sandbox).
pub(crate) fn mount_tmpfs(dir: &str) -> Step {
    let c_dir = cstring(dir)?;
    // SAFETY: all strings are NUL-terminated; no data argument.
    let ret = unsafe {
        libc::mount(
            c"sluice-probe".as_ptr(),
            c_dir.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if ret != 0 {
        return Err(last_error(&format!("mount tmpfs on {dir}")));
    }
    Ok(format!("mounted tmpfs on {dir}"))
}

pub(crate) fn umount(dir: &str) -> Step {
    let c_dir = cstring(dir)?;
    // SAFETY: c_dir is NUL-terminated.
    if unsafe { libc::umount2(c_dir.as_ptr(), 0) } == 0 {
        return Ok(format!("unmounted {dir}"));
    }
    let first = describe(&io::Error::last_os_error());
    // SAFETY: as above.
    if unsafe { libc::umount2(c_dir.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(format!("detached {dir} (plain umount: {first})"));
    }
    let second = describe(&io::Error::last_os_error());
    Err(Fail::Blocked(format!(
        "umount {dir}: {first}; umount2(MNT_DETACH): {second}"
    )))
}

pub(crate) fn chroot(dir: &str) -> Step {
    let c_dir = cstring(dir)?;
    // SAFETY: c_dir is NUL-terminated.
    if unsafe { libc::chroot(c_dir.as_ptr()) } != 0 {
        return Err(last_error(&format!("chroot {dir}")));
    }
    Ok(format!("chrooted into {dir}"))
}

/// name_to_handle_at then open_by_handle_at, the parent directory naming the
/// file system.
pub(crate) fn open_by_own_handle(path: &str) -> Step {
    let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
    let handle = handle(path)?;
    open_by_handle(&parent.to_string_lossy(), &handle)
}

/// Joins the namespace behind `path` (e.g. /proc/PID/ns/mnt).
pub(crate) fn setns(path: &str) -> Step {
    let file = File::open(path).map_err(|e| blocked(&format!("open {path}"), &e))?;
    // SAFETY: setns takes a descriptor and flags; the probe is single-threaded.
    if unsafe { libc::setns(file.as_raw_fd(), 0) } != 0 {
        return Err(last_error(&format!("setns {path}")));
    }
    Ok(format!("joined the namespace of {path}"))
}

/// A new user namespace by clone(2) (`clone3` false) or clone3(2) rather than
/// unshare: every path to the same thing must be closed.
pub(crate) fn userns_by_clone(clone3: bool) -> Step {
    let flags = libc::CLONE_NEWUSER as u64;
    let pid = if clone3 {
        // struct clone_args, first version (64 bytes): flags, pidfd, child_tid,
        // parent_tid, exit_signal, stack, stack_size, tls.
        let args: [u64; 8] = [flags, 0, 0, 0, libc::SIGCHLD as u64, 0, 0, 0];
        // SAFETY: args is a valid clone_args of the size given; without
        // CLONE_VM the child runs on a copy of this stack, like fork.
        unsafe { libc::syscall(libc::SYS_clone3, args.as_ptr(), 64usize) }
    } else {
        let flags = flags | libc::SIGCHLD as u64;
        // SAFETY: fork-like clone: no new stack, no shared memory.
        unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) }
    };
    let name = if clone3 { "clone3" } else { "clone" };
    match pid {
        -1 => Err(last_error(&format!("{name}(CLONE_NEWUSER)"))),
        // SAFETY: the child only exits.
        0 => unsafe { libc::_exit(0) },
        pid => {
            // SAFETY: pid is our child; a null status pointer is allowed.
            unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
            Ok(format!("{name} made a child in a new user namespace"))
        }
    }
}

/// A system call through the i386 entry point (`int 0x80`), which has its own
/// numbers: a filter that checks only x86_64 numbers would miss it.
#[cfg(target_arch = "x86_64")]
pub(crate) fn int80(name: &str) -> Step {
    let (nr, arg, what) = match name {
        "getpid" => (20, 0, "getpid"),
        "unshare-userns" => (310, libc::CLONE_NEWUSER, "unshare(CLONE_NEWUSER)"),
        _ => return Err(usage(&format!("unknown int80 call {name}"))),
    };
    let ret: i32;
    // i386 ABI: number in eax, first argument in ebx; clobbers r8-r11.
    // SAFETY: neither call reads or writes user memory; clobbers are declared.
    unsafe {
        // rbx is reserved by LLVM: swap the argument in and back out.
        std::arch::asm!(
            "xchg {arg}, rbx",
            "int 0x80",
            "xchg {arg}, rbx",
            arg = inout(reg) arg as u64 => _,
            inlateout("eax") nr => ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        let err = io::Error::from_raw_os_error(-ret);
        return Err(blocked(&format!("{what} via int 0x80"), &err));
    }
    Ok(format!("{what} via int 0x80 returned {ret}"))
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn int80(_name: &str) -> Step {
    Err(usage("int 0x80 exists only on x86_64"))
}
