//! A sluice stacked inside a session that guards (`[filesystem] protect`):
//! it registers its sandbox with the outer session, whose guard then makes
//! its program's writes with a connector restricted by the stacked
//! program's own Landlock ruleset, judged by both `protect` lists
//! (`supervisor/src/broker/guard/stacked.rs`). Before, every such write
//! was refused with `EPERM`.
//!
//! The outer session is the built-in `default` (workspace written, `.git`
//! hooks protected) unless said; the inner one is `default` too, or
//! [`INNER`], which writes only `ws/out` and protects `inner-only`.

use std::fs;
use std::path::Path;

use sluice_tests::audit::{decisions, records, sessions};
use sluice_tests::{execute, sluice_bin, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// The stacked session's policy: the system, the workspace read and run,
/// only `ws/out` written, a `protect` entry the outer `default` lacks,
/// none of `default`'s (so what the outer list refuses is the outer's).
const INNER: &str = r#"
[filesystem]
execute = ["/usr", "/bin", { path = "/sbin", optional = true }, { path = "/lib", optional = true },
           { path = "/lib64", optional = true }, "$WORKSPACE"]
read = ["/etc", "/proc", "/dev/urandom"]
write = ["$WORKSPACE/out", "/dev/null"]
protect = ["**/inner-only"]
"#;

/// `sluice run OUTER -- sluice run INNER -- probe ACTION...`.
fn stacked(fx: &Fixture, outer: &[&str], inner: &[&str], action: &[&str]) -> Outcome {
    let sluice = sluice_bin();
    let probe = fx.probe_path();
    let mut program: Vec<&str> = vec![sluice.to_str().unwrap(), "run"];
    program.extend_from_slice(inner);
    program.extend(["--", &probe]);
    program.extend_from_slice(action);
    execute(fx.sluice_command(outer, &program))
}

/// An outer policy without `protect`, with the network (so no guard):
/// the system, `execute` of `bin` too, the workspace written.
fn unguarded(fx: &Fixture, bin: &str) -> String {
    let policy = format!(
        r#"
[filesystem]
execute = ["/usr", "/bin", {{ path = "/lib", optional = true }}, {{ path = "/lib64", optional = true }},
           "$WORKSPACE", "{bin}"]
read = ["/etc", "/proc", "/sys", "/dev/urandom", "/dev/random"]
write = ["$WORKSPACE", "$TMPDIR", "/dev/null", "/dev/zero"]
[network]
mode = "all"
[environment]
pass = ["PATH", "HOME"]
"#
    );
    fx.write_policy("open.toml", &policy)
}

fn exists(path: &str) -> bool {
    Path::new(path).symlink_metadata().is_ok()
}

/// The reproduction: a stacked `default` session's program writes its
/// workspace in every guarded way (a new file, a directory, a rename, a
/// symlink, a hard link). Control: the outer program writes it itself.
/// Without registration (the `main` of before) the first write failed
/// with EPERM.
#[test]
fn under_a_guarding_session_a_stacked_sluice_writes_its_workspace() {
    let fx = Fixture::new(PROBE);
    fx.sluice(&[], &["write", &fx.ws("outer.txt")]).assert_ok();
    assert!(exists(&fx.ws("outer.txt")));

    let (file, dir) = (fx.ws("inner.txt"), fx.ws("inner-dir"));
    let moved = fx.ws("inner-dir/moved.txt");
    let out = stacked(
        &fx,
        &[],
        &[],
        &[
            "write",
            &file,
            "+",
            "mkdir",
            &dir,
            "+",
            "rename",
            &file,
            &moved,
            "+",
            "symlink",
            "moved.txt",
            &fx.ws("inner-dir/link"),
            "+",
            "hardlink",
            &moved,
            &fx.ws("inner-dir/second"),
        ],
    );
    out.assert_ok();
    assert!(!out.stderr.contains("sandboxed itself further"), "{out}");
    assert!(
        exists(&moved) && exists(&fx.ws("inner-dir/second")),
        "{out}"
    );
    assert_eq!(
        fs::read_link(fx.ws("inner-dir/link")).unwrap(),
        Path::new("moved.txt")
    );

    // A daemon (double fork, `setsid`): it stays beneath the stacked
    // supervisor, a subreaper, and writes as its program.
    let pidfile = fx.ws("daemon.pid");
    stacked(&fx, &[], &[], &["daemon", &pidfile]).assert_ok();
    assert!(exists(&pidfile));

    // A mode that makes a file executable (judged and made by the guard too).
    let sluice = sluice_bin();
    let script = format!("chmod +x {m} && test -x {m} && echo EXEC", m = moved);
    let program = [
        sluice.to_str().unwrap(),
        "run",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ];
    let out = execute(fx.sluice_command(&[], &program));
    assert!(out.code() == 0 && out.stdout.contains("EXEC"), "{out}");
}

/// Under an outer session that does not guard (no `protect`, the network
/// open), nothing can judge the stacked session's `protect` list: it says
/// so instead of ignoring it silently. Control: under a guarding session
/// it says nothing of the kind.
#[test]
fn under_a_session_that_does_not_guard_a_stacked_protect_list_is_said_unapplied() {
    let fx = Fixture::new(PROBE);
    let sluice = sluice_bin();
    let outer = unguarded(&fx, &sluice.parent().unwrap().display().to_string());
    let said = "protect is not applied";
    let out = stacked(&fx, &["--policy", &outer], &[], &["write", &fx.ws("x")]);
    out.assert_ok();
    assert!(out.stderr.contains(said), "{out}");
    let out = stacked(&fx, &[], &[], &["write", &fx.ws("y")]);
    out.assert_ok();
    assert!(!out.stderr.contains(said), "{out}");
}

/// Under an outer `--transparent` session (which guards the same way) the
/// same: the stacked program writes its workspace, not a hook. Control:
/// the inner `readonly` is still refused the same write
/// (`nesting::under_a_transparent_session_a_stacked_sandbox_gets_nothing_its_policy_withholds`
/// for the rest).
#[test]
fn under_a_transparent_session_a_stacked_sluice_writes_its_workspace() {
    let fx = Fixture::new(PROBE);
    let outer = ["--transparent"];
    let (file, dir) = (fx.ws("inner.txt"), fx.ws("inner-dir"));
    stacked(&fx, &outer, &[], &["write", &file, "+", "mkdir", &dir]).assert_ok();
    assert!(exists(&file) && exists(&dir));
    let hook = fx.ws(".git/hooks/pre-commit");
    let before = fs::read(&hook).unwrap();
    stacked(&fx, &outer, &[], &["write", &hook]).assert_blocked();
    assert_eq!(fs::read(&hook).unwrap(), before);
    let readonly = ["--policy", "readonly"];
    stacked(&fx, &outer, &readonly, &["write", &fx.ws("ro.txt")]).assert_blocked();
    assert!(!exists(&fx.ws("ro.txt")));
}

/// Each policy still holds: the outer `protect` list (a hook inside the
/// tree the inner policy writes), the inner one (a name the outer list
/// does not protect), the inner Landlock rules (the workspace outside
/// `ws/out`, which the outer policy writes), and the outer ones. Controls:
/// `ws/out` is written; the outer program writes `inner-only` and the
/// workspace itself.
#[test]
fn a_stacked_sluice_under_a_guard_writes_nothing_either_policy_withholds() {
    let fx = Fixture::new(PROBE);
    fs::create_dir_all(fx.ws("out/.git/hooks")).unwrap();
    // In the workspace: the outer sandbox reads it there.
    let inner_policy = fx.ws("inner.toml");
    fs::write(&inner_policy, INNER).unwrap();
    let inner = ["--policy", inner_policy.as_str()];
    let attack = |action: &[&str]| stacked(&fx, &[], &inner, action);

    // Control: what both allow.
    attack(&["write", &fx.ws("out/made.txt")]).assert_ok();
    assert!(exists(&fx.ws("out/made.txt")));

    // The outer protect list.
    let hook = fx.ws("out/.git/hooks/pre-commit");
    let out = attack(&["write", &hook]);
    out.assert_blocked();
    assert!(out.stderr.contains("refused writing"), "{out}");
    assert!(!exists(&hook));
    // ... by every way of making a name.
    attack(&["symlink", "x", &hook]).assert_blocked();
    attack(&["rename", &fx.ws("out/made.txt"), &hook]).assert_blocked();
    assert!(!exists(&hook) && exists(&fx.ws("out/made.txt")));

    // The inner protect list, which the outer one lacks.
    let own = fx.ws("out/inner-only");
    let out = attack(&["write", &own]);
    out.assert_blocked();
    assert!(out.stderr.contains("inner-only"), "{out}");
    attack(&["mkdir", &own]).assert_blocked();
    attack(&["hardlink", &fx.ws("out/made.txt"), &own]).assert_blocked();
    assert!(!exists(&own));

    // The inner Landlock rules: the workspace outside ws/out.
    attack(&["write", &fx.ws("escaped.txt")]).assert_blocked();
    attack(&["mkdir", &fx.ws("escaped-dir")]).assert_blocked();
    attack(&["rename", &fx.ws("out/made.txt"), &fx.ws("moved-out.txt")]).assert_blocked();
    assert!(!exists(&fx.ws("escaped.txt")) && !exists(&fx.ws("escaped-dir")));
    assert!(!exists(&fx.ws("moved-out.txt")));

    // The outer Landlock rules: outside both.
    attack(&["write", &fx.outside("x")]).assert_blocked();
    assert!(!exists(&fx.outside("x")));

    // A sluice three deep (a sandbox inside the stacked one): its program
    // runs under two filters more than the outer one's and writes nothing,
    // not even what all three policies allow. Control: two deep, the same
    // write is made.
    let sluice = sluice_bin();
    let sluice = sluice.to_str().unwrap();
    let probe = fx.probe_path();
    let deeper = fx.ws("deeper.txt");
    let three = [
        sluice, "run", "--", sluice, "run", "--", &probe, "write", &deeper,
    ];
    let out = execute(fx.sluice_command(&[], &three));
    out.assert_blocked();
    assert!(out.stderr.contains("sandboxed itself further"), "{out}");
    assert!(!exists(&deeper));
    execute(fx.sluice_command(&[], &three[3..])).assert_ok();
    assert!(exists(&deeper));

    // Controls: the outer program writes what the inner policy withholds.
    fx.sluice(&[], &["write", &own]).assert_ok();
    fx.sluice(&[], &["write", &fx.ws("escaped.txt")])
        .assert_ok();
    assert!(exists(&own) && exists(&fx.ws("escaped.txt")));
}

/// Any program of the outer session can register a sandbox of its own
/// choosing (a ruleset that takes away no write, no protect list) and
/// then run under one more filter, as a stacked program does: it gains
/// nothing over the outer program, since the outer `protect` list and
/// Landlock rules still hold. A second registration, a descriptor that is
/// not a ruleset, and a thread under more filters are refused. Controls:
/// with the registration, a workspace write is made; without one (or two
/// filters deep) it is refused as before.
#[test]
fn a_fake_registrant_gains_nothing_over_the_outer_program() {
    let fx = Fixture::new(PROBE);
    let fake = |action: &[&str]| {
        let mut steps = vec!["register-stacked", "weak", "+", "own-filter", "+"];
        steps.extend_from_slice(action);
        fx.sluice(&[], &steps)
    };
    // Control: the registration takes effect.
    fake(&["write", &fx.ws("fake.txt")]).assert_ok();
    assert!(exists(&fx.ws("fake.txt")));
    // Without one, a thread with a filter of its own writes nothing.
    fx.sluice(&[], &["own-filter", "+", "write", &fx.ws("bare.txt")])
        .assert_blocked();
    assert!(!exists(&fx.ws("bare.txt")));

    // The outer protect list and Landlock rules.
    let hook = fx.ws(".git/hooks/pre-commit");
    let before = fs::read(&hook).unwrap();
    fake(&["write", &hook]).assert_blocked();
    fake(&["rename", &fx.ws("fake.txt"), &hook]).assert_blocked();
    assert_eq!(fs::read(&hook).unwrap(), before);
    fake(&["write", &fx.outside("x")]).assert_blocked();
    fake(&["write", &fx.home("x")]).assert_blocked();
    assert!(!exists(&fx.outside("x")) && !exists(&fx.home("x")));

    // Two filters deeper than the registrant: not its program.
    fake(&["own-filter", "+", "write", &fx.ws("deeper.txt")]).assert_blocked();
    assert!(!exists(&fx.ws("deeper.txt")));

    // Registering twice, or something else than a ruleset.
    let out = fx.sluice(&[], &["register-stacked", "twice"]);
    out.assert_blocked();
    assert!(
        out.stdout.contains("registered a stacked sandbox already"),
        "{out}"
    );
    let out = fx.sluice(&[], &["register-stacked", "not-ruleset"]);
    out.assert_blocked();
    assert!(out.stdout.contains("not a Landlock ruleset"), "{out}");

    // Each registration is in the session's audit record, taken or not.
    let records: Vec<_> = (sessions(&fx).iter())
        .flat_map(|s| records(&fx, s))
        .collect();
    let registrations: Vec<_> = decisions(&records)
        .into_iter()
        .filter(|r| r["op"] == "register-stacked")
        .collect();
    let has = |decision: &str, reason: &str| {
        registrations.iter().any(|r| {
            r["decision"] == decision && r["reason"].as_str().unwrap_or("").contains(reason)
        })
    };
    assert!(has("allowed", "made in its sandbox"), "{registrations:#?}");
    assert!(has("error", "already"), "{registrations:#?}");
    assert!(has("error", "not a Landlock ruleset"), "{registrations:#?}");
}

/// Claude Code's sandboxed Bash: sandbox-runtime runs bwrap, which is
/// sluice's stand-in, under the outer `claude-code` policy. The command
/// writes the tree bound for writing; `.git/hooks` inside it stays
/// protected by the outer list, and the workspace outside the bind by the
/// stand-in's own view.
#[test]
fn the_bwrap_stand_in_under_claude_code_writes_its_binds_and_no_hook() {
    let fx = Fixture::new(PROBE);
    let out_dir = fx.ws("out");
    fs::create_dir_all(fx.ws("out/.git/hooks")).unwrap();
    let script = format!(
        "echo ok > {out}/made && cat {out}/made; mkdir {out}/dir && echo DIR; \
         if echo x > {out}/.git/hooks/pre-commit 2>/dev/null; then echo HOOK; fi; \
         if echo no > {ws}/escaped 2>/dev/null; then echo WROTE; fi",
        out = out_dir,
        ws = fx.ws("")
    );
    let program = [
        "bwrap",
        "--ro-bind",
        "/",
        "/",
        "--bind",
        &out_dir,
        &out_dir,
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--die-with-parent",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ];
    let out = execute(fx.sluice_command(&["--policy", "claude-code"], &program));
    out.assert_code(0);
    assert!(
        out.stdout.contains("ok\n") && out.stdout.contains("DIR"),
        "{out}"
    );
    assert!(
        exists(&fx.ws("out/made")) && exists(&fx.ws("out/dir")),
        "{out}"
    );
    assert!(!out.stdout.contains("HOOK"), "{out}");
    assert!(!exists(&fx.ws("out/.git/hooks/pre-commit")), "{out}");
    assert!(
        !out.stdout.contains("WROTE") && !exists(&fx.ws("escaped")),
        "{out}"
    );
    // The whole workspace bound, as sandbox-runtime binds the working
    // directory: written, its existing hook not.
    let ws = fx.ws("");
    let hook = fx.ws(".git/hooks/pre-commit");
    let before = fs::read(&hook).unwrap();
    let script = format!(
        "echo ok > {ws}/made-too && echo MADE; \
         if echo x > {hook} 2>/dev/null; then echo HOOK; fi"
    );
    let program = [
        "bwrap",
        "--ro-bind",
        "/",
        "/",
        "--bind",
        &ws,
        &ws,
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ];
    let out = execute(fx.sluice_command(&["--policy", "claude-code"], &program));
    out.assert_code(0);
    assert!(
        out.stdout.contains("MADE") && exists(&fx.ws("made-too")),
        "{out}"
    );
    assert!(!out.stdout.contains("HOOK"), "{out}");
    assert_eq!(fs::read(&hook).unwrap(), before);
}

/// The same as an unprivileged user: the stacked program writes its
/// workspace, not a hook, not outside. Control: the outer program writes.
#[test]
fn as_a_user_a_stacked_sluice_under_a_guard_writes_its_workspace_only() {
    const NOBODY: u32 = 65534;
    let fx = Fixture::new(PROBE);
    fs::create_dir(fx.home("tmp")).unwrap();
    fx.give_to(NOBODY, NOBODY);
    let sluice = sluice_bin();
    let sluice = sluice.to_str().unwrap();
    let probe = fx.probe_path();
    let as_nobody = |program: &[&str]| super::nesting::as_nobody(&fx, &[], program);
    as_nobody(&[&probe, "write", &fx.ws("outer.txt")]).assert_ok();
    let inner = |action: &[&str]| {
        let program: Vec<&str> = [sluice, "run", "--", probe.as_str()]
            .into_iter()
            .chain(action.iter().copied())
            .collect();
        as_nobody(&program)
    };
    inner(&[
        "write",
        &fx.ws("inner.txt"),
        "+",
        "mkdir",
        &fx.ws("inner-dir"),
    ])
    .assert_ok();
    assert!(exists(&fx.ws("inner.txt")) && exists(&fx.ws("inner-dir")));
    let hook = fx.ws(".git/hooks/pre-commit");
    let before = fs::read(&hook).unwrap();
    inner(&["write", &hook]).assert_blocked();
    assert_eq!(fs::read(&hook).unwrap(), before);
    inner(&["write", &fx.outside("x")]).assert_blocked();
    assert!(!exists(&fx.outside("x")));
}

/// sandbox-runtime's masks inside the tree it binds for writing: what
/// exists bound read-only onto itself (`ws/a/b`, `.git/hooks`), what does
/// not yet masked by `/dev/null` (`ws/newrc`), a tree written again
/// beneath a mask (`ws/a/b/out`).
fn masked_view(fx: &Fixture) -> Vec<String> {
    fs::create_dir_all(fx.ws("a/b/out")).unwrap();
    fs::write(fx.ws("a/b/file.txt"), "orig\n").unwrap();
    let (ws, ab, hooks, out, rc) = (
        fx.ws(""),
        fx.ws("a/b"),
        fx.ws(".git/hooks"),
        fx.ws("a/b/out"),
        fx.ws("newrc"),
    );
    let mut v: Vec<String> = ["--ro-bind", "/", "/", "--bind", &ws, &ws]
        .map(String::from)
        .to_vec();
    for p in [&ab, &hooks] {
        v.extend(["--ro-bind".into(), p.clone(), p.clone()]);
    }
    v.extend(["--bind".into(), out.clone(), out]);
    v.extend(["--ro-bind".into(), "/dev/null".into(), rc]);
    v.extend(["--dev", "/dev", "--proc", "/proc"].map(String::from));
    v
}

/// A read-only mask inside a written tree is a `protect` entry of the
/// stacked policy, which the outer guard (`claude-code` protects) judges:
/// the command writes the tree, not the masks, in no way (write, create,
/// mkdir, rename onto, rename an ancestor away and remake the path, a
/// hard link, a symlink, truncate). Controls: it reads the masks and
/// writes the tree beside them and the tree bound beneath one; the outer
/// program writes the masked file itself.
#[test]
fn the_stand_in_keeps_read_only_masks_inside_a_written_tree_under_a_guard() {
    let fx = Fixture::new(PROBE);
    let mut args = masked_view(&fx);
    let hook = fx.ws(".git/hooks/pre-commit");
    let hook_before = fs::read(&hook).unwrap();
    let script = format!(
        "cd {ws}; \
         echo ok > made && echo MADE; cat a/b/file.txt; \
         echo ok > a/b/out/w && echo EXCEPTION; \
         echo x > a/b/file.txt 2>/dev/null && echo W-WRITE; \
         echo x > a/b/new.txt 2>/dev/null && echo W-CREATE; \
         mkdir a/b/d 2>/dev/null && echo W-MKDIR; \
         truncate -s 0 a/b/file.txt 2>/dev/null && echo W-TRUNC; \
         echo x > t1 && mv t1 a/b/file.txt 2>/dev/null && echo W-RENAME-ONTO; \
         ln a/b/file.txt hard 2>/dev/null && echo W-LINK; \
         echo x > .git/hooks/pre-commit 2>/dev/null && echo W-HOOK; \
         echo x > newrc 2>/dev/null && echo W-NEWRC; \
         mkdir newrc 2>/dev/null && echo W-NEWRC-DIR; \
         ln -s /etc/passwd newrc 2>/dev/null && echo W-NEWRC-LINK; \
         echo x > t2 && mv t2 newrc 2>/dev/null && echo W-NEWRC-RENAME; \
         mkdir -p evil/b && echo x > evil/b/file.txt && mv evil/b a/b2 && \
           mv a/b2 a/b 2>/dev/null && echo W-RENAME-DIR-ONTO; \
         mv a a-away 2>/dev/null && echo MOVED-AWAY; \
         mkdir -p a/b 2>/dev/null; echo x > a/b/file.txt 2>/dev/null && echo W-REMADE; \
         rmdir a/b a 2>/dev/null; \
         mkdir -p evil2/b && echo x > evil2/b/file.txt && mv -T evil2 a 2>/dev/null && \
           echo W-ANCESTOR-RENAMED-IN; \
         mkdir -p a-away/b2 && mv -T a-away/b2 a-away/b 2>/dev/null && echo W-MOVED-MASK-REPLACED; \
         mv -T a-away a 2>/dev/null && echo MOVED-BACK; \
         true",
        ws = fx.ws("")
    );
    args.extend(["--", "/bin/sh", "-c", &script].map(String::from));
    let mut program = vec!["bwrap"];
    program.extend(args.iter().map(String::as_str));
    let out = execute(fx.sluice_command(&["--policy", "claude-code"], &program));
    out.assert_code(0);
    assert!(
        out.stdout.contains("MADE") && exists(&fx.ws("made")),
        "{out}"
    );
    assert!(out.stdout.contains("orig\n"), "{out}");
    assert!(out.stdout.contains("EXCEPTION"), "{out}");
    for attack in [
        "W-WRITE",
        "W-CREATE",
        "W-MKDIR",
        "W-TRUNC",
        "W-RENAME-ONTO",
        "W-LINK",
        "W-HOOK",
        "W-NEWRC",
        "W-RENAME-DIR-ONTO",
        "W-REMADE",
        "W-ANCESTOR-RENAMED-IN",
    ] {
        assert!(!out.stdout.contains(attack), "{attack}\n{out}");
    }
    // Wherever `a` is now, the masked file is as it was.
    let file = ["a/b/file.txt", "a-away/b/file.txt"]
        .iter()
        .map(|p| fx.ws(p))
        .find(|p| exists(p))
        .unwrap();
    if out.stdout.contains("MOVED-AWAY") {
        assert!(!exists(&fx.ws("a/b/file.txt")), "{out}");
    }
    assert_eq!(fs::read_to_string(&file).unwrap(), "orig\n", "{out}");
    assert!(!exists(&fx.ws("a/b/new.txt")) && !exists(&fx.ws("hard")));
    assert!(!exists(&fx.ws("newrc")), "{out}");
    assert_eq!(fs::read(&hook).unwrap(), hook_before);
    // Control: the outer program writes the file the stand-in masked.
    fx.sluice(&["--policy", "claude-code"], &["write", &file])
        .assert_ok();
    assert_ne!(fs::read_to_string(&file).unwrap(), "orig\n");
}

/// Fail closed: under an outer session that does not guard, nothing
/// would keep the masks, and the stand-in refuses the command line (exit
/// 125, the option named) before the command runs. Control: the same
/// outer session runs the view without its masks.
#[test]
fn without_an_outer_guard_the_stand_in_refuses_read_only_masks_in_a_written_tree() {
    let fx = Fixture::new(PROBE);
    let policy = unguarded(&fx, "$WORKSPACE");
    let marker = fx.ws("ran.txt");
    let run = |args: &[String]| {
        let mut program = vec!["bwrap"];
        program.extend(args.iter().map(String::as_str));
        let script = format!("echo ran > {marker}");
        program.extend(["--", "/bin/sh", "-c", &script]);
        execute(fx.sluice_command(&["--policy", &policy], &program))
    };
    let out = run(&masked_view(&fx));
    out.assert_code(125);
    out.assert_stderr_says("bwrap: --ro-bind ");
    out.assert_stderr_says("does not guard writes");
    assert!(!exists(&marker), "{out}");
    assert_eq!(fs::read_to_string(fx.ws("a/b/file.txt")).unwrap(), "orig\n");
    // Control: the tree bound without masks runs.
    let ws = fx.ws("");
    let plain: Vec<String> = ["--ro-bind", "/", "/", "--bind", &ws, &ws, "--dev", "/dev"]
        .map(String::from)
        .to_vec();
    run(&plain).assert_code(0);
    assert!(exists(&marker));
}

/// The same as an unprivileged user: the masks are kept, the tree beside
/// them written. Control: the outer program writes the masked file.
#[test]
fn as_a_user_the_stand_in_keeps_read_only_masks_inside_a_written_tree() {
    const NOBODY: u32 = 65534;
    let fx = Fixture::new(PROBE);
    let mut args = masked_view(&fx);
    fs::create_dir(fx.home("tmp")).unwrap();
    fx.give_to(NOBODY, NOBODY);
    let script = format!(
        "cd {ws}; echo ok > made && echo MADE; echo ok > a/b/out/w && echo EXCEPTION; \
         echo x > a/b/file.txt 2>/dev/null && echo W-WRITE; \
         echo x > a/b/new.txt 2>/dev/null && echo W-CREATE; \
         echo x > newrc 2>/dev/null && echo W-NEWRC; \
         echo x > t1 && mv t1 a/b/file.txt 2>/dev/null && echo W-RENAME-ONTO; true",
        ws = fx.ws("")
    );
    args.extend(["--", "/bin/sh", "-c", &script].map(String::from));
    let mut program = vec!["bwrap"];
    program.extend(args.iter().map(String::as_str));
    let out = super::nesting::as_nobody(&fx, &["--policy", "claude-code"], &program);
    out.assert_code(0);
    assert!(
        out.stdout.contains("MADE") && out.stdout.contains("EXCEPTION"),
        "{out}"
    );
    for attack in ["W-WRITE", "W-CREATE", "W-NEWRC", "W-RENAME-ONTO"] {
        assert!(!out.stdout.contains(attack), "{attack}\n{out}");
    }
    assert_eq!(fs::read_to_string(fx.ws("a/b/file.txt")).unwrap(), "orig\n");
    assert!(!exists(&fx.ws("newrc")) && !exists(&fx.ws("a/b/new.txt")));
    let probe = fx.probe_path();
    super::nesting::as_nobody(
        &fx,
        &["--policy", "claude-code"],
        &[&probe, "write", &fx.ws("a/b/file.txt")],
    )
    .assert_ok();
}
