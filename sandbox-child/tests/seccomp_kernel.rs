//! The deny filter installed in the real kernel.
//!
//! Each test forks: the child sets no_new_privs, installs the filter and makes
//! raw syscalls (nothing that allocates or locks, since the test harness is
//! multi-threaded), then reports through a pipe and its exit status. Every
//! probe also runs in a child without the filter, so a test proves the filter
//! and not a typo in the probe. A kernel without seccomp fails these tests.
#![cfg(target_os = "linux")]

use std::os::fd::RawFd;

use sandbox_child::seccomp::{
    self, install, install_with_listener, Action, FilterSpec, NetSyscalls, Program, SyscallRule,
    SyscallRules, SECCOMP_FILTER_FLAG_NEW_LISTENER,
};

/// A syscall's result: the return value, or the errno.
type Outcome = Result<libc::c_long, i32>;

/// What a probe must produce.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Succeeds,
    Returns(libc::c_long),
    Fails(i32),
    /// Fails, but not with this errno (the filter's): the kernel's own answer
    /// depends on configuration we do not control.
    FailsOtherThan(i32),
}

impl Expect {
    fn matches(self, outcome: Outcome) -> bool {
        match (self, outcome) {
            (Expect::Succeeds, Ok(_)) => true,
            (Expect::Returns(want), Ok(got)) => want == got,
            (Expect::Fails(want), Err(got)) => want == got,
            (Expect::FailsOtherThan(not), Err(got)) => not != got,
            _ => false,
        }
    }
}

struct Probe {
    name: &'static str,
    call: fn(&libc::sock_fprog) -> Outcome,
    filtered: Expect,
    unfiltered: Expect,
}

const HIGH_GARBAGE: u64 = 0xdead_beef_0000_0000;
const TIOCSTI_HIGH_GARBAGE: u64 = libc::TIOCSTI as u32 as u64 | 1 << 32;

