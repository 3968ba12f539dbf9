//! Red team: attacks against the newest mechanisms (the bwrap stand-in,
//! transparent rename/unlink/rmdir, the proxy's SOCKS5 side), each with a
//! control showing the same action succeeds where it is allowed or outside
//! sluice. What the person's own tools run later is in `redteam_later.rs`.

use std::fs;
use std::path::Path;

use sluice_tests::{execute, Fixture, Outcome};

use super::transparent_names::step_result;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

// ---------------------------------------------------------------------------
// The bwrap stand-in: nothing wider than its arguments.
// ---------------------------------------------------------------------------

/// The enclosing session of the stand-in's tests: the system, the
/// workspace written, no `protect` (as in `bwrap.rs`).
const OUTER: &str = r#"
[filesystem]
execute = ["/usr", "/bin", { path = "/sbin", optional = true }, { path = "/lib", optional = true },
           { path = "/lib64", optional = true }, "$WORKSPACE", "$TMPDIR"]
read = ["/etc", "/proc", "/sys", "/dev/urandom", "/dev/random"]
write = ["$WORKSPACE", "$TMPDIR", "/dev/null", "/dev/zero"]
[network]
mode = "none"
[environment]
pass = ["PATH", "HOME"]
"#;

fn in_outer(fx: &Fixture, program: &[&str]) -> Outcome {
    let policy = fx.write_policy("outer.toml", OUTER);
    execute(fx.sluice_command(&["--policy", &policy], program))
}

/// `bwrap ARGS -- probe ACTION...` as the outer session's program.
fn bwrap(fx: &Fixture, args: &[&str], action: &[&str]) -> Outcome {
    let probe = fx.probe_path();
    let mut program = vec!["bwrap"];
    program.extend_from_slice(args);
    program.extend(["--", &probe]);
    program.extend_from_slice(action);
    in_outer(fx, &program)
}

/// The system read-only, `ws/bin` (the probe) and `ws/out` bound.
fn system_view(fx: &Fixture) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for sys in ["/usr", "/etc"] {
        v.extend(["--ro-bind".into(), sys.into(), sys.into()]);
    }
    for sys in ["/bin", "/lib", "/lib64"] {
        v.extend(["--ro-bind-try".into(), sys.into(), sys.into()]);
    }
    v.extend(["--ro-bind".into(), fx.ws("bin"), fx.ws("bin")]);
    v.extend(["--bind".into(), fx.ws("out"), fx.ws("out")]);
    v
}

/// `--chdir` into a directory outside every bind: bubblewrap would fail
/// to enter it; the stand-in starts the command there (its caller's view
/// has it), so the command must still reach nothing there, by relative
/// paths either, and a TMPDIR it is given is not written either. Control:
/// the outer session reads the same relative path and writes its TMPDIR,
/// and the command reads one relative to a `--chdir` into its own bind.
#[test]
fn a_command_started_outside_its_view_reads_nothing_there() {
    let fx = Fixture::new(PROBE);
    fs::create_dir_all(fx.ws("out")).unwrap();
    fs::create_dir_all(fx.ws("private")).unwrap();
    fs::write(fx.ws("private/secret.txt"), "SECRET-private\n").unwrap();
    fs::write(fx.ws("out/mine.txt"), "mine\n").unwrap();
    let view = system_view(&fx);
    let view: Vec<&str> = view.iter().map(String::as_str).collect();

    let probe = fx.probe_path();
    let cd_read = format!("cd {} && {probe} read secret.txt", fx.ws("private"));
    in_outer(&fx, &["/bin/sh", "-c", &cd_read]).assert_ok();
    let out_dir = fx.ws("out");
    let mut own = view.clone();
    own.extend(["--chdir", out_dir.as_str()]);
    bwrap(&fx, &own, &["read", "mine.txt"]).assert_ok();

    let private = fx.ws("private");
    let mut outside = view.clone();
    outside.extend(["--chdir", private.as_str()]);
    for action in [
        vec!["read", "secret.txt"],
        vec!["read", "./secret.txt"],
        vec!["ls", "."],
        vec!["write", "planted.txt"],
    ] {
        let out = bwrap(&fx, &outside, &action);
        out.assert_blocked().assert_no_secret();
    }
    assert!(!Path::new(&fx.ws("private/planted.txt")).exists());

    // Nor is a TMPDIR the command is given, or the session's own, written:
    // the stacked session's temporary directory is its caller's, not a
    // tree of its own.
    let mut tmp = view.clone();
    tmp.extend(["--setenv", "TMPDIR", private.as_str()]);
    bwrap(&fx, &tmp, &["write", "{tmpdir}/planted.txt"]).assert_blocked();
    bwrap(&fx, &view, &["write", "{tmpdir}/planted.txt"]).assert_blocked();
    assert!(!Path::new(&fx.ws("private/planted.txt")).exists());
    // Control: the outer session writes its TMPDIR.
    in_outer(&fx, &[&probe, "write", "{tmpdir}/planted.txt"]).assert_ok();
}

