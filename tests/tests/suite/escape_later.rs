//! Nothing the program writes runs outside the sandbox later (issue 14): the
//! files the person's own tools run on an unrelated action (git's hooks and
//! configuration at any depth, editor and agent settings) cannot be written,
//! made, renamed, linked or symlinked into place by the program, whether they
//! existed at launch or not, during the session as after it.
//!
//! Every vector is tested with git itself (`escape_later_git.rs`): the control
//! runs the same script without sluice and shows that the person's next `git
//! status` or `git commit` then runs the program's command (it leaves a marker
//! outside the workspace); under sluice the same script leaves nothing git
//! runs.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::{execute, sluice_bin, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// Where the program's command leaves its mark when git runs it: outside
/// the workspace, so only a command run outside the sandbox can make it.
pub(super) fn marker(fx: &Fixture) -> String {
    fx.outside("ran")
}

/// `git ARGS` in the workspace's `dir` as the person would run it
/// ([`Fixture::git_outside`]).
pub(super) fn git_outside(fx: &Fixture, dir: &str, args: &[&str]) -> Outcome {
    fx.git_outside(Path::new(&fx.ws(dir)), args)
}

/// `sh -c SCRIPT sh MARKER` in the workspace, without sluice.
pub(super) fn script_outside(fx: &Fixture, script: &str) -> Outcome {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script, "sh", &marker(fx)])
        .current_dir(&fx.ws_dir)
        .env("HOME", &fx.home_dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null());
    execute(cmd)
}

/// The same script inside sluice.
pub(super) fn script_inside(fx: &Fixture, sluice_args: &[&str], script: &str) -> Outcome {
    let mark = marker(fx);
    execute(fx.sluice_command(sluice_args, &["/bin/sh", "-c", script, "sh", &mark]))
}

/// A policy extending `default` with a pattern of its own.
pub(super) const EXTENDING: &str =
    "extends = [\"default\"]\n\n[filesystem]\nprotect = [\"**/.tool\"]\n";

/// The three ways each vector is tested (issue 14's "done when"): the
/// built-in `default`, a policy extending it, and `--transparent`.
const WAYS: [&str; 3] = ["default", "a policy extending it", "--transparent"];

/// The `sluice run` arguments for `way` (one of [`WAYS`]) in `fx`.
fn way_args(fx: &Fixture, way: &str) -> Vec<String> {
    match way {
        "default" => vec![],
        "--transparent" => vec!["--transparent".to_owned()],
        _ => vec![
            "--policy".to_owned(),
            fx.write_policy("extending.toml", EXTENDING),
        ],
    }
}

/// `script_inside` with `way`'s arguments.
fn script_way(fx: &Fixture, way: &str, script: &str) -> Outcome {
    let args = way_args(fx, way);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    script_inside(fx, &args, script)
}

/// A repository at `dir` (relative to the workspace) with one commit.
pub(super) fn repository(fx: &Fixture, dir: &str) {
    fs::create_dir_all(fx.ws(dir)).unwrap();
    git_outside(fx, dir, &["init", "-q"]).succeeded();
    git_outside(fx, dir, &["commit", "-q", "--allow-empty", "-m", "one"]).succeeded();
}

/// A repository `proj` with a submodule's repository at
/// `.git/modules/vendor/lib` (its name holds a slash, as `git submodule add
/// URL vendor/lib` names it) checked out at `vendor/lib`, with one commit.
pub(super) fn submodule(fx: &Fixture) {
    repository(fx, "proj");
    fs::create_dir_all(fx.ws("proj/.git/modules/vendor")).unwrap();
    fs::create_dir_all(fx.ws("proj/vendor")).unwrap();
    let gitdir = ".git/modules/vendor/lib";
    git_outside(
        fx,
        "proj",
        &["init", "-q", "--separate-git-dir", gitdir, "vendor/lib"],
    )
    .succeeded();
    git_outside(
        fx,
        "proj/vendor/lib",
        &["commit", "-q", "--allow-empty", "-m", "one"],
    )
    .succeeded();
}

