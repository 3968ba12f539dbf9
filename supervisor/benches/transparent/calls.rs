//! Per call: what one intercepted `open` costs, and where the time goes.
//!
//! Child processes under a notification filter open files in rounds while
//! this process serves them. Every case is measured in every round, in
//! turn, and reported as the median of its round means:
//!
//! - baselines: the same `open` with no filter, and a bare `SOCK_SEQPACKET`
//!   round trip carrying a descriptor (the floor for any descriptor broker);
//! - the kernel alone: a listener that answers `CONTINUE` at once, and one
//!   that places a descriptor it already holds (`ADDFD` then `SEND`, and
//!   `ADDFD` with `SECCOMP_ADDFD_FLAG_SEND`), doing nothing else;
//! - sluice: the real broker (`Broker::start_with`, audit record on)
//!   answering a file the sandbox allows (`CONTINUE`) and one a `[broker]
//!   allow` rule serves (opened here, recorded, placed with `ADDFD`);
//! - the same brokered file asked for through the client SDK, from the
//!   same broker: the same work over the SDK's transport.
//!
//! The difference between a sluice case and the kernel case under it is
//! sluice's own work (reading the call, deciding, opening, recording).

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client_sdk::{Client, OpenOptions};
use proto::socket::{recv_frame, send_frame, seqpacket_pair, Blocking};
use supervisor::broker::{self, transparent::Listener};

use crate::{common, median, temp_dir, us};

const ROUNDS: usize = 7;

/// Tells a [`Notified`] child to exit.
const QUIT: u8 = 0xff;

/// In a forked child: installs the transparent-brokering filter (as the
/// sandbox child does) and sends its listener to the parent on `sock`.
fn filter_and_send_listener(sock: OwnedFd) {
    let prog = sandbox_child::seccomp::Program::notify_filter();
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    let fd = sandbox_child::seccomp::install_with_listener(
        &prog.as_fprog(),
        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    )
    .expect("notify filter");
    // SAFETY: the kernel just gave us this descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    send_frame(sock.as_fd(), b"L", Some(fd.as_fd()), Blocking::Yes).unwrap();
}

/// Runs `sh -c script` in `dir` under the notification filter, with a
/// listener that answers every call `CONTINUE` at once: the kernel's part
/// of transparent brokering, for a whole workload. Call with no other
/// thread running (this forks).
pub fn time_under_bare_listener(script: &str, dir: &Path) -> Duration {
    let c = |s: &str| CString::new(s).unwrap();
    let (sh, dash_c, script, dir) = (c("/bin/sh"), c("-c"), c(script), c(dir.to_str().unwrap()));
    let argv = [
        sh.as_ptr(),
        dash_c.as_ptr(),
        script.as_ptr(),
        std::ptr::null(),
    ];
    let (ours, theirs) = seqpacket_pair().unwrap();
    let start = Instant::now();
    // SAFETY: the caller runs no other thread; the child execs or exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(ours);
        // SAFETY: chdir with a valid C string.
        unsafe { libc::chdir(dir.as_ptr()) };
        filter_and_send_listener(theirs);
        // SAFETY: argv is a NULL-terminated array of valid C strings.
        unsafe {
            libc::execv(sh.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    drop(theirs);
    let mut buf = [0u8; 8];
    let got = recv_frame(ours.as_fd(), &mut buf, Blocking::Yes).unwrap();
    let listener = got.fds.into_iter().next().expect("the child's listener");
    let server = std::thread::spawn(move || raw_server(listener, None, Arc::default()));
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    server.join().unwrap();
    let elapsed = start.elapsed();
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    elapsed
}

/// Opens and closes `path` `iters` times; the mean time per open.
pub fn open_loop(path: &CString, iters: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        // SAFETY: a valid C string; the descriptor is closed at once.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        assert!(fd >= 0, "open failed: {}", std::io::Error::last_os_error());
        // SAFETY: closing the descriptor just opened.
        unsafe { libc::close(fd) };
    }
    start.elapsed() / iters as u32
}

fn pipe() -> (std::fs::File, std::fs::File) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    (r.into(), w.into())
}

/// A forked child under the transparent-brokering filter that opens one of
/// `paths` `iters` times whenever it is told to.
struct Notified {
    pid: libc::pid_t,
    go: std::fs::File,
    results: BufReader<std::fs::File>,
}

