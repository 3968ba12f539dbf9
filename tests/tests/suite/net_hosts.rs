//! The network by host name (`--allow-host`, `[network] hosts`): the program
//! runs in a network namespace of its own, and its only way out is the
//! supervisor's proxy, which judges each connection by host and port.
//!
//! Every server is the test's own, on the host's loopback (ephemeral ports);
//! nothing leaves the machine. Test names resolve through an `/etc/hosts`
//! bind-mounted in a mount namespace of the test's (`unshare -m`, as root),
//! where sluice runs: the supervisor resolves with getaddrinfo, which reads
//! it. The asked hosts (`ask_hosts`) are served in a network namespace of
//! the test's, on an address that is not loopback. Each attack has its control: the same request allowed, or the same
//! server reached from outside sluice.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sluice_tests::audit::{only_session, records};
use sluice_tests::{execute, temp_dir, Fixture, Outcome};

pub(super) const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
pub(super) const PYTHON: &str = "/usr/bin/python3";
pub(super) const BODY: &str = "hello-from-the-host-server\n";
/// The proxy's port in the program's own network (`policies::PROXY_PORT`).
pub(super) const PROXY_PORT: u16 = 31280;
/// Names the test resolver maps to 127.0.0.1.
pub(super) const NAMES: &str = "allowed.test other.test api.wild.test";

/// A static file server on `ip`:0 serving `root`, counting connections.
pub(super) struct Server {
    pub(super) port: u16,
    hits: Arc<AtomicUsize>,
}

impl Server {
    pub(super) fn start(ip: &str, root: &Path) -> Server {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let root = root.to_path_buf();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let root = root.clone();
                std::thread::spawn(move || serve_one(stream, &root));
            }
        });
        Server { port, hits }
    }

    pub(super) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

pub(super) fn serve_one(mut stream: TcpStream, root: &Path) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    let file = root.join(path.trim_start_matches('/'));
    let reply = match (path.contains(".."), fs::read(&file)) {
        (false, Ok(data)) => {
            let mut r = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                data.len()
            )
            .into_bytes();
            r.extend_from_slice(&data);
            r
        }
        _ => b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    let _ = stream.write_all(&reply);
}

/// The fixture, a served directory, the server and the test resolver.
pub(super) struct Net {
    pub(super) fx: Fixture,
    _dir: tempfile::TempDir,
    pub(super) hosts: PathBuf,
    pub(super) served: PathBuf,
    pub(super) server: Server,
}

impl Net {
    pub(super) fn new() -> Net {
        let fx = Fixture::new(PROBE);
        let dir = temp_dir("net");
        let served = dir.path().join("www");
        fs::create_dir_all(&served).unwrap();
        fs::write(served.join("index.html"), BODY).unwrap();
        let hosts = dir.path().join("hosts");
        let system = fs::read_to_string("/etc/hosts").unwrap_or_default();
        fs::write(&hosts, format!("{system}\n127.0.0.1 {NAMES}\n")).unwrap();
        for p in [dir.path(), &served, &hosts] {
            use std::os::unix::fs::PermissionsExt;
            let mode = if p.is_dir() { 0o755 } else { 0o644 };
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        }
        let server = Server::start("127.0.0.1", &served);
        Net {
            fx,
            _dir: dir,
            hosts,
            served,
            server,
        }
    }

