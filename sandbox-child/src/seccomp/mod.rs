//! Seccomp: a hand-built BPF filter that refuses the syscalls an untrusted
//! program has no business making.
//!
//! The filter is compiled in ordinary code before `fork` ([`Program`]); the
//! child only hands the finished instructions to the kernel ([`install`]),
//! which is async-signal-safe.
//!
//! ```no_run
//! use sandbox_child::seccomp::{install, NetSyscalls, Program, SyscallRules};
//!
//! let rules = SyscallRules {
//!     net: NetSyscalls::UnixOnly,
//!     deny_user_namespaces: true,
//!     unix_datagrams: true,
//!     ptrace: false,
//! };
//! let program = Program::deny_filter(&rules);
//! let fprog = program.as_fprog();
//! // ... fork; in the child, after prctl(PR_SET_NO_NEW_PRIVS, 1):
//! install(&fprog, 0).expect("seccomp filter");
//! ```
//!
//! # What the deny filter does
//!
//! - A syscall from a foreign architecture (e.g. i386 `int 0x80` on x86_64)
//!   or the x32 ABI kills the process: the table's numbers do not apply there.
//! - [`denied_syscall_names`] fail with `EPERM`, some only with certain
//!   arguments (`ioctl(TIOCSTI)`, `memfd_create` without `MFD_NOEXEC_SEAL`,
//!   non-Unix sockets, `CLONE_NEWUSER`, a `seccomp` filter with a listener
//!   of the program's own, a set-user-ID or set-group-ID bit in a mode given
//!   to `chmod`, `fchmod`, `fchmodat`, `fchmodat2`, `mknod`, `mknodat`,
//!   `creat`, or `open`/`openat` with `O_CREAT` or `O_TMPFILE`); `clone3`
//!   fails with `ENOSYS` when user namespaces are denied, so libc falls back
//!   to `clone`.
//! - Everything else is allowed, including `seccomp` filters, `prctl` and
//!   Landlock, so a nested sandbox can restrict itself further.
//!
//! # Security
//!
//! Arguments that are pointers (paths, `clone3`'s struct) cannot be checked
//! by seccomp: file access is Landlock's job. Filters stack: a filter
//! installed later by the program can only add refusals.
//!
//! `openat2` keeps its mode in memory, so it can still create an *empty*
//! set-ID file. It is allowed, not refused with `ENOSYS`, because sluice's
//! own broker needs it (a stacked sluice runs inside this filter): what
//! makes such a file harmless is the kernel's rule that writing or truncating
//! a set-ID file without `CAP_FSETID`, which the program never holds, clears
//! the bits, so it can never hold a program.
//!
//! # Compatibility
//!
//! x86_64 and aarch64 Linux. `SECCOMP_RET_KILL_PROCESS` needs Linux 4.14;
//! `MFD_NOEXEC_SEAL` needs 6.3 (older kernels reject it with `EINVAL`, so
//! `memfd_create` is then unusable in the sandbox).

mod bpf;
mod filter;
#[cfg(test)]
mod interp;
mod spec;
#[cfg(test)]
mod tests;

use std::os::fd::RawFd;

pub use bpf::{AsmError, Half};
pub use filter::GUARDED_OPEN_FLAGS;
pub use spec::{
    Action, ArgCheck, BuildError, Check, Clause, FilterSpec, SyscallRule, Test, NATIVE_AUDIT_ARCH,
};

pub const SECCOMP_FILTER_FLAG_TSYNC: libc::c_ulong = libc::SECCOMP_FILTER_FLAG_TSYNC;
pub const SECCOMP_FILTER_FLAG_LOG: libc::c_ulong = libc::SECCOMP_FILTER_FLAG_LOG;
pub const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_ulong = libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
pub const SECCOMP_FILTER_FLAG_TSYNC_ESRCH: libc::c_ulong = libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;

