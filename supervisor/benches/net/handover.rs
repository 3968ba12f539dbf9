//! The hand-over: the program's own socket becomes one the supervisor
//! connected, so no relay is in the path. Measured here, not done in
//! sessions (ARCHITECTURE.md, "The network by host name", says why).
//!
//! A thread of this process stands for the program: it runs under a filter
//! that notifies `connect` (its own only: installed without `TSYNC`), sets
//! `TCP_NODELAY` and connects to [`SYNTHETIC`], an address standing for the
//! name `localhost` (a session would answer it from a name server in the
//! program's namespace). Another thread stands for the supervisor: it reads
//! the address once, judges the name and port by the host rules, resolves
//! the name (`getaddrinfo`, as the proxy does), connects, and puts its
//! socket on the program's descriptor number (`SECCOMP_IOCTL_NOTIF_ADDFD`
//! with `SECCOMP_ADDFD_FLAG_SETFD`), keeping the program's close-on-exec,
//! `O_NONBLOCK` and `TCP_NODELAY`, then answers the `connect` with 0. The
//! bytes then flow on the supervisor's connection with nothing between.
//!
//! What a session would add and this leaves out: the record, the name
//! server, the checks that keep a handed-over socket from connecting again
//! (every `connect` of the program made by the connector, never
//! `CONTINUE`d); one process instead of two (the descriptor and memory are
//! read through the same interfaces, `pidfd_getfd` and `/proc/.../mem`).

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use policies::{Host, HostPolicy};
use sandbox_child::seccomp::{self, Action, FilterSpec, SyscallRule};
use supervisor::broker::transparent::Listener;

/// The address the program connects to for `localhost` (from 198.18.0.0/15,
/// reserved for benchmarks: nothing answers it).
pub const SYNTHETIC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// What the program thread is asked to do, and where it answers.
enum Job {
    /// Connect, one byte there and back: how long it took.
    Setup(u16),
    /// Connect and stream this many bytes: how long it took.
    Stream(u16, usize),
}

/// The program thread (`sluice-program`) and the supervisor's thread
/// serving its `connect` calls (`sluice-handover`).
pub struct HandOver {
    jobs: mpsc::Sender<(Job, mpsc::Sender<Duration>)>,
}

