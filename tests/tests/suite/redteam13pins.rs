//! Red team, round 13: a protected path that exists at launch stays where
//! it is. The guard stops the program writing one or making its name, but
//! not removing it: `rm .claude/settings.json` (the person's deny rules for
//! Claude Code, gone for their next `claude` outside sluice), `rm
//! sub/.git/hooks/pre-commit` (the secret scanner the person relies on),
//! `mv .claude x`, `mv sub/.git/hooks h` (a directory above it renamed
//! away, the protected name then missing). The launch pins each such path
//! (a read-only mount of its own, its ancestors up to the writable tree
//! mount points): every way of removing or moving it, or a directory above
//! it, fails. The harm is checked, not the call: after the session the
//! settings hold their content and the person's `git commit` runs their
//! hook. Controls: the same script outside sluice does the harm; inside,
//! an unprotected file and directory are removed and renamed the same
//! ways; git works inside on the pinned repository.

use std::fs;
use std::path::Path;

use sluice_tests::{execute, sluice_bin, strs, Fixture, Outcome};

use super::escape_later::{
    as_nobody, git_outside, give_to_nobody, marker, repository, script_outside, Succeeded, HOOK,
};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// What the person keeps in `.claude/settings.json`.
const SETTINGS: &str = "{ \"permissions\": { \"deny\": [\"Read(./.env)\"] } }\n";

/// What both scripts below start with: `attempt(NAME, F)` says whether
/// `F()` worked (`NAME: ok`) or its error; `renameat2`, which python's
/// `os` lacks.
pub(super) const HELPERS: &str = r#"
import ctypes, os, shutil
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, f):
    try:
        f()
        print(name + ": ok", flush=True)
    except OSError as e:
        print(name + ": " + e.strerror, flush=True)