/// The `prctl` option the deny filter answers with [`NESTING_MARKER_ERRNO`]
/// ("SLUC"; no real option is near it, and the kernel answers EINVAL to
/// unknown ones). See [`crate::nesting`].
pub const NESTING_MARKER_OPTION: u32 = 0x534c_5543;
/// The errno of the nesting marker.
pub const NESTING_MARKER_ERRNO: u16 = libc::ENOTRECOVERABLE as u16;

/// Which syscalls the deny filter refuses, beyond the fixed list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallRules {
    pub net: NetSyscalls,
    /// deny creating user namespaces: clone/unshare with CLONE_NEWUSER → EPERM,
    /// clone3 → ENOSYS (so libc falls back to clone, whose flags a filter can
    /// read), setns → EPERM
    pub deny_user_namespaces: bool,
    /// allow AF_UNIX datagram sockets (`SOCK_DGRAM`, and `SOCK_RAW`, which
    /// the kernel makes a datagram socket); when false, socket/socketpair
    /// of AF_UNIX only with `SOCK_STREAM` or `SOCK_SEQPACKET`, whatever
    /// `net` says. A datagram can be sent to any named socket the program
    /// can name (`sendto`, or `sendmsg` with the address in memory a filter
    /// cannot read), without the `connect` that transparent brokering
    /// supervises; stream and seqpacket sockets reach a peer only through
    /// `connect`.
    pub unix_datagrams: bool,
    /// allow `ptrace`, `process_vm_readv` and `process_vm_writev`
    /// (`[process] ptrace = "sandbox"`): only where Landlock confines them
    /// to the sandbox's own processes.
    pub ptrace: bool,
}

/// Which sockets the program may create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetSyscalls {
    /// socket()/socketpair() only with AF_UNIX; anything else EPERM
    UnixOnly,
    /// AF_UNIX, plus AF_INET/AF_INET6 only with type (masked with 0xf, i.e.
    /// without SOCK_NONBLOCK/SOCK_CLOEXEC) == SOCK_STREAM and protocol 0 or
    /// IPPROTO_TCP; socketpair only AF_UNIX
    TcpOnly,
    /// no socket filtering
    All,
    /// as `UnixOnly`, except that AF_INET/AF_INET6 sockets are left to the
    /// notify filter ([`Program::supervised`] with `ip_sockets`),
    /// which hands them to the supervisor to refuse and report: only under
    /// that filter, or they would be allowed
    UnixOnlyIpNotified,
}

/// A compiled program; owns its instructions.
#[derive(Clone, Debug)]
pub struct Program {
    insns: Vec<libc::sock_filter>,
}

impl Program {
    /// The sluice deny filter for `rules`.
    pub fn deny_filter(rules: &SyscallRules) -> Program {
        // The table is fixed apart from the choices in `rules`, and the unit
        // tests compile every combination, so a failure here is a bug.
        Program::build(&filter::deny_spec(rules)).expect("the deny filter table is valid")
    }

    /// The transparent-brokering filter alone: after the same foreign-ABI
    /// guard, the `open` family, `connect`, the calls that change what a
    /// thread id names (`chdir`, `fchdir`, the `clone` family, `setns`,
    /// `unshare`) and those that may add a filter return
    /// `SECCOMP_RET_USER_NOTIF`; everything else is allowed. A program gets
    /// it with the deny filter in one ([`Program::supervised`]).
    pub fn notify_filter() -> Program {
        Program::build(&filter::notify_spec(false)).expect("the notify filter table is valid")
    }

    /// The guard's filter for the default mode alone (`filter::guard_spec`;
    /// a program gets it with the deny filter: [`Program::supervised`]).
    pub fn guard_filter() -> Program {
        Program::build(&filter::guard_spec(false)).expect("the guard's filter table is valid")
    }

