//! The host: its kernel's release and random bytes.

/// The running kernel's release (`uname(2)`, "6.18.44-foo"); `None` when
/// uname fails.
pub fn kernel_release() -> Option<String> {
    // SAFETY: utsname is plain data (arrays of bytes), filled in by uname.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uts is a valid utsname to fill.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    // SAFETY: uname NUL-terminates release, which lives as long as `uts`.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    Some(release.to_string_lossy().into_owned())
}

/// Fills `buf` from the kernel's CSPRNG (one `getrandom(2)`, waiting for
/// the pool to be ready); whether all of it was filled.
pub fn random(buf: &mut [u8]) -> bool {
    // SAFETY: buf is valid for writes of its length.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    n == buf.len() as isize
}
