//! Processes: /proc of other processes, ptrace, signals, bombs, credentials.

use std::ffi::{c_int, c_void};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::{describe, last_error, usage, Fail, Step};

pub(crate) fn ppid() -> Step {
    // SAFETY: getppid cannot fail.
    let ppid = unsafe { libc::getppid() };
    let comm = fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
    Ok(format!("ppid={ppid} comm={}", comm.trim()))
}

/// Reads a few bytes of another process's memory through /proc/PID/mem, at
/// addresses taken from /proc/PID/maps (or typical ones when maps is refused).
pub(crate) fn proc_mem(path: &str) -> Step {
    let dir = Path::new(path).parent().unwrap_or(Path::new("/"));
    let mut notes = Vec::new();
    let mut addrs = Vec::new();
    match fs::read_to_string(dir.join("maps")) {
        Ok(maps) => {
            for line in maps.lines() {
                let mut fields = line.split_whitespace();
                let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
                    continue;
                };
                let start = range.split('-').next().unwrap_or("");
                if perms.starts_with('r') && !line.ends_with("[vvar]") {
                    if let Ok(addr) = u64::from_str_radix(start, 16) {
                        addrs.push(addr);
                    }
                }
                if addrs.len() == 4 {
                    break;
                }
            }
        }
        Err(e) => notes.push(format!("maps: {}", describe(&e))),
    }
    if addrs.is_empty() {
        addrs = vec![0x40_0000, 0x5555_5555_4000, 0x7fff_f7fc_0000];
    }
    let file = File::open(path).map_err(|e| {
        notes.push(format!("open {path}: {}", describe(&e)));
        Fail::Blocked(notes.join("; "))
    })?;
    for addr in addrs {
        let mut buf = [0u8; 16];
        match file.read_at(&mut buf, addr) {
            Ok(n) if n > 0 => return Ok(format!("read {n} bytes of {path} at {addr:#x}")),
            Ok(_) => notes.push(format!("{addr:#x}: end of file")),
            Err(e) => notes.push(format!("{addr:#x}: {}", describe(&e))),
        }
    }
    Err(Fail::Blocked(notes.join("; ")))
}

/// A child that waits to be signalled or traced; it dies with the probe.
fn spawn_sleeper() -> Result<libc::pid_t, Fail> {
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child only makes async-signal-safe calls, then waits or exits.
    match unsafe { libc::fork() } {
        -1 => Err(usage(&format!(
            "fork: {}",
            describe(&io::Error::last_os_error())
        ))),
        // SAFETY: plain syscalls in the freshly forked child.
        0 => unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            loop {
                libc::pause();
            }
        },
        pid => Ok(pid),
    }
}

fn reap(pid: libc::pid_t) {
    // SAFETY: pid is our own child; killing and reaping it has no other effect.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// `child` means a child this probe forks (inside the same sandbox).
fn target_pid(target: &str) -> Result<(libc::pid_t, bool), Fail> {
    if target == "child" {
        return Ok((spawn_sleeper()?, true));
    }
    let pid = target
        .parse()
        .map_err(|_| usage(&format!("not a pid: {target}")))?;
    Ok((pid, false))
}

pub(crate) fn ptrace_attach(target: &str) -> Step {
    let (pid, ours) = target_pid(target)?;
    let null = std::ptr::null_mut::<c_void>();
    // SAFETY: PTRACE_SEIZE takes a pid and no memory; a seized tracee needs no
    // stop, and the kernel detaches it when this process exits.
    let ret = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, null, null) };
    let result = if ret == 0 {
        Ok(format!("seized pid {pid}"))
    } else {
        Err(last_error(&format!("ptrace(PTRACE_SEIZE, {pid})")))
    };
    if ours {
        reap(pid);
    }
    result
}

pub(crate) fn signal(target: &str, sig: &str) -> Step {
    let sig: c_int = sig
        .parse()
        .map_err(|_| usage(&format!("not a signal number: {sig}")))?;
    let (pid, ours) = target_pid(target)?;
    // SAFETY: kill has no memory arguments.
    let ret = unsafe { libc::kill(pid, sig) };
    let result = if ret == 0 {
        Ok(format!("sent signal {sig} to pid {pid}"))
    } else {
        Err(last_error(&format!("kill({pid}, {sig})")))
    };
    if ours {
        reap(pid);
    }
    result
}

