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
use sluice_tests::audit::{only_session, records, sessions};
use sluice_tests::pty::Terminal;
use sluice_tests::{execute, temp_dir, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
const PYTHON: &str = "/usr/bin/python3";
const BODY: &str = "hello-from-the-host-server\n";
/// The proxy's port in the program's own network (`policies::PROXY_PORT`).
const PROXY_PORT: u16 = 3128;
/// Names the test resolver maps to 127.0.0.1.
const NAMES: &str = "allowed.test other.test api.wild.test";

/// A static file server on `ip`:0 serving `root`, counting connections.
struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Server {
    fn start(ip: &str, root: &Path) -> Server {
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

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn serve_one(mut stream: TcpStream, root: &Path) {
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
struct Net {
    fx: Fixture,
    _dir: tempfile::TempDir,
    hosts: PathBuf,
    served: PathBuf,
    server: Server,
}

impl Net {
    fn new() -> Net {
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

    fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/index.html", self.server.port)
    }

    fn allow(&self, host: &str) -> String {
        format!("--allow-host={host}:{}", self.server.port)
    }

    /// `sluice run SLUICE_ARGS -- PROGRAM` with the test resolver.
    fn run(&self, sluice_args: &[&str], program: &[&str]) -> Outcome {
        execute(self.resolving(self.fx.sluice_command(sluice_args, program), None))
    }

    /// The same, as uid 65534 (the fixture's files handed to it).
    fn run_as_nobody(&self, sluice_args: &[&str], program: &[&str]) -> Outcome {
        let cmd = self.nobody_command(sluice_args, program);
        execute(self.resolving(cmd, Some("65534")))
    }

    /// `sluice run` for uid 65534: the fixture's files handed to it, its
    /// own TMPDIR, the default state and configuration directories.
    fn nobody_command(&self, sluice_args: &[&str], program: &[&str]) -> Command {
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
    fn resolving(&self, cmd: Command, user: Option<&str>) -> Command {
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
fn around(mut wrapper: Command, cmd: Command) -> Command {
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

fn curl(url: &str) -> Vec<&str> {
    vec!["curl", "-sS", "--max-time", "60", url]
}

/// Python's urllib fetching `url` through the proxy variables.
fn python_get(url: &str) -> Vec<String> {
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
fn raw_connect(ip: &str, port: u16) -> Vec<String> {
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
fn raw_proxy_connect(target: &str) -> Vec<String> {
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

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The connection records of the fixture's one session.
fn connections(fx: &Fixture) -> Vec<Value> {
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
fn curl_socks(scheme: &str, url: &str) -> Vec<String> {
    let proxy = format!("{scheme}://127.0.0.1:{PROXY_PORT}");
    ["curl", "-sS", "--max-time", "60", "--proxy", &proxy, url]
        .map(String::from)
        .to_vec()
}

#[test]
fn socks5_reaches_an_allowed_host_and_refuses_others() {
    let net = Net::new();
    let allow = net.allow("allowed.test");
    let out = net.run(
        &[&allow],
        &strs(&curl_socks("socks5h", &net.url("allowed.test"))),
    );
    out.assert_code(0);
    assert_eq!(out.stdout, BODY, "{out}");
    let recs = last_connections(&net.fx);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0]["via"], "socks5");
    assert_eq!(recs[0]["decision"], "allowed");
    assert_eq!(recs[0]["address"], format!("127.0.0.1:{}", net.server.port));
    assert!(
        recs[0]["received"].as_u64().unwrap() >= BODY.len() as u64,
        "{recs:#?}"
    );
    // A name not listed: refused before any connection, and sluice says so.
    let before = net.server.hits();
    let out = net.run(
        &[&allow],
        &strs(&curl_socks("socks5h", &net.url("other.test"))),
    );
    assert_ne!(out.code(), 0, "{out}");
    assert!(!out.stdout.contains(BODY), "{out}");
    assert!(
        out.stderr
            .contains("sluice: refused the program's connection to other.test"),
        "{out}"
    );
    assert_eq!(net.server.hits(), before);
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("other.test", "denied", "rule")]
    );
    // The program resolving the allowed name itself sends an address
    // literal: refused, as no rule names the address...
    let out = net.run(
        &[&allow],
        &strs(&curl_socks("socks5", &net.url("allowed.test"))),
    );
    assert_ne!(out.code(), 0, "{out}");
    assert_eq!(net.server.hits(), before);
    // ...and let through where one does (the control).
    let out = net.run(
        &[&net.allow("127.0.0.1")],
        &strs(&curl_socks("socks5", &net.url("allowed.test"))),
    );
    assert_eq!(out.stdout, BODY, "{out}");
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
    let allowed = &recs[0];
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
    let refused = &recs[1];
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

/// `ask_hosts`: the asked host's server, on an address outside 127.0.0.0/8
/// (given to `lo`) in a network namespace the test makes around sluice (a
/// host the person allows never reaches a loopback address through its
/// name).
const ASKED_IP: &str = "10.200.0.1";
const ASKED_PORT: u16 = 8080;
/// The first line of a host prompt, and the end of its status line.
const HOST_PROMPT: &str = "sluice: the sandboxed program asks to connect to a host";
const READY: &str = "without an answer) ? ";

/// A policy asking the person about hosts: `ask` is the `ask_hosts` value.
fn asking_policy(fx: &Fixture, ask: &str) -> String {
    fx.write_policy(
        "ask-hosts.toml",
        &format!("extends = [\"default\"]\n[network]\nask_hosts = {ask}\n"),
    )
}

fn asked_url(host: &str) -> String {
    format!("http://{host}:{ASKED_PORT}/index.html")
}

impl Net {
    /// `cmd` in a mount and network namespace of the test's own: `lo`, with
    /// [`ASKED_IP`] too, where a server serves
    /// `served`; `asked.test` and `second.test` resolve to it, `loop.test`
    /// to 127.0.0.1. Control outside sluice: the server answers curl
    /// before the command starts.
    fn asking(&self, cmd: Command) -> Command {
        self.asking_as(cmd, None)
    }

    /// [`Net::asking`], the command run as `user` (a uid) if given.
    fn asking_as(&self, cmd: Command, user: Option<&str>) -> Command {
        let dir = self.hosts.parent().unwrap();
        let hosts = dir.join("asked-hosts");
        let system = fs::read_to_string("/etc/hosts").unwrap_or_default();
        fs::write(
            &hosts,
            format!("{system}\n{ASKED_IP} asked.test second.test\n127.0.0.1 loop.test\n"),
        )
        .unwrap();
        let run_as = match user {
            Some(uid) => format!("setpriv --reuid={uid} --regid={uid} --clear-groups -- "),
            None => String::new(),
        };
        let script = format!(
            "set -e\n\
             mount --bind \"$0\" /etc/hosts\n\
             ip link set lo up\n\
             ip addr add {ASKED_IP}/32 dev lo\n\
             {PYTHON} -m http.server --bind {ASKED_IP} --directory \"$1\" {ASKED_PORT} \
               >/dev/null 2>>\"$2\" &\n\
             server=$!\n\
             shift 2\n\
             i=0\n\
             until curl -s -o /dev/null --noproxy '*' http://{ASKED_IP}:{ASKED_PORT}/ready; do\n\
               i=$((i+1)); [ $i -lt 600 ] || exit 97; sleep 0.1\n\
             done\n\
             set +e\n\
             {run_as}\"$@\"; status=$?\n\
             kill $server\n\
             exit $status\n"
        );
        let mut wrapped = Command::new("unshare");
        wrapped.args(["-m", "-n", "--propagation", "private", "--", "sh", "-c"]);
        wrapped
            .arg(script)
            .arg(&hosts)
            .arg(&self.served)
            .arg(dir.join("asked-server.log"));
        around(wrapped, cmd)
    }

    /// `sluice run SLUICE_ARGS -- PROGRAM` there, without a terminal.
    fn run_asking(&self, sluice_args: &[&str], program: &[&str]) -> Outcome {
        execute(self.asking(self.fx.sluice_command(sluice_args, program)))
    }

    /// [`Net::run_asking`] as uid 65534 (the fixture's files handed to it).
    fn run_asking_as_nobody(&self, sluice_args: &[&str], program: &[&str]) -> Outcome {
        let cmd = self.nobody_command(sluice_args, program);
        execute(self.asking_as(cmd, Some("65534")))
    }

    /// The same on a pty, as a person would see it.
    fn terminal_asking(&self, sluice_args: &[&str], program: &[&str]) -> Terminal {
        Terminal::spawn(
            self.asking(self.fx.sluice_command(sluice_args, program)),
            24,
            120,
        )
    }

    /// Requests for the page the asked server has served, in every run.
    fn asked_hits(&self) -> usize {
        let log = self.hosts.parent().unwrap().join("asked-server.log");
        fs::read_to_string(log)
            .unwrap_or_default()
            .matches("GET /index.html")
            .count()
    }
}

/// `(decision, by)` of each connection record of the fixture's last session.
fn last_connections(fx: &Fixture) -> Vec<Value> {
    let all = sessions(fx);
    records(fx, all.last().expect("an audited session"))
        .into_iter()
        .filter(|r| r["kind"] == "connection")
        .collect()
}

fn decided(recs: &[Value]) -> Vec<(String, String, String)> {
    recs.iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap().to_owned(),
                r["decision"].as_str().unwrap().to_owned(),
                r["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn triple(host: &str, decision: &str, by: &str) -> (String, String, String) {
    (host.to_owned(), decision.to_owned(), by.to_owned())
}

/// `curl URL` for each of `urls`, one after the other, in one shell.
fn curls(urls: &[&str]) -> Vec<String> {
    let script: Vec<String> = urls
        .iter()
        .map(|u| format!("curl -sS --max-time 120 {u}; echo"))
        .collect();
    vec!["sh".into(), "-c".into(), script.join("; ")]
}

#[test]
fn an_asked_host_is_put_to_the_person_once_allowed_then_denied() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let url = asked_url("asked.test");
    let program = curls(&[&url, &url]);
    let mut t = net.terminal_asking(&["--policy", &policy], &strs(&program));
    t.expect(HOST_PROMPT);
    let prompt = t.expect(READY);
    assert!(
        prompt.contains(&format!("host     asked.test:{ASKED_PORT}")),
        "{prompt}"
    );
    assert!(prompt.contains("rule     ask_hosts = true"), "{prompt}");
    assert!(!prompt.contains("[d]"), "{prompt}");
    assert_eq!(net.asked_hits(), 0, "asked before connecting");
    t.send(b"y");
    t.expect(&format!("allowed once: asked.test:{ASKED_PORT}"));
    t.expect(BODY.trim_end());
    // Once is once: the second connection asks again.
    t.expect(HOST_PROMPT);
    t.expect(READY);
    t.send(b"n");
    t.expect(&format!("denied: asked.test:{ASKED_PORT}"));
    // The 403's body explains.
    t.expect(&format!(
        "sluice refused the connection to asked.test:{ASKED_PORT}: denied by the person at sluice's prompt"
    ));
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(net.asked_hits(), 1, "{}", done.transcript);
    let recs = last_connections(&net.fx);
    assert_eq!(
        decided(&recs),
        [
            triple("asked.test", "allowed", "person"),
            triple("asked.test", "denied", "person")
        ]
    );
    assert_eq!(recs[0]["address"], format!("{ASKED_IP}:{ASKED_PORT}"));
    assert_eq!(recs[0]["rule"], "ask_hosts = true");
}

#[test]
fn an_unanswered_host_prompt_times_out_and_refuses() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let program = curls(&[&asked_url("asked.test")]);
    let mut t = net.terminal_asking(
        &["--policy", &policy, "--approve-timeout", "1"],
        &strs(&program),
    );
    t.expect(HOST_PROMPT);
    // The test never types.
    t.expect("denied: no answer in time: asked.test");
    t.expect("the person did not answer sluice's prompt in time");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("asked.test", "denied", "timeout")]
    );
    assert_eq!(net.asked_hits(), 0);
}

#[test]
fn a_session_answer_asks_once_for_two_connections_to_that_host() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let url = asked_url("asked.test");
    let program = curls(&[&url, &url, &asked_url("second.test")]);
    let mut t = net.terminal_asking(&["--policy", &policy], &strs(&program));
    t.expect(HOST_PROMPT);
    t.expect(READY);
    t.send(b"s");
    t.expect("allowed for this session");
    // Control: another host is asked about.
    let between = t.expect(HOST_PROMPT);
    assert_eq!(between.matches(BODY.trim_end()).count(), 2, "{between}");
    let prompt = t.expect(READY);
    assert!(
        prompt.contains(&format!("host     second.test:{ASKED_PORT}")),
        "{prompt}"
    );
    t.send(b"\r");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(net.asked_hits(), 2);
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [
            triple("asked.test", "allowed", "person"),
            triple("asked.test", "allowed", "session"),
            triple("second.test", "denied", "person")
        ]
    );
}

#[test]
fn always_answers_go_to_the_overlay_and_hold_in_later_sessions() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let overlay = net.fx.config_dir().join("approvals.toml");
    let asked = asked_url("asked.test");
    let second = asked_url("second.test");
    // Controls: without a terminal, the asked host is refused; with
    // --approve allow, the second one is reached.
    let out = net.run_asking(&["--policy", &policy], &curl(&asked));
    assert!(out.stdout.contains("no terminal to ask on"), "{out}");
    let out = net.run_asking(&["--policy", &policy, "--approve", "allow"], &curl(&second));
    assert_eq!(out.stdout, BODY, "{out}");

    // Allow always.
    let mut t = net.terminal_asking(&["--policy", &policy], &strs(&curls(&[&asked])));
    t.expect(HOST_PROMPT);
    let prompt = t.expect(READY);
    assert!(prompt.contains("[a] allow always"), "{prompt}");
    t.send(b"a");
    t.expect("allowed always");
    t.expect(BODY.trim_end());
    assert_eq!(t.wait().code, 0);
    let text = fs::read_to_string(&overlay).unwrap();
    assert!(
        text.contains("[network]")
            && text.contains(&format!("hosts = [\"asked.test:{ASKED_PORT}\"]")),
        "{text}"
    );
    // The next session, without a terminal, reaches it by the overlay.
    let out = net.run_asking(&["--policy", &policy], &curl(&asked));
    assert_eq!(out.stdout, BODY, "{out}");
    let recs = last_connections(&net.fx);
    assert_eq!(decided(&recs), [triple("asked.test", "allowed", "overlay")]);
    assert_eq!(
        recs[0]["rule"],
        format!("hosts \"asked.test:{ASKED_PORT}\" (approvals.toml)")
    );
    // On a terminal: no prompt either.
    let t = net.terminal_asking(&["--policy", &policy], &strs(&curls(&[&asked])));
    let done = t.wait();
    assert!(
        !done.transcript.contains(HOST_PROMPT),
        "{}",
        done.transcript
    );
    assert!(
        done.transcript.contains(BODY.trim_end()),
        "{}",
        done.transcript
    );

    // Deny always: holds against --approve allow later.
    let mut t = net.terminal_asking(&["--policy", &policy], &strs(&curls(&[&second])));
    t.expect(HOST_PROMPT);
    t.expect(READY);
    t.send(b"v");
    t.expect("denied always");
    assert_eq!(t.wait().code, 0);
    let text = fs::read_to_string(&overlay).unwrap();
    assert!(
        text.contains(&format!("deny_hosts = [\"second.test:{ASKED_PORT}\"]")),
        "{text}"
    );
    let hits = net.asked_hits();
    let out = net.run_asking(&["--policy", &policy, "--approve", "allow"], &curl(&second));
    assert!(
        out.stdout
            .contains("denied always in the approvals overlay"),
        "{out}"
    );
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("second.test", "denied", "overlay")]
    );
    assert_eq!(net.asked_hits(), hits);
}

#[test]
fn without_a_terminal_asked_hosts_follow_approve() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, &format!("[\"asked.test:{ASKED_PORT}\"]"));
    let asked = asked_url("asked.test");
    let out = net.run_asking(&["--policy", &policy], &curl(&asked));
    assert!(
        out.stdout.contains(&format!(
            "sluice refused the connection to asked.test:{ASKED_PORT}: not in [network] hosts, \
             and no terminal to ask on (--approve deny)"
        )),
        "{out}"
    );
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("asked.test", "denied", "non-interactive-default")]
    );
    assert_eq!(net.asked_hits(), 0);
    let out = net.run_asking(&["--policy", &policy, "--approve", "allow"], &curl(&asked));
    assert_eq!(out.stdout, BODY, "{out}");
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("asked.test", "allowed", "non-interactive-default")]
    );
    // A host the list does not name is not asked: refused by rule, even
    // with --approve allow.
    let out = net.run_asking(
        &["--policy", &policy, "--approve", "allow"],
        &curl(&asked_url("second.test")),
    );
    assert!(out.stdout.contains("not in [network] hosts."), "{out}");
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("second.test", "denied", "rule")]
    );
    assert_eq!(net.asked_hits(), 1);
}

