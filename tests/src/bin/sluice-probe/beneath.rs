//! What a directory descriptor reaches: `dir-beneath VIA DIR ACTION ARGS...`
//! gets a descriptor of DIR, then uses it the ways an attacker would.
//!
//! VIA is how the descriptor is got: `broker` asks the broker for DIR as a
//! directory through the client SDK; `open` opens it with a plain
//! `open(O_DIRECTORY)` (brokered under `--transparent`, and the control
//! outside sluice). ACTION:
//! - `openat REL`: `openat(dirfd, REL)` and read it;
//! - `opath REL`: `openat(dirfd, REL, O_PATH)`, then that descriptor reopened
//!   for reading through `/proc/self/fd/N`, and read;
//! - `execveat REL ARGS...`: the probe replaced by `execveat(dirfd, REL)`
//!   (the program run prints its own line; the probe's is printed only on
//!   failure; the directory is left open across the exec, as a script
//!   needs);
//! - `climb-read UPS REL` / `climb-connect UPS REL`: `fchdir(dirfd)`, then
//!   `chdir("..")` UPS times, then REL read, or connected to as a unix
//!   socket, relative to where the climb ended.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::c_char;

use client_sdk::{Client, OpenOptions};

use crate::{cstring, last_error, parse_num, preview, usage, Fail, Step};

pub(crate) fn run(via: &str, dir: &str, action: &str, args: &[&str]) -> Step {
    let dirfd = directory(via, dir)?;
    match (action, args) {
        ("openat", [rel]) => openat(&dirfd, dir, rel, libc::O_RDONLY).and_then(|f| read(f, rel)),
        ("opath", [rel]) => {
            let path = openat(&dirfd, dir, rel, libc::O_PATH)?;
            let reopened = format!("/proc/self/fd/{}", path.as_raw_fd());
            let file = File::open(&reopened)
                .map_err(|e| crate::blocked(&format!("reopen {rel} (O_PATH) for reading"), &e))?;
            read(file.into(), rel)
        }
        ("execveat", [rel, rest @ ..]) => execveat(&dirfd, rel, rest),
        ("climb-read", [ups, rel]) => {
            climb(&dirfd, parse_num(ups)?)?;
            crate::files::read(rel)
        }
        ("climb-connect", [ups, rel]) => {
            climb(&dirfd, parse_num(ups)?)?;
            crate::net::path_connect(rel)
        }
        _ => Err(usage(&format!(
            "dir-beneath: unknown action or wrong arguments: {action} {}",
            args.join(" ")
        ))),
    }
}

fn directory(via: &str, dir: &str) -> Result<OwnedFd, Fail> {
    match via {
        "broker" => {
            let mut client = Client::from_env()
                .map_err(|e| Fail::Error(format!("connect to the broker: {e}")))?;
            let what = format!("open {dir} via the broker as a directory");
            let file = client
                .open(dir, OpenOptions::new().read(true).directory(true))
                .map_err(|e| crate::broker::refusal(&what, &e))?;
            Ok(file.into())
        }
        "open" => {
            let c = cstring(dir)?;
            let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
            // SAFETY: c is NUL-terminated; open returns a new descriptor or -1.
            let fd = unsafe { libc::open(c.as_ptr(), flags) };
            if fd < 0 {
                return Err(last_error(&format!("open {dir} as a directory")));
            }
            // SAFETY: fd was just returned by open and is owned by nobody else.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
        other => Err(usage(&format!("dir-beneath: unknown VIA {other}"))),
    }
}

fn openat(dirfd: &OwnedFd, dir: &str, rel: &str, flags: libc::c_int) -> Result<OwnedFd, Fail> {
    let c = cstring(rel)?;
    // SAFETY: dirfd is open; c is NUL-terminated; openat returns a new
    // descriptor or -1.
    let fd = unsafe { libc::openat(dirfd.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(last_error(&format!("openat({dir}, {rel})")));
    }
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn read(fd: OwnedFd, rel: &str) -> Step {
    let mut data = Vec::new();
    File::from(fd)
        .read_to_end(&mut data)
        .map_err(|e| crate::blocked(&format!("read {rel}"), &e))?;
    Ok(format!(
        "read {} bytes from {rel} beneath the directory: {}",
        data.len(),
        preview(&data)
    ))
}

fn execveat(dirfd: &OwnedFd, rel: &str, rest: &[&str]) -> Step {
    let path = cstring(rel)?;
    let mut argv: Vec<CString> = vec![path.clone()];
    for arg in rest {
        argv.push(cstring(arg)?);
    }
    let mut ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let mut envp: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    std::io::stdout().flush().ok();
    // A script run by execveat is given to its interpreter as
    // /dev/fd/N/REL, so the directory must stay open across the exec.
    // SAFETY: F_SETFD on an open descriptor.
    if unsafe { libc::fcntl(dirfd.as_raw_fd(), libc::F_SETFD, 0) } != 0 {
        return Err(usage("fcntl(F_SETFD) on the directory"));
    }
    // SAFETY: the path, argv and envp are NUL-terminated and both arrays
    // end in NULL; execveat only returns on failure.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            ptrs.as_ptr(),
            envp.as_ptr(),
            0,
        )
    };
    Err(last_error(&format!("execveat(dirfd, {rel})")))
}

fn climb(dirfd: &OwnedFd, ups: u64) -> Result<(), Fail> {
    // SAFETY: fchdir on an open descriptor.
    if unsafe { libc::fchdir(dirfd.as_raw_fd()) } != 0 {
        return Err(last_error("fchdir to the directory"));
    }
    for _ in 0..ups {
        // SAFETY: ".." is NUL-terminated.
        if unsafe { libc::chdir(c"..".as_ptr()) } != 0 {
            return Err(last_error("chdir .."));
        }
    }
    Ok(())
}
