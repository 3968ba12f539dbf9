//! Secrets by name at any depth (issue 14, "secrets by pattern"):
//! `[filesystem] deny` patterns (`**/.env`, `**/*.pem`, ...) hold for the
//! program's own opens, not only for the broker. Every match that exists
//! at launch is hidden by the deny placeholder, so each way of reaching the
//! file meets the kernel's refusal: a plain open at any depth, `openat`
//! beneath a directory descriptor (the program's own or one the broker
//! served), `O_PATH` reopened, `execveat`, renaming an ancestor, renaming
//! or linking the file itself.
//!
//! Each attack has its control: the same command outside sluice reads the
//! secret (so the attack would leak it), and a template (`.env.example`)
//! or an ordinary file next to the secrets stays readable inside.

use std::fs;
use std::os::unix::fs::symlink;
use std::process::Command;

use sluice_tests::{execute, Fixture, Outcome, SECRET_MARK};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// Both ways the program's opens are judged: by the kernel alone, and with
/// the transparent broker in front of it.
const MODES: [&[&str]; 2] = [&[], &["--transparent"]];

/// Secrets at depth in the workspace, and files that are not secrets.
fn secrets(fx: &Fixture) {
    for (rel, text) in [
        ("sub/.env", "SECRET-sub-env\n"),
        ("a/b/c/.env", "SECRET-deep-env\n"),
        ("pkg/.env.production", "SECRET-env-production\n"),
        ("certs/server.pem", "SECRET-pem\n"),
        ("certs/server.key", "SECRET-key\n"),
        ("keys/id_ed25519", "SECRET-ed25519\n"),
        ("deploy/.netrc", "SECRET-netrc\n"),
        ("pkg/.env.example", "TEMPLATE-example\n"),
        ("sub/notes.txt", "PLAIN-notes\n"),
        ("deep/secrets.yaml", "SECRET-yaml\n"),
    ] {
        let path = fx.ws_dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}

/// `sh -c SCRIPT` in the workspace, inside sluice with `args`.
fn inside(fx: &Fixture, args: &[&str], script: &str) -> Outcome {
    execute(fx.sluice_command(args, &["/bin/sh", "-c", script]))
}

/// The same script without sluice.
fn outside(fx: &Fixture, script: &str) -> Outcome {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script])
        .current_dir(&fx.ws_dir)
        .env("HOME", &fx.home_dir)
        .stdin(std::process::Stdio::null());
    execute(cmd)
}

/// Whether a secret of the fixture shows in the output.
fn leaked(out: &Outcome) -> bool {
    out.stdout.contains(SECRET_MARK) || out.stderr.contains(SECRET_MARK)
}

const READS: &str = "cat sub/.env; cat a/b/c/.env; cat pkg/.env.production; \
                     cat certs/server.pem; cat certs/server.key; cat keys/id_ed25519; \
                     cat deploy/.netrc; cat pkg/.env.example; cat sub/notes.txt";

#[test]
fn secrets_at_any_depth_are_unreadable_and_templates_stay_readable() {
    let fx = Fixture::new(PROBE);
    secrets(&fx);
    // Control: outside sluice the same reads print every secret.
    let out = outside(&fx, READS);
    for secret in [
        "SECRET-sub-env",
        "SECRET-deep-env",
        "SECRET-pem",
        "SECRET-netrc",
    ] {
        assert!(out.stdout.contains(secret), "{secret}\n{out}");
    }
    for mode in MODES {
        let out = inside(&fx, mode, READS);
        assert!(!leaked(&out), "{mode:?}\n{out}");
        assert_eq!(out.stderr.matches("Permission denied").count(), 7, "{out}");
        // Controls: a template and a plain file next to the secrets.
        assert!(out.stdout.contains("TEMPLATE-example"), "{out}");
        assert!(out.stdout.contains("PLAIN-notes"), "{out}");
    }
}

