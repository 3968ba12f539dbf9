//! `sluice run` inside `sluice run`: each `nested` mode, detection that does
//! not depend on `SLUICE_SESSION`, and a forged `SLUICE_SESSION` outside any
//! sandbox that changes nothing.
//!
//! The outer sandbox is always the built-in `default` (the workspace is
//! writable); the inner one is `readonly` (nothing is), so whether a write
//! to the workspace succeeds tells which policies hold.

use std::fs;
use std::path::Path;

use sluice_tests::{execute, sluice_bin, Fixture, Outcome, OUTSIDE_SECRET};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// sluice itself said `text` (on stderr).
#[track_caller]
fn stderr_says<'a>(out: &'a Outcome, text: &str) -> &'a Outcome {
    assert!(
        out.stderr.contains(text),
        "expected stderr to say {text:?}\n{out}"
    );
    out
}

/// `sluice run OUTER -- [env -u SLUICE_SESSION] sluice run INNER -- probe ACTION`.
fn nested(
    fx: &Fixture,
    outer: &[&str],
    clear_env: bool,
    inner: &[&str],
    action: &[&str],
) -> Outcome {
    let sluice = sluice_bin();
    let probe = fx.probe_path();
    let mut program: Vec<&str> = Vec::new();
    if clear_env {
        program.extend(["/usr/bin/env", "-u", "SLUICE_SESSION"]);
    }
    program.extend([sluice.to_str().unwrap(), "run"]);
    program.extend_from_slice(inner);
    program.extend(["--", &probe]);
    program.extend_from_slice(action);
    let program: Vec<String> = program.iter().map(|s| s.to_string()).collect();
    let program: Vec<&str> = program.iter().map(String::as_str).collect();
    execute(fx.sluice_command(outer, &program))
}

#[test]
fn stack_applies_the_inner_policy_on_top_of_the_outer_one() {
    let fx = Fixture::new(PROBE);
    // Controls: the outer policy alone lets the workspace be written, and
    // the inner one stacked still lets it be read.
    fx.sluice(&[], &["write", &fx.ws("outer-only.txt")])
        .assert_ok();
    let out = nested(
        &fx,
        &[],
        false,
        &["-v", "--nested", "stack", "--policy", "readonly"],
        &["read", &fx.ws("README.md")],
    );
    stderr_says(out.assert_ok(), "stacked inside sluice session");

    // The inner policy narrows...
    nested(
        &fx,
        &[],
        false,
        &["--nested", "stack", "--policy", "readonly"],
        &["write", &fx.ws("inner.txt")],
    )
    .assert_blocked();
    assert!(!Path::new(&fx.ws("inner.txt")).exists());
    // ...and cannot widen: an inner policy without the outer's deny of
    // `.env` still cannot read it.
    fs::write(fx.ws("wide.toml"), WIDE).unwrap();
    let wide = fx.ws("wide.toml");
    fx.sluice(&["--policy", &wide], &["read", &fx.ws(".env")])
        .assert_ok();
    nested(
        &fx,
        &[],
        false,
        &["--nested", "stack", "--policy", &wide],
        &["read", &fx.ws(".env")],
    )
    .assert_blocked();
}

/// `--transparent` inside another sluice cannot hold a seccomp listener
/// (the outer deny filter refuses it: one would let a program take its own
/// `connect` calls from the supervisor), so it refuses to launch and says
/// why. Control: the same inner run without `--transparent` works.
#[test]
fn transparent_inside_sluice_refuses_to_launch_and_says_why() {
    let fx = Fixture::new(PROBE);
    let read = ["read", &fx.ws("README.md")];
    nested(&fx, &[], false, &["--nested", "stack"], &read).assert_ok();
    let out = nested(
        &fx,
        &[],
        false,
        &["--nested", "stack", "--transparent"],
        &read,
    );
    assert_ne!(out.code(), 0, "{out}");
    assert!(!out.stdout.contains("OK"), "{out}");
    stderr_says(&out, "cannot run inside another sluice sandbox");
}

/// Only the workspace (readable, executable for the probe) and /usr, with
/// no deny rule.
const WIDE: &str = "[filesystem]\nexecute = [\"$WORKSPACE\", \"/usr\"]\n";

#[test]
fn stack_is_the_default_on_linux_and_says_what_it_could_not_apply() {
    let fx = Fixture::new(PROBE);
    let out = nested(
        &fx,
        &[],
        false,
        &["-v", "--policy", "readonly"],
        &["write", &fx.ws("inner.txt")],
    );
    out.assert_blocked();
    stderr_says(&out, "stacked inside sluice session");
    stderr_says(&out, "the enclosing sluice sandbox forbids it");
    assert!(!Path::new(&fx.ws("inner.txt")).exists());
}

