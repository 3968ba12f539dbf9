//! The supervisor's duties toward a running program: forwarding signals that
//! are sent to sluice, and leaving no process of the sandbox behind.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh private workspace (not removed afterwards, as before).
fn workspace(name: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(&format!("sluice-sup-{name}-"))
        .tempdir()
        .unwrap()
        .keep()
}

fn spawn(ws: &PathBuf, script: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--workspace"])
        .arg(ws)
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads stdout lines until one equals `want`; returns every line read.
fn read_until(reader: &mut impl BufRead, want: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for line in reader.lines() {
        let line = line.unwrap();
        let done = line == want;
        lines.push(line);
        if done {
            return lines;
        }
    }
    panic!("stdout ended before {want:?}: {lines:?}");
}

/// Live processes whose command line holds `token`, by host pid: a pid the
/// program prints is its own PID namespace's.
fn with_token(token: &str) -> Vec<i32> {
    let token = token.as_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            alive(pid) && cmdline.windows(token.len()).any(|w| w == token)
        })
        .collect()
}

/// Waits (generously) until no live process holds `token`.
fn wait_none_with(token: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = with_token(token);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0); look at its state too.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn signals_sent_to_sluice_reach_the_program() {
    for (sig, name) in [
        (libc::SIGTERM, "TERM"),
        (libc::SIGINT, "INT"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGWINCH, "WINCH"),
    ] {
        let ws = workspace(name);
        let script = format!(
            "trap 'echo got-{name}; exit 3' {name}; echo ready; while :; do sleep 0.02; done"
        );
        let mut child = spawn(&ws, &script);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        read_until(&mut out, "ready");
        // SAFETY: signalling the sluice process we spawned.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        read_until(&mut out, &format!("got-{name}"));
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3), "SIG{name}: {status}");
        let _ = std::fs::remove_dir_all(ws);
    }
}

#[test]
fn control_unforwarded_signal_kills_sluice_not_the_trap() {
    // SIGUSR1 is not forwarded: it ends sluice itself (default action), and
    // the program dies with it (parent-death signal) without running its trap.
    let ws = workspace("usr1");
    let token = format!("sluice-usr1-{}", std::process::id());
    let mut child = spawn(
        &ws,
        &format!(
            "trap 'echo got-USR1; exit 3' USR1; echo ready; while :; do sleep 0.02; done # {token}"
        ),
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let lines = read_until(&mut out, "ready");
    assert_eq!(lines, ["ready"]);
    // sluice, the sandbox's init and the program.
    assert!(with_token(&token).len() >= 2, "control: the program runs");
    // SAFETY: signalling the sluice process we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "sluice died of the signal");
    let left = wait_none_with(&token);
    assert!(
        left.is_empty(),
        "the program outlived its supervisor: {left:?}"
    );
    let rest: Vec<String> = out.lines().map(|l| l.unwrap()).collect();
    assert!(!rest.iter().any(|l| l == "got-USR1"), "{rest:?}");
    let _ = std::fs::remove_dir_all(ws);
}

#[test]
fn background_and_daemonised_processes_are_killed_when_the_program_exits() {
    let ws = workspace("reap");
    // Durations unique to this run (300.<pid>, 301.<pid>, 302.<pid>
    // seconds), so another run of this test on the machine (a second
    // checkout's suite) cannot pass for a survivor of this one.
    let pid = std::process::id();
    let child = spawn(
        &ws,
        &format!(
            "sleep 300.{pid} & echo $!; setsid sleep 301.{pid} & echo $!; \
             (sleep 302.{pid} &) ; exit 0"
        ),
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Two pids were printed (the program's namespace's: they name nothing
    // here), so the two were started.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    // Look for any survivor of the three, right away: sluice returns only
    // once every process of the sandbox is gone.
    let survivors: Vec<i32> = (300..=302)
        .flat_map(|s| with_token(&format!("sleep\0{s}.{pid}\0")))
        .collect();
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
    let _ = std::fs::remove_dir_all(ws);
}

#[test]
fn control_background_process_outlives_a_bare_shell() {
    // Without sluice the same background sleep survives its shell, and the
    // search the test above makes finds it: that test proves sluice, not
    // the shell, ended its three. (303: not one of the three it looks for.)
    let pid = std::process::id();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sleep 303.{pid} </dev/null >/dev/null 2>&1 & echo $!"
        ))
        .output()
        .unwrap();
    let sleeper: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(alive(sleeper));
    assert_eq!(with_token(&format!("sleep\0{}.{pid}\0", 303)), [sleeper]);
    // SAFETY: cleaning up the process we started.
    unsafe { libc::kill(sleeper, libc::SIGKILL) };
}
