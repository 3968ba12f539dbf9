//! The policy's share of a cold launch, in process: `policies::load` of a
//! built-in (the TOML parse and the `serde` walk of it and what it
//! extends) and `PolicySpec::resolve` (variables, the `statx` of each
//! prefix, the patterns), each timed by the thread's CPU clock, so that
//! other processes on a loaded machine move the figures less than a wall
//! clock would. Minimum and median of each, in microseconds.
//!
//! `cargo bench -p policies --bench policy` (SLUICE_BENCH_ITERS to change
//! the sample count, default 300; SLUICE_BENCH_POLICY for another policy
//! than `default`). The workspace and the temporary directory are made
//! empty for the run; the home directory is the caller's `$HOME`.

use std::hint::black_box;
use std::path::PathBuf;

use policies::Vars;

/// The calling thread's CPU time so far, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call's duration.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn report(label: &str, samples: &mut [u64]) {
    samples.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "{label:<10} min {:>8.1} us  median {:>8.1} us  p90 {:>8.1} us",
        us(samples[0]),
        us(samples[samples.len() / 2]),
        us(samples[samples.len() * 9 / 10]),
    );
}

fn main() {
    let iters: usize = std::env::var("SLUICE_BENCH_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let name = std::env::var("SLUICE_BENCH_POLICY").unwrap_or_else(|_| "default".into());
    let base = std::env::temp_dir().join(format!("sluice-bench-policy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("ws")).unwrap();
    std::fs::create_dir_all(base.join("tmp")).unwrap();
    let base = std::fs::canonicalize(&base).unwrap();
    let home = std::env::var_os("HOME").map_or_else(|| base.clone(), PathBuf::from);
    let vars = Vars {
        home,
        workspace: base.join("ws"),
        tmpdir: base.join("tmp"),
    };
    let (mut load, mut resolve) = (Vec::new(), Vec::new());
    for _ in 0..iters {
        let start = thread_cpu_ns();
        let spec = policies::load(&name).expect("the policy loads");
        let loaded = thread_cpu_ns();
        let policy = spec.resolve(&vars).expect("the policy resolves");
        let resolved = thread_cpu_ns();
        black_box(policy);
        load.push(loaded - start);
        resolve.push(resolved - loaded);
    }
    println!("policy {name:?}, {iters} samples, thread CPU time");
    report("load", &mut load);
    report("resolve", &mut resolve);
    let _ = std::fs::remove_dir_all(&base);
}
