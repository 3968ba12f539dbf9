//! Launch overhead and workloads: sluice against a bare exec, a
//! Landlock-only launcher and bubblewrap, all in the same run.
//!
//! 1. Launch: `/bin/true` bare, under the Landlock-only launcher (this bench
//!    binary run as `landlock-exec`, [`landlock_exec`]: one ruleset, no
//!    namespace), under bubblewrap (`bwrap` on PATH; skipped when absent)
//!    with a policy-built root like sluice's, and under `sluice run` with
//!    the default policy (in an empty and in a 10,000-file workspace) and
//!    with a small policy that has nothing to protect; and `default` without
//!    its `[filesystem] deny` patterns, beside `default`, in a 10,000-file
//!    workspace holding ten nested `.env` files (the walk that finds them
//!    and the mounts that hide them). Every round runs each
//!    case once, so machine noise hits them alike. Twice: back to back, then
//!    with 100 ms of idle before every sample, as an agent spaces its tool
//!    calls (some kernel paths, the cgroup migration's RCU grace period
//!    among them, are fast only when the last such call was recent).
//! 2. Workloads, bare, under each launcher: `git status` in a 10,000-file
//!    repository, `python3 -c pass`, a shell loop of 200 `cat`. Besides the
//!    whole command, "per run" is the command run SLUICE_BENCH_REPEAT times
//!    by a shell inside one launch, less the same shell running it zero
//!    times, over the count: what the sandbox costs per system call rather
//!    than per launch, in wall-clock and in CPU time (every process of the
//!    launch: for sluice its supervisor and connector too), each as the
//!    median of its ratios to bare's of the same round ([`workload`]).
//!
//! Medians with the p10 to p90 spread. `cargo bench -p supervisor --bench
//! launch`; SLUICE_BENCH_ITERS (launch rounds, default 100; 0: workloads
//! only), SLUICE_BENCH_RUNS (workload rounds, default 31),
//! SLUICE_BENCH_REPEAT (runs inside one launch, default 5),
//! SLUICE_BENCH_IDLE_MS (default 100);
//! SLUICE_BENCH_BASE=PATH adds another sluice binary's launch with
//! `default` (`sluice default, SLUICE_BENCH_BASE`), to compare two builds
//! in the same rounds.

// What it measures is Linux-only; for other targets the bench is empty
// (type-checked for macOS by .ci/apple-check, never run there).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// p50, p10, p90 in ms.
fn stats(samples: &[Duration]) -> (f64, f64, f64) {
    let mut s = samples.to_vec();
    s.sort();
    let at = |p: f64| ms(s[((s.len() - 1) as f64 * p).round() as usize]);
    (at(0.5), at(0.1), at(0.9))
}

/// Builds the command that runs a program (argv) in a workspace.
type Wrap = Box<dyn Fn(&Path, &[&str]) -> Command>;

/// How to run a command under one launcher, in a workspace.
struct Launcher {
    name: &'static str,
    wrap: Wrap,
}

