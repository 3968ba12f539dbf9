//! The bwrap stand-in: inside a sluice sandbox, `bwrap` (on PATH, and at
//! /usr/bin/bwrap) is sluice itself, which runs the command in a stacked,
//! narrower session built from bubblewrap's arguments, and refuses what it
//! cannot give.
//!
//! The outer session's policy writes the workspace, reaches the network and
//! guards nothing (under an outer guard, see `nesting_guard.rs`), so what a
//! command cannot do under the stand-in is what its bwrap arguments withheld. Real bubblewrap, outside
//! sluice, runs the same command lines as controls.

use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};

use sluice_tests::{execute, sluice_bin, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// The enclosing session: the system, the workspace written, the network,
/// no `protect`.
const OUTER: &str = r#"
[filesystem]
execute = ["/usr", "/bin", { path = "/sbin", optional = true }, { path = "/lib", optional = true },
           { path = "/lib64", optional = true }, "$WORKSPACE", "$TMPDIR"]
read = ["/etc", "/proc", "/sys", "/dev/urandom", "/dev/random"]
write = ["$WORKSPACE", "$TMPDIR", "/dev/null", "/dev/zero", { path = "/dev/full", optional = true },
         { path = "/dev/tty", optional = true }]
[network]
mode = "all"
[environment]
pass = ["PATH", "HOME", "SLUICE_TEST_CANARY"]
"#;

/// `sluice run --policy OUTER -- PROGRAM...`.
fn in_sluice(fx: &Fixture, program: &[&str]) -> Outcome {
    let policy = fx.write_policy("outer.toml", OUTER);
    execute(fx.sluice_command(&["--policy", &policy], program))
}

/// A view like the ones agents ask for: the system read-only, the
/// workspace read-only, `ws/out` written, /dev and /proc.
fn view(fx: &Fixture) -> Vec<String> {
    let ws = fx.ws("");
    let out = fx.ws("out");
    fs::create_dir_all(&out).unwrap();
    let mut v: Vec<String> = Vec::new();
    for sys in ["/usr", "/etc"] {
        v.extend(["--ro-bind".into(), sys.into(), sys.into()]);
    }
    for sys in ["/bin", "/lib", "/lib64", "/sbin"] {
        v.extend(["--ro-bind-try".into(), sys.into(), sys.into()]);
    }
    v.extend(["--ro-bind".into(), ws.clone(), ws]);
    v.extend(["--bind".into(), out.clone(), out]);
    v.extend(["--dev", "/dev", "--proc", "/proc"].map(String::from));
    v
}

/// `bwrap ARGS -- probe ACTION...` as the program of the outer session;
/// `bwrap` is the name programs call (found on PATH).
fn bwrap(fx: &Fixture, bwrap: &str, args: &[String], action: &[&str]) -> Outcome {
    let probe = fx.probe_path();
    let mut program: Vec<&str> = vec![bwrap];
    program.extend(args.iter().map(String::as_str));
    program.extend(["--", &probe]);
    program.extend_from_slice(action);
    in_sluice(fx, &program)
}

/// The mounts Claude Code's sandbox-runtime asks for: everything
/// read-only, what the command may write bound, a directory hidden.
fn claude_code_mounts(write: &str, hide: &str) -> Vec<String> {
    [
        "--ro-bind",
        "/",
        "/",
        "--bind",
        write,
        write,
        "--tmpfs",
        hide,
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn the_stand_in_runs_an_allowed_command_and_refuses_a_write_outside_its_binds() {
    let fx = Fixture::new(PROBE);
    let v = view(&fx);
    // Control: the outer session writes the workspace itself.
    let direct = fx.ws("outer-wrote.txt");
    in_sluice(&fx, &[&fx.probe_path(), "write", &direct]).assert_ok();
    assert!(Path::new(&direct).exists());

    // Allowed: a write inside a --bind, a read inside a --ro-bind, both at
    // the path programs call and by PATH lookup.
    let inside = fx.ws("out/inside.txt");
    bwrap(&fx, "/usr/bin/bwrap", &v, &["write", &inside]).assert_ok();
    assert!(Path::new(&inside).exists());
    bwrap(&fx, "bwrap", &v, &["read", &fx.ws("README.md")]).assert_ok();

    // Refused: the workspace is only --ro-bind, the home directory is in
    // no bind at all.
    let outside = fx.ws("bwrap-wrote.txt");
    bwrap(&fx, "bwrap", &v, &["write", &outside]).assert_blocked();
    assert!(!Path::new(&outside).exists());
    bwrap(&fx, "bwrap", &v, &["write", &fx.ws("README.md")]).assert_blocked();
    let tmp_file = format!("{}/bwrap-tmp.txt", std::env::temp_dir().display());
    bwrap(&fx, "bwrap", &v, &["write", &tmp_file]).assert_blocked();
}

#[test]
fn the_stand_in_is_sluice_read_only_and_nothing_else_is_replaced() {
    let fx = Fixture::new(PROBE);
    let sluice = fs::metadata(sluice_bin()).unwrap().len();
    let before = fs::read(sluice_bin()).unwrap();
    // What the sandbox sees at /usr/bin/bwrap is sluice's binary...
    let out = in_sluice(&fx, &["/bin/sh", "-c", "wc -c < /usr/bin/bwrap"]);
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), sluice.to_string(), "{out}");
    // ...which cannot be written, nor its mode changed, through it
    // (control: the same program writes its workspace).
    in_sluice(&fx, &[&fx.probe_path(), "write", &fx.ws("control.txt")]).assert_ok();
    in_sluice(&fx, &[&fx.probe_path(), "append", "/usr/bin/bwrap"]).assert_blocked();
    in_sluice(&fx, &[&fx.probe_path(), "meta", "/usr/bin/bwrap"]).assert_blocked();
    assert_eq!(fs::read(sluice_bin()).unwrap(), before);
    // Outside sluice, the host's file is bubblewrap's own.
    if let Ok(host) = fs::metadata("/usr/bin/bwrap") {
        assert_ne!(host.len(), sluice, "the host's /usr/bin/bwrap was replaced");
    }
}

#[test]
fn unshare_net_cuts_the_network_and_without_it_the_outer_network_is_kept() {
    let fx = Fixture::new(PROBE);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port().to_string();
    let v = view(&fx);
    // Controls: the outer session and a bwrap without --unshare-net connect.
    in_sluice(&fx, &[&fx.probe_path(), "tcp-connect", "127.0.0.1", &port]).assert_ok();
    bwrap(&fx, "bwrap", &v, &["tcp-connect", "127.0.0.1", &port]).assert_ok();
    bwrap(&fx, "bwrap", &v, &["udp-send", "127.0.0.1", &udp_port]).assert_ok();
    for unshare in ["--unshare-net", "--unshare-all"] {
        let mut cut = v.clone();
        cut.push(unshare.into());
        bwrap(&fx, "bwrap", &cut, &["tcp-connect", "127.0.0.1", &port]).assert_blocked();
        bwrap(&fx, "bwrap", &cut, &["udp-send", "127.0.0.1", &udp_port]).assert_blocked();
        // --share-net after it gives the network back, as in bubblewrap.
        cut.push("--share-net".into());
        bwrap(&fx, "bwrap", &cut, &["tcp-connect", "127.0.0.1", &port]).assert_ok();
    }
}

/// Listens on the first port and connects to it, binds the second and the
/// third, and connects to sluice's own proxy port (the fourth): one line
/// each, OK or REFUSED.
const LOOPBACK_SCRIPT: &str = r#"
import socket, sys
own, other, http, sluice = (int(a) for a in sys.argv[1:5])
def tell(what, step):
    try:
        step()
        print(what, "OK")
    except OSError as e:
        print(what, "REFUSED", e.errno)
s = []
def listen():
    s.append(socket.socket())
    s[0].bind(("127.0.0.1", own))
    s[0].listen()
tell("bind-own", listen)
tell("connect-own", lambda: socket.create_connection(("127.0.0.1", own), timeout=10))
tell("bind-other", lambda: socket.socket().bind(("127.0.0.1", other)))
tell("bind-http", lambda: socket.socket().bind(("127.0.0.1", http)))
tell("connect-sluice", lambda: socket.create_connection(("127.0.0.1", sluice), timeout=10))
"#;

/// sandbox-runtime's relays: under `--unshare-net`, the loopback ports its
/// `*_PROXY` variables name are the command's own where the enclosing
/// network holds nothing but loopback (an outer session in the hosts
/// mode), and nothing else is; with a real network they stay cut off.
#[test]
fn a_proxy_relay_on_loopback_works_only_where_loopback_is_all_there_is() {
    let fx = Fixture::new(PROBE);
    let mut v = view(&fx);
    v.push("--unshare-net".into());
    let hosts = OUTER.replace(
        "mode = \"all\"",
        "mode = \"hosts\"\nhosts = [\"example.com\"]",
    );
    let hosts = fx.write_policy("outer-hosts.toml", &hosts);
    let all = fx.write_policy("outer.toml", OUTER);
    let script = fx.ws("loopback.py");
    fs::write(&script, LOOPBACK_SCRIPT).unwrap();
    let sluice = super::net_hosts::PROXY_PORT.to_string();
    let run = |policy: &str, proxy: Option<&str>, http: &str| {
        let mut program: Vec<&str> = vec!["bwrap"];
        program.extend(v.iter().map(String::as_str));
        let http_url = format!("http://u:p@localhost:{http}");
        if let Some(url) = proxy {
            // As sandbox-runtime: SOCKS on a port of its own, HTTP on 3128.
            program.extend(["--setenv", "ALL_PROXY", url]);
            program.extend(["--setenv", "HTTP_PROXY", &http_url]);
        }
        program.extend([
            "--",
            "/usr/bin/python3",
            &script,
            "18080",
            "18081",
            http,
            &sluice,
        ]);
        let out = execute(fx.sluice_command(&["--policy", policy], &program));
        out.assert_code(0);
        out
    };
    let proxy = Some("socks5h://srt.a:b@localhost:18080");
    let out = run(&hosts, proxy, "3128");
    for line in [
        "bind-own OK",
        "connect-own OK",
        "bind-other REFUSED",
        "bind-http OK",
        "connect-sluice REFUSED",
    ] {
        assert!(out.stdout.contains(line), "{line}\n{out}");
    }
    assert!(!out.stderr.contains("proxy port"), "{out}");
    // A relay on sluice's own proxy port is refused that port, and told.
    let taken = run(&hosts, proxy, &sluice);
    assert!(taken.stdout.contains("bind-http REFUSED"), "{taken}");
    taken.assert_stderr_says(&format!(
        "proxy port {sluice} on loopback cannot be its own"
    ));
    // Controls: without the variables, and with a real network outside, the
    // command has no network at all; the proxy sluice's hosts mode names in
    // the caller's environment is the caller's, not a relay of the command.
    let without = run(&hosts, None, "3128");
    assert!(!without.stderr.contains("proxy port"), "{without}");
    for out in [without, run(&all, proxy, "3128")] {
        assert!(out.stdout.contains("bind-own REFUSED"), "{out}");
        assert!(!out.stdout.contains(" OK"), "{out}");
    }
}

#[test]
fn what_the_stand_in_cannot_give_is_refused_with_a_message_and_nothing_runs() {
    let fx = Fixture::new(PROBE);
    let v = view(&fx);
    let ws = fx.ws("");
    let env_file = fx.ws(".env");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--polcy".into(), "readonly".into()],
            "unknown option --polcy",
        ),
        // Hidden, or read-only, inside a tree the command may write.
        (
            ["--bind", &ws, &ws, "--ro-bind", "/dev/null", &env_file]
                .map(String::from)
                .to_vec(),
            "--ro-bind",
        ),
        (
            [
                "--bind",
                &ws,
                &ws,
                "--ro-bind",
                &fx.ws(".git"),
                &fx.ws(".git"),
            ]
            .map(String::from)
            .to_vec(),
            "can only add access",
        ),
        (
            ["--remount-ro", &fx.ws("out")].map(String::from).to_vec(),
            "--remount-ro",
        ),
        // Elsewhere than where it is, or a program of another kind.
        (
            ["--bind", "/usr", &fx.ws("usr")].map(String::from).to_vec(),
            "onto itself",
        ),
        (["--seccomp", "0"].map(String::from).to_vec(), "--seccomp"),
        (
            ["--cap-add", "CAP_SYS_ADMIN"].map(String::from).to_vec(),
            "--cap-add",
        ),
        (["--uid", "4242"].map(String::from).to_vec(), "--uid 4242"),
        (
            ["--tmpfs", "/nonexistent-x"].map(String::from).to_vec(),
            "--tmpfs",
        ),
    ];
    for (i, (extra, text)) in cases.iter().enumerate() {
        let mut args = v.clone();
        args.extend(extra.iter().cloned());
        let marker = fx.ws(&format!("out/ran-{i}.txt"));
        let out = bwrap(&fx, "bwrap", &args, &["write", &marker]);
        out.assert_code(125);
        out.assert_stderr_says("bwrap: ");
        out.assert_stderr_says(text);
        assert!(
            !Path::new(&marker).exists(),
            "case {i} ran the command\n{out}"
        );
    }
    // Control: the same view without the extra options runs it.
    let marker = fx.ws("out/ran.txt");
    bwrap(&fx, "bwrap", &v, &["write", &marker]).assert_ok();
    assert!(Path::new(&marker).exists());
}