/// A pre-commit hook that leaves the marker.
pub(super) const HOOK: &str = r#"printf '#!/bin/sh\ntouch %s\n' "$1""#;

/// `fchmod` on a descriptor opened for reading (perl's `chmod` of a handle).
pub(super) const FCHMOD: &str =
    r#"'open my $f, "<", $ARGV[0] or die; chmod 0755, $f or die "$!\n"'"#;

/// `fchmodat2(fd, "", 0755, AT_EMPTY_PATH)` on a descriptor opened for reading.
pub(super) const FCHMODAT2_EMPTY: &str = r#"'my $e = ""; open my $f, "<", $ARGV[0] or die;
    syscall(452, fileno($f), $e, 0755, 0x1000) == 0 or die "$!\n"'"#;

/// `setxattr(path, "system.posix_acl_access", u::rwx g::r o::r)`: an access
/// ACL that sets the owner's execute permission, as `chmod u+x` would.
pub(super) const ACL_EXEC: &str = r#"'import os, struct, sys
acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, 0xffffffff)
    for t, p in [(1, 7), (4, 4), (0x20, 4)])
os.setxattr(sys.argv[1], "system.posix_acl_access", acl)'"#;

/// Other attributes, on a descriptor and on `.`, read back.
const XATTRS: &str = r#"'import os, sys
os.setxattr(os.open(sys.argv[1], os.O_RDONLY), "user.t", b"\0v")
os.setxattr(".", "user.d", b"")
print(os.getxattr(sys.argv[1], "user.t") == b"\0v", os.getxattr(".", "user.d") == b"")'"#;

/// Exit status 0 (`Outcome::assert_ok` is the probe's, which prints `OK`).
pub(super) trait Succeeded {
    fn succeeded(&self);
}

impl Succeeded for Outcome {
    fn succeeded(&self) {
        assert!(self.status.success(), "{self}");
    }
}

pub(super) fn assert_ran(fx: &Fixture, what: &str, out: &dyn std::fmt::Display) {
    assert!(
        Path::new(&marker(fx)).exists(),
        "control: git did not run the command ({what})\n{out}"
    );
}

pub(super) fn assert_not_ran(fx: &Fixture, what: &str, out: &dyn std::fmt::Display) {
    assert!(
        !Path::new(&marker(fx)).exists(),
        "git ran the program's command after the session ({what})\n{out}"
    );
}

/// A policy's own entries are enforced like the built-in ones; the same
/// write beside them passes.
#[test]
fn a_policy_adds_its_own_protected_paths() {
    let fx = Fixture::new(PROBE);
    let policy = fx.write_policy(
        "extending.toml",
        "extends = [\"default\"]\n\n[filesystem]\nprotect = [\"**/.tool\"]\n",
    );
    let out = script_inside(
        &fx,
        &["--policy", &policy],
        "mkdir -p a/.tool; echo x > a/.tool/run.json; echo $?; echo y > a/tool.json; echo $?",
    );
    // The directory itself is refused, so the file cannot be made in it.
    assert_eq!(out.stdout, "2\n0\n", "{out}");
    assert!(!Path::new(&fx.ws("a/.tool")).exists(), "{out}");
    assert!(!Path::new(&fx.ws("a/.tool/run.json")).exists(), "{out}");
    assert_eq!(fs::read_to_string(fx.ws("a/tool.json")).unwrap(), "y\n");
    let shown = execute({
        let mut c = fx.sluice_cli_command(&["policy", "show", &policy]);
        c.current_dir(&fx.ws_dir);
        c
    });
    assert!(shown.stdout.contains("\"**/.tool\""), "{shown}");
    assert!(shown.stdout.contains("\"**/.git/commondir\""), "{shown}");
}

