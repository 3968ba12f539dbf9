//! The connector: a process inside the program's own sandbox that makes the
//! program's `connect()` calls for it under transparent brokering.
//!
//! Landlock (ABI 7) has no right for connecting to a named unix socket, and
//! under transparent brokering the host's tree stays in view, so the
//! supervisor is handed every `connect` (the notify filter) and must answer
//! it without letting the program choose again afterwards. `CONTINUE` would:
//! another thread can rewrite the address, or `dup2` a unix socket over the
//! number of the socket that was checked, between the check and the
//! kernel's connect. Connecting from the supervisor would escape the
//! program's Landlock network rules and abstract-socket scope, which do not
//! bind the supervisor.
//!
//! So the child forks this process after Landlock, outside the notify
//! filter, under the deny filter (inherited from the init, which installs
//! it after starting the program; installed by itself without an init): it
//! is in the program's Landlock domain (its TCP rules and abstract-socket
//! scope are the program's) and under the same deny filter, and it is not
//! notified. The deny filter
//! refuses the program a seccomp listener of its own: the newest filter to
//! return `USER_NOTIF` takes the call, so one answering `connect` with
//! `CONTINUE` would take it from the supervisor. For each `connect`, the
//! supervisor takes the program's socket itself (`pidfd_getfd`, so no later
//! `dup2` matters), reads the address once, decides on a named socket by the
//! real path of the socket file it resolved, and sends this process the
//! socket, the address and, for a named socket, an `O_PATH` descriptor of
//! that file to connect through (`/proc/self/fd/N`), so a file swapped in at
//! the name since does not matter either. A worker forked for the request
//! connects and writes the result to the request's own reply socket.
//!
//! The connector is made non-dumpable (the program, in the same domain and
//! with the same uid, can neither read its memory, a copy of the
//! supervisor's, nor take its descriptors), is never the program's child
//! (the PID namespace's init forks it once the program has exec'd; without
//! an init, a double fork reparents it away: the program never sees an
//! unknown child), and exits when the supervisor's end of its socket
//! closes.
//!
//! Everything here runs between fork and exec, or in processes forked from
//! there: raw system calls only, no allocation.

use std::os::raw::c_int;

use crate::sys;

/// The longest address a request carries (`sizeof(struct sockaddr_storage)`,
/// the most `connect` accepts).
pub const MAX_ADDR: usize = 128;

/// The bytes of a request: a kind, then the address.
pub const REQUEST_SIZE: usize = 1 + MAX_ADDR;

/// How the connector takes a request's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Connect to the address as the program gave it: any family but a
    /// named unix socket (Landlock decides in the connector).
    AsGiven = 0,
    /// A named unix socket the supervisor resolved and allowed: connect to
    /// the socket file of the third descriptor, through `/proc/self/fd/N`.
    Resolved = 1,
}

/// The request kind that forks a connector restricted further: its
/// descriptors are the reply socket, the new connector's socket and a
/// Landlock ruleset, which the new connector restricts itself by
/// (`landlock_restrict_self`) before it serves. Its domain is then this
/// one's narrowed by that ruleset: exactly the domain of a program a
/// sluice stacked in the program's restricted by it (the supervisor's
/// `broker/guard/stacked.rs`). It answers the reply socket with 0 or the
/// errno, then serves its socket as this process serves its own. Its
/// memory is a copy of this process's, shared with nobody.
pub const RESTRICTED: u8 = 3;

/// Writes a request into `out`; returns its length. `None` if the address
/// is longer than [`MAX_ADDR`].
pub fn encode(kind: Kind, addr: &[u8], out: &mut [u8; REQUEST_SIZE]) -> Option<usize> {
    if addr.len() > MAX_ADDR {
        return None;
    }
    out[0] = kind as u8;
    out[1..1 + addr.len()].copy_from_slice(addr);
    Some(1 + addr.len())
}

/// Sends a request ([`encode`]) with its descriptors: the reply socket,
/// the program's socket and, for [`Kind::Resolved`], the socket file.
pub fn send(socket: c_int, request: &[u8], fds: &[c_int]) -> Result<(), i32> {
    sys::send_fds(socket, request, fds)
}

/// How the connector comes under the deny filter.
#[derive(Clone, Copy)]
pub(crate) enum Filter<'a> {
    /// The caller runs under it already: the fork inherits it, and no
    /// second copy of the same program is compiled.
    Inherited,
    /// The connector installs it itself.
    Install(&'a libc::sock_fprog),
}