    pub(super) fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/index.html", self.server.port)
    }

    pub(super) fn allow(&self, host: &str) -> String {
        format!("--allow-host={host}:{}", self.server.port)
    }

    /// `sluice run SLUICE_ARGS -- PROGRAM` with the test resolver.
    pub(super) fn run(&self, sluice_args: &[&str], program: &[&str]) -> Outcome {
        execute(self.resolving(self.fx.sluice_command(sluice_args, program), None))
    }

    /// The same, as uid 65534 (the fixture's files handed to it).
    pub(super) fn run_as_nobody(&self, sluice_args: &[&str], program: &[&str]) -> Outcome {
        let cmd = self.nobody_command(sluice_args, program);
        execute(self.resolving(cmd, Some("65534")))
    }

    /// `sluice run` for uid 65534: the fixture's files handed to it, its
    /// own TMPDIR, the default state and configuration directories.
    pub(super) fn nobody_command(&self, sluice_args: &[&str], program: &[&str]) -> Command {
        let mut cmd = self.fx.sluice_command(sluice_args, program);
        let tmp = self.fx.home("tmp");
        fs::create_dir_all(&tmp).unwrap();
        self.fx.give_to(65534, 65534);
        cmd.env("TMPDIR", &tmp)
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_CONFIG_HOME");
        cmd
    }

    /// `cmd` in a mount namespace where `/etc/hosts` is the test's, as
    /// `user` (a uid) if given.
    pub(super) fn resolving(&self, cmd: Command, user: Option<&str>) -> Command {
        let mut wrapped = Command::new("unshare");
        wrapped.args(["-m", "--propagation", "private", "--", "sh", "-c"]);
        let run_as = match user {
            Some(uid) => format!("setpriv --reuid={uid} --regid={uid} --clear-groups -- "),
            None => String::new(),
        };
        wrapped.arg(format!(
            "mount --bind \"$0\" /etc/hosts && exec {run_as}\"$@\""
        ));
        wrapped.arg(&self.hosts);
        around(wrapped, cmd)
    }
}

/// `wrapper` (its own arguments given) running `cmd`: `cmd`'s program and
/// arguments follow, its environment and directory are kept, stdin is
/// `/dev/null`.
pub(super) fn around(mut wrapper: Command, cmd: Command) -> Command {
    wrapper.arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapper.env(k, v),
            None => wrapper.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapper.current_dir(dir);
    }
    wrapper.stdin(std::process::Stdio::null());
    wrapper
}

pub(super) fn curl(url: &str) -> Vec<&str> {
    vec!["curl", "-sS", "--max-time", "60", url]
}

/// Python's urllib fetching `url` through the proxy variables.
pub(super) fn python_get(url: &str) -> Vec<String> {
    vec![
        PYTHON.into(),
        "-c".into(),
        format!(
            "import urllib.request, sys\n\
             try:\n    print(urllib.request.urlopen({url:?}, timeout=60).read().decode(), end='')\n\
             except Exception as e:\n    print('ERROR', e); sys.exit(3)"
        ),
    ]
}

/// A raw TCP connect from Python, ignoring every proxy variable; prints
/// CONNECTED or the error's name.
pub(super) fn raw_connect(ip: &str, port: u16) -> Vec<String> {
    vec![
        PYTHON.into(),
        "-c".into(),
        format!(
            "import socket\n\
             try:\n    socket.create_connection(({ip:?}, {port}), timeout=20); print('CONNECTED')\n\
             except OSError as e:\n    print('FAILED', type(e).__name__, e.errno)"
        ),
    ]
}

/// Sends `CONNECT target` to the proxy by hand and prints its status line.
pub(super) fn raw_proxy_connect(target: &str) -> Vec<String> {
    vec![
        PYTHON.into(),
        "-c".into(),
        format!(
            "import socket\n\
             s = socket.create_connection(('127.0.0.1', {PROXY_PORT}), timeout=60)\n\
             s.sendall(b'CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n')\n\
             data = b''\n\
             while b'\\r\\n\\r\\n' not in data:\n    \
                 chunk = s.recv(4096)\n    \
                 if not chunk: break\n    \
                 data += chunk\n\
             print(data.split(b'\\r\\n')[0].decode())\n\
             print(data.decode(errors='replace'))"
        ),
    ]
}

pub(super) fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The connection records of the fixture's one session.
pub(super) fn connections(fx: &Fixture) -> Vec<Value> {
    let session = only_session(fx);
    records(fx, &session)
        .into_iter()
        .filter(|r| r["kind"] == "connection")
        .collect()
}

#[test]
fn curl_reaches_an_allowed_host_through_the_proxy() {
    let net = Net::new();
    // Control: the server answers outside sluice.
    let direct = execute({
        let mut c = Command::new("curl");
        c.args(["-sS", "--noproxy", "*", &net.url("127.0.0.1")]);
        c
    });
    assert_eq!(direct.stdout, BODY, "{direct}");
    let out = net.run(
        &[&net.allow("allowed.test")],
        &curl(&net.url("allowed.test")),
    );
    out.assert_code(0);
    assert_eq!(out.stdout, BODY, "{out}");
    // A tunnel (CONNECT), as HTTPS takes.
    let url = net.url("allowed.test");
    let mut tunnel = curl(&url);
    tunnel.insert(1, "--proxytunnel");
    let out = net.run(&[&net.allow("allowed.test")], &tunnel);
    out.assert_code(0);
    assert_eq!(out.stdout, BODY, "{out}");
}

