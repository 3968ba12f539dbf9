//! Privileges a file left behind could carry: set-ID bits and file
//! capabilities set by every call that sets a mode, and code mapped
//! executable from a file (what the dynamic loader does).

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::{blocked, cstring, last_error, usage, Fail, Step};

/// The mode every way asks for: set-user-ID, and runnable by anyone.
const SET_ID_MODE: u32 = 0o4755;

/// `set-id WAY SRC DST`: makes DST a copy of SRC with mode 04755 by WAY, then
/// looks at what the file system kept. OK when DST ended up set-user-ID;
/// BLOCKED when a call was refused or the bit was gone (the kernel clears it
/// when a process without `CAP_FSETID` writes the file).
///
/// WAY: `chmod`, `fchmod`, `fchmodat`, `fchmodat2` (a copy made 0755, then
/// the mode set); `open`, `openat`, `creat`, `mknod`, `tmpfile`, `openat2`
/// (made with the mode, then written). `open`, `creat` and `mknod` are the
/// x86_64 system calls of those names.
pub(crate) fn set_id(way: &str, src: &str, dst: &str) -> Step {
    let data = fs::read(src).map_err(|e| usage(&format!("cannot read {src}: {e}")))?;
    let c_dst = cstring(dst)?;
    let mode = u64::from(SET_ID_MODE);
    match way {
        "chmod" | "fchmod" | "fchmodat" | "fchmodat2" => {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o755)
                .open(dst)
                .map_err(|e| blocked(&format!("create {dst}"), &e))?;
            (&file)
                .write_all(&data)
                .map_err(|e| blocked(&format!("write {dst}"), &e))?;
            let at = libc::AT_FDCWD as u64;
            let path = c_dst.as_ptr() as u64;
            let rc = match way {
                // SAFETY: a NUL-terminated path and a mode.
                "chmod" => unsafe { libc::chmod(c_dst.as_ptr(), SET_ID_MODE) as libc::c_long },
                // SAFETY: an open descriptor and a mode.
                "fchmod" => unsafe { libc::syscall(libc::SYS_fchmod, file.as_raw_fd(), mode) },
                // SAFETY: AT_FDCWD, a NUL-terminated path and a mode.
                "fchmodat" => unsafe { libc::syscall(libc::SYS_fchmodat, at, path, mode) },
                // SAFETY: AT_FDCWD, a NUL-terminated path, a mode and no flags.
                _ => unsafe { libc::syscall(FCHMODAT2, at, path, mode, 0) },
            };
            if rc != 0 {
                return Err(last_error(way));
            }
        }
        "open" | "openat" | "creat" | "mknod" | "tmpfile" | "openat2" => {
            let fd = create(way, dst, &c_dst, mode)?;
            let mut file = fs::File::from(fd);
            file.write_all(&data)
                .map_err(|e| blocked(&format!("write {dst}"), &e))?;
            if way == "tmpfile" {
                link_tmpfile(&file, &c_dst)?;
            }
        }
        _ => return Err(usage(&format!("unknown way to set a mode: {way}"))),
    }
    let got = fs::metadata(dst)
        .map_err(|e| blocked(&format!("stat {dst}"), &e))?
        .mode();
    if got & (libc::S_ISUID | libc::S_ISGID) != 0 {
        Ok(format!(
            "{dst} is set-ID (mode {:o}) by {way}",
            got & 0o7777
        ))
    } else {
        Err(Fail::Blocked(format!(
            "{dst} has no set-ID bit (mode {:o}) after {way}",
            got & 0o7777
        )))
    }
}

/// `fchmodat2`'s number in the generic table (libc names it only on some
/// architectures).
const FCHMODAT2: libc::c_long = 452;