/// Editors, agents and tools that run what a project says: their settings
/// are refused at any depth; the same names elsewhere are written.
#[test]
fn editor_and_agent_settings_are_refused_at_any_depth() {
    for way in WAYS {
        editor_and_agent_settings_are_refused(way);
    }
}

fn editor_and_agent_settings_are_refused(way: &str) {
    let fx = Fixture::new(PROBE);
    let refused = [
        ".vscode/tasks.json",
        "pkg/.vscode/settings.json",
        ".claude/settings.json",
        "a/b/.claude/settings.local.json",
        ".idea/workspace.xml",
        ".mcp.json",
        "pkg/.envrc",
        ".devcontainer/devcontainer.json",
        ".husky/pre-commit",
        ".pre-commit-config.yaml",
        ".gitmodules",
        "opencode.json",
        ".opencode/agent.md",
        "crush.json",
        ".roo/mcp.json",
        ".kilocode/mcp.json",
        ".continue/config.yaml",
        ".amazonq/mcp.json",
        ".kiro/settings/mcp.json",
        ".windsurf/rules.md",
        ".zed/settings.json",
        "pkg/.helix/languages.toml",
        "mise.toml",
        "pkg/.mise.toml",
        ".mise/config.toml",
        ".config/mise.toml",
        ".tool-versions",
    ];
    let mut script = String::new();
    for rel in refused {
        let dir = Path::new(rel).parent().unwrap().to_str().unwrap();
        if !dir.is_empty() {
            script.push_str(&format!("mkdir -p {dir} 2>/dev/null; "));
        }
        script.push_str(&format!("echo x > {rel} 2>/dev/null && echo wrote {rel}; "));
    }
    // Again: recorded again, told once.
    script.push_str("mkdir .claude 2>/dev/null; ");
    script.push_str("echo x > vscode-tasks.json && echo control");
    let out = script_way(&fx, way, &script);
    assert_eq!(out.stdout, "control\n", "{out}");
    for rel in refused {
        assert!(!Path::new(&fx.ws(rel)).exists(), "{rel} was made\n{out}");
    }
    // Each refusal is recorded, with the rule; the person is told once per
    // path.
    let session = sluice_tests::audit::only_session(&fx);
    let records = sluice_tests::audit::records(&fx, &session);
    let refusals: Vec<_> = records
        .iter()
        .filter(|r| r["via"] == "guard" && r["decision"] == "denied")
        .collect();
    let claude = fx.ws(".claude");
    let recorded = refusals
        .iter()
        .filter(|r| {
            r["path_asked"] == claude.as_str()
                && r["rule"].as_str().unwrap_or("").contains("**/.claude")
        })
        .count();
    assert_eq!(recorded, 2, "{records:#?}");
    assert!(refusals.len() >= refused.len(), "{refusals:#?}");
    assert_eq!(
        out.stderr.matches(&format!("writing {claude}:")).count(),
        1,
        "{out}"
    );
}

/// A repository the program makes keeps working after the session: its
/// configuration is written (through git's own lock-and-rename), but a key
/// that makes git run a command is refused and named.
#[test]
fn a_repository_made_inside_keeps_working_and_its_config_runs_nothing() {
    let script = "git init -q mine && cd mine \
                  && git -c user.name=t -c user.email=t@t commit -q --allow-empty -m one \
                  && git config user.name someone && echo configured; \
                  git config core.fsmonitor \"touch $1; false\" \
                  && echo fsmonitor set || echo fsmonitor refused";
    let control = Fixture::new(PROBE);
    let out = script_outside(&control, script);
    assert_eq!(out.stdout, "configured\nfsmonitor set\n", "{out}");
    let out = git_outside(&control, "mine", &["status", "--porcelain"]);
    assert_ran(&control, "fsmonitor set by git config", &out);

    for way in WAYS {
        let fx = Fixture::new(PROBE);
        let inside = script_way(&fx, way, script);
        assert_eq!(
            inside.stdout, "configured\nfsmonitor refused\n",
            "{way}: {inside}"
        );
        assert!(inside.stderr.contains("core.fsmonitor"), "{inside}");
        let log = git_outside(&fx, "mine", &["log", "--oneline"]);
        log.succeeded();
        assert_eq!(log.stdout.lines().count(), 1, "{log}");
        let name = git_outside(&fx, "mine", &["config", "--local", "user.name"]);
        assert_eq!(name.stdout, "someone\n", "{name}");
        // git init learnt that the file system keeps modes by setting and
        // clearing the configuration's execute bit.
        let filemode = git_outside(&fx, "mine", &["config", "--local", "core.filemode"]);
        assert_eq!(filemode.stdout, "true\n", "{filemode}");
        let out = git_outside(&fx, "mine", &["status", "--porcelain"]);
        assert_not_ran(&fx, "fsmonitor set by git config", &out);
        // The hooks git init wrote are the inert samples.
        let hooks = fs::read_dir(fx.ws("mine/.git/hooks")).unwrap().count();
        assert!(hooks > 0, "git init wrote no sample hooks");
    }
}

