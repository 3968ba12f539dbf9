//! The deny filter's behaviour, checked in the BPF interpreter.

use super::bpf;
use super::interp::{self, Syscall};
use super::spec::{self, ArgCheck, Clause};
use super::*;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// A garbage upper word, as a caller may leave in a 64-bit register that
/// holds an `int` argument.
const HIGH_GARBAGE: u64 = 0xdead_beef_0000_0000;

fn rules(net: NetSyscalls, deny_user_namespaces: bool) -> SyscallRules {
    SyscallRules {
        net,
        deny_user_namespaces,
        unix_datagrams: true,
        ptrace: false,
    }
}

fn strict() -> Program {
    Program::deny_filter(&rules(NetSyscalls::UnixOnly, true))
}

fn eval(prog: &Program, nr: libc::c_long, args: &[u64]) -> u32 {
    interp::run(prog.instructions(), Syscall::native(nr, args))
}

fn every_rule_combination() -> Vec<SyscallRules> {
    let nets = [
        NetSyscalls::UnixOnly,
        NetSyscalls::TcpOnly,
        NetSyscalls::All,
        NetSyscalls::UnixOnlyIpNotified,
    ];
    let no_datagrams = |rules| SyscallRules {
        unix_datagrams: false,
        ..rules
    };
    nets.iter()
        .flat_map(|net| [rules(net.clone(), false), rules(net.clone(), true)])
        .flat_map(|rules| [rules.clone(), no_datagrams(rules)])
        .collect()
}

fn nr_of(name: &str) -> libc::c_long {
    filter::deny_spec(&rules(NetSyscalls::UnixOnly, true))
        .rules
        .iter()
        .find(|rule| rule.name == name)
        .unwrap_or_else(|| panic!("{name} is not in the table"))
        .nr
}

#[test]
fn every_combination_compiles_to_a_valid_program() {
    for rules in every_rule_combination() {
        let prog = Program::deny_filter(&rules);
        interp::validate(prog.instructions());
        assert!(prog.len() <= libc::BPF_MAXINSNS as usize);
        assert!(!prog.is_empty());
        let fprog = prog.as_fprog();
        assert_eq!(usize::from(fprog.len), prog.len());
        assert_eq!(fprog.filter.cast_const(), prog.instructions().as_ptr());
    }
}

#[test]
fn fixed_denials_return_eperm_whatever_the_arguments() {
    let prog = strict();
    let names = [
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "pidfd_getfd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "open_by_handle_at",
        "name_to_handle_at",
        "mount",
        "umount2",
        "pivot_root",
        "move_mount",
        "open_tree",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
        "bpf",
        "perf_event_open",
        "keyctl",
        "add_key",
        "request_key",
        "userfaultfd",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "acct",
        "swapon",
        "swapoff",
        "reboot",
        "sethostname",
        "setdomainname",
        "quotactl",
        "quotactl_fd",
        "fanotify_init",
        "lookup_dcookie",
        "vhangup",
        "syslog",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
        "chroot",
        "nfsservctl",
        #[cfg(target_arch = "x86_64")]
        "iopl",
        #[cfg(target_arch = "x86_64")]
        "ioperm",
        #[cfg(target_arch = "x86_64")]
        "uselib",
    ];
    for name in names {
        let nr = nr_of(name);
        assert_eq!(eval(&prog, nr, &[]), EPERM, "{name}");
        assert_eq!(eval(&prog, nr, &[u64::MAX; 6]), EPERM, "{name}");
    }
}

#[test]
fn table_numbers_match_libc() {
    let expected = [
        ("ptrace", libc::SYS_ptrace),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("nfsservctl", libc::SYS_nfsservctl),
        ("clone3", libc::SYS_clone3),
    ];
    for (name, nr) in expected {
        assert_eq!(nr_of(name), nr, "{name}");
    }
}

