//! `--net none` (`[network] mode = "none"`, the default policy's): the
//! program's IPv4 and IPv6 sockets go to the supervisor, which refuses each
//! at once (`ENETUNREACH`), says once on standard error that the program tried to
//! reach the network and how to allow it, and records each attempt. A name
//! lookup then fails at once instead of looking like a DNS outage; npm,
//! pip and cargo are told not to retry.
//!
//! Nothing leaves the machine: every lookup is refused inside the sandbox,
//! and the controls reach the test's own server on the host's loopback.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_tests::audit::{only_session, records};
use sluice_tests::{execute, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
const PYTHON: &str = "/usr/bin/python3";
/// The line sluice says once (`broker::transparent::socket::TOLD`).
const TOLD: &str = "sluice: the program tried to reach the network";
/// The whole run's bound: a refusal is immediate, a retrying resolver or
/// client waits seconds per attempt. Generous, for a loaded machine.
const FAST: Duration = Duration::from_secs(20);
/// How many lookups the script makes: the line is still said once.
const ATTEMPTS: usize = 25;

/// Python: `ATTEMPTS` name lookups, a urllib fetch, an IPv4 and an IPv6
/// socket, each error printed as one line; then an AF_UNIX socket pair and
/// a named unix socket connected in the workspace (the control).
fn python_reaching_out() -> Vec<String> {
    let script = format!(
        "import os, socket, time, urllib.request\n\
         for i in range({ATTEMPTS}):\n\
         \x20   try:\n\
         \x20       socket.getaddrinfo('registry.sluice-test.invalid', 443)\n\
         \x20       print('RESOLVED')\n\
         \x20   except socket.gaierror as e:\n\
         \x20       print('LOOKUP', e.errno)\n\
         try:\n\
         \x20   urllib.request.urlopen('https://registry.sluice-test.invalid/', timeout=60)\n\
         \x20   print('FETCHED')\n\
         except Exception as e:\n\
         \x20   print('URLLIB', type(e).__name__)\n\
         for family in (socket.AF_INET, socket.AF_INET6):\n\
         \x20   try:\n\
         \x20       socket.socket(family, socket.SOCK_STREAM).close()\n\
         \x20       print('SOCKET made')\n\
         \x20   except OSError as e:\n\
         \x20       print('SOCKET', e.errno)\n\
         a, b = socket.socketpair()\n\
         a.sendall(b'x')\n\
         print('PAIR', b.recv(1).decode())\n\
         server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
         server.bind('unix.sock')\n\
         server.listen(1)\n\
         client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
         client.connect('unix.sock')\n\
         peer, _ = server.accept()\n\
         client.sendall(b'y')\n\
         print('UNIX', peer.recv(1).decode())\n\
         os.unlink('unix.sock')\n"
    );
    vec![PYTHON.into(), "-c".into(), script]
}

/// Python connecting to the test's loopback server at `port`, printing
/// what it read or the error.
fn python_connect(port: u16) -> Vec<String> {
    let script = format!(
        "import socket\n\
         try:\n\
         \x20   s = socket.create_connection(('127.0.0.1', {port}), timeout=60)\n\
         \x20   print('READ', s.recv(64).decode())\n\
         except OSError as e:\n\
         \x20   print('CONNECT', e.errno)\n"
    );
    vec![PYTHON.into(), "-c".into(), script]
}

/// A loopback server that answers every connection with `hello`.
fn hello_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.write_all(b"hello");
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        }
    });
    port
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `sluice run SLUICE_ARGS -- PROGRAM`, timed.
fn run(fx: &Fixture, sluice_args: &[&str], program: &[String]) -> (Outcome, Duration) {
    let started = Instant::now();
    let out = execute(fx.sluice_command(sluice_args, &strs(program)));
    (out, started.elapsed())
}

/// The same as uid 65534 (the fixture's files handed to it).
fn run_as_nobody(fx: &Fixture, sluice_args: &[&str], program: &[String]) -> (Outcome, Duration) {
    let inner = fx.sluice_command(sluice_args, &strs(program));
    let tmp = fx.home("tmp");
    fs::create_dir_all(&tmp).unwrap();
    fx.give_to(65534, 65534);
    let mut cmd = sluice_tests::setpriv_nobody();
    cmd.arg(inner.get_program()).args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(inner.get_current_dir().unwrap())
        .env("TMPDIR", &tmp)
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .stdin(std::process::Stdio::null());
    let started = Instant::now();
    let out = execute(cmd);
    (out, started.elapsed())
}