#[test]
fn python_reaches_an_allowed_host_and_not_another() {
    let net = Net::new();
    let out = net.run(
        &[&net.allow("allowed.test")],
        &strs(&python_get(&net.url("allowed.test"))),
    );
    out.assert_code(0);
    assert_eq!(out.stdout, BODY, "{out}");
    let before = net.server.hits();
    let out = net.run(
        &[&net.allow("allowed.test")],
        &strs(&python_get(&net.url("other.test"))),
    );
    assert_eq!(out.code(), 3, "{out}");
    assert!(out.stdout.contains("403"), "{out}");
    assert_eq!(
        net.server.hits(),
        before,
        "the refused request reached the server"
    );
}

#[test]
fn git_clones_over_http_from_an_allowed_host() {
    let net = Net::new();
    let repo = net.served.join("repo.git");
    let git = |args: &[&str], dir: &Path| {
        let out = execute({
            let mut c = Command::new("git");
            c.args(args).current_dir(dir);
            c
        });
        out.assert_code(0);
    };
    let work = net.fx.root().join("src-repo");
    fs::create_dir_all(&work).unwrap();
    git(&["init", "-q", "-b", "main"], &work);
    fs::write(work.join("file.txt"), BODY).unwrap();
    git(&["add", "file.txt"], &work);
    git(
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "one",
        ],
        &work,
    );
    git(
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            repo.to_str().unwrap(),
        ],
        &work,
    );
    git(&["update-server-info"], &repo);
    let url = format!("http://allowed.test:{}/repo.git", net.server.port);
    let dest = net.fx.ws("clone");
    let out = net.run(
        &[&net.allow("allowed.test")],
        &["git", "clone", "-q", &url, &dest],
    );
    out.assert_code(0);
    assert_eq!(
        fs::read_to_string(format!("{dest}/file.txt")).unwrap(),
        BODY
    );
    // Not listed: refused, and git says why.
    let out = net.run(
        &[&net.allow("other.test")],
        &["git", "clone", "-q", &url, &net.fx.ws("clone2")],
    );
    assert_ne!(out.code(), 0, "{out}");
    assert!(!Path::new(&net.fx.ws("clone2/file.txt")).exists());
}

#[test]
fn a_host_not_listed_is_refused_with_a_clear_error() {
    let net = Net::new();
    let before = net.server.hits();
    let out = net.run(&[&net.allow("allowed.test")], &curl(&net.url("other.test")));
    // The body says who refused and how to allow it; sluice says it once
    // on its own stderr.
    assert!(
        out.stdout
            .contains("sluice refused the connection to other.test")
            && out
                .stdout
                .contains(&format!("--allow-host other.test:{}", net.server.port)),
        "{out}"
    );
    let told = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("sluice: refused the program's connection to other.test"))
        .count();
    assert_eq!(told, 1, "{out}");
    assert_eq!(net.server.hits(), before);
    // The wrong port of an allowed host is refused too.
    let wrong_port = format!("--allow-host=allowed.test:{}", net.server.port + 1);
    let out = net.run(&[&wrong_port], &curl(&net.url("allowed.test")));
    assert!(out.stdout.contains("sluice refused"), "{out}");
    assert_eq!(net.server.hits(), before);
}