#[test]
fn denied_names_cover_every_refusing_rule() {
    for rules in every_rule_combination() {
        let names = denied_syscall_names(&rules);
        let spec = filter::deny_spec(&rules);
        assert_eq!(
            names.len() + 1,
            spec.rules.len(),
            "every rule in the table but the nesting marker refuses something"
        );
        assert!(!names.contains(&"prctl"), "the marker refuses nothing");
        for must in [
            "ptrace",
            "mount",
            "memfd_create",
            "ioctl",
            "fchmodat",
            "openat",
        ] {
            assert!(names.contains(&must), "{must}");
        }
        let net_filtered = rules.net != NetSyscalls::All || !rules.unix_datagrams;
        assert_eq!(names.contains(&"socket"), net_filtered);
        assert_eq!(names.contains(&"socketpair"), net_filtered);
        for userns in ["clone", "clone3", "unshare", "setns"] {
            assert_eq!(
                names.contains(&userns),
                rules.deny_user_namespaces,
                "{userns}"
            );
        }
        for nested in ["prctl", "landlock_restrict_self", "read"] {
            assert!(!names.contains(&nested), "{nested}");
        }
        // Refused for some arguments only: a listener of the program's own.
        assert!(names.contains(&"seccomp"));
    }
}

#[test]
fn common_syscalls_are_allowed() {
    let prog = strict();
    let calls: &[(libc::c_long, &[u64])] = &[
        (libc::SYS_read, &[0, 0, 0]),
        (libc::SYS_write, &[1, 0, 0]),
        (libc::SYS_openat, &[libc::AT_FDCWD as u64, 0, 0]),
        (libc::SYS_close, &[3]),
        (libc::SYS_execve, &[]),
        (libc::SYS_mmap, &[0, 4096, 3, 0x22, u64::MAX, 0]),
        (
            libc::SYS_clone,
            &[(libc::CLONE_VM | libc::CLONE_THREAD) as u64],
        ),
        (libc::SYS_clone, &[libc::SIGCHLD as u64]),
        (
            libc::SYS_socket,
            &[libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0],
        ),
        (libc::SYS_getpid, &[]),
        (libc::SYS_exit_group, &[0]),
        (libc::SYS_seccomp, &[1, 0, 0]),
        (libc::SYS_prctl, &[libc::PR_SET_NO_NEW_PRIVS as u64, 1]),
        (libc::SYS_landlock_create_ruleset, &[]),
        (libc::SYS_landlock_add_rule, &[]),
        (libc::SYS_landlock_restrict_self, &[]),
    ];
    for &(nr, args) in calls {
        assert_eq!(eval(&prog, nr, args), ALLOW, "syscall {nr} {args:?}");
    }
}

#[test]
fn seccomp_listeners_are_refused_but_filters_are_not() {
    let prog = strict();
    let filter = u64::from(libc::SECCOMP_SET_MODE_FILTER);
    let listener = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    let seccomp = |op: u64, flags: u64| eval(&prog, libc::SYS_seccomp, &[op, flags, 0]);
    assert_eq!(seccomp(filter, listener), EPERM);
    assert_eq!(
        seccomp(filter, listener | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH),
        EPERM
    );
    // Garbage in the upper half of the register changes nothing.
    assert_eq!(seccomp(filter, 0xdead_0000_0000_0000 | listener), EPERM);
    // Controls: a filter without a listener, other operations.
    assert_eq!(seccomp(filter, 0), ALLOW);
    assert_eq!(seccomp(filter, libc::SECCOMP_FILTER_FLAG_LOG), ALLOW);
    assert_eq!(seccomp(filter, 0xdead_0000_0000_0000), ALLOW);
    assert_eq!(
        seccomp(u64::from(libc::SECCOMP_GET_ACTION_AVAIL), listener),
        ALLOW
    );
}

#[test]
fn foreign_architecture_is_killed() {
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    let prog = strict();
    for nr in [libc::SYS_getpid, libc::SYS_ptrace, 20] {
        let call = Syscall {
            arch: AUDIT_ARCH_I386,
            ..Syscall::native(nr, &[])
        };
        assert_eq!(interp::run(prog.instructions(), call), KILL);
    }
}

