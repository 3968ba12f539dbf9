//! Broker speed, every number against a baseline measured in the same run.
//!
//! - `open+close`: a bare `open(2)` and `close(2)` of the file the broker
//!   serves (what a program does without sluice);
//! - `floor`: a bare socketpair round trip carrying one SCM_RIGHTS
//!   descriptor (a thread answers each small frame with a descriptor it
//!   already holds): the cheapest possible descriptor broker;
//! - `brokered`: an open through the client SDK, served by the real broker
//!   (policy decision, safe open, audit record with its hash chain, reply);
//! - throughput with 1, 8 and 64 concurrent clients (threads, one blocking
//!   SDK connection each).
//!
//! The broker runs in this process on its own tokio runtime, as it does in
//! `sluice run`; the clients are threads of this process.
//!
//! `cargo bench -p supervisor --bench broker` (SLUICE_BENCH_ITERS, default
//! 20000, sets the samples for the latency cases).

// What it measures is Linux-only; for other targets the bench is empty
// (type-checked for macOS by .ci/apple-check, never run there).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use client_sdk::{Client, OpenOptions};
use proto::socket::{recv_frame, send_frame, seqpacket_pair, Blocking};
use supervisor::broker;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Stats {
    p50: Duration,
    p99: Duration,
}

fn measure(iters: usize, mut op: impl FnMut()) -> Stats {
    for _ in 0..iters / 10 {
        op(); // warm up
    }
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        op();
        samples.push(start.elapsed());
    }
    samples.sort();
    Stats {
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
    }
}

fn report(label: &str, s: &Stats, floor: Option<&Stats>) {
    let ratio = floor.map_or(String::new(), |f| {
        format!(
            " | {:>5.2}x floor p50",
            s.p50.as_secs_f64() / f.p50.as_secs_f64()
        )
    });
    println!(
        "{label:<34} p50 {:>8.2} us  p99 {:>8.2} us{ratio}",
        us(s.p50),
        us(s.p99)
    );
}

/// A thread that answers every frame with a copy of `fd`.
fn echo_server(sock: OwnedFd, fd: OwnedFd) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        loop {
            match recv_frame(sock.as_fd(), &mut buf, Blocking::Yes) {
                Ok(got) if got.len > 0 => {
                    let reply = [3u8, 0, 0, 0, 2, 0, 0];
                    if send_frame(sock.as_fd(), &reply, Some(fd.as_fd()), Blocking::Yes).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    })
}

fn policy(dir: &Path) -> policies::Policy {
    let text = format!(
        "[broker]\nallow = [\"{}\"]\ndeny = [\"~/.ssh\", \"**/*.pem\"]\nask = [\"/\"]\n",
        dir.display()
    );
    common::policy(&text, dir)
}

/// The real broker, serving one shared socket, with an audit log.
fn start_broker(dir: &Path) -> (OwnedFd, broker::Broker) {
    let (ours, theirs) = seqpacket_pair().unwrap();
    let policy = policy(dir);
    let shared = common::audited_shared(dir, policy);
    (theirs, broker::Broker::start(ours, shared).unwrap())
}

fn throughput(shared_fd: &OwnedFd, file: &Path, clients: usize, per_client: usize) -> f64 {
    let barrier = Arc::new(std::sync::Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let mut client = Client::connect(shared_fd.as_fd(), "bench").unwrap();
            let barrier = barrier.clone();
            let file = file.to_path_buf();
            std::thread::spawn(move || {
                let opts = read_only();
                barrier.wait();
                for _ in 0..per_client {
                    drop(client.open(&file, &opts).unwrap());
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    (clients * per_client) as f64 / start.elapsed().as_secs_f64()
}

fn read_only() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true);
    o
}

fn main() -> io::Result<()> {
    let iters: usize = std::env::var("SLUICE_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = common::temp_dir("broker");
    let file = dir.join("served.txt");
    std::fs::write(&file, "content")?;

    let bare = measure(iters, || drop(File::open(&file).unwrap()));
    report("bare open+close", &bare, None);

    let (client_end, server_end) = seqpacket_pair()?;
    let server = echo_server(server_end, File::open(&file)?.into());
    let mut buf = [0u8; 64];
    let floor = measure(iters, || {
        send_frame(client_end.as_fd(), &[1, 0, 0, 0, 0], None, Blocking::Yes).unwrap();
        let got = recv_frame(client_end.as_fd(), &mut buf, Blocking::Yes).unwrap();
        assert_eq!(got.fds.len(), 1);
    });
    drop(client_end);
    server.join().unwrap();
    report("floor: socketpair + SCM_RIGHTS", &floor, None);

    let (shared_fd, broker) = start_broker(&dir);
    let mut client = Client::connect(shared_fd.as_fd(), "bench")?;
    let opts = read_only();
    let brokered = measure(iters, || {
        let f = client.open(&file, &opts).unwrap();
        debug_assert!(f.as_raw_fd() >= 0);
    });
    report("brokered open (SDK, audited)", &brokered, Some(&floor));
    println!(
        "{:<34} {:>5.2}x bare open+close p50",
        "",
        brokered.p50.as_secs_f64() / bare.p50.as_secs_f64()
    );
    drop(client);

    let per_client = (iters / 4).max(100);
    let mut base = 0.0;
    for clients in [1, 8, 64] {
        let per = (per_client * 8 / clients).max(200);
        let rate = throughput(&shared_fd, &file, clients, per);
        if clients == 1 {
            base = rate;
        }
        println!(
            "throughput, {clients:>2} client(s){:<16} {:>10.0} opens/s  ({:>4.2}x one client)",
            "",
            rate,
            rate / base
        );
    }
    drop(shared_fd);
    broker.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