/// Forks sleeping children until fork fails or `cap` is reached, then kills them
/// all. Each child also dies with the probe (PR_SET_PDEATHSIG), so none is left
/// behind even if the probe itself is killed.
pub(crate) fn fork_bomb(cap: u64) -> Step {
    let mut children = Vec::new();
    let mut failure = None;
    while (children.len() as u64) < cap {
        match spawn_sleeper() {
            Ok(pid) => children.push(pid),
            Err(fail) => {
                failure = Some(fail.into_message());
                break;
            }
        }
    }
    let count = children.len();
    for pid in children {
        reap(pid);
    }
    match failure {
        None => Ok(format!("forked {count} children (cap {cap} reached)")),
        Some(message) => Err(Fail::Blocked(format!(
            "forked {count} children, then {message}"
        ))),
    }
}

/// Maps and touches `total` bytes in 64 MiB chunks, with mmap directly so that
/// RLIMIT_AS shows as mmap's ENOMEM rather than an allocator abort.
pub(crate) fn mem_bomb(total: u64) -> Step {
    const CHUNK: u64 = 64 << 20;
    let mut mapped = 0u64;
    while mapped < total {
        let len = CHUNK.min(total - mapped) as usize;
        // SAFETY: an anonymous private mapping touches no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_error(&format!("mmap after {mapped} of {total} bytes")));
        }
        for offset in (0..len).step_by(4096) {
            // SAFETY: offset < len, inside the writable mapping just created.
            unsafe { ptr.cast::<u8>().add(offset).write_volatile(1) };
        }
        mapped += len as u64;
    }
    Ok(format!("mapped and touched {mapped} bytes"))
}

fn status_fields(keys: &[&str]) -> Result<String, Fail> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|e| usage(&format!("cannot read /proc/self/status: {e}")))?;
    let mut out = Vec::new();
    for line in status.lines() {
        if let Some((key, value)) = line.split_once(':') {
            if keys.contains(&key) {
                out.push(format!("{key}={}", value.trim()));
            }
        }
    }
    Ok(out.join(" "))
}

pub(crate) fn caps() -> Step {
    status_fields(&[
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
    ])
}

fn ids() -> (u32, u32, u32, u32) {
    // SAFETY: these calls cannot fail.
    unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    }
}

pub(crate) fn whoami() -> String {
    let (uid, euid, gid, egid) = ids();
    format!("uid={uid} euid={euid} gid={gid} egid={egid}")
}

/// For a copy installed setuid root: OK means the exec raised the effective uid.
pub(crate) fn setuid_check() -> Step {
    let (uid, euid, _, _) = ids();
    if euid == 0 && uid != 0 {
        Ok(format!("gained root: {}", whoami()))
    } else {
        Err(Fail::Blocked(format!("no privilege gained: {}", whoami())))
    }
}

/// Prints `NAME=VALUE` lines, then the status line.
pub(crate) fn env() -> Step {
    let mut count = 0;
    for (name, value) in std::env::vars_os() {
        println!("{}={}", name.to_string_lossy(), value.to_string_lossy());
        count += 1;
    }
    Ok(format!("{count} variables"))
}

pub(crate) fn pidfd_signal(target: &str, sig: &str) -> Step {
    let sig: c_int = sig
        .parse()
        .map_err(|_| usage(&format!("not a signal number: {sig}")))?;
    let (pid, ours) = target_pid(target)?;
    // SAFETY: pidfd_open takes a pid and flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let result = if fd < 0 {
        Err(last_error(&format!("pidfd_open({pid})")))
    } else {
        // SAFETY: fd was just returned by pidfd_open.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as c_int) };
        // SAFETY: a null siginfo is allowed; flags 0.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                sig,
                std::ptr::null::<c_void>(),
                0,
            )
        };
        if ret == 0 {
            Ok(format!("sent signal {sig} to pid {pid} through a pidfd"))
        } else {
            Err(last_error(&format!("pidfd_send_signal({pid}, {sig})")))
        }
    };
    if ours {
        reap(pid);
    }
    result
}