/// Stacked, the inner policy's protective mounts cannot be made: each
/// `deny` and `read_only` entry left without effect is named, and `-v`
/// prints the report after the child's steps, so the namespaces layer shows
/// as not enforced (it said "enforced" when printed before the fork).
/// Control: the same policy unstacked names none and reports it enforced.
#[test]
fn stacked_says_which_deny_and_read_only_entries_it_could_not_apply() {
    let fx = Fixture::new(PROBE);
    let marker = ["marker", "ran"];
    let out = nested(&fx, &[], false, &["-v", "--policy", "default"], &marker);
    out.assert_ok();
    let env = fx.ws(".env");
    stderr_says(
        &out,
        &format!("deny {env} (this sandbox lets the program read and write it) is not applied"),
    );
    stderr_says(&out, &format!("read_only {} (", fx.ws(".git/hooks")));
    let ns = namespaces_line(&out);
    assert!(ns.starts_with("not enforced"), "{ns}\n{out}");
    assert!(ns.contains(&format!("deny {env}")), "{ns}\n{out}");
    // The report comes after the child's warnings, not before the fork.
    let report_at = out.stderr.find("sluice: namespaces: ").unwrap();
    let warning_at = out.stderr.find("is not applied").unwrap();
    assert!(warning_at < report_at, "{out}");

    let out = fx.sluice(&["-v", "--policy", "default"], &marker);
    out.assert_ok();
    assert!(!out.stderr.contains("is not applied"), "{out}");
    assert!(namespaces_line(&out).starts_with("enforced"), "{out}");
}

/// The same as an unprivileged user (no capabilities to lose, the user
/// namespace is what fails): each entry is named too.
#[test]
fn stacked_as_an_unprivileged_user_names_what_it_could_not_apply() {
    let fx = Fixture::new(PROBE);
    // The session directories go where nobody can write, whatever TMPDIR
    // the tests run with.
    std::fs::create_dir(fx.home_dir.join("tmp")).unwrap();
    fx.give_to(65534, 65534);
    let sluice = sluice_bin();
    let sluice = sluice.to_str().unwrap();
    let probe = fx.probe_path();
    let ws = fx.ws("");
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args([sluice, "run", "--workspace", &ws, "--", sluice, "run", "-v"])
        .args(["--policy", "default", "--", &probe, "marker", "ran"])
        .current_dir(&fx.ws_dir)
        .env("HOME", &fx.home_dir)
        .env("XDG_STATE_HOME", fx.home_dir.join("state"))
        .env("XDG_CONFIG_HOME", fx.home_dir.join("config"))
        .env("TMPDIR", fx.home_dir.join("tmp"))
        .stdin(std::process::Stdio::null());
    let out = sluice_tests::execute(cmd);
    out.assert_ok();
    let env = fx.ws(".env");
    stderr_says(
        &out,
        &format!("deny {env} (this sandbox lets the program read and write it) is not applied"),
    );
    assert!(namespaces_line(&out).starts_with("not enforced"), "{out}");
}

/// What follows `sluice: namespaces: ` in the last report on stderr.
fn namespaces_line(out: &Outcome) -> &str {
    let prefix = "sluice: namespaces: ";
    let line = out.stderr.lines().rfind(|l| l.starts_with(prefix));
    &line.unwrap_or_else(|| panic!("no namespaces line\n{out}"))[prefix.len()..]
}

#[test]
fn stack_refuses_when_the_policy_requires_what_the_outer_sandbox_forbids() {
    let fx = Fixture::new(PROBE);
    let strict = "extends = [\"readonly\"]\n[layers]\nnested_best_effort = []\n";
    fs::write(fx.ws("strict.toml"), strict).unwrap();
    let policy = fx.ws("strict.toml");
    let out = nested(&fx, &[], false, &["--policy", &policy], &["marker", "ran"]);
    stderr_says(out.assert_code(125), "refusing to launch");
    stderr_says(&out, "nested_best_effort");
    assert!(!out.stdout.contains("marker ran"), "{out}");
    // Control: the same policy outside any sandbox launches.
    fx.sluice(&["--policy", &policy], &["marker", "ran"])
        .assert_ok();
}

#[test]
fn skip_runs_the_command_under_the_outer_sandbox_only() {
    let fx = Fixture::new(PROBE);
    // The inner readonly policy is not applied...
    nested(
        &fx,
        &[],
        false,
        &["--nested", "skip", "--policy", "readonly"],
        &["write", &fx.ws("skipped.txt")],
    )
    .assert_ok();
    assert!(Path::new(&fx.ws("skipped.txt")).exists());
    // ...but the outer one still holds.
    nested(
        &fx,
        &[],
        false,
        &["--nested", "skip", "--policy", "readonly"],
        &["read", &fx.outside("secret.txt")],
    )
    .assert_blocked()
    .assert_no_secret();
    nested(
        &fx,
        &[],
        false,
        &["--nested", "skip"],
        &["write", &fx.outside("pwned")],
    )
    .assert_blocked();
    assert!(!Path::new(&fx.outside("pwned")).exists());
}