/// An allowed host that cannot be reached is not told to be allowed again:
/// sluice says it is allowed and why it failed (here: `.invalid` names
/// never resolve).
#[test]
fn an_allowed_host_that_does_not_resolve_is_not_told_to_be_allowed() {
    let net = Net::new();
    let port = net.server.port;
    let out = net.run(
        &[&format!("--allow-host=nowhere.invalid:{port}")],
        &curl(&format!("http://nowhere.invalid:{port}/file.txt")),
    );
    assert!(
        out.stdout.contains(&format!(
            "sluice: the connection to nowhere.invalid:{port} is allowed but failed: cannot resolve"
        )),
        "{out}"
    );
    assert!(
        out.stderr.contains(&format!(
            "sluice: the program's connection to nowhere.invalid:{port} is allowed but failed (cannot resolve"
        )),
        "{out}"
    );
    assert!(!out.stderr.contains("to allow it"), "{out}");
    assert!(!out.stdout.contains("To allow it"), "{out}");
    // Control: a host not listed still gets the hint.
    let out = net.run(
        &[&format!("--allow-host=nowhere.invalid:{port}")],
        &curl(&format!("http://other.invalid:{port}/file.txt")),
    );
    assert!(
        out.stderr.contains("to allow it: sluice run --allow-host"),
        "{out}"
    );
}

#[test]
fn ip_literals_are_refused_unless_listed() {
    let net = Net::new();
    let target = format!("127.0.0.1:{}", net.server.port);
    let out = net.run(
        &[&net.allow("allowed.test")],
        &strs(&raw_proxy_connect(&target)),
    );
    assert!(out.stdout.starts_with("HTTP/1.1 403"), "{out}");
    // Control: listed, the same literal is let through.
    let out = net.run(
        &[&net.allow("127.0.0.1")],
        &strs(&raw_proxy_connect(&target)),
    );
    assert!(out.stdout.starts_with("HTTP/1.1 200"), "{out}");
}

/// curl through the proxy's SOCKS5 side: `socks5h` sends the name, `socks5`
/// resolves it first and sends the address.
pub(super) fn curl_socks(scheme: &str, url: &str) -> Vec<String> {
    let proxy = format!("{scheme}://127.0.0.1:{PROXY_PORT}");
    ["curl", "-sS", "--max-time", "60", "--proxy", &proxy, url]
        .map(String::from)
        .to_vec()
}

#[test]
fn a_wildcard_rule_never_reaches_loopback_through_a_name() {
    let net = Net::new();
    let before = net.server.hits();
    let wild = format!("--allow-host=*.wild.test:{}", net.server.port);
    let out = net.run(&[&wild], &curl(&net.url("api.wild.test")));
    assert!(out.stdout.contains("name the host exactly"), "{out}");
    assert_eq!(net.server.hits(), before);
    // Control: named exactly, the same name reaches it.
    let out = net.run(
        &[&net.allow("api.wild.test")],
        &curl(&net.url("api.wild.test")),
    );
    assert_eq!(out.stdout, BODY, "{out}");
}

#[test]
fn a_program_that_ignores_the_proxy_reaches_nothing() {
    let net = Net::new();
    // A server on another loopback address, at the port of a loopback
    // service the policy names: Landlock lets the program connect to that
    // port, so only the namespace stands between it and the server.
    let hidden = Server::start("127.0.0.2", &net.served);
    let service = format!("--allow-host=127.0.0.1:{}", hidden.port);
    let out = net.run(&[&service], &strs(&raw_connect("127.0.0.2", hidden.port)));
    assert!(out.stdout.starts_with("FAILED"), "{out}");
    assert_eq!(hidden.hits(), 0);
    // Control: outside sluice, the same connect succeeds.
    let direct = execute({
        let mut c = Command::new(PYTHON);
        c.args(&raw_connect("127.0.0.2", hidden.port)[1..]);
        c
    });
    assert_eq!(direct.stdout.trim(), "CONNECTED", "{direct}");
    // The proxied server's own address, without the proxy: nothing.
    let before = net.server.hits();
    let out = net.run(
        &[&net.allow("allowed.test")],
        &strs(&raw_connect("127.0.0.1", net.server.port)),
    );
    assert!(out.stdout.starts_with("FAILED"), "{out}");
    assert_eq!(net.server.hits(), before);
}

#[test]
fn a_loopback_service_is_reached_and_other_loopback_ports_stay_closed() {
    let net = Net::new();
    let other = Server::start("127.0.0.1", &net.served);
    let service = format!("--allow-host=127.0.0.1:{}", net.server.port);
    // psql-like: no proxy, straight to the address.
    let out = net.run(
        &[&service],
        &["curl", "-sS", "--noproxy", "*", &net.url("127.0.0.1")],
    );
    assert_eq!(out.stdout, BODY, "{out}");
    let out = net.run(&[&service], &strs(&raw_connect("127.0.0.1", other.port)));
    assert!(out.stdout.starts_with("FAILED"), "{out}");
    assert_eq!(other.hits(), 0);
}