fn launchers(env: &Env) -> Vec<Launcher> {
    let mut all = vec![Launcher {
        name: "bare",
        wrap: Box::new(|ws, cmd| {
            let mut c = Command::new(cmd[0]);
            c.args(&cmd[1..]).current_dir(ws);
            c
        }),
    }];
    let me = std::env::current_exe().unwrap();
    all.push(Launcher {
        name: "landlock-only",
        wrap: Box::new(move |ws, cmd| {
            let mut c = Command::new(&me);
            c.arg("landlock-exec").arg(ws).args(cmd).current_dir(ws);
            c
        }),
    });
    if let Some(bwrap) = on_path("bwrap") {
        all.push(Launcher {
            name: "bubblewrap",
            wrap: Box::new(move |ws, cmd| {
                let mut c = Command::new(&bwrap);
                c.args(bwrap_root()).arg("--bind").arg(ws).arg(ws);
                c.arg("--chdir").arg(ws).arg("--").args(cmd);
                c
            }),
        });
    } else {
        println!("bubblewrap: not installed (apt install bubblewrap), skipped");
    }
    // Another build of sluice, run beside this one with `default`: the
    // change a commit makes, measured in the same rounds.
    let base = std::env::var_os("SLUICE_BENCH_BASE").map(PathBuf::from);
    let base_case = base.map(|base| ("sluice default, SLUICE_BENCH_BASE", None, base));
    for (name, policy, sluice) in [
        ("sluice default", None, env.sluice.clone()),
        (
            "sluice small policy",
            Some(env.small_policy.clone()),
            env.sluice.clone(),
        ),
        (
            "sluice default, no deny patterns",
            Some(env.no_deny_patterns.clone()),
            env.sluice.clone(),
        ),
    ]
    .into_iter()
    .chain(base_case)
    {
        let state = env.state.clone();
        all.push(Launcher {
            name,
            wrap: Box::new(move |ws, cmd| {
                let mut c = Command::new(&sluice);
                c.arg("run").arg("--workspace").arg(ws);
                if let Some(p) = &policy {
                    c.arg("--policy").arg(p);
                }
                c.arg("--").args(cmd).current_dir(ws);
                c.env("XDG_STATE_HOME", state.join("state"))
                    .env("XDG_CONFIG_HOME", state.join("config"));
                c
            }),
        });
    }
    all
}

/// A root like the one sluice builds for the small policy: `/usr` and
/// `/etc` read-only, the top-level links, a private `/dev`, `/proc` and
/// `/tmp`, every namespace new.
fn bwrap_root() -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--unshare-all", "--die-with-parent", "--new-session"]
        .map(OsString::from)
        .to_vec();
    for top in ["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32"] {
        let p = Path::new(top);
        if let Ok(target) = std::fs::read_link(p) {
            args.extend(["--symlink".into(), target.into(), top.into()]);
        } else if p.exists() {
            args.extend(["--ro-bind".into(), top.into(), top.into()]);
        }
    }
    args.extend(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"].map(OsString::from));
    args
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

struct Env {
    sluice: PathBuf,
    small_policy: PathBuf,
    /// `default` without its `[filesystem] deny` patterns.
    no_deny_patterns: PathBuf,
    /// XDG state and configuration of the sluice runs.
    state: PathBuf,
}

/// The built-in `default`, its `[filesystem] deny` patterns left out (the
/// paths stay; `protect` and `[broker]` are untouched).
fn default_without_deny_patterns() -> String {
    let text = policies::builtin_source("default").unwrap();
    let (mut table, mut in_deny) = (String::new(), false);
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            table = line.to_string();
        }
        if table == "[filesystem]" && line.starts_with("deny = [") {
            in_deny = true;
        } else if in_deny && line.starts_with(']') {
            in_deny = false;
        }
        if in_deny && line.contains("**") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn populate(dir: &Path, files: usize) {
    std::fs::create_dir_all(dir.join(".git/hooks")).unwrap();
    std::fs::write(dir.join(".git/config"), "[core]\n").unwrap();
    std::fs::write(dir.join(".env"), "SECRET=1\n").unwrap();
    for i in 0..files {
        let sub = dir.join(format!("d{}", i / 100));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}")), "x").unwrap();
    }
}

/// One launch case: a launcher in a workspace.
struct Case<'a> {
    label: String,
    launcher: &'a Launcher,
    ws: &'a Path,
}

fn launch_rounds(cases: &[Case], iters: u64, idle: Option<Duration>) {
    if iters == 0 {
        return;
    }
    let mut samples = vec![Vec::new(); cases.len()];
    for _ in 0..iters {
        for (i, case) in cases.iter().enumerate() {
            if let Some(idle) = idle {
                std::thread::sleep(idle);
            }
            samples[i].push(time(&mut run(case.launcher, case.ws, &["/bin/true"])));
        }
    }
    let bare = stats(&samples[0]).0;
    for (case, s) in cases.iter().zip(&samples) {
        let (p50, p10, p90) = stats(s);
        println!(
            "  {:<40} p50 {p50:>7.3} ms  (p10 {p10:>7.3}, p90 {p90:>7.3})  added {:>+7.3} ms  {:>5.2}x",
            case.label,
            p50 - bare,
            p50 / bare
        );
    }
}

