//! What broke for a new user (issue 16): mistyped options, `--workspace`,
//! relative and symlinked grants, `--pass-env` and `--env`.

use std::fs;
use std::path::Path;

use sluice_tests::{execute, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// `sluice ARGS...` with the fixture's environment, started in `cwd`.
fn sluice_in(fx: &Fixture, cwd: &Path, args: &[&str]) -> Outcome {
    let mut cmd = fx.sluice_cli_command(args);
    cmd.current_dir(cwd);
    execute(cmd)
}

#[test]
fn a_mistyped_option_is_an_error_not_the_command() {
    let fx = Fixture::new(PROBE);
    let ws = fx.ws_dir.to_str().unwrap();
    let marker = fx.ws("ran");
    // Attack: before the command, an unknown option must never be executed
    // (it was run as the command: exit 127), nor anything after it.
    let out = sluice_in(
        &fx,
        &fx.ws_dir,
        &[
            "run",
            "--workspace",
            ws,
            "--polcy",
            "readonly",
            "/usr/bin/touch",
            &marker,
        ],
    );
    out.assert_code(125);
    assert!(out.stderr.contains("--polcy"), "{out}");
    assert!(out.stderr.contains("'--policy'"), "no suggestion\n{out}");
    assert!(!Path::new(&marker).exists(), "the command ran\n{out}");

    // Control: the right spelling runs, and options after the command are
    // the command's own, with or without `--`.
    let out = sluice_in(
        &fx,
        &fx.ws_dir,
        &[
            "run",
            "--policy",
            "readonly",
            "/usr/bin/touch",
            "--no-create",
            &marker,
        ],
    );
    out.assert_code(0);
    let out = sluice_in(&fx, &fx.ws_dir, &["run", "/bin/echo", "-n", "--polcy"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "--polcy", "{out}");
    let out = sluice_in(&fx, &fx.ws_dir, &["run", "--", "/bin/echo", "-n", "x"]);
    assert_eq!(out.stdout, "x", "{out}");
}

#[test]
fn workspace_is_where_the_program_starts() {
    let fx = Fixture::new(PROBE);
    let ws = fx.ws_dir.to_str().unwrap();
    // Started elsewhere (the fixture's root), `--workspace` decides.
    let out = sluice_in(
        &fx,
        fx.root(),
        &["run", "--workspace", ws, "--", "/bin/pwd"],
    );
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), ws, "{out}");
    // Relative, from the current directory.
    let out = sluice_in(
        &fx,
        &fx.outside_dir,
        &["run", "--workspace", "../ws", "--", "/bin/pwd"],
    );
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), ws, "{out}");
    // The README's example: a relative make-like step in the workspace.
    let out = sluice_in(
        &fx,
        fx.root(),
        &["run", "--workspace", ws, "--", "/bin/cat", "README.md"],
    );
    out.assert_code(0);
    // Control: without --workspace the program starts where sluice did.
    let src = fx.ws_dir.join("src");
    let out = sluice_in(&fx, &src, &["run", "--", "/bin/pwd"]);
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), src.to_str().unwrap(), "{out}");
}

#[test]
fn relative_grants_are_taken_from_the_current_directory() {
    let fx = Fixture::new(PROBE);
    let ws = fx.ws_dir.to_str().unwrap();
    let secret = fx.outside("secret.txt");
    // Attack/control pair: without the grant the file outside is refused...
    let out = sluice_in(
        &fx,
        &fx.outside_dir,
        &["run", "--workspace", ws, "--", "/bin/cat", &secret],
    );
    assert_ne!(out.code(), 0, "read outside without a grant\n{out}");
    // ... with `./secret.txt` and `.` (relative to where sluice started) it is read.
    for grant in ["./secret.txt", ".", "../outside"] {
        let out = sluice_in(
            &fx,
            &fx.outside_dir,
            &[
                "run",
                "--workspace",
                ws,
                "--allow-read",
                grant,
                "--",
                "/bin/cat",
                &secret,
            ],
        );
        out.assert_code(0);
        assert!(out.stdout.contains("SECRET"), "{grant}\n{out}");
    }
    // --allow-write too: the grant covers writing, and only that tree.
    let written = fx.outside("written.txt");
    let script = format!("echo hi > {written}");
    let out = sluice_in(
        &fx,
        &fx.outside_dir,
        &[
            "run",
            "--workspace",
            ws,
            "--allow-write",
            ".",
            "--",
            "/bin/sh",
            "-c",
            &script,
        ],
    );
    out.assert_code(0);
    assert_eq!(fs::read_to_string(&written).unwrap(), "hi\n");
    // A relative path that does not exist is still refused, naming it.
    let out = sluice_in(
        &fx,
        &fx.outside_dir,
        &["run", "--allow-read", "./no-such", "--", "/usr/bin/true"],
    );
    out.assert_code(125);
    assert!(out.stderr.contains("no-such"), "{out}");
}

