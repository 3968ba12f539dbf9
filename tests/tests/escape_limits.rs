//! Resource exhaustion held by the policy's limits: a fork bomb by `processes`
//! (also after trying to leave the session's cgroup), a memory bomb by
//! `address_space`. The caps stay small (200 processes, 2 GiB) to be gentle on a
//! small CI machine.

use sluice_tests::Fixture;

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
    const TWO_GIB: &str = "2147483648";
    let fx = Fixture::new(PROBE);
    let policy = fx.write_policy(
        "mem.toml",
        "extends = [\"default\"]\n\n[limits]\naddress_space = \"1GiB\"\n",
    );
    fx.direct(&["mem-bomb", TWO_GIB]).assert_ok();

    let out = fx.sluice(&["--policy", &policy], &["mem-bomb", TWO_GIB]);
    out.assert_blocked();
    assert!(out.status_line().contains("ENOMEM"), "{out}");
}