#[test]
fn an_allowed_answer_never_reaches_loopback() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let allow = ["--policy", policy.as_str(), "--approve", "allow"];
    // A loopback address is not put to anyone: not even --approve allow
    // reaches it.
    let out = net.run_asking(&allow, &strs(&raw_proxy_connect("127.0.0.1:8080")));
    assert!(out.stdout.starts_with("HTTP/1.1 403"), "{out}");
    assert!(out.stdout.contains("never put to the person"), "{out}");
    // Nor a name that resolves to one (DNS rebinding into the host).
    let out = net.run_asking(&allow, &curl(&asked_url("loop.test")));
    assert!(
        out.stdout
            .contains("resolves to 127.0.0.1 only, which an answer to ask_hosts does not reach"),
        "{out}"
    );
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("loop.test", "denied", "rule")]
    );
    // Control: the same answer reaches a name that resolves elsewhere.
    let out = net.run_asking(&allow, &curl(&asked_url("asked.test")));
    assert_eq!(out.stdout, BODY, "{out}");
}

#[test]
fn the_ask_host_flag_asks_about_that_host_only() {
    let net = Net::new();
    let flag = format!("--ask-host=asked.test:{ASKED_PORT}");
    let program = curls(&[&asked_url("asked.test"), &asked_url("second.test")]);
    let mut t = net.terminal_asking(&[&flag], &strs(&program));
    t.expect(HOST_PROMPT);
    let prompt = t.expect(READY);
    assert!(
        prompt.contains(&format!("rule     ask_hosts \"asked.test:{ASKED_PORT}\"")),
        "{prompt}"
    );
    t.send(b"y");
    t.expect(BODY.trim_end());
    // Control: the host the flag does not name is refused without a prompt.
    let after = t.expect("not in [network] hosts.");
    assert!(!after.contains(HOST_PROMPT), "{after}");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [
            triple("asked.test", "allowed", "person"),
            triple("second.test", "denied", "rule")
        ]
    );
    let out = net.run_asking(&[&flag, "--net", "all"], &curl(&asked_url("asked.test")));
    out.assert_code(125);
    assert!(
        out.stderr
            .contains("--ask-host and --net all do not go together"),
        "{out}"
    );
}