#[test]
fn pass_env_and_env_add_variables() {
    let fx = Fixture::new(PROBE);
    let script = "echo \"a=$NU_TOKEN_A b=$NU_TOKEN_B other=$NU_OTHER set=$NU_SET\"";
    let command = |extra: &[&str]| {
        let ws = fx.ws_dir.to_str().unwrap();
        let mut args = vec!["run", "--workspace", ws];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
        let mut cmd = fx.sluice_cli_command(&args);
        cmd.env("NU_TOKEN_A", "1")
            .env("NU_TOKEN_B", "2")
            .env("NU_OTHER", "3");
        execute(cmd)
    };
    // Control: the default policy passes none of them.
    let out = command(&[]);
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), "a= b= other= set=", "{out}");
    // A glob passes what it matches and nothing else; --env sets.
    let out = command(&["--pass-env", "NU_TOKEN_*", "--env", "NU_SET=x=y"]);
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), "a=1 b=2 other= set=x=y", "{out}");
    // A plain name, repeated.
    let out = command(&["--pass-env", "NU_TOKEN_A", "--pass-env", "NU_OTHER"]);
    assert_eq!(out.stdout.trim(), "a=1 b= other=3 set=", "{out}");
    // --env wins over a passed value.
    let out = command(&["--pass-env", "NU_*", "--env", "NU_OTHER=mine"]);
    assert_eq!(out.stdout.trim(), "a=1 b=2 other=mine set=", "{out}");
    // Malformed input is refused, never ignored.
    for bad in [
        &["--env", "NU_SET"][..],
        &["--env", "=x"],
        &["--env", "TMPDIR=/tmp"],
        &["--env", "SLUICE_BROKER_FD=0"],
        &["--pass-env", "NU_[A"],
    ] {
        let out = command(bad);
        out.assert_code(125);
        assert!(out.stderr.contains(bad[0]), "{bad:?}\n{out}");
        assert!(!out.stdout.contains("a="), "ran\n{out}");
    }
}

