//! The guard's cost on a real build: `make -j2` of a generated C project in
//! the workspace, under the built-in `default` policy (the guard on: every
//! open that writes and every name made goes through the supervisor and the
//! connector) and under the same policy without `[filesystem] protect` (no
//! guard), alternately in the same run so machine noise hits both alike;
//! the bare build as a reference.
//!
//! `cargo bench -p supervisor --bench guard` (SLUICE_BENCH_ROUNDS, default
//! 7; SLUICE_BENCH_FILES, default 60 source files).

// What it measures is Linux-only; for other targets the bench is empty
// (type-checked for macOS by .ci/apple-check, never run there).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The built-in default policy, whose `protect` list is cut out for the
/// comparison.
const DEFAULT: &str = include_str!("../../policies/builtin/default.toml");

fn without_protect(policy: &str) -> String {
    let start = policy
        .find("\nprotect = [")
        .expect("default has a protect list");
    let end = start + policy[start..].find("\n]\n").expect("the list ends") + 3;
    format!("{}{}", &policy[..start + 1], &policy[end..])
}

fn project(dir: &Path, files: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut objs = Vec::new();
    for i in 0..files {
        let body = format!(
            "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\
             int f{i}(int n) {{ int s = 0; for (int k = 0; k < n; k++) s += k * {i}; \
             char b[64]; snprintf(b, sizeof b, \"%d\", s); return (int)strlen(b); }}\n"
        );
        std::fs::write(dir.join(format!("f{i}.c")), body).unwrap();
        objs.push(format!("f{i}.o"));
    }
    let calls: String = (0..files).map(|i| format!("f{i}(3) + ")).collect();
    let decls: String = (0..files).map(|i| format!("int f{i}(int);\n")).collect();
    std::fs::write(
        dir.join("main.c"),
        format!("{decls}int main(void) {{ return ({calls}0) == 0; }}\n"),
    )
    .unwrap();
    objs.push("main.o".into());
    std::fs::write(
        dir.join("Makefile"),
        format!(
            "OBJS = {}\nprog: $(OBJS)\n\tcc -o prog $(OBJS)\n%.o: %.c\n\tcc -O1 -c $< -o $@\n\
             clean:\n\trm -f $(OBJS) prog\n",
            objs.join(" ")
        ),
    )
    .unwrap();
}

/// CPU time (user and system) of every process waited for so far: the
/// build's, sluice's and the connector's, which sluice reaps.
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Wall-clock and CPU time of one build.
fn build(cmd: &mut Command) -> (Duration, Duration) {
    let (start, cpu) = (Instant::now(), children_cpu());
    let status = cmd.stdin(Stdio::null()).status().expect("spawn");
    let elapsed = (start.elapsed(), children_cpu() - cpu);
    assert!(status.success(), "{cmd:?} failed: {status}");
    elapsed
}

fn median(v: &[(Duration, Duration)], cpu: bool) -> Duration {
    let mut v: Vec<Duration> = v.iter().map(|&(w, c)| if cpu { c } else { w }).collect();
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let sluice = env!("CARGO_BIN_EXE_sluice");
    let env_num = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env_num("SLUICE_BENCH_ROUNDS", 7);
    let files = env_num("SLUICE_BENCH_FILES", 60);
    let root: PathBuf =
        std::env::temp_dir().join(format!("sluice-bench-guard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let ws = root.join("ws");
    project(&ws, files);
    let no_guard = root.join("no-guard.toml");
    std::fs::write(&no_guard, without_protect(DEFAULT)).unwrap();
    let make = |policy: Option<&Path>| {
        let mut cmd = Command::new(sluice);
        cmd.args(["run", "--workspace"]).arg(&ws);
        if let Some(p) = policy {
            cmd.arg("--policy").arg(p);
        }
        cmd.args(["--", "/bin/sh", "-c", "make -s clean && make -s -j2"])
            .current_dir(&ws);
        cmd
    };
    let mut bare_cmd = Command::new("/bin/sh");
    bare_cmd
        .args(["-c", "make -s clean && make -s -j2"])
        .current_dir(&ws);
    println!(
        "make -j2 of {} C files, {rounds} alternating rounds",
        files + 1
    );
    // One of each first, unmeasured: caches.
    build(&mut bare_cmd);
    build(&mut make(Some(&no_guard)));
    build(&mut make(None));
    let (mut bare, mut off, mut on) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        bare.push(build(&mut bare_cmd));
        off.push(build(&mut make(Some(&no_guard))));
        on.push(build(&mut make(None)));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    // CPU time is what the guard adds work to; wall-clock time on a shared
    // machine moves with everything else running.
    for (what, cpu) in [("wall-clock", false), ("CPU (user+sys)", true)] {
        let (b, f, n) = (median(&bare, cpu), median(&off, cpu), median(&on, cpu));
        println!("median {what}:");
        println!("  bare                         {:>8.1} ms", ms(b));
        println!(
            "  default without protect      {:>8.1} ms  ({:.3}x bare)",
            ms(f),
            ms(f) / ms(b)
        );
        println!(
            "  default (the guard on)       {:>8.1} ms  ({:.3}x bare, {:.3}x without protect)",
            ms(n),
            ms(n) / ms(b),
            ms(n) / ms(f)
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
