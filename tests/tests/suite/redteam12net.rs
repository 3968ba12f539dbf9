//! Red team, round 12: the network by host name, the prompts' terminal and
//! the audit record of connections. Each attack has its control: the same
//! request allowed, or the same action succeeding outside sluice.
//!
//! Servers are the test's own on the host's loopback (or all of its
//! addresses, for the forms of this machine's own addresses); test names
//! resolve through the `/etc/hosts` of `net_hosts::Net`. Nothing leaves
//! the machine.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::audit::{audit, only_session, records};
use sluice_tests::pty::Terminal;
use sluice_tests::{execute, Fixture};

use super::net_hosts::{connections, raw_connect, strs, Net, Server, PROBE, PROXY_PORT, PYTHON};

/// A server that reads everything it is sent, counting the bytes, and
/// neither answers nor closes (for five minutes): a connection that is
/// still open when the session ends.
struct Sink {
    port: u16,
    received: Arc<AtomicUsize>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(AtomicUsize::new(0));
        let counted = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let counted = counted.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64 * 1024];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        counted.fetch_add(n, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_secs(300));
                    drop(stream);
                });
            }
        });
        Sink { port, received }
    }

    /// Waits (bounded) until `n` bytes have arrived; returns what arrived.
    fn wait_for(&self, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.received.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.received.load(Ordering::SeqCst)
    }
}

/// Python: a `CONNECT target` through the proxy, its status line printed,
/// then `bytes` bytes sent; `then` is more Python run after.
fn connect_and_send(target: &str, bytes: usize, then: &str) -> Vec<String> {
    vec![
        PYTHON.into(),
        "-c".into(),
        format!(
            "import socket, sys, time\n\
             s = socket.create_connection(('127.0.0.1', {PROXY_PORT}), timeout=60)\n\
             s.sendall(b'CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n')\n\
             data = b''\n\
             while b'\\r\\n\\r\\n' not in data:\n    \
                 chunk = s.recv(4096)\n    \
                 if not chunk: break\n    \
                 data += chunk\n\
             print(data.split(b'\\r\\n')[0].decode(), flush=True)\n\
             s.sendall(b'x' * {bytes})\n\
             {then}\n"
        ),
    ]
}

/// A request's characters as bytes (latin-1), for [`raw_requests_of`].
fn py_bytes(request: &str) -> String {
    let hex: String = request
        .chars()
        .map(|c| format!("{:02x}", c as u32 & 0xff))
        .collect();
    format!("bytes.fromhex('{hex}')")
}

/// Python: one connection to the proxy per request, each request sent
/// raw; prints `REQUEST-INDEX STATUS-LINE` for each (or `closed`).
fn raw_requests(requests: &[String]) -> Vec<String> {
    let list: Vec<String> = requests.iter().map(|r| py_bytes(r)).collect();
    raw_requests_of(&list)
}

/// [`raw_requests`], each request a Python expression of bytes.
fn raw_requests_of(expressions: &[String]) -> Vec<String> {
    let list = expressions.join(", ");
    vec![
        PYTHON.into(),
        "-c".into(),
        format!(
            "import socket\n\
             for i, req in enumerate([{list}]):\n    \
                 s = socket.create_connection(('127.0.0.1', {PROXY_PORT}), timeout=60)\n    \
                 try:\n        \
                     s.sendall(req)\n    \
                 except OSError:\n        \
                     pass\n    \
                 data = b''\n    \
                 while b'\\r\\n' not in data and len(data) < 10:\n        \
                     try:\n            \
                         chunk = s.recv(4096)\n        \
                     except OSError:\n            \
                         chunk = b''\n        \
                     if not chunk: break\n        \
                     data += chunk\n    \
                 line = data.split(b'\\r\\n')[0].decode(errors='replace') or 'closed'\n    \
                 print(i, line, flush=True)\n    \
                 s.close()\n"
        ),
    ]
}

/// The status line printed for each request by [`raw_requests`].
fn statuses(stdout: &str, count: usize) -> Vec<String> {
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    (0..count)
        .map(|i| {
            let prefix = format!("{i} ");
            lines
                .iter()
                .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
                .unwrap_or_else(|| "missing".to_owned())
        })
        .collect()
}

