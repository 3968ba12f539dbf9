//! The only macOS-specific code: `sandbox_init` in the child.
//!
//! `sandbox_init(3)` is deprecated but remains the documented entry point to
//! Seatbelt (libsandbox, part of libSystem); with flags 0 it compiles and
//! applies the SBPL text it is given, for this process and everything it
//! execs. It allocates, which is fine after a fork from a single-threaded
//! supervisor (sluice forks before starting any thread).

use std::ffi::CStr;
use std::os::fd::RawFd;
use std::os::raw::{c_char, c_int};

use super::failure;

extern "C" {
    fn sandbox_init(profile: *const c_char, flags: u64, errorbuf: *mut *mut c_char) -> c_int;
    fn sandbox_free_error(errorbuf: *mut c_char);
}

/// Applies `profile` to this process. On failure, writes the error string
/// to `report_fd` (the launch pipe, see [`failure`]) and returns `Err`
/// with the errno; the caller must then exit without exec.
///
/// # Safety
/// Must be called in the child after `fork()` and before `exec`, with
/// `report_fd` the write end of the launch pipe.
pub unsafe fn apply_in_child(profile: &CStr, report_fd: RawFd) -> Result<(), i32> {
    let mut error: *mut c_char = std::ptr::null_mut();
    // SAFETY: profile is NUL-terminated and outlives the call; error is a
    // valid out-pointer that sandbox_init sets on failure only.
    let rc = unsafe { sandbox_init(profile.as_ptr(), 0, &mut error) };
    if rc == 0 {
        return Ok(());
    }
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let message: &[u8] = if error.is_null() {
        b"sandbox_init failed without a message"
    } else {
        // SAFETY: sandbox_init returned a NUL-terminated string, freed below.
        unsafe { CStr::from_ptr(error) }.to_bytes()
    };
    let mut buf = [0u8; failure::MAX_ENCODED];
    let len = failure::encode(errno, message, &mut buf);
    let mut sent = 0;
    while sent < len {
        // SAFETY: writing the initialised part of buf to our own descriptor.
        let n = unsafe { libc::write(report_fd, buf[sent..len].as_ptr().cast(), len - sent) };
        if n <= 0 {
            break; // The supervisor stopped listening; we exit anyway.
        }
        sent += n as usize;
    }
    if !error.is_null() {
        // SAFETY: error came from sandbox_init and is freed once.
        unsafe { sandbox_free_error(error) };
    }
    Err(errno)
}
