//! `sluice run` inside `sluice run`: each `nested` mode, detection that does
//! not depend on `SLUICE_SESSION`, and a forged `SLUICE_SESSION` outside any
//! sandbox that changes nothing.
//!
//! The outer sandbox is always the built-in `default` (the workspace is
//! writable); the inner one is `readonly` (nothing is), so whether a write
//! to the workspace succeeds tells which policies hold.

use std::fs;
use std::path::Path;

use sluice_tests::audit::{decision_about, decisions_about, records, sessions};
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
    let mut cmd = sluice_tests::setpriv_nobody();
    cmd.args([sluice, "run", "--workspace", &ws, "--", sluice, "run", "-v"])
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
    // Control: stacked, the request goes to the inner broker, whose policy
    // asks about it, and nobody says yes there: the outer broker is never
    // asked (see `a_stacked_program_reaches_the_outer_broker_within_both_policies`).
    let out = nested(
        &fx,
        &["--approve", "allow"],
        false,
        &["--nested", "stack"],
        &["broker-read", &fx.outside("secret.txt")],
    );
    out.assert_blocked().assert_no_secret();
}

/// Stacked, the inner broker runs inside the outer sandbox, where a file
/// outside it cannot be opened; what the inner policy allows there, it asks
/// the outer broker for, so the program gets a file only within both
/// policies. Attacks: the inner policy denies the file (never forwarded);
/// the outer one refuses it; a symlink the inner policy allows leads the
/// outer broker to a file the inner one denies. Control: allowed by both,
/// the file is served (it was "not found" before forwarding).
#[test]
fn a_stacked_program_reaches_the_outer_broker_within_both_policies() {
    let fx = Fixture::new(PROBE);
    let secret = fx.outside("secret.txt");
    let allow = ["--approve", "allow"];
    fs::write(
        fx.ws("inner.toml"),
        format!(
            "extends = [\"default\"]\n[broker]\ndeny = [\"{}\"]\n",
            fx.home("notes.txt")
        ),
    )
    .unwrap();
    let inner_policy = fx.ws("inner.toml");
    let inner = ["--policy", inner_policy.as_str(), "--approve", "allow"];

    // Both allow: served, and recorded by both sessions; under an outer
    // `--transparent` session too (where the inner broker's own open is
    // left to the kernel, and refused).
    for outer in [&allow[..], &TRANSPARENT_ALLOW[..]] {
        let out = nested(&fx, outer, false, &inner, &["broker-read", &secret]);
        assert!(
            out.code() == 0 && out.stdout.contains(OUTSIDE_SECRET.trim()),
            "{out}"
        );
    }
    // A new file, where both allow writing (the home directory: ask_write).
    nested(
        &fx,
        &allow,
        false,
        &inner,
        &["broker-write", &fx.home("made.txt"), "hello", "--create"],
    )
    .assert_ok();
    assert_eq!(fs::read_to_string(fx.home("made.txt")).unwrap(), "hello");

    // The outer policy refuses (nobody says yes there).
    nested(&fx, &[], false, &inner, &["broker-read", &secret])
        .assert_blocked()
        .assert_no_secret();
    // The inner policy denies: the request never leaves the inner session.
    let notes = fx.home("notes.txt");
    let out = nested(&fx, &allow, false, &inner, &["broker-read", &notes]);
    out.assert_blocked();
    assert!(!out.stdout.contains("SECRET-home-notes"), "{out}");
    // Through a symlink the inner policy allows, to the file it denies.
    let link = fx.outside("link");
    std::os::unix::fs::symlink(&notes, &link).unwrap();
    let out = nested(&fx, &allow, false, &inner, &["broker-read", &link]);
    out.assert_blocked();
    assert!(!out.stdout.contains("SECRET-home-notes"), "{out}");
    assert!(
        out.stdout.contains("which this policy does not allow"),
        "{out}"
    );

    // The outer sessions' records (the inner ones are kept beside them,
    // labelled): the secret served to the inner sluice, and the denied file
    // never asked for by its name.
    let records: Vec<_> = sessions(&fx)
        .iter()
        .filter(|s| !fx.audit_dir().join(format!("{s}.stacked")).exists())
        .flat_map(|s| records(&fx, s))
        .collect();
    let served = decisions_about(&records, &secret);
    assert!(
        served.iter().any(|r| r["decision"] == "allowed"
            && r["client"]
                .as_str()
                .unwrap_or("")
                .starts_with("sluice stacked")),
        "{records:#?}"
    );
    assert!(decisions_about(&records, &notes).is_empty(), "{records:#?}");
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

/// The outer session of the stacked-under-transparent tests: every open
/// the broker may serve is served (`ask` answered yes), so whatever the
/// inner policy withholds, the outer broker would give.
const TRANSPARENT_ALLOW: [&str; 3] = ["--transparent", "--approve", "allow"];

/// Issue 13, section 3: under an outer `--transparent` session, the
/// processes of a stacked `sluice run` inherit the outer notification
/// filter, and the outer broker used to answer their opens by its own
/// policy, placing descriptors the inner policy forbids. Every way the
/// broker serves (an open for writing, for reading, a create, `mkdir`) is
/// tried; controls: the same calls by the outer program are served, and the
/// inner program still gets what both sandboxes allow.
#[test]
fn under_a_transparent_session_a_stacked_sandbox_gets_nothing_its_policy_withholds() {
    let fx = Fixture::new(PROBE);
    let readonly = ["--policy", "readonly"];
    // Controls: the outer program alone is served each of them.
    fx.sluice(&TRANSPARENT_ALLOW, &["write", &fx.home("outer.txt")])
        .assert_ok();
    assert!(Path::new(&fx.home("outer.txt")).exists());
    fx.sluice(&TRANSPARENT_ALLOW, &["mkdir", &fx.home("outer-dir")])
        .assert_ok();
    assert!(Path::new(&fx.home("outer-dir")).is_dir());
    fx.sluice(&TRANSPARENT_ALLOW, &["append", &fx.home("notes.txt")])
        .assert_ok();
    let out = fx.sluice(&TRANSPARENT_ALLOW, &["read", &fx.outside("secret.txt")]);
    assert!(out.assert_ok().stdout.contains("SECRET"), "{out}");

    // The reproduction of the issue: a new file in the home directory.
    let attack = |action: &[&str]| nested(&fx, &TRANSPARENT_ALLOW, false, &readonly, action);
    attack(&["write", &fx.home("x")]).assert_blocked();
    assert!(!Path::new(&fx.home("x")).exists());
    // An existing file outside both sandboxes, for writing...
    let before = fs::read_to_string(fx.outside("secret.txt")).unwrap();
    attack(&["append", &fx.outside("secret.txt")]).assert_blocked();
    assert_eq!(
        fs::read_to_string(fx.outside("secret.txt")).unwrap(),
        before
    );
    // ...a directory made for it...
    attack(&["mkdir", &fx.home("inner-dir")]).assert_blocked();
    assert!(!Path::new(&fx.home("inner-dir")).exists());
    // ...and reading what the inner policy does not list.
    attack(&["read", &fx.outside("secret.txt")])
        .assert_blocked()
        .assert_no_secret();
    // Inside the workspace the outer sandbox allows writing itself, and
    // the inner one does not.
    attack(&["write", &fx.ws("inner.txt")]).assert_blocked();
    assert!(!Path::new(&fx.ws("inner.txt")).exists());

    // Control: what both sandboxes allow still works for the inner program.
    let out = attack(&["read", &fx.ws("README.md")]);
    out.assert_ok();
}

/// The outer connector makes connections in the outer program's Landlock
/// domain, which would take a stacked process past its own network rules:
/// under an inner `--net tcp:A`, a connection to port B that only the
/// outer `--net all` allows is refused, and recorded. Named unix sockets
/// (which Landlock does not check) are still connected. Controls: the
/// outer program connects to B; a stacked program connects to a socket
/// file in the workspace.
#[test]
fn under_a_transparent_session_a_stacked_sandbox_connects_past_no_rule_of_its_own() {
    use std::net::TcpListener;
    use std::os::unix::net::UnixListener;
    let fx = Fixture::new(PROBE);
    let listen = || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        (listener, port)
    };
    let accepted = |l: &TcpListener| std::iter::from_fn(|| l.accept().ok()).count();
    let (_allowed, allowed_port) = listen();
    let (other, other_port) = listen();
    let outer = ["--transparent", "--net", "all"];
    fx.sluice(&outer, &["tcp-connect", "127.0.0.1", &other_port])
        .assert_ok();
    assert_eq!(accepted(&other), 1, "the control did not connect");

    let inner_net = format!("tcp:{allowed_port}");
    let inner = ["--net", inner_net.as_str()];
    let out = nested(
        &fx,
        &outer,
        false,
        &inner,
        &["tcp-connect", "127.0.0.1", &other_port],
    );
    out.assert_blocked();
    assert_eq!(
        accepted(&other),
        0,
        "a connection got past the inner rules\n{out}"
    );
    // The control's session, then the outer one of the attack.
    let all = sessions(&fx);
    let records: Vec<_> = all.iter().flat_map(|s| records(&fx, s)).collect();
    let refused = decision_about(&records, &format!("tcp 127.0.0.1:{other_port}"));
    assert_eq!(refused["decision"], "denied", "{refused}");
    assert!(
        refused["reason"].as_str().unwrap_or("").contains("stacked"),
        "{refused}"
    );

    // Named sockets are judged and connected as for the outer program.
    let socket = fx.ws("agent.sock");
    let _unix = UnixListener::bind(&socket).unwrap();
    nested(&fx, &outer, false, &inner, &["unix-connect", &socket]).assert_ok();
}