/// `cmd` under launcher `l` in `ws`, which is also its home (the person's
/// is out of the Landlock-only launcher's reach, and git stops at a
/// configuration file it may not read).
fn run(l: &Launcher, ws: &Path, cmd: &[&str]) -> Command {
    let mut c = (l.wrap)(ws, cmd);
    c.env("HOME", ws);
    c
}

/// CPU time (user and system) of every child this process has reaped,
/// with their reaped descendants: for `sluice run`, the supervisor's
/// threads, the connector and the sandbox's processes; for bubblewrap, its
/// own processes too.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage into the zeroed local.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Wall-clock and CPU time of one command.
#[derive(Clone, Copy)]
struct Spent {
    wall: Duration,
    cpu: Duration,
}

fn spend(cmd: &mut Command) -> Spent {
    let before = children_cpu();
    let wall = time(cmd);
    Spent {
        wall,
        cpu: children_cpu().saturating_sub(before),
    }
}

/// `sh -c` running `cmd` `times` times in a row, in one process tree.
/// No redirection: the shell's own output is already `/dev/null` ([`time`]),
/// and each `>/dev/null` would be a write-open the guard serves.
fn repeated(cmd: &[&str], times: u64) -> Vec<String> {
    let script = format!("i=0; while [ $i -lt {times} ]; do \"$@\" || exit 1; i=$((i+1)); done");
    let mut argv = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        script,
        "sh".to_owned(),
    ];
    argv.extend(cmd.iter().map(|a| a.to_string()));
    argv
}

/// p50 (p10 to p90) of `values`, which it sorts.
fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

/// A workload under every launcher, `runs` rounds, each launcher once per
/// round (so the machine's load hits them alike):
///
/// - *whole*: the command run once, launch included (what a person waits);
/// - *per run*: the command run `repeat` times by a shell inside one launch,
///   less the same shell running it zero times under the same launcher, over
///   `repeat`: what the sandbox costs per system call, the launch taken out.
///   Its wall-clock and CPU time (every process of the launch, the
///   supervisor's threads and the connector included) are divided, round by
///   round, by bare's of the same round; the medians of those ratios are
///   the targets' figures (issue #19: `git status` and `python3 -c pass` at
///   most 1.15x bare, the `cat` loop 1.05x).
fn workload(title: &str, ws: &Path, cmd: &[&str], all: &[&Launcher], runs: u64, repeat: u64) {
    println!("{title}");
    let n = all.len();
    let (mut whole, mut wall, mut cpu) = (vec![vec![]; n], vec![vec![]; n], vec![vec![]; n]);
    for _ in 0..runs {
        for (i, l) in all.iter().enumerate() {
            whole[i].push(time(&mut run(l, ws, cmd)));
            let looped = spend(&mut run_argv(l, ws, &repeated(cmd, repeat)));
            let empty = spend(&mut run_argv(l, ws, &repeated(cmd, 0)));
            let per = |a: Duration, b: Duration| ms(a.saturating_sub(b)) / repeat as f64;
            wall[i].push(per(looped.wall, empty.wall));
            cpu[i].push(per(looped.cpu, empty.cpu));
        }
    }
    let bare_whole = stats(&whole[0]).0;
    let ratios = |of: &[Vec<f64>], i: usize| -> Vec<f64> {
        of[i].iter().zip(&of[0]).map(|(x, b)| x / b).collect()
    };
    for (i, l) in all.iter().enumerate() {
        let (p50, p10, p90) = stats(&whole[i]);
        let (w, _, _) = spread(&mut wall[i].clone());
        let (c, _, _) = spread(&mut cpu[i].clone());
        let (wr, wr10, wr90) = spread(&mut ratios(&wall, i));
        let (cr, cr10, cr90) = spread(&mut ratios(&cpu, i));
        // bubblewrap's processes are not reaped through it: their CPU time
        // never reaches this process's children's.
        let cpu = match c > 0.01 * spread(&mut cpu[0].clone()).0 {
            true => format!("CPU {c:>7.2} ms {cr:>5.2}x bare ({cr10:.2} to {cr90:.2})"),
            false => "CPU not counted (not reaped through the launcher)".to_owned(),
        };
        println!(
            "  {:<22} whole p50 {p50:>8.2} ms (p10 {p10:>8.2}, p90 {p90:>8.2}) {:>5.2}x bare | \
             per run: wall {w:>7.2} ms {wr:>5.2}x bare ({wr10:.2} to {wr90:.2}), {cpu}",
            l.name,
            p50 / bare_whole,
        );
    }
}

