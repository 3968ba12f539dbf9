//! Sockets: TCP, UDP and AF_UNIX (abstract and path).

use std::ffi::{c_char, c_int};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::{last_error, usage, Fail, Step};

fn socket(domain: c_int, kind: c_int) -> Result<OwnedFd, Fail> {
    // SAFETY: socket has no memory arguments.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last_error(&format!("socket(domain {domain}, type {kind})")));
    }
    // SAFETY: fd was just returned by socket.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A socket address in storage big enough for any family, with its length.
struct Addr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
    family: c_int,
}

impl Addr {
    fn ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }
}

fn inet_addr(host: &str, port: &str) -> Result<Addr, Fail> {
    let ip: IpAddr = host
        .parse()
        .map_err(|_| usage(&format!("not an IP address: {host}")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| usage(&format!("not a port: {port}")))?;
    // SAFETY: sockaddr_storage is plain old data; all zeroes is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let (len, family) = match ip {
        IpAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(v4).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            (size_of::<libc::sockaddr_in>(), libc::AF_INET)
        }
        IpAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: port.to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            (size_of::<libc::sockaddr_in6>(), libc::AF_INET6)
        }
    };
    Ok(Addr {
        storage,
        len: len as libc::socklen_t,
        family,
    })
}

fn unix_addr(path: &[u8]) -> Result<Addr, Fail> {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
    let sun =
        unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_un>() };
    if path.len() >= sun.sun_path.len() {
        return Err(usage("unix socket path too long"));
    }
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in sun.sun_path.iter_mut().zip(path) {
        *dst = *src as c_char;
    }
    let offset = std::mem::offset_of!(libc::sockaddr_un, sun_path);
    Ok(Addr {
        storage,
        len: (offset + path.len()) as libc::socklen_t,
        family: libc::AF_UNIX,
    })
}

fn path_addr(path: &str) -> Result<Addr, Fail> {
    let mut bytes = path.as_bytes().to_vec();
    bytes.push(0);
    unix_addr(&bytes)
}

fn abstract_addr(name: &str) -> Result<Addr, Fail> {
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(name.as_bytes());
    unix_addr(&bytes)
}

fn connect(fd: &OwnedFd, addr: &Addr, what: &str) -> Result<(), Fail> {
    // SAFETY: addr points to a valid socket address of addr.len bytes.
    if unsafe { libc::connect(fd.as_raw_fd(), addr.ptr(), addr.len) } != 0 {
        return Err(last_error(&format!("connect {what}")));
    }
    Ok(())
}

pub(crate) fn tcp_connect(host: &str, port: &str) -> Step {
    let addr = inet_addr(host, port)?;
    let fd = socket(addr.family, libc::SOCK_STREAM)?;
    connect(&fd, &addr, &format!("tcp {host}:{port}"))?;
    Ok(format!("connected to tcp {host}:{port}"))
}

pub(crate) fn udp_send(host: &str, port: &str) -> Step {
    let addr = inet_addr(host, port)?;
    let fd = socket(addr.family, libc::SOCK_DGRAM)?;
    let msg = b"pwned";
    // SAFETY: msg and addr are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            addr.ptr(),
            addr.len,
        )
    };
    if sent < 0 {
        return Err(last_error(&format!("sendto udp {host}:{port}")));
    }
    Ok(format!("sent {sent} bytes to udp {host}:{port}"))
}

pub(crate) fn tcp_bind(port: &str) -> Step {
    let addr = inet_addr("127.0.0.1", port)?;
    let fd = socket(addr.family, libc::SOCK_STREAM)?;
    // SAFETY: addr points to a valid socket address of addr.len bytes.
    if unsafe { libc::bind(fd.as_raw_fd(), addr.ptr(), addr.len) } != 0 {
        return Err(last_error(&format!("bind tcp 127.0.0.1:{port}")));
    }
    // SAFETY: listen has no memory arguments.
    if unsafe { libc::listen(fd.as_raw_fd(), 1) } != 0 {
        return Err(last_error(&format!("listen tcp 127.0.0.1:{port}")));
    }
    Ok(format!("listening on tcp 127.0.0.1:{port}"))
}

fn unix_connect(addr: &Addr, what: &str) -> Step {
    let fd = socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
    connect(&fd, addr, &format!("unix {what}"))?;
    Ok(format!("connected to unix {what}"))
}

/// Binds an abstract socket and connects to it: AF_UNIX within the sandbox.
pub(crate) fn abstract_self(name: &str) -> Step {
    let addr = abstract_addr(name)?;
    let listener = socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
    // SAFETY: addr points to a valid socket address of addr.len bytes.
    if unsafe { libc::bind(listener.as_raw_fd(), addr.ptr(), addr.len) } != 0 {
        return Err(last_error(&format!("bind unix @{name}")));
    }
    // SAFETY: listen has no memory arguments.
    if unsafe { libc::listen(listener.as_raw_fd(), 1) } != 0 {
        return Err(last_error(&format!("listen unix @{name}")));
    }
    unix_connect(&addr, &format!("@{name}"))
}

pub(crate) fn abstract_connect(name: &str) -> Step {
    unix_connect(&abstract_addr(name)?, &format!("@{name}"))
}

pub(crate) fn path_connect(path: &str) -> Step {
    unix_connect(&path_addr(path)?, path)
}

