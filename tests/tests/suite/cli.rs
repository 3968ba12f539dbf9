//! The `sluice` command line: exit statuses, policy errors, the enforcement
//! report and the `policy` subcommands.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use sluice_tests::{execute, expected_landlock_abi, install_script, sluice_bin, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

const LAYERS: [&str; 8] = [
    "filesystem",
    "network",
    "scopes",
    "syscalls",
    "namespaces",
    "no_new_privs",
    "capabilities",
    "limits",
];

fn run(fx: &Fixture, sluice_args: &[&str], program: &[&str]) -> Outcome {
    execute(fx.sluice_command(sluice_args, program))
}

fn sluice(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(args).stdin(Stdio::null());
    execute(cmd)
}

#[test]
fn missing_command_exits_127() {
    let fx = Fixture::new(PROBE);
    run(&fx, &[], &["/usr/bin/true"]).assert_code(0);
    run(&fx, &[], &["/nonexistent/sluice-no-such-command"]).assert_code(127);
    run(&fx, &[], &["sluice-no-such-command"]).assert_code(127);
}

#[test]
fn non_executable_file_exits_126() {
    let fx = Fixture::new(PROBE);
    let script = fx.ws("script.sh");
    install_script(Path::new(&script), "#!/bin/sh\nexit 0\n");
    run(&fx, &[], &[&script]).assert_code(0);

    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    run(&fx, &[], &[&script]).assert_code(126);
    run(&fx, &[], &[&fx.ws("src")]).assert_code(126);
}

#[test]
fn the_programs_exit_status_passes_through() {
    let fx = Fixture::new(PROBE);
    for code in [0, 1, 7, 125, 126, 127, 255] {
        let script = format!("exit {code}");
        run(&fx, &[], &["/bin/sh", "-c", &script]).assert_code(code);
    }
}

#[test]
fn death_by_signal_exits_128_plus_n() {
    let fx = Fixture::new(PROBE);
    run(&fx, &[], &["/bin/sh", "-c", "kill -9 $$"]).assert_code(137);
    run(&fx, &[], &["/bin/sh", "-c", "kill -15 $$"]).assert_code(143);
}

#[test]
fn standard_streams_pass_through() {
    let fx = Fixture::new(PROBE);
    let out = run(
        &fx,
        &[],
        &["/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"],
    );
    out.assert_code(0);
    assert!(out.stdout.contains("to-stdout"), "{out}");
    assert!(out.stderr.contains("to-stderr"), "{out}");
}

#[test]
fn workspace_defaults_to_the_current_directory() {
    let fx = Fixture::new(PROBE);
    let mut cmd = Command::new(sluice_bin());
    cmd.args(["run", "--"])
        .arg(&fx.probe)
        .args(["write", &fx.ws("from-cwd.txt")])
        .current_dir(&fx.ws_dir)
        .env("HOME", &fx.home_dir)
        .stdin(Stdio::null());
    execute(cmd).assert_ok();
    assert_eq!(fs::read_to_string(fx.ws("from-cwd.txt")).unwrap(), "pwned");
}

#[test]
fn bad_policy_file_exits_125_naming_file_and_line() {
    let fx = Fixture::new(PROBE);
    let good = fx.write_policy("good.toml", "extends = [\"default\"]\n");
    run(&fx, &["--policy", &good], &["/usr/bin/true"]).assert_code(0);
    sluice(&["policy", "check", &good]).assert_code(0);

    let bad = fx.write_policy(
        "bad.toml",
        "extends = [\"default\"]\n\n[filesystem]\nwirte = [\"/tmp\"]\n",
    );
    for out in [
        run(&fx, &["--policy", &bad], &["/usr/bin/true"]),
        sluice(&["policy", "check", &bad]),
    ] {
        out.assert_code(125);
        assert!(out.stderr.contains("bad.toml"), "file not named\n{out}");
        assert!(out.stderr.contains("line 4"), "line not named\n{out}");
        assert!(out.stderr.contains("wirte"), "key not named\n{out}");
    }

    let missing = fx.root().join("no-such-policy.toml");
    run(
        &fx,
        &["--policy", missing.to_str().unwrap()],
        &["/usr/bin/true"],
    )
    .assert_code(125);
}