/// `argv` under launcher `l` in `ws`, as [`run`].
fn run_argv(l: &Launcher, ws: &Path, argv: &[String]) -> Command {
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    run(l, ws, &argv)
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "landlock-exec") {
        landlock_exec(&args[2..]);
    }
    if args.get(1).is_some_and(|a| a == "warm-client") {
        warm_client(&args[2]);
    }
    let iters = env_num("SLUICE_BENCH_ITERS", 100);
    let runs = env_num("SLUICE_BENCH_RUNS", 31);
    let idle = Duration::from_millis(env_num("SLUICE_BENCH_IDLE_MS", 100));
    let root = common::temp_dir("launch");
    let small_policy = root.join("small.toml");
    std::fs::write(
        &small_policy,
        "[filesystem]\nread = [\"/usr\", \"/etc\"]\nexecute = [\"/usr\"]\nwrite = [\"$WORKSPACE\", \"$TMPDIR\", \"/dev/null\"]\n",
    )
    .unwrap();
    let no_deny_patterns = root.join("no-deny-patterns.toml");
    std::fs::write(&no_deny_patterns, default_without_deny_patterns()).unwrap();
    let env = Env {
        sluice: PathBuf::from(env!("CARGO_BIN_EXE_sluice")),
        small_policy,
        no_deny_patterns,
        state: root.join("xdg"),
    };
    let all = launchers(&env);
    let empty = root.join("empty");
    let big = root.join("big");
    std::fs::create_dir_all(&empty).unwrap();
    populate(&big, 10_000);
    let deep = root.join("deep");
    populate(&deep, 10_000);
    for i in 0..10 {
        std::fs::write(deep.join(format!("d{i}/.env")), "SECRET=1\n").unwrap();
    }
    // Like a workspace with node_modules: 100,000 files in 5,000
    // directories three deep. The deny walk's cache (in the runs' state)
    // lists none of them again after the first launch.
    let modules = root.join("modules");
    populate(&modules, 0);
    for i in 0..100_000 {
        let sub = modules.join(format!(
            "node_modules/p{}/lib{}/s{}",
            i / 2000,
            i / 200 % 10,
            i / 20 % 10
        ));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}.js")), "x").unwrap();
    }

    let mut cases: Vec<Case> = all
        .iter()
        .map(|l| Case {
            label: l.name.to_owned(),
            launcher: l,
            ws: &empty,
        })
        .collect();
    let default = all.iter().find(|l| l.name == "sluice default").unwrap();
    cases.push(Case {
        label: "sluice default, 10,000-file workspace".into(),
        launcher: default,
        ws: &big,
    });
    let no_deny = (all.iter())
        .find(|l| l.name == "sluice default, no deny patterns")
        .unwrap();
    for (label, launcher) in [
        ("sluice default, 10,000 files and ten .env", default),
        ("sluice default, same, no deny patterns", no_deny),
    ] {
        cases.push(Case {
            label: label.into(),
            launcher,
            ws: &deep,
        });
    }
    for (label, launcher) in [
        (
            "sluice default, 100,000 files in 5,000 directories",
            default,
        ),
        ("sluice default, same, no deny patterns", no_deny),
    ] {
        cases.push(Case {
            label: label.into(),
            launcher,
            ws: &modules,
        });
    }
    let spike = warm_spike(&env, &root, &empty);
    if let Some((launcher, _)) = &spike {
        cases.push(Case {
            label: launcher.name.into(),
            launcher,
            ws: &empty,
        });
    }
    println!("launch of /bin/true, {iters} rounds, back to back");
    launch_rounds(&cases, iters, None);
    println!(
        "launch of /bin/true, {iters} rounds, {} ms idle before each sample",
        idle.as_millis()
    );
    launch_rounds(&cases, iters, Some(idle));

    workloads(&root, &empty, &all, runs);
    if let Some((_, mut server)) = spike {
        // The init follows its supervisor (PR_SET_PDEATHSIG).
        let _ = server.kill();
        let _ = server.wait();
    }
    let _ = std::fs::remove_dir_all(root);
}