#[test]
fn each_connection_is_in_the_audit_record() {
    let net = Net::new();
    let script = format!(
        "curl -sS --max-time 60 {} >/dev/null; curl -sS --max-time 60 {} >/dev/null; true",
        net.url("allowed.test"),
        net.url("other.test")
    );
    let out = net.run(&[&net.allow("allowed.test")], &["sh", "-c", &script]);
    out.assert_code(0);
    let recs = connections(&net.fx);
    assert_eq!(recs.len(), 2, "{recs:#?}");
    // Each is recorded when it ends: the first connection's record may
    // come after the second's refusal (its relay ends when curl's socket
    // closes, which a loaded machine may see late).
    let by_host = |host: &str| {
        recs.iter()
            .find(|r| r["host"] == host)
            .unwrap_or_else(|| panic!("no record for {host}: {recs:#?}"))
    };
    let allowed = by_host("allowed.test");
    assert_eq!(allowed["host"], "allowed.test");
    assert_eq!(allowed["port"], net.server.port);
    assert_eq!(allowed["decision"], "allowed");
    assert_eq!(allowed["by"], "rule");
    assert_eq!(allowed["via"], "http");
    assert_eq!(allowed["address"], format!("127.0.0.1:{}", net.server.port));
    assert!(allowed["sent"].as_u64().unwrap() > 0, "{allowed}");
    assert!(
        allowed["received"].as_u64().unwrap() >= BODY.len() as u64,
        "{allowed}"
    );
    let refused = by_host("other.test");
    assert_eq!(refused["host"], "other.test");
    assert_eq!(refused["decision"], "denied");
    assert_eq!(refused["address"], Value::Null);
    // The reviewer's filter shows them, and only them.
    let session = only_session(&net.fx);
    let shown = sluice_tests::audit::audit(&net.fx, &["show", &session, "--access", "net"]);
    shown.assert_code(0);
    assert!(
        shown.stdout.contains("allowed  net        allowed.test"),
        "{shown}"
    );
    assert!(
        shown.stdout.contains("denied   net        other.test"),
        "{shown}"
    );
    assert!(!shown.stdout.contains(" start "), "{shown}");
}

#[test]
fn works_unprivileged() {
    let net = Net::new();
    let out = net.run_as_nobody(
        &[&net.allow("allowed.test")],
        &curl(&net.url("allowed.test")),
    );
    out.assert_code(0);
    assert_eq!(out.stdout, BODY, "{out}");
    let out = net.run_as_nobody(&[&net.allow("allowed.test")], &curl(&net.url("other.test")));
    assert!(out.stdout.contains("sluice refused"), "{out}");
    // SOCKS5 the same.
    let socks = |host| {
        net.run_as_nobody(
            &[&net.allow("allowed.test")],
            &strs(&curl_socks("socks5h", &net.url(host))),
        )
    };
    let out = socks("allowed.test");
    assert_eq!(out.stdout, BODY, "{out}");
    let before = net.server.hits();
    let out = socks("other.test");
    assert!(
        out.stderr
            .contains("sluice: refused the program's connection to other.test"),
        "{out}"
    );
    assert_eq!(net.server.hits(), before);
}

/// The name a DNS query `q` (its header first) asks about, in lower case,
/// and where its question (labels, then type and class) ends.
pub(super) fn dns_question(q: &[u8]) -> (String, usize) {
    let (mut at, mut labels) = (12, Vec::new());
    while at < q.len() && q[at] != 0 {
        let n = q[at] as usize;
        let end = (at + 1 + n).min(q.len());
        labels.push(String::from_utf8_lossy(&q[at + 1..end]).to_lowercase());
        at += 1 + n;
    }
    (labels.join("."), (at + 5).min(q.len()))
}