#[test]
fn a_tree_only_read_keeps_what_is_hidden_in_it_hidden() {
    let fx = Fixture::new(PROBE);
    fs::create_dir_all(fx.ws("hidden")).unwrap();
    fs::write(fx.ws("hidden/secret.txt"), "SECRET-hidden\n").unwrap();
    let out_dir = fx.ws("out");
    fs::create_dir_all(&out_dir).unwrap();
    // Claude Code's shape: everything read-only, what it may write bound,
    // a directory hidden with --tmpfs, a file with /dev/null.
    let mut args = claude_code_mounts(&out_dir, &fx.ws("hidden"));
    args.extend(
        [
            "--ro-bind",
            "/dev/null",
            &fx.ws(".env"),
            "--dev",
            "/dev",
            "--proc",
            "/proc",
        ]
        .map(String::from),
    );
    // Control: the outer session reads both.
    in_sluice(
        &fx,
        &[&fx.probe_path(), "read", &fx.ws("hidden/secret.txt")],
    )
    .assert_ok();
    bwrap(&fx, "bwrap", &args, &["read", &fx.ws("hidden/secret.txt")]).assert_blocked();
    bwrap(&fx, "bwrap", &args, &["read", &fx.ws(".env")]).assert_blocked();
    // What is beside them is still read, and the bind written.
    bwrap(&fx, "bwrap", &args, &["read", &fx.ws("README.md")]).assert_ok();
    bwrap(&fx, "bwrap", &args, &["read", "/etc/passwd"]).assert_ok();
    bwrap(&fx, "bwrap", &args, &["write", &fx.ws("out/w.txt")]).assert_ok();
    bwrap(&fx, "bwrap", &args, &["write", &fx.ws("w.txt")]).assert_blocked();
}