/// Issue #19's spike, with `--features warm-spike`: a sandbox prepared
/// ahead by the cold path with `default`, whose init serves launches of
/// `/bin/true` on a socket, each program installing its filter and sending
/// the guard's listener to the client (dropped unread); the case is this bench
/// binary as [`warm_client`]: the floor of a prepared launch, not a sluice
/// one may use (`sandbox-child`'s `child/warm_spike.rs`).
fn warm_spike(env: &Env, root: &Path, ws: &Path) -> Option<(Launcher, std::process::Child)> {
    if !cfg!(feature = "warm-spike") {
        return None;
    }
    let socket = root.join("spike.sock");
    let server = Command::new(&env.sluice)
        .args(["run", "--workspace"])
        .arg(ws)
        .args(["--", "/bin/true"])
        .current_dir(ws)
        .env("SLUICE_WARM_SPIKE_SOCKET", &socket)
        .env("XDG_STATE_HOME", env.state.join("state"))
        .env("XDG_CONFIG_HOME", env.state.join("config"))
        .stdin(Stdio::null())
        .spawn()
        .expect("the spike's server");
    // Ready once a request is answered.
    let me = std::env::current_exe().unwrap();
    let ready = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        Command::new(&me)
            .arg("warm-client")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(ready, "the spike's server does not answer");
    let launcher = Launcher {
        name: "prepared sandbox, default (spike)",
        wrap: Box::new(move |ws, _cmd| {
            let mut c = Command::new(&me);
            c.arg("warm-client").arg(&socket).current_dir(ws);
            c
        }),
    };
    Some((launcher, server))
}

/// The spike's client: its three standard descriptors to the prepared
/// init listening at `socket` (`SCM_RIGHTS`), then the program's status
/// back, as its own.
fn warm_client(socket: &OsString) -> ! {
    use std::io::Read;
    use std::os::fd::{AsFd, BorrowedFd};
    let fail = |what: &str, e: std::io::Error| -> ! {
        eprintln!("warm-client: {what}: {e}");
        std::process::exit(125)
    };
    let mut stream =
        std::os::unix::net::UnixStream::connect(socket).unwrap_or_else(|e| fail("connect", e));
    // SAFETY: this process's standard descriptors, open for its lifetime.
    let stdio = [0, 1, 2].map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
    let blocking = proto::socket::Blocking::Yes;
    proto::socket::send_record(stream.as_fd(), b"r", &stdio, blocking)
        .unwrap_or_else(|e| fail("send", e));
    // The status is the last 4 bytes (before them, with the guard, the
    // program's listener, which a read without a control buffer drops).
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .unwrap_or_else(|e| fail("read", e));
    let Some(status) = answer.last_chunk::<4>() else {
        fail("read", std::io::ErrorKind::UnexpectedEof.into())
    };
    std::process::exit(i32::from_ne_bytes(*status))
}