impl Notified {
    /// Forks the child; returns it and its filter's listener. Call before
    /// this process starts any thread (the child allocates).
    fn spawn(paths: &[CString], iters: usize) -> (Notified, OwnedFd) {
        let (ours, theirs) = seqpacket_pair().unwrap();
        let (mut go_rx, go_tx) = pipe();
        let (res_rx, mut res_tx) = pipe();
        // SAFETY: no other thread exists yet (see above); the child never
        // returns.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop((ours, go_tx, res_rx));
            filter_and_send_listener(theirs);
            let mut which = [0u8];
            while go_rx.read_exact(&mut which).is_ok() && which[0] != QUIT {
                let mean = open_loop(&paths[usize::from(which[0])], iters);
                writeln!(res_tx, "{}", mean.as_nanos()).unwrap();
            }
            // SAFETY: leaving the forked child.
            unsafe { libc::_exit(0) };
        }
        drop((theirs, go_rx, res_tx));
        let mut buf = [0u8; 8];
        let got = recv_frame(ours.as_fd(), &mut buf, Blocking::Yes).unwrap();
        let listener = got.fds.into_iter().next().expect("the child's listener");
        let results = BufReader::new(res_rx);
        (
            Notified {
                pid,
                go: go_tx,
                results,
            },
            listener,
        )
    }

    /// Has the child open `paths[which]`; its mean time per open.
    fn run(&mut self, which: u8) -> Duration {
        self.go.write_all(&[which]).unwrap();
        let mut line = String::new();
        self.results.read_line(&mut line).unwrap();
        Duration::from_nanos(line.trim().parse().unwrap())
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        // (Not end of file: children forked later hold this pipe too.)
        let _ = self.go.write_all(&[QUIT]);
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
    }
}

