//! Transparent brokering: what intercepting every `open` costs.
//!
//! 1. Per call, in one process: a child with the transparent-brokering filter
//!    opens files while this process serves its notifications with the real
//!    broker (`Broker::start_with`, audit record on): a file the sandbox view
//!    allows (answered `CONTINUE`) and a file a `[broker] allow` rule serves
//!    (opened here, placed with `ADDFD`). Baselines measured in the same run:
//!    the same `open` without any filter, and a bare `SOCK_SEQPACKET` round
//!    trip carrying a descriptor (what the SDK's transport costs at least).
//! 2. A workload, alternating samples: read every file of a 10,000-file tree
//!    (`find | xargs cat`), and `git status` in a repository of that size, bare,
//!    under `sluice run` (Landlock only) and under `sluice run --transparent`
//!    with every open in policy; plus the tree outside the workspace, every
//!    file served by a broker rule (every open through `ADDFD` and recorded).
//!
//! `cargo bench -p supervisor --bench transparent` (SLUICE_BENCH_ITERS for
//! the per-call sample count, SLUICE_BENCH_RUNS for the workload's).

mod common;

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proto::socket::{recv_frame, send_frame, seqpacket_pair, Blocking};
use supervisor::broker;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-bench-tp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The per-open floor: one frame out, one frame back with a descriptor.
fn socketpair_round_trip(file: &Path, iters: usize) -> Duration {
    let (client, server) = seqpacket_pair().unwrap();
    let fd: OwnedFd = std::fs::File::open(file).unwrap().into();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        while let Ok(got) = recv_frame(server.as_fd(), &mut buf, Blocking::Yes) {
            if got.len == 0
                || send_frame(server.as_fd(), b"r", Some(fd.as_fd()), Blocking::Yes).is_err()
            {
                return;
            }
        }
    });
    let mut buf = [0u8; 16];
    let start = Instant::now();
    for _ in 0..iters {
        send_frame(client.as_fd(), b"q", None, Blocking::Yes).unwrap();
        let got = recv_frame(client.as_fd(), &mut buf, Blocking::Yes).unwrap();
        assert_eq!(got.fds.len(), 1);
    }
    let elapsed = start.elapsed();
    drop(client);
    echo.join().unwrap();
    elapsed / iters as u32
}

