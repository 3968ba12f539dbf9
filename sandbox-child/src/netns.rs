//! The hosts mode's network (`[network] hosts`): a network namespace of the
//! program's own, with loopback up and nothing else, and listening sockets
//! made in it before exec and sent to the supervisor. A socket keeps the
//! namespace it was made in: the supervisor accepts the program's
//! connections on them and connects out in its own namespace (the proxy,
//! `supervisor::net`). Raw system calls only (runs between fork and exec).

use std::net::SocketAddr;

use crate::sys;

/// The most listening sockets one sandbox gets: the proxy and loopback
/// services.
pub const MAX_LISTENERS: usize = 8;

/// A listening address, as the child's `bind` takes it (built before fork).
pub struct PreparedListen {
    addr: libc::sockaddr_storage,
    len: libc::socklen_t,
    family: libc::c_int,
}

impl PreparedListen {
    pub fn new(at: SocketAddr) -> PreparedListen {
        // SAFETY: an all-zero sockaddr_storage is valid (AF_UNSPEC).
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let (len, family) = match at {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*v4.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write((&raw mut addr).cast(), sin) };
                (std::mem::size_of::<libc::sockaddr_in>(), libc::AF_INET)
            }
            SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: 0,
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { std::ptr::write((&raw mut addr).cast(), sin6) };
                (std::mem::size_of::<libc::sockaddr_in6>(), libc::AF_INET6)
            }
        };
        PreparedListen {
            addr,
            len: len as libc::socklen_t,
            family,
        }
    }
}

/// Enters a new network namespace (the caller holds CAP_SYS_ADMIN in its
/// user namespace), brings `lo` up, listens on each address and sends each
/// listening socket to the supervisor over `socket` as one `N` message.
/// Nothing is sent unless every socket was made.
pub fn private_network(listen: &[PreparedListen], socket: libc::c_int) -> Result<(), i32> {
    if listen.len() > MAX_LISTENERS {
        return Err(libc::E2BIG);
    }
    // SAFETY: unshare takes flags only; the process is single-threaded.
    sys::check(unsafe { libc::unshare(libc::CLONE_NEWNET) } as _)?;
    loopback_up()?;
    let mut fds = [-1; MAX_LISTENERS];
    let made = (|| {
        for (slot, l) in fds.iter_mut().zip(listen) {
            *slot = listener(l)?;
        }
        for &fd in &fds[..listen.len()] {
            sys::send_fds(socket, b"N", &[fd])?;
        }
        Ok(())
    })();
    for &fd in fds.iter().filter(|&&fd| fd >= 0) {
        // SAFETY: closing descriptors made above; the supervisor holds its copies.
        unsafe { libc::close(fd) };
    }
    made
}

fn loopback_up() -> Result<(), i32> {
    let kind = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes integers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, kind, 0) };
    let fd = sys::check(fd as _)? as libc::c_int;
    // SAFETY: an all-zero ifreq is valid; the name is copied in below.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write the ifreq, alive
    // for both calls; the flags are a union member of it.
    let up = unsafe {
        sys::check(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) as _).and_then(|_| {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            sys::check(libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) as _)
        })
    };
    // SAFETY: closing the socket made above.
    unsafe { libc::close(fd) };
    up.map(drop)
}

fn listener(l: &PreparedListen) -> Result<libc::c_int, i32> {
    // SAFETY: socket takes integers; the result is checked.
    let fd = sys::check(
        unsafe { libc::socket(l.family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) } as _,
    )? as libc::c_int;
    // SAFETY: addr holds a sockaddr of len bytes, prepared before fork.
    let bound = sys::check(unsafe { libc::bind(fd, (&raw const l.addr).cast(), l.len) } as _)
        // SAFETY: listen on the socket just bound.
        .and_then(|_| sys::check(unsafe { libc::listen(fd, 1024) } as _));
    match bound {
        Ok(_) => Ok(fd),
        Err(e) => {
            // SAFETY: closing the socket made above.
            unsafe { libc::close(fd) };
            Err(e)
        }
    }
}