#[test]
fn a_grant_named_through_a_symlink_works_by_that_name() {
    let fx = Fixture::new(PROBE);
    let ws = fx.ws_dir.to_str().unwrap();
    let alias = fx.root().join("alias");
    std::os::unix::fs::symlink(&fx.outside_dir, &alias).unwrap();
    let relative = fx.root().join("links/rel");
    fs::create_dir_all(relative.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("../outside", &relative).unwrap();
    let home_alias = fx.root().join("home-alias");
    std::os::unix::fs::symlink(&fx.home_dir, &home_alias).unwrap();
    let through = |link: &Path| link.join("secret.txt").to_str().unwrap().to_owned();
    for link in [&alias, &relative] {
        let grant = link.to_str().unwrap();
        let named = through(link);
        // `cat PATH` in a session granted `grant`.
        let cat = |path: &str| {
            let args = ["run", "--workspace", ws, "--allow-read", grant, "--"];
            sluice_in(&fx, &fx.ws_dir, &[&args[..], &["/bin/cat", path]].concat())
        };
        // Control: the real path works as before, and now the given name too.
        for path in [named.as_str(), &fx.outside("secret.txt")] {
            let out = cat(path);
            out.assert_code(0);
            assert!(out.stdout.contains("SECRET"), "{path}\n{out}");
        }
        // Attack: the link recreated in the view widens nothing: a link to
        // an ungranted tree still leads nowhere.
        let out = cat(home_alias.join("notes.txt").to_str().unwrap());
        assert_ne!(out.code(), 0, "{out}");
        assert!(!out.stdout.contains("SECRET"), "{out}");
    }
}

#[test]
fn create_makes_a_missing_directory_private_before_launch() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let fx = Fixture::new(PROBE);
    let policy = fx.write_policy(
        "create.toml",
        "extends = [\"default\"]\n[filesystem]\nwrite = [\n  \
         { path = \"~/.agent/session-env\", create = true },\n  \
         { path = \"~/.existing\", create = true },\n]\n",
    );
    let existing = fx.home_dir.join(".existing");
    fs::create_dir(&existing).unwrap();
    fs::set_permissions(&existing, fs::Permissions::from_mode(0o755)).unwrap();
    let made = fx.home_dir.join(".agent/session-env");
    let file = made.join("state");
    let script = format!("echo ok > {}", file.display());
    let out = execute(fx.sluice_command(&["--policy", &policy], &["/bin/sh", "-c", &script]));
    out.assert_code(0);
    assert_eq!(fs::read_to_string(&file).unwrap(), "ok\n");
    // SAFETY: geteuid has no preconditions.
    let us = unsafe { libc::geteuid() };
    for dir in [fx.home_dir.join(".agent"), made.clone()] {
        let meta = fs::metadata(&dir).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o700, "{}", dir.display());
        assert_eq!(meta.uid(), us, "{}", dir.display());
    }
    // Control: an existing directory is left as it is.
    let mode = fs::metadata(&existing).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o755);

    // Without create the same missing path is refused (125), as before.
    let plain = fx.write_policy(
        "plain.toml",
        "extends = [\"default\"]\n[filesystem]\nwrite = [\"~/.other\"]\n",
    );
    execute(fx.sluice_command(&["--policy", &plain], &["/usr/bin/true"])).assert_code(125);
}

#[test]
fn create_refuses_outside_home_and_through_symlinks() {
    let fx = Fixture::new(PROBE);
    // Outside ~, $WORKSPACE and $TMPDIR: refused naming file, line and key,
    // before anything is made.
    let target = fx.outside("made-by-sluice");
    let outside = fx.write_policy(
        "outside.toml",
        &format!(
            "extends = [\"default\"]\n[filesystem]\nwrite = [{{ path = \"{target}\", create = true }}]\n"
        ),
    );
    let dotdot = fx.write_policy(
        "dotdot.toml",
        "extends = [\"default\"]\n[filesystem]\nwrite = [{ path = \"~/../made\", create = true }]\n",
    );
    let deny = fx.write_policy(
        "deny.toml",
        "extends = [\"default\"]\n[filesystem]\ndeny = [{ path = \"~/x\", create = true }]\n",
    );
    for (policy, name) in [
        (&outside, "outside.toml"),
        (&dotdot, "dotdot.toml"),
        (&deny, "deny.toml"),
    ] {
        for out in [
            execute(fx.sluice_command(&["--policy", policy], &["/usr/bin/true"])),
            execute(fx.sluice_cli_command(&["policy", "check", policy])),
        ] {
            out.assert_code(125);
            assert!(out.stderr.contains(name), "{out}");
            assert!(out.stderr.contains("line 3"), "{out}");
            assert!(out.stderr.contains("create"), "{out}");
        }
    }
    assert!(!Path::new(&target).exists());
    assert!(!fx.root().join("made").exists());

    // Attack: a symlink planted in the home on the way (as a sandbox that
    // may write there could) is not followed out of it.
    std::os::unix::fs::symlink(&fx.outside_dir, fx.home_dir.join(".agent")).unwrap();
    let policy = fx.write_policy(
        "create.toml",
        "extends = [\"default\"]\n[filesystem]\nwrite = [{ path = \"~/.agent/new\", create = true }]\n",
    );
    let out = execute(fx.sluice_command(&["--policy", &policy], &["/usr/bin/true"]));
    out.assert_code(125);
    assert!(out.stderr.contains("symlink"), "{out}");
    assert!(
        !Path::new(&fx.outside("new")).exists(),
        "made through the link"
    );
}