/// Control: git keeps working inside on a submodule's repository (in
/// `.git/modules`, a name with a slash) and a worktree's (in
/// `.git/worktrees`), configuration included, and outside afterwards.
#[test]
fn existing_submodules_and_worktrees_keep_working_inside() {
    let script = "cd proj/vendor/lib && echo a > f && git add f \
                  && git -c user.name=t -c user.email=t@t commit -q -m inside \
                  && git config user.name someone && git checkout -q -b topic \
                  && cd ../../../wt && echo b > g && git add g \
                  && git -c user.name=t -c user.email=t@t commit -q -m inside-wt \
                  && echo done";
    for way in WAYS {
        let fx = Fixture::new(PROBE);
        submodule(&fx);
        git_outside(&fx, "proj", &["worktree", "add", "-q", "../wt"]).succeeded();
        let out = script_way(&fx, way, script);
        assert_eq!(out.stdout, "done\n", "{way}: {out}");
        assert!(!out.stderr.contains("refused"), "{out}");
        let log = git_outside(&fx, "proj/vendor/lib", &["log", "--oneline", "topic"]);
        assert!(log.stdout.contains("inside"), "{log}");
        let name = git_outside(&fx, "proj/vendor/lib", &["config", "--local", "user.name"]);
        assert_eq!(name.stdout, "someone\n", "{name}");
        let log = git_outside(&fx, "wt", &["log", "--oneline"]);
        assert!(log.stdout.contains("inside-wt"), "{log}");
        git_outside(&fx, "proj", &["status", "--porcelain"]).succeeded();
    }
}

/// `.gitmodules` as git writes it (a lock renamed into place: `git config
/// -f .gitmodules`, `git submodule add`, `git mv`) is checked like a
/// repository's configuration: a submodule's keys pass, `update = !command`
/// (which `git submodule update` would run) is refused and named.
#[test]
fn gitmodules_is_written_by_git_without_a_command() {
    let script = "cd proj && git config -f .gitmodules submodule.vendor/lib.branch main \
                  && echo branch; git config -f .gitmodules submodule.vendor/lib.update \
                  \"!touch $1\" && echo update set || echo update refused";
    for way in WAYS {
        let fx = Fixture::new(PROBE);
        repository(&fx, "proj");
        let modules = "[submodule \"vendor/lib\"]\n\tpath = vendor/lib\n\turl = ../lib\n";
        fs::write(fx.ws("proj/.gitmodules"), modules).unwrap();
        let out = script_way(&fx, way, script);
        assert_eq!(out.stdout, "branch\nupdate refused\n", "{way}: {out}");
        assert!(out.stderr.contains("submodule.<name>.update"), "{out}");
        let keys = ["config", "-f", ".gitmodules", "--get-regexp", "submodule"];
        let got = git_outside(&fx, "proj", &keys);
        assert!(got.stdout.contains(".branch main"), "{got}");
        assert!(!got.stdout.contains(".update"), "{got}");
    }
}

