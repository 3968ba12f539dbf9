//! Argument handling of the `sluice` binary. (The sandbox itself is attacked
//! in the workspace's `tests/` crate.) Having an integration test here also
//! makes `cargo test --workspace` build the `sluice` binary those tests run.

use std::process::Command;

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

#[test]
fn usage_errors_exit_125_like_env() {
    let out = sluice().args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let out = sluice().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn help_and_version_exit_0() {
    assert!(sluice().arg("--version").status().unwrap().success());
    let out = sluice().args(["run", "--help"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--allow-write"));
}

#[test]
fn bad_net_flag_is_a_clear_error() {
    let out = sluice()
        .args(["run", "--net", "udp:53", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--net 'udp:53'"), "{err}");
}
