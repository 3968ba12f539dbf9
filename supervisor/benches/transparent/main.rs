//! Transparent brokering: what intercepting every `open` costs.
//!
//! 1. Per call ([`calls`]): children under the transparent-brokering filter
//!    open files while this process serves them, with the kernel's
//!    mechanism alone and with the real broker; baselines (a bare `open`, a
//!    socketpair round trip with a descriptor) in the same rounds. Twice:
//!    every thread on one CPU, then placed by the scheduler.
//! 2. A workload, alternating samples: read every file of a 10,000-file tree
//!    (`find | xargs cat`), and `git status` in a repository of that size, bare,
//!    under `sluice run` (Landlock only) and under `sluice run --transparent`
//!    with every open in policy; plus the tree outside the workspace, every
//!    file served by a broker rule (every open through `ADDFD` and recorded).
//!
//! `cargo bench -p supervisor --bench transparent` (SLUICE_BENCH_ITERS for
//! the per-call sample count, SLUICE_BENCH_RUNS for the workload's).

// What it measures is Linux-only; for other targets the bench is empty
// (type-checked for macOS by .ci/apple-check, never run there).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

mod calls;
#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(&format!("tp-{name}"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
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
/// One workload, run `runs` times in each mode, alternating: bare, bare
/// under a listener that answers `CONTINUE` at once (the kernel's part of
/// transparent brokering, nothing of sluice's), then each sluice mode (the
/// first is the Landlock-only baseline).
fn workload(label: &str, runs: usize, script: &str, ws: &Path, modes: &[(&str, Vec<String>)]) {
    let sluice = env!("CARGO_BIN_EXE_sluice");
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); modes.len() + 2];
    for _ in 0..runs {
        samples[0].push(time(
            Command::new("sh").args(["-c", script]).current_dir(ws),
        ));
        samples[1].push(calls::time_under_bare_listener(script, ws));
        for (i, (_, args)) in modes.iter().enumerate() {
            let mut cmd = Command::new(sluice);
            cmd.arg("run").arg("--workspace").arg(ws).args(args);
            cmd.args(["--", "sh", "-c", script]).current_dir(ws);
            samples[i + 2].push(time(&mut cmd));
        }
    }
    let m: Vec<Duration> = samples.into_iter().map(median).collect();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (bare, floor, landlock) = (m[0], m[1], m[2]);
    println!("{label} (median of {runs}):");
    println!("  {:<36} {:>8.1} ms", "bare", ms(bare));
    println!(
        "  {:<36} {:>8.1} ms  {:>5.2}x bare (+{:.1} ms: the kernel's round trips)",
        "bare, every open notified, CONTINUE",
        ms(floor),
        ms(floor) / ms(bare),
        ms(floor) - ms(bare)
    );
    for (i, (mode, _)) in modes.iter().enumerate() {
        let t = m[i + 2];
        let mut line = format!(
            "  {mode:<36} {:>8.1} ms  {:>5.2}x bare, {:>5.2}x landlock-only",
            ms(t),
            ms(t) / ms(bare),
            ms(t) / ms(landlock)
        );
        if i > 0 {
            line += &format!(
                " (+{:.1} ms, of which the kernel's round trips {:.1})",
                ms(t) - ms(landlock),
                ms(floor) - ms(bare)
            );
        }
        println!("{line}");
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

/// Where the per-call part runs: pinned, the scheduler's placement is out
/// of the picture (every hand-off stays on one CPU); free, it is in it
/// (on a virtual machine, waking an idle CPU costs tens of microseconds).
const PLACEMENTS: [(&str, &str); 2] = [
    ("one", "every thread and process on one CPU"),
    ("free", "threads placed by the scheduler"),
];

fn main() {
    let iters = env_num("SLUICE_BENCH_ITERS", 20_000);
    let runs = env_num("SLUICE_BENCH_RUNS", 7);
    // The per-call part runs in a fresh process of this bench, so its
    // children are forked before any thread exists and its affinity is
    // set before anything runs.
    if let Ok(which) = std::env::var("SLUICE_BENCH_CALLS") {
        let (name, placement) = PLACEMENTS
            .iter()
            .find(|(name, _)| *name == which)
            .expect("a placement");
        if *name == "one" {
            pin_to_one_cpu();
        }
        calls::run(iters, placement);
        return;
    }
    for (name, _) in PLACEMENTS {
        let status = Command::new(std::env::current_exe().unwrap())
            .env("SLUICE_BENCH_CALLS", name)
            .status()
            .unwrap();
        assert!(status.success(), "the per-call part ({name}) failed");
    }
    workloads(runs);
}

fn pin_to_one_cpu() {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and
    // sched_setaffinity only touch it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(libc::sched_getcpu().max(0) as usize, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}
