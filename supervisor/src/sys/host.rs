//! The host: its kernel's release, the file clock, random bytes and its own addresses.

use std::io;

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

/// The time by the clock the kernel stamps files with
/// (`CLOCK_REALTIME_COARSE`; a fine-grained stamp is never earlier), as
/// seconds and nanoseconds since the epoch; the epoch if it fails.
pub fn file_clock() -> (i64, i64) {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill; on an error
    // it is left at the epoch.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) };
    (now.tv_sec, now.tv_nsec)
}

/// Fills `buf` from the kernel's CSPRNG (one `getrandom(2)`, waiting for
/// the pool to be ready); whether all of it was filled.
pub fn random(buf: &mut [u8]) -> bool {
    // SAFETY: buf is valid for writes of its length.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    n == buf.len() as isize
}

/// The addresses of this network namespace's interfaces, loopback ones
/// left out (the loopback range is judged by itself): where this machine
/// answers besides `127.0.0.0/8` and `::1`.
pub fn interface_addresses() -> io::Result<Vec<std::net::IpAddr>> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list it allocated into `list`, freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut at = list;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list getifaddrs made, alive until
        // freeifaddrs below.
        let entry = unsafe { &*at };
        at = entry.ifa_next;
        let loopback = entry.ifa_flags & libc::IFF_LOOPBACK as libc::c_uint != 0;
        if loopback || entry.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: a non-null address of the node; its family says which
        // structure it is, and the kernel made it that size.
        let ip = unsafe {
            match i32::from((*entry.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*entry.ifa_addr.cast::<libc::sockaddr_in>();
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sin6 = &*entry.ifa_addr.cast::<libc::sockaddr_in6>();
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            }
        };
        found.push(ip);
    }
    // SAFETY: the list getifaddrs made, no longer used.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}