impl HandOver {
    /// Starts both threads; `hosts` judges each connection.
    pub fn start(hosts: HostPolicy) -> HandOver {
        let (jobs, queue) = mpsc::channel::<(Job, mpsc::Sender<Duration>)>();
        let (listener_tx, listener_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("sluice-program".into())
            .spawn(move || {
                listener_tx.send(filter_this_thread()).unwrap();
                let mut checked = false;
                for (job, done) in queue {
                    let took = match job {
                        Job::Setup(port) => {
                            if !checked {
                                for nonblocking in [true, false] {
                                    let s = connect_synthetic(port, nonblocking);
                                    kept_as_the_program_set_it(&s, nonblocking);
                                }
                                checked = true;
                            }
                            let t = Instant::now();
                            crate::setup(connect_synthetic(port, false));
                            t.elapsed()
                        }
                        Job::Stream(port, bytes) => {
                            let t = Instant::now();
                            crate::stream(connect_synthetic(port, false), bytes);
                            t.elapsed()
                        }
                    };
                    done.send(took).unwrap();
                }
            })
            .unwrap();
        let listener = Listener::new(listener_rx.recv().unwrap()).unwrap();
        std::thread::Builder::new()
            .name("sluice-handover".into())
            .spawn(move || serve(listener, hosts))
            .unwrap();
        HandOver { jobs }
    }

    fn run(&self, job: Job) -> Duration {
        let (done, took) = mpsc::channel();
        self.jobs.send((job, done)).unwrap();
        took.recv().unwrap()
    }

    /// A connection set-up through the hand-over, timed by the program.
    pub fn setup(&self, port: u16) -> Duration {
        self.run(Job::Setup(port))
    }

    /// A stream of `bytes` through the hand-over, timed by the program.
    pub fn stream(&self, port: u16, bytes: usize) -> Duration {
        self.run(Job::Stream(port, bytes))
    }
}

/// Puts the calling thread under a filter that hands its `connect` calls
/// to the returned listener.
fn filter_this_thread() -> OwnedFd {
    let spec = FilterSpec {
        rules: vec![SyscallRule::always(
            "connect",
            libc::SYS_connect,
            Action::UserNotif,
        )],
        default: Action::Allow,
    };
    let prog = seccomp::Program::build(&spec).unwrap();
    // SAFETY: prctl with integer arguments; it sets this thread's flag.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "no_new_privs");
    let fd = seccomp::install_with_listener(
        &prog.as_fprog(),
        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    )
    .expect("a notification filter");
    // SAFETY: the kernel just gave us this descriptor.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The program's side: a close-on-exec TCP socket with `TCP_NODELAY`, and
/// `O_NONBLOCK` if `nonblocking`, connected to [`SYNTHETIC`]`:port` (the
/// hand-over answers 0, non-blocking or not: it connected before answering).
fn connect_synthetic(port: u16, nonblocking: bool) -> TcpStream {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let mut flags = SockFlag::SOCK_CLOEXEC;
    flags.set(SockFlag::SOCK_NONBLOCK, nonblocking);
    let fd = socket(AddressFamily::Inet, SockType::Stream, flags, None).unwrap();
    let s = TcpStream::from(fd);
    s.set_nodelay(true).unwrap();
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(SYNTHETIC).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: connect reads one sockaddr_in of the length given.
    let rc = unsafe {
        libc::connect(
            s.as_raw_fd(),
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
    s
}

/// The supervisor's side, until the program thread is gone.
fn serve(listener: Listener, hosts: HostPolicy) {
    let mem = File::open("/proc/self/mem").unwrap();
    // SAFETY: pidfd_open with integer arguments; the result is checked.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) };
    assert!(
        pidfd >= 0,
        "pidfd_open: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a descriptor just made, owned from here on.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    loop {
        let notif = match listener.recv() {
            Ok(notif) => notif,
            Err(_) if listener.hung_up() => return,
            Err(_) => continue,
        };
        if let Err(errno) = hand_over(&listener, &notif, &hosts, &mem, &pidfd) {
            let _ = listener.fail(notif.id, errno);
        }
    }
}

/// Serves one `connect(fd, addr, len)`, answered on success; the errno to
/// answer otherwise.
fn hand_over(
    listener: &Listener,
    notif: &libc::seccomp_notif,
    hosts: &HostPolicy,
    mem: &File,
    pidfd: &OwnedFd,
) -> Result<(), i32> {
    let [fd, at, len, ..] = notif.data.args;
    let fd = fd as u32 as RawFd;
    if len as usize != std::mem::size_of::<libc::sockaddr_in>() {
        return Err(libc::EACCES);
    }
    // Read once: what is judged is what is connected.
    let mut addr = [0u8; 16];
    mem.read_exact_at(&mut addr, at).map_err(|_| libc::EFAULT)?;
    if !listener.is_valid(notif.id) {
        return Err(libc::EINTR);
    }
    let family = u16::from_ne_bytes([addr[0], addr[1]]);
    let port = u16::from_be_bytes([addr[2], addr[3]]);
    let ip = Ipv4Addr::new(addr[4], addr[5], addr[6], addr[7]);
    if i32::from(family) != libc::AF_INET || ip != SYNTHETIC {
        return Err(libc::EACCES);
    }
    let host = Host::parse("localhost").unwrap();
    if hosts.allowed(&host, port).is_none() {
        return Err(libc::EACCES);
    }
    // SAFETY: pidfd_getfd with integer arguments; the result is checked.
    let theirs = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if theirs < 0 {
        return Err(libc::EBADF);
    }
    // SAFETY: a descriptor just made, owned from here on.
    let theirs = unsafe { OwnedFd::from_raw_fd(theirs as RawFd) };
    let nonblocking = nix::fcntl::fcntl(&theirs, nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| e as i32)?
        & libc::O_NONBLOCK
        != 0;
    let nodelay = TcpStream::from(theirs)
        .nodelay()
        .map_err(|_| libc::ENOTSOCK)?;
    let cloexec = cloexec(fd)?;
    // Resolved and connected by the supervisor: the program never names
    // the address.
    let ours = TcpStream::connect(("localhost", port))
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    ours.set_nodelay(nodelay).map_err(|_| libc::EIO)?;
    ours.set_nonblocking(nonblocking).map_err(|_| libc::EIO)?;
    listener
        .replace_fd(notif.id, ours.as_fd(), fd, cloexec)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    listener.succeed(notif.id).map_err(|_| libc::EIO)
}

/// Whether the program's descriptor `fd` is close-on-exec (a descriptor's
/// flag, not its file's: `pidfd_getfd` does not carry it).
fn cloexec(fd: RawFd) -> Result<bool, i32> {
    let mut info = String::new();
    File::open(format!("/proc/self/fdinfo/{fd}"))
        .and_then(|mut f| f.read_to_string(&mut info))
        .map_err(|_| libc::EBADF)?;
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .ok_or(libc::EBADF)?;
    Ok(flags & libc::O_CLOEXEC as u32 != 0)
}

/// The program's view of its descriptor after the hand-over: close-on-exec,
/// `O_NONBLOCK` and `TCP_NODELAY` as it set them, the peer the supervisor
/// connected.
fn kept_as_the_program_set_it(s: &TcpStream, nonblocking: bool) {
    let flags = nix::fcntl::fcntl(s, nix::fcntl::FcntlArg::F_GETFD).unwrap();
    assert!(flags & libc::FD_CLOEXEC != 0, "close-on-exec lost");
    let status = nix::fcntl::fcntl(s, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    assert_eq!(status & libc::O_NONBLOCK != 0, nonblocking, "O_NONBLOCK");
    assert!(s.nodelay().unwrap(), "TCP_NODELAY lost");
    let peer = s.peer_addr().unwrap();
    assert!(peer.ip().is_loopback(), "peer {peer}");
}
