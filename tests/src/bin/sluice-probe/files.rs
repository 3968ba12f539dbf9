//! Files: reads, writes, links, renames, exec and memfd exec.

use std::ffi::{c_char, c_int};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::{blocked, cstring, describe, last_error, preview, usage, Fail, Step};

pub(crate) fn read(path: &str) -> Step {
    let data = fs::read(path).map_err(|e| blocked(&format!("read {path}"), &e))?;
    Ok(format!(
        "read {} bytes from {path}: {}",
        data.len(),
        preview(&data)
    ))
}

pub(crate) fn write(path: &str, append: bool) -> Step {
    let mut options = OpenOptions::new();
    if append {
        options.append(true);
    } else {
        options.write(true).create(true).truncate(true);
    }
    let what = if append { "append" } else { "write" };
    let mut file = options
        .open(path)
        .map_err(|e| blocked(&format!("open {path} for {what}"), &e))?;
    file.write_all(b"pwned")
        .map_err(|e| blocked(&format!("{what} {path}"), &e))?;
    Ok(format!("{what} {path}"))
}

/// `set PATH VALUE`: writes VALUE to an existing file (a sysctl under
/// `/proc/sys`), neither creating nor truncating it.
pub(crate) fn set(path: &str, value: &str) -> Step {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| blocked(&format!("open {path} for writing"), &e))?;
    file.write_all(value.as_bytes())
        .map_err(|e| blocked(&format!("write {value} to {path}"), &e))?;
    Ok(format!("wrote {value} to {path}"))
}

/// `exists PATH`: lstat, no access needed beyond walking the path. OK if
/// the path exists, NOTFOUND if not, BLOCKED for any other refusal.
pub(crate) fn exists(path: &str) -> Step {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(format!("{path} exists ({:?})", meta.file_type())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(crate::Fail::NotFound(format!("lstat {path}: {e}")))
        }
        Err(e) => Err(blocked(&format!("lstat {path}"), &e)),
    }
}

pub(crate) fn ls(dir: &str) -> Step {
    let entries = fs::read_dir(dir).map_err(|e| blocked(&format!("opendir {dir}"), &e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| blocked(&format!("readdir {dir}"), &e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(format!(
        "{} entries in {dir}: {}",
        names.len(),
        names.join(" ")
    ))
}

pub(crate) fn symlink(target: &str, link: &str) -> Step {
    std::os::unix::fs::symlink(target, link)
        .map(|()| format!("symlink {link} -> {target}"))
        .map_err(|e| blocked(&format!("symlink {link} -> {target}"), &e))
}

pub(crate) fn hardlink(target: &str, link: &str) -> Step {
    fs::hard_link(target, link)
        .map(|()| format!("hardlink {link} = {target}"))
        .map_err(|e| blocked(&format!("link {target} {link}"), &e))
}

/// Opens `path` with O_PATH (which needs no read right), then reopens the
/// descriptor through /proc/self/fd for reading.
pub(crate) fn read_via_opath(path: &str) -> Step {
    let c_path = cstring(path)?;
    // SAFETY: c_path is a valid NUL-terminated string.
    let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(last_error(&format!("open {path} O_PATH")));
    }
    // SAFETY: fd was just returned by open and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    read(&format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

pub(crate) fn exec(path: &str, rest: &[&str]) -> Step {
    let c_path = cstring(path)?;
    let mut argv = vec![c_path.clone()];
    for arg in rest {
        argv.push(cstring(arg)?);
    }
    let mut ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    io::stdout().flush().ok();
    // SAFETY: path and argv are NUL-terminated and the argv array ends in NULL;
    // execv only returns on failure.
    unsafe { libc::execv(c_path.as_ptr(), ptrs.as_ptr()) };
    Err(last_error(&format!("execv {path}")))
}

/// Copies this very binary into a memfd and executes it from there (the copy
/// prints an OK marker), first as a plain memfd, then with MFD_EXEC; or, when
/// `sealed`, with MFD_NOEXEC_SEAL, where the kernel itself must refuse the exec.
pub(crate) fn memfd_exec(sealed: bool) -> Step {
    let image = fs::read("/proc/self/exe")
        .map_err(|e| usage(&format!("cannot read /proc/self/exe: {e}")))?;
    let attempts: &[(libc::c_uint, &str)] = if sealed {
        &[(libc::MFD_CLOEXEC | libc::MFD_NOEXEC_SEAL, "MFD_NOEXEC_SEAL")]
    } else {
        &[
            (libc::MFD_CLOEXEC, "plain"),
            (libc::MFD_CLOEXEC | libc::MFD_EXEC, "MFD_EXEC"),
        ]
    };
    let mut notes = Vec::new();
    for &(flags, label) in attempts {
        // SAFETY: the name is a valid C string; memfd_create has no other inputs.
        let fd = unsafe { libc::syscall(libc::SYS_memfd_create, c"probe".as_ptr(), flags) };
        if fd < 0 {
            let err = io::Error::last_os_error();
            notes.push(format!("memfd_create({label}): {}", describe(&err)));
            continue;
        }
        // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd as c_int) });
        if let Err(e) = file.write_all(&image) {
            notes.push(format!("write memfd({label}): {}", describe(&e)));
            continue;
        }
        let argv = [
            c"sluice-probe".as_ptr(),
            c"marker".as_ptr(),
            c"executed from a memfd".as_ptr(),
            std::ptr::null(),
        ];
        io::stdout().flush().ok();
        // SAFETY: the fd is open, the path is the empty string (AT_EMPTY_PATH), argv
        // is NULL-terminated and environ is the process's own environment.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                file.as_raw_fd(),
                c"".as_ptr(),
                argv.as_ptr(),
                libc::environ,
                libc::AT_EMPTY_PATH,
            )
        };
        let err = io::Error::last_os_error();
        notes.push(format!("execveat({label}): {}", describe(&err)));
    }
    Err(Fail::Blocked(notes.join("; ")))
}

pub(crate) fn mkdir(path: &str) -> Step {
    fs::create_dir(path)
        .map(|()| format!("created {path}"))
        .map_err(|e| blocked(&format!("mkdir {path}"), &e))
}

pub(crate) fn rename(from: &str, to: &str) -> Step {
    fs::rename(from, to)
        .map(|()| format!("renamed {from} to {to}"))
        .map_err(|e| blocked(&format!("rename {from} {to}"), &e))
}

pub(crate) fn unlink(path: &str) -> Step {
    fs::remove_file(path)
        .map(|()| format!("unlinked {path}"))
        .map_err(|e| blocked(&format!("unlink {path}"), &e))
}

pub(crate) fn rmdir(path: &str) -> Step {
    fs::remove_dir(path)
        .map(|()| format!("removed {path}"))
        .map_err(|e| blocked(&format!("rmdir {path}"), &e))
}

/// `fd-meta PATH`: PATH opened read-only with a plain `open` (under
/// `--transparent`, one the broker may answer), then
/// [`change_metadata`] through that descriptor.
pub(crate) fn fd_meta(path: &str) -> Step {
    let file = File::open(path).map_err(|e| blocked(&format!("open {path}"), &e))?;
    change_metadata(file.as_raw_fd(), path)
}

/// Changes the metadata of the file behind `fd` (named `path`) through the
/// descriptor: mode, owner (to itself), times, an extended attribute. OK
/// lists what worked; BLOCKED when nothing did.
pub(crate) fn change_metadata(fd: c_int, path: &str) -> Step {
    // SAFETY: an all-zero stat is a valid out-buffer; fd is open.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open and st is writable.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(usage("fstat of the descriptor"));
    }
    let mut tries = Attempts::default();
    // SAFETY: each call takes the open descriptor and plain values or
    // pointers to locals that outlive it.
    unsafe {
        tries.note("fchmod 0777", libc::fchmod(fd, 0o777));
        tries.note(
            "fchown (unchanged owner)",
            libc::fchown(fd, st.st_uid, st.st_gid),
        );
        let times = [libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }; 2];
        tries.note("futimens (epoch)", libc::futimens(fd, times.as_ptr()));
        let value = b"planted";
        tries.note(
            "fsetxattr user.sluice",
            libc::fsetxattr(
                fd,
                c"user.sluice".as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            ),
        );
    }
    tries.report(path, &format!("changed through a descriptor of {path}"))
}