/// The command line Claude Code's sandbox-runtime (`srt`) builds, its
/// mounts passed in a file with `--args FD`, run by a shell as it does.
#[test]
fn a_claude_code_command_line_runs_under_the_stand_in() {
    let fx = Fixture::new(PROBE);
    let out_dir = fx.ws("out");
    fs::create_dir_all(&out_dir).unwrap();
    let mounts = claude_code_mounts(&out_dir, &fx.ws(".git/hooks")).join("\0");
    let args_file = fx.ws_dir.join("bwrap-args");
    fs::write(&args_file, format!("{mounts}\0")).unwrap();
    let script = format!(
        "echo runtime=$SANDBOX_RUNTIME canary=${{SLUICE_TEST_CANARY:-unset}} pwd=$(pwd -P); \
         echo ok > {out}/made && cat {out}/made; \
         if echo no > {ws}/escaped 2>/dev/null; then echo WROTE; fi; \
         if ls {ws}/.git/hooks >/dev/null 2>&1; then echo SAW-HOOKS; fi",
        out = out_dir,
        ws = fx.ws("")
    );
    let shell = format!(
        "exec 3< {args}; exec bwrap --new-session --die-with-parent --unshare-net \
         --setenv SANDBOX_RUNTIME 1 --unsetenv SLUICE_TEST_CANARY --args 3 --chdir {out} --dev /dev \
         --unshare-pid --unshare-user --cap-drop ALL --proc /proc -- /bin/bash -c '{script}'",
        args = args_file.display(),
        out = out_dir,
    );
    let out = in_sluice(&fx, &["/bin/sh", "-c", &shell]);
    out.assert_code(0);
    let expected = format!("runtime=1 canary=unset pwd={out_dir}");
    assert!(out.stdout.contains(&expected), "{out}");
    assert!(out.stdout.contains("\nok\n"), "{out}");
    assert!(
        !out.stdout.contains("WROTE") && !Path::new(&fx.ws("escaped")).exists(),
        "{out}"
    );
    assert!(!out.stdout.contains("SAW-HOOKS"), "{out}");
    // The stand-in's expected warnings are not in the command's output.
    assert!(!out.stderr.contains("warning"), "{out}");
}