#[test]
fn python_open_of_a_deep_secret_is_refused() {
    let fx = Fixture::new(PROBE);
    secrets(&fx);
    let script = "/usr/bin/python3 -c \"import sys\nfor p in sys.argv[1:]:\n  \
                  try: print(open(p).read())\n  except OSError as e: print('refused', e.errno)\" \
                  a/b/c/.env certs/server.pem sub/notes.txt";
    let out = outside(&fx, script);
    assert!(out.stdout.contains("SECRET-deep-env"), "{out}");
    for mode in MODES {
        let out = inside(&fx, mode, script);
        assert!(!leaked(&out), "{out}");
        assert_eq!(out.stdout.matches("refused 13").count(), 2, "{out}");
        assert!(out.stdout.contains("PLAIN-notes"), "{out}");
    }
}

/// `dir-beneath VIA DIR HOW REL`: a descriptor of DIR (opened by the probe,
/// or served by the broker), then REL reached beneath it.
fn beneath<'a>(via: &'a str, dir: &'a str, how: &'a str, rel: &'a str) -> Vec<&'a str> {
    vec!["dir-beneath", via, dir, how, rel]
}

#[test]
fn a_secret_beneath_a_directory_descriptor_stays_hidden() {
    let fx = Fixture::new(PROBE);
    secrets(&fx);
    let sub = fx.ws("sub");
    let ws = fx.ws("");
    sluice_tests::install_script(
        &fx.ws_dir.join("sub/id_rsa_helper"),
        "#!/bin/sh\necho OK ran SECRET-exec\n",
    );
    // Controls outside sluice: openat and O_PATH beneath a descriptor read
    // it, execveat runs it.
    for how in ["openat", "opath"] {
        let out = fx.direct(&beneath("open", &sub, how, ".env"));
        out.assert_ok();
        assert!(out.stdout.contains("SECRET-sub-env"), "{out}");
    }
    fx.direct(&beneath("open", &sub, "execveat", "id_rsa_helper"))
        .assert_ok()
        .assert_says("ran SECRET-exec");
    for mode in MODES {
        for how in ["openat", "opath"] {
            fx.sluice(mode, &beneath("open", &sub, how, ".env"))
                .assert_blocked();
            fx.sluice(mode, &beneath("open", &ws, how, "a/b/c/.env"))
                .assert_blocked();
            // The broker serves the workspace: beneath it, the sandbox's view.
            fx.sluice(mode, &beneath("broker", &ws, how, "certs/server.pem"))
                .assert_blocked();
            fx.sluice(mode, &beneath("open", &sub, "execveat", "id_rsa_helper"))
                .assert_blocked();
            // Control: a plain file beneath the same descriptors.
            fx.sluice(mode, &beneath("broker", &ws, how, "sub/notes.txt"))
                .assert_ok()
                .assert_says("PLAIN-notes");
        }
    }
}

#[test]
fn renaming_or_linking_does_not_uncover_a_secret() {
    let fx = Fixture::new(PROBE);
    secrets(&fx);
    let script = "mv sub sub2; cat sub2/.env; mv sub/.env moved; cat moved; \
                  ln certs/server.pem linked; cat linked; ln a/b/c/.env linked2; cat linked2; \
                  mv a/b b2; cat b2/c/.env; \
                  cp certs/server.pem copy; cat copy; echo done";
    // Control: outside sluice every step reaches a secret.
    {
        let control = Fixture::new(PROBE);
        secrets(&control);
        let out = outside(&control, script);
        assert!(out.stdout.contains("SECRET-sub-env"), "{out}");
        assert!(out.stdout.contains("SECRET-deep-env"), "{out}");
    }
    for mode in MODES {
        let out = inside(&fx, mode, script);
        assert!(!leaked(&out), "{out}");
        assert!(out.stdout.contains("done"), "{out}");
        // The renames of an ancestor and of the file are refused (a mount
        // point is busy), the link crosses a mount; a `.env`'s, which
        // `default` protects too, the guard refuses before.
        assert!(out.stderr.contains("busy"), "{out}");
        assert!(out.stderr.contains("cross-device"), "{out}");
        // Nothing was moved: the person's files are where they were.
        assert_eq!(
            fs::read_to_string(fx.ws_dir.join("sub/.env")).unwrap(),
            "SECRET-sub-env\n"
        );
        assert!(!fx.ws_dir.join("linked").exists());
        assert!(!fx.ws_dir.join("linked2").exists());
    }
}