#[test]
fn skip_leaves_the_outer_broker_in_reach() {
    let fx = Fixture::new(PROBE);
    // The outer session answers `ask` rules with allow; a request from the
    // skipped command reaches it and gets the file.
    let out = nested(
        &fx,
        &["--approve", "allow"],
        false,
        &["--nested", "skip"],
        &["broker-read", &fx.outside("secret.txt")],
    );
    assert!(
        out.code() == 0 && out.stdout.contains(OUTSIDE_SECRET.trim()),
        "{out}"
    );
    // Control: stacked, the request goes to the inner broker, which runs
    // inside the outer sandbox: the file does not exist in its view.
    let out = nested(
        &fx,
        &["--approve", "allow"],
        false,
        &["--nested", "stack"],
        &["broker-read", &fx.outside("secret.txt")],
    );
    out.assert_not_found().assert_no_secret();
}

#[test]
fn warn_skips_with_a_one_line_notice() {
    let fx = Fixture::new(PROBE);
    let out = nested(
        &fx,
        &[],
        false,
        &["--nested", "warn", "--policy", "readonly"],
        &["write", &fx.ws("warned.txt")],
    );
    out.assert_ok();
    let notices: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("nested = \"warn\""))
        .collect();
    assert_eq!(notices.len(), 1, "{out}");
    assert!(notices[0].contains("under the outer sandbox only"), "{out}");
    // Control: skip says nothing.
    let quiet = nested(&fx, &[], false, &["--nested", "skip"], &["marker", "quiet"]);
    quiet.assert_ok();
    assert!(!quiet.stderr.contains("nested"), "{quiet}");
}

#[test]
fn error_refuses_to_start_inside_a_sandbox() {
    let fx = Fixture::new(PROBE);
    let out = nested(&fx, &[], false, &["--nested", "error"], &["marker", "ran"]);
    stderr_says(out.assert_code(125), "already inside sluice session");
    assert!(!out.stdout.contains("marker ran"), "{out}");
    // Control: outside any sandbox the same flag launches.
    fx.sluice(&["--nested", "error"], &["marker", "ran"])
        .assert_ok();
}

#[test]
fn the_policy_key_sets_the_mode() {
    let fx = Fixture::new(PROBE);
    fs::write(
        fx.ws("refuse.toml"),
        "nested = \"error\"\nextends = [\"default\"]\n",
    )
    .unwrap();
    let policy = fx.ws("refuse.toml");
    let out = nested(&fx, &[], false, &["--policy", &policy], &["marker", "ran"]);
    stderr_says(out.assert_code(125), "the policy says nested = \"error\"");
    // The flag overrides the policy.
    nested(
        &fx,
        &[],
        false,
        &["--policy", &policy, "--nested", "skip"],
        &["marker", "ran"],
    )
    .assert_ok();
}

#[test]
fn detection_holds_without_sluice_session() {
    let fx = Fixture::new(PROBE);
    let out = nested(&fx, &[], true, &["--nested", "error"], &["marker", "ran"]);
    stderr_says(out.assert_code(125), "SLUICE_SESSION was removed");
    assert!(!out.stdout.contains("marker ran"), "{out}");
    // Skip still skips: the inner readonly policy is not applied.
    nested(
        &fx,
        &[],
        true,
        &["--nested", "skip", "--policy", "readonly"],
        &["write", &fx.ws("cleared.txt")],
    )
    .assert_ok();
    // And stack still knows it is stacked.
    let out = nested(
        &fx,
        &[],
        true,
        &["-v", "--policy", "readonly"],
        &["write", &fx.ws("stacked.txt")],
    );
    stderr_says(out.assert_blocked(), "stacked inside a sluice sandbox");
}

#[test]
fn a_forged_session_variable_outside_any_sandbox_changes_nothing() {
    let fx = Fixture::new(PROBE);
    fx.direct(&["read", &fx.outside("secret.txt")]).assert_ok();
    let mut cmd = fx.sluice_command(
        &["--nested", "skip"],
        &[&fx.probe_path(), "read", &fx.outside("secret.txt")],
    );
    cmd.env("SLUICE_SESSION", "forged");
    let out = execute(cmd);
    stderr_says(out.assert_blocked(), "not inside a sluice sandbox");
}