/// Outside sluice the stand-in runs nothing; bubblewrap itself, where it is
/// installed, gives the same answers to the same view (the control).
#[test]
fn outside_sluice_the_stand_in_refuses_and_bubblewrap_gives_the_same_answers() {
    let fx = Fixture::new(PROBE);
    let v = view(&fx);
    let link = fx.root().join("bwrap");
    std::os::unix::fs::symlink(sluice_bin(), &link).unwrap();
    let marker = fx.ws("out/outside.txt");
    let mut cmd = Command::new(&link);
    cmd.args(&v)
        .args(["--", &fx.probe_path(), "write", &marker]);
    cmd.stdin(Stdio::null());
    let out = execute(cmd);
    out.assert_code(125);
    out.assert_stderr_says("stand-in for bubblewrap, for use inside a sluice sandbox");
    assert!(!Path::new(&marker).exists());

    let real = Path::new("/usr/bin/bwrap");
    assert!(
        real.exists(),
        "bubblewrap is expected here (apt install bubblewrap)"
    );
    let run = |action: &[&str]| {
        let mut cmd = Command::new(real);
        cmd.args(&v)
            .args(["--unshare-net", "--", &fx.probe_path()])
            .args(action);
        cmd.stdin(Stdio::null());
        execute(cmd)
    };
    run(&["write", &fx.ws("out/real.txt")]).assert_ok();
    run(&["write", &fx.ws("real-outside.txt")]).assert_blocked();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    run(&["tcp-connect", "127.0.0.1", &port]).assert_blocked();
}