#[test]
fn a_symlink_with_a_secret_name_hides_what_it_points_to() {
    let fx = Fixture::new(PROBE);
    secrets(&fx);
    fs::write(fx.ws_dir.join("sub/real"), "SECRET-behind-link\n").unwrap();
    symlink("real", fx.ws_dir.join("sub/tls.key")).unwrap();
    let script = "cat sub/tls.key; cat sub/real";
    let out = outside(&fx, script);
    assert!(out.stdout.contains("SECRET-behind-link"), "{out}");
    let out = inside(&fx, &[], script);
    assert!(!leaked(&out), "{out}");
}

#[test]
fn a_policy_extending_default_adds_its_own_patterns() {
    let fx = Fixture::new(PROBE);
    secrets(&fx);
    let policy = fx.write_policy(
        "secrets.toml",
        "extends = [\"default\"]\n[filesystem]\ndeny = [\"**/secrets.yaml\", \
         \"!$WORKSPACE/certs/server.pem\"]\n",
    );
    let script = "cat deep/secrets.yaml; cat certs/server.pem; cat a/b/c/.env";
    // Control: under default alone the yaml is readable.
    let out = inside(&fx, &[], script);
    assert!(out.stdout.contains("SECRET-yaml"), "{out}");
    assert!(!out.stdout.contains("SECRET-pem"), "{out}");
    for mode in MODES {
        let mut args = vec!["--policy", policy.as_str()];
        args.extend_from_slice(mode);
        let out = inside(&fx, &args, script);
        assert!(!out.stdout.contains("SECRET-yaml"), "{out}");
        assert!(!out.stdout.contains("SECRET-deep-env"), "{out}");
        // The exception uncovers the one certificate it names.
        assert!(out.stdout.contains("SECRET-pem"), "{out}");
    }
    // The broker refuses the added pattern too (one list), without asking.
    let args = ["--policy", policy.as_str()];
    fx.sluice(&args, &["broker-read", &fx.ws("deep/secrets.yaml")])
        .assert_blocked();
}