/// The open descriptors, as `N=target`: whatever sluice let through.
pub(crate) fn fds() -> Step {
    let mut open = Vec::new();
    for fd in 0..4096 {
        // SAFETY: F_GETFD on any number only reports whether it is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            let target = fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_else(|e| format!("? ({})", describe(&e)));
            open.push(format!("{fd}={target}"));
        }
    }
    // The broker's shared socket is inherited on purpose; say which it is.
    let broker = std::env::var("SLUICE_BROKER_FD").unwrap_or_else(|_| "-".into());
    Ok(format!("fds {} broker={broker}", open.join(" ")))
}

/// Moves this process into the root of its pids (v1) or unified (v2) cgroup
/// hierarchy, out of any limit set below it.
pub(crate) fn cgroup_escape() -> Step {
    let cgroups = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| usage(&format!("cannot read /proc/self/cgroup: {e}")))?;
    let mut roots = Vec::new();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(_)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() && Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
            roots.push("/sys/fs/cgroup".to_owned());
        } else if controllers.split(',').any(|c| c == "pids") {
            roots.push(format!("/sys/fs/cgroup/{controllers}"));
        }
    }
    if roots.is_empty() {
        return Err(usage(&format!("no pids cgroup hierarchy in:\n{cgroups}")));
    }
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() }.to_string();
    let mut notes = Vec::new();
    for root in roots {
        let procs = format!("{root}/cgroup.procs");
        match fs::OpenOptions::new()
            .write(true)
            .open(&procs)
            .and_then(|mut f| io::Write::write_all(&mut f, pid.as_bytes()))
        {
            Ok(()) => return Ok(format!("moved into {root}")),
            Err(e) => notes.push(format!("{procs}: {}", describe(&e))),
        }
    }
    Err(Fail::Blocked(notes.join("; ")))
}

/// Double-forks a daemon in its own session that waits forever with its stdio
/// on /dev/null, writes its pid to `pidfile`, and reports it. It outlives the
/// probe: whether it outlives the sandbox session is the test's question.
pub(crate) fn daemon(pidfile: &str) -> Step {
    let mut pipe = [0 as c_int; 2];
    // SAFETY: pipe is a valid two-element array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(usage("pipe2 failed"));
    }
    // SAFETY: the probe is single-threaded, so the children may run any code.
    match unsafe { libc::fork() } {
        -1 => Err(last_error("fork")),
        0 => {
            // SAFETY: the middle child: new session, fork, exit.
            unsafe {
                libc::setsid();
                if libc::fork() != 0 {
                    libc::_exit(0);
                }
            }
            let null = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null");
            if let Ok(null) = null {
                for fd in 0..3 {
                    // SAFETY: dup2 onto the standard descriptors.
                    unsafe { libc::dup2(null.as_raw_fd(), fd) };
                }
            }
            // SAFETY: getpid cannot fail.
            let me = unsafe { libc::getpid() };
            let written = fs::write(pidfile, me.to_string()).is_ok();
            // SAFETY: one byte to the parent, then wait forever.
            unsafe {
                if written {
                    libc::write(pipe[1], b"x".as_ptr().cast(), 1);
                }
                libc::close(pipe[1]);
                loop {
                    libc::pause();
                }
            }
        }
        middle => {
            let mut byte = 0u8;
            // SAFETY: closing our copy of the write end, reaping the middle
            // child, then reading one byte into a valid buffer.
            let got = unsafe {
                libc::close(pipe[1]);
                libc::waitpid(middle, std::ptr::null_mut(), 0);
                let got = libc::read(pipe[0], (&mut byte as *mut u8).cast(), 1);
                libc::close(pipe[0]);
                got
            };
            if got != 1 {
                return Err(Fail::Blocked(format!(
                    "the daemon could not write {pidfile}"
                )));
            }
            let pid = fs::read_to_string(pidfile).unwrap_or_default();
            Ok(format!("daemon pid {pid}"))
        }
    }
}
