//! `sluice-probe`: performs one attack (or its control) per invocation, so a test
//! can run the same action inside sluice and outside it and compare.
//!
//! Usage: `sluice-probe ACTION ARGS... [+ ACTION ARGS...]...`
//!
//! Each step prints one line, `OK <detail>` when the action succeeded or
//! `BLOCKED <errno/detail>` when the kernel (or the broker) refused it. Steps joined
//! by `+` run in order and stop at the first one that does not succeed, so a
//! multi-step attack (rename a protected directory away, recreate it, write into
//! it) is one invocation. Exit status:
//!
//! | status | line | meaning |
//! |---|---|---|
//! | 0 | `OK` | every step succeeded (a brokered file was served) |
//! | 1 | `BLOCKED` | a step was refused (a brokered request was denied) |
//! | 2 | (stderr) | usage or setup error: the probe could not do its job |
//! | 3 | `NOTFOUND` | the broker answered that the file does not exist |
//! | 4 | `ERROR` | the broker failed the request for another reason, or broke the protocol |
//! | 5 | `FAIL` | a broker action's own check failed: protected content received, an answer lost, a descriptor with more access than asked |
//!
//! In arguments, `{ppid}` is replaced by the probe's parent pid (under sluice, the
//! supervisor), `{pid}` by its own pid, `{tmpdir}` by `$TMPDIR` and `{session}` by
//! `$SLUICE_SESSION`: the test does not need a shell inside the sandbox to name those.
//!
//! Actions (see `run` for the exact arguments):
//! - files: `read`, `write`, `append`, `mkdir`, `ls`, `rename`, `unlink`, `rmdir`,
//!   `symlink`, `hardlink`, `read-via-symlink`, `write-via-symlink`,
//!   `read-via-hardlink`, `read-via-opath`, `exec`, `memfd-exec`,
//!   `memfd-exec-sealed`, `openat2 PATH FLAGS RESOLVE MODE` (flags and
//!   `RESOLVE_*` by words, see `guard.rs`), `tmpfile-link DIR DST
//!   proc|empty-path` (an unnamed file given a name), `fchmod-race
//!   PROTECTED OWN N` (a descriptor number swapped during `fchmod`), `marker` (prints OK: the
//!   target of exec tests), `meta`
//!   (chmod, chown, utimes, setxattr by name), `fd-meta` (the same through a
//!   read-only descriptor);
//! - privileges left behind: `set-id WAY SRC DST` (a set-user-ID copy by
//!   chmod, fchmod, fchmodat, fchmodat2, open, openat, creat, mknod, tmpfile
//!   or openat2), `set-cap SRC DST` (a `security.capability` attribute),
//!   `mmap-exec PATH` (map a file executable, as `ld.so` does),
//!   `broker-mmap-exec PATH` (the same with a descriptor the broker served);
//! - processes: `proc-read` (`.../mem` reads memory at mapped addresses),
//!   `proc-root-ls`, `ppid`, `ptrace-attach`, `signal`, `pidfd-signal` (a pid, or
//!   `child` for a child the probe forks), `fork-bomb CAP`, `mem-bomb BYTES`,
//!   `caps`, `whoami`, `setuid-check`, `env`, `fds`, `cgroup-escape`,
//!   `daemon PIDFILE`;
//! - kernel: `io-uring`, `handle`, `open-by-handle`, `tiocsti`, `userns`,
//!   `userns-clone`, `userns-clone3`, `int80`, `setns`, `mount-tmpfs`, `umount`,
//!   `chroot`;
//! - network: `tcp-connect`, `tcp-fastopen`, `udp-send`, `tcp-bind`,
//!   `tcp-listen-unbound`, `socket KIND`, `abstract-connect`, `abstract-self`,
//!   `unix-connect`, `unix-send PATH VIA`;
//! - transparent brokering (plain `open` calls): `open-race`, `open-and-die`,
//!   `openat-dirfd`, `int80-open`, `connect-race`, `connect-fd-race`,
//!   `own-listener-connect`, `own-filter` (a seccomp filter of its own, as a
//!   sandbox inside sluice's installs);
//! - broker (through the client SDK unless noted): `broker-read`, `broker-read-as`, `broker-write`,
//!   `broker-query`, `broker-race`, `broker-race-write`, `broker-openat`,
//!   `broker-meta`, `broker-flood`, `broker-parallel`, and on the raw wire
//!   `broker-garbage`, `broker-die-mid-request` (see `broker.rs` and `wire.rs`);
//!   `register-stacked weak|twice|orphan|not-ruleset` registers as a stacked
//!   sluice would (a ruleset restricting only execution), then forks: the next
//!   steps run in the child, its registration's descendant (`orphan`: once the
//!   registrant has exited);
//! - what a directory descriptor reaches, got from the broker or by `open`:
//!   `dir-beneath VIA DIR openat|opath|execveat|climb-read|climb-connect ...`
//!   (see `beneath.rs`).
//!
//! Every failure of the attacked operation counts as BLOCKED whatever the errno
//! (a denied file may show as EACCES, ENOENT when hidden, EROFS, EBUSY, ...); the
//! tests' controls (the same action outside the sandbox succeeding) are what rule
//! out a typo.