#[test]
fn asked_hosts_work_unprivileged() {
    let net = Net::new();
    let flag = format!("--ask-host=asked.test:{ASKED_PORT}");
    let url = asked_url("asked.test");
    let out = net.run_asking_as_nobody(&[&flag], &curl(&url));
    assert!(out.stdout.contains("no terminal to ask on"), "{out}");
    let out = net.run_asking_as_nobody(&[&flag, "--approve", "allow"], &curl(&url));
    assert_eq!(out.stdout, BODY, "{out}");
    assert_eq!(net.asked_hits(), 1);
}

/// Draws a fake host prompt, answers it on every descriptor of its
/// terminal, and keeps typing `y` there while the real question waits.
const FAKE_AND_ANSWER: &str = r#"
printf '%s\r\n' "sluice: the sandboxed program asks to connect to a host" "  [y] allow once"
printf '  (1 request) ? '
printf 'y\r'; printf 'y\r' >&0; printf 'y\r' > /dev/tty
( while :; do printf y; printf y >&0; printf 'y\r' > /dev/tty; done ) 2>/dev/null &
writer=$!
curl -sS --max-time 120 "$1"; echo
kill $writer
"#;

#[test]
fn the_program_cannot_answer_its_own_host_prompt() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let url = asked_url("asked.test");
    let program = ["/bin/sh", "-c", FAKE_AND_ANSWER, "sh", url.as_str()];
    let real = "for this host, 0 other question(s) queued";
    // Control: the person's `y` is what allows.
    let mut t = net.terminal_asking(&["--policy", &policy], &program);
    t.expect(real);
    t.send(b"y");
    t.expect("allowed once");
    t.wait();
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("asked.test", "allowed", "person")]
    );
    assert_eq!(net.asked_hits(), 1);
    // The attack: all the program's `y`s, and the person's Enter.
    let mut t = net.terminal_asking(&["--policy", &policy], &program);
    let before = t.expect(real);
    assert!(
        before.contains("(1 request) ? y"),
        "the fake prompt was shown: {before:?}"
    );
    assert!(!before.contains("allowed"), "{before:?}");
    t.send(b"\r");
    t.expect("denied: asked.test");
    let done = t.wait();
    assert!(!done.transcript.contains("allowed once"));
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("asked.test", "denied", "person")]
    );
    assert_eq!(net.asked_hits(), 1);
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