/// A DNS server over TCP on `ip`:53 answering `name` A 127.0.0.1 (and
/// NXDOMAIN for other names); counts the queries.
fn dns_over_tcp(ip: &str, name: &str) -> Arc<AtomicUsize> {
    let listener = TcpListener::bind((ip, 53)).unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let counted = queries.clone();
    let name = name.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (counted, name) = (counted.clone(), name.clone());
            std::thread::spawn(move || loop {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).is_err() {
                    return;
                }
                let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                if stream.read_exact(&mut q).is_err() || q.len() < 12 {
                    return;
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let (asked, end) = dns_question(&q);
                let qtype = u16::from_be_bytes([q[end - 4], q[end - 3]]);
                let known = asked == name;
                let mut r = q[..2].to_vec();
                r.extend_from_slice(&[0x81, if known { 0x80 } else { 0x83 }]);
                let answers = u16::from(known && qtype == 1);
                r.extend_from_slice(&[0, 1, 0, answers as u8, 0, 0, 0, 0]);
                r.extend_from_slice(&q[12..end]);
                if answers == 1 {
                    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
                }
                let mut out = (r.len() as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&r);
                if stream.write_all(&out).is_err() {
                    return;
                }
            });
        }
    });
    queries
}

#[test]
fn names_resolve_under_the_tcp_mode() {
    let net = Net::new();
    // The resolver sluice's program reads: the test's DNS server.
    let resolv = net.fx.root().join("resolv.conf");
    fs::write(&resolv, "nameserver 127.0.0.77\n").unwrap();
    let queries = dns_over_tcp("127.0.0.77", "tcp.test");
    let url = format!("http://tcp.test:{}/index.html", net.server.port);
    let tcp = format!("--net=tcp:{}", net.server.port);
    let run = |program: &[&str]| {
        let cmd = net.fx.sluice_command(&[&tcp], program);
        let mut wrapped = Command::new("unshare");
        wrapped.args(["-m", "--propagation", "private", "--", "sh", "-c"]);
        wrapped.arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"");
        wrapped
            .arg(&resolv)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                wrapped.env(k, v);
            }
        }
        wrapped.current_dir(&net.fx.ws_dir);
        wrapped.stdin(std::process::Stdio::null());
        execute(wrapped)
    };
    let out = run(&["curl", "-sS", "--max-time", "60", &url]);
    assert_eq!(out.stdout, BODY, "{out}");
    assert!(queries.load(Ordering::SeqCst) > 0);
    // Control: the same lookup over UDP, as without sluice's RES_OPTIONS,
    // is refused inside (and no query arrives).
    let before = queries.load(Ordering::SeqCst);
    let out = run(&[
        "env",
        "-u",
        "RES_OPTIONS",
        "curl",
        "-sS",
        "--max-time",
        "60",
        &url,
    ]);
    assert_ne!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("resolve"), "{out}");
    assert_eq!(queries.load(Ordering::SeqCst), before);
}

#[test]
fn a_flood_of_idle_connections_holds_a_bounded_number_of_the_supervisors_descriptors() {
    let net = Net::new();
    let script = format!(
        "import socket, sys, time, urllib.request\n\
         held = [socket.create_connection(('127.0.0.1', {PROXY_PORT}), timeout=60) for _ in range(700)]\n\
         print('READY', flush=True)\n\
         sys.stdin.readline()\n\
         for s in held:\n    s.close()\n\
         print(urllib.request.urlopen({:?}, timeout=60).read().decode(), end='')\n",
        net.url("allowed.test")
    );
    let file = net.fx.ws("flood.py");
    fs::write(&file, script).unwrap();
    let mut cmd = net.resolving(
        net.fx
            .sluice_command(&[&net.allow("allowed.test")], &[PYTHON, &file]),
        None,
    );
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // unshare and sh exec: the pid is sluice's.
    let pid = child.id();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "READY");
    // The proxy accepts what it can take and leaves the rest waiting; give
    // it a moment to reach its limit (bounded retries, generous).
    let count = || fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let mut seen = 0;
    for _ in 0..50 {
        seen = seen.max(count());
        std::thread::sleep(Duration::from_millis(100));
    }
    // 256 connections at most (idle: one descriptor each), and what sluice
    // holds anyway (a few dozen); without the limit, all 700.
    assert!(seen < 256 + 150, "the supervisor holds {seen} descriptors");
    // The control: it did take many of them (the limit is not zero).
    assert!(seen > 200, "the supervisor holds only {seen} descriptors");
    // Once they are closed, the proxy serves again.
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest, BODY);
}