#[test]
fn x32_abi_is_killed_on_x86_64() {
    let prog = strict();
    let x32 = |nr: libc::c_long| Syscall {
        nr: 0x4000_0000 | nr as i32,
        ..Syscall::native(0, &[])
    };
    let expected = if cfg!(target_arch = "x86_64") {
        KILL
    } else {
        ALLOW
    };
    for nr in [libc::SYS_getpid, libc::SYS_read] {
        assert_eq!(interp::run(prog.instructions(), x32(nr)), expected);
    }
    // A negative number is above the x32 bit as an unsigned word.
    let negative = Syscall {
        nr: -1,
        ..Syscall::native(0, &[])
    };
    assert_eq!(interp::run(prog.instructions(), negative), expected);
}

#[test]
fn prctl_answers_the_nesting_marker_and_nothing_else() {
    let marker = u64::from(super::NESTING_MARKER_OPTION);
    for rules in every_rule_combination() {
        let prog = Program::deny_filter(&rules);
        let errno = libc::SECCOMP_RET_ERRNO | u32::from(super::NESTING_MARKER_ERRNO);
        assert_eq!(eval(&prog, libc::SYS_prctl, &[marker]), errno);
        assert_eq!(
            eval(&prog, libc::SYS_prctl, &[marker | HIGH_GARBAGE]),
            errno
        );
        for option in [
            libc::PR_SET_NO_NEW_PRIVS,
            libc::PR_GET_SECCOMP,
            libc::PR_SET_PDEATHSIG,
        ] {
            let option = option as u64;
            assert_eq!(eval(&prog, libc::SYS_prctl, &[option]), ALLOW);
            assert_eq!(eval(&prog, libc::SYS_prctl, &[marker + 1]), ALLOW);
        }
    }
}

#[test]
fn memfd_create_needs_noexec_seal() {
    let prog = strict();
    let seal = u64::from(libc::MFD_NOEXEC_SEAL);
    let cloexec = u64::from(libc::MFD_CLOEXEC);
    let memfd = |flags: u64| eval(&prog, libc::SYS_memfd_create, &[0x1000, flags]);
    assert_eq!(memfd(0), EPERM);
    assert_eq!(memfd(cloexec), EPERM);
    assert_eq!(memfd(u64::from(libc::MFD_EXEC)), EPERM);
    // The flag must be in the word the kernel reads, not the upper half.
    assert_eq!(memfd(seal << 32), EPERM);
    assert_eq!(memfd(seal), ALLOW);
    assert_eq!(memfd(seal | cloexec | HIGH_GARBAGE), ALLOW);
}

#[test]
fn no_call_that_sets_a_mode_sets_a_set_id_bit() {
    let prog = strict();
    let (suid, sgid) = (u64::from(libc::S_ISUID), u64::from(libc::S_ISGID));
    let fd = libc::AT_FDCWD as u64;
    // (name, the mode's argument, the arguments before it)
    let mut calls: Vec<(&str, usize, Vec<u64>)> = vec![
        ("fchmod", 1, vec![3]),
        ("fchmodat", 2, vec![fd, 0x1000]),
        ("fchmodat2", 2, vec![fd, 0x1000]),
        ("mknodat", 2, vec![fd, 0x1000]),
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        ("chmod", 1, vec![0x1000]),
        ("creat", 1, vec![0x1000]),
        ("mknod", 1, vec![0x1000]),
    ]);
    for (name, at, before) in calls {
        let nr = nr_of(name);
        let call = |mode: u64| {
            let mut args = before.clone();
            args.insert(at, mode);
            eval(&prog, nr, &args)
        };
        assert_eq!(call(0o4755), EPERM, "{name}");
        assert_eq!(call(0o2755), EPERM, "{name}");
        assert_eq!(call(sgid | suid | HIGH_GARBAGE), EPERM, "{name}");
        assert_eq!(call(u64::from(libc::S_IFREG) | suid), EPERM, "{name}");
        assert_eq!(call(0o755), ALLOW, "{name}");
        assert_eq!(call(0o1777 | HIGH_GARBAGE), ALLOW, "{name}");
        assert_eq!(
            call(suid << 32),
            ALLOW,
            "{name}: the kernel reads the low word"
        );
    }
    assert_eq!(nr_of("fchmodat2"), 452);
}