/// The workloads under every launcher but the launch part's own cases
/// (`default` without its deny patterns): SLUICE_BENCH_REPEAT (default 5)
/// runs of the command inside each launch.
fn workloads(root: &Path, empty: &Path, all: &[Launcher], runs: u64) {
    let repeat = env_num("SLUICE_BENCH_REPEAT", 5).max(1);
    let all: Vec<&Launcher> = (all.iter())
        .filter(|l| l.name != "sluice default, no deny patterns")
        .collect();
    println!(
        "workloads: {runs} rounds; per run: {repeat} runs inside one launch, less none, over {repeat}"
    );
    let repo = root.join("repo");
    populate(&repo, 10_000);
    let _ = std::fs::remove_dir_all(repo.join(".git"));
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_AUTHOR_NAME", "b")
            .env("GIT_AUTHOR_EMAIL", "b@b")
            .env("GIT_COMMITTER_NAME", "b")
            .env("GIT_COMMITTER_EMAIL", "b@b")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "bench"]);
    // Past the index's racy second: every launcher then finds an index
    // that needs no refresh, rather than the first rewriting it.
    std::thread::sleep(Duration::from_millis(1100));
    git(&["status", "--porcelain"]);
    let git_bin = on_path("git").unwrap();
    let git_bin = git_bin.to_str().unwrap();
    workload(
        &format!("git status, 10,000-file repository, {runs} rounds"),
        &repo,
        &[git_bin, "status", "--porcelain"],
        &all,
        runs,
        repeat,
    );
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    match python {
        Some(python) => workload(
            &format!("{python} -c pass, {runs} rounds"),
            empty,
            &[python, "-c", "pass"],
            &all,
            runs,
            repeat,
        ),
        None => println!("python3: not installed, skipped"),
    }
    workload(
        &format!("sh: 200 x cat /dev/null, {runs} rounds"),
        empty,
        &[
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do cat /dev/null; i=$((i+1)); done",
        ],
        &all,
        runs,
        repeat,
    );
}

/// The Landlock-only baseline: `landlock-exec WS CMD...` runs CMD with the
/// filesystem limited to reading and executing `/usr`, `/etc`, `/dev` and
/// `/proc`, and writing WS and `/tmp`: one ruleset, no namespace, no
/// seccomp. Exits 125 if Landlock is unavailable.
fn landlock_exec(args: &[OsString]) -> ! {
    use std::os::unix::ffi::OsStrExt;
    const RULE_PATH_BENEATH: libc::c_int = 1;
    #[repr(C, packed)]
    struct PathBeneath {
        allowed: u64,
        parent_fd: i32,
    }
    let fail = |what: &str| -> ! {
        eprintln!("landlock-exec: {what}: {}", std::io::Error::last_os_error());
        std::process::exit(125)
    };
    // Every access of ABI 1 (execute .. make symlink), and truncate (ABI 3).
    let (read_exec, all): (u64, u64) = (1 | (1 << 2) | (1 << 3), ((1 << 13) - 1) | (1 << 14));
    // SAFETY: a single u64 attribute (handled_access_fs), its size given.
    let ruleset = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &all as *const u64,
            std::mem::size_of::<u64>(),
            0,
        )
    } as libc::c_int;
    if ruleset < 0 {
        fail("landlock_create_ruleset");
    }
    let ws = Path::new(&args[0]);
    let rules = [
        (Path::new("/usr"), read_exec),
        (Path::new("/etc"), read_exec),
        (Path::new("/dev"), read_exec | 1 << 1),
        (Path::new("/proc"), read_exec),
        (Path::new("/tmp"), all),
        (ws, all),
    ];
    for (path, allowed) in rules {
        let Ok(dir) = std::fs::File::open(path) else {
            continue;
        };
        let attr = PathBeneath {
            allowed,
            parent_fd: std::os::fd::AsRawFd::as_raw_fd(&dir),
        };
        // SAFETY: attr is a valid path_beneath attribute for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset,
                RULE_PATH_BENEATH,
                &attr as *const PathBeneath,
                0,
            )
        };
        if rc != 0 {
            fail(&format!("landlock_add_rule {}", path.display()));
        }
    }
    // SAFETY: prctl and landlock_restrict_self take no pointers here.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            fail("no_new_privs");
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0) != 0 {
            fail("landlock_restrict_self");
        }
    }
    let err = Command::new(&args[1]).args(&args[2..]).exec();
    eprintln!(
        "landlock-exec: {}: {err}",
        String::from_utf8_lossy(args[1].as_bytes())
    );
    std::process::exit(126)
}