fn connect_request(target: &str) -> String {
    format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n")
}

/// A connection still open when the session ends is recorded with the
/// bytes it carried. The proxy's relay used to give up its counts when
/// the session's end cancelled it: the record said 0 bytes sent for
/// 100,000 bytes that reached the server.
#[test]
fn a_connection_open_when_the_session_ends_records_its_bytes() {
    let net = Net::new();
    let sink = Sink::start();
    let target = format!("allowed.test:{}", sink.port);
    let program = connect_and_send(&target, 100_000, "s.shutdown(socket.SHUT_WR)");
    let out = net.run(&[&format!("--allow-host={target}")], &strs(&program));
    out.assert_code(0);
    assert!(out.stdout.starts_with("HTTP/1.1 200"), "{out}");
    // Control: the bytes did get out.
    assert_eq!(sink.wait_for(100_000), 100_000);
    let recs = connections(&net.fx);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0]["decision"], "allowed", "{recs:#?}");
    assert_eq!(recs[0]["sent"], 100_000, "{recs:#?}");
    // The record as it opened, and the one at its end, chained, shown to
    // the reviewer in order; the session verifies.
    let session = only_session(&net.fx);
    let verified = audit(&net.fx, &["verify", &session]);
    verified.assert_code(0);
    let shown = audit(&net.fx, &["show", &session, "--access", "net"]);
    let lines: Vec<&str> = shown
        .stdout
        .lines()
        .filter(|l| l.contains(" net "))
        .collect();
    assert_eq!(lines.len(), 2, "{shown}");
    assert!(
        lines[0].contains("allowed.test") && lines[0].ends_with("opened"),
        "{shown}"
    );
    assert!(lines[1].contains("100000 bytes sent"), "{shown}");
}

/// A connection allowed and open when the supervisor is killed (SIGKILL:
/// the person, the OOM killer) is on the record. Its record used to be
/// written only when it ended, so a killed supervisor left none of a
/// connection whose bytes had reached the host (a file decision is written
/// before its descriptor is served); now a `connection-open` record is
/// written before anything passes.
#[test]
fn a_connection_open_when_the_supervisor_is_killed_is_on_the_record() {
    let net = Net::new();
    let sink = Sink::start();
    let target = format!("allowed.test:{}", sink.port);
    let program = connect_and_send(&target, 5_000, "print('SENT', flush=True); time.sleep(120)");
    let mut cmd = net.resolving(
        net.fx
            .sluice_command(&[&format!("--allow-host={target}")], &strs(&program)),
        None,
    );
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // unshare and sh exec: the pid is sluice's.
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    assert_eq!(sink.wait_for(5_000), 5_000, "the bytes did not get out");
    // SAFETY: kill takes integers; pid is our child's.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = child.wait();
    let session = only_session(&net.fx);
    let recs: Vec<Value> = records(&net.fx, &session)
        .into_iter()
        .filter(|r| r["kind"] == "connection-open")
        .collect();
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let opened = &recs[0];
    assert_eq!(opened["host"], "allowed.test", "{opened}");
    assert_eq!(opened["decision"], "allowed", "{opened}");
    assert_eq!(opened["by"], "rule", "{opened}");
    assert_eq!(
        opened["address"],
        format!("127.0.0.1:{}", sink.port),
        "{opened}"
    );
    // The killed session's record holds together: incomplete, not forged.
    let verified = audit(&net.fx, &["verify", &session]);
    verified.assert_code(2);
    assert!(verified.stdout.starts_with("INCOMPLETE"), "{verified}");
}