#[test]
fn a_stacked_session_narrows_the_outer_hosts() {
    let net = Net::new();
    let sluice = sluice_tests::sluice_bin();
    let sluice = sluice.to_str().unwrap();
    let raw = net.fx.ws("raw.py");
    fs::write(&raw, &raw_connect("127.0.0.1", PROXY_PORT)[2]).unwrap();
    let script = format!(
        "curl -sS --max-time 60 {}; curl -sS --max-time 60 {}; {PYTHON} {raw}",
        net.url("allowed.test"),
        net.url("other.test"),
    );
    let outer = [net.allow("allowed.test"), net.allow("other.test")];
    let run = |inner: &str| {
        net.run(
            &strs(&outer),
            &[sluice, "run", inner, "--", "sh", "-c", &script],
        )
    };
    let out = run(&net.allow("allowed.test"));
    // The inner session's proxy refuses what the outer one would allow.
    assert!(out.stdout.starts_with(BODY), "{out}");
    assert!(
        out.stdout
            .contains("sluice refused the connection to other.test"),
        "{out}"
    );
    // Nor can the inner program go to the outer proxy past its own.
    assert!(
        out.stdout.trim_end().ends_with("FAILED PermissionError 13"),
        "{out}"
    );
    // Control: other.test, allowed by both, is reached through both (and
    // allowed.test, not the inner session's, is refused there).
    let out = run(&net.allow("other.test"));
    assert_eq!(out.stdout.matches(BODY).count(), 1, "{out}");
    assert!(
        out.stdout
            .contains("sluice refused the connection to allowed.test")
            && !out.stdout.contains("refused the connection to other.test"),
        "{out}"
    );
}

