//! The deny filter's behaviour, checked in the BPF interpreter.

use super::bpf;
use super::interp::{self, Syscall};
use super::spec::{self, ArgCheck, Clause};
use super::*;

mod notify;
mod shape;
mod sockets;
mod stacked;

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
        #[cfg(target_arch = "x86_64")]
        "modify_ldt",
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
