//! The sluice deny filter: the syscalls an untrusted program never needs and
//! that widen the kernel's attack surface or escape the other layers of the
//! sandbox, as a [`FilterSpec`].

use super::spec::{Action, ArgCheck, Check, Clause, FilterSpec, SyscallRule, Test};
use super::{NetSyscalls, SyscallRules};

const EPERM: Action = Action::Errno(libc::EPERM as u16);

/// A syscall's name and native number, taken from one `libc::SYS_*` path so
/// the two cannot disagree.
#[derive(Clone, Copy, Debug)]
struct Sys {
    raw_name: &'static str,
    nr: libc::c_long,
}

impl Sys {
    fn name(self) -> &'static str {
        self.raw_name.trim_start_matches("SYS_")
    }

    fn rule(self, check: Check) -> SyscallRule {
        SyscallRule {
            name: self.name(),
            nr: self.nr,
            check,
        }
    }
}

macro_rules! sys {
    ($name:ident) => {
        Sys {
            raw_name: stringify!($name),
            nr: libc::$name,
        }
    };
}

/// Debugging other processes: refused with EPERM unless the policy lets
/// the program trace its own (`[process] ptrace = "sandbox"`, where
/// Landlock confines the calls to the sandbox's processes).
const DEBUGGING: &[Sys] = &[
    sys!(SYS_ptrace),
    sys!(SYS_process_vm_readv),
    sys!(SYS_process_vm_writev),
];

/// Refused with EPERM on every architecture: another process's descriptors,
/// io_uring (which bypasses this filter), file handles (which bypass path
/// checks), mounts, eBPF and perf, keyrings, module loading and other
/// host-administration calls.
const DENIED_EVERYWHERE: &[Sys] = &[
    sys!(SYS_pidfd_getfd),
    sys!(SYS_io_uring_setup),
    sys!(SYS_io_uring_enter),
    sys!(SYS_io_uring_register),
    sys!(SYS_open_by_handle_at),
    sys!(SYS_name_to_handle_at),
    sys!(SYS_mount),
    sys!(SYS_umount2),
    sys!(SYS_pivot_root),
    sys!(SYS_move_mount),
    sys!(SYS_open_tree),
    sys!(SYS_fsopen),
    sys!(SYS_fsconfig),
    sys!(SYS_fsmount),
    sys!(SYS_fspick),
    sys!(SYS_mount_setattr),
    sys!(SYS_bpf),
    sys!(SYS_perf_event_open),
    sys!(SYS_keyctl),
    sys!(SYS_add_key),
    sys!(SYS_request_key),
    sys!(SYS_userfaultfd),
    sys!(SYS_kexec_load),
    sys!(SYS_kexec_file_load),
    sys!(SYS_init_module),
    sys!(SYS_finit_module),
    sys!(SYS_delete_module),
    sys!(SYS_acct),
    sys!(SYS_swapon),
    sys!(SYS_swapoff),
    sys!(SYS_reboot),
    sys!(SYS_sethostname),
    sys!(SYS_setdomainname),
    sys!(SYS_quotactl),
    sys!(SYS_quotactl_fd),
    sys!(SYS_fanotify_init),
    sys!(SYS_lookup_dcookie),
    sys!(SYS_vhangup),
    sys!(SYS_syslog),
    sys!(SYS_settimeofday),
    sys!(SYS_clock_settime),
    sys!(SYS_clock_adjtime),
    sys!(SYS_adjtimex),
    sys!(SYS_chroot),
    sys!(SYS_nfsservctl),
];

/// Refused with EPERM where the architecture has them: x86 port I/O, the
/// a.out loader and the process's own descriptor table (`modify_ldt`: 16-bit
/// and segmented code only, Wine and DOS emulators; a kernel path with a
/// history of exploits that no program here needs) do not exist on aarch64.
#[cfg(target_arch = "x86_64")]
const DENIED_ON_THIS_ARCH: &[Sys] = &[
    sys!(SYS_iopl),
    sys!(SYS_ioperm),
    sys!(SYS_uselib),
    sys!(SYS_modify_ldt),
];
#[cfg(not(target_arch = "x86_64"))]
const DENIED_ON_THIS_ARCH: &[Sys] = &[];