/// A new file made by `way` with `mode`, open for writing.
fn create(way: &str, dst: &str, c_dst: &CString, mode: u64) -> Result<OwnedFd, Fail> {
    let at = libc::AT_FDCWD as u64;
    let path = c_dst.as_ptr() as u64;
    let flags = (libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC) as u64;
    let rc = match way {
        // SAFETY: a NUL-terminated path and integers.
        "openat" => unsafe { libc::syscall(libc::SYS_openat, at, path, flags, mode) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        "open" => unsafe { libc::syscall(libc::SYS_open, path, flags, mode) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        "creat" => unsafe { libc::syscall(libc::SYS_creat, path, mode) },
        "mknod" => {
            let node = u64::from(libc::S_IFREG) | mode;
            // SAFETY: as above.
            if unsafe { libc::syscall(libc::SYS_mknodat, at, path, node, 0) } != 0 {
                return Err(last_error("mknodat"));
            }
            let flags = (libc::O_WRONLY | libc::O_CLOEXEC) as u64;
            // SAFETY: as above.
            unsafe { libc::syscall(libc::SYS_openat, at, path, flags, 0) }
        }
        "tmpfile" => {
            let dir = Path::new(dst).parent().unwrap_or(Path::new("."));
            let c_dir = cstring(&dir.to_string_lossy())?;
            let flags = (libc::O_WRONLY | libc::O_TMPFILE | libc::O_CLOEXEC) as u64;
            // SAFETY: as above.
            unsafe { libc::syscall(libc::SYS_openat, at, c_dir.as_ptr(), flags, mode) }
        }
        "openat2" => {
            // struct open_how: flags, mode, resolve.
            let how: [u64; 3] = [flags, mode, 0];
            // SAFETY: a NUL-terminated path and an open_how that outlives the call.
            unsafe { libc::syscall(libc::SYS_openat2, at, path, how.as_ptr(), 24) }
        }
        _ => return Err(usage(&format!("{way} is not a system call here"))),
    };
    if rc < 0 {
        return Err(last_error(&format!("{way} {dst}")));
    }
    // SAFETY: the call returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as libc::c_int) })
}

/// Gives an `O_TMPFILE` file its name.
pub(crate) fn link_tmpfile(file: &fs::File, c_dst: &CString) -> Result<(), Fail> {
    let proc_path = cstring(&format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    // SAFETY: two NUL-terminated paths.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_path.as_ptr(),
            libc::AT_FDCWD,
            c_dst.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc != 0 {
        return Err(last_error("linkat"));
    }
    Ok(())
}

/// `set-cap SRC DST`: DST, a 0755 copy of SRC, gets a `security.capability`
/// extended attribute granting `CAP_SETUID` (effective and permitted).
pub(crate) fn set_cap(src: &str, dst: &str) -> Step {
    fs::copy(src, dst).map_err(|e| usage(&format!("cannot copy {src} to {dst}: {e}")))?;
    // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, then permitted and
    // inheritable for capabilities 0-31 and 32-63 (little endian words).
    let mut value = Vec::with_capacity(20);
    const CAP_SETUID: u32 = 7;
    let words: [u32; 5] = [0x0200_0001, 1 << CAP_SETUID, 0, 0, 0];
    for word in words {
        value.extend_from_slice(&word.to_le_bytes());
    }
    let c_dst = cstring(dst)?;
    // SAFETY: a NUL-terminated path and name; value outlives the call.
    let rc = unsafe {
        libc::setxattr(
            c_dst.as_ptr(),
            c"security.capability".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(last_error("setxattr security.capability"));
    }
    Ok(format!("{dst} carries file capabilities"))
}

/// `mmap-exec PATH`: maps PATH's first page readable and executable, as the
/// dynamic loader maps a program's code.
pub(crate) fn mmap_exec(path: &str) -> Step {
    let file = fs::File::open(path).map_err(|e| blocked(&format!("open {path}"), &e))?;
    map_exec(&file, path)
}

/// Maps `file`'s first page readable and executable (`what` names it).
pub(crate) fn map_exec(file: &fs::File, path: &str) -> Step {
    // SAFETY: a fresh private mapping of an open file, unmapped below.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(blocked(
            &format!("mmap PROT_EXEC {path}"),
            &io::Error::last_os_error(),
        ));
    }
    // SAFETY: the mapping made above, of that length.
    unsafe { libc::munmap(addr, 4096) };
    Ok(format!("mapped {path} executable"))
}