    /// The program's one filter when the supervisor holds its listener:
    /// transparent brokering's ([`Program::notify_filter`]) or the guard's,
    /// and the deny filter for `rules`, in one program that decides every
    /// call as the two stacked would (`FilterSpec::stacked_under`). With
    /// `ip_sockets`, `socket()` of AF_INET/AF_INET6 is notified as well
    /// (`[network] mode = "none"`: the deny part is then
    /// [`NetSyscalls::UnixOnlyIpNotified`]'s, which leaves them to the
    /// supervisor).
    pub fn supervised(rules: &SyscallRules, transparent: bool, ip_sockets: bool) -> Program {
        Program::build(&filter::supervised_spec(rules, transparent, ip_sockets))
            .expect("the supervised filter tables are valid")
    }

    /// The names of the system calls [`Program::notify_filter`] notifies.
    pub fn notified_syscall_names() -> Vec<&'static str> {
        filter::notify_spec(false)
            .rules
            .iter()
            .map(|r| r.name)
            .collect()
    }

    /// Compiles any rule table, e.g. a user-notification filter.
    pub fn build(spec: &FilterSpec) -> Result<Program, BuildError> {
        spec::compile(spec).map(|insns| Program { insns })
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.insns
    }

    /// A sock_fprog pointing into self (valid while self lives, must not move).
    pub fn as_fprog(&self) -> libc::sock_fprog {
        libc::sock_fprog {
            // build() caps programs at BPF_MAXINSNS (4096), so this never truncates.
            len: self.insns.len() as libc::c_ushort,
            // The kernel only reads the program; the field is `*mut` in C.
            filter: self.insns.as_ptr().cast_mut(),
        }
    }
}

/// The names of every syscall the deny filter refuses, for reports and docs:
/// those refused outright and those refused for some arguments.
pub fn denied_syscall_names(rules: &SyscallRules) -> Vec<&'static str> {
    filter::deny_spec(rules)
        .rules
        .iter()
        .filter(|rule| rule.check.can_refuse() && rule.name != filter::MARKER_SYSCALL)
        .map(|rule| rule.name)
        .collect()
}

/// Install a prepared filter on the calling thread: seccomp(SECCOMP_SET_MODE_FILTER, flags, prog) via raw syscall.
///
/// Async-signal-safe: no allocation, no locks (it runs between fork and exec).
/// Returns Err(errno) on failure. Requires no_new_privs already set (or
/// CAP_SYS_ADMIN).
///
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` is refused with `EINVAL` because the
/// listener fd would be lost: use [`install_with_listener`]. With
/// `SECCOMP_FILTER_FLAG_TSYNC` (and without `_TSYNC_ESRCH`), the kernel
/// reports a thread it could not synchronise by returning that thread's id;
/// this is returned as `Err(ESRCH)`.
pub fn install(prog: &libc::sock_fprog, flags: libc::c_ulong) -> Result<(), i32> {
    if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        return Err(libc::EINVAL);
    }
    match seccomp_set_mode_filter(prog, flags)? {
        0 => Ok(()),
        _thread_id => Err(libc::ESRCH),
    }
}

/// Like [`install`], with `SECCOMP_FILTER_FLAG_NEW_LISTENER` added: returns
/// the fd on which the supervisor receives `SECCOMP_RET_USER_NOTIF`
/// notifications. With TSYNC, the kernel requires `_TSYNC_ESRCH` as well.
/// Async-signal-safe.
pub fn install_with_listener(prog: &libc::sock_fprog, flags: libc::c_ulong) -> Result<RawFd, i32> {
    let fd = seccomp_set_mode_filter(prog, flags | SECCOMP_FILTER_FLAG_NEW_LISTENER)?;
    RawFd::try_from(fd).map_err(|_| libc::EOVERFLOW)
}

/// The raw syscall: libc has no wrapper, and `prctl(PR_SET_SECCOMP)` cannot
/// pass flags.
fn seccomp_set_mode_filter(prog: &libc::sock_fprog, flags: libc::c_ulong) -> Result<i64, i32> {
    // The kernel only reads `prog` and the `len` instructions it points to.
    // SAFETY: both stay alive for the call (see `Program::as_fprog`).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        // Reading errno neither allocates nor locks.
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL))
    } else {
        Ok(rc)
    }
}