/// Control: making any other file executable works inside as outside, by
/// name and through a descriptor, and so does a mode change of the
/// directory on the way to a protected path.
#[test]
fn making_other_files_executable_still_works() {
    use std::os::unix::fs::PermissionsExt;
    for way in WAYS {
        let fx = Fixture::new(PROBE);
        repository(&fx, "sub");
        fs::write(fx.ws("build.sh"), "#!/bin/sh\n").unwrap();
        fs::write(fx.ws("tool.sh"), "#!/bin/sh\n").unwrap();
        fs::write(fx.ws("run.sh"), "#!/bin/sh\n").unwrap();
        fs::write(fx.ws("acl.sh"), "#!/bin/sh\n").unwrap();
        let script = format!(
            "chmod +x build.sh && perl -e {FCHMOD} tool.sh \
             && python3 -S -c {ACL_EXEC} acl.sh && python3 -S -c {XATTRS} tool.sh \
             && perl -e {FCHMODAT2_EMPTY} run.sh \
             && chmod 751 sub/.git/hooks && echo done"
        );
        let out = script_way(&fx, way, &script);
        assert_eq!(out.stdout, "True True\ndone\n", "{way}: {out}");
        assert!(!out.stderr.contains("refused"), "{out}");
        let mode = |rel: &str| fs::metadata(fx.ws(rel)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("build.sh") & 0o111, 0o111, "{out}");
        assert_eq!(mode("tool.sh"), 0o755, "{out}");
        assert_eq!(mode("run.sh"), 0o755, "{out}");
        assert_eq!(mode("acl.sh"), 0o744, "{out}");
        assert_eq!(mode("sub/.git/hooks"), 0o751, "{out}");
    }
}

/// The protection holds while the program runs: the person's own git,
/// run meanwhile, runs nothing the program wrote.
#[test]
fn protected_during_the_session_not_only_after() {
    for way in WAYS {
        protected_during_the_session(way);
    }
}