#[test]
fn socks5_in_a_stacked_session_narrows_the_outer_hosts() {
    let net = Net::new();
    let sluice = sluice_tests::sluice_bin();
    let sluice = sluice.to_str().unwrap();
    // The inner proxy's port, as its HTTPS_PROXY names it.
    let script = format!(
        "p=\"socks5h://${{HTTPS_PROXY#http://}}\"; \
         curl -sS --max-time 60 -x \"$p\" {}; curl -sS --max-time 60 -x \"$p\" {}; \
         echo \"exit $?\"",
        net.url("allowed.test"),
        net.url("other.test"),
    );
    let outer = [net.allow("allowed.test"), net.allow("other.test")];
    let inner = net.allow("allowed.test");
    let before = net.server.hits();
    let program = [sluice, "run", &inner, "--", "sh", "-c", &script];
    let out = net.run(&strs(&outer), &program);
    // Control: allowed by both, reached through both.
    assert!(out.stdout.starts_with(BODY), "{out}");
    // other.test, allowed by the outer session only: the inner refuses it.
    assert_eq!(out.stdout.matches(BODY).count(), 1, "{out}");
    assert!(!out.stdout.trim_end().ends_with("exit 0"), "{out}");
    assert!(
        out.stderr
            .contains("sluice: refused the program's connection to other.test"),
        "{out}"
    );
    assert_eq!(net.server.hits(), before + 1);
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
                // The question: labels, then type and class.
                let (mut at, mut labels) = (12, Vec::new());
                while at < q.len() && q[at] != 0 {
                    let n = q[at] as usize;
                    labels.push(String::from_utf8_lossy(&q[at + 1..at + 1 + n]).to_lowercase());
                    at += 1 + n;
                }
                let end = at + 5;
                let qtype = u16::from_be_bytes([q[at + 1], q[at + 2]]);
                let known = labels.join(".") == name;
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