/// The deny filter for `rules`.
pub fn deny_spec(rules: &SyscallRules) -> FilterSpec {
    let debugging = if rules.ptrace { &[][..] } else { DEBUGGING };
    let outright = DENIED_EVERYWHERE
        .iter()
        .chain(DENIED_ON_THIS_ARCH)
        .chain(debugging);
    let mut table = set_id_mode_rules();
    table.extend(outright.map(|sys| sys.rule(Check::Always(EPERM))));
    table.push(sys!(SYS_memfd_create).rule(memfd_check()));
    table.push(sys!(SYS_ioctl).rule(ioctl_check()));
    table.push(sys!(SYS_fcntl).rule(lease_check()));
    table.push(sys!(SYS_prctl).rule(nesting_marker()));
    table.push(sys!(SYS_seccomp).rule(listener_check()));
    table.extend(socket_rules(rules));
    if rules.deny_user_namespaces {
        table.extend(user_namespace_rules());
    }
    FilterSpec {
        rules: frequent_first(table),
        default: Action::Allow,
    }
}

/// The calls programs make often whose verdict the kernel's action cache
/// cannot hold (Linux 5.11 caches only a number allowed whatever its
/// arguments): each such call runs the filter, whose dispatch is first
/// match, one compare per rule before its own. These are checked first,
/// in this order; the rest keep the table's order. `clone3` is refused
/// (`ENOSYS`) at every thread or process glibc starts before it falls back
/// to `clone`; `sendto` and `sendmsg` are checked under `TcpOnly`. Before,
/// an `ioctl` or a `clone` ran past the ~50 calls refused outright: 71 to
/// 78 instructions, now 9 to 19 (`frequent_calls_run_few_instructions`).
const FREQUENT: &[libc::c_long] = &[
    libc::SYS_openat,
    libc::SYS_ioctl,
    libc::SYS_fcntl,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_clone3,
    libc::SYS_clone,
    libc::SYS_prctl,
    libc::SYS_socket,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_open,
];

/// `table` with the [`FREQUENT`] calls first (a stable sort: no rule's
/// verdict depends on its place, each number having one rule).
fn frequent_first(mut table: Vec<SyscallRule>) -> Vec<SyscallRule> {
    let rank = |rule: &SyscallRule| FREQUENT.iter().position(|&nr| nr == rule.nr);
    table.sort_by_key(|rule| rank(rule).unwrap_or(FREQUENT.len()));
    table
}

/// `memfd_create` only with `MFD_NOEXEC_SEAL`: an executable memfd would
/// let the program run code that never touched the (Landlock-checked)
/// filesystem.
fn memfd_check() -> Check {
    let flags = ArgCheck::low(1, Test::NoneSet(libc::MFD_NOEXEC_SEAL));
    deny_if(flags)
}

/// The set-user-ID and set-group-ID bits of a mode.
const SET_ID_BITS: u32 = libc::S_ISUID | libc::S_ISGID;

/// `fchmodat2` (Linux 6.6): the number is the same on every architecture
/// (the generic table), and libc names it only for some.
const FCHMODAT2: Sys = Sys {
    raw_name: "SYS_fchmodat2",
    nr: 452,
};