#[test]
fn path_lookup_skips_entries_the_sandbox_cannot_execute() {
    let fx = Fixture::new(PROBE);
    let shims = fx.outside_dir.join("shims");
    fs::create_dir(&shims).unwrap();
    for name in ["uname", "shim-only"] {
        sluice_tests::install_script(&shims.join(name), "#!/bin/sh\necho SHIM\n");
    }
    let path = format!("{}:/usr/bin:/bin", shims.display());
    let run = |cmd: &str| {
        let ws = fx.ws_dir.to_str().unwrap();
        let mut c = fx.sluice_cli_command(&["run", "--workspace", ws, "--", cmd]);
        c.env("PATH", &path);
        execute(c)
    };
    // Control: outside sluice the shim comes first on PATH.
    let mut direct = std::process::Command::new("/bin/sh");
    direct.args(["-c", "uname"]).env("PATH", &path);
    let out = execute(direct);
    assert_eq!(out.stdout.trim(), "SHIM", "{out}");
    // Inside, the program gets what it can run itself (it was 126).
    let out = run("uname");
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), "Linux", "{out}");
    // Only outside the policy: refused at exec as the program itself would
    // be (not in its view: 127; in view but not executable: 126), with a
    // warning naming what was found and what to do.
    let out = run("shim-only");
    assert!([126, 127].contains(&out.code()), "{out}");
    assert!(!out.stdout.contains("SHIM"), "{out}");
    assert!(out.stderr.contains("shims/shim-only"), "{out}");
    assert!(out.stderr.contains("execute"), "{out}");
    // Control: a PATH entry the policy does let it execute is used.
    let policy = fx.write_policy(
        "shims.toml",
        &format!(
            "extends = [\"default\"]\n[filesystem]\nexecute = [\"{}\"]\n",
            shims.display()
        ),
    );
    let ws = fx.ws_dir.to_str().unwrap();
    let mut c =
        fx.sluice_cli_command(&["run", "--workspace", ws, "--policy", &policy, "--", "uname"]);
    c.env("PATH", &path);
    let out = execute(c);
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), "SHIM", "{out}");
}

