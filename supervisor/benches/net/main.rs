//! The hosts mode's proxy (`supervisor::net`) against a direct loopback
//! connection, alternately in the same run so machine noise hits both alike:
//!
//! - set-up: connect, then one byte there and back; through the proxy the
//!   connect is a `CONNECT localhost:PORT` and its `200` answer (the policy
//!   judged, the name resolved, the connection recorded when it closes);
//! - streaming: 64 MiB one way to a server that discards them, until its
//!   one-byte acknowledgement.
//!
//! The proxy runs as in a session (its own runtime, a listening socket it is
//! handed), with a recorder that counts records instead of writing them.
//! Targets: set-up p50 within +0.3 ms of direct; throughput within 10%.
//!
//! The streams also go through a bare relay, in the same run: a blocking
//! thread that moves the bytes with `splice(2)` to a fixed address, no
//! protocol, no policy, no runtime. It is the ceiling of any relay the
//! program reaches by TCP (the second connection's cost is the kernel's):
//! where the proxy matches it, what is left is that second connection.
//! Each path's CPU cost (all threads, and by party) gives the rate it allows
//! on this machine's CPUs, which moves far less with the load than the rate.
//!
//! And through the hand-over (`handover.rs`): the program's `connect` to an
//! address standing for an allowed name, notified, made by the supervisor
//! and its socket put on the program's descriptor number: the bytes flow on
//! one connection, as direct ones do. Not what sessions do (they relay):
//! what handing over would give, set-up and stream.
//!
//! `cargo bench -p supervisor --bench net` (SLUICE_BENCH_ITERS for the
//! set-up samples, SLUICE_BENCH_MIB for the streamed size).

// What it measures is Linux-only; for other targets the bench is empty
// (type-checked for macOS by .ci/apple-check, never run there).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use supervisor::net::Proxy;

mod handover;

/// CPU time of this whole process (client, server and proxy threads alike).
fn cpu() -> Duration {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

/// On-CPU time so far of the client (the main thread, and the hand-over's
/// program thread) and the proxy (its runtime's threads, `sluice-proxy`,
/// and the hand-over's `sluice-handover`), from
/// `/proc/self/task/*/schedstat`; the server's threads end with their
/// connections: the rest of [`cpu`].
fn parties() -> [Duration; 2] {
    let mut by = [Duration::ZERO; 2];
    let me = std::process::id().to_string();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let dir = task.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("schedstat")),
        ) else {
            continue; // ended meanwhile
        };
        let ns: u64 = stat.split(' ').next().unwrap().parse().unwrap();
        if task.file_name().to_str() == Some(me.as_str()) || comm.starts_with("sluice-program") {
            by[0] += Duration::from_nanos(ns);
        } else if comm.starts_with("sluice-proxy") || comm.starts_with("sluice-handover") {
            by[1] += Duration::from_nanos(ns);
        }
    }
    by
}

/// CPU time of the bare relay's threads, each adding its own at its end
/// (a thread's `schedstat` goes when it does).
static BARE_CPU_NS: AtomicU64 = AtomicU64::new(0);

/// A relay with nothing but `splice(2)`: each connection to the returned
/// port is joined to `127.0.0.1:to`, a blocking thread per direction moving
/// the bytes through a 1 MiB pipe (as the proxy's relay does). A reference
/// for the proxy, not a copy of it: it judges, resolves and records nothing.
fn bare_relay(to: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let server = direct(to);
            let (c, s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || splice_all(client, server));
            std::thread::spawn(move || splice_all(s, c));
        }
    });
    port
}

fn splice_all(from: TcpStream, to: TcpStream) {
    use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
    const CHUNK: usize = 1 << 20;
    let (out, into) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let _ = fcntl(&into, FcntlArg::F_SETPIPE_SZ(CHUNK as i32));
    let flags = SpliceFFlags::SPLICE_F_MOVE;
    'all: while let Ok(n @ 1..) = splice(&from, None, &into, None, CHUNK, flags) {
        let mut left = n;
        while left > 0 {
            match splice(&out, None, &to, None, left, flags) {
                Ok(0) | Err(_) => break 'all,
                Ok(n) => left -= n,
            }
        }
    }
    // Counted before the shutdown, which the client's acknowledgement follows.
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD).unwrap();
    let us = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    BARE_CPU_NS.fetch_add(
        (us(u.user_time()) + us(u.system_time())) * 1000,
        Ordering::Relaxed,
    );
    let _ = to.shutdown(Shutdown::Write);
}

fn bare_cpu() -> Duration {
    Duration::from_nanos(BARE_CPU_NS.load(Ordering::Relaxed))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Echoes one byte per connection; or, for streams, reads to EOF then
/// answers one byte. On 127.0.0.1 and ::1 (where `localhost` may resolve
/// first), at the same port.
fn server() -> u16 {
    let v6 = TcpListener::bind("[::1]:0").unwrap();
    let port = v6.local_addr().unwrap().port();
    let v4 = TcpListener::bind(("127.0.0.1", port)).unwrap();
    serve(v6);
    serve(v4);
    port
}

fn serve(listener: TcpListener) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut buf = vec![0u8; 256 * 1024];
                let mut first = [0u8; 1];
                if stream.read_exact(&mut first).is_err() {
                    return;
                }
                if first[0] == b'e' {
                    let _ = stream.write_all(&first);
                    return;
                }
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                let _ = stream.write_all(b"k");
            });
        }
    });
}

