//! Which sockets each network mode lets the program make, alone and with
//! the notify filter of `mode = "none"`.

use super::*;

fn socket(prog: &Program, domain: i32, ty: i32, protocol: i32) -> u32 {
    let args = [domain as u64, ty as u64, protocol as u64];
    eval(prog, libc::SYS_socket, &args)
}

fn socketpair(prog: &Program, domain: i32, ty: i32) -> u32 {
    eval(
        prog,
        libc::SYS_socketpair,
        &[domain as u64, ty as u64, 0, 0],
    )
}

#[test]
fn unix_only_allows_just_unix_sockets() {
    let prog = Program::deny_filter(&rules(NetSyscalls::UnixOnly, false));
    for ty in [
        libc::SOCK_STREAM,
        libc::SOCK_DGRAM,
        libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
    ] {
        assert_eq!(socket(&prog, libc::AF_UNIX, ty, 0), ALLOW);
        assert_eq!(socketpair(&prog, libc::AF_UNIX, ty), ALLOW);
    }
    let unix_with_garbage = [
        libc::AF_UNIX as u64 | HIGH_GARBAGE,
        libc::SOCK_STREAM as u64,
    ];
    assert_eq!(eval(&prog, libc::SYS_socket, &unix_with_garbage), ALLOW);
    for domain in [
        libc::AF_INET,
        libc::AF_INET6,
        libc::AF_NETLINK,
        libc::AF_PACKET,
    ] {
        assert_eq!(socket(&prog, domain, libc::SOCK_STREAM, 0), EPERM);
        assert_eq!(socketpair(&prog, domain, libc::SOCK_STREAM), EPERM);
    }
    // AF_UNIX in the upper half of the register is not AF_UNIX to the kernel.
    let unix_high = [(libc::AF_UNIX as u64) << 32 | libc::AF_INET as u64];
    assert_eq!(eval(&prog, libc::SYS_socket, &unix_high), EPERM);
}

#[test]
fn tcp_only_allows_unix_and_tcp_streams() {
    let prog = Program::deny_filter(&rules(NetSyscalls::TcpOnly, false));
    let (stream, tcp) = (libc::SOCK_STREAM, libc::IPPROTO_TCP);
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    assert_eq!(socket(&prog, libc::AF_UNIX, libc::SOCK_DGRAM, 0), ALLOW);
    for domain in [libc::AF_INET, libc::AF_INET6] {
        assert_eq!(socket(&prog, domain, stream, 0), ALLOW);
        assert_eq!(socket(&prog, domain, stream, tcp), ALLOW);
        assert_eq!(socket(&prog, domain, stream | flags, tcp), ALLOW);
        assert_eq!(socket(&prog, domain, libc::SOCK_DGRAM, 0), EPERM);
        assert_eq!(socket(&prog, domain, libc::SOCK_RAW, 0), EPERM);
        assert_eq!(socket(&prog, domain, stream, libc::IPPROTO_SCTP), EPERM);
        assert_eq!(socket(&prog, domain, stream, libc::IPPROTO_MPTCP), EPERM);
        assert_eq!(socketpair(&prog, domain, stream), EPERM);
        let garbage = [
            domain as u64 | HIGH_GARBAGE,
            stream as u64 | HIGH_GARBAGE,
            HIGH_GARBAGE,
        ];
        assert_eq!(eval(&prog, libc::SYS_socket, &garbage), ALLOW);
    }
    for domain in [libc::AF_NETLINK, libc::AF_PACKET, libc::AF_VSOCK] {
        assert_eq!(socket(&prog, domain, stream, 0), EPERM);
    }
    assert_eq!(socketpair(&prog, libc::AF_UNIX, stream), ALLOW);
}

#[test]
fn all_leaves_sockets_alone() {
    let prog = Program::deny_filter(&rules(NetSyscalls::All, false));
    assert_eq!(socket(&prog, libc::AF_PACKET, libc::SOCK_RAW, 0), ALLOW);
    assert_eq!(socket(&prog, libc::AF_INET, libc::SOCK_DGRAM, 0), ALLOW);
    assert_eq!(socketpair(&prog, libc::AF_INET, libc::SOCK_STREAM), ALLOW);
}

#[test]
fn without_unix_datagrams_only_stream_and_seqpacket_unix_sockets_are_made() {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    for net in [
        NetSyscalls::UnixOnly,
        NetSyscalls::TcpOnly,
        NetSyscalls::All,
        NetSyscalls::UnixOnlyIpNotified,
    ] {
        let prog = Program::deny_filter(&SyscallRules {
            unix_datagrams: false,
            ..rules(net.clone(), true)
        });
        for ty in [libc::SOCK_STREAM, libc::SOCK_SEQPACKET] {
            for ty in [ty, ty | flags] {
                assert_eq!(socket(&prog, libc::AF_UNIX, ty, 0), ALLOW, "{net:?}");
                assert_eq!(socketpair(&prog, libc::AF_UNIX, ty), ALLOW, "{net:?}");
            }
        }
        // SOCK_RAW on AF_UNIX is a datagram socket to the kernel.
        for ty in [libc::SOCK_DGRAM, libc::SOCK_RAW, libc::SOCK_RDM] {
            for ty in [ty, ty | flags] {
                assert_eq!(socket(&prog, libc::AF_UNIX, ty, 0), EPERM, "{net:?}");
                assert_eq!(socketpair(&prog, libc::AF_UNIX, ty), EPERM, "{net:?}");
            }
        }
        // A stream type in the upper half is not a stream to the kernel.
        let dgram_high = [
            libc::AF_UNIX as u64,
            (libc::SOCK_STREAM as u64) << 32 | libc::SOCK_DGRAM as u64,
        ];
        assert_eq!(eval(&prog, libc::SYS_socket, &dgram_high), EPERM);
        // The other families are as `net` says.
        let udp = socket(&prog, libc::AF_INET, libc::SOCK_DGRAM, 0);
        let tcp = socket(&prog, libc::AF_INET, libc::SOCK_STREAM, 0);
        let (want_udp, want_tcp) = match net {
            NetSyscalls::UnixOnly => (EPERM, EPERM),
            NetSyscalls::TcpOnly => (EPERM, ALLOW),
            NetSyscalls::All => (ALLOW, ALLOW),
            // The notify filter's to decide.
            NetSyscalls::UnixOnlyIpNotified => (ALLOW, ALLOW),
        };
        assert_eq!((udp, tcp), (want_udp, want_tcp), "{net:?}");
    }
}