/// A stacked sluice can write its audit record only under the outer
/// session's TMPDIR, which is removed when that session ends; the outer
/// supervisor keeps it in the real audit directory, labelled as stacked
/// inside it (the inner session's claims). Before, `sluice audit show`
/// then said "no session".
#[test]
fn a_stacked_sessions_record_is_kept_with_the_outer_ones() {
    let fx = Fixture::new(PROBE);
    let out = nested(
        &fx,
        &[],
        false,
        &["--nested", "stack"],
        &["broker-read", &fx.ws("README.md")],
    );
    out.assert_ok();
    assert!(
        out.stderr
            .contains("kept the audit record of a session stacked"),
        "{out}"
    );
    let all = sessions(&fx);
    assert_eq!(all.len(), 2, "{all:?}\n{out}");
    let label = |id: &str| fs::read_to_string(fx.audit_dir().join(format!("{id}.stacked")));
    let (inner, outer): (Vec<_>, Vec<_>) = all.iter().partition(|id| label(id).is_ok());
    let (inner, outer) = (inner[0], outer[0]);
    assert_eq!(label(inner).unwrap().trim(), outer);
    // Its decision is there, its chain holds, and `show` says where it
    // came from.
    let records = records(&fx, inner);
    decision_about(&records, &fx.ws("README.md"));
    sluice_tests::audit::audit(&fx, &["verify", inner]).assert_code(0);
    let shown = sluice_tests::audit::audit(&fx, &["show", inner]);
    assert!(
        shown
            .stdout
            .contains(&format!("stacked inside session {outer}")),
        "{shown}"
    );
    // Control: the outer session's own record is not labelled.
    let shown = sluice_tests::audit::audit(&fx, &["show", outer]);
    assert!(!shown.stdout.contains("stacked inside"), "{shown}");
}