fn through_proxy(proxy: u16, port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", proxy)).unwrap();
    s.set_nodelay(true).unwrap();
    write!(s, "CONNECT localhost:{port} HTTP/1.1\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

fn direct(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn setup(mut s: TcpStream) {
    s.write_all(b"e").unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
}

fn stream(mut s: TcpStream, bytes: usize) {
    let chunk = vec![b's'; 256 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        s.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    s.shutdown(Shutdown::Write).unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
}

fn main() {
    let iters: usize = std::env::var("SLUICE_BENCH_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let mib: usize = std::env::var("SLUICE_BENCH_MIB")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let port = server();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let hosts = policies::HostPolicy {
        // A name, resolved (from /etc/hosts) on every connection.
        allow: vec![format!("localhost:{port}").parse().unwrap()],
        ask: policies::AskHosts::No,
    };
    let records = Arc::new(AtomicU64::new(0));
    let counted = records.clone();
    let proxy = Proxy::start(
        vec![OwnedFd::from(listener)],
        hosts,
        supervisor::net::Upstream::Direct,
        // One record counted per connection: the one at its end.
        Some(Arc::new(move |_, stage| {
            if stage == supervisor::net::Stage::End {
                counted.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })),
        None,
    )
    .unwrap();
    let handover = handover::HandOver::start(policies::HostPolicy {
        allow: vec![format!("localhost:{port}").parse().unwrap()],
        ask: policies::AskHosts::No,
    });

    let (mut plain, mut proxied, mut handed) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iters {
        let t = Instant::now();
        setup(direct(port));
        plain.push(t.elapsed());
        let t = Instant::now();
        setup(through_proxy(proxy_port, port));
        proxied.push(t.elapsed());
        handed.push(handover.setup(port));
    }
    plain.sort();
    proxied.sort();
    handed.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "set-up, direct       p50 {:>8.1} us  p99 {:>8.1} us",
        us(percentile(&plain, 0.5)),
        us(percentile(&plain, 0.99))
    );
    println!(
        "set-up, proxied      p50 {:>8.1} us  p99 {:>8.1} us  (+{:.1} us at p50)",
        us(percentile(&proxied, 0.5)),
        us(percentile(&proxied, 0.99)),
        us(percentile(&proxied, 0.5)) - us(percentile(&plain, 0.5))
    );
    println!(
        "set-up, handed over  p50 {:>8.1} us  p99 {:>8.1} us  (+{:.1} us at p50)",
        us(percentile(&handed, 0.5)),
        us(percentile(&handed, 0.99)),
        us(percentile(&handed, 0.5)) - us(percentile(&plain, 0.5))
    );

    let bytes = mib * 1024 * 1024;
    let bare = bare_relay(port);
    // Per path (direct, proxied, bare relay, handed over): wall and CPU
    // time per run.
    let (mut wall, mut cpu_times) = ([(); 4].map(|_| Vec::new()), [(); 4].map(|_| Vec::new()));
    // CPU time by party over all runs: client, relay (proxy, bare relay or
    // the hand-over's thread), server.
    let mut party = [[Duration::ZERO; 3]; 4];
    for _ in 0..5 {
        for path in 0..4 {
            let (t, c, p, b) = (Instant::now(), cpu(), parties(), bare_cpu());
            match path {
                0 => stream(direct(port), bytes),
                1 => stream(through_proxy(proxy_port, port), bytes),
                2 => stream(direct(bare), bytes),
                _ => drop(handover.stream(port, bytes)),
            }
            wall[path].push(t.elapsed());
            let (all, q) = (cpu() - c, parties());
            cpu_times[path].push(all);
            let client = q[0] - p[0];
            let relaying = match path {
                0 => Duration::ZERO,
                2 => bare_cpu() - b,
                _ => q[1] - p[1],
            };
            party[path][0] += client;
            party[path][1] += relaying;
            party[path][2] += all.saturating_sub(client + relaying);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / (1024.0 * 1024.0);
    // CPU seconds per GiB moved, all parties together: what a relay adds
    // whatever else the machine is doing.
    let per_gib = |d: Duration| d.as_secs_f64() / (bytes as f64 / (1u64 << 30) as f64);
    let all = 5.0 * bytes as f64 / (1u64 << 30) as f64;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let (mut direct_rate, mut direct_bound) = (0.0, 0.0);
    let names = ["direct", "proxied", "bare relay", "handed over"];
    for (path, name) in names.iter().enumerate() {
        let (r, c) = (
            rate(median(&mut wall[path])),
            per_gib(median(&mut cpu_times[path])),
        );
        let [client, relaying, serving] = party[path].map(|d| d.as_secs_f64() / all);
        // The rate the CPU cost allows (MiB/s): every CPU busy with this
        // stream alone, and no faster than its busiest party: it moves far
        // less with the machine's load than the rate.
        let bound = (cpus / c).min(1.0 / client.max(relaying).max(serving)) * 1024.0;
        if path == 0 {
            (direct_rate, direct_bound) = (r, bound);
        }
        let by = if path == 0 {
            format!("client {client:.3}, server {serving:.3}")
        } else {
            format!("client {client:.3}, relay {relaying:.3}, server {serving:.3}")
        };
        println!(
            "stream {mib} MiB, {name:<11} median {r:>6.0} MiB/s ({:>3.0}% of direct); \
             {c:.3} CPU s/GiB ({by}): at most {bound:.0} MiB/s on {cpus} CPUs \
             ({:.0}% of direct's)",
            r / direct_rate * 100.0,
            bound / direct_bound * 100.0
        );
    }
    proxy.stop();
    println!("({} connections recorded)", records.load(Ordering::Relaxed));
}
