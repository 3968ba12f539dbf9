//! Process and kernel-surface escapes: the supervisor's /proc entries, ptrace and
//! signals (also through pidfds) to it, joining its namespaces, io_uring,
//! open_by_handle_at, memfd execution, TIOCSTI, user namespaces (unshare, clone,
//! clone3, and the i386 `int 0x80` entry point), mount and chroot, capabilities,
//! the environment, leaked descriptors, daemons outliving the session and setuid
//! binaries.
//!
//! The program lives in a PID namespace of its own: the supervisor has no pid
//! there, and the probe's parent, which it names `{ppid}` itself, is the
//! sandbox's init (pid 1), a copy of the supervisor made before any step. So
//! the `{ppid}` attacks below try the nearest thing to the supervisor there
//! is. The outside controls run the probe under `sh`, so that `{ppid}` is a
//! process the probe may inspect when unconfined.

use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use sluice_tests::{
    execute, install_executable, sluice_bin, Fixture, Outcome, CANARY_VALUE, CANARY_VAR,
};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// The probe as a child (not an exec) of `sh`, outside the sandbox: `{ppid}` is
/// then that shell, which carries the canary variable like sluice does.
fn under_shell(fx: &Fixture, action: &[&str]) -> Outcome {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("\"$0\" \"$@\"; exit $?")
        .arg(&fx.probe)
        .args(action)
        .current_dir(&fx.ws_dir)
        .env("HOME", &fx.home_dir)
        .env(CANARY_VAR, CANARY_VALUE)
        .stdin(Stdio::null());
    execute(cmd)
}

/// `action` works from a shell outside sluice (the control) and is
/// blocked inside.
#[track_caller]
fn works_only_outside(fx: &Fixture, action: &[&str]) {
    under_shell(fx, action).assert_ok();
    fx.sluice(&[], action).assert_blocked();
}

/// Sanity for every `{ppid}` attack below: the sandboxed program's parent is the
/// supervisor itself, not some helper.
#[test]
fn the_supervisor_is_the_parent() {
    let fx = Fixture::new(PROBE);
    let out = fx.sluice(&[], &["ppid"]);
    out.assert_ok();
    assert!(
        out.status_line().ends_with("comm=sluice"),
        "the sandboxed program's parent is not sluice\n{out}"
    );
}

#[test]
fn supervisor_environment_is_unreadable() {
    let fx = Fixture::new(PROBE);
    let control = under_shell(&fx, &["proc-read", "/proc/{ppid}/environ"]);
    control.assert_ok();
    assert!(control.stdout.contains(CANARY_VALUE), "{control}");

    fx.sluice(&[], &["proc-read", "/proc/{ppid}/environ"])
        .assert_blocked();
}

#[test]
fn supervisor_memory_is_unreadable() {
    let fx = Fixture::new(PROBE);
    works_only_outside(&fx, &["proc-read", "/proc/{ppid}/mem"]);
    fx.sluice(&[], &["proc-read", "/proc/{ppid}/maps"])
        .assert_blocked();
}

#[test]
fn supervisor_root_and_cwd_are_unreachable() {
    let fx = Fixture::new(PROBE);
    // The supervisor's root and cwd are outside the sandbox's mount namespace,
    // where `.env` is not masked.
    let env_via_root = format!("/proc/{{ppid}}/root{}", fx.ws(".env"));
    works_only_outside(&fx, &["proc-root-ls", "{ppid}"]);
    works_only_outside(&fx, &["read", &env_via_root]);
    works_only_outside(&fx, &["read", "/proc/{ppid}/cwd/.env"]);
}

#[test]
fn ptrace_is_refused() {
    let fx = Fixture::new(PROBE);
    under_shell(&fx, &["ptrace-attach", "{ppid}"]).assert_ok();
    fx.direct(&["ptrace-attach", "child"]).assert_ok();

    fx.sluice(&[], &["ptrace-attach", "{ppid}"])
        .assert_blocked();
    // sluice's syscall filter refuses ptrace outright, even of the program's own
    // children (stricter than Landlock's scoping, which would allow those).
    fx.sluice(&[], &["ptrace-attach", "child"]).assert_blocked();
}

