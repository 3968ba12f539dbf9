//! `sluice-probe`: performs one attack (or its control) per invocation, so a test
//! can run the same action inside sluice and outside it and compare.
//!
//! Usage: `sluice-probe ACTION ARGS... [+ ACTION ARGS...]...`
//!
//! Each step prints one line, `OK <detail>` when the action succeeded or
//! `BLOCKED <errno/detail>` when the kernel refused it. Steps joined by `+` run in
//! order and stop at the first one that does not succeed, so a multi-step attack
//! (rename a protected directory away, recreate it, write into it) is one
//! invocation. Exit status: 0 every step succeeded, 1 a step was blocked, 2 usage or
//! setup error (the probe itself could not do its job: neither OK nor BLOCKED).
//!
//! In arguments, `{ppid}` is replaced by the probe's parent pid (under sluice, the
//! supervisor), `{pid}` by its own pid and `{tmpdir}` by `$TMPDIR`: the test does
//! not need a shell inside the sandbox to name those.
//!
//! Every failure of the attacked operation counts as BLOCKED whatever the errno
//! (a denied file may show as EACCES, ENOENT when hidden, EROFS, EBUSY, ...); the
//! tests' controls (the same action outside the sandbox succeeding) are what rule
//! out a typo.

use std::ffi::{CString, c_char, c_int, c_long, c_void};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::exit;

/// Why a step did not succeed.
enum Fail {
    /// The attacked operation failed: the sandbox (or the kernel) refused it.
    Blocked(String),
    /// The probe was misused or could not set itself up.
    Usage(String),
}

type Step = Result<String, Fail>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).map(|a| substitute(&a)).collect();
    if args.is_empty() {
        eprintln!("usage: sluice-probe ACTION ARGS... [+ ACTION ARGS...]...");
        exit(2);
    }
    for step in args.split(|a| a == "+") {
        match run(step) {
            Ok(detail) => println!("OK {detail}"),
            Err(Fail::Blocked(detail)) => {
                println!("BLOCKED {detail}");
                exit(1);
            }
            Err(Fail::Usage(message)) => {
                eprintln!("sluice-probe: {message}");
                exit(2);
            }
        }
    }
}

fn substitute(arg: &str) -> String {
    // SAFETY: getppid and getpid cannot fail and have no preconditions.
    let (ppid, pid) = unsafe { (libc::getppid(), libc::getpid()) };
    let tmpdir = std::env::var("TMPDIR").unwrap_or_default();
    arg.replace("{ppid}", &ppid.to_string())
        .replace("{pid}", &pid.to_string())
        .replace("{tmpdir}", &tmpdir)
}