#[test]
fn audit_list_shows_command_workspace_and_duration_newest_first() {
    use sluice_tests::audit::{audit, json_lines};
    let (fx, policy) = sluice_tests::broker::fixture(PROBE);
    fx.brokered_run(
        &policy,
        &[],
        &["broker-read", &fx.brokered("allowed/notes.txt")],
    )
    .assert_code(0);
    let new = fx.brokered("writable/new.txt");
    fx.brokered_run(&policy, &[], &["broker-write", &new, "x", "--create"])
        .assert_code(0);
    let outside = fx.outside_dir.to_str().unwrap();
    execute(fx.sluice_cli_command(&[
        "run",
        "--workspace",
        outside,
        "--",
        "/bin/echo",
        "two words",
    ]))
    .assert_code(0);

    let out = audit(&fx, &["list"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for column in ["STARTED", "DURATION", "WORKSPACE", "COMMAND"] {
        assert!(lines[0].contains(column), "{out}");
    }
    // Newest first: the last session, with its workspace and command.
    assert!(lines[1].contains(outside), "{out}");
    assert!(lines[1].ends_with("/bin/echo 'two words'"), "{out}");
    assert!(lines[2].contains("broker-write"), "{out}");
    assert!(lines[3].contains("broker-read"), "{out}");
    let listed = json_lines(&audit(&fx, &["list", "--json"]));
    let started: Vec<&str> = listed
        .iter()
        .map(|l| l["started"].as_str().unwrap())
        .collect();
    let mut sorted = started.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(started, sorted, "not newest first");
    assert_eq!(listed[0]["command"][1], "two words");
    assert!(listed[0]["duration_us"].is_u64(), "{:?}", listed[0]);

    // -n N: the newest N.
    let out = audit(&fx, &["list", "-n", "1"]);
    assert_eq!(out.stdout.lines().count(), 2, "{out}");
    assert!(out.stdout.contains(outside), "{out}");
    // By workspace, absolute or relative (from the current directory: the
    // fixture's workspace).
    let ws = fx.ws_dir.to_str().unwrap();
    for (dir, n) in [
        (outside, 1),
        (ws, 2),
        (".", 2),
        (fx.root().to_str().unwrap(), 3),
    ] {
        let listed = json_lines(&audit(&fx, &["list", "--json", "--workspace", dir]));
        assert_eq!(listed.len(), n, "{dir}: {listed:?}");
    }
    // By access: the session that wrote, the one that read.
    let write = json_lines(&audit(&fx, &["list", "--json", "--access", "write"]));
    assert_eq!(write.len(), 1, "{write:?}");
    assert_eq!(write[0]["command"][1], "broker-write");
    let read = json_lines(&audit(&fx, &["list", "--json", "--access", "read"]));
    assert!(
        read.iter().any(|l| l["command"][1] == "broker-read"),
        "{read:?}"
    );
    assert!(
        read.iter().all(|l| l["command"][0] != "/bin/echo"),
        "{read:?}"
    );
}

#[test]
fn audit_show_json_is_one_document_and_jsonl_the_stored_lines() {
    use sluice_tests::audit::{audit, json_lines};
    let (fx, policy) = sluice_tests::broker::fixture(PROBE);
    fx.brokered_run(
        &policy,
        &[],
        &["broker-read", &fx.brokered("allowed/notes.txt")],
    )
    .assert_code(0);
    let session = json_lines(&audit(&fx, &["list", "--json"]))[0]["session"]
        .as_str()
        .unwrap()
        .to_owned();

    // --json: the whole output parses as one JSON value, an object whose
    // records are objects (start, the decision, end).
    let out = audit(&fx, &["show", &session, "--json"]);
    out.assert_code(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {out}"));
    assert_eq!(doc["session"], session.as_str(), "{doc}");
    let records = doc["records"].as_array().expect("records: an array");
    assert!(records.len() >= 3, "{doc}");
    assert!(records.iter().all(|r| r.is_object()), "{doc}");

    // --jsonl: the same records, one per line, as stored (the file's lines).
    let lines = audit(&fx, &["show", &session, "--jsonl"]);
    lines.assert_code(0);
    assert_eq!(json_lines(&lines).len(), records.len(), "{lines}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&lines.stdout).is_err(),
        "JSON lines parse as one document: {lines}"
    );
    let file = doc["file"].as_str().unwrap();
    let stored = fs::read_to_string(file).unwrap();
    for line in lines.stdout.lines() {
        assert!(stored.lines().any(|l| l == line), "not as stored: {line}");
    }
    // Both at once is an error that says which to choose.
    let both = audit(&fx, &["show", &session, "--json", "--jsonl"]);
    assert!(!both.status.success(), "{both}");
    assert!(both.stderr.contains("--jsonl"), "{both}");
}

#[test]
fn a_changed_policy_makes_nothing_before_the_change_is_accepted() {
    let fx = Fixture::new(PROBE);
    // In the workspace, which the policy lets a sandbox write.
    let policy = fx.ws("agent.toml");
    let body = |dir: &str| {
        format!(
            "extends = [\"default\"]\n[filesystem]\nwrite = [{{ path = \"~/{dir}\", create = true }}]\n"
        )
    };
    fs::write(&policy, body(".first")).unwrap();
    execute(fx.sluice_command(&["--policy", &policy], &["/usr/bin/true"])).assert_code(0);
    assert!(fx.home_dir.join(".first").is_dir());
    // Changed since (as the program could have): refused, nothing made.
    fs::write(&policy, body(".second")).unwrap();
    let out = execute(fx.sluice_command(&["--policy", &policy], &["/usr/bin/true"]));
    out.assert_code(125);
    assert!(out.stderr.contains("--accept-policy-change"), "{out}");
    assert!(
        !fx.home_dir.join(".second").exists(),
        "made before the check"
    );
    // Control: accepted, it is made.
    let args = ["--policy", policy.as_str(), "--accept-policy-change"];
    execute(fx.sluice_command(&args, &["/usr/bin/true"])).assert_code(0);
    assert!(fx.home_dir.join(".second").is_dir());
}

/// Rootless containers and `unshare -Ur`: sluice runs as uid 0 of a user
/// namespace. Its process limit holds there (the PID namespace's
/// `pid_max`); where that is not available (here: a sluice stacked inside,
/// with no cgroup it may write), RLIMIT_NPROC does, since the kernel exempts
/// only the real root from it, and sluice says so instead of reporting the
/// limit unenforced. Control: uid 0 of a namespace made by the real root
/// (kernel uid 0) is exempt, and reported so.
#[test]
fn uid_0_of_a_user_namespace_is_held_by_the_process_limit() {
    let fx = Fixture::new(PROBE);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(fx.root(), fs::Permissions::from_mode(0o755)).unwrap();
    let nobody = fx.root().join("nobody");
    fs::create_dir(&nobody).unwrap();
    std::os::unix::fs::chown(&nobody, Some(65534), Some(65534)).unwrap();
    let inner = "\"$SLUICE_BIN\" run -v -- /bin/true";
    let as_root = fx.root().join("root");
    fs::create_dir(&as_root).unwrap();
    let run = |as_nobody: bool| {
        let dir = if as_nobody { &nobody } else { &as_root };
        let mut cmd = std::process::Command::new("setpriv");
        match as_nobody {
            true => cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]),
            false => cmd.args(["--reuid=0"]),
        };
        cmd.args(["--", "unshare", "-Ur"])
            .arg(sluice_tests::sluice_bin())
            .args(["run", "-v", "--", "/bin/sh", "-c", inner])
            .current_dir(dir)
            .env("HOME", dir)
            .env("TMPDIR", dir)
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(std::process::Stdio::null());
        execute(cmd)
    };
    let out = run(true);
    out.assert_code(0);
    let limits: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("sluice: limits:"))
        .collect();
    assert_eq!(limits.len(), 2, "{out}");
    assert!(
        limits[0].contains("processes 4096 (the PID namespace's pid_max)"),
        "{out}"
    );
    assert!(
        limits[1].contains("processes 4096 (rlimit: uid 0 of a user namespace"),
        "{out}"
    );
    let out = run(false);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("processes 4096 NOT enforced: running as root"),
        "{out}"
    );
}

