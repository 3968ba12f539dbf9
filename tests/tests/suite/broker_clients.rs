//! The broker's other clients, run inside the sandbox: `sluice open` (a copy
//! of the sluice binary in the workspace) and the client SDK's example
//! `read_outside`. Their exit codes and output, and what the audit record says
//! about them.

use std::path::Path;

use sluice_tests::broker::{assert_file, NOTES, QUESTION};
use sluice_tests::{execute, install_executable, sluice_bin, Fixture};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// A fixture with the broker's tree and its policy.
fn fixture() -> (Fixture, String) {
    sluice_tests::broker::fixture(PROBE)
}

#[test]
fn sluice_open_inside_the_sandbox_uses_the_broker() {
    let (fx, policy) = fixture();
    let inside = fx.ws_dir.join("bin/sluice");
    install_executable(&sluice_bin(), &inside);
    let inside = inside.to_str().unwrap();
    let notes = fx.brokered("allowed/notes.txt");
    // Control: outside `sluice run` there is no broker (exit 125).
    let out = execute(fx.sluice_cli_command(&["open", &notes]));
    out.assert_code(125);
    assert!(out.stderr.contains("sluice run"), "{out}");
    let run = |approve: &str, script: &str| {
        let script = script.replace("OPEN", &format!("{inside} open"));
        execute(fx.sluice_command(
            &["--policy", &policy, "--approve", approve],
            &["/bin/sh", "-c", &script],
        ))
    };

    // Reading: 0 and the content on stdout; 1 denied; 2 not found.
    let out = run("deny", &format!("OPEN {notes}"));
    out.assert_code(0);
    assert_eq!(out.stdout, NOTES, "{out}");
    let session = sluice_tests::audit::only_session(&fx);
    let records = sluice_tests::audit::records(&fx, &session);
    let decided = sluice_tests::audit::decision_about(&records, &notes);
    assert_eq!(decided["client"], "sluice-open", "{decided}");
    assert_eq!(decided["exe"], inside, "{decided}");
    let out = run("deny", "OPEN ../broker/allowed/notes.txt");
    assert_eq!((out.code(), out.stdout.as_str()), (0, NOTES), "{out}");
    for (approve, path, code) in [
        ("allow", fx.brokered("denied/secret.txt"), 1),
        ("deny", fx.brokered("asked/question.txt"), 1),
        ("deny", "/proc/self/environ".to_owned(), 1),
        ("deny", fx.brokered("allowed/missing.txt"), 2),
    ] {
        let out = run(approve, &format!("OPEN {path}"));
        out.assert_code(code).assert_no_secret();
        assert!(out.stdout.is_empty(), "{out}");
    }
    let out = run(
        "allow",
        &format!("OPEN {}", fx.brokered("asked/question.txt")),
    );
    assert_eq!((out.code(), out.stdout.as_str()), (0, QUESTION), "{out}");

    // --query: says, opens nothing.
    for (approve, args, code, says) in [
        ("deny", format!("--query {notes}"), 0, "allowed"),
        (
            "deny",
            format!("--query {}", fx.brokered("asked/question.txt")),
            0,
            "would ask",
        ),
        (
            "deny",
            format!("--query {}", fx.brokered("denied/secret.txt")),
            1,
            "denied: ",
        ),
        ("deny", format!("--query --write {notes}"), 1, "denied: "),
    ] {
        let out = run(approve, &format!("OPEN {args}"));
        out.assert_code(code);
        assert!(out.stdout.starts_with(says), "{args}\n{out}");
    }

    // --write copies standard input into the file, where a rule grants writing.
    let new = fx.brokered("writable/from-shell.txt");
    run(
        "deny",
        &format!("printf written | OPEN --write --create {new}"),
    )
    .assert_code(0);
    assert_file(&new, "written");
    let existing = fx.brokered("writable/existing.txt");
    run(
        "deny",
        &format!("printf new | OPEN --write --truncate {existing}"),
    )
    .assert_code(0);
    assert_file(&existing, "new");
    run(
        "allow",
        &format!("printf pwned | OPEN --write --truncate {notes}"),
    )
    .assert_code(1);
    assert_file(&notes, NOTES);
    let planted = fx.brokered("denied/planted.txt");
    run(
        "allow",
        &format!("printf pwned | OPEN --write --create {planted}"),
    )
    .assert_code(1);
    assert!(!Path::new(&planted).exists());
}

#[test]
fn the_sdk_example_reads_outside_through_the_broker() {
    let (fx, policy) = fixture();
    let example = fx.ws_dir.join("bin/read_outside");
    install_executable(&sluice_tests::example_bin("read_outside"), &example);
    let example = example.to_str().unwrap();
    let notes = fx.brokered("allowed/notes.txt");
    // Control: not under sluice, it says so (exit 3).
    let mut direct = std::process::Command::new(example);
    direct.arg(&notes).stdin(std::process::Stdio::null());
    execute(direct).assert_code(3);

    let run = |approve: &str, path: &str| {
        execute(fx.sluice_command(
            &["--policy", &policy, "--approve", approve],
            &[example, path],
        ))
    };
    let out = run("deny", &notes);
    assert_eq!((out.code(), out.stdout.as_str()), (0, NOTES), "{out}");
    assert!(
        out.stderr.contains("broker.toml"),
        "the policy's name\n{out}"
    );
    let out = run("allow", &fx.brokered("asked/question.txt"));
    assert_eq!((out.code(), out.stdout.as_str()), (0, QUESTION), "{out}");
    for (path, code) in [
        (fx.brokered("denied/secret.txt"), 1),
        (fx.brokered("asked/question.txt"), 1),
        ("/proc/self/environ".to_owned(), 1),
        (fx.brokered("allowed/missing.txt"), 2),
    ] {
        let out = run("deny", &path);
        out.assert_code(code).assert_no_secret();
        assert!(out.stdout.is_empty(), "{path}\n{out}");
    }
}