#[test]
fn as_an_unprivileged_user_deep_secrets_stay_hidden() {
    let fx = Fixture::new(PROBE);
    secrets(&fx);
    let tmp = fx.root().join("tmp");
    let state = fx.root().join("state");
    for dir in [&tmp, &state] {
        fs::create_dir_all(dir).unwrap();
    }
    fx.give_to(65534, 65534);
    for dir in [&tmp, &state] {
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    }
    let as_nobody = |program: &[&str]| {
        let mut cmd = sluice_tests::setpriv_nobody();
        cmd.args(program)
            .current_dir(&fx.ws_dir)
            .env("HOME", &fx.home_dir)
            .env("TMPDIR", &tmp)
            .env("XDG_STATE_HOME", &state)
            .stdin(std::process::Stdio::null());
        execute(cmd)
    };
    let script = "cat sub/.env; cat certs/server.pem; mv sub sub2; cat sub2/.env; \
                  cat pkg/.env.example";
    let out = as_nobody(&["/bin/sh", "-c", script]);
    assert!(out.stdout.contains("SECRET-sub-env"), "{out}");
    fs::rename(fx.ws_dir.join("sub2"), fx.ws_dir.join("sub")).unwrap();
    let sluice = sluice_tests::sluice_bin();
    let ws = fx.ws("");
    let run = [sluice.to_str().unwrap(), "run", "--workspace", &ws, "--"];
    for mode in MODES {
        let mut program: Vec<&str> = run[..4].to_vec();
        program.extend_from_slice(mode);
        program.extend(["--", "/bin/sh", "-c", script]);
        let out = as_nobody(&program);
        assert!(!leaked(&out), "{out}");
        assert!(out.stdout.contains("TEMPLATE-example"), "{out}");
    }
    // A directory the walk cannot list: refused when the person (and so
    // the program) owns it, since the program could `chmod` it and read
    // the secret inside; skipped when someone else's (the program cannot
    // enter it either).
    use std::os::unix::fs::PermissionsExt;
    let closed = fx.ws_dir.join("closed");
    fs::create_dir(&closed).unwrap();
    fs::write(closed.join(".env"), "SECRET-closed\n").unwrap();
    let reopen = "chmod 755 closed; cat closed/.env; echo ran";
    let mut program: Vec<&str> = run[..4].to_vec();
    program.extend(["--", "/bin/sh", "-c", reopen]);
    std::os::unix::fs::chown(&closed, Some(0), Some(0)).unwrap();
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
    let out = as_nobody(&program);
    assert!(!leaked(&out) && out.stdout.contains("ran"), "{out}");
    std::os::unix::fs::chown(&closed, Some(65534), Some(65534)).unwrap();
    let out = as_nobody(&["/bin/sh", "-c", reopen]);
    assert!(out.stdout.contains("SECRET-closed"), "{out}");
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o000)).unwrap();
    let out = as_nobody(&program);
    assert!(!leaked(&out) && !out.stdout.contains("ran"), "{out}");
    assert!(
        out.stderr
            .contains(&format!("cannot list {}", closed.display())),
        "{out}"
    );
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn policy_show_lists_the_patterns_and_check_names_a_bad_one() {
    let fx = Fixture::new(PROBE);
    let mut show = fx.sluice_cli_command(&["policy", "show", "default"]);
    show.current_dir(&fx.ws_dir);
    let out = execute(show);
    assert_eq!(out.code(), 0, "{out}");
    for pattern in [
        "\"**/.env\"",
        "\"!**/.env.example\"",
        "\"**/*.pem\"",
        "\"**/id_rsa*\"",
    ] {
        assert!(out.stdout.contains(pattern), "{pattern}\n{out}");
    }
    for (body, says) in [
        (
            "[filesystem]\ndeny = [\"$WORKSPACE/**/a/**/b\"]\n",
            "line 2, key 'filesystem.deny': pattern '$WORKSPACE/**/a/**/b': a deny pattern \
             has one '**'",
        ),
        (
            "[filesystem]\n\ndeny = [\"**/*.{pem\"]\n",
            "line 3, key 'filesystem.deny': invalid pattern '**/*.{pem'",
        ),
        (
            "[filesystem]\ndeny = [\"sub/**/.env\"]\n",
            "line 2, key 'filesystem.deny': pattern 'sub/**/.env' is relative",
        ),
    ] {
        let file = fx.write_policy("bad.toml", body);
        let out = execute(fx.sluice_cli_command(&["policy", "check", &file]));
        assert_ne!(out.code(), 0, "{out}");
        assert!(out.stderr.contains("bad.toml"), "{out}");
        assert!(out.stderr.contains(says), "{says}\n{out}");
    }
}

/// A `vault/token` secret in the workspace, and a policy (its path) that
/// extends the default and denies `$WORKSPACE/vault` and `more_deny` (a
/// TOML list's tail: `, "PATTERN"`).
fn vault(fx: &Fixture, more_deny: &str) -> String {
    fs::create_dir_all(fx.ws_dir.join("vault")).unwrap();
    fs::write(fx.ws_dir.join("vault/token"), "SECRET-vault\n").unwrap();
    fx.write_policy(
        "vault.toml",
        &format!(
            "extends = [\"default\"]\n[filesystem]\ndeny = [\"$WORKSPACE/vault\"{more_deny}]\n"
        ),
    )
}

