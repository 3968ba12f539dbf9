//! The child's mount steps, each one operation on the program's view:
//! the PID namespace's `/proc`, the session's `/dev/shm`, the private
//! tmpfs, the policy-built root's entries, the veil, the mounts of the
//! plan and the pivot into the new root. [`super::Runner`] orders them.

use std::os::raw::c_ulong;

use crate::mounts::MountKind;
use crate::sys::{self, MountAttr};
use crate::view::{PreparedOverlay, PreparedPrivate, PreparedVeil, RootEntry};
use crate::view::{LAYERS_UPPER, LAYERS_WORK};

/// A procfs of the PID namespace this process is init of, over the host's
/// `/proc`: it shows the sandbox's processes only. Read-only like every
/// other mount of the view; the flags the kernel locked on the host's
/// (nosuid, nodev, noexec) are repeated, as it requires.
pub(super) fn mount_proc() -> Result<(), i32> {
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY;
    sys::mount(
        c"proc".as_ptr(),
        c"/proc".as_ptr(),
        c"proc".as_ptr(),
        flags as c_ulong,
    )
}

/// The session's own /dev/shm ([`crate::mounts::SHM`]) over the host's.
pub(super) fn mount_shm() -> Result<(), i32> {
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: every pointer is a NUL-terminated constant.
    sys::check(unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            c"/dev/shm".as_ptr(),
            c"tmpfs".as_ptr(),
            flags as c_ulong,
            crate::mounts::SHM_OPTIONS.as_ptr().cast(),
        )
    } as _)
    .map(drop)
}

/// Python's bytecode cache ([`crate::view::SessionOverlay`]): a bounded
/// tmpfs at the target holding the upper and work directories, then
/// overlayfs over it; both never executable, no device nodes or setuid.
/// Returns a descriptor of the tmpfs's root (close-on-exec), for the
/// supervisor. Where the overlay fails the tmpfs goes too (the program
/// has the plain directory) and the error is returned.
pub(super) fn mount_overlay(overlay: &PreparedOverlay) -> Result<libc::c_int, i32> {
    let flags = (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as c_ulong;
    // SAFETY: every pointer is a NUL-terminated string prepared before fork
    // or a constant.
    sys::check(unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            overlay.target.as_ptr(),
            c"tmpfs".as_ptr(),
            flags,
            crate::mounts::LAYERS_OPTIONS.as_ptr().cast(),
        )
    } as _)?;
    let open = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: the target is NUL-terminated.
    let layers =
        sys::check(unsafe { libc::open(overlay.target.as_ptr(), open) } as _)? as libc::c_int;
    let mounted = (|| {
        for dir in [LAYERS_UPPER, LAYERS_WORK] {
            // SAFETY: `layers` is open, the name a constant.
            sys::check(unsafe { libc::mkdirat(layers, dir.as_ptr(), 0o700) } as _)?;
        }
        // SAFETY: as above.
        sys::check(unsafe {
            libc::mount(
                c"overlay".as_ptr(),
                overlay.target.as_ptr(),
                c"overlay".as_ptr(),
                flags,
                overlay.options.as_ptr().cast(),
            )
        } as _)
        .map(drop)
    })();
    match mounted {
        Ok(()) => Ok(layers),
        Err(e) => {
            // SAFETY: closing the descriptor opened above; the target is
            // NUL-terminated.
            unsafe {
                libc::close(layers);
                libc::umount2(overlay.target.as_ptr(), libc::MNT_DETACH);
            }
            Err(e)
        }
    }
}

/// The overlay's mount at its target made writable again (this mount
/// only), after the recursive read-only step and the writable trees' binds.
pub(super) fn writable_again(overlay: &PreparedOverlay) -> Result<(), i32> {
    let attr = MountAttr {
        attr_set: 0,
        attr_clr: sys::MOUNT_ATTR_RDONLY,
        propagation: 0,
        userns_fd: 0,
    };
    sys::mount_setattr(overlay.target.as_ptr(), &attr, false)
}