/// Sends "pwned" on `fd` to `addr` with `flags`, through `via`: `sendto`,
/// `sendmsg` or `sendmmsg`; the bytes sent.
fn send_to(fd: &OwnedFd, addr: &Addr, via: &str, flags: c_int) -> Result<isize, Fail> {
    let mut msg = *b"pwned";
    let mut iov = libc::iovec {
        iov_base: msg.as_mut_ptr().cast(),
        iov_len: msg.len(),
    };
    // SAFETY: msghdr is plain old data; all zeroes is valid.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_name = addr.ptr().cast_mut().cast();
    hdr.msg_namelen = addr.len;
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    let fd = fd.as_raw_fd();
    Ok(match via {
        // SAFETY: the buffer and address outlive the call, valid for their lengths.
        "sendto" => unsafe {
            libc::sendto(
                fd,
                msg.as_ptr().cast(),
                msg.len(),
                flags,
                addr.ptr(),
                addr.len,
            )
        },
        // SAFETY: hdr, its iovec and the address outlive the call.
        "sendmsg" => unsafe { libc::sendmsg(fd, &hdr, flags) },
        "sendmmsg" => {
            let mut mmsg = libc::mmsghdr {
                msg_hdr: hdr,
                msg_len: 0,
            };
            // SAFETY: mmsg, its iovec and the address outlive the call.
            let n = unsafe { libc::sendmmsg(fd, &mut mmsg, 1, flags as _) };
            if n == 1 {
                mmsg.msg_len as isize
            } else {
                n as isize
            }
        }
        _ => return Err(usage(&format!("unknown way to send: {via}"))),
    })
}

/// TCP Fast Open: `MSG_FASTOPEN` on sendto, sendmsg or sendmmsg connects
/// implicitly, without connect(2) and so without the hook connect(2) passes.
pub(crate) fn tcp_fastopen(host: &str, port: &str, via: &str) -> Step {
    let addr = inet_addr(host, port)?;
    let fd = socket(addr.family, libc::SOCK_STREAM)?;
    let sent = send_to(&fd, &addr, via, libc::MSG_FASTOPEN)?;
    if sent < 0 {
        return Err(last_error(&format!(
            "{via}(MSG_FASTOPEN) tcp {host}:{port}"
        )));
    }
    Ok(format!(
        "{via} sent {sent} bytes to tcp {host}:{port} via TCP Fast Open"
    ))
}

/// `unix-send PATH VIA`: a datagram to the socket file PATH, which needs no
/// `connect`. VIA is `sendto`, `sendmsg` or `sendmmsg` on a new
/// `SOCK_DGRAM` socket; `raw` (`sendto` on `SOCK_RAW`, which AF_UNIX makes
/// a datagram socket); or `pair` (`sendto` from one end of a datagram
/// socketpair, whose address overrides its peer).
pub(crate) fn unix_send(path: &str, via: &str) -> Step {
    let addr = path_addr(path)?;
    let (fd, call) = match via {
        "raw" => (socket(libc::AF_UNIX, libc::SOCK_RAW)?, "sendto"),
        "pair" => {
            let mut fds = [0; 2];
            let ty = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC;
            // SAFETY: fds has room for the two descriptors.
            if unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) } != 0 {
                return Err(last_error("socketpair(AF_UNIX, SOCK_DGRAM)"));
            }
            // SAFETY: both were just returned by socketpair; the peer closes
            // at once.
            drop(unsafe { OwnedFd::from_raw_fd(fds[1]) });
            // SAFETY: as above.
            (unsafe { OwnedFd::from_raw_fd(fds[0]) }, "sendto")
        }
        _ => (socket(libc::AF_UNIX, libc::SOCK_DGRAM)?, via),
    };
    let sent = send_to(&fd, &addr, call, 0)?;
    if sent < 0 {
        return Err(last_error(&format!("{via} unix {path}")));
    }
    Ok(format!("{via} sent {sent} bytes to unix {path}"))
}

/// Creates a socket of a family other than the ones sluice's modes grant.
pub(crate) fn socket_of(kind: &str) -> Step {
    let (domain, ty, protocol) = match kind {
        "inet6-stream" => (libc::AF_INET6, libc::SOCK_STREAM, 0),
        "inet-raw" => (libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
        "netlink" => (libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE),
        "packet" => (libc::AF_PACKET, libc::SOCK_RAW, 0),
        _ => return Err(usage(&format!("unknown socket kind {kind}"))),
    };
    // SAFETY: socket has no memory arguments.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(last_error(&format!("socket({kind})")));
    }
    // SAFETY: fd was just returned by socket.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(format!("created a {kind} socket"))
}

/// listen(2) on a socket never bound: the kernel binds it to an ephemeral port
/// itself, without the bind(2) hook.
pub(crate) fn tcp_listen_unbound() -> Step {
    let fd = socket(libc::AF_INET, libc::SOCK_STREAM)?;
    // SAFETY: listen has no memory arguments.
    if unsafe { libc::listen(fd.as_raw_fd(), 1) } != 0 {
        return Err(last_error("listen on an unbound tcp socket"));
    }
    // SAFETY: sockaddr_in is plain old data; getsockname fills at most len bytes.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: sin and len are valid for writing.
    let ret = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut sin as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    if ret != 0 {
        return Err(last_error("getsockname"));
    }
    let port = u16::from_be(sin.sin_port);
    Ok(format!("listening on tcp port {port} without bind"))
}