// The attacks are Linux ones; for other targets the probe is empty
// (type-checked for macOS by .ci/apple-check).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

mod beneath;
mod broker;
mod files;
mod guard;
mod kernel;
mod net;
mod privs;
mod process;
mod transparent;
mod wire;

use std::ffi::CString;
use std::io;
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Why a step did not succeed.
pub(crate) enum Fail {
    /// The attacked operation failed: the sandbox (or the kernel) refused it.
    Blocked(String),
    /// The probe was misused or could not set itself up.
    Usage(String),
    /// The broker answered that the file does not exist.
    NotFound(String),
    /// The broker failed the request for a reason other than policy, or broke
    /// the protocol.
    Error(String),
    /// A broker action's own check failed (see the module docs).
    Failed(String),
}

impl Fail {
    /// The detail, whatever the kind.
    pub(crate) fn into_message(self) -> String {
        match self {
            Fail::Blocked(m)
            | Fail::Usage(m)
            | Fail::NotFound(m)
            | Fail::Error(m)
            | Fail::Failed(m) => m,
        }
    }
}

pub(crate) type Step = Result<String, Fail>;

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
            Err(Fail::NotFound(detail)) => {
                println!("NOTFOUND {detail}");
                exit(3);
            }
            Err(Fail::Error(detail)) => {
                println!("ERROR {detail}");
                exit(4);
            }
            Err(Fail::Failed(detail)) => {
                println!("FAIL {detail}");
                exit(5);
            }
        }
    }
}

fn substitute(arg: &str) -> String {
    // SAFETY: getppid and getpid cannot fail and have no preconditions.
    let (ppid, pid) = unsafe { (libc::getppid(), libc::getpid()) };
    let tmpdir = std::env::var("TMPDIR").unwrap_or_default();
    let session = std::env::var("SLUICE_SESSION").unwrap_or_default();
    arg.replace("{ppid}", &ppid.to_string())
        .replace("{pid}", &pid.to_string())
        .replace("{tmpdir}", &tmpdir)
        .replace("{session}", &session)
}