/// Opens and closes `path` `iters` times; the mean time per open.
fn open_loop(path: &CString, iters: usize) -> Duration {
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

fn policy(dir: &Path, allowed: &Path, brokered: &Path) -> policies::Policy {
    let text = format!(
        "[filesystem]\nread = [{:?}]\n[broker]\nallow = [{:?}]\n",
        allowed.display().to_string(),
        brokered.display().to_string()
    );
    let spec = policies::load_str("bench.toml", &text, dir).unwrap();
    spec.resolve(&policies::Vars {
        home: dir.to_path_buf(),
        workspace: dir.to_path_buf(),
        tmpdir: dir.to_path_buf(),
    })
    .unwrap()
}

fn start_broker(
    dir: &Path,
    policy: policies::Policy,
    listener: OwnedFd,
) -> (OwnedFd, broker::Broker) {
    let (ours, theirs) = seqpacket_pair().unwrap();
    let shared = common::audited_shared(dir, policy);
    let b = broker::Broker::start_with(ours, shared, Some(listener)).unwrap();
    (theirs, b)
}

/// Per-call costs: a forked child under the notification filter, served by
/// the real broker in this process.
fn per_call(iters: usize) {
    let dir = temp_dir("calls");
    let (allowed, brokered) = (dir.join("allowed"), dir.join("brokered"));
    for d in [&allowed, &brokered] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("f"), "x").unwrap();
    }
    let (allowed_f, brokered_f) = (allowed.join("f"), brokered.join("f"));
    let c = |p: &Path| CString::new(p.to_str().unwrap()).unwrap();
    let (a, b) = (c(&allowed_f), c(&brokered_f));
    let bare = open_loop(&a, iters);
    let floor = socketpair_round_trip(&allowed_f, iters);

    let (ours, theirs) = seqpacket_pair().unwrap();
    let (mut go_rx, mut go_tx) = pipe();
    let (mut res_rx, mut res_tx) = pipe();
    // SAFETY: single-threaded here (the echo thread has been joined); the
    // child installs its filter, reports, and exits without returning.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // Only the parent's ends stay open in the parent, and ours here.
        drop((ours, go_tx, res_rx));
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
        send_frame(theirs.as_fd(), b"L", Some(fd.as_fd()), Blocking::Yes).unwrap();
        drop(fd);
        let mut byte = [0u8];
        go_rx.read_exact(&mut byte).unwrap();
        let cont = open_loop(&a, iters);
        let addfd = open_loop(&b, iters);
        let line = format!("{} {}\n", cont.as_nanos(), addfd.as_nanos());
        res_tx.write_all(line.as_bytes()).unwrap();
        // SAFETY: leaving the forked child.
        unsafe { libc::_exit(0) };
    }
    // The child's ends: the result pipe must reach EOF when the child exits.
    drop((theirs, go_rx, res_tx));
    // The child sends the listener when its filter is in place.
    let mut pfd = libc::pollfd {
        fd: ours.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, -1) }, 1);
    let listener = broker::transparent::receive_listener(&ours).unwrap();
    let (_shared_end, running) = start_broker(&dir, policy(&dir, &allowed, &brokered), listener);
    go_tx.write_all(b"g").unwrap();
    let mut line = String::new();
    res_rx.read_to_string(&mut line).unwrap();
    // SAFETY: reaping our child.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    running.stop();
    let mut nums = line.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    let cont = Duration::from_nanos(nums.next().unwrap());
    let addfd = Duration::from_nanos(nums.next().unwrap());
    println!("per open, mean of {iters} (same run):");
    println!("  open, no filter                   {:>8.2} us", us(bare));
    println!(
        "  socketpair round trip with an fd  {:>8.2} us  (the floor)",
        us(floor)
    );
    for (label, d) in [
        ("CONTINUE (sandbox allows)", cont),
        ("ADDFD (broker rule, recorded)", addfd),
    ] {
        println!(
            "  {label:<33} {:>8.2} us  {:>5.2}x floor, +{:.2} us over a bare open",
            us(d),
            d.as_secs_f64() / floor.as_secs_f64(),
            us(d) - us(bare)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: two fresh descriptors we now own.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

fn populate(dir: &Path, files: usize) {
    for i in 0..files {
        let sub = dir.join(format!("d{}", i / 100));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
}

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

/// One workload, run `runs` times in each mode, alternating.
fn workload(label: &str, runs: usize, script: &str, ws: &Path, modes: &[(&str, Vec<String>)]) {
    let sluice = env!("CARGO_BIN_EXE_sluice");
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); modes.len() + 1];
    for _ in 0..runs {
        samples[0].push(time(
            Command::new("sh").args(["-c", script]).current_dir(ws),
        ));
        for (i, (_, args)) in modes.iter().enumerate() {
            let mut cmd = Command::new(sluice);
            cmd.arg("run").arg("--workspace").arg(ws).args(args);
            cmd.args(["--", "sh", "-c", script]).current_dir(ws);
            samples[i + 1].push(time(&mut cmd));
        }
    }
    let medians: Vec<Duration> = samples.into_iter().map(median).collect();
    println!("{label} (median of {runs}):");
    println!(
        "  bare                               {:>8.1} ms",
        medians[0].as_secs_f64() * 1e3
    );
    for (i, (mode, _)) in modes.iter().enumerate() {
        let m = medians[i + 1];
        println!(
            "  {mode:<34} {:>8.1} ms  {:>5.2}x bare, {:>5.2}x landlock-only",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / medians[0].as_secs_f64(),
            m.as_secs_f64() / medians[1].as_secs_f64()
        );
    }
}

fn workloads(runs: usize) {
    let ws = temp_dir("ws");
    populate(&ws.join("tree"), 10_000);
    let outside = temp_dir("outside");
    populate(&outside, 10_000);
    let audit = temp_dir("audit");
    let audit_arg = vec!["--audit-dir".to_string(), audit.display().to_string()];
    let with = |extra: &[&str]| {
        let mut v = audit_arg.clone();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let read_all = "find tree -type f -print0 | xargs -0 cat > /dev/null";
    workload(
        "read every file of a 10,000-file tree in the workspace",
        runs,
        read_all,
        &ws,
        &[
            ("sluice run (landlock only)", with(&[])),
            ("sluice run --transparent", with(&["--transparent"])),
        ],
    );
    // Every open outside the workspace, served by a broker rule.
    let policy = ws.join("../tp-bench-policy.toml");
    let outside_s = outside.display().to_string();
    std::fs::write(
        &policy,
        format!("extends = [\"default\"]\n[broker]\nallow = [{outside_s:?}]\n"),
    )
    .unwrap();
    let brokered = format!("find {outside_s} -type f -print0 | xargs -0 cat > /dev/null");
    let readable = format!("--allow-read={outside_s}");
    let p = policy.display().to_string();
    workload(
        "the same tree outside the workspace",
        runs,
        &brokered,
        &ws,
        &[
            (
                "sluice run --allow-read (landlock)",
                with(&["--policy", &p, &readable]),
            ),
            (
                "--transparent, every open brokered",
                with(&["--policy", &p, "--transparent"]),
            ),
        ],
    );
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&ws)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "tree"]);
    git(&[
        "-c",
        "user.name=b",
        "-c",
        "user.email=b@b",
        "commit",
        "-qm",
        "tree",
    ]);
    workload(
        "git status in a 10,000-file repository (the workspace)",
        runs,
        "git status --porcelain > /dev/null",
        &ws,
        &[
            ("sluice run (landlock only)", with(&[])),
            ("sluice run --transparent", with(&["--transparent"])),
        ],
    );
    for d in [&ws, &outside, &audit] {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = std::fs::remove_file(policy);
}

fn main() {
    let iters = env_num("SLUICE_BENCH_ITERS", 20_000);
    let runs = env_num("SLUICE_BENCH_RUNS", 7);
    per_call(iters);
    workloads(runs);
}