/// Run in this order; the ones that change the child's state come last.
const PROBES: &[Probe] = &[
    Probe {
        name: "getpid",
        call: |_| check(raw_syscall0(libc::SYS_getpid)),
        filtered: Expect::Succeeds,
        unfiltered: Expect::Succeeds,
    },
    Probe {
        name: "prctl(PR_GET_SECCOMP)",
        call: |_| check(raw_prctl(libc::PR_GET_SECCOMP, 0)),
        filtered: Expect::Returns(libc::SECCOMP_MODE_FILTER as libc::c_long),
        unfiltered: Expect::Returns(0),
    },
    Probe {
        name: "prctl(NESTING_MARKER_OPTION)",
        call: |_| check(raw_prctl(seccomp::NESTING_MARKER_OPTION as libc::c_int, 0)),
        filtered: Expect::Fails(seccomp::NESTING_MARKER_ERRNO as i32),
        unfiltered: Expect::Fails(libc::EINVAL),
    },
    Probe {
        name: "memfd_create(\"x\", MFD_CLOEXEC)",
        call: |_| close_fd(memfd(0)),
        filtered: Expect::Fails(libc::EPERM),
        unfiltered: Expect::Succeeds,
    },
    Probe {
        name: "memfd_create(\"x\", MFD_CLOEXEC | MFD_NOEXEC_SEAL)",
        call: |_| close_fd(memfd(libc::MFD_NOEXEC_SEAL)),
        filtered: Expect::Succeeds,
        unfiltered: Expect::Succeeds,
    },
    Probe {
        name: "socket(AF_INET, SOCK_STREAM)",
        call: |_| close_fd(socket(libc::AF_INET)),
        filtered: Expect::Fails(libc::EPERM),
        unfiltered: Expect::Succeeds,
    },
    Probe {
        name: "socket(AF_UNIX, SOCK_STREAM)",
        call: |_| close_fd(socket(libc::AF_UNIX)),
        filtered: Expect::Succeeds,
        unfiltered: Expect::Succeeds,
    },
    Probe {
        name: "ioctl(memfd, TIOCSTI)",
        call: |_| ioctl_on_memfd(libc::TIOCSTI as u32 as u64),
        filtered: Expect::Fails(libc::EPERM),
        unfiltered: Expect::Fails(libc::ENOTTY),
    },
    Probe {
        name: "ioctl(memfd, TIOCSTI | 1 << 32)",
        call: |_| ioctl_on_memfd(TIOCSTI_HIGH_GARBAGE),
        filtered: Expect::Fails(libc::EPERM),
        unfiltered: Expect::Fails(libc::ENOTTY),
    },
    Probe {
        name: "fchmod(memfd, 04644)",
        call: |_| fchmod_memfd(0o4644),
        filtered: Expect::Fails(libc::EPERM),
        unfiltered: Expect::Succeeds,
    },
    Probe {
        name: "fchmod(memfd, 02644 | high garbage)",
        call: |_| fchmod_memfd(0o2644 | HIGH_GARBAGE),
        filtered: Expect::Fails(libc::EPERM),
        unfiltered: Expect::Succeeds,
    },
    Probe {
        name: "fchmod(memfd, 01644)",
        call: |_| fchmod_memfd(0o1644),
        filtered: Expect::Succeeds,
        unfiltered: Expect::Succeeds,
    },
    Probe {
        name: "openat(\"/tmp\", O_TMPFILE, 04600)",
        call: |_| close_fd(open_tmpfile(libc::O_TMPFILE, 0o4600)),
        filtered: Expect::Fails(libc::EPERM),
        unfiltered: Expect::Succeeds,
    },
    Probe {
        name: "openat(\"/tmp\", O_TMPFILE, 0600)",
        call: |_| close_fd(open_tmpfile(libc::O_TMPFILE, 0o600)),
        filtered: Expect::Succeeds,
        unfiltered: Expect::Succeeds,
    },
    Probe {
        // Without O_CREAT or O_TMPFILE the kernel ignores the mode.
        name: "openat(\"/tmp\", O_DIRECTORY, 06000)",
        call: |_| close_fd(open_tmpfile(libc::O_DIRECTORY, 0o6000)),
        filtered: Expect::Succeeds,
        unfiltered: Expect::Succeeds,
    },
    Probe {
        name: "io_uring_setup(0, NULL)",
        call: |_| check(raw_syscall2(libc::SYS_io_uring_setup, 0, 0)),
        filtered: Expect::Fails(libc::EPERM),
        unfiltered: Expect::FailsOtherThan(libc::EPERM),
    },
    Probe {
        name: "clone3(NULL, 0)",
        call: |_| check(raw_syscall2(libc::SYS_clone3, 0, 0)),
        filtered: Expect::Fails(libc::ENOSYS),
        unfiltered: Expect::Fails(libc::EINVAL),
    },
    Probe {
        name: "setns(-1, CLONE_NEWUSER)",
        call: |_| {
            check(raw_syscall2(
                libc::SYS_setns,
                -1,
                libc::CLONE_NEWUSER as u64,
            ))
        },
        filtered: Expect::Fails(libc::EPERM),
        unfiltered: Expect::Fails(libc::EBADF),
    },
    Probe {
        name: "unshare(CLONE_NEWUSER)",
        call: |_| check(raw_syscall1(libc::SYS_unshare, libc::CLONE_NEWUSER as u64)),
        filtered: Expect::Fails(libc::EPERM),
        unfiltered: Expect::Succeeds,
    },
    Probe {
        name: "ptrace(PTRACE_TRACEME)",
        call: |_| check(raw_syscall1(libc::SYS_ptrace, libc::PTRACE_TRACEME as u64)),
        filtered: Expect::Fails(libc::EPERM),
        unfiltered: Expect::Succeeds,
    },
    Probe {
        // Nested sandboxes must be able to narrow further.
        name: "install a second filter",
        call: |fprog| install(fprog, 0).map(|()| 0),
        filtered: Expect::Succeeds,
        unfiltered: Expect::Succeeds,
    },
];