fn run(step: &[String]) -> Step {
    let Some((action, args)) = step.split_first() else {
        return Err(usage("empty step"));
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match (action.as_str(), args.as_slice()) {
        ("read", [path]) => read(path),
        ("write", [path]) => write(path, false),
        ("append", [path]) => write(path, true),
        ("mkdir", [path]) => fs::create_dir(path)
            .map(|()| format!("created {path}"))
            .map_err(|e| blocked(&format!("mkdir {path}"), &e)),
        ("ls", [dir]) => ls(dir),
        ("rename", [from, to]) => fs::rename(from, to)
            .map(|()| format!("renamed {from} to {to}"))
            .map_err(|e| blocked(&format!("rename {from} {to}"), &e)),
        ("unlink", [path]) => fs::remove_file(path)
            .map(|()| format!("unlinked {path}"))
            .map_err(|e| blocked(&format!("unlink {path}"), &e)),
        ("rmdir", [path]) => fs::remove_dir(path)
            .map(|()| format!("removed {path}"))
            .map_err(|e| blocked(&format!("rmdir {path}"), &e)),
        ("symlink", [target, link]) => symlink(target, link),
        ("hardlink", [target, link]) => hardlink(target, link),
        ("read-via-symlink", [target, link]) => symlink(target, link).and_then(|_| read(link)),
        ("write-via-symlink", [target, link]) => {
            symlink(target, link).and_then(|_| write(link, false))
        }
        ("read-via-hardlink", [target, link]) => {
            hardlink(target, link).and_then(|_| read(link))
        }
        ("read-via-opath", [path]) => read_via_opath(path),
        ("exec", [path, rest @ ..]) => exec(path, rest),
        ("marker", words) => Ok(format!("marker {}", words.join(" "))),
        ("proc-read", [path]) if path.ends_with("/mem") => proc_mem(path),
        ("proc-read", [path]) => read(path),
        ("proc-root-ls", [pid]) => ls(&format!("/proc/{pid}/root/")),
        ("ppid", []) => ppid(),
        ("ptrace-attach", [target]) => ptrace_attach(target),
        ("signal", [target, sig]) => signal(target, sig),
        ("io-uring", []) => io_uring(),
        ("handle", [path]) => handle(path).map(|h| format!("handle {h}")),
        ("open-by-handle", [path]) => {
            let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
            let handle = handle(path)?;
            open_by_handle(&parent.to_string_lossy(), &handle)
        }
        ("open-by-handle", [mount_dir, handle]) => open_by_handle(mount_dir, handle),
        ("memfd-exec", []) => memfd_exec(false),
        ("memfd-exec-sealed", []) => memfd_exec(true),
        ("tiocsti", []) => tiocsti(),
        ("tcp-connect", [host, port]) => tcp_connect(host, port),
        ("udp-send", [host, port]) => udp_send(host, port),
        ("tcp-bind", [port]) => tcp_bind(port),
        ("abstract-connect", [name]) => unix_connect(&abstract_addr(name)?, &format!("@{name}")),
        ("abstract-self", [name]) => abstract_self(name),
        ("unix-connect", [path]) => unix_connect(&path_addr(path)?, path),
        ("fork-bomb", [cap]) => fork_bomb(parse_num(cap)?),
        ("mem-bomb", [bytes]) => mem_bomb(parse_num(bytes)?),
        ("caps", []) => caps(),
        ("whoami", []) => Ok(whoami()),
        ("setuid-check", []) => setuid_check(),
        ("env", []) => env(),
        ("userns", []) => unshare_userns(),
        ("mount-tmpfs", [dir]) => mount_tmpfs(dir),
        ("umount", [dir]) => umount(dir),
        ("chroot", [dir]) => chroot(dir),
        _ => Err(usage(&format!("unknown action or wrong arguments: {}", step.join(" ")))),
    }
}

// ---------------------------------------------------------------- helpers

fn usage(message: &str) -> Fail {
    Fail::Usage(message.to_owned())
}

fn blocked(what: &str, err: &io::Error) -> Fail {
    Fail::Blocked(format!("{what}: {}", describe(err)))
}

fn last_error(what: &str) -> Fail {
    blocked(what, &io::Error::last_os_error())
}

/// `EACCES (Permission denied)`: the symbolic name first, so tests can match it.
fn describe(err: &io::Error) -> String {
    let Some(code) = err.raw_os_error() else {
        return err.to_string();
    };
    let name = match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ESTALE => "ESTALE",
        _ => "E?",
    };
    let text = io::Error::from_raw_os_error(code).to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
    format!("{name} ({text})")
}

fn cstring(s: &str) -> Result<CString, Fail> {
    CString::new(s).map_err(|_| usage(&format!("argument contains NUL: {s:?}")))
}

fn parse_num(s: &str) -> Result<u64, Fail> {
    s.parse().map_err(|_| usage(&format!("not a number: {s}")))
}

/// The first bytes of `data`, escaped, so the test can see what leaked.
fn preview(data: &[u8]) -> String {
    let head = &data[..data.len().min(160)];
    String::from_utf8_lossy(head).escape_debug().to_string()
}

// ---------------------------------------------------------------- files

fn read(path: &str) -> Step {
    let data = fs::read(path).map_err(|e| blocked(&format!("read {path}"), &e))?;
    Ok(format!("read {} bytes from {path}: {}", data.len(), preview(&data)))
}

fn write(path: &str, append: bool) -> Step {
    let mut options = OpenOptions::new();
    if append {
        options.append(true);
    } else {
        options.write(true).create(true).truncate(true);
    }
    let what = if append { "append" } else { "write" };
    let mut file = options
        .open(path)
        .map_err(|e| blocked(&format!("open {path} for {what}"), &e))?;
    file.write_all(b"pwned")
        .map_err(|e| blocked(&format!("{what} {path}"), &e))?;
    Ok(format!("{what} {path}"))
}