#[test]
fn a_creating_open_cannot_set_a_set_id_bit() {
    let prog = strict();
    let (creat, tmpfile) = (libc::O_CREAT as u64, libc::O_TMPFILE as u64);
    let rdwr = libc::O_RDWR as u64;
    let fd = libc::AT_FDCWD as u64;
    let openat = |flags: u64, mode: u64| eval(&prog, libc::SYS_openat, &[fd, 0x1000, flags, mode]);
    assert_eq!(openat(creat | rdwr, 0o4755), EPERM);
    assert_eq!(openat(creat | libc::O_EXCL as u64, 0o2644), EPERM);
    assert_eq!(openat(tmpfile | rdwr, 0o4700), EPERM);
    assert_eq!(openat(creat | HIGH_GARBAGE, 0o4755 | HIGH_GARBAGE), EPERM);
    assert_eq!(openat(creat | rdwr, 0o755), ALLOW);
    assert_eq!(openat(tmpfile | rdwr, 0o1600), ALLOW);
    // Without O_CREAT or O_TMPFILE the kernel ignores the mode: so does the filter.
    assert_eq!(openat(rdwr, 0o6777), ALLOW);
    assert_eq!(openat(libc::O_DIRECTORY as u64, 0o6777), ALLOW);
    assert_eq!(openat(creat << 32, 0o4755), ALLOW);
    #[cfg(target_arch = "x86_64")]
    {
        let open = |flags: u64, mode: u64| eval(&prog, libc::SYS_open, &[0x1000, flags, mode]);
        assert_eq!(open(creat | rdwr, 0o4755), EPERM);
        assert_eq!(open(tmpfile | rdwr, 0o2700), EPERM);
        assert_eq!(open(creat | rdwr, 0o644), ALLOW);
        assert_eq!(open(rdwr, 0o4755), ALLOW);
    }
    // mkdir keeps only the permission and sticky bits of its mode.
    assert_eq!(eval(&prog, libc::SYS_mkdirat, &[fd, 0x1000, 0o6777]), ALLOW);
    // openat2's mode is in memory the filter cannot read.
    assert_eq!(
        eval(&prog, libc::SYS_openat2, &[fd, 0x1000, 0x2000, 24]),
        ALLOW
    );
}

#[test]
fn ioctl_refuses_terminal_injection_only() {
    let prog = strict();
    let ioctl = |request: u64| eval(&prog, libc::SYS_ioctl, &[0, request, 0]);
    for request in [libc::TIOCSTI as u32 as u64, libc::TIOCLINUX as u32 as u64] {
        assert_eq!(ioctl(request), EPERM, "{request:#x}");
        // The kernel truncates the request to an unsigned int.
        assert_eq!(ioctl(request | 1 << 32), EPERM, "{request:#x}");
        assert_eq!(ioctl(request | HIGH_GARBAGE), EPERM, "{request:#x}");
    }
    assert_eq!(ioctl(0x5412_u64 << 32), ALLOW);
    for request in [
        libc::TCGETS as u32 as u64,
        libc::FIONREAD as u32 as u64,
        libc::TIOCGWINSZ as u32 as u64,
    ] {
        assert_eq!(ioctl(request), ALLOW, "{request:#x}");
    }
}

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
            let notifying = Program::supervised_filter(transparent, true);
            let silent = Program::supervised_filter(transparent, false);
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
                }
            }
        }
    }
}