/// The tmpfs over the session's directory ([`PreparedPrivate`]): the
/// program's `TMPDIR` cloned before it is covered (with the flags the
/// mounts made so far gave it) and moved back, the mode-000 placeholders
/// and the root's mount point, then read-only (the moved tree keeps its own
/// flags).
pub(super) fn make_private(private: &PreparedPrivate) -> Result<(), i32> {
    let tree = sys::open_tree_clone(private.keep.as_ptr())?;
    let made = (|| {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        // SAFETY: every pointer is a NUL-terminated string prepared before fork.
        sys::check(unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                private.dir.as_ptr(),
                c"tmpfs".as_ptr(),
                flags as c_ulong,
                c"mode=0700".as_ptr().cast(),
            )
        } as _)?;
        for dir in &private.dirs {
            // SAFETY: dir is NUL-terminated, prepared before fork.
            sys::check(unsafe { libc::mkdir(dir.as_ptr(), 0o700) } as _)?;
        }
        for (path, is_dir) in &private.placeholders {
            // Mode 000 whatever the umask.
            if *is_dir {
                // SAFETY: path is NUL-terminated, prepared before fork.
                sys::check(unsafe { libc::mkdir(path.as_ptr(), 0) } as _)?;
            } else {
                create_file(path, 0)?;
            }
        }
        sys::move_mount(tree, private.keep.as_ptr())?;
        seal(&private.dir)
    })();
    // SAFETY: closing the descriptor open_tree just returned.
    unsafe { libc::close(tree) };
    made
}

/// A new empty file at `path` (which must not exist), with `mode` less the
/// umask.
pub(super) fn create_file(path: &std::ffi::CStr, mode: libc::mode_t) -> Result<(), i32> {
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC;
    // SAFETY: path is NUL-terminated; the descriptor is closed at once.
    let fd = sys::check(unsafe { libc::open(path.as_ptr(), flags, mode) } as _)?;
    // SAFETY: closing the descriptor just opened.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

pub(super) fn seal(dir: &std::ffi::CStr) -> Result<(), i32> {
    let attr = MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    sys::mount_setattr(dir.as_ptr(), &attr, false)
}

pub(super) fn make_entry(entry: &RootEntry) -> Result<(), i32> {
    match entry {
        RootEntry::Dir(path) => {
            // SAFETY: path is NUL-terminated, prepared before fork.
            sys::check(unsafe { libc::mkdir(path.as_ptr(), 0o755) } as _).map(drop)
        }
        RootEntry::File(path) => create_file(path, 0o644),
        RootEntry::Symlink { target, link } => {
            // SAFETY: both strings are NUL-terminated, prepared before fork.
            sys::check(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) } as _).map(drop)
        }
        RootEntry::Bind { source, target } => {
            let flags = (libc::MS_BIND | libc::MS_REC) as c_ulong;
            sys::mount(source.as_ptr(), target.as_ptr(), std::ptr::null(), flags)
        }
        RootEntry::StandIn { source, target } => {
            let flags = libc::MS_BIND as c_ulong;
            sys::mount(source.as_ptr(), target.as_ptr(), std::ptr::null(), flags)?;
            let attr = MountAttr {
                attr_set: sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
                attr_clr: 0,
                propagation: 0,
                userns_fd: 0,
            };
            sys::mount_setattr(target.as_ptr(), &attr, false)
        }
    }
}

/// The session's copy bound over the host's path: the bind takes the flags
/// of the session directory's mount, made read-only with every other, so it
/// is made writable again (a flag this namespace set), never executable.
fn mount_session_copy(m: &crate::view::PreparedMount) -> Result<(), i32> {
    let bind = libc::MS_BIND as c_ulong;
    sys::mount(m.source.as_ptr(), m.target.as_ptr(), std::ptr::null(), bind)?;
    let attr = MountAttr {
        attr_set: sys::MOUNT_ATTR_NOEXEC | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
        attr_clr: sys::MOUNT_ATTR_RDONLY,
        propagation: 0,
        userns_fd: 0,
    };
    sys::mount_setattr(m.target.as_ptr(), &attr, false)
}