/// Changes `path`'s metadata by name: mode 0777, owner (to itself), times
/// (to the epoch), an extended attribute. OK lists what worked; BLOCKED when
/// nothing did.
pub(crate) fn meta(path: &str) -> Step {
    let c_path = cstring(path)?;
    let meta = fs::metadata(path).map_err(|e| blocked(&format!("stat {path}"), &e))?;
    let (uid, gid) = {
        use std::os::unix::fs::MetadataExt;
        (meta.uid(), meta.gid())
    };
    let mut tries = Attempts::default();
    let times = [libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }; 2];
    let value = b"planted";
    // SAFETY: each call takes a NUL-terminated path and plain values or
    // pointers to locals that outlive it.
    unsafe {
        tries.note("chmod 0777", libc::chmod(c_path.as_ptr(), 0o777));
        tries.note(
            "chown (unchanged owner)",
            libc::chown(c_path.as_ptr(), uid, gid),
        );
        tries.note(
            "utimensat (epoch)",
            libc::utimensat(libc::AT_FDCWD, c_path.as_ptr(), times.as_ptr(), 0),
        );
        tries.note(
            "setxattr user.sluice",
            libc::setxattr(
                c_path.as_ptr(),
                c"user.sluice".as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            ),
        );
    }
    tries.report(path, &format!("changed {path} by name"))
}

/// Which of several ways to change a file's metadata worked.
#[derive(Default)]
pub(crate) struct Attempts {
    worked: Vec<String>,
    refused: Vec<String>,
}

impl Attempts {
    /// The call `name` returned `rc` (0: it worked; else errno says why).
    pub(crate) fn note(&mut self, name: &str, rc: c_int) {
        if rc == 0 {
            self.worked.push(name.to_owned());
        } else {
            let why = describe(&io::Error::last_os_error());
            self.refused.push(format!("{name}: {why}"));
        }
    }

    /// OK (`changed`, what worked, what was refused); BLOCKED when nothing
    /// worked.
    pub(crate) fn report(self, path: &str, changed: &str) -> Step {
        let refused = self.refused.join("; ");
        if self.worked.is_empty() {
            Err(Fail::Blocked(format!(
                "metadata of {path} unchanged: {refused}"
            )))
        } else {
            Ok(format!(
                "{changed}: {}; refused: {refused}",
                self.worked.join(", ")
            ))
        }
    }
}