#[test]
fn user_namespaces_are_denied_when_asked() {
    let newuser = libc::CLONE_NEWUSER as u64;
    let plain = libc::SIGCHLD as u64 | libc::CLONE_NEWNS as u64;
    for deny in [true, false] {
        let prog = Program::deny_filter(&rules(NetSyscalls::All, deny));
        let refused = |ret: u32| if deny { ret } else { ALLOW };
        for nr in [libc::SYS_clone, libc::SYS_unshare] {
            assert_eq!(eval(&prog, nr, &[newuser]), refused(EPERM));
            assert_eq!(
                eval(&prog, nr, &[newuser | plain | HIGH_GARBAGE]),
                refused(EPERM)
            );
            assert_eq!(eval(&prog, nr, &[plain]), ALLOW);
            assert_eq!(eval(&prog, nr, &[plain | HIGH_GARBAGE]), ALLOW);
            // Only args[0] holds the flags.
            assert_eq!(eval(&prog, nr, &[plain, newuser, newuser]), ALLOW);
        }
        assert_eq!(eval(&prog, libc::SYS_clone3, &[0, 88]), refused(ENOSYS));
        assert_eq!(eval(&prog, libc::SYS_setns, &[3, 0]), refused(EPERM));
    }
}

/// A table long enough that dispatch spans far more than 255 instructions,
/// with the argument checks at the end reached from the start.
#[test]
fn long_tables_assemble_and_dispatch_correctly() {
    let nrs: Vec<libc::c_long> = (1000..1400).collect();
    let mut rules: Vec<SyscallRule> = nrs
        .iter()
        .map(|&nr| SyscallRule::always("filler", nr, Action::Errno(nr as u16)))
        .collect();
    rules.insert(0, spec_rule_with_args(1));
    rules.push(spec_rule_with_args(2));
    let spec = FilterSpec {
        rules,
        default: Action::Allow,
    };
    let prog = Program::build(&spec).unwrap();
    assert!(prog.len() > 3 * 255, "{}", prog.len());
    interp::validate(prog.instructions());
    for nr in nrs {
        assert_eq!(eval(&prog, nr, &[]), libc::SECCOMP_RET_ERRNO | nr as u32);
    }
    for nr in [1, 2] {
        assert_eq!(eval(&prog, nr, &[7]), libc::SECCOMP_RET_USER_NOTIF);
        assert_eq!(eval(&prog, nr, &[8]), KILL);
    }
    assert_eq!(eval(&prog, 999, &[]), ALLOW);
}

fn spec_rule_with_args(nr: libc::c_long) -> SyscallRule {
    SyscallRule {
        name: "checked",
        nr,
        check: Check::Args {
            clauses: vec![Clause {
                all_of: vec![ArgCheck::low(0, Test::OneOf(vec![7]))],
                action: Action::UserNotif,
            }],
            otherwise: Action::KillProcess,
        },
    }
}

#[test]
fn tables_beyond_the_kernel_limit_are_refused() {
    let rules = (0..2100)
        .map(|nr| SyscallRule::always("filler", nr, Action::Allow))
        .collect();
    let spec = FilterSpec {
        rules,
        default: Action::Allow,
    };
    let error = Program::build(&spec).unwrap_err();
    assert!(
        matches!(error, BuildError::Assembly(AsmError::TooLong { .. })),
        "{error}"
    );
}

#[test]
fn table_mistakes_are_reported() {
    let spec = |rules| FilterSpec {
        rules,
        default: Action::Allow,
    };
    let dup = vec![
        SyscallRule::always("a", 1, Action::Allow),
        SyscallRule::always("b", 1, Action::Allow),
    ];
    assert_eq!(
        spec::compile(&spec(dup)).unwrap_err(),
        BuildError::DuplicateSyscall { name: "b" }
    );
    let negative = vec![SyscallRule::always("neg", -1, Action::Allow)];
    let err = spec::compile(&spec(negative)).unwrap_err();
    assert_eq!(
        err,
        BuildError::BadSyscallNumber {
            name: "neg",
            nr: -1
        }
    );
    let mut empty = spec_rule_with_args(1);
    if let Check::Args { clauses, .. } = &mut empty.check {
        clauses[0].all_of[0].test = Test::OneOf(Vec::new());
    }
    let err = spec::compile(&spec(vec![empty])).unwrap_err();
    assert_eq!(err, BuildError::EmptyTest { name: "checked" });
}