/// What `--tmpfs` hides inside a tree only read stays hidden whatever way
/// the command names it: a symlink beside it, `..` from a sibling, the
/// magic links of `/proc` (the stand-in's own working directory and root,
/// the command's parent). Control: the outer session reads it through the
/// same symlink, and the command reads what is beside it.
#[test]
fn what_bwrap_hides_stays_hidden_through_symlinks_dotdot_and_proc_links() {
    let fx = Fixture::new(PROBE);
    fs::create_dir_all(fx.ws("hidden")).unwrap();
    fs::create_dir_all(fx.ws("beside")).unwrap();
    fs::create_dir_all(fx.ws("out")).unwrap();
    fs::write(fx.ws("hidden/secret.txt"), "SECRET-hidden\n").unwrap();
    std::os::unix::fs::symlink("hidden/secret.txt", fx.ws("link")).unwrap();
    std::os::unix::fs::symlink(fx.ws("hidden"), fx.ws("beside/dirlink")).unwrap();
    let args = [
        "--ro-bind",
        "/",
        "/",
        "--bind",
        &fx.ws("out"),
        &fx.ws("out"),
        "--tmpfs",
        &fx.ws("hidden"),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ];
    let args: Vec<&str> = args.to_vec();

    in_outer(&fx, &[&fx.probe_path(), "read", &fx.ws("link")]).assert_ok();
    bwrap(&fx, &args, &["read", &fx.ws("README.md")]).assert_ok();

    let ws = fx.ws("");
    let ws = ws.trim_end_matches('/');
    for path in [
        fx.ws("link"),
        fx.ws("beside/dirlink/secret.txt"),
        fx.ws("beside/../hidden/secret.txt"),
        "/proc/{ppid}/cwd/hidden/secret.txt".to_owned(),
        format!("/proc/{{ppid}}/root{ws}/hidden/secret.txt"),
        "/proc/self/cwd/hidden/secret.txt".to_owned(),
    ] {
        bwrap(&fx, &args, &["read", &path])
            .assert_blocked()
            .assert_no_secret();
    }
}

// ---------------------------------------------------------------------------
// Transparent rename, unlink, rmdir: the supervisor's own calls.
// ---------------------------------------------------------------------------

/// `renameat2(A, B, RENAME_EXCHANGE)`, `unlink` and `rmdir` by python, one
/// `NAME RESULT` line each (ok, or the errno's name).
const EXCHANGE: &str = r#"
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def exchange(a, b):
    if libc.syscall(316, -100, a.encode(), -100, b.encode(), 2) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
steps = sys.argv[1:]
while steps:
    name, op, args = steps[0], steps[1], []
    steps = steps[2:]
    n = 2 if op == 'exchange' else 1
    args, steps = steps[:n], steps[n:]
    try:
        {'exchange': exchange, 'unlink': os.unlink, 'rmdir': os.rmdir}[op](*args)
        print(name, 'ok')
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
"#;