def renameat2(old, new, flags):
    AT = -100
    if libc.renameat2(AT, old.encode(), AT, new.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
"#;

/// Every way to take the protected files away, each said on a line of its
/// own (`NAME: ok` or `NAME: ERROR`), run with `python3 -c ATTACK` in the
/// workspace. `F` are the protected files, `A` the directories above them
/// up to the workspace: removed (`unlink`, through a descriptor of the
/// parent, through `..` of a descriptor beneath, after a hard link, the
/// tree removed whole), renamed away (by path, through a descriptor, with
/// `RENAME_EXCHANGE` and `RENAME_WHITEOUT`, each ancestor too), replaced
/// (renamed over, truncated by path), and the hook made not executable.
const ATTACK: &str = r#"
F = [".claude/settings.json", "sub/.git/hooks/pre-commit"]
A = [".claude", "sub/.git/hooks", "sub/.git", "sub"]
for i, f in enumerate(F):
    parent, name = os.path.split(f)
    attempt("unlink " + f, lambda: os.unlink(f))
    d = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    attempt("unlinkat " + f, lambda: os.unlink(name, dir_fd=d))
    attempt("rename beneath " + f, lambda: os.rename(name, "gone-%d" % i, src_dir_fd=d, dst_dir_fd=d))
    attempt("unlinkat dotdot " + f, lambda: os.unlink("../" + os.path.basename(parent) + "/" + name, dir_fd=d))
    os.close(d)
    attempt("link and unlink " + f, lambda: (os.link(f, "second-%d" % i), os.unlink(f)))
    attempt("rename " + f, lambda: os.rename(f, "moved-%d" % i))
    open("decoy-%d" % i, "w").write("{}\n")
    attempt("rename over " + f, lambda: os.rename("decoy-%d" % i, f))
    attempt("exchange " + f, lambda: renameat2("decoy-%d" % i, f, 2))
    attempt("whiteout " + f, lambda: renameat2(f, "white-%d" % i, 4))
    attempt("truncate " + f, lambda: os.truncate(f, 0))
    attempt("chmod " + f, lambda: os.chmod(f, 0o644))
for i, a in enumerate(A):
    attempt("rename " + a, lambda: os.rename(a, "away-%d" % i))
    os.makedirs("empty-%d" % i, exist_ok=True)
    attempt("exchange " + a, lambda: renameat2("empty-%d" % i, a, 2))
    attempt("whiteout " + a, lambda: renameat2(a, "whiteout-%d" % i, 4))
    ws = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    attempt("renameat " + a, lambda: os.rename(a, "at-%d" % i, src_dir_fd=ws, dst_dir_fd=ws))
    os.close(ws)
attempt("rmtree .claude", lambda: shutil.rmtree(".claude"))
attempt("rmtree sub/.git/hooks", lambda: shutil.rmtree("sub/.git/hooks"))
attempt("rmdir .claude", lambda: os.rmdir(".claude"))
print("done", flush=True)
"#;

/// The same ways on an unprotected file (`notes/a`) and directory
/// (`notes`, `tree`): each must work inside sluice.
const CONTROL: &str = r#"
def make():
    os.makedirs("notes", exist_ok=True)
    open("notes/a", "w").write("a\n")
make()
attempt("unlink", lambda: os.unlink("notes/a"))
make()
d = os.open("notes", os.O_RDONLY | os.O_DIRECTORY)
attempt("unlinkat", lambda: os.unlink("a", dir_fd=d))
os.close(d)
make()
attempt("link and unlink", lambda: (os.link("notes/a", "notes/b"), os.unlink("notes/a")))
make()
attempt("rename", lambda: os.rename("notes/a", "notes/c"))
make()
open("decoy", "w").write("d\n")
attempt("exchange", lambda: renameat2("decoy", "notes/a", 2))
attempt("truncate", lambda: os.truncate("notes/a", 0))
attempt("rename dir", lambda: os.rename("notes", "notes2"))
os.makedirs("empty", exist_ok=True)
attempt("exchange dir", lambda: renameat2("empty", "notes2", 2))
attempt("rmtree", lambda: shutil.rmtree("empty"))
attempt("rmdir", lambda: os.rmdir("notes2"))
print("done", flush=True)
"#;

/// The person's files: `.claude/settings.json`, and a repository `sub`
/// with a pre-commit hook that leaves the marker.
fn persons_files(fx: &Fixture) {
    fs::create_dir_all(fx.ws(".claude")).unwrap();
    fs::write(fx.ws(".claude/settings.json"), SETTINGS).unwrap();
    repository(fx, "sub");
    script_outside(fx, &format!("{HOOK} > sub/.git/hooks/pre-commit")).succeeded();
    let hook = fx.ws("sub/.git/hooks/pre-commit");
    fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// `[sluice run SLUICE_ARGS --] python3 -c SCRIPT` in the workspace.
fn python(fx: &Fixture, sluice_args: Option<&[&str]>, script: &str) -> Outcome {
    let script = format!("{HELPERS}{script}");
    let program = ["/usr/bin/python3", "-c", &script];
    match sluice_args {
        Some(args) => execute(fx.sluice_command(args, &program)),
        None => {
            let mut cmd = std::process::Command::new(program[0]);
            cmd.args(&program[1..])
                .current_dir(&fx.ws_dir)
                .env("HOME", &fx.home_dir)
                .stdin(std::process::Stdio::null());
            execute(cmd)
        }
    }
}

/// Whether the person's files did their work after `out`'s session: the
/// settings there with their content, and the person's commit in `sub`
/// ran their hook.
fn persons_files_hold(fx: &Fixture, out: &Outcome) -> bool {
    let settings = fs::read_to_string(fx.ws(".claude/settings.json")).ok();
    let _ = fs::remove_file(marker(fx));
    // The repository may belong to another user (the unprivileged test).
    let args = [
        "-c",
        "safe.directory=*",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "later",
    ];
    let commit = match Path::new(&fx.ws("sub")).is_dir() {
        true => git_outside(fx, "sub", &args).to_string(),
        false => "no repository there any more".to_owned(),
    };
    let hooked = Path::new(&marker(fx)).exists();
    eprintln!("{out}\nsettings: {settings:?}; the person's commit: {commit}; hook ran: {hooked}");
    settings.as_deref() == Some(SETTINGS) && hooked
}

fn assert_held(fx: &Fixture, out: &Outcome) {
    assert!(out.stdout.contains("done"), "the attack did not run\n{out}");
    assert!(
        !out.stdout.lines().any(|l| l.ends_with(": ok")),
        "a way to take a protected file away worked\n{out}"
    );
    assert!(persons_files_hold(fx, out), "{out}");
}

#[test]
fn a_protected_file_that_exists_is_neither_removed_nor_renamed_away() {
    let fx = Fixture::new(PROBE);
    persons_files(&fx);
    let out = python(&fx, Some(&[]), ATTACK);
    assert_held(&fx, &out);
}

/// Under `--transparent` the guard sees `unlink` and `rmdir`, but not a
/// rename of a directory above (nor `truncate` or `chmod -x`).
#[test]
fn under_transparent_a_protected_file_that_exists_stays() {
    let fx = Fixture::new(PROBE);
    persons_files(&fx);
    let out = python(&fx, Some(&["--transparent"]), ATTACK);
    assert_held(&fx, &out);
}

/// An agent's state directory the policy makes writable (`claude-code`:
/// `~/.claude`), protected whole but for its session state (subtree
/// exceptions, `!~/.claude/projects/**`): the settings and commands that
/// exist are kept in place, the transcripts are removed and renamed as
/// before.
#[test]
fn in_an_agents_writable_state_directory_its_settings_stay_and_its_state_moves() {
    let fx = Fixture::new(PROBE);
    let claude = fx.home_dir.join(".claude");
    fs::create_dir_all(claude.join("commands")).unwrap();
    fs::create_dir_all(claude.join("projects/ws")).unwrap();
    fs::write(claude.join("settings.json"), SETTINGS).unwrap();
    fs::write(claude.join("commands/review.md"), "review\n").unwrap();
    fs::write(claude.join("projects/ws/1.jsonl"), "t\n").unwrap();
    let script = "cd ~/.claude; \
        rm -f settings.json; mv settings.json s2; rm -rf commands; mv commands c2; \
        chmod 000 settings.json; \
        mv projects/ws/1.jsonl projects/ws/2.jsonl && echo moved-state; \
        rm projects/ws/2.jsonl && echo removed-state; \
        mv projects/ws projects/w2 && rmdir projects/w2 && echo removed-dir; \
        echo done";
    let out = execute(fx.sluice_command(&["--policy", "claude-code"], &["/bin/sh", "-c", script]));
    assert!(out.stdout.contains("done"), "{out}");
    for control in ["moved-state", "removed-state", "removed-dir"] {
        assert!(out.stdout.contains(control), "{control}\n{out}");
    }
    assert_eq!(
        fs::read_to_string(claude.join("settings.json"))
            .ok()
            .as_deref(),
        Some(SETTINGS),
        "{out}"
    );
    assert!(claude.join("commands/review.md").exists(), "{out}");
}

/// Control: the same script as the person, outside sluice, takes both
/// away (so the test above can fail).
#[test]
fn outside_sluice_the_same_script_takes_the_protected_files_away() {
    let fx = Fixture::new(PROBE);
    persons_files(&fx);
    let out = python(&fx, None, ATTACK);
    assert!(out.stdout.contains("done"), "{out}");
    assert!(!persons_files_hold(&fx, &out), "{out}");
    assert!(
        !Path::new(&fx.ws(".claude/settings.json")).exists(),
        "{out}"
    );
}

/// `sluice run -- python3 -c ATTACK`, for a session started by another.
fn sluice_running_the_attack() -> Vec<String> {
    let sluice = sluice_bin().to_string_lossy().into_owned();
    let attack = format!("{HELPERS}{ATTACK}");
    [&sluice, "run", "--", "/usr/bin/python3", "-c", &attack]
        .map(str::to_owned)
        .to_vec()
}

#[test]
fn as_an_unprivileged_user_a_protected_file_that_exists_stays() {
    let fx = Fixture::new(PROBE);
    persons_files(&fx);
    give_to_nobody(&fx);
    let program = sluice_running_the_attack();
    let out = as_nobody(&fx, &strs(&program), "");
    assert_held(&fx, &out);
}

/// A sluice inside sluice (`default` in `default`): the inner session can
/// mount nothing, the outer's pins hold in its view too.
#[test]
fn a_stacked_sandbox_does_not_take_a_protected_file_away() {
    let fx = Fixture::new(PROBE);
    persons_files(&fx);
    let program = sluice_running_the_attack();
    let out = execute(fx.sluice_command(&[], &strs(&program)));
    assert_held(&fx, &out);
}

/// Control inside: an unprotected file and directory are removed, renamed
/// and exchanged the same ways, under `default` and `--transparent`.
#[test]
fn unprotected_files_and_directories_are_removed_and_renamed_as_before() {
    for args in [&[][..], &["--transparent"][..]] {
        let fx = Fixture::new(PROBE);
        persons_files(&fx);
        let out = python(&fx, Some(args), CONTROL);
        assert!(out.stdout.contains("done"), "{out}");
        let failed: Vec<&str> = (out.stdout.lines())
            .filter(|l| l.contains(": ") && !l.ends_with(": ok"))
            .collect();
        assert!(failed.is_empty(), "{failed:?}\n{out}");
        assert!(!Path::new(&fx.ws("notes2")).exists(), "{out}");
    }
}

/// Control inside: git works on the person's repository whose hook is
/// pinned (the hook runs at the commit inside, and writes where the
/// sandbox may), and the person's commit afterwards runs it.
#[test]
fn git_works_inside_on_a_repository_whose_hook_is_pinned() {
    let fx = Fixture::new(PROBE);
    persons_files(&fx);
    fs::write(
        fx.ws("sub/.git/hooks/pre-commit"),
        "#!/bin/sh\necho ran >> \"$(git rev-parse --show-toplevel)/hook.log\"\n",
    )
    .unwrap();
    let script = "set -e; cd sub; git config user.name t; git config user.email t@t; \
                  echo a > a; git add a; git commit -q -m two; \
                  git checkout -q -b feature; git checkout -q -; git branch other; \
                  git mv a b; git commit -q -m moved; git gc -q; \
                  git tag t1; git stash list; echo done";
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", script]));
    assert!(out.stdout.contains("done"), "{out}");
    let log = fs::read_to_string(fx.ws("sub/hook.log")).unwrap_or_default();
    assert_eq!(log.lines().count(), 2, "the hook ran at each commit\n{out}");
    let branches = git_outside(&fx, "sub", &["branch", "--list"]);
    assert!(branches.stdout.contains("feature"), "{branches}");
    assert!(branches.stdout.contains("other"), "{branches}");
}

/// `sluice explain --write` says a protected path that exists is kept in
/// place; not one that does not exist, nor a git configuration (which the
/// guard lets git replace, checked).
#[test]
fn explain_says_a_protected_path_that_exists_is_kept_in_place() {
    let fx = Fixture::new(PROBE);
    persons_files(&fx);
    let explain = |rel: &str| {
        let path = fx.ws(rel);
        let mut cmd = fx.sluice_cli_command(&["explain", "--write", &path]);
        cmd.current_dir(&fx.ws_dir);
        let out = execute(cmd);
        assert!(out.stdout.contains("refused by protect"), "{out}");
        out.stdout.contains("keeps it in place")
    };
    assert!(explain(".claude/settings.json"));
    assert!(explain("sub/.git/hooks/pre-commit"));
    assert!(!explain("sub/.git/hooks/post-commit"));
    assert!(!explain("sub/.git/config"));
}

/// Hooks where a nested repository's `core.hooksPath` says (`.githooks`,
/// committed with the project), protected by the launch after its walk:
/// pinned the same, so the person's commit still runs theirs. Control:
/// the same script outside sluice removes it.
#[test]
fn hooks_where_a_nested_repositorys_configuration_points_stay() {
    let script = "rm -f sub/.githooks/pre-commit; mv sub/.githooks gone; \
                  rm -rf sub/.githooks; echo done";
    for inside in [true, false] {
        let fx = Fixture::new(PROBE);
        repository(&fx, "sub");
        git_outside(&fx, "sub", &["config", "core.hooksPath", ".githooks"]).succeeded();
        fs::create_dir_all(fx.ws("sub/.githooks")).unwrap();
        script_outside(&fx, &format!("{HOOK} > sub/.githooks/pre-commit")).succeeded();
        let hook = fx.ws("sub/.githooks/pre-commit");
        fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let out = match inside {
            true => execute(fx.sluice_command(&[], &["/bin/sh", "-c", script])),
            false => script_outside(&fx, script),
        };
        assert!(out.stdout.contains("done"), "{out}");
        let _ = fs::remove_file(marker(&fx));
        let commit = git_outside(
            &fx,
            "sub",
            &["commit", "-q", "--allow-empty", "-m", "later"],
        );
        let ran = Path::new(&marker(&fx)).exists();
        assert_eq!(ran, inside, "inside sluice: {inside}\n{out}\n{commit}");
    }
}