/// A sluice stacked inside another cannot mount: its report names each
/// match it could not hide, and the outer sandbox's placeholders still
/// hold (control: the inner program runs, and reads a plain file). The
/// inner walk meets the outer session's placeholder for a denied directory
/// (mode 000, on a read-only mount: the program cannot open it either) and
/// goes on.
#[test]
fn a_stacked_session_names_each_match_it_could_not_hide() {
    let fx = Fixture::new(PROBE);
    secrets(&fx);
    let policy = vault(&fx, "");
    let inner = "\"$SLUICE_BIN\" run --workspace . -- sh -c \
                 'cat a/b/c/.env; cat vault/token; cat sub/notes.txt'";
    let out = inside(&fx, &["--policy", &policy], inner);
    assert!(!leaked(&out), "{out}");
    assert!(out.stdout.contains("PLAIN-notes"), "{out}");
    for rel in ["a/b/c/.env", "certs/server.pem", "keys/id_ed25519"] {
        let said = format!("deny {} (this sandbox lets the program", fx.ws(rel));
        assert!(out.stderr.contains(&said), "{rel}\n{out}");
    }
}

/// During the session, a secret the person's tools write to in place
/// (`>>`, an editor that saves in place) stays hidden: the placeholder
/// covers the file, whatever its content becomes. Control: a plain file
/// written from outside at the same time is seen by the program. (A file
/// renamed over the secret from outside, or made during the session,
/// is not covered: see ARCHITECTURE.md, "What is not protected".)
#[test]
fn a_secret_written_in_place_from_outside_during_the_session_stays_hidden() {
    let fx = Fixture::new(PROBE);
    secrets(&fx);
    // The program waits (at most about a minute) for the outside writes.
    let script = "touch started; \
                  i=0; while [ ! -e ready ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
                  cat sub/notes.txt; cat sub/.env; echo end";
    let child = fx
        .sluice_command(&[], &["/bin/sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the program runs (its placeholders are mounted before it
    // starts; at most about a minute), then write from outside.
    for _ in 0..600 {
        if fx.ws_dir.join("started").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        fx.ws_dir.join("started").exists(),
        "the program never started"
    );
    use std::io::Write;
    let mut env = fs::OpenOptions::new()
        .append(true)
        .open(fx.ws_dir.join("sub/.env"))
        .unwrap();
    env.write_all(b"SECRET-added-later\n").unwrap();
    fs::write(fx.ws_dir.join("sub/notes.txt"), "PLAIN-rewritten\n").unwrap();
    fs::write(fx.ws_dir.join("ready"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("end"), "{stdout}\n{stderr}");
    assert!(stdout.contains("PLAIN-rewritten"), "{stdout}\n{stderr}");
    assert!(!stdout.contains(SECRET_MARK), "{stdout}\n{stderr}");
}

/// Under `--transparent` an open the deny placeholder refuses goes to the
/// broker, whose rules serve the workspace (`allow_write`): a path the
/// policy denies, listed or matched by a pattern, must not be served
/// there either. Control: outside sluice it reads; a plain file next to it
/// is served.
#[test]
fn what_the_sandbox_hides_the_transparent_broker_does_not_serve() {
    let fx = Fixture::new(PROBE);
    secrets(&fx);
    let policy = vault(&fx, ", \"**/secrets.yaml\"");
    let script = "cat vault/token; cat deep/secrets.yaml; cat sub/.env; cat sub/notes.txt";
    let out = outside(&fx, script);
    assert!(out.stdout.contains("SECRET-vault"), "{out}");
    for mode in MODES {
        let mut args = vec!["--policy", policy.as_str()];
        args.extend_from_slice(mode);
        let out = inside(&fx, &args, script);
        assert!(!leaked(&out), "{mode:?}\n{out}");
        assert!(out.stdout.contains("PLAIN-notes"), "{out}");
    }
}