/// Under `--transparent` the supervisor makes a rename, unlink or rmdir
/// itself where the sandbox may not: in its own mount tree, where no deny
/// placeholder or read-only bind exists. Attack: `RENAME_EXCHANGE` of an
/// approved file with a denied secret (which would move the secret into
/// the approved directory) or with a protected hook; `unlink` of a denied
/// file; `rmdir` of a read-only directory left empty. Control: the same
/// calls on approved names are made.
#[test]
fn the_supervisors_renames_and_removals_never_reach_denied_or_protected_names() {
    let fx = Fixture::new(PROBE);
    let approved = fx.outside("approved");
    fs::create_dir_all(format!("{approved}/empty")).unwrap();
    for name in ["a", "b", "c", "d", "gone"] {
        fs::write(format!("{approved}/{name}"), format!("{name}\n")).unwrap();
    }
    // An empty `.git/hooks`: read-only in `default`, a mount point inside.
    fs::remove_file(fx.ws(".git/hooks/pre-commit")).unwrap();
    let policy = fx.write_policy(
        "approved.toml",
        &format!("extends = [\"default\"]\n\n[broker]\nallow_write = [\"{approved}\"]\n"),
    );
    let env_before = fs::read(fx.ws(".env")).unwrap();
    let p = |rel: &str| format!("{approved}/{rel}");
    let steps = [
        ("control-exchange", "exchange", p("a"), p("b")),
        ("control-unlink", "unlink", p("gone"), String::new()),
        ("control-rmdir", "rmdir", p("empty"), String::new()),
        ("exchange-denied", "exchange", p("c"), fx.ws(".env")),
        ("exchange-denied-back", "exchange", fx.ws(".env"), p("c")),
        (
            "exchange-protected",
            "exchange",
            p("d"),
            fx.ws(".git/config"),
        ),
        ("unlink-denied", "unlink", fx.ws(".env"), String::new()),
        (
            "rmdir-read-only",
            "rmdir",
            fx.ws(".git/hooks"),
            String::new(),
        ),
    ];
    let mut program = vec!["python3".to_owned(), "-c".to_owned(), EXCHANGE.to_owned()];
    for (name, op, a, b) in &steps {
        program.extend([name.to_string(), op.to_string(), a.clone()]);
        if !b.is_empty() {
            program.push(b.clone());
        }
    }
    let program: Vec<&str> = program.iter().map(String::as_str).collect();
    let out = execute(fx.sluice_command(&["--policy", &policy, "--transparent"], &program));
    out.assert_code(0);

    for control in ["control-exchange", "control-unlink", "control-rmdir"] {
        assert_eq!(step_result(&out, control), "ok", "{control}\n{out}");
    }
    assert_eq!(fs::read_to_string(p("a")).unwrap(), "b\n");
    for attack in [
        "exchange-denied",
        "exchange-denied-back",
        "exchange-protected",
        "unlink-denied",
        "rmdir-read-only",
    ] {
        assert_ne!(step_result(&out, attack), "ok", "{attack}\n{out}");
    }
    assert_eq!(fs::read(fx.ws(".env")).unwrap(), env_before, "{out}");
    assert_eq!(fs::read_to_string(p("c")).unwrap(), "c\n", "{out}");
    assert_eq!(fs::read_to_string(p("d")).unwrap(), "d\n", "{out}");
    assert!(fx.ws_dir.join(".git/hooks").is_dir(), "{out}");
}

// ---------------------------------------------------------------------------
// The SOCKS5 side of the hosts mode's proxy.
// ---------------------------------------------------------------------------

/// A raw SOCKS5 client: `PROXY PORT CASE...`, each case on a connection of
/// its own, one `CASE REPLY [body]` line each (`REPLY` the reply code, or
/// `closed`; `body` when the server's page came through).
const SOCKS: &str = r#"
import socket, struct, sys
proxy, port = int(sys.argv[1]), int(sys.argv[2])
def req(atyp, addr, port=port, cmd=1):
    return bytes([5, cmd, 0, atyp]) + addr + struct.pack('>H', port)
def name(n):
    return bytes([len(n)]) + n