/// What the outer program leaves where stacked records are kept is taken
/// as a claim at most: a file named after its own session cannot replace
/// that session's record, a symlink is not followed, anything else kept is
/// labelled as stacked.
#[test]
fn planted_stacked_records_replace_nothing_and_follow_no_link() {
    let fx = Fixture::new(PROBE);
    let plant = "mkdir -p \"$TMPDIR/sluice-nested-state/audit\" && \
                 cd \"$TMPDIR/sluice-nested-state/audit\" && \
                 echo forged > \"$SLUICE_SESSION.jsonl\" && \
                 ln -s /etc/passwd 0123456789abcdef.jsonl && \
                 echo claim > fedcba9876543210.jsonl && echo OK planted";
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", plant]));
    assert!(
        out.code() == 0 && out.stdout.contains("OK planted"),
        "{out}"
    );
    let all = sessions(&fx);
    let outer: Vec<_> = all
        .iter()
        .filter(|id| id.as_str() != "fedcba9876543210")
        .collect();
    assert_eq!(outer.len(), 1, "{all:?}");
    // The session's own record is intact...
    sluice_tests::audit::audit(&fx, &["verify", outer[0]]).assert_code(0);
    assert!(!Path::new(&fx.audit_dir().join(format!("{}.stacked", outer[0]))).exists());
    // ...the symlink was not followed...
    assert!(!all.iter().any(|id| id == "0123456789abcdef"), "{all:?}");
    // ...and the plain file is kept only as a claim of a stacked session.
    let label = fs::read_to_string(fx.audit_dir().join("fedcba9876543210.stacked")).unwrap();
    assert_eq!(label.trim(), outer[0]);
}