fn run(step: &[String]) -> Step {
    let Some((action, args)) = step.split_first() else {
        return Err(usage("empty step"));
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match (action.as_str(), args.as_slice()) {
        ("read", [path]) => files::read(path),
        ("write", [path]) => files::write(path, false),
        ("append", [path]) => files::write(path, true),
        ("set", [path, value]) => files::set(path, value),
        ("mkdir", [path]) => files::mkdir(path),
        ("ls", [dir]) => files::ls(dir),
        ("exists", [path]) => files::exists(path),
        ("rename", [from, to]) => files::rename(from, to),
        ("unlink", [path]) => files::unlink(path),
        ("rmdir", [path]) => files::rmdir(path),
        ("symlink", [target, link]) => files::symlink(target, link),
        ("hardlink", [target, link]) => files::hardlink(target, link),
        ("read-via-symlink", [target, link]) => {
            files::symlink(target, link).and_then(|_| files::read(link))
        }
        ("write-via-symlink", [target, link]) => {
            files::symlink(target, link).and_then(|_| files::write(link, false))
        }
        ("read-via-hardlink", [target, link]) => {
            files::hardlink(target, link).and_then(|_| files::read(link))
        }
        ("read-via-opath", [path]) => files::read_via_opath(path),
        ("openat2", [path, flags, resolve, mode]) => guard::openat2(path, flags, resolve, mode),
        ("tmpfile-link", [dir, dst, via]) => guard::tmpfile_link(dir, dst, via),
        ("fchmod-race", [protected, own, n]) => guard::fchmod_race(protected, own, parse_num(n)?),
        ("exec", [path, rest @ ..]) => files::exec(path, rest),
        ("memfd-exec", []) => files::memfd_exec(false),
        ("memfd-exec-sealed", []) => files::memfd_exec(true),
        ("marker", words) => Ok(format!("marker {}", words.join(" "))),
        ("meta", [path]) => files::meta(path),
        ("fd-meta", [path]) => files::fd_meta(path),
        ("set-id", [way, src, dst]) => privs::set_id(way, src, dst),
        ("set-cap", [src, dst]) => privs::set_cap(src, dst),
        ("mmap-exec", [path]) => privs::mmap_exec(path),
        ("broker-mmap-exec", [path]) => broker::mmap_exec(path),

        ("proc-read", [path]) if path.ends_with("/mem") => process::proc_mem(path),
        ("proc-read", [path]) => files::read(path),
        ("proc-root-ls", [pid]) => files::ls(&format!("/proc/{pid}/root/")),
        ("ppid", []) => process::ppid(),
        ("ptrace-attach", [target]) => process::ptrace_attach(target),
        ("signal", [target, sig]) => process::signal(target, sig),
        ("fork-bomb", [cap]) => process::fork_bomb(parse_num(cap)?),
        ("mem-bomb", [bytes]) => process::mem_bomb(parse_num(bytes)?),
        ("caps", []) => process::caps(),
        ("whoami", []) => Ok(process::whoami()),
        ("setuid-check", []) => process::setuid_check(),
        ("env", []) => process::env(),
        ("pidfd-signal", [target, sig]) => process::pidfd_signal(target, sig),
        ("fds", []) => process::fds(),
        ("cgroup-escape", []) => process::cgroup_escape(),
        ("daemon", [pidfile]) => process::daemon(pidfile),

        ("io-uring", []) => kernel::io_uring(),
        ("handle", [path]) => kernel::handle(path).map(|h| format!("handle {h}")),
        ("open-by-handle", [path]) => kernel::open_by_own_handle(path),
        ("open-by-handle", [mount_dir, handle]) => kernel::open_by_handle(mount_dir, handle),
        ("tiocsti", []) => kernel::tiocsti(),
        ("userns", []) => kernel::unshare_userns(),
        ("mount-tmpfs", [dir]) => kernel::mount_tmpfs(dir),
        ("umount", [dir]) => kernel::umount(dir),
        ("chroot", [dir]) => kernel::chroot(dir),
        ("setns", [path]) => kernel::setns(path),
        ("userns-clone", []) => kernel::userns_by_clone(false),
        ("userns-clone3", []) => kernel::userns_by_clone(true),
        ("int80", [name]) => kernel::int80(name),
        ("int80-open", [path]) => transparent::int80_open(path),

        ("open-race", [paths @ .., n]) if paths.len() >= 2 => {
            transparent::open_race(paths, parse_num(n)?)
        }
        ("open-and-die", [path, threads]) => transparent::open_and_die(path, parse_num(threads)?),
        ("openat-dirfd", [dir, name]) => transparent::openat_dirfd(dir, name),
        ("connect-race", [allowed, denied, n]) => {
            transparent::connect_race(allowed, denied, parse_num(n)?)
        }
        ("connect-fd-race", [denied, n]) => transparent::connect_fd_race(denied, parse_num(n)?),
        ("own-listener-connect", [path]) => transparent::own_listener_connect(path),
        ("own-filter", []) => transparent::own_filter("seccomp"),
        ("own-filter", [via]) => transparent::own_filter(via),

        ("tcp-connect", [host, port]) => net::tcp_connect(host, port),
        ("udp-send", [host, port]) => net::udp_send(host, port),
        ("tcp-bind", [port]) => net::tcp_bind(port),
        ("tcp-fastopen", [host, port]) => net::tcp_fastopen(host, port, "sendto"),
        ("tcp-fastopen", [host, port, via]) => net::tcp_fastopen(host, port, via),
        ("tcp-listen-unbound", []) => net::tcp_listen_unbound(),
        ("socket", [kind]) => net::socket_of(kind),
        ("abstract-connect", [name]) => net::abstract_connect(name),
        ("abstract-self", [name]) => net::abstract_self(name),
        ("unix-connect", [path]) => net::path_connect(path),
        ("unix-send", [path, via]) => net::unix_send(path, via),

        ("register-stacked", [how]) => broker::register_stacked(how),
        ("broker-read", [path]) => broker::read(path),
        ("broker-read-as", [name, path]) => broker::read_as(Some(name), path),
        ("broker-write", [path, text, flags @ ..]) => broker::write(path, text, flags),
        ("broker-query", [path, access]) => broker::query(path, access),
        ("broker-race", [link, good, bad, n]) => broker::race(link, good, bad, parse_num(n)?, link),
        ("broker-race", [link, good, bad, n, request]) => {
            broker::race(link, good, bad, parse_num(n)?, request)
        }
        ("broker-race-write", [link, good, bad, n, request, mode]) => {
            broker::race_write(link, good, bad, parse_num(n)?, request, mode)
        }
        ("broker-openat", [dir, rel]) => broker::openat(dir, rel),
        ("dir-beneath", [via, dir, action, rest @ ..]) => beneath::run(via, dir, action, rest),
        ("broker-meta", [path]) => broker::meta(path, false),
        ("broker-meta", [path, "write"]) => broker::meta(path, true),
        ("broker-flood", [clients, requests, path]) => {
            broker::flood(parse_num(clients)?, parse_num(requests)?, path)
        }
        ("broker-parallel", [marks, paths @ ..]) if !paths.is_empty() => {
            broker::parallel(marks, paths)
        }
        ("broker-garbage", [path]) => wire::garbage(path),
        ("broker-die-mid-request", [path, n]) => wire::die_mid_request(path, parse_num(n)?),
        _ => Err(usage(&format!(
            "unknown action or wrong arguments: {}",
            step.join(" ")
        ))),
    }
}

/// The other side of a race: `step` run over and over on a thread of its
/// own (given how many times it ran before) until [`Racer::finish`].
pub(crate) struct Racer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<io::Result<u64>>,
}