v6 = lambda a: socket.inet_pton(socket.AF_INET6, a)
hello = b'\x05\x01\x00'
cases = {
    'allowed': (hello, req(3, name(b'allowed.test'))),
    'upper-trailing-dot': (hello, req(3, name(b'ALLOWED.TEST.'))),
    'nul-after': (hello, req(3, name(b'allowed.test\x00.x'))),
    'nul-before': (hello, req(3, name(b'x\x00allowed.test'))),
    'ip-as-name': (hello, req(3, name(b'127.0.0.1'))),
    'ip-trailing-dot': (hello, req(3, name(b'127.0.0.1.'))),
    'decimal-ip-name': (hello, req(3, name(b'2130706433'))),
    'localhost': (hello, req(3, name(b'localhost'))),
    'localhost-dot': (hello, req(3, name(b'localhost.'))),
    'mapped-as-name': (hello, req(3, name(b'[::ffff:127.0.0.1]'))),
    'ipv4': (hello, req(1, socket.inet_aton('127.0.0.1'))),
    'ipv6-loopback': (hello, req(4, v6('::1'))),
    'ipv6-mapped': (hello, req(4, v6('::ffff:127.0.0.1'))),
    'wildcard-to-loopback': (hello, req(3, name(b'api.wild.test.'))),
    'port-zero': (hello, req(3, name(b'allowed.test'), port=0)),
    'bind': (hello, req(3, name(b'allowed.test'), cmd=2)),
    'udp-associate': (hello, req(3, name(b'allowed.test'), cmd=3)),
    'unknown-atyp': (hello, bytes([5, 1, 0, 5]) + name(b'allowed.test') + struct.pack('>H', port)),
    'version-4': (b'\x04\x01\x00', req(3, name(b'allowed.test'))),
    'auth-only': (b'\x05\x01\x02', req(3, name(b'allowed.test'))),
    'truncated': (hello, req(3, name(b'allowed.test'))[:6]),
}
def recv_all(s, n):
    data = b''
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data
for case in sys.argv[3:]:
    greeting, request = cases[case.split('#')[0]]
    s = socket.create_connection(('127.0.0.1', proxy), timeout=30)
    try:
        s.sendall(greeting)
        if greeting[0] != 5:
            # Not SOCKS5: read as HTTP, which waits for a whole head.
            s.shutdown(socket.SHUT_WR)
        chosen = recv_all(s, 2)
        if chosen != b'\x05\x00':
            print(case, 'closed')
            continue
        s.sendall(request)
        if case.startswith('truncated'):
            s.shutdown(socket.SHUT_WR)
        r = recv_all(s, 10)
        if len(r) < 2:
            print(case, 'closed')
            continue
        body = ''
        if r[1] == 0:
            s.sendall(b'GET /index.html HTTP/1.0\r\nHost: allowed.test\r\n\r\n')
            data = b''
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            body = ' body' if b'hello-from-the-host-server' in data else ''
        print(case, r[1], body)
    except OSError as e:
        print(case, 'closed', e)
    finally:
        s.close()
"#;

/// The SOCKS5 side of the proxy judges what a request names the way a
/// rule names it: a name with a NUL, an address written as a name (with a
/// trailing dot, in decimal, IPv4-mapped), loopback by name or address,
/// a `*.` rule's name that leads to loopback, port 0, `BIND`, `UDP
/// ASSOCIATE`, an unknown address type, another version or method, a
/// request cut short: each refused before any connection, and the proxy
/// still serves afterwards. Control: the allowed name, in capitals and with
/// a trailing dot too, reaches the server, before and after the attacks.
#[test]
fn socks5_requests_name_nothing_their_rules_do_not() {
    use super::net_hosts::{Net, PROXY_PORT, PYTHON};
    let net = Net::new();
    let port = net.server.port.to_string();
    let proxy = PROXY_PORT.to_string();
    let allow = net.allow("allowed.test");
    let wild = format!("--allow-host=*.wild.test:{port}");
    let attacks = [
        "nul-after",
        "nul-before",
        "ip-as-name",
        "ip-trailing-dot",
        "decimal-ip-name",
        "localhost",
        "localhost-dot",
        "mapped-as-name",
        "ipv4",
        "ipv6-loopback",
        "ipv6-mapped",
        "wildcard-to-loopback",
        "port-zero",
        "bind",
        "udp-associate",
        "unknown-atyp",
        "version-4",
        "auth-only",
        "truncated",
    ];
    let mut program = vec![PYTHON, "-c", SOCKS, &proxy, &port, "allowed"];
    program.extend(attacks);
    program.extend(["allowed#after", "upper-trailing-dot"]);
    let out = net.run(&[&allow, &wild], &program);
    out.assert_code(0);
    for control in ["allowed", "allowed#after", "upper-trailing-dot"] {
        assert_eq!(step_result(&out, control), "0  body", "{control}\n{out}");
    }
    for attack in attacks {
        let got = step_result(&out, attack);
        assert!(!got.starts_with("0 "), "{attack}: {got}\n{out}");
    }
    // Only the three controls reached the server.
    assert_eq!(net.server.hits(), 3, "{out}");
}