/// An unprivileged user's session stacks the same way.
#[test]
fn as_a_user_the_stand_in_writes_nothing_outside_its_binds() {
    let fx = Fixture::new(PROBE);
    let v = view(&fx);
    fx.give_to(65534, 65534);
    let tmp = fx.root().join("tmp");
    for dir in [tmp.clone(), fx.root().join("state")] {
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    }
    let policy = fx.write_policy("outer.toml", OUTER);
    let as_nobody = |action: &[&str]| {
        let mut cmd = sluice_tests::setpriv_nobody();
        cmd.arg(sluice_bin())
            .args([
                "run",
                "--workspace",
                &fx.ws(""),
                "--policy",
                &policy,
                "--",
                "bwrap",
            ])
            .args(&v)
            .args(["--", &fx.probe_path()])
            .args(action)
            .current_dir(&fx.ws_dir)
            .env("HOME", &fx.home_dir)
            .env("TMPDIR", &tmp)
            .env("XDG_STATE_HOME", fx.root().join("state"))
            .env("XDG_CONFIG_HOME", fx.root().join("state/config"))
            .stdin(Stdio::null());
        execute(cmd)
    };
    as_nobody(&["write", &fx.ws("out/user.txt")]).assert_ok();
    as_nobody(&["write", &fx.ws("user-outside.txt")]).assert_blocked();
    assert!(!Path::new(&fx.ws("user-outside.txt")).exists());
}

/// Claude Code's sandbox-runtime itself (`npm install -g
/// @anthropic-ai/sandbox-runtime`, with ripgrep and socat), inside a
/// hosts-mode session: its command runs under the stand-in, its hidden
/// paths are hidden, and its SOCKS relay on 1080 is reached. Not in the
/// default run (a download CI does not make): `cargo test -p sluice-tests
/// --test suite -- --ignored bwrap::`.
#[test]
#[ignore = "needs srt from npm, ripgrep and socat"]
fn sandbox_runtime_runs_its_commands_under_the_stand_in() {
    let fx = Fixture::new(PROBE);
    let hosts = OUTER.replace(
        "mode = \"all\"",
        "mode = \"hosts\"\nhosts = [\"example.com\"]",
    );
    let policy = fx.write_policy("outer-hosts.toml", &hosts);
    // Its apply-seccomp helper makes a user namespace, which no sluice
    // sandbox allows: unix sockets are left to sluice's own rules.
    let settings = fx.ws("srt-settings.json");
    fs::write(
        &settings,
        r#"{"network":{"allowedDomains":["example.com"],"deniedDomains":[],
            "allowAllUnixSockets":true},
            "filesystem":{"denyRead":[],"allowWrite":[],"denyWrite":[]}}"#,
    )
    .unwrap();
    let command = format!(
        "sleep 1; ls /etc/ssh/ssh_config.d >/dev/null 2>&1 && echo SAW-HIDDEN; \
         echo no > {ws}/srt-wrote 2>/dev/null && echo WROTE; \
         /usr/bin/python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 1080), timeout=10); print(\"relay reached\")'",
        ws = fx.ws("")
    );
    let out = execute(fx.sluice_command(
        &["--policy", &policy],
        &["srt", "--settings", &settings, "-c", &command],
    ));
    out.assert_code(0);
    assert!(out.stdout.contains("relay reached"), "{out}");
    assert!(
        !out.stdout.contains("SAW-HIDDEN") && !out.stdout.contains("WROTE"),
        "{out}"
    );
    assert!(!Path::new(&fx.ws("srt-wrote")).exists());
}