/// Child exit codes for setup failures; a probe mismatch is reported by the
/// parent from the outcomes written to the pipe.
const EXIT_NO_NEW_PRIVS_FAILED: i32 = 100;
const EXIT_INSTALL_FAILED: i32 = 101;
const EXIT_SHORT_WRITE: i32 = 102;

fn strict_filter() -> Program {
    Program::deny_filter(&SyscallRules {
        net: NetSyscalls::UnixOnly,
        deny_user_namespaces: true,
        unix_datagrams: true,
        ptrace: false,
    })
}

#[test]
fn filtered_child_is_refused_what_the_filter_denies() {
    run_probes(true);
}

#[test]
fn unfiltered_child_gets_the_kernel_answers() {
    run_probes(false);
}

fn run_probes(filtered: bool) {
    let program = strict_filter();
    let fprog = program.as_fprog();
    let (status, outcomes) = fork_child(|pipe| probe_child(&fprog, filtered, pipe));
    let code = exit_code(status);
    assert_eq!(
        code, 0,
        "child setup failed with exit {code}; outcomes {outcomes:?}"
    );
    assert_eq!(outcomes.len(), PROBES.len(), "child reported {outcomes:?}");
    let mut failures = Vec::new();
    for (probe, encoded) in PROBES.iter().zip(outcomes) {
        let outcome = decode(encoded);
        let expect = if filtered {
            probe.filtered
        } else {
            probe.unfiltered
        };
        if !expect.matches(outcome) {
            failures.push(format!(
                "{}: expected {expect:?}, got {outcome:?}",
                probe.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "filtered={filtered}:\n{}",
        failures.join("\n")
    );
}

/// Runs in the forked child: only raw syscalls from here on.
fn probe_child(fprog: &libc::sock_fprog, filtered: bool, pipe: RawFd) -> i32 {
    if filtered {
        if let Err(code) = enter_filter(fprog, pipe) {
            return code;
        }
    }
    let mut outcomes = [0_i64; PROBES.len()];
    for (slot, probe) in outcomes.iter_mut().zip(PROBES) {
        *slot = encode((probe.call)(fprog));
    }
    write_all(pipe, &outcomes)
}

/// no_new_privs, then the filter. On failure, reports the errno and returns
/// the exit code.
fn enter_filter(fprog: &libc::sock_fprog, pipe: RawFd) -> Result<(), i32> {
    if let Err(errno) = check(raw_prctl(libc::PR_SET_NO_NEW_PRIVS, 1)) {
        write_all(pipe, &[encode(Err(errno))]);
        return Err(EXIT_NO_NEW_PRIVS_FAILED);
    }
    if let Err(errno) = install(fprog, 0) {
        write_all(pipe, &[encode(Err(errno))]);
        return Err(EXIT_INSTALL_FAILED);
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod foreign_abi {
    use super::*;

    /// `getpid` in the i386 syscall table.
    const I386_GETPID: u64 = 20;
    const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;

    /// A 32-bit syscall through the i386 entry point.
    fn int80(nr: u64) -> u64 {
        let mut rax = nr;
        // `int 0x80` is the i386 syscall path; it clobbers rax and r8-r11.
        // SAFETY: getpid touches no memory, and every clobber is declared.
        unsafe {
            core::arch::asm!(
                "int 0x80",
                inout("rax") rax,
                lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
                options(nostack),
            );
        }
        rax
    }

    fn i386_getpid_matches() -> bool {
        // The i386 result is a 32-bit value in eax.
        int80(I386_GETPID) as u32 == raw_syscall0(libc::SYS_getpid) as u32
    }

    #[test]
    fn i386_syscall_kills_the_filtered_child() {
        let program = strict_filter();
        let fprog = program.as_fprog();
        let (status, outcomes) = fork_child(|pipe| {
            no_core_dumps();
            if let Err(code) = enter_filter(&fprog, pipe) {
                return code;
            }
            i386_getpid_matches();
            0
        });
        assert_killed_by_sigsys(status, &outcomes);
    }

    #[test]
    fn i386_syscall_works_without_the_filter() {
        let (status, _) = fork_child(|_| if i386_getpid_matches() { 0 } else { 1 });
        assert_eq!(
            exit_code(status),
            0,
            "int 0x80 getpid failed: no IA-32 emulation?"
        );
    }

    #[test]
    fn x32_syscall_kills_the_filtered_child() {
        let program = strict_filter();
        let fprog = program.as_fprog();
        let (status, outcomes) = fork_child(|pipe| {
            no_core_dumps();
            if let Err(code) = enter_filter(&fprog, pipe) {
                return code;
            }
            raw_syscall0(X32_SYSCALL_BIT | libc::SYS_getpid);
            0
        });
        assert_killed_by_sigsys(status, &outcomes);
    }

    #[test]
    fn x32_syscall_returns_without_the_filter() {
        // With or without x32 support in the kernel, the call returns.
        let (status, _) = fork_child(|_| {
            raw_syscall0(X32_SYSCALL_BIT | libc::SYS_getpid);
            0
        });
        assert_eq!(exit_code(status), 0);
    }

    fn assert_killed_by_sigsys(status: i32, outcomes: &[i64]) {
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
            "expected death by SIGSYS, got wait status {status:#x}; child reported {outcomes:?}"
        );
    }

    /// The killed child would otherwise leave a core file behind.
    fn no_core_dumps() {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads the struct we pass; async-signal-safe.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
    }
}

/// A user-notification filter installs and hands back its listener.
#[test]
fn listener_filter_returns_a_descriptor() {
    let spec = FilterSpec {
        rules: vec![SyscallRule::always(
            "uname",
            libc::SYS_uname,
            Action::UserNotif,
        )],
        default: Action::Allow,
    };
    let program = Program::build(&spec).unwrap();
    let fprog = program.as_fprog();
    let (status, outcomes) = fork_child(|pipe| {
        if check(raw_prctl(libc::PR_SET_NO_NEW_PRIVS, 1)).is_err() {
            return EXIT_NO_NEW_PRIVS_FAILED;
        }
        let result = install_with_listener(&fprog, 0).map(libc::c_long::from);
        write_all(pipe, &[encode(result)])
    });
    assert_eq!(exit_code(status), 0);
    let fd = decode(outcomes[0]).expect("install_with_listener");
    assert!(fd >= 0, "{fd}");
}

#[test]
fn install_refuses_a_listener_it_would_lose() {
    // Refused before reaching the kernel, so safe in the test process itself.
    let program = strict_filter();
    let result = install(&program.as_fprog(), SECCOMP_FILTER_FLAG_NEW_LISTENER);
    assert_eq!(result, Err(libc::EINVAL));
}

/// What the program's one filter (`Program::supervised`) saves a call
/// against the guard's filter and the deny filter stacked, as the program
/// ran before: CPU time per call of a loop of calls the action cache
/// cannot answer, in children under no filter, the two, and the one, in
/// turn (`cargo test -p sandbox-child --release --test seccomp_kernel --
/// --ignored --nocapture timing`).
#[test]
#[ignore = "timing: run by hand"]
fn timing_one_filter_against_two() {
    const CALLS: i64 = 200_000;
    const ROUNDS: usize = 15;
    let rules = SyscallRules {
        net: NetSyscalls::UnixOnly,
        deny_user_namespaces: true,
        unix_datagrams: true,
        ptrace: false,
    };
    let deny = Program::deny_filter(&rules);
    let guard = Program::guard_filter();
    let one = Program::supervised(&rules, false, false);
    let (deny, guard, one) = (deny.as_fprog(), guard.as_fprog(), one.as_fprog());
    let variants: [(&str, Vec<&libc::sock_fprog>); 3] = [
        ("no filter", vec![]),
        ("guard + deny", vec![&guard, &deny]),
        ("one filter", vec![&one]),
    ];
    // Each a call every program makes that runs the filters: a read-only
    // open (and its close, which the cache allows), an ioctl, a prctl.
    let calls: [(&str, fn()); 3] = [
        ("openat+close", || {
            let path = c"/dev/null".as_ptr();
            // SAFETY: a NUL-terminated constant; the descriptor is closed.
            unsafe {
                let fd = libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path, libc::O_RDONLY);
                libc::syscall(libc::SYS_close, fd);
            }
        }),
        ("ioctl", || {
            let mut t = [0u8; 64];
            // SAFETY: TCGETS on descriptor 0 writes at most a termios (60 bytes).
            unsafe { libc::syscall(libc::SYS_ioctl, 0, libc::TCGETS, t.as_mut_ptr()) };
        }),
        ("prctl", || {
            // SAFETY: integer arguments only; reads a flag.
            unsafe { libc::syscall(libc::SYS_prctl, libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        }),
    ];
    for (name, call) in calls {
        let mut ns: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        for _ in 0..ROUNDS {
            for (i, (_, filters)) in variants.iter().enumerate() {
                let (status, words) = fork_child(|pipe| {
                    if check(raw_prctl(libc::PR_SET_NO_NEW_PRIVS, 1)).is_err() {
                        return EXIT_NO_NEW_PRIVS_FAILED;
                    }
                    for filter in filters {
                        if install(filter, 0).is_err() {
                            return 3;
                        }
                    }
                    let start = cpu_ns();
                    for _ in 0..CALLS {
                        call();
                    }
                    write_all(pipe, &[cpu_ns() - start])
                });
                assert_eq!(exit_code(status), 0);
                ns[i].push(words[0] as f64 / CALLS as f64);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[v.len() / 4], v[v.len() * 3 / 4])
        };
        for (i, (variant, _)) in variants.iter().enumerate() {
            let (p50, p25, p75) = median(&mut ns[i]);
            println!("{name}: {variant}: {p50:.1} ns a call (p25 {p25:.1}, p75 {p75:.1})");
        }
    }
}

/// This thread's CPU time in nanoseconds (the vDSO: no allocation, no lock).
fn cpu_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the time into a local.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

// --- fork and report plumbing ---

/// Forks; the child runs `child` with the write end of a pipe and exits with
/// its result. Returns the wait status and the i64 words the child wrote.
fn fork_child(child: impl FnOnce(RawFd) -> i32) -> (i32, Vec<i64>) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let [read_end, write_end] = fds;
    // The child runs raw syscalls on stack data only (see `child`).
    // SAFETY: it is async-signal-safe and leaves with _exit, never returning.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: closing our copy of the read end, then exiting without
        // running the parent's atexit handlers or destructors.
        unsafe {
            libc::close(read_end);
            libc::_exit(child(write_end));
        }
    }
    // SAFETY: closing the parent's copy of the write end, so the read below
    // ends when the child exits.
    unsafe { libc::close(write_end) };
    let words = read_words(read_end);
    (wait_for(pid), words)
}

fn read_words(fd: RawFd) -> Vec<i64> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` is the read end of our pipe, owned by nobody else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).expect("read from child");
    bytes
        .chunks_exact(8)
        .map(|word| i64::from_ne_bytes(word.try_into().unwrap()))
        .collect()
}

fn wait_for(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: waits for our own child and writes its status to a local.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid");
    status
}

fn exit_code(status: i32) -> i32 {
    assert!(
        libc::WIFEXITED(status),
        "child died: wait status {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

/// Writes the words to the pipe; returns the child's exit code.
fn write_all(fd: RawFd, words: &[i64]) -> i32 {
    let len = std::mem::size_of_val(words);
    // SAFETY: the pointer and length describe the slice; the pipe buffer
    // (64 KiB) holds this in one write, which is async-signal-safe.
    let written = unsafe { libc::write(fd, words.as_ptr().cast(), len) };
    if written == len as isize {
        0
    } else {
        EXIT_SHORT_WRITE
    }
}

/// Success as the value itself, failure as the negated errno.
fn encode(outcome: Outcome) -> i64 {
    match outcome {
        Ok(value) => value,
        Err(errno) => -i64::from(errno),
    }
}

fn decode(word: i64) -> Outcome {
    if word < 0 {
        Err(-word as i32)
    } else {
        Ok(word)
    }
}

// --- raw syscalls used by the probes ---

/// Turns a libc-style return value into an outcome, reading errno.
fn check(rc: libc::c_long) -> Outcome {
    if rc < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(rc)
    }
}

fn raw_syscall0(nr: libc::c_long) -> libc::c_long {
    // SAFETY: syscalls used with no arguments here touch no memory of ours.
    unsafe { libc::syscall(nr) }
}

fn raw_syscall1(nr: libc::c_long, a: u64) -> libc::c_long {
    // SAFETY: the probes pass only integer (non-pointer) arguments.
    unsafe { libc::syscall(nr, a) }
}

fn raw_syscall2(nr: libc::c_long, a: i64, b: u64) -> libc::c_long {
    // SAFETY: the probes pass integers, or NULL where a pointer is expected,
    // which the kernel rejects without dereferencing.
    unsafe { libc::syscall(nr, a, b) }
}

fn raw_prctl(option: libc::c_int, arg: libc::c_ulong) -> libc::c_long {
    // SAFETY: PR_SET_NO_NEW_PRIVS and PR_GET_SECCOMP take integers only.
    libc::c_long::from(unsafe { libc::prctl(option, arg, 0, 0, 0) })
}

fn memfd(flags: libc::c_uint) -> libc::c_long {
    // SAFETY: the name is a NUL-terminated literal.
    libc::c_long::from(unsafe { libc::memfd_create(c"x".as_ptr(), flags | libc::MFD_CLOEXEC) })
}

fn socket(domain: libc::c_int) -> libc::c_long {
    // SAFETY: socket takes integers only.
    libc::c_long::from(unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })
}

/// Closes a descriptor a probe created, keeping the outcome.
fn close_fd(rc: libc::c_long) -> Outcome {
    let outcome = check(rc);
    if let Ok(fd) = outcome {
        // SAFETY: the probe just created this descriptor and nothing else uses it.
        unsafe { libc::close(fd as RawFd) };
    }
    outcome
}

/// `fchmod` of a fresh memfd (sealed against exec-bit changes, which these
/// modes leave alone), with `mode`'s upper half passed through unchanged.
fn fchmod_memfd(mode: u64) -> Outcome {
    let fd = check(memfd(libc::MFD_NOEXEC_SEAL))?;
    // SAFETY: fchmod takes integers only.
    let outcome = check(unsafe { libc::syscall(libc::SYS_fchmod, fd, mode) });
    // SAFETY: we created this descriptor above.
    unsafe { libc::close(fd as RawFd) };
    outcome
}

/// `openat(AT_FDCWD, "/tmp", O_RDWR | flags, mode)`: an unnamed file with
/// O_TMPFILE, nothing made otherwise.
fn open_tmpfile(flags: libc::c_int, mode: u64) -> libc::c_long {
    let access = if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        libc::O_RDWR
    } else {
        libc::O_RDONLY
    };
    let flags = (flags | access | libc::O_CLOEXEC) as u64;
    // SAFETY: the path is a NUL-terminated literal; the rest are integers.
    unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            c"/tmp".as_ptr(),
            flags,
            mode,
        )
    }
}

/// An ioctl request on a memfd, which is never a terminal: without the
/// filter the kernel answers ENOTTY and nothing is injected anywhere.
fn ioctl_on_memfd(request: u64) -> Outcome {
    let fd = check(memfd(libc::MFD_NOEXEC_SEAL))?;
    let byte = b'x';
    // Raw syscall so the upper half of `request` reaches the filter unchanged.
    // SAFETY: TIOCSTI reads at most one byte through a valid pointer.
    let rc = unsafe { libc::syscall(libc::SYS_ioctl, fd, request, &byte as *const u8) };
    let outcome = check(rc);
    // SAFETY: we created this descriptor above.
    unsafe { libc::close(fd as RawFd) };
    outcome
}
