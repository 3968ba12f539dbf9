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

/// CPU time of this whole process (client, server and proxy threads alike).
fn cpu() -> Duration {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

/// On-CPU time so far of the client (the main thread) and the proxy (its
/// runtime's threads, `sluice-proxy`), from `/proc/self/task/*/schedstat`;
/// the server's threads end with their connections: the rest of [`cpu`].
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
        if task.file_name().to_str() == Some(me.as_str()) {
            by[0] += Duration::from_nanos(ns);
        } else if comm.starts_with("sluice-proxy") {
            by[1] += Duration::from_nanos(ns);
        }
    }
    by
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
        Some(Arc::new(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })),
        None,
    )
    .unwrap();

    let (mut plain, mut proxied) = (Vec::new(), Vec::new());
    for _ in 0..iters {
        let t = Instant::now();
        setup(direct(port));
        plain.push(t.elapsed());
        let t = Instant::now();
        setup(through_proxy(proxy_port, port));
        proxied.push(t.elapsed());
    }
    plain.sort();
    proxied.sort();
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

    let bytes = mib * 1024 * 1024;
    let (mut plain, mut proxied) = (Vec::new(), Vec::new());
    let (mut plain_cpu, mut proxied_cpu) = (Vec::new(), Vec::new());
    // Each party's CPU time over the proxied runs: client, proxy, server.
    let mut party = [Duration::ZERO; 3];
    let mut direct_client = Duration::ZERO;
    for _ in 0..5 {
        let (t, c, p) = (Instant::now(), cpu(), parties());
        stream(direct(port), bytes);
        plain.push(t.elapsed());
        plain_cpu.push(cpu() - c);
        direct_client += parties()[0] - p[0];
        let (t, c, p) = (Instant::now(), cpu(), parties());
        stream(through_proxy(proxy_port, port), bytes);
        proxied.push(t.elapsed());
        let (all, q) = (cpu() - c, parties());
        proxied_cpu.push(all);
        let (client, proxying) = (q[0] - p[0], q[1] - p[1]);
        party[0] += client;
        party[1] += proxying;
        party[2] += all.saturating_sub(client + proxying);
    }
    plain_cpu.sort();
    proxied_cpu.sort();
    plain.sort();
    proxied.sort();
    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / (1024.0 * 1024.0);
    let (p, q) = (rate(plain[2]), rate(proxied[2]));
    println!("stream {mib} MiB, direct   median {p:>8.0} MiB/s");
    println!(
        "stream {mib} MiB, proxied  median {q:>8.0} MiB/s  ({:.0}% of direct)",
        q / p * 100.0
    );
    // CPU seconds per GiB moved, all parties together: what the proxy adds
    // whatever else the machine is doing.
    let per_gib = |d: Duration| d.as_secs_f64() / (bytes as f64 / (1u64 << 30) as f64);
    let (p, q) = (per_gib(plain_cpu[2]), per_gib(proxied_cpu[2]));
    println!("stream {mib} MiB, direct   median {p:>8.3} CPU s/GiB");
    println!(
        "stream {mib} MiB, proxied  median {q:>8.3} CPU s/GiB  (+{:.0}%)",
        (q / p - 1.0) * 100.0
    );
    let all = 5.0 * bytes as f64 / (1u64 << 30) as f64;
    let [client, proxying, serving] = party.map(|d| d.as_secs_f64() / all);
    let direct_client = direct_client.as_secs_f64() / all;
    let direct_server = plain_cpu.iter().sum::<Duration>().as_secs_f64() / all - direct_client;
    println!(
        "stream {mib} MiB, direct   CPU s/GiB by party: client {direct_client:.3}, \
         server {direct_server:.3}"
    );
    println!(
        "stream {mib} MiB, proxied  CPU s/GiB by party: client {client:.3}, \
         proxy {proxying:.3}, server {serving:.3}"
    );
    proxy.stop();
    println!("({} connections recorded)", records.load(Ordering::Relaxed));
}