impl Racer {
    pub(crate) fn start(mut step: impl FnMut(u64) -> io::Result<()> + Send + 'static) -> Racer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut runs = 0;
            while !flag.load(Ordering::Relaxed) {
                step(runs)?;
                runs += 1;
            }
            Ok(runs)
        });
        Racer { stop, thread }
    }

    /// Stops the thread; how many times `step` ran. `what` names the race
    /// in an error.
    pub(crate) fn finish(self, what: &str) -> Result<u64, Fail> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| usage(&format!("{what}: the thread panicked")))?
            .map_err(|e| usage(&format!("{what}: {}", describe(&e))))
    }
}

pub(crate) fn usage(message: &str) -> Fail {
    Fail::Usage(message.to_owned())
}

pub(crate) fn blocked(what: &str, err: &io::Error) -> Fail {
    Fail::Blocked(format!("{what}: {}", describe(err)))
}

pub(crate) fn last_error(what: &str) -> Fail {
    blocked(what, &io::Error::last_os_error())
}

/// `EACCES (Permission denied)`: the symbolic name first, so tests can match it.
pub(crate) fn describe(err: &io::Error) -> String {
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

pub(crate) fn cstring(s: &str) -> Result<CString, Fail> {
    CString::new(s).map_err(|_| usage(&format!("argument contains NUL: {s:?}")))
}

pub(crate) fn parse_num(s: &str) -> Result<u64, Fail> {
    s.parse().map_err(|_| usage(&format!("not a number: {s}")))
}

/// The first bytes of `data`, escaped, so the test can see what leaked.
pub(crate) fn preview(data: &[u8]) -> String {
    let head = &data[..data.len().min(4096)];
    String::from_utf8_lossy(head).escape_debug().to_string()
}