#[test]
fn verbose_report_shows_every_layer_enforced() {
    let fx = Fixture::new(PROBE);
    let out = run(&fx, &["-v"], &["/usr/bin/true"]);
    out.assert_code(0);
    for layer in LAYERS {
        let prefix = format!("sluice: {layer}: ");
        let line = out
            .stderr
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no report line for {layer}\n{out}"));
        assert!(
            line[prefix.len()..].starts_with("enforced"),
            "{layer} is not enforced: {line}\n{out}"
        );
    }
    // Pinned, never skipped: a different ABI must fail the run.
    let abi = format!("landlock ABI {}", expected_landlock_abi());
    let fs_line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("sluice: filesystem: "))
        .unwrap();
    assert!(
        fs_line.contains(&format!("{abi})")) || fs_line.ends_with(&abi),
        "expected {abi} (set SLUICE_EXPECT_LANDLOCK_ABI to change): {fs_line}"
    );
}

#[test]
fn policy_list_shows_the_builtins() {
    let out = sluice(&["policy", "list"]);
    out.assert_code(0);
    let names: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for builtin in [
        "default",
        "macos",
        "readonly",
        "agent",
        "claude-code",
        "codex",
        "aider",
    ] {
        assert!(names.contains(&builtin), "{builtin} not listed\n{out}");
    }
}

#[test]
fn policy_show_prints_toml() {
    let out = sluice(&["policy", "show", "default"]);
    out.assert_code(0);
    let table: toml::Table = out
        .stdout
        .parse()
        .unwrap_or_else(|e| panic!("`policy show default` is not TOML: {e}\n{out}"));
    for section in ["filesystem", "network", "limits"] {
        assert!(table.contains_key(section), "no [{section}]\n{out}");
    }

    let unknown = sluice(&["policy", "show", "no-such-builtin"]);
    assert_ne!(unknown.code(), 0, "{unknown}");
}

/// Log lines written to a pipe or a file carry no colour codes (they did:
/// `ESC [2m` around every timestamp). Control: the log lines are there.
#[test]
fn log_lines_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(["policy", "check", "default"])
        .env("SLUICE_LOG", "debug")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    let out = execute(cmd);
    out.assert_code(0);
    assert!(
        out.stderr.contains(" DEBUG "),
        "no log line to check\n{out}"
    );
    assert!(
        !out.stderr.contains('\u{1b}'),
        "colour codes in a pipe\n{out}"
    );

    // Control: on a terminal the same lines are coloured, so the check
    // above can tell.
    let mut cmd = Command::new(sluice_bin());
    cmd.args(["policy", "check", "default"])
        .env("SLUICE_LOG", "debug")
        .env_remove("NO_COLOR");
    let mut term = sluice_tests::pty::Terminal::spawn(cmd, 24, 200);
    term.expect("policy 'default': ok");
    let transcript = term.transcript();
    assert_eq!(term.wait().code, 0);
    assert!(
        transcript.contains("\u{1b}["),
        "no colour on a terminal\n{transcript}"
    );
}

/// `deny = ["$WORKSPACE/**/secret.txt"]` passed `policy check` and denied
/// nothing (it was taken as a literal path that does not exist). A `deny`
/// entry with `**` is now a pattern that holds at any depth (see
/// `escape_secrets.rs`); in `read_only`, where `**` is not expanded, both
/// `policy check` and `run` refuse it naming file, line and key. Control:
/// the same file with the path written out passes and holds.
#[test]
fn a_glob_the_filesystem_lists_do_not_expand_is_refused() {
    let fx = Fixture::new(PROBE);
    fs::create_dir_all(fx.ws("config")).unwrap();
    fs::write(fx.ws("config/secret.txt"), "SECRET-nested\n").unwrap();
    let policy = |list: &str, path: &str| {
        format!("extends = [\"default\"]\n\n[filesystem]\n{list} = [\"{path}\"]\n")
    };
    let bad = fx.write_policy(
        "glob.toml",
        &policy("read_only", "$WORKSPACE/**/secret.txt"),
    );
    for out in [
        sluice(&["policy", "check", "--workspace", &fx.ws(""), &bad]),
        run(&fx, &["--policy", &bad], &["/usr/bin/true"]),
    ] {
        out.assert_code(125);
        for says in [
            "glob.toml",
            "line 4",
            "filesystem.read_only",
            "not enforced as written",
        ] {
            assert!(out.stderr.contains(says), "does not say {says:?}\n{out}");
        }
    }
    for (name, path) in [
        ("exact.toml", "$WORKSPACE/config/secret.txt"),
        ("pattern.toml", "$WORKSPACE/**/secret.txt"),
    ] {
        let good = fx.write_policy(name, &policy("deny", path));
        sluice(&["policy", "check", "--workspace", &fx.ws(""), &good]).assert_code(0);
        let out = fx.sluice(&["--policy", &good], &["read", &fx.ws("config/secret.txt")]);
        out.assert_blocked();
    }
}