/// The shape of the user-notification filter the supervisor will need.
#[test]
fn a_user_notification_filter_can_be_built() {
    let opens = [libc::SYS_openat, libc::SYS_openat2];
    let rules = opens
        .iter()
        .map(|&nr| SyscallRule::always("open", nr, Action::UserNotif))
        .collect();
    let prog = Program::build(&FilterSpec {
        rules,
        default: Action::Allow,
    })
    .unwrap();
    for nr in opens {
        assert_eq!(eval(&prog, nr, &[]), libc::SECCOMP_RET_USER_NOTIF);
    }
    assert_eq!(eval(&prog, libc::SYS_read, &[]), ALLOW);
}

#[test]
fn the_notify_filter_notifies_opens_and_thread_changes_only_and_guards_the_abi() {
    let prog = Program::notify_filter();
    interp::validate(prog.instructions());
    let mut notified = vec![
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_mkdirat,
        libc::SYS_unlinkat,
        libc::SYS_connect,
        libc::SYS_chdir,
        libc::SYS_fchdir,
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_setns,
        libc::SYS_unshare,
        // The guard's calls (`supervisor::broker::guard`).
        libc::SYS_mknodat,
        libc::SYS_linkat,
        libc::SYS_symlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_fchmod,
        libc::SYS_fchmodat,
        452, // fchmodat2
        libc::SYS_setxattr,
        libc::SYS_lsetxattr,
        libc::SYS_fsetxattr,
        463, // setxattrat
    ];
    #[cfg(target_arch = "x86_64")]
    notified.extend([
        libc::SYS_chmod,
        libc::SYS_open,
        libc::SYS_creat,
        libc::SYS_mkdir,
        libc::SYS_unlink,
        libc::SYS_rmdir,
        libc::SYS_fork,
        libc::SYS_vfork,
        libc::SYS_mknod,
        libc::SYS_link,
        libc::SYS_symlink,
        libc::SYS_rename,
    ]);
    for &nr in &notified {
        // A mode that makes a file executable, for the chmod family.
        let args = [0o755, 0o755, 0o755];
        assert_eq!(eval(&prog, nr, &args), libc::SECCOMP_RET_USER_NOTIF, "{nr}");
    }
    assert_eq!(Program::notified_syscall_names().len(), notified.len());
    chmod_is_notified_when_it_makes_a_file_executable(&prog);
    for nr in [
        libc::SYS_read,
        libc::SYS_close,
        libc::SYS_statx,
        libc::SYS_getcwd,
        libc::SYS_execve,
        libc::SYS_exit,
    ] {
        assert_eq!(eval(&prog, nr, &[]), ALLOW, "{nr}");
    }
    // i386 `open` is 5, and the x32 openat is the bit plus 257: both kill,
    // never reach the supervisor with numbers it would misread.
    let i386_open = Syscall {
        arch: 0x4000_0003,
        ..Syscall::native(5, &[])
    };
    assert_eq!(interp::run(prog.instructions(), i386_open), KILL);
    if cfg!(target_arch = "x86_64") {
        let x32_openat = Syscall {
            nr: 0x4000_0000 | libc::SYS_openat as i32,
            ..Syscall::native(0, &[])
        };
        assert_eq!(interp::run(prog.instructions(), x32_openat), KILL);
    }
}

