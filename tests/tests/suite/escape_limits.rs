//! Resource exhaustion held by the policy's limits: a fork bomb by `processes`
//! (also after trying to leave the session's cgroup), a memory bomb by
//! `address_space`. The caps stay small (200 processes, 2 GiB) to be gentle on a
//! small CI machine.

use sluice_tests::{execute, Fixture};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

#[test]
fn fork_bomb_is_held_by_the_process_limit() {
    let fx = Fixture::new(PROBE);
    let policy = fx.write_policy(
        "procs.toml",
        "extends = [\"default\"]\n\n[limits]\nprocesses = 64\n",
    );
    let control = fx.direct(&["fork-bomb", "200"]);
    control.assert_ok();

    let out = fx.sluice(&["--policy", &policy], &["fork-bomb", "200"]);
    out.assert_blocked();
    let forked: u64 = out
        .status_line()
        .strip_prefix("BLOCKED forked ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected fork-bomb report\n{out}"));
    assert!(forked < 64, "{forked} children under a limit of 64\n{out}");
}

/// Root's limit of at least 300 processes is the `pid_max` of the sandbox's
/// PID namespace, not a cgroup (`cgroup::process_limit`): the bomb is held
/// there too, and no session cgroup is made. Control: the same bomb outside.
#[test]
fn fork_bomb_is_held_by_the_pid_namespace_limit() {
    let fx = Fixture::new(PROBE);
    let policy = fx.write_policy(
        "procs.toml",
        "extends = [\"default\"]\n\n[limits]\nprocesses = 400\n",
    );
    fx.direct(&["fork-bomb", "600"]).assert_ok();

    let out = fx.sluice(&["--policy", &policy, "-v"], &["fork-bomb", "600"]);
    out.assert_blocked();
    assert!(forked(&out) < 400, "over a limit of 400\n{out}");
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } == 0 {
        assert!(
            out.stderr
                .contains("processes 400 (the PID namespace's pid_max)"),
            "{out}"
        );
    }
}

/// The program cannot raise the PID namespace's `pid_max` (it holds no
/// capability there, and its `/proc` is read-only), so the bomb is held
/// after the attempt. Control: a process holding CAP_SYS_ADMIN in a PID
/// namespace of its own, outside sluice, sets it.
#[test]
fn the_pid_namespace_limit_cannot_be_raised_from_inside() {
    const PID_MAX: &str = "/proc/sys/kernel/pid_max";
    let fx = Fixture::new(PROBE);
    let policy = fx.write_policy(
        "procs.toml",
        "extends = [\"default\"]\n\n[limits]\nprocesses = 400\n",
    );
    let mut control = std::process::Command::new("unshare");
    control
        .args(["--user", "--map-root-user", "--pid", "--fork", "--"])
        .arg(&fx.probe)
        .args(["set", PID_MAX, "100000"])
        .stdin(std::process::Stdio::null());
    execute(control).assert_ok();

    // In one session: the attempt, then the bomb.
    let script = format!("\"$0\" set {PID_MAX} 4194304; exec \"$0\" fork-bomb 600");
    let out = execute(fx.sluice_command(
        &["--policy", &policy],
        &["/bin/sh", "-c", &script, &fx.probe_path()],
    ));
    assert!(
        out.stdout
            .contains(&format!("BLOCKED open {PID_MAX} for writing")),
        "{out}"
    );
    assert!(forked(&out) < 400, "over a limit of 400\n{out}");
}

/// Unprivileged, the limit is RLIMIT_NPROC, counted in the sandbox's own
/// user namespace; no cgroup. Control: the same bomb outside, as the same
/// user.
#[test]
fn fork_bomb_is_held_by_the_process_limit_when_unprivileged() {
    const NOBODY: u32 = 65534;
    let fx = Fixture::new(PROBE);
    let tmp = fx.root().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::os::unix::fs::chown(&tmp, Some(NOBODY), Some(NOBODY)).unwrap();
    let policy = fx.write_policy(
        "procs.toml",
        "extends = [\"default\"]\n\n[limits]\nprocesses = 64\n",
    );
    fx.give_to(NOBODY, NOBODY);
    let as_nobody = |inside: bool| {
        let mut cmd = sluice_tests::setpriv_nobody();
        if inside {
            cmd.arg(sluice_tests::sluice_bin())
                .args(["run", "-v", "--policy", &policy, "--"]);
        }
        cmd.arg(&fx.probe)
            .args(["fork-bomb", "200"])
            .current_dir(&fx.ws_dir)
            .env("HOME", &fx.home_dir)
            .env("TMPDIR", &tmp)
            .env("XDG_STATE_HOME", fx.home_dir.join(".local/state"))
            .env("XDG_CONFIG_HOME", fx.home_dir.join(".config"))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        execute(cmd)
    };
    as_nobody(false).assert_ok();
    let out = as_nobody(true);
    out.assert_blocked();
    assert!(forked(&out) < 64, "over a limit of 64\n{out}");
    assert!(out.stderr.contains("processes 64 (rlimit)"), "{out}");
}

fn forked(out: &sluice_tests::Outcome) -> u64 {
    out.status_line()
        .strip_prefix("BLOCKED forked ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected fork-bomb report\n{out}"))
}

#[test]
fn the_process_limit_cannot_be_escaped_through_the_cgroup_tree() {
    let fx = Fixture::new(PROBE);
    let policy = fx.write_policy(
        "procs.toml",
        "extends = [\"default\"]\n\n[limits]\nprocesses = 64\n",
    );
    // Control: outside, the probe can move itself to the hierarchy's root.
    fx.direct(&["cgroup-escape"]).assert_ok();

    let out = fx.sluice(
        &["--policy", &policy],
        &["cgroup-escape", "+", "fork-bomb", "200"],
    );
    out.assert_blocked();
    assert!(
        !out.stdout.contains("OK moved"),
        "the program left the session's cgroup\n{out}"
    );
}

#[test]
fn memory_bomb_is_held_by_the_address_space_limit() {
    // Twice the limit, every page touched: the bomb's cost is its size, so
    // both are kept small (a debug probe maps a few dozen MiB of its own).
    const BOMB: &str = "536870912";
    let fx = Fixture::new(PROBE);
    let policy = fx.write_policy(
        "mem.toml",
        "extends = [\"default\"]\n\n[limits]\naddress_space = \"256MiB\"\n",
    );
    fx.direct(&["mem-bomb", BOMB]).assert_ok();

    let out = fx.sluice(&["--policy", &policy], &["mem-bomb", BOMB]);
    out.assert_blocked();
    assert!(out.status_line().contains("ENOMEM"), "{out}");
}