fn ls(dir: &str) -> Step {
    let entries = fs::read_dir(dir).map_err(|e| blocked(&format!("opendir {dir}"), &e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| blocked(&format!("readdir {dir}"), &e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(format!("{} entries in {dir}: {}", names.len(), names.join(" ")))
}

fn symlink(target: &str, link: &str) -> Step {
    std::os::unix::fs::symlink(target, link)
        .map(|()| format!("symlink {link} -> {target}"))
        .map_err(|e| blocked(&format!("symlink {link} -> {target}"), &e))
}

fn hardlink(target: &str, link: &str) -> Step {
    fs::hard_link(target, link)
        .map(|()| format!("hardlink {link} = {target}"))
        .map_err(|e| blocked(&format!("link {target} {link}"), &e))
}

/// Opens `path` with O_PATH (which needs no read right), then reopens the
/// descriptor through /proc/self/fd for reading.
fn read_via_opath(path: &str) -> Step {
    let c_path = cstring(path)?;
    // SAFETY: c_path is a valid NUL-terminated string.
    let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(last_error(&format!("open {path} O_PATH")));
    }
    // SAFETY: fd was just returned by open and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    read(&format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

// ---------------------------------------------------------------- exec

fn exec(path: &str, rest: &[&str]) -> Step {
    let c_path = cstring(path)?;
    let mut argv = vec![c_path.clone()];
    for arg in rest {
        argv.push(cstring(arg)?);
    }
    let mut ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    io::stdout().flush().ok();
    // SAFETY: path and argv are NUL-terminated and the argv array ends in NULL;
    // execv only returns on failure.
    unsafe { libc::execv(c_path.as_ptr(), ptrs.as_ptr()) };
    Err(last_error(&format!("execv {path}")))
}

/// Copies this very binary into a memfd and executes it from there (the copy
/// prints an OK marker), first as a plain memfd, then with MFD_EXEC; or, when
/// `sealed`, with MFD_NOEXEC_SEAL, where the kernel itself must refuse the exec.
fn memfd_exec(sealed: bool) -> Step {
    let image = fs::read("/proc/self/exe")
        .map_err(|e| usage(&format!("cannot read /proc/self/exe: {e}")))?;
    let attempts: &[(libc::c_uint, &str)] = if sealed {
        &[(libc::MFD_CLOEXEC | libc::MFD_NOEXEC_SEAL, "MFD_NOEXEC_SEAL")]
    } else {
        &[
            (libc::MFD_CLOEXEC, "plain"),
            (libc::MFD_CLOEXEC | libc::MFD_EXEC, "MFD_EXEC"),
        ]
    };
    let mut notes = Vec::new();
    for &(flags, label) in attempts {
        // SAFETY: the name is a valid C string; memfd_create has no other inputs.
        let fd = unsafe { libc::syscall(libc::SYS_memfd_create, c"probe".as_ptr(), flags) };
        if fd < 0 {
            let err = io::Error::last_os_error();
            notes.push(format!("memfd_create({label}): {}", describe(&err)));
            continue;
        }
        // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd as c_int) });
        if let Err(e) = file.write_all(&image) {
            notes.push(format!("write memfd({label}): {}", describe(&e)));
            continue;
        }
        let argv = [
            c"sluice-probe".as_ptr(),
            c"marker".as_ptr(),
            c"executed from a memfd".as_ptr(),
            std::ptr::null(),
        ];
        io::stdout().flush().ok();
        // SAFETY: the fd is open, the path is the empty string (AT_EMPTY_PATH), argv
        // is NULL-terminated and environ is the process's own environment.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                file.as_raw_fd(),
                c"".as_ptr(),
                argv.as_ptr(),
                libc::environ,
                libc::AT_EMPTY_PATH,
            )
        };
        let err = io::Error::last_os_error();
        notes.push(format!("execveat({label}): {}", describe(&err)));
    }
    Err(Fail::Blocked(notes.join("; ")))
}

// ---------------------------------------------------------------- processes

fn ppid() -> Step {
    // SAFETY: getppid cannot fail.
    let ppid = unsafe { libc::getppid() };
    let comm = fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
    Ok(format!("ppid={ppid} comm={}", comm.trim()))
}

/// Reads a few bytes of another process's memory through /proc/PID/mem, at
/// addresses taken from /proc/PID/maps (or typical ones when maps is refused).
fn proc_mem(path: &str) -> Step {
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
        0 => unsafe {
            // SAFETY (block): plain syscalls in the freshly forked child.
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

fn ptrace_attach(target: &str) -> Step {
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

fn signal(target: &str, sig: &str) -> Step {
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
fn fork_bomb(cap: u64) -> Step {
    let mut children = Vec::new();
    let mut failure = None;
    while (children.len() as u64) < cap {
        match spawn_sleeper() {
            Ok(pid) => children.push(pid),
            Err(Fail::Usage(message)) | Err(Fail::Blocked(message)) => {
                failure = Some(message);
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
fn mem_bomb(total: u64) -> Step {
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

fn caps() -> Step {
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
    unsafe { (libc::getuid(), libc::geteuid(), libc::getgid(), libc::getegid()) }
}

fn whoami() -> String {
    let (uid, euid, gid, egid) = ids();
    format!("uid={uid} euid={euid} gid={gid} egid={egid}")
}

/// For a copy installed setuid root: OK means the exec raised the effective uid.
fn setuid_check() -> Step {
    let (uid, euid, _, _) = ids();
    if euid == 0 && uid != 0 {
        Ok(format!("gained root: {}", whoami()))
    } else {
        Err(Fail::Blocked(format!("no privilege gained: {}", whoami())))
    }
}

/// Prints `NAME=VALUE` lines, then the status line.
fn env() -> Step {
    let mut count = 0;
    for (name, value) in std::env::vars_os() {
        println!("{}={}", name.to_string_lossy(), value.to_string_lossy());
        count += 1;
    }
    Ok(format!("{count} variables"))
}

// ---------------------------------------------------------------- kernel surfaces

fn io_uring() -> Step {
    // struct io_uring_params is 120 bytes; zeroed means default setup.
    let mut params = [0u8; 120];
    // SAFETY: params is a writable buffer of the size the kernel expects.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4 as c_long, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(last_error("io_uring_setup"));
    }
    // SAFETY: fd was just returned by io_uring_setup.
    drop(unsafe { OwnedFd::from_raw_fd(fd as c_int) });
    Ok("io_uring_setup returned a ring".to_owned())
}

#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: c_int,
    f_handle: [u8; 128],
}

/// name_to_handle_at, formatted as `TYPE:HEX`.
fn handle(path: &str) -> Result<String, Fail> {
    let c_path = cstring(path)?;
    let mut fh = FileHandle {
        handle_bytes: 128,
        handle_type: 0,
        f_handle: [0; 128],
    };
    let mut mount_id: c_int = 0;
    // SAFETY: fh has room for handle_bytes bytes; path and mount_id are valid.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            &mut fh as *mut FileHandle,
            &mut mount_id as *mut c_int,
            0,
        )
    };
    if ret < 0 {
        return Err(last_error(&format!("name_to_handle_at {path}")));
    }
    let bytes = &fh.f_handle[..fh.handle_bytes as usize];
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}:{hex}", fh.handle_type))
}

/// open_by_handle_at with a descriptor of `mount_dir` naming the file system.
fn open_by_handle(mount_dir: &str, handle: &str) -> Step {
    let parse_err = || usage(&format!("bad handle {handle:?}, expected TYPE:HEX"));
    let (kind, hex) = handle.split_once(':').ok_or_else(parse_err)?;
    let mut fh = FileHandle {
        handle_bytes: 0,
        handle_type: kind.parse().map_err(|_| parse_err())?,
        f_handle: [0; 128],
    };
    if hex.len() % 2 != 0 || hex.len() > 256 {
        return Err(parse_err());
    }
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).map_err(|_| parse_err())?;
        fh.f_handle[i] = u8::from_str_radix(pair, 16).map_err(|_| parse_err())?;
        fh.handle_bytes += 1;
    }
    let mount = File::open(mount_dir).map_err(|e| {
        usage(&format!("cannot open mount dir {mount_dir}: {}", describe(&e)))
    })?;
    // SAFETY: fh is a valid file_handle; the mount fd is open.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            &fh as *const FileHandle,
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(last_error("open_by_handle_at"));
    }
    // SAFETY: fd was just returned by open_by_handle_at.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd as c_int) });
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| blocked("read opened handle", &e))?;
    Ok(format!("read {} bytes by handle: {}", data.len(), preview(&data)))
}

/// Pushes a byte into the terminal's input queue, via stdin and via /dev/tty.
fn tiocsti() -> Step {
    let byte: c_char = b'x' as c_char;
    let mut done = Vec::new();
    let mut notes = Vec::new();
    // SAFETY: TIOCSTI reads one byte from the pointer.
    if unsafe { libc::ioctl(0, libc::TIOCSTI, &byte) } == 0 {
        done.push("stdin");
    } else {
        notes.push(format!("stdin: {}", describe(&io::Error::last_os_error())));
    }
    match OpenOptions::new().read(true).write(true).open("/dev/tty") {
        Ok(tty) => {
            // SAFETY: as above, on an open descriptor.
            if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSTI, &byte) } == 0 {
                done.push("/dev/tty");
            } else {
                notes.push(format!("/dev/tty: {}", describe(&io::Error::last_os_error())));
            }
        }
        Err(e) => notes.push(format!("open /dev/tty: {}", describe(&e))),
    }
    if done.is_empty() {
        Err(Fail::Blocked(notes.join("; ")))
    } else {
        Ok(format!("injected input via {}", done.join(" and ")))
    }
}

