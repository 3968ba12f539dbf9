//! `sluice explain PATH [--write] [--policy P]` (issue 16): from outside a
//! sandbox, would the policy let a program read or write PATH, by which rule,
//! and what would change it. Each answer is checked against what the sandbox
//! then really does.

use sluice_tests::{execute, for_each_concurrently, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

fn explain(fx: &Fixture, args: &[&str]) -> Outcome {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    execute(fx.sluice_cli_command(&all))
}

#[test]
fn explain_agrees_with_the_sandbox_and_names_the_rule() {
    let fx = Fixture::new(PROBE);
    std::fs::create_dir_all(fx.ws_dir.join("pkg")).unwrap();
    std::fs::write(fx.ws_dir.join("pkg/.env"), "TOKEN=1\n").unwrap();
    std::fs::write(fx.ws_dir.join("pkg/.env.example"), "TOKEN=\n").unwrap();
    let cases: [(String, bool, bool, &str); 12] = [
        (
            fx.ws("README.md"),
            false,
            true,
            "allowed by execute \"$WORKSPACE\"",
        ),
        (
            fx.ws("src/new.rs"),
            true,
            true,
            "allowed by write \"$WORKSPACE\"",
        ),
        (
            fx.ws(".git/hooks/pre-commit"),
            true,
            false,
            "protect \"**/.git/hooks/*\" (policy 'default', line",
        ),
        (fx.ws(".git/hooks/pre-commit"), false, true, "allowed by"),
        (
            fx.ws(".env"),
            false,
            false,
            "refused by deny \"**/.env\" (policy 'default', line",
        ),
        // A secret by name at any depth (a `deny` pattern), and a template
        // its exception leaves readable.
        (
            fx.ws("pkg/.env"),
            false,
            false,
            "refused by deny \"**/.env\" (policy 'default', line",
        ),
        (fx.ws("pkg/.env.example"), false, true, "allowed by"),
        // One not there at launch is never made: the person's direnv or
        // shell would load what the program put in it.
        (
            fx.ws("pkg/.env.local"),
            true,
            false,
            "refused by protect \"**/.env.*\" (policy 'default', line",
        ),
        (
            fx.home(".ssh/id_rsa"),
            false,
            false,
            "refused by deny \"~/.ssh\"",
        ),
        (
            fx.home("notes.txt"),
            false,
            false,
            "to allow: sluice run --allow-read ~/notes.txt",
        ),
        (
            fx.outside("secret.txt"),
            true,
            false,
            "no write rule covers it",
        ),
        // Readable, not writable (and harmless if it were written).
        (
            "/dev/urandom".to_owned(),
            true,
            false,
            "to allow: sluice run --allow-write /dev/urandom",
        ),
    ];
    // The cases are independent (no write is read back by another): four at
    // a time, each waiting on its own launches.
    for_each_concurrently(&cases, 4, |(path, write, allowed, says)| {
        let (write, allowed) = (*write, *allowed);
        let mut args = vec![path.as_str()];
        if write {
            args.push("--write");
        }
        let out = explain(&fx, &args);
        out.assert_no_secret();
        assert_eq!(out.code(), if allowed { 0 } else { 1 }, "{out}");
        assert!(out.stdout.contains(says), "expected {says:?}\n{out}");
        // What the sandbox does: the same answer.
        let action = if write { "write" } else { "read" };
        let ran = fx.sluice(&[], &[action, path]);
        assert_eq!(
            ran.code() == 0,
            allowed,
            "explain and the sandbox disagree on {action} {path}\n{out}\n{ran}"
        );
    });
}

#[test]
fn the_suggested_flag_and_policy_line_allow_it() {
    let fx = Fixture::new(PROBE);
    let secret = fx.outside("secret.txt");
    let out = explain(&fx, &[&secret]);
    out.assert_code(1);
    let flag = format!("--allow-read {secret}");
    assert!(out.stdout.contains(&flag), "{out}");
    // Attack without the flag, control with it.
    fx.sluice(&[], &["read", &secret]).assert_blocked();
    fx.sluice(&["--allow-read", &secret], &["read", &secret])
        .assert_ok();
    // The policy line it suggests, in a policy file: now allowed, by that
    // line of that file.
    let policy = fx.write_policy(
        "p.toml",
        &format!("extends = [\"default\"]\n[filesystem]\nread = [\"{secret}\"]\n"),
    );
    let out = explain(&fx, &[&secret, "--policy", &policy]);
    out.assert_code(0);
    let rule = format!("allowed by read \"{secret}\" (policy '{policy}', line 3)");
    assert!(out.stdout.contains(&rule), "{out}");
    fx.sluice(&["--policy", &policy], &["read", &secret])
        .assert_ok();
}

#[test]
fn explain_knows_the_agent_policies() {
    let fx = Fixture::new(PROBE);
    let state = fx.home(".claude/projects/x.jsonl");
    let settings = fx.home(".claude/settings.json");
    std::fs::create_dir_all(fx.home_dir.join(".claude/projects")).unwrap();
    let out = explain(&fx, &[&state, "--write", "--policy", "claude-code"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("allowed by write \"~/.claude\""),
        "{out}"
    );
    let out = explain(&fx, &[&settings, "--write", "--policy", "claude-code"]);
    out.assert_code(1);
    assert!(
        out.stdout.contains("refused by protect \"**/.claude\""),
        "{out}"
    );
    // The same under `default`: the home directory is not writable at all.
    let out = explain(&fx, &[&state, "--write"]);
    out.assert_code(1);
    assert!(
        out.stdout
            .contains("--allow-write ~/.claude/projects/x.jsonl"),
        "{out}"
    );
}

#[test]
fn refusals_are_summarised_recorded_grouped_and_learnt() {
    let fx = Fixture::new(PROBE);
    let learnt = fx.root().join("learnt.toml");
    let learnt = learnt.to_str().unwrap();
    let script = "cat ~/notes.txt; cat ~/notes.txt; cat ~/.ssh/id_rsa; exit 3";
    let out = execute(fx.sluice_command(&["--learn", learnt], &["/bin/sh", "-c", script]));
    out.assert_code(3);
    out.assert_no_secret();
    assert!(
        out.stderr
            .contains("read ~/notes.txt (2 times): allow with --allow-read ~/notes.txt"),
        "{out}"
    );
    assert!(
        out.stderr.contains("read ~/.ssh/id_rsa: refused by deny"),
        "{out}"
    );
    // The policy learnt: notes allowed, the key not (a deny rule).
    let text = std::fs::read_to_string(learnt).unwrap();
    assert!(text.contains("extends = [\"default\"]"), "{text}");
    assert!(
        text.contains("{ path = \"~/notes.txt\", optional = true }"),
        "{text}"
    );
    let read_list = text.split("write = [").next().unwrap();
    assert!(!read_list.contains("id_rsa"), "{text}");
    // Grouped in the audit's end record.
    let audit = std::fs::read_dir(fx.audit_dir())
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .unwrap()
        .path();
    let end = std::fs::read_to_string(audit).unwrap();
    let end: serde_json::Value = serde_json::from_str(end.lines().last().unwrap()).unwrap();
    let notes = fx.home("notes.txt");
    let group = end["refused"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["path"] == notes.as_str())
        .unwrap_or_else(|| panic!("{end}"));
    assert_eq!(group["count"], 2, "{end}");
    assert_eq!(group["access"], "read", "{end}");

    // Control: with the learnt policy the program reads the notes, and the
    // key stays refused.
    let notes_ok = fx.sluice(&["--policy", learnt], &["read", &notes]);
    notes_ok.assert_ok();
    fx.sluice(&["--policy", learnt], &["read", &fx.home(".ssh/id_rsa")])
        .assert_blocked();
    // Without it, refused as before.
    fx.sluice(&[], &["read", &notes]).assert_blocked();
}

#[test]
fn a_failure_without_refusals_seen_says_how_to_find_them() {
    let fx = Fixture::new(PROBE);
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", "exit 2"]));
    out.assert_code(2);
    assert!(out.stderr.contains("sluice run --learn FILE"), "{out}");
    let out = execute(fx.sluice_command(&[], &["/bin/true"]));
    out.assert_code(0);
    assert!(!out.stderr.contains("--learn"), "{out}");
}

#[test]
fn refused_names_reach_the_terminal_escaped() {
    // Attack: a program names a path with a terminal escape sequence; the
    // summary (and the learnt policy's comments) show it escaped. Control:
    // the same name is refused and reported, only harmlessly.
    let fx = Fixture::new(PROBE);
    std::fs::write(fx.home_dir.join("x\u{1b}]0;pwned\u{7}y"), "SECRET-x\n").unwrap();
    let learnt = fx.root().join("learnt.toml");
    let script = "cat \"$HOME/x$(printf '\\033')]0;pwned$(printf '\\007')y\"; exit 1";
    let out = execute(fx.sluice_command(
        &["--learn", learnt.to_str().unwrap()],
        &["/bin/sh", "-c", script],
    ));
    out.assert_code(1);
    assert!(out.stderr.contains("~/x\\x1b]0;pwned\\x07y"), "{out}");
    let summary: String = out
        .stderr
        .lines()
        .filter(|l| l.contains("pwned") && !l.starts_with("cat:"))
        .collect();
    assert!(
        !summary.contains('\u{1b}') && !summary.contains('\u{7}'),
        "{out}"
    );
    let text = std::fs::read_to_string(&learnt).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text}"
    );

    // The guard's refusal names the path escaped too.
    let script = "echo x > \"$PWD/.git/hooks/a$(printf '\\033')]0;pwned$(printf '\\007')\"";
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", script]));
    let said: String = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("sluice: refused writing"))
        .collect();
    assert!(said.contains("a\\x1b]0;pwned\\x07"), "{out}");
    assert!(!said.contains('\u{1b}') && !said.contains('\u{7}'), "{out}");
}
