//! Audit append cost: `AuditLog::append` of a typical decision (JSON,
//! SHA-256, one `write(2)`) against a bare 200-byte `write(2)` to an
//! `O_APPEND` file in the same directory, measured alternately in the same
//! run so machine noise hits both alike. Also a bare write of a record's
//! size and the SHA-256 of a line-sized buffer alone, to show where the
//! time goes (the rest is building the JSON line).
//!
//! Target: append p50 under 2 µs.
//!
//! `cargo bench -p supervisor --bench audit` (SLUICE_BENCH_ITERS to change
//! the sample count, SLUICE_BENCH_DIR to measure on another file system).

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use supervisor::audit::{
    chain, Access, AuditLog, By, Decision, DecisionRecord, Op, StartRecord, Via,
};

fn percentile(sorted: &[Duration], p: f64) -> u128 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_nanos()
}

fn timed(samples: &mut Vec<Duration>, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    samples.push(start.elapsed());
}

fn report(label: &str, samples: &mut [Duration]) -> u128 {
    samples.sort();
    let p50 = percentile(samples, 0.5);
    println!(
        "{label:<28} p50 {p50:>6} ns  p99 {:>6} ns",
        percentile(samples, 0.99)
    );
    p50
}

fn main() {
    let iters: usize = std::env::var("SLUICE_BENCH_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000);
    let base = std::env::var_os("SLUICE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("sluice-bench-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();

    let start = StartRecord {
        sluice_version: "0.1.0".into(),
        policy: "default".into(),
        policy_digest: chain::sha256_hex(b"policy"),
        enforcement: serde_json::json!({"landlock_abi": 7}),
        argv: vec!["cargo".into(), "build".into()],
        workspace: "/home/ana/src/project".into(),
        supervisor_pid: 4242,
        child_pid: 4243,
    };
    let log = AuditLog::open(&base.join("audit"), "bench", &start).unwrap();
    let record = DecisionRecord {
        pid: 4243,
        exe: Some("/usr/lib/node_modules/agent/bin/node".into()),
        client: "agent-sdk/1.2".into(),
        via: Via::Sdk,
        request_id: 17,
        op: Op::Open,
        path_asked: "/home/ana/src/project/src/components/Button.tsx".into(),
        path_opened: Some("/home/ana/src/project/src/components/Button.tsx".into()),
        access: Access::Read,
        flags: proto::OpenFlags::default(),
        decision: Decision::Allowed,
        by: By::Rule,
        rule: Some("read $WORKSPACE".into()),
        reason: None,
        latency_us: 38,
    };
    let mut bare = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(base.join("bare.jsonl"))
        .unwrap();
    let mut line = [b'x'; 200];
    line[199] = b'\n';
    let hash_input = vec![b'{'; 560];
    let mut sized = vec![b'y'; 594];
    sized[593] = b'\n';

    for _ in 0..2_000 {
        log.append(&record).unwrap();
        bare.write_all(&line).unwrap();
    }
    let (mut appends, mut writes, mut sized_writes, mut hashes) = (
        Vec::with_capacity(iters),
        Vec::with_capacity(iters),
        Vec::with_capacity(iters),
        Vec::with_capacity(iters),
    );
    for _ in 0..iters {
        timed(&mut appends, || log.append(black_box(&record)).unwrap());
        timed(&mut writes, || {
            assert_eq!(bare.write(black_box(&line)).unwrap(), line.len())
        });
        timed(&mut sized_writes, || {
            assert_eq!(bare.write(black_box(&sized)).unwrap(), sized.len())
        });
        timed(&mut hashes, || {
            black_box(chain::digest(black_box(&hash_input)));
        });
    }
    let record_len = std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .nth(1)
        .map_or(0, str::len)
        + 1;

    println!(
        "{iters} samples in {}; decision record {record_len} bytes",
        base.display()
    );
    let a = report("audit append", &mut appends);
    let w = report("bare write(2), 200 bytes", &mut writes);
    report("bare write(2), 594 bytes", &mut sized_writes);
    report("sha256 of 560 bytes alone", &mut hashes);
    println!(
        "append / bare write: {:.2}x, added p50 {} ns; target p50 < 2000 ns: {}",
        a as f64 / w as f64,
        a.saturating_sub(w),
        if a < 2000 { "met" } else { "MISSED" }
    );
    let _ = std::fs::remove_dir_all(&base);
}