#[test]
fn all_jumps_land_inside_the_program() {
    // Also checked by validate(), but stated on its own: every jump offset
    // the assembler resolved lands on a later instruction of the program.
    for rules in every_rule_combination() {
        let prog = Program::deny_filter(&rules);
        let insns = prog.instructions();
        for (pc, insn) in insns.iter().enumerate() {
            let offsets = match u32::from(insn.code) & 0x07 {
                _ if insn.code == bpf::JMP_JA => vec![insn.k as usize],
                class if class == libc::BPF_JMP => vec![insn.jt.into(), insn.jf.into()],
                _ => continue,
            };
            for offset in offsets {
                assert!(pc + 1 + offset < insns.len(), "pc {pc}");
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

/// The guard's filter: opens only when their flags write, create, truncate
/// or make an unnamed file; every call that makes a name; nothing else.
#[test]
fn the_guard_filter_notifies_writes_and_names_only() {
    let prog = Program::guard_filter();
    interp::validate(prog.instructions());
    let notif = libc::SECCOMP_RET_USER_NOTIF;
    let at = |flags: i32| [libc::AT_FDCWD as u64, 0x1000, flags as u32 as u64, 0o644];
    for flags in [
        libc::O_WRONLY,
        libc::O_RDWR,
        libc::O_RDONLY | libc::O_CREAT,
        libc::O_RDONLY | libc::O_TRUNC,
        libc::O_TMPFILE | libc::O_RDWR,
        libc::O_WRONLY | libc::O_CLOEXEC | libc::O_APPEND,
    ] {
        assert_eq!(
            eval(&prog, libc::SYS_openat, &at(flags)),
            notif,
            "{flags:#x}"
        );
    }
    for flags in [
        libc::O_RDONLY,
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_DIRECTORY,
        libc::O_PATH,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
    ] {
        assert_eq!(
            eval(&prog, libc::SYS_openat, &at(flags)),
            ALLOW,
            "{flags:#x}"
        );
    }
    // High garbage in the flags register does not hide a write.
    let high = [libc::AT_FDCWD as u64, 0x1000, 0xffff_0000_0000_0000 | 1, 0];
    assert_eq!(eval(&prog, libc::SYS_openat, &high), notif);
    for nr in [
        libc::SYS_setxattr,
        libc::SYS_lsetxattr,
        libc::SYS_fsetxattr,
        463, // setxattrat
        libc::SYS_openat2,
        libc::SYS_mkdirat,
        libc::SYS_mknodat,
        libc::SYS_linkat,
        libc::SYS_symlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
    ] {
        assert_eq!(eval(&prog, nr, &[]), notif, "{nr}");
    }
    for nr in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_unlinkat,
        libc::SYS_connect,
        libc::SYS_chdir,
        libc::SYS_execve,
    ] {
        assert_eq!(eval(&prog, nr, &[]), ALLOW, "{nr}");
    }
    chmod_is_notified_when_it_makes_a_file_executable(&prog);
}

/// `chmod` and its forms reach the guard when the mode sets an execute bit
/// (in the low word, as the kernel reads it), and stay in the kernel
/// otherwise.
fn chmod_is_notified_when_it_makes_a_file_executable(prog: &Program) {
    let fd = libc::AT_FDCWD as u64;
    // (name, the mode's argument, the arguments before it)
    let mut calls: Vec<(&str, usize, Vec<u64>)> = vec![
        ("fchmod", 1, vec![3]),
        ("fchmodat", 2, vec![fd, 0x1000]),
        ("fchmodat2", 2, vec![fd, 0x1000]),
    ];
    #[cfg(target_arch = "x86_64")]
    calls.push(("chmod", 1, vec![0x1000]));
    for (name, at, before) in calls {
        let call = |mode: u64| {
            let mut args = before.clone();
            args.insert(at, mode);
            eval(prog, nr_of(name), &args)
        };
        for mode in [0o755, 0o100, 0o010, 0o001, 0o700 | HIGH_GARBAGE] {
            assert_eq!(call(mode), libc::SECCOMP_RET_USER_NOTIF, "{name} {mode:#o}");
        }
        for mode in [0o644, 0o600, 0o1666, 0o111 << 32] {
            assert_eq!(call(mode), ALLOW, "{name} {mode:#o}");
        }
    }
}

#[test]
fn ptrace_and_process_memory_calls_are_allowed_only_when_the_rules_say() {
    let debugging = [
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
    ];
    let strict = Program::deny_filter(&rules(NetSyscalls::UnixOnly, true));
    let tracing = Program::deny_filter(&SyscallRules {
        ptrace: true,
        ..rules(NetSyscalls::UnixOnly, true)
    });
    for nr in debugging {
        assert_eq!(eval(&strict, nr, &[]), EPERM, "{nr}");
        assert_eq!(eval(&tracing, nr, &[]), ALLOW, "{nr}");
    }
    // Everything else refused stays refused.
    for nr in [
        libc::SYS_pidfd_getfd,
        libc::SYS_mount,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_io_uring_setup,
    ] {
        assert_eq!(eval(&tracing, nr, &[]), EPERM, "{nr}");
    }
}