fn protected_during_the_session(way: &str) {
    let fx = Fixture::new(PROBE);
    repository(&fx, "sub");
    let script = format!(
        "{HOOK} > sub/.git/hooks/pre-commit; chmod +x sub/.git/hooks/pre-commit; \
         touch ready; i=0; while [ ! -e done ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done"
    );
    let mark = marker(&fx);
    let args = way_args(&fx, way);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = fx.sluice_command(&args, &["/bin/sh", "-c", &script, "sh", &mark]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !Path::new(&fx.ws("ready")).exists() {
        assert!(Instant::now() < deadline, "the program never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = git_outside(&fx, "sub", &["commit", "-q", "--allow-empty", "-m", "two"]);
    fs::write(fx.ws("done"), "").unwrap();
    let session = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&session.stderr);
    assert!(stderr.contains("refused writing"), "{stderr}");
    assert_not_ran(&fx, "a hook during the session", &out);
}

/// `program` in the workspace's `dir` as the unprivileged user 65534,
/// with the fixture's home and temporary directory.
pub(super) fn as_nobody(fx: &Fixture, program: &[&str], dir: &str) -> Outcome {
    let mut cmd = sluice_tests::setpriv_nobody();
    cmd.args(program)
        .current_dir(fx.ws(dir))
        .env("HOME", &fx.home_dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("TMPDIR", fx.root().join("tmp"))
        .stdin(Stdio::null());
    execute(cmd)
}

/// Gives the fixture, its temporary, state and outside directories to the
/// unprivileged user 65534 ([`as_nobody`]).
pub(super) fn give_to_nobody(fx: &Fixture) {
    fs::create_dir_all(fx.root().join("tmp")).unwrap();
    fx.give_to(65534, 65534);
    for dir in [
        fx.outside_dir.clone(),
        fx.root().join("tmp"),
        fx.root().join("state"),
    ] {
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    }
}

/// The same as an unprivileged user, whose sandbox is made in a user
/// namespace of its own.
#[test]
fn a_nested_hook_is_refused_for_an_unprivileged_user() {
    // And a disabled hook the person keeps in `sub2`, made executable by
    // name and through a descriptor.
    let script = format!(
        "{HOOK} > sub/.git/hooks/pre-commit; chmod +x sub/.git/hooks/pre-commit; \
         chmod +x sub2/.git/hooks/pre-commit; perl -e {FCHMOD} sub2/.git/hooks/pre-commit"
    );
    let commit = [
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    ];
    let sluice = sluice_bin();
    for under_sluice in [false, true] {
        let fx = Fixture::new(PROBE);
        repository(&fx, "sub");
        repository(&fx, "sub2");
        let second = format!("{}2", marker(&fx));
        let hook = format!("#!/bin/sh\ntouch {second}\n");
        fs::write(fx.ws("sub2/.git/hooks/pre-commit"), hook).unwrap();
        give_to_nobody(&fx);
        let mark = marker(&fx);
        let ws = fx.ws("");
        let mut program: Vec<&str> = Vec::new();
        if under_sluice {
            program.extend([sluice.to_str().unwrap(), "run", "--workspace", &ws, "--"]);
        }
        program.extend(["/bin/sh", "-c", &script, "sh", &mark]);
        let inside = as_nobody(&fx, &program, "");
        let out = as_nobody(&fx, &commit, "sub");
        let out2 = as_nobody(&fx, &commit, "sub2");
        let ran2 = Path::new(&second).exists();
        if under_sluice {
            assert!(inside.stderr.contains("refused writing"), "{inside}");
            assert_not_ran(&fx, "a nested hook, unprivileged", &out);
            assert!(
                !ran2,
                "a disabled hook made executable ran\n{inside}\n{out2}"
            );
        } else {
            assert_ran(&fx, "a nested hook, unprivileged", &out);
            assert!(
                ran2,
                "control: the hook made executable did not run\n{out2}"
            );
        }
    }
}

/// The broker serves the workspace for writing (`allow_write`), but not a
/// protected path in it: the same `protect` list holds for its writes.
#[test]
fn the_broker_does_not_write_protected_paths_either() {
    let fx = Fixture::new(PROBE);
    repository(&fx, "sub");
    let hook = fx.ws("sub/.git/hooks/pre-commit");
    fx.sluice(
        &[],
        &["broker-write", &fx.ws("sub/ok.txt"), "x", "--create"],
    )
    .assert_ok();
    let out = fx.sluice(&[], &["broker-write", &hook, "#!/bin/sh\n", "--create"]);
    out.assert_blocked();
    assert!(!Path::new(&hook).exists(), "{out}");
    let dot_git = fx.ws("a/.git");
    fs::create_dir_all(fx.ws("a")).unwrap();
    fx.sluice(
        &[],
        &["broker-write", &dot_git, "gitdir: ../evil\n", "--create"],
    )
    .assert_blocked();
    assert!(!Path::new(&dot_git).exists());
}

/// With the home directory as the workspace, its start-up files are
/// refused like the broker's refuse-outright list, at the file system
/// layer; other files in it are written.
#[test]
fn start_up_files_are_refused_when_the_home_directory_is_the_workspace() {
    for way in WAYS {
        start_up_files_are_refused(way);
    }
}

fn start_up_files_are_refused(way: &str) {
    let fx = Fixture::new(PROBE);
    let refused = [
        ".bashrc",
        ".profile",
        ".bash_aliases",
        ".config/autostart/evil.desktop",
        ".local/lib/python3.11/site-packages/evil.pth",
        ".local/lib/python3.11/site-packages/usercustomize.py",
    ];
    let mut script = String::new();
    for rel in refused {
        let dir = Path::new(rel).parent().unwrap().to_str().unwrap();
        if !dir.is_empty() {
            script.push_str(&format!("mkdir -p {dir} 2>/dev/null; "));
        }
        script.push_str(&format!(
            "echo x >> {rel} 2>/dev/null && echo wrote {rel}; "
        ));
    }
    script.push_str("echo x > notes2.txt && echo control");
    let args = way_args(&fx, way);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = execute(home_workspace(&fx, &args, &["/bin/sh", "-c", &script]));
    assert_eq!(out.stdout, "control\n", "{way}: {out}");
    for rel in refused {
        assert!(
            !Path::new(&fx.home(rel)).exists(),
            "{way}: {rel} was made\n{out}"
        );
    }
}

/// `sluice run --workspace ~ SLUICE_ARGS -- PROGRAM` from the fixture's
/// home directory.
pub(super) fn home_workspace(fx: &Fixture, sluice_args: &[&str], program: &[&str]) -> Command {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(["run", "--workspace"])
        .arg(&fx.home_dir)
        .args(sluice_args)
        .arg("--")
        .args(program)
        .current_dir(&fx.home_dir)
        .env("HOME", &fx.home_dir)
        .env("XDG_STATE_HOME", fx.state_dir())
        .env("XDG_CONFIG_HOME", fx.root().join("config"))
        .stdin(Stdio::null());
    cmd
}

/// The path is read once and the call made on what was judged: a thread
/// that flips the path between a harmless name and a hook while another
/// opens it never gets the hook written (a check followed by `CONTINUE`
/// would lose this race). The flipping thread spins a CPU for the whole
/// race: 1,000 rounds a way here, ten times that in the stress test that
/// `.ci/run` runs in a release build (`--ignored stress_`).
#[test]
fn swapping_the_path_during_the_check_gains_nothing() {
    for way in WAYS {
        swapping_the_path_gains_nothing(way, SWAP_ROUNDS);
    }
}

#[test]
#[ignore = "stress test: run in release by .ci/run"]
fn stress_swapping_the_path_with_ten_times_the_rounds() {
    for way in WAYS {
        swapping_the_path_gains_nothing(way, 10 * SWAP_ROUNDS);
    }
}

const SWAP_ROUNDS: u32 = 1000;

fn swapping_the_path_gains_nothing(way: &str, rounds: u32) {
    let fx = Fixture::new(PROBE);
    repository(&fx, "sub");
    let racer = r##"
import ctypes, os, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
good = b"sub/harmless-name-xx\0"
bad = b"sub/.git/hooks/pre-commit\0"
buf = ctypes.create_string_buffer(max(len(good), len(bad)))
stop = False
def flip():
    while not stop:
        ctypes.memmove(buf, bad, len(bad))
        ctypes.memmove(buf, good, len(good))
t = threading.Thread(target=flip)
t.start()
for i in range(int(sys.argv[1])):
    fd = libc.open(buf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
    if fd >= 0:
        os.write(fd, b"#!/bin/sh\ntouch " + sys.argv[2].encode() + b"\n")
        os.close(fd)
stop = True
t.join()
print("done")
"##;
    let mark = marker(&fx);
    let args = way_args(&fx, way);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let rounds = rounds.to_string();
    let racer = ["/usr/bin/python3", "-S", "-c", racer, &rounds, &mark];
    let out = execute(fx.sluice_command(&args, &racer));
    assert_eq!(out.stdout, "done\n", "{way}: {out}");
    assert!(
        Path::new(&fx.ws("sub/harmless-name-xx")).exists(),
        "the harmless name was never written: the race did not run\n{out}"
    );
    assert!(
        !Path::new(&fx.ws("sub/.git/hooks/pre-commit")).exists(),
        "{out}"
    );
    let out = git_outside(&fx, "sub", &["commit", "-q", "--allow-empty", "-m", "x"]);
    assert_not_ran(&fx, "a hook written through a swapped path", &out);
}

/// `git init` at the top of a workspace that was no repository: the
/// configuration and the hook samples are the guard's, so they stay (the
/// end-of-session quarantine moves aside only what no `protect` pattern
/// covers), and the repository works afterwards.
#[test]
fn a_repository_made_at_the_top_of_the_workspace_is_kept() {
    for way in WAYS {
        a_repository_made_at_the_top_is_kept(way);
    }
}

fn a_repository_made_at_the_top_is_kept(way: &str) {
    let fx = Fixture::new(PROBE);
    fs::remove_dir_all(fx.ws(".git")).unwrap();
    let script =
        "git init -q . && git -c user.name=t -c user.email=t@t commit -q --allow-empty -m one \
                  && echo made; printf '#!/bin/sh\\ntouch %s\\n' \"$1\" > .git/hooks/pre-commit; \
                  chmod +x .git/hooks/pre-commit";
    let inside = script_way(&fx, way, script);
    assert_eq!(inside.stdout, "made\n", "{way}: {inside}");
    assert!(!inside.stderr.contains("moved to"), "{inside}");
    assert!(Path::new(&fx.ws(".git/config")).exists(), "{inside}");
    let log = git_outside(&fx, "", &["log", "--oneline"]);
    log.succeeded();
    assert_eq!(log.stdout.lines().count(), 1, "{log}");
    let out = git_outside(&fx, "", &["commit", "-q", "--allow-empty", "-m", "two"]);
    out.succeeded();
    assert_not_ran(&fx, "a hook at the top of the workspace", &out);
}

/// The guard is notified of every `openat2` (its flags lie in memory), and
/// the kernel's `ADDFD` takes no `O_PATH` descriptor: a call for a path
/// descriptor was once left unanswered and hung its thread (a stacked
/// sluice hung at its first `openat2`). It is answered with the same file
/// opened in the sandbox, usable as the program meant (`fstat`, a reopen);
/// one to create a protected file by `openat2` is still refused. Control:
/// the same calls outside sluice.
#[test]
fn an_openat2_for_a_path_descriptor_is_answered_under_the_guard() {
    let fx = Fixture::new(PROBE);
    fs::write(fx.ws("plain.txt"), "plain").unwrap();
    fs::create_dir_all(fx.ws("sub/.git")).unwrap();
    // openat2(AT_FDCWD, path, {flags, mode 0o644, resolve 0}, 24).
    let script = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class How(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
def openat2(path, flags):
    how = How(flags, 0o644 if flags & os.O_CREAT else 0, 0)
    fd = libc.syscall(ctypes.c_long(437), ctypes.c_long(-100), ctypes.c_char_p(path.encode()),
                      ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    return fd if fd >= 0 else -ctypes.get_errno()
fd = openat2("plain.txt", os.O_PATH)
print("path", fd >= 0 and os.fstat(fd).st_size == 5)
fd = openat2("sub", os.O_PATH | os.O_DIRECTORY)
print("dir", fd >= 0 and os.path.isdir("/proc/self/fd/%d" % fd))
fd = openat2("sub/.git/config", os.O_CREAT | os.O_WRONLY)
print("hook", "refused" if fd < 0 else "made")
"#;
    let mut outside = Command::new("python3");
    outside
        .args(["-c", script])
        .current_dir(&fx.ws_dir)
        .stdin(Stdio::null());
    let out = execute(outside);
    out.assert_code(0);
    assert!(
        out.stdout.contains("path True") && out.stdout.contains("dir True"),
        "control: {out}"
    );
    assert!(out.stdout.contains("hook made"), "control: {out}");
    fs::remove_file(fx.ws("sub/.git/config")).unwrap();

    let out = execute(fx.sluice_command(&[], &["python3", "-c", script]));
    out.assert_code(0);
    assert!(
        out.stdout.contains("path True") && out.stdout.contains("dir True"),
        "{out}"
    );
    assert!(out.stdout.contains("hook refused"), "{out}");
    assert!(!Path::new(&fx.ws("sub/.git/config")).exists(), "{out}");
}