/// Inside another sandbox that sets a `TMPDIR` it never made, or leaves the
/// state directory read-only, sluice stops before anything runs, naming the
/// variable to set. Control: the same with the variable set to a usable
/// directory runs.
#[test]
fn an_unusable_tmpdir_or_state_directory_is_named_with_the_variable_to_set() {
    let fx = Fixture::new(PROBE);
    let go = |tmpdir: &Path, state: &Path| {
        let mut cmd = fx.sluice_command(&[], &["/bin/true"]);
        cmd.env("TMPDIR", tmpdir).env("XDG_STATE_HOME", state);
        execute(cmd)
    };
    let usable_tmp = fx.root().join("tmp");
    fs::create_dir(&usable_tmp).unwrap();
    let usable_state = fx.state_dir();
    let out = go(&fx.root().join("never-made"), &usable_state);
    out.assert_code(125);
    assert!(out.stderr.contains("TMPDIR ("), "{out}");
    assert!(out.stderr.contains("set TMPDIR to one"), "{out}");
    // A state directory that is a file: nothing can be made beneath it
    // (as root, a read-only mode would not stop sluice).
    let not_a_dir = fx.root().join("state-file");
    fs::write(&not_a_dir, "").unwrap();
    let out = go(&usable_tmp, &not_a_dir);
    out.assert_code(125);
    assert!(out.stderr.contains("set XDG_STATE_HOME"), "{out}");
    // Control.
    go(&usable_tmp, &usable_state).assert_code(0);
}
