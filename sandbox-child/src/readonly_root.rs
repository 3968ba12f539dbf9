//! A read-only copy of the caller's whole mount tree, mounted nowhere, for
//! the broker to open files through when it grants reading only.
//!
//! The owner of a file may change its mode, times and attributes through any
//! descriptor of it, a read-only one too (`fchmod`, `fchown`, `futimens`,
//! `fsetxattr` check ownership, not the descriptor's access mode). What they
//! do check is the mount: on a read-only mount all four fail with `EROFS`.
//! So a descriptor the broker opened through this tree reads the file and
//! can change nothing about it.
//!
//! The tree is `open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)` of `/` made
//! read-only, noexec and nosuid all the way down with `mount_setattr`. That needs
//! `CAP_SYS_ADMIN` over the caller's mount namespace; without it (sluice run
//! by a user) a short-lived helper process makes the copy in a user and
//! mount namespace of its own and sends the descriptor back. The copy does
//! not follow mounts made after it: the caller watches for them and makes a
//! new one.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::c_int;

use crate::sys;

const OPEN_TREE_CLONE: u32 = 1;
const AT_RECURSIVE: u32 = 0x8000;

/// The root of a detached, recursively read-only copy of `/`.
pub fn clone_read_only_root() -> io::Result<OwnedFd> {
    match clone_here() {
        Ok(tree) => Ok(tree),
        Err(libc::EPERM) => clone_in_user_namespace(),
        Err(e) => Err(io::Error::from_raw_os_error(e)),
    }
}

/// The copy, made in the caller's own mount namespace. Only system calls:
/// async-signal-safe, so the helper may run it after `fork`.
fn clone_here() -> Result<OwnedFd, i32> {
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | AT_RECURSIVE;
    // SAFETY: a static NUL-terminated path and plain flags.
    let fd = sys::check(unsafe {
        libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c"/".as_ptr(), flags)
    })?;
    // SAFETY: open_tree just returned this descriptor.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as c_int) };
    // noexec too: what is served for reading is never mapped executable
    // (`ld.so /proc/self/fd/N`), so a file of a tree the sandbox mounts
    // noexec cannot be run by asking the broker for it.
    let attr = sys::MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOEXEC | sys::MOUNT_ATTR_NOSUID,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let at = libc::AT_EMPTY_PATH as u32 | AT_RECURSIVE;
    // SAFETY: the tree's descriptor, an empty NUL-terminated path and a
    // valid mount_attr of the size given.
    sys::check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            at,
            &attr as *const sys::MountAttr,
            std::mem::size_of::<sys::MountAttr>(),
        )
    })?;
    Ok(tree)
}

/// The copy, made by a child in a new user and mount namespace (where it
/// holds every capability) and sent back over a socketpair. A detached tree
/// stays usable by whoever holds its descriptor after the child is gone.
fn clone_in_user_namespace() -> io::Result<OwnedFd> {
    let mut pair = [-1; 2];
    let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: pair has room for the two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, pair.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair just returned both, owned by nothing else.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    // SAFETY: the child makes only raw system calls (async-signal-safe, as
    // a fork of a threaded process requires) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // Where no descriptor could be sent, the errno is the message.
        if let Err(e) = helper(theirs.as_raw_fd()) {
            let _ = sys::write_all(theirs.as_raw_fd(), &e.to_ne_bytes());
        }
        // SAFETY: leaving the forked child without running any destructor.
        unsafe { libc::_exit(0) };
    }
    drop(theirs);
    let mut data = [0u8; 4];
    let mut fds = [-1; sys::MAX_FDS];
    let received = sys::recv_fds(ours.as_raw_fd(), &mut data, &mut fds);
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let trees: Vec<OwnedFd> = fds
        .iter()
        .filter(|&&fd| fd >= 0)
        // SAFETY: descriptors recv_fds placed in this process are ours.
        .map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    match (received, trees.into_iter().next()) {
        (Ok(_), Some(tree)) => Ok(tree),
        (Ok(4), None) => Err(io::Error::from_raw_os_error(i32::from_ne_bytes(data))),
        (Ok(_), None) => Err(io::Error::other("the helper sent nothing")),
        (Err(e), _) => Err(io::Error::from_raw_os_error(e)),
    }
}

/// In the helper: a namespace of its own, the copy, the descriptor sent.
fn helper(socket: c_int) -> Result<(), i32> {
    // SAFETY: unshare takes flags only.
    sys::check(unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } as _)?;
    let tree = clone_here()?;
    sys::send_fds(socket, b"tree", &[tree.as_raw_fd()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file opened beneath `tree` (by its path from `/`), read-only.
    fn open_beneath(tree: &OwnedFd, path: &std::ffi::CStr) -> OwnedFd {
        // SAFETY: a directory descriptor and a NUL-terminated relative path.
        let fd = unsafe {
            libc::openat(
                tree.as_raw_fd(),
                path.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        assert!(fd >= 0, "{}", io::Error::last_os_error());
        // SAFETY: openat just returned it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    fn fchmod(fd: &OwnedFd, mode: libc::mode_t) -> io::Result<()> {
        // SAFETY: fchmod on an open descriptor.
        match unsafe { libc::fchmod(fd.as_raw_fd(), mode) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    fn check_read_only(tree: OwnedFd) {
        let dir = std::env::temp_dir().join(format!("sluice-unit-ro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, "data").unwrap();
        let relative = std::ffi::CString::new(&file.to_str().unwrap()[1..]).unwrap();
        let through_tree = open_beneath(&tree, &relative);
        let e = fchmod(&through_tree, 0o600).unwrap_err();
        // Control: the same call on a descriptor of the host's tree works.
        let host = OwnedFd::from(std::fs::File::open(&file).unwrap());
        let control = fchmod(&host, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
        control.unwrap();
    }

    /// `mmap(PROT_EXEC)` of `fd`'s first page: Ok, or the errno.
    fn map_exec(fd: &OwnedFd) -> Result<(), i32> {
        // SAFETY: a fresh private mapping of an open file, unmapped below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        // SAFETY: the mapping made above, of that length.
        unsafe { libc::munmap(addr, 4096) };
        Ok(())
    }

    fn check_maps_nothing_executable(tree: OwnedFd, tag: &str) {
        let dir = std::env::temp_dir().join(format!("sluice-unit-nx-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, "code").unwrap();
        let relative = std::ffi::CString::new(&file.to_str().unwrap()[1..]).unwrap();
        let through_tree = map_exec(&open_beneath(&tree, &relative));
        // Control: a descriptor of the host's tree maps.
        let control = map_exec(&OwnedFd::from(std::fs::File::open(&file).unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(through_tree, Err(libc::EPERM));
        assert_eq!(control, Ok(()));
    }

    #[test]
    fn nothing_opened_through_the_copy_maps_executable() {
        check_maps_nothing_executable(clone_read_only_root().unwrap(), "here");
        check_maps_nothing_executable(clone_in_user_namespace().unwrap(), "userns");
    }

    #[test]
    fn a_file_opened_through_the_copy_cannot_be_changed() {
        check_read_only(clone_read_only_root().unwrap());
    }

    #[test]
    fn the_helper_makes_the_same_copy_in_a_namespace_of_its_own() {
        check_read_only(clone_in_user_namespace().unwrap());
    }
}