fn told_times(out: &Outcome) -> usize {
    out.stderr.matches(TOLD).count()
}

/// Everything the script reaching out prints under `--net none`: each
/// lookup and fetch failed, each IP socket refused with ENETUNREACH, the unix
/// controls worked, the line said once, all within `FAST`.
#[track_caller]
fn assert_refused_at_once(out: &Outcome, took: Duration) {
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let lookups = lines.iter().filter(|l| l.starts_with("LOOKUP ")).count();
    assert_eq!(lookups, ATTEMPTS, "every lookup fails\n{out}");
    assert!(lines.contains(&"URLLIB URLError"), "urllib fails\n{out}");
    let unreachable = format!("SOCKET {}", libc::ENETUNREACH);
    let refused = lines.iter().filter(|l| **l == unreachable).count();
    assert_eq!(
        refused, 2,
        "IPv4 and IPv6 sockets refused with ENETUNREACH\n{out}"
    );
    assert!(lines.contains(&"PAIR x"), "a unix socket pair works\n{out}");
    assert!(
        lines.contains(&"UNIX y"),
        "a named unix socket works\n{out}"
    );
    assert_eq!(told_times(out), 1, "said once\n{out}");
    assert!(
        out.stderr.contains("--allow-host HOST") && out.stderr.contains("--net all"),
        "says how to allow it\n{out}"
    );
    assert!(took < FAST, "took {took:?}, not at once\n{out}");
}

#[test]
fn python_lookups_and_urllib_fail_at_once_and_sluice_says_so_once() {
    let fx = Fixture::new(PROBE);
    let (out, took) = run(&fx, &["--net", "none"], &python_reaching_out());
    assert_refused_at_once(&out, took);
    // Each attempt is in the record, as one refusal with its count.
    let records = records(&fx, &only_session(&fx));
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "decision" && r["via"] == "seccomp:socket")
        .collect();
    assert!(
        refused.len() > ATTEMPTS,
        "each attempt recorded: {} records",
        refused.len()
    );
    assert!(refused
        .iter()
        .all(|r| r["decision"] == "denied" && r["path_asked"] == "the network"));
}

#[test]
fn under_transparent_the_same() {
    let fx = Fixture::new(PROBE);
    let (out, took) = run(
        &fx,
        &["--net", "none", "--transparent"],
        &python_reaching_out(),
    );
    assert_refused_at_once(&out, took);
}

#[test]
fn as_nobody_the_same() {
    let fx = Fixture::new(PROBE);
    let (out, took) = run_as_nobody(&fx, &["--net", "none"], &python_reaching_out());
    assert_refused_at_once(&out, took);
}

/// A program that never reaches out hears nothing about the network.
#[test]
fn a_program_that_stays_offline_hears_nothing() {
    let fx = Fixture::new(PROBE);
    let (out, _) = run(
        &fx,
        &["--net", "none"],
        &[PYTHON.into(), "-c".into(), "print('quiet')".into()],
    );
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), "quiet", "{out}");
    assert_eq!(told_times(&out), 0, "{out}");
}

/// The attack: a connection to the test's loopback server under `none`
/// never arrives; the controls: the same under `--net all`, and outside
/// sluice, reach it.
fn loopback_reached_only_with_net_all(nobody: bool) {
    let fx = Fixture::new(PROBE);
    let port = hello_server();
    let script = python_connect(port);
    let run = |args: &[&str]| match nobody {
        true => run_as_nobody(&fx, args, &script).0,
        false => run(&fx, args, &script).0,
    };
    let none = run(&["--net", "none"]);
    none.assert_code(0);
    assert_eq!(
        none.stdout.trim(),
        format!("CONNECT {}", libc::ENETUNREACH),
        "{none}"
    );
    assert_eq!(told_times(&none), 1, "{none}");
    let all = run(&["--net", "all"]);
    all.assert_code(0);
    assert_eq!(all.stdout.trim(), "READ hello", "{all}");
    assert_eq!(told_times(&all), 0, "{all}");
    let direct = execute({
        let mut cmd = Command::new(&script[0]);
        cmd.args(&script[1..]).stdin(std::process::Stdio::null());
        cmd
    });
    assert_eq!(direct.stdout.trim(), "READ hello", "{direct}");
}

#[test]
fn loopback_is_reached_with_net_all_and_not_with_none() {
    loopback_reached_only_with_net_all(false);
}

#[test]
fn as_nobody_loopback_is_reached_with_net_all_and_not_with_none() {
    loopback_reached_only_with_net_all(true);
}