/// `extends = ["/dev/zero"]` made `policy check` read until memory ran out.
/// Control: extending a regular file works (the good policy above).
#[test]
fn a_policy_that_extends_a_device_is_refused_at_once() {
    let fx = Fixture::new(PROBE);
    let bad = fx.write_policy("zero.toml", "extends = [\"/dev/zero\"]\n");
    let out = sluice(&["policy", "check", &bad]);
    out.assert_code(125);
    assert!(out.stderr.contains("line 1, key 'extends'"), "{out}");
    assert!(out.stderr.contains("not a regular file"), "{out}");
    let good = fx.write_policy("base.toml", "extends = [\"readonly\"]\n");
    let child = fx.write_policy("child.toml", &format!("extends = [\"{good}\"]\n"));
    sluice(&["policy", "check", &child]).assert_code(0);
}

/// `sluice run -v` where something outside sluice refuses new user
/// namespaces (here: `user.max_user_namespaces = 0` in a user namespace of
/// the test's own). `-v` printed "namespaces: enforced" before the fork and
/// the launch then failed; the report is now printed after the child's
/// steps, so it says what held. Required, the launch fails (125); best
/// effort, it runs and each `deny` and `read_only` entry it could not
/// apply is named. Control: `verbose_report_shows_every_layer_enforced`.
#[test]
fn verbose_says_what_held_when_namespaces_are_refused_from_outside() {
    let fx = Fixture::new(PROBE);
    let lenient = fx.write_policy(
        "lenient.toml",
        "extends = [\"default\"]\n\n[layers]\nbest_effort = [\"namespaces\", \"pid_namespace\"]\n",
    );
    let no_userns = |policy: &str| {
        let mut cmd = Command::new("unshare");
        cmd.args(["-Ur", "sh", "-c"])
            .arg("echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"")
            .arg("sh")
            .arg(sluice_bin())
            .args([
                "run",
                "-v",
                "--policy",
                policy,
                "--workspace",
                &fx.ws(""),
                "--",
            ])
            .args(["/usr/bin/true"])
            .current_dir(&fx.ws_dir)
            .env("HOME", &fx.home_dir)
            .env("XDG_STATE_HOME", fx.state_dir())
            .env("XDG_CONFIG_HOME", fx.config_home())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        execute(cmd)
    };
    let namespaces = |out: &Outcome| {
        out.stderr
            .lines()
            .find_map(|l| l.strip_prefix("sluice: namespaces: "))
            .unwrap_or_else(|| panic!("no namespaces line\n{out}"))
            .to_owned()
    };
    // Required: the PID namespace, made with the user namespace when the
    // child is cloned, is the first to fail, before any step of the child.
    let out = no_userns("default");
    out.assert_code(125);
    assert!(out.stderr.contains("pid_namespace: not enforced"), "{out}");

    let out = no_userns(&lenient);
    out.assert_code(0);
    let line = namespaces(&out);
    assert!(line.starts_with("not enforced"), "{out}");
    let env = fx.ws(".env");
    assert!(line.contains(&format!("deny {env}")), "{out}");
    assert!(
        out.stderr
            .contains(&format!("sluice: warning: deny {env} (")),
        "{out}"
    );
    // Root's process limit would have been the PID namespace's pid_max;
    // without one it is the session cgroup's after all.
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        assert!(
            out.stderr.contains(
                "sluice: limits: enforced (open files 4096, processes 4096 (cgroup pids))"
            ),
            "{out}"
        );
    }
}