/// A connection whose record cannot be written is not opened to the
/// program (as a file decision that cannot be recorded is not served):
/// sluice's writes to the record fail from the first connection on
/// (`RLIMIT_FSIZE`, `SIGXFSZ` ignored). Control: the same request with
/// room for its records passes, and gives the start record's size.
#[test]
fn a_connection_that_cannot_be_recorded_is_refused() {
    use std::os::unix::process::CommandExt;
    let net = Net::new();
    let sink = Sink::start();
    let target = format!("allowed.test:{}", sink.port);
    let program = connect_and_send(&target, 1_000, "");
    let allow = format!("--allow-host={target}");
    let out = net.run(&[&allow], &strs(&program));
    assert!(out.stdout.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(sink.wait_for(1_000), 1_000);
    let session = only_session(&net.fx);
    let file = net.fx.audit_dir().join(format!("{session}.jsonl"));
    let start = fs::read_to_string(file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .len() as u64
        + 1;
    // Room for the start record and a little, not for a connection's.
    let limit = start + 64;
    let mut cmd = net.resolving(net.fx.sluice_command(&[&allow], &strs(&program)), None);
    // SAFETY: between fork and exec only setrlimit and signal, both
    // async-signal-safe, on plain values.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = execute(cmd);
    assert!(out.stdout.starts_with("HTTP/1.1 502"), "{out}");
    assert!(out.stderr.contains("cannot record a connection"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sink.received.load(Ordering::SeqCst),
        1_000,
        "bytes passed on a connection that is on no record"
    );
}

/// After an allowed plain-HTTP request, or inside an allowed tunnel, a
/// second request for another host (pipelined in the same write, absolute
/// URI, `CONNECT`) goes to the allowed host, never to the other one.
#[test]
fn requests_pipelined_after_an_allowed_one_never_reach_another_host() {
    let net = Net::new();
    let other = Server::start("127.0.0.1", &net.served);
    let (a, b) = (net.server.port, other.port);
    let pipelined = format!(
        "GET http://allowed.test:{a}/index.html HTTP/1.1\r\nHost: allowed.test:{a}\r\n\r\n\
         GET http://other.test:{b}/index.html HTTP/1.1\r\nHost: other.test:{b}\r\n\r\n"
    );
    let tunnelled = format!(
        "CONNECT allowed.test:{a} HTTP/1.1\r\nHost: allowed.test:{a}\r\n\r\n\
         CONNECT other.test:{b} HTTP/1.1\r\nHost: other.test:{b}\r\n\r\n\
         GET http://other.test:{b}/index.html HTTP/1.1\r\nHost: other.test:{b}\r\n\r\n"
    );
    // HTTP/1.0 without a Host header, origin form: not a proxy request.
    let bare =
        format!("GET /index.html HTTP/1.0\r\n\r\nGET http://other.test:{b}/ HTTP/1.0\r\n\r\n");
    let requests = [pipelined, tunnelled, bare];
    let out = net.run(
        &[&net.allow("allowed.test")],
        &strs(&raw_requests(&requests)),
    );
    out.assert_code(0);
    let got = statuses(&out.stdout, 3);
    assert_eq!(other.hits(), 0, "another host was reached: {got:?} {out}");
    // Control: the allowed host was reached (both times), the origin-form
    // request refused.
    assert!(got[0].starts_with("HTTP/1.0 200"), "{got:?} {out}");
    assert!(got[1].starts_with("HTTP/1.1 200"), "{got:?} {out}");
    assert!(got[2].starts_with("HTTP/1.1 400"), "{got:?} {out}");
    assert!(net.server.hits() >= 2);
    // Control: the other host, allowed, is reached by the same request.
    let out = net.run(
        &[&format!("--allow-host=other.test:{b}")],
        &strs(&raw_requests(&[connect_request(&format!(
            "other.test:{b}"
        ))])),
    );
    assert!(
        statuses(&out.stdout, 1)[0].starts_with("HTTP/1.1 200"),
        "{out}"
    );
}

/// Names that only look like an allowed one, in a `CONNECT` and in an
/// absolute URI: a wildcard's domain as a prefix, a suffix glued on,
/// percent-encoding, credentials, a fragment, a second port, a backslash.
#[test]
fn names_that_only_look_allowed_are_refused() {
    let net = Net::new();
    let p = net.server.port;
    let wild = format!("--allow-host=*.wild.test:{p}");
    let targets = [
        format!("wild.test.other.test:{p}"),
        format!("api.wild.test.other.test:{p}"),
        format!("xallowed.test:{p}"),
        format!("allowed.test.other.test:{p}"),
        format!("allowed.test%2eother.test:{p}"),
        format!("allowed.test:{p}@other.test:{p}"),
        format!("other.test:{p}#allowed.test:{p}"),
        format!("allowed.test:{p}:{p}"),
        format!("other.test\\allowed.test:{p}"),
        format!("allowed.test..:{p}"),
        format!("wild.test:{p}"),
        format!("*.wild.test:{p}"),
    ];
    let mut requests: Vec<String> = targets.iter().map(|t| connect_request(t)).collect();
    requests.extend([
        format!("GET http://allowed.test:{p}@other.test:{p}/index.html HTTP/1.1\r\n\r\n"),
        format!("GET http://other.test:{p}\\@allowed.test:{p}/index.html HTTP/1.1\r\n\r\n"),
        format!("GET http://other.test:{p}?.allowed.test/index.html HTTP/1.1\r\n\r\n"),
    ]);
    // The controls, last: case and one trailing dot are the same name.
    requests.push(connect_request(&format!("ALLOWED.Test.:{p}")));
    requests.push(connect_request(&format!("API.wild.test.:{p}")));
    let n = requests.len();
    let before = net.server.hits();
    let out = net.run(
        &[&net.allow("allowed.test"), &wild],
        &strs(&raw_requests(&requests)),
    );
    let got = statuses(&out.stdout, n);
    for (i, status) in got[..n - 2].iter().enumerate() {
        assert!(
            status.starts_with("HTTP/1.1 403") || status.starts_with("HTTP/1.1 400"),
            "request {i} {:?} got {status:?}: {out}",
            requests[i]
        );
    }
    assert!(got[n - 2].starts_with("HTTP/1.1 200"), "{got:?} {out}");
    // The control's connection, and no other.
    assert_eq!(net.server.hits(), before + 1, "{got:?}");
    // api.wild.test resolves to loopback, which a `*.` rule never reaches:
    // refused by the address, not by the name.
    assert!(got[n - 1].starts_with("HTTP/1.1 502"), "{got:?} {out}");
}

/// This machine's loopback and unspecified addresses in every form a
/// resolver or a literal can take (decimal, hex, short forms, IPv4-mapped
/// and -compatible IPv6, `0`), under `ask_hosts = true` and `--approve
/// allow`: an answer allows a name like a `*.` rule, which never reaches
/// this machine. A server listens on every interface.
#[test]
fn every_form_of_this_machines_addresses_stays_out_of_an_answers_reach() {
    let net = Net::new();
    let server = Server::start("0.0.0.0", &net.served);
    let p = server.port;
    let policy = net.fx.write_policy(
        "ask-all",
        "extends = [\"default\"]\n[network]\nask_hosts = true\n",
    );
    let targets = [
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "127.1",
        "0177.0.0.1",
        "0",
        "0.0.0.0",
        "[::]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::ffff:0.0.0.0]",
        "[::127.0.0.1]",
        "localhost",
        "localhost.",
        "127.0.0.1",
        "[::1]",
    ];
    let requests: Vec<String> = targets
        .iter()
        .map(|t| connect_request(&format!("{t}:{p}")))
        .collect();
    let out = net.run(
        &["--policy", &policy, "--approve", "allow"],
        &strs(&raw_requests(&requests)),
    );
    let got = statuses(&out.stdout, targets.len());
    for (t, status) in targets.iter().zip(&got) {
        assert!(
            !status.starts_with("HTTP/1.1 200"),
            "{t} got {status}: {out}"
        );
        assert!(status.starts_with("HTTP/1.1"), "{t} got {status}: {out}");
    }
    assert_eq!(server.hits(), 0, "{got:?}");
    // Control: named exactly, the same server is reached.
    let out = net.run(
        &[&format!("--allow-host=localhost:{p}")],
        &strs(&raw_requests(&[connect_request(&format!("localhost:{p}"))])),
    );
    assert!(
        statuses(&out.stdout, 1)[0].starts_with("HTTP/1.1 200"),
        "{out}"
    );
    assert_eq!(server.hits(), 1);
}

/// Malformed, huge, endless or binary requests, a broken SOCKS5 greeting
/// and connections dropped half-way leave the proxy serving the next
/// request.
#[test]
fn malformed_and_huge_requests_leave_the_proxy_serving() {
    let net = Net::new();
    let p = net.server.port;
    let requests = [
        // Not UTF-8.
        "CONNECT \u{ff}\u{fe}:443 HTTP/1.1\r\n\r\n".to_owned(),
        // A NUL in the name.
        format!("CONNECT allowed.test\0.other.test:{p} HTTP/1.1\r\n\r\n"),
        // SOCKS5: a greeting with no method.
        "\u{5}\u{0}".to_owned(),
        // SOCKS5 BIND, UDP ASSOCIATE.
        format!(
            "\u{5}\u{1}\u{0}\u{5}\u{2}\u{0}\u{3}\u{c}allowed.test{}",
            port_bytes(p)
        ),
        format!(
            "\u{5}\u{1}\u{0}\u{5}\u{3}\u{0}\u{3}\u{c}allowed.test{}",
            port_bytes(p)
        ),
        // HTTP/2 preface, HTTP/0.9, a header folded over lines.
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_owned(),
        format!("GET http://allowed.test:{p}/\r\n\r\n"),
        format!("GET http://allowed.test:{p}/ HTTP/1.1\r\nX: a\r\n Host: other.test\r\n\r\n"),
        // Port 0, a port too large, no port.
        "CONNECT allowed.test:0 HTTP/1.1\r\n\r\n".to_owned(),
        "CONNECT allowed.test:65536 HTTP/1.1\r\n\r\n".to_owned(),
        "CONNECT allowed.test HTTP/1.1\r\n\r\n".to_owned(),
    ];
    // First, 200 KB without an end of head.
    let mut all: Vec<String> = vec!["b'A' * 200000".to_owned()];
    all.extend(requests.iter().map(|r| py_bytes(r)));
    // The control, last: an allowed request on the same proxy.
    all.push(py_bytes(&format!(
        "GET http://allowed.test:{p}/index.html HTTP/1.1\r\nHost: x\r\n\r\n"
    )));
    let before = net.server.hits();
    let out = net.run(&[&net.allow("allowed.test")], &strs(&raw_requests_of(&all)));
    let got = statuses(&out.stdout, all.len());
    for (i, status) in got[..all.len() - 1].iter().enumerate() {
        assert!(
            !status.contains(" 200 ") && !status.contains("\u{5}\u{0}\u{5}\u{0}"),
            "request {i} got {status:?}: {out}"
        );
    }
    assert!(
        got[all.len() - 1].starts_with("HTTP/1.0 200"),
        "{got:?} {out}"
    );
    // The control's connection, and no other.
    assert_eq!(net.server.hits(), before + 1, "{got:?}");
}

/// A port in network order, as latin-1 characters (SOCKS5 requests).
fn port_bytes(port: u16) -> String {
    port.to_be_bytes().iter().map(|&b| char::from(b)).collect()
}

/// The other ways out of the hosts mode's namespace: UDP, ICMP and raw
/// sockets, netlink and packet sockets, TCP fast open (`sendto` with an
/// address on a TCP socket), io_uring, IPv6 loopback, and a TCP connect
/// straight to the server. Control: each succeeds outside sluice.
#[test]
fn the_hosts_modes_other_ways_out_are_closed() {
    let net = Net::new();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let udp_port = udp.local_addr().unwrap().port().to_string();
    let p = net.server.port.to_string();
    let attacks: Vec<Vec<&str>> = vec![
        vec!["udp-send", "127.0.0.1", &udp_port],
        vec!["tcp-connect", "127.0.0.1", &p],
        vec!["tcp-connect", "::1", &p],
        vec!["tcp-fastopen", "127.0.0.1", &p],
        vec!["socket", "inet-raw"],
        vec!["socket", "netlink"],
        vec!["socket", "packet"],
        vec!["io-uring"],
    ];
    let before = net.server.hits();
    for attack in &attacks {
        let probe = net.fx.probe_path();
        let mut program = vec![probe.as_str()];
        program.extend(attack);
        let out = net.run(&[&net.allow("allowed.test")], &program);
        assert!(!out.stdout.starts_with("OK"), "{attack:?}: {out}");
    }
    assert_eq!(net.server.hits(), before);
    let mut buf = [0u8; 16];
    assert!(udp.recv(&mut buf).is_err(), "a datagram got out");
    // Controls, outside sluice (as root: raw and packet sockets too).
    for attack in [
        &attacks[0],
        &attacks[1],
        &attacks[3],
        &attacks[4],
        &attacks[5],
    ] {
        let out = net.fx.direct(attack);
        assert!(out.stdout.starts_with("OK"), "{attack:?}: {out}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(udp.recv(&mut buf).is_ok(), "the control's datagram");
}

/// A stacked session's program and the outer session's loopback services
/// (`127.0.0.1:PORT` listening in the outer program's namespace): its own
/// rules do not name them, so it must not reach them, neither straight
/// (Landlock's port rules) nor through its proxy. Control: the outer
/// program reaches the service.
#[test]
fn a_stacked_program_cannot_reach_the_outer_sessions_loopback_services() {
    let net = Net::new();
    let sluice = sluice_tests::sluice_bin();
    let p = net.server.port;
    let raw = net.fx.ws("raw.py");
    fs::write(&raw, &raw_connect("127.0.0.1", p)[2]).unwrap();
    let proxied = net.fx.ws("proxied.py");
    // Stacked, the proxy is where HTTPS_PROXY says (an ephemeral port).
    let code = raw_requests(&[connect_request(&format!("127.0.0.1:{p}"))])[2].replace(
        &format!("('127.0.0.1', {PROXY_PORT})"),
        "('127.0.0.1', int(__import__('os').environ['HTTPS_PROXY'].rstrip('/').rsplit(':', 1)[1]))",
    );
    fs::write(&proxied, code).unwrap();
    let script = format!(
        "{PYTHON} {raw}; {sluice} run {} -- sh -c '{PYTHON} {raw}; {PYTHON} {proxied}'",
        net.allow("allowed.test"),
        sluice = sluice.display(),
    );
    let before = net.server.hits();
    let out = net.run(
        &[
            &format!("--allow-host=127.0.0.1:{p}"),
            &net.allow("allowed.test"),
        ],
        &["sh", "-c", &script],
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"CONNECTED"), "{out}");
    assert_eq!(net.server.hits(), before + 1, "{out}");
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("FAILED")),
        "{out}"
    );
    assert!(
        lines
            .get(2)
            .is_some_and(|l| l.starts_with("0 HTTP/1.1 403")),
        "{out}"
    );
}

/// Abstract unix sockets: the host's (a desktop session's, a database's)
/// and a first session's own are out of reach of a hosts-mode program
/// and of a second session; a second session cannot reach the first
/// one's proxy either. Controls: each is reached from where it lives.
#[test]
fn abstract_sockets_and_another_sessions_proxy_are_out_of_reach() {
    let net = Net::new();
    let name = format!("sluice-redteam12-{}", std::process::id());
    let mut path = vec![0u8];
    path.extend_from_slice(name.as_bytes());
    let host = {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&path[1..]).unwrap();
        UnixListener::bind_addr(&addr).unwrap()
    };
    host.set_nonblocking(true).unwrap();
    let probe = net.fx.probe_path();
    let modes: [&[&str]; 3] = [
        &["--net", "all"],
        &["--net", "none"],
        &[&net.allow("allowed.test")],
    ];
    for mode in modes {
        let out = net.run(mode, &[&probe, "abstract-connect", &name]);
        assert!(!out.stdout.starts_with("OK"), "{mode:?}: {out}");
    }
    assert!(
        host.accept().is_err(),
        "the host's abstract socket was reached"
    );
    // Control: outside sluice the same connect succeeds.
    let out = net.fx.direct(&["abstract-connect", &name]);
    assert!(out.stdout.starts_with("OK"), "{out}");

    // A first session, in the hosts mode, holding an abstract listener of
    // its own and a connection to its proxy.
    let inner = format!("{name}-first");
    let script = format!(
        "import socket, sys\n\
         l = socket.socket(socket.AF_UNIX)\n\
         l.bind('\\0{inner}')\n\
         l.listen(8)\n\
         c = socket.socket(socket.AF_UNIX)\n\
         c.connect('\\0{inner}')\n\
         p = socket.create_connection(('127.0.0.1', {PROXY_PORT}), timeout=60)\n\
         print('READY', flush=True)\n\
         sys.stdin.readline()\n\
         l.setblocking(False)\n\
         n = 0\n\
         while True:\n    \
             try:\n        \
                 l.accept(); n += 1\n    \
             except BlockingIOError:\n        \
                 break\n\
         print('ACCEPTED', n, flush=True)\n"
    );
    let file = net.fx.ws("first.py");
    fs::write(&file, script).unwrap();
    let mut cmd = net.resolving(
        net.fx
            .sluice_command(&[&net.allow("allowed.test")], &[PYTHON, &file]),
        None,
    );
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut first = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(first.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // Control: the first session reaches its own socket and proxy.
    assert_eq!(line.trim(), "READY");
    // A second session, in every network mode, tries both.
    let proxy_port = PROXY_PORT.to_string();
    for mode in modes {
        let out = execute(
            net.fx
                .sluice_command(mode, &[&probe, "abstract-connect", &inner]),
        );
        assert!(!out.stdout.starts_with("OK"), "{mode:?}: {out}");
    }
    // Nothing listens on the proxy's port in the host's network (else the
    // check proves nothing).
    let free = TcpStream::connect(("127.0.0.1", PROXY_PORT)).is_err();
    if free {
        let out = execute(net.fx.sluice_command(
            &["--net", "all"],
            &[&probe, "tcp-connect", "127.0.0.1", &proxy_port],
        ));
        assert!(!out.stdout.starts_with("OK"), "{out}");
    }
    first.stdin.take().unwrap().write_all(b"\n").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(first.wait().unwrap().success());
    // The first session's listener took its own connection only.
    assert_eq!(rest.trim(), "ACCEPTED 1", "{rest}");
}

/// A program naming new hosts without end: sluice says each refusal on
/// its stderr once per host, which flooded the person's terminal (and grew
/// the supervisor's memory by a name each); now for 32 hosts, then once
/// that the rest are in the record only. Control: every refusal is in the
/// audit record, and the first ones are said.
#[test]
fn a_flood_of_refused_hosts_is_said_on_stderr_a_bounded_number_of_times() {
    let net = Net::new();
    let requests: Vec<String> = (0..100)
        .map(|i| connect_request(&format!("h{i}.flood.test:80")))
        .collect();
    let out = net.run(
        &[&net.allow("allowed.test")],
        &strs(&raw_requests(&requests)),
    );
    out.assert_code(0);
    let got = statuses(&out.stdout, requests.len());
    assert!(got.iter().all(|s| s.starts_with("HTTP/1.1 403")), "{got:?}");
    let said = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("sluice: refused the program's connection to h"))
        .count();
    assert_eq!(said, 32, "{out}");
    let more = out
        .stderr
        .lines()
        .filter(|l| l.contains("connections to more hosts were refused"))
        .count();
    assert_eq!(more, 1, "{out}");
    assert_eq!(connections(&net.fx).len(), 100);
}

/// The program's output reached the person's terminal unchanged, so an
/// OSC 52 sequence in it set the person's clipboard where the terminal
/// honours it (kitty, WezTerm, foot, Alacritty and tmux by default, xterm
/// and iTerm2 when allowed): a command line the person pastes later into a
/// shell outside the sandbox (or, with `?`, the clipboard typed back into
/// the program). The relay now drops clipboard strings, split across
/// writes or not.
#[test]
fn the_program_cannot_set_the_persons_clipboard() {
    let fx = Fixture::new(PROBE);
    // `echo pwned` in base64; the second split over two writes.
    let script = "printf 'before\\033]52;c;ZWNobyBwd25lZAo=\\007mid\\033]5'; sleep 0.3; \
                  printf '2;c;ZWNobyBwd25lZAo=\\033\\\\after\\n'";
    let mut t = Terminal::spawn(fx.sluice_command(&[], &["/bin/sh", "-c", script]), 24, 80);
    t.expect("after");
    let done = t.wait();
    assert!(
        !done.transcript.contains("\x1b]52;"),
        "the clipboard sequence reached the terminal: {:?}",
        done.transcript
    );
    assert!(!done.transcript.contains("ZWNv"), "{:?}", done.transcript);
    // Control: what surrounds it does.
    assert!(
        done.transcript.contains("beforemidafter"),
        "{:?}",
        done.transcript
    );
}
