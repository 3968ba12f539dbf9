//! Launch overhead: `sluice run -- /bin/true` against a bare `/bin/true`,
//! measured alternately in the same run so machine noise hits both alike.
//!
//! Reports medians, p90s, the ratio and the added milliseconds, for:
//! - the default policy in an empty workspace (user + mount namespace, since
//!   the built-in policy protects `.git/hooks` and friends when present);
//! - the same in a workspace of 10,000 files (launch cost must not grow with it);
//! - a small policy with nothing to protect inside allowed trees (only the
//!   read-only mount view, no protective mounts).
//!
//! `cargo bench -p supervisor --bench launch` (SLUICE_BENCH_ITERS to change
//! the sample count).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd.status().expect("spawn");
    let elapsed = start.elapsed();
    assert!(status.success(), "{cmd:?} failed: {status}");
    elapsed
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A fresh private directory, removed at the end of `main`.
fn temp_dir(name: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(&format!("sluice-bench-{name}-"))
        .tempdir()
        .unwrap();
    dir.keep()
}

fn bench(label: &str, iters: usize, sluice: &mut dyn FnMut() -> Command) {
    let mut bare = Vec::with_capacity(iters);
    let mut wrapped = Vec::with_capacity(iters);
    for _ in 0..iters {
        bare.push(time(Command::new("/bin/true").stdin(Stdio::null())));
        wrapped.push(time(sluice().stdin(Stdio::null())));
    }
    bare.sort();
    wrapped.sort();
    let (b50, w50) = (percentile(&bare, 0.5), percentile(&wrapped, 0.5));
    let (b90, w90) = (percentile(&bare, 0.9), percentile(&wrapped, 0.9));
    println!(
        "{label:<34} bare p50 {:>7.3} ms p90 {:>7.3} ms | sluice p50 {:>7.3} ms p90 {:>7.3} ms | ratio {:>5.2}x | added p50 {:>6.3} ms",
        ms(b50),
        ms(b90),
        ms(w50),
        ms(w90),
        w50.as_secs_f64() / b50.as_secs_f64(),
        ms(w50) - ms(b50),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
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

fn main() {
    let sluice = env!("CARGO_BIN_EXE_sluice");
    let iters: usize = std::env::var("SLUICE_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    println!("launch overhead, {iters} alternating samples each");

    let empty = temp_dir("empty");
    bench("default policy, empty workspace", iters, &mut || {
        let mut c = Command::new(sluice);
        c.arg("run")
            .arg("--workspace")
            .arg(&empty)
            .arg("--")
            .arg("/bin/true");
        c
    });

    let big = temp_dir("big");
    populate(&big, 10_000);
    bench("default policy, 10,000-file ws", iters, &mut || {
        let mut c = Command::new(sluice);
        c.arg("run")
            .arg("--workspace")
            .arg(&big)
            .arg("--")
            .arg("/bin/true");
        c
    });

    let plain = temp_dir("plain");
    let policy = plain.join("plain.toml");
    std::fs::write(
        &policy,
        "[filesystem]\nread = [\"/usr\", \"/etc\", \"/dev/null\"]\nexecute = [\"/usr\"]\nwrite = [\"$WORKSPACE\", \"$TMPDIR\"]\n",
    )
    .unwrap();
    bench("small policy, no protective mounts", iters, &mut || {
        let mut c = Command::new(sluice);
        c.arg("run")
            .arg("--policy")
            .arg(&policy)
            .arg("--workspace")
            .arg(&plain)
            .arg("--")
            .arg("/bin/true");
        c
    });
    for d in [empty, big, plain] {
        let _ = std::fs::remove_dir_all(d);
    }
}