/// What the kernel does with the results of several filters: the most
/// severe action (the lowest `SECCOMP_RET_ACTION_FULL` as a signed number).
fn combined(results: &[u32]) -> u32 {
    let severity = |ret: u32| (ret & libc::SECCOMP_RET_ACTION_FULL) as i32;
    *results.iter().min_by_key(|&&ret| severity(ret)).unwrap()
}

/// `[network] mode = "none"` with a listener: the deny filter leaves IPv4
/// and IPv6 sockets to the notify filter, and the two together refuse
/// exactly what the deny filter alone refuses, except that those go to the
/// supervisor (which refuses them too) instead of failing silently.
#[test]
fn under_mode_none_ip_sockets_go_to_the_supervisor_and_nothing_more_is_allowed() {
    const NOTIF: u32 = libc::SECCOMP_RET_USER_NOTIF;
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let types = [
        libc::SOCK_STREAM,
        libc::SOCK_DGRAM,
        libc::SOCK_RAW,
        libc::SOCK_SEQPACKET,
        libc::SOCK_STREAM | flags,
        libc::SOCK_DGRAM | flags,
    ];
    for unix_datagrams in [true, false] {
        let base = SyscallRules {
            unix_datagrams,
            ..rules(NetSyscalls::UnixOnly, true)
        };
        let alone = Program::deny_filter(&base);
        let deferring = Program::deny_filter(&SyscallRules {
            net: NetSyscalls::UnixOnlyIpNotified,
            ..base.clone()
        });
        for transparent in [true, false] {
            let alone_spec = |ip| match transparent {
                true => filter::notify_spec(ip),
                false => filter::guard_spec(ip),
            };
            let notifying = Program::build(&alone_spec(true)).unwrap();
            let silent = Program::build(&alone_spec(false)).unwrap();
            // The program's one filter, both in one.
            let one = Program::supervised(&base, transparent, true);
            // Every family Linux has (AF_MAX is 46).
            for family in 0..46 {
                for ty in types {
                    let ip = family == libc::AF_INET || family == libc::AF_INET6;
                    let strict = socket(&alone, family, ty, 0);
                    let both = combined(&[
                        socket(&deferring, family, ty, 0),
                        socket(&notifying, family, ty, 0),
                    ]);
                    let want = if ip { NOTIF } else { strict };
                    assert_eq!(both, want, "family {family} type {ty:#x}");
                    assert_eq!(socket(&one, family, ty, 0), want);
                    if ip {
                        assert_eq!(strict, EPERM);
                    }
                    // A garbage upper half changes nothing: the kernel
                    // reads an int.
                    let high = [family as u64 | HIGH_GARBAGE, ty as u64, 0];
                    let both_high = combined(&[
                        eval(&deferring, libc::SYS_socket, &high),
                        eval(&notifying, libc::SYS_socket, &high),
                    ]);
                    assert_eq!(both_high, want, "family {family} type {ty:#x}");
                    // Without `ip_sockets` nothing is notified.
                    assert_eq!(socket(&silent, family, ty, 0), ALLOW);
                    // A socket pair is never notified, and as before.
                    let pair = combined(&[
                        socketpair(&deferring, family, ty),
                        socketpair(&notifying, family, ty),
                    ]);
                    assert_eq!(pair, socketpair(&alone, family, ty));
                    assert_eq!(socketpair(&one, family, ty), pair);
                }
            }
        }
    }
}

#[test]
fn tcp_only_refuses_fast_open_sends_which_skip_connect() {
    let tcp = Program::deny_filter(&rules(NetSyscalls::TcpOnly, false));
    let fo = libc::MSG_FASTOPEN as u64;
    let other = libc::MSG_NOSIGNAL as u64 | libc::MSG_DONTWAIT as u64;
    // sendto(fd, buf, len, flags, addr, addrlen) / sendmmsg(fd, vec, n, flags)
    for nr in [libc::SYS_sendto, libc::SYS_sendmmsg] {
        assert_eq!(eval(&tcp, nr, &[3, 0, 1, fo | other]), EPERM);
        assert_eq!(eval(&tcp, nr, &[3, 0, 1, other]), ALLOW);
    }
    // sendmsg(fd, msg, flags)
    assert_eq!(eval(&tcp, libc::SYS_sendmsg, &[3, 0, fo]), EPERM);
    assert_eq!(eval(&tcp, libc::SYS_sendmsg, &[3, 0, other]), ALLOW);
    // Other modes need no such rule: no TCP socket exists (none) or every
    // port is allowed anyway (all).
    for net in [NetSyscalls::UnixOnly, NetSyscalls::All] {
        let prog = Program::deny_filter(&rules(net, false));
        assert_eq!(eval(&prog, libc::SYS_sendto, &[3, 0, 1, fo]), ALLOW);
    }
}