/// A sandbox the program starts that keeps the inherited broker socket
/// (not every sandbox closes what it inherits) must not reach the session's
/// broker: its answers would carry past that sandbox's rules. Its processes
/// are told apart by their seccomp filters; a connection made by one is
/// refused, in both modes. Control: the same request without the filter is
/// served.
#[test]
fn a_sandbox_inside_the_program_cannot_use_the_session_broker() {
    let fx = Fixture::new(PROBE);
    let secret = fx.outside("secret.txt");
    for mode in [&[][..], &["--transparent"][..]] {
        let args: Vec<&str> = ["--approve", "allow"].iter().chain(mode).copied().collect();
        let out = fx.sluice(&args, &["broker-read", &secret]);
        assert!(
            out.code() == 0 && out.stdout.contains(OUTSIDE_SECRET.trim()),
            "{out}"
        );
        let out = fx.sluice(&args, &["own-filter", "+", "broker-read", &secret]);
        assert_ne!(out.code(), 0, "{out}");
        out.assert_no_secret();
        assert!(out.stdout.contains("sandbox of its own"), "{out}");
    }
}

/// Under `--transparent`, a thread that installed a seccomp filter of its
/// own (by `seccomp` or by `prctl`, both of which the notification filter
/// reports, so the broker starts counting filters before the new one
/// exists) is served nothing beyond the kernel: the file the outer broker
/// would place in it stays out. Control: the same open without the filter
/// is served.
#[test]
fn under_a_transparent_session_a_thread_with_a_filter_of_its_own_is_served_nothing() {
    let fx = Fixture::new(PROBE);
    let secret = fx.outside("secret.txt");
    let out = fx.sluice(&TRANSPARENT_ALLOW, &["read", &secret]);
    assert!(out.assert_ok().stdout.contains("SECRET"), "{out}");
    for via in ["seccomp", "prctl"] {
        fx.sluice(
            &TRANSPARENT_ALLOW,
            &["own-filter", via, "+", "read", &secret],
        )
        .assert_blocked()
        .assert_no_secret();
    }
}

/// The reproduction of issue 13 section 3 as an unprivileged user (the
/// seccomp filter count does not depend on who runs sluice, but the
/// sandbox's layers do). Control: the outer program alone is served.
#[test]
fn as_a_user_a_stacked_sandbox_under_a_transparent_session_writes_nothing_outside() {
    const NOBODY: u32 = 65534;
    let fx = Fixture::new(PROBE);
    // Sessions go under a TMPDIR of the user's own.
    fs::create_dir(fx.home("tmp")).unwrap();
    fx.give_to(NOBODY, NOBODY);
    let sluice = sluice_bin();
    let sluice = sluice.to_str().unwrap();
    let probe = fx.probe_path();
    let as_nobody = |program: &[&str]| as_nobody(&fx, &TRANSPARENT_ALLOW, program);
    as_nobody(&[&probe, "write", &fx.home("outer.txt")]).assert_ok();
    assert!(Path::new(&fx.home("outer.txt")).exists());
    let inner = [sluice, "run", "--policy", "readonly", "--"];
    let attack = |action: &[&str]| {
        let program: Vec<&str> = inner
            .iter()
            .copied()
            .chain([probe.as_str()])
            .chain(action.iter().copied())
            .collect();
        as_nobody(&program)
    };
    attack(&["write", &fx.home("x")]).assert_blocked();
    assert!(!Path::new(&fx.home("x")).exists());
    attack(&["mkdir", &fx.home("d")]).assert_blocked();
    assert!(!Path::new(&fx.home("d")).exists());
    // Control: what both allow.
    attack(&["read", &fx.ws("README.md")]).assert_ok();
}

/// `sluice run SLUICE_ARGS -- PROGRAM...` as user 65534 from the workspace,
/// sessions under the fixture's `home/tmp` (made, and the fixture given to
/// that user, by the caller).
pub(super) fn as_nobody(fx: &Fixture, sluice_args: &[&str], program: &[&str]) -> Outcome {
    use std::process::Stdio;
    let mut cmd = sluice_tests::setpriv_nobody();
    cmd.arg(sluice_bin())
        .arg("run")
        .args(sluice_args)
        .arg("--")
        .args(program)
        .current_dir(&fx.ws_dir)
        .env("HOME", &fx.home_dir)
        .env("TMPDIR", fx.home("tmp"))
        .env("XDG_STATE_HOME", fx.home("state"))
        .env("XDG_CONFIG_HOME", fx.home("config"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    execute(cmd)
}