/// No set-user-ID or set-group-ID bit from any call that sets a mode: a
/// set-ID file the program leaves in a writable tree would run with its
/// owner's identity for whoever runs it later, outside (root's, for a session
/// run by root). The modes are `umode_t`, so the low word holds them. A
/// creating `open` carries its mode only with `O_CREAT` or `__O_TMPFILE`
/// (the kernel ignores it otherwise, and callers leave garbage there).
/// Left alone: `mkdir` (the kernel keeps only the permission and sticky bits
/// of its mode; a directory inherits `S_ISGID` from a set-group-ID parent,
/// which only passes a group on), `openat2` (its mode is in memory a filter
/// cannot read; see the module docs), and sticky bits. File capabilities
/// need `CAP_SETFCAP`, which the program never holds.
fn set_id_mode_rules() -> Vec<SyscallRule> {
    let set_id = |arg| ArgCheck::low(arg, Test::AnySet(SET_ID_BITS));
    // O_TMPFILE includes O_DIRECTORY, which alone creates nothing.
    let creating = (libc::O_CREAT | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u32;
    let open_creating = |flags, mode| Check::Args {
        clauses: vec![Clause {
            all_of: vec![ArgCheck::low(flags, Test::AnySet(creating)), set_id(mode)],
            action: EPERM,
        }],
        otherwise: Action::Allow,
    };
    let mut rules = vec![
        sys!(SYS_openat).rule(open_creating(2, 3)),
        sys!(SYS_fchmod).rule(deny_if(set_id(1))),
        sys!(SYS_fchmodat).rule(deny_if(set_id(2))),
        FCHMODAT2.rule(deny_if(set_id(2))),
        sys!(SYS_mknodat).rule(deny_if(set_id(2))),
    ];
    // The path-only forms exist only on x86_64 (aarch64 libc uses the *at ones).
    #[cfg(target_arch = "x86_64")]
    rules.extend([
        sys!(SYS_chmod).rule(deny_if(set_id(1))),
        sys!(SYS_creat).rule(deny_if(set_id(1))),
        sys!(SYS_mknod).rule(deny_if(set_id(1))),
        sys!(SYS_open).rule(open_creating(1, 2)),
    ]);
    rules
}

/// `ioctl` without `TIOCSTI` (push input into the terminal, i.e. type
/// commands into the supervisor's shell) or `TIOCLINUX` (which can do the
/// same on a virtual console). The kernel takes the request as an
/// `unsigned int`, so only the low word is compared.
fn ioctl_check() -> Check {
    let requests = vec![libc::TIOCSTI as u32, libc::TIOCLINUX as u32];
    deny_if(ArgCheck::low(1, Test::OneOf(requests)))
}

/// `fcntl` without `F_SETLEASE`. A lease, which the kernel grants on any
/// file the caller owns and may open, makes every open of that file for
/// writing (read lease) or at all (write lease) outside wait until the
/// program lets go or `fs.lease-break-time` (45 s) passes, and tells the
/// program of each (`SIGIO`): the person's editor saving a workspace file
/// waits, and the program learns when the person touches it. No tool a
/// sandbox runs needs one (file servers do). `fcntl` now runs the filter
/// at each call (the action cache holds only verdicts whatever the
/// arguments): a few instructions, it is checked among the first
/// ([`FREQUENT`]). 32-bit `fcntl64` does not reach the kernel from this
/// filter's programs (the architecture is checked first).
fn lease_check() -> Check {
    deny_if(ArgCheck::low(1, Test::OneOf(vec![libc::F_SETLEASE as u32])))
}

/// `seccomp(SECCOMP_SET_MODE_FILTER)` without `SECCOMP_FILTER_FLAG_NEW_LISTENER`:
/// the program may restrict itself further, but not hold a listener of its
/// own. The newest filter that returns `USER_NOTIF` takes the call, so a
/// listener of the program's own, answering its `connect` with `CONTINUE`,
/// would take it from the supervisor's (`crate::connector`). The flags
/// are an `unsigned int`: the low word.
fn listener_check() -> Check {
    Check::Args {
        clauses: vec![Clause {
            all_of: vec![
                ArgCheck::low(0, Test::OneOf(vec![libc::SECCOMP_SET_MODE_FILTER])),
                ArgCheck::low(
                    1,
                    Test::AnySet(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32),
                ),
            ],
            action: EPERM,
        }],
        otherwise: Action::Allow,
    }
}

/// The syscall carrying the nesting marker: it refuses nothing.
pub(super) const MARKER_SYSCALL: &str = "prctl";

/// `prctl(NESTING_MARKER_OPTION)` fails with `NESTING_MARKER_ERRNO`
/// instead of the kernel's EINVAL: how a `sluice run` started inside the
/// sandbox knows it is nested, whatever its environment says. Filters
/// cannot be removed, so the program cannot hide the marker; a process
/// outside sluice could fake it only with a filter of its own, which buys it
/// nothing (see `crate::nesting`).
fn nesting_marker() -> Check {
    Check::Args {
        clauses: vec![Clause {
            all_of: vec![ArgCheck::low(
                0,
                Test::OneOf(vec![super::NESTING_MARKER_OPTION]),
            )],
            action: Action::Errno(super::NESTING_MARKER_ERRNO),
        }],
        otherwise: Action::Allow,
    }
}

/// The socket family rules for `rules.net` and `rules.unix_datagrams`;
/// none at all for `NetSyscalls::All` with datagrams allowed.
fn socket_rules(rules: &SyscallRules) -> Vec<SyscallRule> {
    // AF_UNIX first: the first clause that holds decides.
    let unix = match rules.unix_datagrams {
        true => vec![unix_domain()],
        false => vec![unix_connected_only(), refuse(unix_domain())],
    };
    let (tcp, otherwise) = match rules.net {
        NetSyscalls::All if rules.unix_datagrams => return Vec::new(),
        NetSyscalls::All => (None, Action::Allow),
        NetSyscalls::UnixOnly => (None, EPERM),
        NetSyscalls::TcpOnly => (Some(tcp_over_ip()), EPERM),
        // Left to the notify filter's `ip_sockets_notified`: an `ERRNO`
        // here would win over its `USER_NOTIF`.
        NetSyscalls::UnixOnlyIpNotified => (Some(ip_domain(Action::Allow)), EPERM),
    };
    let check = |clauses| Check::Args { clauses, otherwise };
    let socket_clauses = unix.iter().cloned().chain(tcp.clone()).collect();
    // A socketpair is always local, so the only useful family is AF_UNIX.
    let mut table = vec![
        sys!(SYS_socket).rule(check(socket_clauses)),
        sys!(SYS_socketpair).rule(check(unix)),
    ];
    if rules.net == NetSyscalls::TcpOnly {
        table.extend(fast_open_rules());
    }
    table
}

/// No `MSG_FASTOPEN`: a TCP Fast Open send connects without calling
/// `connect()`, so Landlock's connect-port check never runs and any port
/// would be reachable. The flags are args[3] of sendto/sendmmsg and args[2]
/// of sendmsg.
fn fast_open_rules() -> Vec<SyscallRule> {
    let fast_open = |arg| deny_if(ArgCheck::low(arg, Test::AnySet(libc::MSG_FASTOPEN as u32)));
    vec![
        sys!(SYS_sendto).rule(fast_open(3)),
        sys!(SYS_sendmsg).rule(fast_open(2)),
        sys!(SYS_sendmmsg).rule(fast_open(3)),
    ]
}

/// `domain == AF_UNIX`
fn unix_domain() -> Clause {
    Clause {
        all_of: vec![ArgCheck::low(0, one_of(&[libc::AF_UNIX]))],
        action: Action::Allow,
    }
}

/// An AF_UNIX socket that reaches a peer only through `connect` (or as a
/// socketpair): `SOCK_STREAM` or `SOCK_SEQPACKET`, the type masked with
/// `SOCK_TYPE_MASK` (0xf) so `SOCK_NONBLOCK`/`SOCK_CLOEXEC` are accepted.
fn unix_connected_only() -> Clause {
    let mut clause = unix_domain();
    let types = one_of(&[libc::SOCK_STREAM, libc::SOCK_SEQPACKET]);
    clause.all_of.push(ArgCheck::low(1, types).masked(0xf));
    clause
}

/// `domain` is AF_INET or AF_INET6, whatever the type: `action`.
fn ip_domain(action: Action) -> Clause {
    Clause {
        all_of: vec![ArgCheck::low(0, one_of(&[libc::AF_INET, libc::AF_INET6]))],
        action,
    }
}

/// With `NetSyscalls::UnixOnlyIpNotified` (`[network] mode = "none"`): an
/// IPv4 or IPv6 socket goes to the supervisor, which refuses it
/// (`ENETUNREACH`, never `CONTINUE`) and tells the person, once, that the
/// program tried to reach the network. Other families stay the deny
/// filter's.
fn ip_sockets_notified() -> SyscallRule {
    sys!(SYS_socket).rule(Check::Args {
        clauses: vec![ip_domain(Action::UserNotif)],
        otherwise: Action::Allow,
    })
}

/// `clause`'s checks, refused with EPERM.
fn refuse(clause: Clause) -> Clause {
    Clause {
        action: EPERM,
        ..clause
    }
}

/// An IPv4 or IPv6 stream socket with the default or TCP protocol. The type
/// is masked with `SOCK_TYPE_MASK` (0xf) so `SOCK_NONBLOCK`/`SOCK_CLOEXEC`
/// are accepted; there is no other way to get a non-TCP stream over IP.
fn tcp_over_ip() -> Clause {
    Clause {
        all_of: vec![
            ArgCheck::low(0, one_of(&[libc::AF_INET, libc::AF_INET6])),
            ArgCheck::low(1, one_of(&[libc::SOCK_STREAM])).masked(0xf),
            ArgCheck::low(2, one_of(&[0, libc::IPPROTO_TCP])),
        ],
        action: Action::Allow,
    }
}

/// No new user namespaces: inside one, an unprivileged program gains every
/// capability over it and reaches kernel code (mounts, netfilter, ...) that
/// is otherwise root-only, a steady source of privilege escalations.
fn user_namespace_rules() -> Vec<SyscallRule> {
    let newuser = || deny_if(ArgCheck::low(0, Test::AnySet(libc::CLONE_NEWUSER as u32)));
    // clone3 passes its flags in a struct in memory, which BPF cannot read.
    // ENOSYS (not EPERM) makes glibc and others fall back to clone, whose
    // flags this filter can check.
    let enosys = Action::Errno(libc::ENOSYS as u16);
    vec![
        // clone's flags are args[0] on both x86_64 and aarch64.
        sys!(SYS_clone).rule(newuser()),
        sys!(SYS_unshare).rule(newuser()),
        sys!(SYS_clone3).rule(Check::Always(enosys)),
        // Entering an existing namespace is just as much of a way out.
        sys!(SYS_setns).rule(Check::Always(EPERM)),
    ]
}

/// The system calls handed to the supervisor for transparent brokering:
/// those that open a file by name, `mkdir`, `unlink`, `rmdir`, `connect`,
/// `inotify_add_watch`, and those after which a thread id may
/// name another working directory (the supervisor remembers each thread's
/// between calls, and forgets them all when one of these runs). Not
/// `execve`: the program's own exec follows this filter, before the
/// supervisor serves it. `open`,
/// `creat`, `mkdir`, `fork` and `vfork` exist only on x86_64; on aarch64
/// libc uses `openat`, `mkdirat` and `clone` for them.
pub fn notify_spec(ip_sockets: bool) -> FilterSpec {
    let notify = |sys: Sys| sys.rule(Check::Always(Action::UserNotif));
    let mut rules = vec![
        notify(sys!(SYS_openat)),
        notify(sys!(SYS_openat2)),
        notify(sys!(SYS_mkdirat)),
        // Removing a name the broker may write (`broker::transparent::names`).
        notify(sys!(SYS_unlinkat)),
    ];
    #[cfg(target_arch = "x86_64")]
    rules.extend([
        notify(sys!(SYS_open)),
        notify(sys!(SYS_creat)),
        notify(sys!(SYS_mkdir)),
        notify(sys!(SYS_unlink)),
        notify(sys!(SYS_rmdir)),
    ]);
    // Named unix sockets, which Landlock does not cover: the supervisor
    // decides, the connector connects (`crate::connector`).
    rules.push(notify(sys!(SYS_connect)));
    // A watch, which Landlock does not cover either: the supervisor makes it
    // on what the sandbox may read (`broker::transparent::watch`).
    rules.push(notify(sys!(SYS_inotify_add_watch)));
    rules.extend(
        [
            sys!(SYS_chdir),
            sys!(SYS_fchdir),
            sys!(SYS_clone),
            sys!(SYS_clone3),
            sys!(SYS_setns),
            sys!(SYS_unshare),
        ]
        .map(notify),
    );
    #[cfg(target_arch = "x86_64")]
    rules.extend([notify(sys!(SYS_fork)), notify(sys!(SYS_vfork))]);
    rules.extend(filter_adding_rules());
    // The guard's calls that make names (opens and mkdir are above), and
    // those that make a file executable.
    rules.extend(naming_calls().map(notify));
    rules.extend(exec_mode_rules());
    if ip_sockets {
        rules.push(ip_sockets_notified());
    }
    FilterSpec {
        rules,
        default: Action::Allow,
    }
}

/// The calls that may add a seccomp filter: `seccomp` but for its two
/// operations that only ask (`SECCOMP_GET_ACTION_AVAIL`,
/// `SECCOMP_GET_NOTIF_SIZES`; an operation a later kernel adds is
/// notified), and `prctl(PR_SET_SECCOMP)`. A filter is the only way a
/// thread comes to run under more filters than the program had at exec,
/// and every one is added by one of these: until one is notified, the
/// supervisor knows no thread is in a sandbox stacked inside the
/// program's without reading any count
/// (`supervisor::broker::transparent::stacked`). Both are answered
/// `CONTINUE`. The deny filter's refusals (a listener of the program's own)
/// are stronger, so those calls are never notified.
fn filter_adding_rules() -> [SyscallRule; 2] {
    let asking = [
        libc::SECCOMP_GET_ACTION_AVAIL,
        libc::SECCOMP_GET_NOTIF_SIZES,
    ];
    [
        sys!(SYS_seccomp).rule(Check::Args {
            clauses: vec![Clause {
                all_of: vec![ArgCheck::low(0, Test::OneOf(asking.to_vec()))],
                action: Action::Allow,
            }],
            otherwise: Action::UserNotif,
        }),
        sys!(SYS_prctl).rule(Check::Args {
            clauses: vec![Clause {
                all_of: vec![ArgCheck::low(0, one_of(&[libc::PR_SET_SECCOMP]))],
                action: Action::UserNotif,
            }],
            otherwise: Action::Allow,
        }),
    ]
}

/// The one filter of a program whose calls the supervisor serves: the
/// guard's or transparent brokering's (`transparent`) stacked with the
/// deny filter for `rules`, as one program ([`FilterSpec::stacked_under`]):
/// each call not decided by the action cache runs one filter, not two, and
/// the launch compiles one less. Installed with the listener, it is also
/// the program's last `seccomp` call before exec, so nothing it notifies
/// (the calls that add a filter) waits for a supervisor not yet serving.
pub fn supervised_spec(rules: &SyscallRules, transparent: bool, ip_sockets: bool) -> FilterSpec {
    let supervised = match transparent {
        true => notify_spec(ip_sockets),
        false => guard_spec(ip_sockets),
    };
    let deny = match ip_sockets {
        // What the supervised filter notifies, the deny filter leaves to it.
        true => deny_spec(&SyscallRules {
            net: NetSyscalls::UnixOnlyIpNotified,
            ..rules.clone()
        }),
        false => deny_spec(rules),
    };
    let one = supervised.stacked_under(&deny);
    FilterSpec {
        rules: frequent_first(one.rules),
        ..one
    }
}

/// The open flags that write or create: an open with any of them is the
/// guard's (`__O_TMPFILE` is `O_TMPFILE` without `O_DIRECTORY`).
pub const GUARDED_OPEN_FLAGS: u32 = (libc::O_WRONLY
    | libc::O_RDWR
    | libc::O_CREAT
    | libc::O_TRUNC
    | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u32;

/// The calls that make, link or rename a name, other than opens and mkdir.
fn naming_calls() -> impl Iterator<Item = Sys> {
    let mut calls = vec![
        sys!(SYS_mknodat),
        sys!(SYS_linkat),
        sys!(SYS_symlinkat),
        sys!(SYS_renameat),
        sys!(SYS_renameat2),
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        sys!(SYS_mknod),
        sys!(SYS_link),
        sys!(SYS_symlink),
        sys!(SYS_rename),
    ]);
    calls.into_iter()
}

/// The mode bits that make a file runnable: a `chmod` setting any of them
/// is the guard's (a non-executable hook git ignores, made executable).
/// Set-ID bits are refused outright by the sandbox's own filter.
pub const GUARDED_MODE_BITS: u32 = 0o111;

/// The calls that set a mode, notified when the mode makes a file
/// executable: `fchmod` (a descriptor's file), `fchmodat`, `fchmodat2` and
/// (x86_64) `chmod` (taking bits away stays in the kernel); and those that
/// set an extended attribute, always.
fn exec_mode_rules() -> Vec<SyscallRule> {
    let when_exec = |sys: Sys, arg: usize| {
        sys.rule(Check::Args {
            clauses: vec![Clause {
                all_of: vec![ArgCheck::low(arg, Test::AnySet(GUARDED_MODE_BITS))],
                action: Action::UserNotif,
            }],
            otherwise: Action::Allow,
        })
    };
    let mut rules = vec![
        when_exec(sys!(SYS_fchmod), 1),
        when_exec(sys!(SYS_fchmodat), 2),
        when_exec(FCHMODAT2, 2),
    ];
    #[cfg(target_arch = "x86_64")]
    rules.push(when_exec(sys!(SYS_chmod), 1));
    // An access ACL (`system.posix_acl_access`) sets execute permission as
    // `chmod` does; the attribute's name is in memory: always notified.
    let notify = |sys: Sys| sys.rule(Check::Always(Action::UserNotif));
    rules.extend(
        [
            sys!(SYS_setxattr),
            sys!(SYS_lsetxattr),
            sys!(SYS_fsetxattr),
            SETXATTRAT,
        ]
        .map(notify),
    );
    rules
}

/// `setxattrat` (Linux 6.13): the same number on every architecture.
const SETXATTRAT: Sys = Sys {
    raw_name: "SYS_setxattrat",
    nr: 463,
};

/// The guard's user-notification filter, for the default (not transparent)
/// mode: every call that writes a file or makes, links or renames a name
/// goes to the supervisor, which judges the name against `[filesystem]
/// protect` and has the call made in the sandbox (`crate::connector`).
/// Opens only when their flags write or create: reads stay in the kernel.
/// (`openat2`'s flags are in memory the filter cannot read: always.)
pub fn guard_spec(ip_sockets: bool) -> FilterSpec {
    let notify = |sys: Sys| sys.rule(Check::Always(Action::UserNotif));
    let when_writing = |sys: Sys, arg: usize| {
        sys.rule(Check::Args {
            clauses: vec![Clause {
                all_of: vec![ArgCheck::low(arg, Test::AnySet(GUARDED_OPEN_FLAGS))],
                action: Action::UserNotif,
            }],
            otherwise: Action::Allow,
        })
    };
    let mut rules = vec![
        when_writing(sys!(SYS_openat), 2),
        notify(sys!(SYS_openat2)),
        notify(sys!(SYS_mkdirat)),
    ];
    #[cfg(target_arch = "x86_64")]
    rules.extend([
        when_writing(sys!(SYS_open), 1),
        notify(sys!(SYS_creat)),
        notify(sys!(SYS_mkdir)),
    ]);
    rules.extend(naming_calls().map(notify));
    rules.extend(exec_mode_rules());
    if ip_sockets {
        rules.push(ip_sockets_notified());
    }
    FilterSpec {
        rules,
        default: Action::Allow,
    }
}

/// EPERM if `check` holds, allowed otherwise.
fn deny_if(check: ArgCheck) -> Check {
    Check::Args {
        clauses: vec![Clause {
            all_of: vec![check],
            action: EPERM,
        }],
        otherwise: Action::Allow,
    }
}

/// `Test::OneOf` from libc's `c_int` constants, which are all non-negative.
fn one_of(values: &[libc::c_int]) -> Test {
    Test::OneOf(values.iter().map(|&v| v as u32).collect())
}