#[test]
fn signals_to_the_supervisor_are_blocked() {
    let fx = Fixture::new(PROBE);
    let test_pid = std::process::id().to_string();
    under_shell(&fx, &["signal", "{ppid}", "0"]).assert_ok();
    fx.direct(&["signal", &test_pid, "0"]).assert_ok();
    fx.sluice(&[], &["signal", "child", "0"]).assert_ok();
    fx.sluice(&[], &["signal", "child", "15"]).assert_ok();

    // The supervisor and the test are not in the program's PID namespace:
    // their pids name nothing there (or another process of the sandbox).
    fx.sluice(&[], &["signal", &test_pid, "0"]).assert_blocked();
    fx.sluice(&[], &["pidfd-signal", &test_pid, "0"])
        .assert_blocked();
    under_shell(&fx, &["pidfd-signal", "{ppid}", "0"]).assert_ok();
    fx.sluice(&[], &["pidfd-signal", "child", "0"]).assert_ok();
}

/// The sandbox's init is the program's parent and can be signalled (the
/// same Landlock domain), but the kernel shields a namespace's init from
/// signals sent inside it that it has no handler for, SIGKILL included,
/// and init passes on only what comes from outside (the supervisor): the
/// program cannot end its own session's init early or bounce a signal off it.
#[test]
fn signals_from_inside_neither_kill_init_nor_come_back() {
    let fx = Fixture::new(PROBE);
    let script = "kill -TERM 1; kill -INT 1; kill -HUP 1; kill -KILL 1; kill -STOP 1; \
                  sleep 1; echo alive; exit 5";
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", script]));
    assert_eq!(out.code(), 5, "{out}");
    assert!(out.stdout.contains("alive"), "{out}");
    // Control: the same signals from outside reach the program (the
    // supervisor forwards them to init, which passes them on).
    let mut cmd = fx.sluice_command(&[], &["/bin/sh", "-c", "echo ready; sleep 60"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: signalling the sluice process this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status}");
}

/// A process of the host outside the sandbox, with `token` in its command
/// line, killed on drop.
struct HostProcess(std::process::Child);

impl HostProcess {
    fn start(token: &str) -> HostProcess {
        let child = Command::new("/bin/sh")
            .args(["-c", "sleep 120", token])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        // Until the child has exec'd, its command line is the test's own.
        let cmdline = format!("/proc/{}/cmdline", child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !fs::read(&cmdline)
            .unwrap_or_default()
            .windows(token.len())
            .any(|w| w == token.as_bytes())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the host process never ran"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        HostProcess(child)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a program learns of other processes through `/proc`: another
/// host process's command line (a token passed in its argv), the pids of
/// everything, and pid 1's mount table (the host's init, outside).
const PROC_SURVEY: &str = "cat /proc/$0/cmdline | tr '\\0' ' '; echo; \
     echo pids: $(ls /proc | grep -E '^[0-9]+$'); \
     if cmp -s /proc/1/mountinfo /proc/self/mountinfo; then echo one-mount-table; fi; \
     echo mountinfo-lines: $(cat /proc/1/mountinfo | wc -l)";

fn proc_survey(out: &Outcome) -> (bool, Vec<u32>, bool, u32) {
    let pids = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pids:"))
        .unwrap_or("")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let lines = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("mountinfo-lines:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (
        out.stdout.contains("sluice-host-token"),
        pids,
        out.stdout.contains("one-mount-table"),
        lines,
    )
}

#[test]
fn other_processes_are_invisible() {
    let fx = Fixture::new(PROBE);
    let host = HostProcess::start("sluice-host-token");
    let host_pid = host.0.id().to_string();
    let survey = |cmd: Command| proc_survey(&execute(cmd));

    // Control: outside, the same commands see the host process, its argv,
    // its pid, and the host's pid 1's mount table. (Inside, pid 1's mount
    // table is the sandbox's own: the host's pid 1 is never in the
    // sandbox's mount namespace.)
    let mut outside = Command::new("/bin/sh");
    outside.args(["-c", PROC_SURVEY, &host_pid]);
    outside.stdin(Stdio::null()).current_dir(&fx.ws_dir);
    let (token, pids, _, lines) = survey(outside);
    assert!(token, "control: the host process's argv is readable");
    assert!(pids.contains(&host.0.id()), "control: {pids:?}");
    assert!(
        lines > 0,
        "control: the host's /proc/1/mountinfo is readable"
    );

    // As root and as an unprivileged user (whose user namespace makes the
    // PID namespace and mounts its /proc), plain and transparent.
    const NOBODY: u32 = 65534;
    fx.give_to(NOBODY, NOBODY);
    let runs = [(false, false), (false, true), (true, false), (true, true)];
    for (nobody, transparent) in runs {
        let flags: &[&str] = if transparent { &["--transparent"] } else { &[] };
        let mut cmd = fx.sluice_command(flags, &["/bin/sh", "-c", PROC_SURVEY, &host_pid]);
        if nobody {
            let mut wrapped = sluice_tests::setpriv_nobody();
            wrapped
                .arg(cmd.get_program())
                .args(cmd.get_args())
                // The fixture's state and configuration directories are
                // root's: the record goes under the (given) home instead.
                .envs(
                    cmd.get_envs()
                        .filter(|(k, _)| !k.to_string_lossy().starts_with("XDG_"))
                        .filter_map(|(k, v)| Some((k, v?))),
                )
                .current_dir(&fx.ws_dir)
                .stdin(Stdio::null());
            cmd = wrapped;
        }
        let flags = (nobody, flags);
        let out = execute(cmd);
        let (token, pids, same, _) = proc_survey(&out);
        assert!(!token, "{flags:?}: the host process's argv was read\n{out}");
        // init, the shell and what it runs: a handful, the host's none.
        assert!(
            !pids.is_empty() && pids.len() < 10 && pids.contains(&1),
            "{flags:?}: pids in view: {pids:?}\n{out}"
        );
        assert!(!pids.contains(&host.0.id()), "{flags:?}: {pids:?}");
        assert!(
            same,
            "{flags:?}: pid 1 is not the sandbox's own init\n{out}"
        );
    }
}

/// The program's pid in the audit record and in the records of its
/// requests is the one the supervisor sees (it reads the requester's `exe`
/// through it), not the program's own namespace's, and the start record
/// names the program, not the sandbox's init.
#[test]
fn the_audit_names_the_program_as_the_host_sees_it() {
    let fx = Fixture::new(PROBE);
    let readme = fx.ws("README.md");
    for flags in [&[][..], &["--transparent", "--approve", "allow"][..]] {
        let _ = fs::remove_dir_all(fx.state_dir());
        let action = match flags.is_empty() {
            true => "broker-read",
            false => "read",
        };
        // Transparent: a file outside the policy, so that the open is brokered.
        let path = match flags.is_empty() {
            true => readme.clone(),
            false => fx.outside("secret.txt"),
        };
        fx.sluice(flags, &[action, &path]).assert_ok();
        let session = sluice_tests::audit::only_session(&fx);
        let all = sluice_tests::audit::records(&fx, &session);
        let decision = sluice_tests::audit::decision_about(&all, &path);
        assert_eq!(decision["exe"], fx.probe_path(), "{flags:?}: {decision}");
        assert_eq!(
            all[0]["child_pid"], decision["pid"],
            "{flags:?}: the start record does not name the program\n{}\n{decision}",
            all[0]
        );
        assert!(
            decision["pid"].as_u64().unwrap() > 1,
            "{flags:?}: {decision}"
        );
    }
}

/// A file made through the guard (an open that creates: the connector
/// makes it and answers), so the connector, which the init forks once the
/// program has exec'd, is known to be running from here on.
const CONNECTOR_ANSWERED: &str = r#"
import os
open(os.path.join(os.getcwd(), 'made-by-the-connector'), 'w').close()
"#;

/// The guard's connector runs beside the program, never as its child:
/// the sandbox's init forks it once the program has exec'd (without an
/// init, a double fork reparents it away). Attack: a program that waits
/// for any child finds none it did not make. Controls: another process
/// (the connector) is in view, so there is one to find, and a child the
/// program makes itself it reaps.
#[test]
fn the_program_has_no_child_it_did_not_make() {
    let fx = Fixture::new(PROBE);
    let script = CONNECTOR_ANSWERED.to_owned()
        + r#"
me = os.getpid()
others = [n for n in os.listdir('/proc') if n.isdigit() and int(n) not in (1, me)]
print('others in view:', len(others))
try:
    print('unknown child', os.waitpid(-1, os.WNOHANG))
except ChildProcessError:
    print('no unknown child')
pid = os.fork()
if pid == 0:
    os._exit(3)
print('own child', os.WEXITSTATUS(os.waitpid(pid, 0)[1]))
"#;
    let out = execute(fx.sluice_command(&[], &["python3", "-c", &script]));
    out.assert_code(0);
    assert!(out.stdout.contains("no unknown child"), "{out}");
    assert!(!out.stdout.contains("others in view: 0"), "{out}");
    assert!(out.stdout.contains("own child 3"), "{out}");
}

/// The connector inherits the init's deny filter (the init installs it
/// after starting the program and forks the connector after that: the
/// filter is compiled once for both). Attack: a connector forked without
/// it would make the program's calls outside the deny filter (a listener
/// of its own, namespaces, ...): every process beside the program (the
/// init and the connector) must be under a filter. Control: outside
/// sluice the same reading finds a process without one. The connector
/// also blocks no signal (the init blocks those it reads).
#[test]
fn the_connector_and_the_init_run_under_the_deny_filter() {
    let fx = Fixture::new(PROBE);
    let script = CONNECTOR_ANSWERED.to_owned()
        + r#"
me = os.getpid()
def field(pid, name):
    for line in open('/proc/%s/status' % pid):
        if line.startswith(name + ':'):
            return line.split()[1]
print('self', field(me, 'Seccomp'))
for n in sorted(os.listdir('/proc')):
    if n.isdigit() and int(n) != me:
        print('other', n, field(n, 'Seccomp'))
        if n != '1':
            print('blocked', n, int(field(n, 'SigBlk'), 16))
"#;
    let out = execute(fx.sluice_command(&[], &["python3", "-c", &script]));
    out.assert_code(0);
    let others: Vec<&str> = (out.stdout.lines())
        .filter(|l| l.starts_with("other "))
        .collect();
    // The init (pid 1) and at least the connector.
    assert!(others.len() >= 2, "{out}");
    assert!(others.iter().all(|l| l.ends_with(" 2")), "{out}");
    assert!(out.stdout.contains("self 2"), "{out}");
    // The connector, forked by the init, blocks none of what the init
    // blocks (it would not die of a SIGTERM, as it did before).
    assert!(out.stdout.contains("blocked "), "{out}");
    assert!(
        (out.stdout.lines())
            .filter(|l| l.starts_with("blocked "))
            .all(|l| l.ends_with(" 0")),
        "{out}"
    );
    let mut outside = Command::new("python3");
    outside.args(["-c", &script]).current_dir(fx.ws(""));
    let control = execute(outside);
    assert!(control.stdout.contains("self 0"), "{control}");
}

/// Under the sandbox's init a program's exit status and its death by a
/// signal come through as before (the status, 128 + N), and what it left
/// running dies with it.
#[test]
fn exit_statuses_pass_through_init() {
    let fx = Fixture::new(PROBE);
    for (script, code) in [
        ("exit 0", 0),
        ("exit 7", 7),
        ("kill -TERM $$", 128 + libc::SIGTERM),
        ("kill -KILL $$", 128 + libc::SIGKILL),
        ("kill -SEGV $$", 128 + libc::SIGSEGV),
    ] {
        let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", script]));
        assert_eq!(out.code(), code, "{script}\n{out}");
    }
}

#[test]
fn io_uring_is_blocked() {
    let fx = Fixture::new(PROBE);
    fx.direct(&["io-uring"]).assert_ok();
    fx.sluice(&[], &["io-uring"]).assert_blocked();
}

#[test]
fn open_by_handle_is_blocked() {
    let fx = Fixture::new(PROBE);
    // The handle is computed outside; inside, the workspace names the file system.
    let out = fx.direct(&["handle", &fx.home(".ssh/id_rsa")]);
    out.assert_ok();
    let handle = out
        .status_line()
        .trim_start_matches("OK handle ")
        .to_owned();
    let control = fx.direct(&["open-by-handle", &fx.ws(""), &handle]);
    control.assert_ok();
    assert!(control.stdout.contains("SECRET-ssh-key"), "{control}");

    fx.sluice(&[], &["open-by-handle", &fx.ws(""), &handle])
        .assert_blocked();
    fx.sluice(&[], &["open-by-handle", &fx.ws("README.md")])
        .assert_blocked();
}

#[test]
fn memfd_execution_is_blocked() {
    let fx = Fixture::new(PROBE);
    fx.direct(&["memfd-exec"]).assert_ok();
    // The kernel itself refuses a sealed memfd; the sandbox must not undo that.
    fx.direct(&["memfd-exec-sealed"]).assert_blocked();

    fx.sluice(&[], &["memfd-exec"]).assert_blocked();
    fx.sluice(&[], &["memfd-exec-sealed"]).assert_blocked();
}

fn open_pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: the out-pointers are valid; name, termios and winsize may be null.
    let ret = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(ret, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty returned two fresh descriptors that nothing else owns.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Runs `cmd` in a new session whose controlling terminal (and stdin) is the pty.
fn on_pty(mut cmd: Command, slave: &OwnedFd) -> Outcome {
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl are async-signal-safe; nothing else runs here.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    execute(cmd)
}

#[test]
fn tiocsti_injection_is_blocked() {
    let fx = Fixture::new(PROBE);
    let (_master, slave) = open_pty();
    on_pty(fx.direct_command(&["tiocsti"]), &slave).assert_ok();

    let program = [fx.probe_path(), "tiocsti".to_owned()];
    let program: Vec<&str> = program.iter().map(String::as_str).collect();
    on_pty(fx.sluice_command(&[], &program), &slave).assert_blocked();
}

#[test]
fn user_namespaces_are_refused() {
    let fx = Fixture::new(PROBE);
    for way in ["userns", "userns-clone", "userns-clone3"] {
        fx.direct(&[way]).assert_ok();
        fx.sluice(&[], &[way]).assert_blocked();
    }
}

/// Refused (exit 1) or killed by the filter (SIGSYS): anything but success.
#[track_caller]
fn assert_refused_or_killed(out: &Outcome) {
    let killed = 128 + libc::SIGSYS;
    if out.code() != killed {
        out.assert_blocked();
    }
}

#[test]
fn i386_system_calls_do_not_bypass_the_filter() {
    let fx = Fixture::new(PROBE);
    fx.direct(&["int80", "getpid"]).assert_ok();
    fx.direct(&["int80", "unshare-userns"]).assert_ok();

    // unshare is 310 on i386 but 272 on x86_64: a filter that checks only
    // native numbers lets it through.
    assert_refused_or_killed(&fx.sluice(&[], &["int80", "unshare-userns"]));
}

#[test]
fn namespaces_of_the_supervisor_cannot_be_joined() {
    let fx = Fixture::new(PROBE);
    for ns in ["mnt", "net", "ipc", "uts"] {
        let path = format!("/proc/{{ppid}}/ns/{ns}");
        works_only_outside(&fx, &["setns", &path]);
    }
}

#[test]
fn no_descriptors_leak_into_the_sandbox() {
    let fx = Fixture::new(PROBE);
    // Control: the probe does see an inherited descriptor.
    let secret = fs::File::open(fx.outside("secret.txt")).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&secret);
    let mut cmd = fx.direct_command(&["fds"]);
    // SAFETY: dup2 and fcntl are async-signal-safe; fd 9 is left without
    // CLOEXEC (where the file already is 9, dup2 would change nothing: other
    // tests of the suite's process hold descriptors, so any number may come).
    unsafe {
        cmd.pre_exec(move || {
            let ok = if raw == 9 {
                libc::fcntl(9, libc::F_SETFD, 0) >= 0
            } else {
                libc::dup2(raw, 9) >= 0
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let control = execute(cmd);
    control.assert_ok();
    assert!(control.status_line().contains(" 9="), "{control}");

    let out = fx.sluice(&[], &["fds"]);
    out.assert_ok();
    let line = out.status_line();
    let entries: Vec<(&str, &str)> = line
        .trim_start_matches("OK fds ")
        .split_whitespace()
        .map(|entry| entry.split_once('=').unwrap())
        .collect();
    // Stdio, and the broker's shared socket (inherited on purpose, named
    // by SLUICE_BROKER_FD): nothing else of the supervisor's.
    let (fds, broker) = entries.split_at(entries.len() - 1);
    let broker = broker[0];
    assert_eq!(broker.0, "broker", "{out}");
    let numbers: Vec<&str> = fds.iter().map(|(fd, _)| *fd).collect();
    assert_eq!(
        numbers,
        ["0", "1", "2", broker.1],
        "descriptors beyond stdio\n{out}"
    );
    assert!(
        fds[3].1.starts_with("socket:"),
        "the broker fd is not a socket\n{out}"
    );
}

/// Whether `pid` is still a live (not zombie) copy of the probe.
fn probe_alive(pid: &str, probe: &std::path::Path) -> bool {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    let needle = probe.as_os_str().as_encoded_bytes();
    cmdline.windows(needle.len()).any(|w| w == needle) && !state.starts_with('Z')
}

fn kill(pid: &str) {
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
}

/// The live (not zombie) probes of the host running `daemon PIDFILE`, by
/// pid as the host sees them: the pid the daemon writes is its own
/// namespace's.
fn host_pids_with(pidfile: &str) -> Vec<String> {
    let needle = format!("daemon\0{pidfile}\0");
    let needle = needle.as_bytes();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|pid| pid.parse::<u32>().is_ok())
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            cmdline.windows(needle.len()).any(|w| w == needle) && !state.starts_with('Z')
        })
        .collect()
}

#[test]
fn no_process_outlives_the_session() {
    let fx = Fixture::new(PROBE);
    let control_pidfile = fx.ws("control.pid");
    fx.direct(&["daemon", &control_pidfile]).assert_ok();
    let pid = fs::read_to_string(&control_pidfile).unwrap();
    let survived = probe_alive(&pid, &fx.probe);
    kill(&pid);
    assert!(
        survived,
        "control: the daemon {pid} should outlive the probe"
    );

    let pidfile = fx.ws("inside.pid");
    fx.sluice(&[], &["daemon", &pidfile]).assert_ok();
    assert!(fs::metadata(&pidfile).is_ok(), "the daemon did not start");
    let left = host_pids_with(&pidfile);
    for pid in &left {
        kill(pid);
    }
    assert!(
        left.is_empty(),
        "the daemon {left:?} outlived its sluice session"
    );
}

#[test]
fn mount_umount_and_chroot_are_refused() {
    let fx = Fixture::new(PROBE);
    let mnt = fx.ws("mnt");
    fs::create_dir(&mnt).unwrap();
    // Control in a throwaway mount namespace, so nothing leaks onto the host.
    let mut unshare = Command::new("unshare");
    unshare
        .args(["--mount", "--propagation", "private", "--"])
        .arg(&fx.probe)
        .args(["mount-tmpfs", &mnt, "+", "umount", &mnt])
        .stdin(Stdio::null());
    execute(unshare).assert_ok();
    fx.direct(&["chroot", &fx.ws("")]).assert_ok();

    fx.sluice(&[], &["mount-tmpfs", &mnt]).assert_blocked();
    fx.sluice(&[], &["chroot", &fx.ws("")]).assert_blocked();
    // Undoing the sandbox's own mounts would undo deny-within-allow.
    let before = fx.snapshot();
    fx.sluice(
        &[],
        &[
            "umount",
            &fx.ws(".git/hooks"),
            "+",
            "write",
            &fx.ws(".git/hooks/pre-commit"),
        ],
    )
    .assert_blocked();
    fx.sluice(
        &[],
        &["umount", &fx.ws(".env"), "+", "read", &fx.ws(".env")],
    )
    .assert_blocked();
    fx.assert_unchanged(&before);
}

/// Parses the probe's `caps` line into (field, value) pairs.
fn status_fields(out: &Outcome) -> Vec<(String, String)> {
    out.status_line()
        .trim_start_matches("OK ")
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn capabilities_are_dropped_with_no_new_privs() {
    let fx = Fixture::new(PROBE);
    let outside = fx.direct(&["caps"]);
    outside.assert_ok();
    let fields = status_fields(&outside);
    let cap_eff = fields.iter().find(|(k, _)| k == "CapEff").unwrap();
    assert_ne!(
        cap_eff.1, "0000000000000000",
        "control: root outside has capabilities\n{outside}"
    );

    let inside = fx.sluice(&[], &["caps"]);
    inside.assert_ok();
    let fields = status_fields(&inside);
    assert_eq!(fields.len(), 7, "{inside}");
    for (key, value) in &fields {
        let expected = match key.as_str() {
            "NoNewPrivs" => "1",
            "Seccomp" => "2",
            _ => "0000000000000000",
        };
        assert_eq!(value, expected, "{key} inside the sandbox\n{inside}");
    }
}

#[test]
fn environment_is_filtered() {
    let fx = Fixture::new(PROBE);
    let outside = fx.direct(&["env"]);
    outside.assert_ok();
    assert!(outside.stdout.contains(CANARY_VALUE), "{outside}");

    let inside = fx.sluice(&[], &["env"]);
    inside.assert_ok();
    inside.assert_no_secret();
    let vars: Vec<(&str, &str)> = inside
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    assert!(get(CANARY_VAR).is_none(), "{inside}");
    assert!(
        get("SLUICE_SESSION").is_some_and(|v| !v.is_empty()),
        "SLUICE_SESSION missing\n{inside}"
    );
    assert_eq!(get("HOME"), fx.home_dir.to_str(), "{inside}");
    assert!(get("PATH").is_some(), "PATH not passed\n{inside}");
}

#[test]
fn setuid_binaries_gain_no_privileges() {
    const NOBODY: u32 = 65534;
    let fx = Fixture::new(PROBE);
    fx.give_to(NOBODY, NOBODY);
    // A setuid-root copy of the probe in a directory the policy makes executable.
    let suid_dir = fx.root().join("suid");
    fs::create_dir(&suid_dir).unwrap();
    fs::set_permissions(&suid_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let suid_probe = suid_dir.join("sluice-probe");
    install_executable(std::path::Path::new(PROBE), &suid_probe);
    std::os::unix::fs::chown(&suid_probe, Some(0), Some(0)).unwrap();
    fs::set_permissions(&suid_probe, fs::Permissions::from_mode(0o4755)).unwrap();
    let policy = fx.write_policy(
        "suid.toml",
        &format!(
            "extends = [\"default\"]\n\n[filesystem]\nexecute = [\"{}\"]\n",
            suid_dir.display()
        ),
    );

    let as_nobody = |program: &[&str]| {
        let mut cmd = sluice_tests::setpriv_nobody();
        cmd.args(program)
            .current_dir(&fx.ws_dir)
            .env("HOME", &fx.home_dir)
            .stdin(Stdio::null());
        execute(cmd)
    };
    let suid = suid_probe.to_str().unwrap();
    as_nobody(&[suid, "setuid-check"]).assert_ok();

    let sluice = sluice_bin();
    let ws = fx.ws("");
    as_nobody(&[
        sluice.to_str().unwrap(),
        "run",
        "--workspace",
        &ws,
        "--policy",
        &policy,
        "--",
        suid,
        "setuid-check",
    ])
    .assert_blocked();
}

/// Stacked inside another sluice, whose seccomp filter refuses new user
/// namespaces, no PID namespace of its own can be made: the inner program
/// shares the outer one's (which still hides the host's processes), the
/// warning says so, and a policy that requires the layer when stacked is
/// refused with the layer named.
#[test]
fn a_stacked_sluice_shares_the_outer_pid_namespace_and_says_so() {
    let fx = Fixture::new(PROBE);
    let required = fx.write_policy(
        "pidns-required.toml",
        "[layers]\nnested_best_effort = [\"namespaces\", \"limits\"]\n",
    );
    let inner = format!(
        "\"$SLUICE_BIN\" run -- sh -c 'echo pids: $(ls /proc | grep -E \"^[0-9]+$\")'; \
         echo inner-exit=$?; \"$SLUICE_BIN\" run --policy {required} -- true; \
         echo required-exit=$?"
    );
    let out = execute(fx.sluice_command(&["--allow-read", &required], &["/bin/sh", "-c", &inner]));
    out.assert_code(0);
    assert!(out.stdout.contains("inner-exit=0"), "{out}");
    assert!(
        out.stderr
            .contains("a PID namespace of its own was not made (the enclosing sluice sandbox"),
        "{out}"
    );
    let pids: Vec<u32> = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pids:"))
        .unwrap_or("")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        pids.contains(&1) && pids.len() < 15,
        "the outer namespace's pids: {pids:?}\n{out}"
    );
    assert!(out.stdout.contains("required-exit=125"), "{out}");
    assert!(out.stderr.contains("pid_namespace: not enforced"), "{out}");
}