/// Forks the connector, serving `socket` under the deny filter.
/// Async-signal-safe.
///
/// `under_init`: the caller is the PID namespace's init, which has started
/// the program already (and installed its own deny filter after that, so
/// the program carries one filter: `Filter::Inherited`), so the connector
/// is init's child, never the program's, and one fork does, waited for by
/// nothing: a filter the connector cannot install is reported on this
/// launch pipe (fatal: the supervisor then kills the sandbox). Requests the
/// supervisor sends before the connector runs wait in the socket. Without
/// an init the caller becomes the program, so the connector is reparented
/// away (a double fork) and the intermediate process waited for.
pub(crate) fn spawn(socket: c_int, filter: Filter, under_init: Option<c_int>) -> Result<(), i32> {
    if let Some(report) = under_init {
        // SAFETY: fork in a single-threaded process; both sides run raw
        // system calls only.
        let connector = unsafe { libc::fork() };
        if connector < 0 {
            return Err(sys::errno());
        }
        if connector == 0 {
            let installed = match filter {
                Filter::Inherited => Ok(()),
                Filter::Install(deny) => crate::seccomp::install(deny, 0),
            };
            if let Err(errno) = installed {
                let rec = crate::report::StepRecord {
                    step: crate::report::Step::Connector,
                    fatal: true,
                    index: 0,
                    errno,
                };
                let _ = sys::write_all(report, &rec.encode());
                sys::exit(crate::EXIT_SETUP_FAILED);
            }
            serve(socket);
        }
        return Ok(());
    }
    // SAFETY: fork in a single-threaded process; both sides run raw
    // system calls only.
    let middle = unsafe { libc::fork() };
    if middle < 0 {
        return Err(sys::errno());
    }
    if middle == 0 {
        // The connector inherits the filter; a failure is the child's.
        if let Filter::Install(deny) = filter {
            if crate::seccomp::install(deny, 0).is_err() {
                sys::exit(2);
            }
        }
        // SAFETY: as above.
        let connector = unsafe { libc::fork() };
        if connector == 0 {
            serve(socket);
        }
        sys::exit(if connector < 0 { 1 } else { 0 });
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child; status is a valid out-pointer.
        let r = unsafe { libc::waitpid(middle, &mut status, 0) };
        if r == middle {
            break;
        }
        if sys::errno() != libc::EINTR {
            return Err(sys::errno());
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(libc::EAGAIN)
    }
}

/// The connector's loop: one request at a time received, each served by a
/// worker of its own, so a slow connect holds only its caller.
fn serve(socket: c_int) -> ! {
    // Its memory is a copy of the supervisor's; its descriptor reaches the
    // supervisor. Neither is the program's to take.
    // SAFETY: prctl and sigaction with constant arguments.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        // Workers are reaped by the kernel.
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
    }
    // Forked from the init, it would keep what the init blocks (the
    // signals it reads); the connector blocks nothing, as before.
    let _ = sys::unblock_all();
    // The program's standard streams and anything else are not ours.
    let _ = sys::close_all_except(&[socket]);
    for fd in 0..3 {
        if fd != socket {
            // SAFETY: closing descriptors this process does not use.
            unsafe { libc::close(fd) };
        }
    }
    loop {
        // Room for the guard's file operations too (`crate::fsop`).
        let mut data = [0u8; crate::fsop::MAX_REQUEST];
        let mut fds = [-1; 3];
        let n = match sys::recv_fds(socket, &mut data, &mut fds) {
            Ok(0) | Err(_) => sys::exit(0),
            Ok(n) => n,
        };
        let [reply, sock, file] = fds;
        if data[0] == crate::fsop::KIND {
            // Made here, not in a worker: quick, and answered in order.
            crate::fsop::serve(socket, &data[..n], &fds);
        } else if data[0] == RESTRICTED && n == 1 && fds.iter().all(|&fd| fd >= 0) {
            restricted(fds);
        } else if reply >= 0 && sock >= 0 {
            // SAFETY: fork in this single-threaded process; the worker
            // runs raw system calls only and exits.
            let worker = unsafe { libc::fork() };
            if worker == 0 {
                let errno = connect(sock, &data[..n], file);
                let _ = sys::write_all(reply, &errno.to_ne_bytes());
                sys::exit(0);
            }
            if worker < 0 {
                let _ = sys::write_all(reply, &sys::errno().to_ne_bytes());
            }
        }
        for fd in fds {
            if fd >= 0 {
                // SAFETY: descriptors received with this request.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// Forks a connector serving `sock` restricted by `ruleset` ([`RESTRICTED`]),
/// answering `reply`.
fn restricted([reply, sock, ruleset]: [c_int; 3]) {
    // SAFETY: fork in this single-threaded process; the new connector runs
    // raw system calls only.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let errno = match sys::landlock_restrict_self(ruleset) {
            Ok(()) => 0,
            Err(errno) => errno,
        };
        let _ = sys::write_all(reply, &errno.to_ne_bytes());
        if errno != 0 {
            sys::exit(1);
        }
        serve(sock);
    }
    if child < 0 {
        let _ = sys::write_all(reply, &sys::errno().to_ne_bytes());
    }
}

/// Connects `sock` as `request` says; the errno, or 0.
fn connect(sock: c_int, request: &[u8], file: c_int) -> i32 {
    let (kind, addr) = match request.split_first() {
        Some((&kind, addr)) => (kind, addr),
        None => return libc::EINVAL,
    };
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut named: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let (ptr, len) = if kind == Kind::Resolved as u8 {
        if file < 0 {
            return libc::EINVAL;
        }
        named.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let used = proc_fd_path(file, &mut named.sun_path);
        let len = std::mem::size_of::<libc::sa_family_t>() + used + 1;
        (
            (&named as *const libc::sockaddr_un).cast::<libc::sockaddr>(),
            len,
        )
    } else {
        (addr.as_ptr().cast::<libc::sockaddr>(), addr.len())
    };
    // SAFETY: `ptr` points at `len` readable bytes: the request's address
    // or `named`, both alive for the call.
    if unsafe { libc::connect(sock, ptr, len as libc::socklen_t) } == 0 {
        0
    } else {
        sys::errno()
    }
}

/// Writes `/proc/self/fd/<fd>` into `out` (NUL after it, `out` being
/// zeroed); returns its length.
fn proc_fd_path(fd: c_int, out: &mut [libc::c_char]) -> usize {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    let mut digits = [0u8; 20];
    let digits = sys::decimal(u64::from(fd.unsigned_abs()), &mut digits);
    let mut len = 0;
    for &b in PREFIX.iter().chain(digits) {
        out[len] = b as libc::c_char;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_a_kind_and_the_address_as_given() {
        let mut out = [0u8; REQUEST_SIZE];
        let n = encode(Kind::Resolved, b"\x01\x00/x", &mut out).unwrap();
        assert_eq!(&out[..n], b"\x01\x01\x00/x");
        assert!(encode(Kind::AsGiven, &[0; MAX_ADDR + 1], &mut out).is_none());
        assert_eq!(
            encode(Kind::AsGiven, &[7; MAX_ADDR], &mut out),
            Some(REQUEST_SIZE)
        );
    }

    #[test]
    fn the_socket_file_is_named_through_proc_self_fd() {
        let mut out = [0 as libc::c_char; 108];
        for (fd, want) in [
            (0, "/proc/self/fd/0"),
            (42, "/proc/self/fd/42"),
            (i32::MAX, "/proc/self/fd/2147483647"),
        ] {
            out.fill(0);
            let n = proc_fd_path(fd, &mut out);
            let got: Vec<u8> = out[..n].iter().map(|&c| c as u8).collect();
            assert_eq!(got, want.as_bytes());
            assert_eq!(out[n], 0);
        }
    }

    /// The whole path in one process: a listening socket, a request for it
    /// through an `O_PATH` descriptor, the worker's answer.
    #[test]
    fn a_connector_connects_what_it_is_sent_and_answers() {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("sluice-connector-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let pair = |ty: c_int| -> (OwnedFd, OwnedFd) {
            let mut fds = [0; 2];
            // SAFETY: socketpair writes two descriptors into fds.
            let rc = unsafe {
                libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr())
            };
            assert_eq!(rc, 0);
            // SAFETY: both are new descriptors owned by nothing else.
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
        };
        let (ours, theirs) = pair(libc::SOCK_SEQPACKET);
        // An allow-all filter stands in for the deny filter; no_new_privs
        // (this thread's, inherited by the fork) lets it be installed.
        let allow = crate::seccomp::Program::build(&crate::seccomp::FilterSpec {
            rules: Vec::new(),
            default: crate::seccomp::Action::Allow,
        })
        .unwrap();
        // SAFETY: prctl with constant arguments, on this thread only.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        assert_eq!(rc, 0);
        spawn(theirs.as_raw_fd(), Filter::Install(&allow.as_fprog()), None).unwrap();
        drop(theirs);
        let ask = |kind: Kind, addr: &[u8], file: Option<&OwnedFd>| -> i32 {
            // SAFETY: a new unix stream socket.
            let sock =
                unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
            assert!(sock >= 0);
            // SAFETY: as above.
            let sock = unsafe { OwnedFd::from_raw_fd(sock) };
            let (reply_ours, reply_theirs) = pair(libc::SOCK_SEQPACKET);
            let mut buf = [0u8; REQUEST_SIZE];
            let n = encode(kind, addr, &mut buf).unwrap();
            let mut fds = vec![reply_theirs.as_raw_fd(), sock.as_raw_fd()];
            fds.extend(file.map(|f| f.as_raw_fd()));
            send(ours.as_raw_fd(), &buf[..n], &fds).unwrap();
            drop(reply_theirs);
            let mut errno = [0u8; 4];
            // SAFETY: reading 4 bytes into errno.
            let got = unsafe { libc::read(reply_ours.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
            assert_eq!(got, 4);
            i32::from_ne_bytes(errno)
        };
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is NUL-terminated.
        let file = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        assert!(file >= 0);
        // SAFETY: a new descriptor.
        let file = unsafe { OwnedFd::from_raw_fd(file) };
        assert_eq!(ask(Kind::Resolved, &[], Some(&file)), 0);
        listener.accept().unwrap();
        // As given: a path that does not exist.
        let mut missing = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        missing.extend_from_slice(dir.join("none.sock").as_os_str().as_encoded_bytes());
        missing.push(0);
        assert_eq!(ask(Kind::AsGiven, &missing, None), libc::ENOENT);
        // Resolved, but no descriptor to connect through.
        assert_eq!(ask(Kind::Resolved, &[], None), libc::EINVAL);
        drop(ours);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