/// `pivot_root(".", ".")` from inside the new root, then detach the old
/// root that now sits on top of it: the host's tree is gone from this
/// namespace.
pub(super) fn pivot_into(dir: &std::ffi::CStr) -> Result<(), i32> {
    // SAFETY: dir is NUL-terminated, prepared before fork.
    sys::check(unsafe { libc::chdir(dir.as_ptr()) } as _)?;
    let dot = c".".as_ptr();
    // SAFETY: both arguments are the NUL-terminated string ".".
    sys::check(unsafe { libc::syscall(libc::SYS_pivot_root, dot, dot) })?;
    // SAFETY: "." is NUL-terminated.
    sys::check(unsafe { libc::umount2(dot, libc::MNT_DETACH) } as _)?;
    // SAFETY: "/" is NUL-terminated.
    sys::check(unsafe { libc::chdir(c"/".as_ptr()) } as _).map(drop)
}

/// Covers the parent of every session directory with a tmpfs holding only
/// the session's own `tmp/` (see [`crate::view::Veil`]): the tree at `keep`
/// is cloned first, since it no longer resolves once the parent is covered,
/// then moved onto the same path in the tmpfs, which is made read-only (the
/// moved tree keeps its own flags).
pub(super) fn draw_veil(veil: &PreparedVeil) -> Result<(), i32> {
    let tree = sys::open_tree_clone(veil.keep.as_ptr())?;
    let drawn = (|| {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        sys::mount(
            c"tmpfs".as_ptr(),
            veil.parent.as_ptr(),
            c"tmpfs".as_ptr(),
            flags as c_ulong,
        )?;
        for dir in &veil.dirs {
            // SAFETY: dir is NUL-terminated, prepared before fork.
            sys::check(unsafe { libc::mkdir(dir.as_ptr(), 0o700) } as _)?;
        }
        sys::move_mount(tree, veil.keep.as_ptr())?;
        let attr = MountAttr {
            attr_set: sys::MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        sys::mount_setattr(veil.parent.as_ptr(), &attr, false)
    })();
    // SAFETY: closing the descriptor open_tree just returned.
    unsafe { libc::close(tree) };
    drawn
}

pub(super) fn mount_one(m: &crate::view::PreparedMount) -> Result<(), i32> {
    if m.kind == MountKind::SessionCopy {
        return mount_session_copy(m);
    }
    let bind = (libc::MS_BIND | libc::MS_REC) as c_ulong;
    sys::mount(m.source.as_ptr(), m.target.as_ptr(), std::ptr::null(), bind)?;
    let attr_set = match m.kind {
        MountKind::Pin => return Ok(()),
        MountKind::Writable { exec } => {
            // Only this mount: a submount the host keeps read-only is locked
            // that way, and stays so.
            let attr = MountAttr {
                attr_set: 0,
                attr_clr: sys::MOUNT_ATTR_RDONLY,
                propagation: 0,
                userns_fd: 0,
            };
            sys::mount_setattr(m.target.as_ptr(), &attr, false)?;
            if exec {
                return Ok(());
            }
            // Every mount beneath too: setting a flag is never refused.
            let attr = MountAttr {
                attr_set: sys::MOUNT_ATTR_NOEXEC,
                attr_clr: 0,
                propagation: 0,
                userns_fd: 0,
            };
            return sys::mount_setattr(m.target.as_ptr(), &attr, true);
        }
        MountKind::Executable => {
            // Only this mount: the flag was set by us (the plan leaves out
            // trees the host mounts noexec), so clearing it is allowed.
            let attr = MountAttr {
                attr_set: 0,
                attr_clr: sys::MOUNT_ATTR_NOEXEC,
                propagation: 0,
                userns_fd: 0,
            };
            return sys::mount_setattr(m.target.as_ptr(), &attr, false);
        }
        MountKind::ReadOnly => sys::MOUNT_ATTR_RDONLY,
        MountKind::SessionCopy => unreachable!("mounted by mount_session_copy"),
        MountKind::Deny { .. } => {
            sys::MOUNT_ATTR_RDONLY
                | sys::MOUNT_ATTR_NOEXEC
                | sys::MOUNT_ATTR_NOSUID
                | sys::MOUNT_ATTR_NODEV
        }
    };
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    sys::mount_setattr(m.target.as_ptr(), &attr, true)
}