/// npm, pip and cargo are told not to retry under `none`, unless the program's
/// environment says otherwise; nothing is set under other modes.
#[test]
fn package_managers_are_told_not_to_retry_only_under_none() {
    let fx = Fixture::new(PROBE);
    let env = vec!["/usr/bin/env".to_owned()];
    let (none, _) = run(&fx, &["--net", "none"], &env);
    none.assert_code(0);
    for line in [
        "npm_config_fetch_retries=0",
        "PIP_RETRIES=0",
        "CARGO_NET_RETRY=0",
    ] {
        assert!(none.stdout.lines().any(|l| l == line), "{line}\n{none}");
    }
    let (kept, _) = run(&fx, &["--net", "none", "--env", "PIP_RETRIES=3"], &env);
    assert!(kept.stdout.lines().any(|l| l == "PIP_RETRIES=3"), "{kept}");
    assert!(!kept.stdout.lines().any(|l| l == "PIP_RETRIES=0"), "{kept}");
    let (all, _) = run(&fx, &["--net", "all"], &env);
    all.assert_code(0);
    assert!(
        ["npm_config_fetch_retries", "PIP_RETRIES", "CARGO_NET_RETRY"]
            .iter()
            .all(|name| !all.stdout.contains(name)),
        "{all}"
    );
}

/// The refusal summary of a failed program has one line for the network.
#[track_caller]
fn assert_summary(out: &Outcome) {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("reach the network"))
        .collect();
    assert_eq!(lines.len(), 1, "one summary line for the network\n{out}");
    assert!(
        lines[0].ends_with("allow hosts with --allow-host HOST[:PORT], or --net all"),
        "{out}"
    );
}

/// `PROGRAM` on `PATH`, or `None` (the test then says it was skipped).
fn installed(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// npm against a registry on the test's loopback (which the sandbox never
/// reaches): it gives up after its first attempt, where its own retries
/// take 71 s. `--loglevel=http` logs each failed attempt.
#[test]
fn npm_gives_up_after_one_attempt() {
    let Some(npm) = installed("npm") else {
        eprintln!("skipped: npm is not installed");
        return;
    };
    let fx = Fixture::new(PROBE);
    fs::write(
        fx.ws_dir.join("package.json"),
        r#"{"name":"sluice-test","version":"1.0.0"}"#,
    )
    .unwrap();
    let port = hello_server();
    let registry = format!("--registry=http://127.0.0.1:{port}/");
    let npm = npm.to_string_lossy().into_owned();
    let program: Vec<String> = [
        npm.as_str(),
        "install",
        "--no-audit",
        "--no-fund",
        "--loglevel=http",
        &registry,
        "left-pad",
    ]
    .map(String::from)
    .to_vec();
    let (out, took) = run(&fx, &["--net", "none"], &program);
    assert_ne!(out.code(), 0, "{out}");
    let attempts = |n: u32| out.stderr.contains(&format!("attempt {n} failed"));
    assert!(attempts(1), "npm tried, and failed\n{out}");
    assert!(!attempts(2), "npm retried\n{out}");
    assert_eq!(told_times(&out), 1, "{out}");
    assert_summary(&out);
    assert!(took < Duration::from_secs(60), "took {took:?}\n{out}");
}

/// pip against an index on the test's loopback: no retry (pip's own five
/// take 10 s).
#[test]
fn pip_gives_up_without_retrying() {
    // The system's Python (a version manager's shims live outside the
    // policy), which may have no pip.
    let has_pip = Command::new(PYTHON)
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pip {
        eprintln!("skipped: {PYTHON} has no pip");
        return;
    }
    let fx = Fixture::new(PROBE);
    let port = hello_server();
    let index = format!("--index-url=http://127.0.0.1:{port}/simple/");
    let dest = fx.ws("downloads");
    let program: Vec<String> = [
        PYTHON,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        &index,
        "-d",
        &dest,
        "six",
    ]
    .map(String::from)
    .to_vec();
    let (out, took) = run(&fx, &["--net", "none"], &program);
    assert_ne!(out.code(), 0, "{out}");
    assert!(
        out.stdout.contains("six") || out.stderr.contains("six"),
        "{out}"
    );
    assert!(!out.stderr.contains("Retrying"), "pip retried\n{out}");
    assert_eq!(told_times(&out), 1, "{out}");
    assert_summary(&out);
    assert!(took < Duration::from_secs(60), "took {took:?}\n{out}");
}