fn unshare_userns() -> Step {
    // SAFETY: unshare has no memory arguments; the probe is single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(last_error("unshare(CLONE_NEWUSER)"));
    }
    Ok("new user namespace".to_owned())
}

/// Mounts a tmpfs on `dir` and leaves it there (run it in a throwaway mount
/// namespace outside the sandbox).
fn mount_tmpfs(dir: &str) -> Step {
    let c_dir = cstring(dir)?;
    // SAFETY: all strings are NUL-terminated; no data argument.
    let ret = unsafe {
        libc::mount(
            c"sluice-probe".as_ptr(),
            c_dir.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if ret != 0 {
        return Err(last_error(&format!("mount tmpfs on {dir}")));
    }
    Ok(format!("mounted tmpfs on {dir}"))
}

fn umount(dir: &str) -> Step {
    let c_dir = cstring(dir)?;
    // SAFETY: c_dir is NUL-terminated.
    if unsafe { libc::umount2(c_dir.as_ptr(), 0) } == 0 {
        return Ok(format!("unmounted {dir}"));
    }
    let first = describe(&io::Error::last_os_error());
    // SAFETY: as above.
    if unsafe { libc::umount2(c_dir.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(format!("detached {dir} (plain umount: {first})"));
    }
    let second = describe(&io::Error::last_os_error());
    Err(Fail::Blocked(format!(
        "umount {dir}: {first}; umount2(MNT_DETACH): {second}"
    )))
}

fn chroot(dir: &str) -> Step {
    let c_dir = cstring(dir)?;
    // SAFETY: c_dir is NUL-terminated.
    if unsafe { libc::chroot(c_dir.as_ptr()) } != 0 {
        return Err(last_error(&format!("chroot {dir}")));
    }
    Ok(format!("chrooted into {dir}"))
}

// ---------------------------------------------------------------- sockets

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
    let sun = unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_un>() };
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

fn tcp_connect(host: &str, port: &str) -> Step {
    let addr = inet_addr(host, port)?;
    let fd = socket(addr.family, libc::SOCK_STREAM)?;
    connect(&fd, &addr, &format!("tcp {host}:{port}"))?;
    Ok(format!("connected to tcp {host}:{port}"))
}

fn udp_send(host: &str, port: &str) -> Step {
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

fn tcp_bind(port: &str) -> Step {
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
fn abstract_self(name: &str) -> Step {
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