/// How the raw listener answers.
enum Raw<'a> {
    Continue,
    AddfdThenSend(&'a OwnedFd),
    AddfdFlagSend(&'a OwnedFd),
}

/// A listener that does nothing but answer (`CONTINUE`, or with `src` as
/// `flag_send` says), until its child has exited.
fn raw_server(listener: OwnedFd, src: Option<OwnedFd>, flag_send: Arc<AtomicBool>) {
    let listener = Listener::new(listener).unwrap();
    loop {
        let notif = match listener.recv() {
            Ok(n) => n,
            Err(_) if listener.hung_up() => return,
            Err(_) => continue,
        };
        let mode = match &src {
            None => Raw::Continue,
            Some(src) if flag_send.load(Ordering::Relaxed) => Raw::AddfdFlagSend(src),
            Some(src) => Raw::AddfdThenSend(src),
        };
        let _ = match mode {
            Raw::Continue => listener.allow_kernel(notif.id),
            Raw::AddfdThenSend(src) => listener
                .add_fd_and_answer(notif.id, src.as_fd(), true)
                .map(drop),
            Raw::AddfdFlagSend(src) => addfd_flag_send(&listener, notif.id, src),
        };
    }
}

/// `ADDFD` with `SECCOMP_ADDFD_FLAG_SEND`: place and answer in one ioctl.
fn addfd_flag_send(listener: &Listener, id: u64, src: &OwnedFd) -> std::io::Result<()> {
    let mut addfd = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
        srcfd: src.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags: libc::O_CLOEXEC as u32,
    };
    // SAFETY: ADDFD reads one seccomp_notif_addfd; srcfd is open.
    let rc = unsafe {
        libc::ioctl(
            listener.as_fd().as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ADDFD,
            &mut addfd as *mut libc::seccomp_notif_addfd,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn policy(dir: &Path, allowed: &Path, brokered: &Path) -> policies::Policy {
    let text = format!(
        "[filesystem]\nread = [{:?}]\n[broker]\ntransparent = true\nallow = [{:?}]\n",
        allowed.display().to_string(),
        brokered.display().to_string()
    );
    common::policy(&text, dir)
}

/// Measures every case in `ROUNDS` rounds; prints the medians.
pub fn run(iters: usize, placement: &str) {
    let dir = temp_dir(&format!("calls-{placement}"));
    let (allowed, brokered) = (dir.join("allowed"), dir.join("brokered"));
    for d in [&allowed, &brokered] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("f"), "x").unwrap();
    }
    let (allowed_f, brokered_f) = (allowed.join("f"), brokered.join("f"));
    let c = |p: &Path| CString::new(p.to_str().unwrap()).unwrap();
    // The third: the first, relative to the children's working directory.
    std::env::set_current_dir(&dir).unwrap();
    let paths = [c(&allowed_f), c(&brokered_f), c(Path::new("allowed/f"))];
    let n = (iters / ROUNDS).max(100);

    // Children first: no thread may exist when they are forked.
    let (mut raw_continue, l1) = Notified::spawn(&paths, n);
    let (mut raw_addfd, l2) = Notified::spawn(&paths, n);
    let (mut sluice, l3) = Notified::spawn(&paths, n);

    let flag_send = Arc::new(AtomicBool::new(false));
    let servers = [(l1, false), (l2, true)].map(|(l, places)| {
        let src = places.then(|| std::fs::File::open(&allowed_f).unwrap().into());
        let flag = flag_send.clone();
        std::thread::spawn(move || raw_server(l, src, flag))
    });
    let (ours, theirs) = seqpacket_pair().unwrap();
    let shared = common::audited_shared(&dir, policy(&dir, &allowed, &brokered));
    let running = broker::Broker::start_with(
        ours,
        shared,
        Some(broker::transparent::Program {
            listener: l3,
            connector: None,
            // The notification filter only.
            filters: broker::transparent::filters_at_exec(
                broker::transparent::filters_of("thread-self").unwrap(),
                true,
                false,
            ),
        }),
    )
    .unwrap();
    let mut client = Client::connect(theirs.as_fd(), "bench").unwrap();
    let mut read = OpenOptions::new();
    read.read(true);

    let (floor_client, floor_server) = seqpacket_pair().unwrap();
    let src: OwnedFd = std::fs::File::open(&allowed_f).unwrap().into();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        while let Ok(got) = recv_frame(floor_server.as_fd(), &mut buf, Blocking::Yes) {
            if got.len == 0
                || send_frame(floor_server.as_fd(), b"r", Some(src.as_fd()), Blocking::Yes).is_err()
            {
                return;
            }
        }
    });

    const CASES: [&str; 9] = [
        "open, no filter",
        "socketpair round trip with an fd",
        "kernel: CONTINUE, nothing else",
        "kernel: ADDFD, then SEND",
        "kernel: ADDFD with FLAG_SEND",
        "sluice: CONTINUE (sandbox allows)",
        "sluice: ADDFD (rule, recorded)",
        "SDK open, same file, same broker",
        "sluice: CONTINUE, relative path",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); CASES.len()];
    let mut buf = [0u8; 16];
    for _ in 0..ROUNDS {
        samples[0].push(open_loop(&paths[0], n));
        let start = Instant::now();
        for _ in 0..n {
            send_frame(floor_client.as_fd(), b"q", None, Blocking::Yes).unwrap();
            let got = recv_frame(floor_client.as_fd(), &mut buf, Blocking::Yes).unwrap();
            assert_eq!(got.fds.len(), 1);
        }
        samples[1].push(start.elapsed() / n as u32);
        samples[2].push(raw_continue.run(0));
        flag_send.store(false, Ordering::Relaxed);
        samples[3].push(raw_addfd.run(0));
        flag_send.store(true, Ordering::Relaxed);
        samples[4].push(raw_addfd.run(0));
        samples[5].push(sluice.run(0));
        samples[6].push(sluice.run(1));
        let start = Instant::now();
        for _ in 0..n {
            drop(client.open(&brokered_f, &read).unwrap());
        }
        samples[7].push(start.elapsed() / n as u32);
        samples[8].push(sluice.run(2));
    }
    drop((
        raw_continue,
        raw_addfd,
        sluice,
        floor_client,
        client,
        theirs,
    ));
    for s in servers {
        s.join().unwrap();
    }
    echo.join().unwrap();
    running.stop();

    let m: Vec<Duration> = samples.into_iter().map(median).collect();
    println!("per open, {placement}; median of {ROUNDS} rounds of {n}:");
    let floor = m[1];
    for (i, label) in CASES.iter().enumerate() {
        let mut line = format!("  {label:<36} {:>8.2} us", us(m[i]));
        if i >= 2 {
            line += &format!("  {:>5.2}x floor", m[i].as_secs_f64() / floor.as_secs_f64());
        }
        // Sluice's own work: over the kernel's mechanism alone.
        let under = match i {
            5 | 8 => Some(m[2]),
            6 => Some(m[3]),
            _ => None,
        };
        if let Some(k) = under {
            line += &format!(", +{:.2} us sluice's own", us(m[i]) - us(k));
        }
        println!("{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
