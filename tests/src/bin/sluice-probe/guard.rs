//! Calls the guard carries out for the program, tried where a carrier
//! that checks first and acts after could be raced or misled: `openat2`
//! with `RESOLVE_*` restrictions (flags and resolution named by words), an
//! unnamed file given a name, a descriptor number swapped during `fchmod`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::{cstring, last_error, usage, Step};

/// `FLAGS`: `rdonly`, `wronly` or `rdwr`, then any of `creat`, `excl`,
/// `trunc`, `tmpfile`, `directory`, `nofollow`, `path`, joined by `,`.
fn flags(words: &str) -> Result<u64, crate::Fail> {
    let mut flags = libc::O_CLOEXEC;
    for word in words.split(',') {
        flags |= match word {
            "rdonly" => libc::O_RDONLY,
            "wronly" => libc::O_WRONLY,
            "rdwr" => libc::O_RDWR,
            "creat" => libc::O_CREAT,
            "excl" => libc::O_EXCL,
            "trunc" => libc::O_TRUNC,
            "tmpfile" => libc::O_TMPFILE,
            "directory" => libc::O_DIRECTORY,
            "nofollow" => libc::O_NOFOLLOW,
            "path" => libc::O_PATH,
            _ => return Err(usage(&format!("unknown open flag {word}"))),
        };
    }
    Ok(flags as u32 as u64)
}

/// `RESOLVE`: `none`, or any of `beneath`, `in-root`, `no-symlinks`,
/// `no-magiclinks`, `no-xdev`, joined by `,`.
fn resolve(words: &str) -> Result<u64, crate::Fail> {
    let mut resolve = 0;
    for word in words.split(',') {
        resolve |= match word {
            "none" => 0,
            "beneath" => libc::RESOLVE_BENEATH,
            "in-root" => libc::RESOLVE_IN_ROOT,
            "no-symlinks" => libc::RESOLVE_NO_SYMLINKS,
            "no-magiclinks" => libc::RESOLVE_NO_MAGICLINKS,
            "no-xdev" => libc::RESOLVE_NO_XDEV,
            _ => return Err(usage(&format!("unknown resolve flag {word}"))),
        };
    }
    Ok(resolve)
}

/// Opens `path` (relative to the working directory) so; OK with the
/// opened file's mode and size, which the test compares with what it
/// finds on disk afterwards.
pub(crate) fn openat2(path: &str, flag_words: &str, resolve_words: &str, mode: &str) -> Step {
    let mode = u64::from_str_radix(mode, 8).map_err(|_| usage(&format!("bad mode {mode}")))?;
    let how: [u64; 3] = [flags(flag_words)?, mode, resolve(resolve_words)?];
    let c_path = cstring(path)?;
    // SAFETY: a NUL-terminated path and a 24-byte open_how that outlives
    // the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            how.as_ptr(),
            24usize,
        )
    };
    if rc < 0 {
        return Err(last_error(&format!("openat2 {path}")));
    }
    // SAFETY: a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(rc as libc::c_int) };
    // SAFETY: an all-zero stat is valid; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open; `st` is a valid out-pointer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(last_error("fstat"));
    }
    Ok(format!(
        "openat2 {path} mode {:o} size {}",
        st.st_mode & 0o7777,
        st.st_size
    ))
}

/// `tmpfile-link DIR DST VIA`: an unnamed file made in DIR (`O_TMPFILE`,
/// mode 0755), written, then given the name DST by `linkat`: VIA `proc`
/// (its `/proc/self/fd` link, `AT_SYMLINK_FOLLOW`) or `empty-path`
/// (`AT_EMPTY_PATH` on the descriptor, which needs `CAP_DAC_READ_SEARCH`).
pub(crate) fn tmpfile_link(dir: &str, dst: &str, via: &str) -> Step {
    use std::io::Write;
    let c_dir = cstring(dir)?;
    let c_dst = cstring(dst)?;
    let flags = libc::O_RDWR | libc::O_TMPFILE | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated path, flags and a mode.
    let fd = unsafe { libc::open(c_dir.as_ptr(), flags, 0o755) };
    if fd < 0 {
        return Err(last_error(&format!("O_TMPFILE in {dir}")));
    }
    // SAFETY: a new descriptor that nothing else owns.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(b"#!/bin/sh\necho planted\n")
        .map_err(|e| crate::blocked("write the unnamed file", &e))?;
    match via {
        "proc" => crate::privs::link_tmpfile(&file, &c_dst)?,
        "empty-path" => {
            // SAFETY: an open descriptor, an empty path and a NUL-terminated one.
            let rc = unsafe {
                libc::linkat(
                    fd,
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    c_dst.as_ptr(),
                    libc::AT_EMPTY_PATH,
                )
            };
            if rc != 0 {
                return Err(last_error(&format!("linkat {dst} by {via}")));
            }
        }
        _ => return Err(usage(&format!("unknown way to link: {via}"))),
    }
    Ok(format!("linked an unnamed file to {dst} by {via}"))
}

/// `fchmod-race PROTECTED OWN N`: both files opened for reading; another
/// thread points one descriptor number at each in turn (`dup2`) while this
/// one asks `fchmod(number, 0755)` up to N times: a check of the descriptor's
/// file followed by a change made through the number would make PROTECTED
/// executable. OK (the attack worked) when PROTECTED ends up with an
/// execute bit; BLOCKED otherwise, saying how many changes OWN got.
pub(crate) fn fchmod_race(protected: &str, own: &str, iterations: u64) -> Step {
    use std::os::unix::fs::PermissionsExt;
    let open =
        |path: &str| std::fs::File::open(path).map_err(|e| usage(&format!("open {path}: {e}")));
    let (protected_file, own_file) = (open(protected)?, open(own)?);
    let (p, o) = (protected_file.as_raw_fd(), own_file.as_raw_fd());
    // SAFETY: a copy of an open descriptor, closed when the probe exits.
    let number = unsafe { libc::dup(o) };
    if number < 0 {
        return Err(last_error("dup"));
    }
    let swapper = crate::Racer::start(move |i| {
        // SAFETY: both descriptors stay open until the race is finished.
        unsafe { libc::dup2(if i % 2 == 0 { p } else { o }, number) };
        Ok(())
    });
    let mode_now = || {
        std::fs::metadata(protected)
            .map(|m| m.permissions().mode())
            .map_err(|e| usage(&format!("stat {protected}: {e}")))
    };
    let mut changed = 0u64;
    for i in 0..iterations {
        // SAFETY: fchmod on a descriptor number; a failure is counted out.
        if unsafe { libc::fchmod(number, 0o755) } == 0 {
            changed += 1;
        }
        if i % 64 == 0 && mode_now()? & 0o111 != 0 {
            break;
        }
    }
    swapper.finish("swapping the descriptor")?;
    let mode = mode_now()?;
    if mode & 0o111 != 0 {
        Ok(format!(
            "{protected} made executable (mode {:o})",
            mode & 0o7777
        ))
    } else {
        Err(crate::Fail::Blocked(format!(
            "{protected} kept mode {:o}; {changed} of {iterations} changes made",
            mode & 0o7777
        )))
    }
}
