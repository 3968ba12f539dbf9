//! Red team, round 12: files, git and the guard. What the person's own
//! tools do later with what the program left: git writing through a
//! symlink planted in its directory, a configuration the person's
//! repository includes from the work tree, a toolchain file rustup follows,
//! a deny placeholder reopened through `/proc`, a protected file removed.
//! Each attack with its control (the same action outside sluice, where the
//! harm happens, or where it is allowed inside); `#[ignore = "escape: ..."]`
//! marks one that still works, its reason says how.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sluice_tests::{execute, Fixture, Outcome};

use super::escape_later::{as_nobody, git_outside, give_to_nobody, marker, Succeeded};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// `sh -c SCRIPT sh MARKER` in the workspace: inside sluice with
/// `sluice_args`, or (`None`) outside it, as the person.
pub(super) fn run(fx: &Fixture, sluice_args: Option<&[&str]>, script: &str) -> Outcome {
    let mark = marker(fx);
    let program = ["/bin/sh", "-c", script, "sh", &mark];
    match sluice_args {
        Some(args) => execute(fx.sluice_command(args, &program)),
        None => {
            let mut cmd = Command::new(program[0]);
            cmd.args(&program[1..])
                .current_dir(&fx.ws_dir)
                .env("HOME", &fx.home_dir)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .stdin(Stdio::null());
            execute(cmd)
        }
    }
}

/// A repository at `ws/DIR` on branch `main`, with one commit.
fn repository(fx: &Fixture, dir: &str) {
    fs::create_dir_all(fx.ws(dir)).unwrap();
    git_outside(fx, dir, &["init", "-q", "-b", "main"]).succeeded();
    git_outside(fx, dir, &["commit", "-q", "--allow-empty", "-m", "one"]).succeeded();
}

/// Every symlink beneath `dir`, not followed.
fn symlinks_beneath(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                found.push(entry.path());
            } else if kind.is_dir() {
                todo.push(entry.path());
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------
// git writes through a symlink in its own directory.
// ---------------------------------------------------------------------------

/// The person's shell start-up file, outside every tree the program writes.
const RC: &str = "# the person's start-up file\n";

/// What the program does in `proj`: checks out a branch whose name holds a
/// command (`$(touch MARKER)`: a valid ref name), then points git's
/// reflogs and `FETCH_HEAD` at `rc` by every call that makes a name: a
/// symlink, a symlink renamed or hard-linked in, a directory holding one
/// moved in, one to `..`, one to `config` beside it (the person's next
/// merge would write its message over the configuration). Each step says
/// whether it worked. Last, the
/// controls: `git init` still finds that symlinks work (its probe links
/// `.git/tXXXXXX` to a plain name beside it), git's own work inside (a
/// branch, a commit: reflog appends) and a symlink in the work tree.
fn plant_reflog_symlinks(rc: &str) -> String {
    format!(
        "cd proj || exit 9
         git checkout -q -b 'p$(touch${{IFS}}'\"$1\"')' || echo 'no branch'
         rm -f .git/logs/HEAD; ln -s {rc} .git/logs/HEAD && echo symlinked
         rm -f .git/logs/HEAD; ln -s {rc} l1; mv l1 .git/logs/HEAD && echo renamed
         rm -f .git/logs/HEAD; ln -s {rc} l2; ln -P l2 .git/logs/HEAD && echo linked
         mkdir -p d/refs/heads; ln -s {rc} d/refs/heads/main
         rm -rf .git/logs/refs; mv d/refs .git/logs/refs && echo moved
         mkdir -p .git/logs/x; ln -s {rc} .git/logs/x/y; mv .git/logs/x .git/logs/refs 2>/dev/null
         ln -s {rc} .git/FETCH_HEAD && echo fetch_head
         ln -s {rc} .git/COMMIT_EDITMSG && echo commit_editmsg
         ln -s .. .git/up && echo dotdot
         ln -s config .git/MERGE_MSG && echo beside
         rm -f l1 l2; rm -rf d
         git init -q ../fresh; git -C ../fresh config core.symlinks || echo kept
         git -c user.name=a -c user.email=a@a commit -q --allow-empty -m inside \
           && ln -s ../README.md wt-link && echo control"
    )
}

/// The person's next shell reading `rc`, from outside the workspace.
fn person_shell(fx: &Fixture, rc: &str) -> Command {
    let mut sh = Command::new("/bin/sh");
    sh.arg(rc).current_dir(&fx.outside_dir).stdin(Stdio::null());
    sh
}

/// git appends to its reflogs (`.git/logs/HEAD`, `logs/refs/...`) and
/// writes `FETCH_HEAD` and `COMMIT_EDITMSG` with a plain `open` that
/// follows a symlink: one the program planted there to the person's
/// `~/.bashrc` had the person's next `git checkout main` append a line
/// holding the program's branch name, `$(...)` and all, which their next
/// shell ran. Refused by every call that makes a name (`symlink`, `rename`
/// and `link` of one, a directory holding one moved in), under `default`
/// and `--transparent`; git's own work inside and a symlink in the work
/// tree pass. Control: `control_git_writes_through_a_symlink_in_its_directory`.
/// Mutation-checked: with `check_into_git` off, the rc file gets the line.
#[test]
fn git_never_writes_through_a_symlink_the_program_planted_in_its_directory() {
    for args in [&[][..], &["--transparent"][..]] {
        let fx = Fixture::new(PROBE);
        repository(&fx, "proj");
        let rc = fx.outside("bashrc");
        fs::write(&rc, RC).unwrap();
        let out = run(&fx, Some(args), &plant_reflog_symlinks(&rc));
        assert_eq!(out.stdout, "kept\ncontrol\n", "{args:?}\n{out}");
        assert!(out.stderr.contains("refused writing"), "{out}");
        assert!(out.stderr.contains("symlink"), "{out}");
        let planted = symlinks_beneath(&fx.ws_dir.join("proj/.git"));
        assert!(planted.is_empty(), "{planted:?}\n{out}");
        // The person's next checkout and fetch write inside the workspace.
        git_outside(&fx, "proj", &["checkout", "-q", "main"]).succeeded();
        git_outside(&fx, "proj", &["fetch", "-q", "."]).succeeded();
        assert_eq!(fs::read_to_string(&rc).unwrap(), RC, "{args:?}\n{out}");
        let shell = execute(person_shell(&fx, &rc));
        assert!(!Path::new(&marker(&fx)).exists(), "{shell}");
    }
}

/// The same for an unprivileged user, whose sandbox is made in a user
/// namespace of its own; the person's git runs as that user too.
#[test]
fn git_never_writes_through_a_planted_symlink_for_an_unprivileged_user() {
    let fx = Fixture::new(PROBE);
    repository(&fx, "proj");
    let rc = fx.outside("bashrc");
    give_to_nobody(&fx);
    fs::write(&rc, RC).unwrap();
    // The person's, whose git could write it.
    std::os::unix::fs::chown(&rc, Some(65534), Some(65534)).unwrap();
    let sluice = sluice_tests::sluice_bin();
    let (ws, mark) = (fx.ws(""), marker(&fx));
    let script = plant_reflog_symlinks(&rc);
    let program = [sluice.to_str().unwrap(), "run", "--workspace", &ws, "--"];
    let out = as_nobody(
        &fx,
        &[&program[..], &["/bin/sh", "-c", &script, "sh", &mark]].concat(),
        "",
    );
    assert_eq!(out.stdout, "kept\ncontrol\n", "{out}");
    let planted = symlinks_beneath(&fx.ws_dir.join("proj/.git"));
    assert!(planted.is_empty(), "{planted:?}\n{out}");
    let checkout = [
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "checkout",
        "-q",
        "main",
    ];
    assert!(as_nobody(&fx, &checkout, "proj").status.success());
    assert_eq!(fs::read_to_string(&rc).unwrap(), RC, "{out}");
}

/// Control for the test above: outside sluice every step plants its
/// symlink, and the person's `git checkout main` appends the program's
/// branch name to the rc file, whose next reading runs it.
#[test]
fn control_git_writes_through_a_symlink_in_its_directory() {
    let fx = Fixture::new(PROBE);
    repository(&fx, "proj");
    let rc = fx.outside("bashrc");
    fs::write(&rc, RC).unwrap();
    let out = run(&fx, None, &plant_reflog_symlinks(&rc));
    // The last symlink at `.git/logs/HEAD` stays (the earlier ones were
    // removed by the next step), the directory's too.
    for said in [
        "symlinked",
        "renamed",
        "linked",
        "moved",
        "fetch_head",
        "control",
    ] {
        assert!(out.stdout.contains(said), "{said}\n{out}");
    }
    git_outside(&fx, "proj", &["checkout", "-q", "main"]).succeeded();
    let text = fs::read_to_string(&rc).unwrap();
    assert!(text.contains("moving from p$(touch"), "{text}");
    let shell = execute(person_shell(&fx, &rc));
    assert!(Path::new(&marker(&fx)).exists(), "{text}\n{shell}");
}

// ---------------------------------------------------------------------------
// A configuration the person's repository includes from the work tree.
// ---------------------------------------------------------------------------

/// A fsmonitor command (`touch $1.TAG`) appended to the file `$2`.
const APPEND_FSMONITOR: &str =
    r#"printf '[core]\n\tfsmonitor = "touch %s; false"\n' "$1.$2" >> "$3" && echo "wrote $3""#;

/// The workspace a repository whose configuration includes a file of its
/// work tree (`git config include.path ../project.gitconfig`: projects
/// ship shared settings so), a nested one likewise, and a global
/// `includeIf` naming a file of the workspace. Each file holds a harmless
/// setting the person chose.
fn including_repositories(fx: &Fixture) {
    repository(fx, "");
    repository(fx, "proj");
    git_outside(fx, "", &["config", "include.path", "../top.gitconfig"]).succeeded();
    git_outside(fx, "proj", &["config", "include.path", "../proj.gitconfig"]).succeeded();
    let global = format!(
        "[includeIf \"gitdir:{}/\"]\n\tpath = {}\n",
        fx.ws_dir.display(),
        fx.ws("shared.gitconfig")
    );
    fs::write(fx.home(".gitconfig"), global).unwrap();
    for file in ["top.gitconfig", "proj/proj.gitconfig", "shared.gitconfig"] {
        fs::write(fx.ws(file), "[color]\n\tui = auto\n").unwrap();
    }
}

/// What the program does, step by step: appends a fsmonitor command to
/// each included file, and replaces one by a rename (git takes the last
/// value it reads, so each step is shown on its own in the control).
fn include_steps() -> Vec<(&'static str, String)> {
    let mut steps: Vec<(&str, String)> = [
        ("top", "top.gitconfig"),
        ("proj", "proj/proj.gitconfig"),
        ("shared", "shared.gitconfig"),
    ]
    .into_iter()
    .map(|(tag, file)| {
        (
            tag,
            format!("set -- \"$1\" {tag} {file}; {APPEND_FSMONITOR}\n"),
        )
    })
    .collect();
    steps.push((
        "mv",
        "cp top.gitconfig t; printf '[core]\\n\\tfsmonitor = \"touch %s.mv; false\"\\n' \"$1\" >> t; \
         mv t top.gitconfig && echo renamed\n"
            .to_owned(),
    ));
    steps
}

/// The person's `git status` in the workspace and in `proj`.
fn status_outside(fx: &Fixture) {
    git_outside(fx, "", &["status", "--porcelain"]);
    git_outside(fx, "proj", &["status", "--porcelain"]);
}

/// A file a protected configuration includes (`include.path`, an
/// `includeIf`'s path, relative to the including file or absolute) is read
/// by git as part of it: a `core.fsmonitor` the program wrote there ran on
/// the person's next `git status`. The launch reads the includes of the
/// workspace's repository, of the global configurations and of every
/// repository its walk meets, and protects each file (and what it includes,
/// and the hooks directory it names). Control:
/// `control_an_included_configuration_runs_what_it_says`. Mutation-checked:
/// with `protect_included` returning nothing, the markers appear.
#[test]
fn a_configuration_the_persons_repository_includes_is_protected() {
    let fx = Fixture::new(PROBE);
    including_repositories(&fx);
    let mut script: String = include_steps().into_iter().map(|(_, step)| step).collect();
    script.push_str("echo x > notes.gitconfig && echo control\n");
    let out = run(&fx, Some(&[]), &script);
    assert_eq!(out.stdout, "control\n", "{out}");
    assert!(out.stderr.contains("refused writing"), "{out}");
    status_outside(&fx);
    for tag in ["top", "proj", "shared", "mv"] {
        let mark = format!("{}.{tag}", marker(&fx));
        assert!(!Path::new(&mark).exists(), "git ran {tag}\n{out}");
    }
}

/// Control for the test above: outside sluice each write makes the
/// person's `git status` run its command.
#[test]
fn control_an_included_configuration_runs_what_it_says() {
    for (tag, step) in include_steps() {
        let fx = Fixture::new(PROBE);
        including_repositories(&fx);
        let out = run(&fx, None, &step);
        status_outside(&fx);
        let mark = format!("{}.{tag}", marker(&fx));
        assert!(Path::new(&mark).exists(), "git did not run {tag}\n{out}");
    }
}

/// A repository outside the workspace whose configuration names hooks in
/// its work tree (`core.hooksPath = .githooks`), and its linked worktree
/// `WS/wt` (`git worktree add`: the person gives the agent a worktree of
/// its own), which is the workspace. Returns the worktree.
fn worktree_of_a_repository_with_hooks(fx: &Fixture) -> PathBuf {
    let main = fx.outside_dir.join("main");
    fs::create_dir_all(&main).unwrap();
    let git = |dir: &Path, args: &[&str]| git_at(fx, dir, args).succeeded();
    git(&main, &["init", "-q", "-b", "main"]);
    git(&main, &["commit", "-q", "--allow-empty", "-m", "one"]);
    git(&main, &["config", "core.hooksPath", ".githooks"]);
    let wt = fx.ws_dir.join("wt");
    git(
        &main,
        &["worktree", "add", "-q", "-b", "agent", wt.to_str().unwrap()],
    );
    fs::create_dir_all(wt.join(".githooks")).unwrap();
    wt
}

/// What the program writes: a pre-commit hook where the common
/// configuration's `core.hooksPath` points in its worktree.
const WORKTREE_HOOK: &str = r#"printf '#!/bin/sh
touch %s
' "$1" > .githooks/pre-commit && chmod +x .githooks/pre-commit && echo wrote"#;

/// `git ARGS` in `dir` (anywhere) as the person would run it: outside
/// sluice, with the fixture's home and no system configuration.
fn git_at(fx: &Fixture, dir: &Path, args: &[&str]) -> Outcome {
    let mut cmd = Command::new("git");
    cmd.args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .env("HOME", &fx.home_dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null());
    execute(cmd)
}

/// The person's next commit in the worktree `wt`.
fn commit_in(fx: &Fixture, wt: &Path) -> Outcome {
    git_at(fx, wt, &["commit", "-q", "--allow-empty", "-m", "two"])
}

/// A linked worktree's hooks come from its common directory's
/// configuration: `core.hooksPath = .githooks` there names `.githooks` of
/// every worktree, and the launch read only the worktree's own directory
/// (no `config` there), so a hook the program wrote in the workspace (the
/// worktree) ran on the person's next commit in it. The common
/// configuration is read too, for the workspace itself and for a worktree
/// nested in it. Control:
/// `control_a_worktrees_hooks_come_from_its_common_configuration`.
/// Mutation-checked: with `repository_files` reading only the worktree's
/// directory, the marker appears.
#[test]
fn a_worktrees_hooks_named_by_its_common_configuration_are_protected() {
    let fx = Fixture::new(PROBE);
    let wt = worktree_of_a_repository_with_hooks(&fx);
    let mark = marker(&fx);
    // The worktree as the workspace, and nested in the workspace.
    let mut own = Command::new(sluice_tests::sluice_bin());
    own.args(["run", "--workspace", wt.to_str().unwrap(), "--"])
        .args(["/bin/sh", "-c", WORKTREE_HOOK, "sh", &mark])
        .current_dir(&wt)
        .env("HOME", &fx.home_dir)
        .env("XDG_STATE_HOME", fx.state_dir())
        .env("XDG_CONFIG_HOME", fx.config_home())
        .stdin(Stdio::null());
    let out = execute(own);
    assert!(!out.stdout.contains("wrote"), "{out}");
    let nested = format!("cd wt && {WORKTREE_HOOK}");
    let out = run(&fx, Some(&[]), &nested);
    assert!(!out.stdout.contains("wrote"), "{out}");
    commit_in(&fx, &wt).succeeded();
    assert!(!Path::new(&mark).exists(), "{out}");
}

/// Control for the test above: the same hook written outside sluice runs
/// on the person's commit in the worktree.
#[test]
fn control_a_worktrees_hooks_come_from_its_common_configuration() {
    let fx = Fixture::new(PROBE);
    let wt = worktree_of_a_repository_with_hooks(&fx);
    let out = run(&fx, None, &format!("cd wt && {WORKTREE_HOOK}"));
    assert!(out.stdout.contains("wrote"), "{out}");
    commit_in(&fx, &wt).succeeded();
    assert!(Path::new(&marker(&fx)).exists(), "{out}");
}

/// A nested repository `sub` whose `.git/hooks` links to `scripts/hooks`
/// of its work tree (projects commit their hooks so) and whose
/// `.git/config` links to `gitconfig` beside it.
fn repository_with_linked_entries(fx: &Fixture) {
    repository(fx, "sub");
    fs::create_dir_all(fx.ws("sub/scripts/hooks")).unwrap();
    fs::remove_dir_all(fx.ws("sub/.git/hooks")).unwrap();
    std::os::unix::fs::symlink("../scripts/hooks", fx.ws("sub/.git/hooks")).unwrap();
    fs::rename(fx.ws("sub/.git/config"), fx.ws("sub/gitconfig")).unwrap();
    std::os::unix::fs::symlink("../gitconfig", fx.ws("sub/.git/config")).unwrap();
}

/// What the program writes where the links lead: a pre-commit hook, and a
/// fsmonitor command (`$1.fsmonitor`) in the configuration.
const WRITE_WHERE_LINKS_LEAD: &str = r#"printf '#!/bin/sh\ntouch %s\n' "$1" > sub/scripts/hooks/pre-commit && chmod +x sub/scripts/hooks/pre-commit && echo hook
printf '[core]\n\tfsmonitor = "touch %s.fsmonitor; false"\n' "$1" >> sub/gitconfig && echo config"#;

/// The guard judges real paths, and `default`'s patterns name hooks and
/// configuration inside a `.git`: where a repository's `.git/hooks` or
/// `.git/config` is a symlink into its work tree (set up before the
/// session), the program wrote the hook or the configuration there, and
/// the person's next commit or `git status` ran it. The launch protects
/// where such entries lead, for the workspace's repository and each one
/// its walk meets. Control:
/// `control_a_repositorys_linked_hooks_and_configuration_run_what_they_hold`.
/// Mutation-checked: with `linked_out` giving nothing, the markers appear.
#[test]
fn where_a_repositorys_hooks_and_configuration_link_to_is_protected() {
    let fx = Fixture::new(PROBE);
    repository_with_linked_entries(&fx);
    let out = run(&fx, Some(&[]), WRITE_WHERE_LINKS_LEAD);
    assert_eq!(out.stdout, "", "{out}");
    git_outside(&fx, "sub", &["status", "--porcelain"]).succeeded();
    git_outside(&fx, "sub", &["commit", "-q", "--allow-empty", "-m", "two"]).succeeded();
    let mark = marker(&fx);
    assert!(!Path::new(&mark).exists(), "{out}");
    assert!(!Path::new(&format!("{mark}.fsmonitor")).exists(), "{out}");
}

/// Control for the test above: the same writes outside sluice run on the
/// person's commit and `git status`.
#[test]
fn control_a_repositorys_linked_hooks_and_configuration_run_what_they_hold() {
    let fx = Fixture::new(PROBE);
    repository_with_linked_entries(&fx);
    let out = run(&fx, None, WRITE_WHERE_LINKS_LEAD);
    assert_eq!(out.stdout, "hook\nconfig\n", "{out}");
    git_outside(&fx, "sub", &["status", "--porcelain"]).succeeded();
    git_outside(&fx, "sub", &["commit", "-q", "--allow-empty", "-m", "two"]).succeeded();
    let mark = marker(&fx);
    assert!(Path::new(&mark).exists(), "{out}");
    assert!(Path::new(&format!("{mark}.fsmonitor")).exists(), "{out}");
}

// ---------------------------------------------------------------------------
// rustup follows a toolchain file to a toolchain of the program's.
// ---------------------------------------------------------------------------

/// What the program does: a toolchain of its own in the workspace whose
/// `rustc` and `cargo` leave the marker (allowed: the program's files),
/// named by a `rust-toolchain.toml` (written, and renamed into place) and
/// a legacy `rust-toolchain` in a subdirectory.
const PLANT_TOOLCHAIN: &str = r#"mkdir -p tool/bin sub
for t in rustc cargo; do printf '#!/bin/sh\ntouch %s\n' "$1" > tool/bin/$t; chmod +x tool/bin/$t; done
printf '[toolchain]\npath = "%s/tool"\n' "$PWD" > rust-toolchain.toml && echo wrote toml
printf '[toolchain]\npath = "%s/tool"\n' "$PWD" > t && mv t sub/rust-toolchain.toml && echo renamed
printf '%s/tool\n' "$PWD" > sub/rust-toolchain && echo wrote legacy
test -x tool/bin/rustc && echo control"#;

/// The person's `rustc --version` in `dir` of the workspace, through
/// rustup's proxy, with the person's own rustup (`None` where rustup is not
/// installed here).
fn rustc_version_outside(fx: &Fixture, dir: &str) -> Option<Outcome> {
    rustup_proxy_outside(fx, dir, "rustc", &["--version"])
}

/// `TOOL ARGS` (`rustc`, `cargo`) in `dir` of the workspace through
/// rustup's proxy, as the person runs it with their own rustup (`None`
/// where rustup is not installed here). cargo's home is the fixture's: no
/// configuration of this machine's, no package cache lock shared with the
/// builds running beside.
pub(super) fn rustup_proxy_outside(
    fx: &Fixture,
    dir: &str,
    tool: &str,
    args: &[&str],
) -> Option<Outcome> {
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let cargo_home = std::env::var_os("CARGO_HOME").map_or(home.join(".cargo"), PathBuf::from);
    let rustup_home = std::env::var_os("RUSTUP_HOME").map_or(home.join(".rustup"), PathBuf::from);
    if !cargo_home.join("bin/rustup").exists() {
        return None;
    }
    let mut cmd = Command::new(cargo_home.join("bin").join(tool));
    cmd.args(args)
        .current_dir(fx.ws(dir))
        .env("CARGO_HOME", fx.home(".cargo"))
        .env("RUSTUP_HOME", rustup_home)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .stdin(Stdio::null());
    Some(execute(cmd))
}

/// rustup runs the toolchain a `rust-toolchain.toml` (or a legacy
/// `rust-toolchain`) names by an absolute path for any `cargo` or `rustc`
/// in its directory or beneath: `rustc --version`, a shell prompt's Rust
/// module, an editor's rust-analyzer on opening the folder. A toolchain of
/// the program's so ran on the person's next `rustc --version`. `default`
/// protects both names at any depth. Control:
/// `control_rustup_runs_the_toolchain_a_workspace_file_names`.
/// Mutation-checked: without the two `default` entries, the marker appears.
#[test]
fn a_toolchain_file_is_protected() {
    let fx = Fixture::new(PROBE);
    let out = run(&fx, Some(&[]), PLANT_TOOLCHAIN);
    assert_eq!(out.stdout, "control\n", "{out}");
    assert!(out.stderr.contains("rust-toolchain"), "{out}");
    for dir in ["", "sub"] {
        if let Some(version) = rustc_version_outside(&fx, dir) {
            assert!(!Path::new(&marker(&fx)).exists(), "{version}\n{out}");
        }
    }
}

/// Control for the test above: outside sluice the person's `rustc
/// --version` runs the program's toolchain (where rustup is installed;
/// else the files are only shown written).
#[test]
fn control_rustup_runs_the_toolchain_a_workspace_file_names() {
    let fx = Fixture::new(PROBE);
    let out = run(&fx, None, PLANT_TOOLCHAIN);
    for said in ["wrote toml", "renamed", "wrote legacy", "control"] {
        assert!(out.stdout.contains(said), "{said}\n{out}");
    }
    if let Some(version) = rustc_version_outside(&fx, "") {
        assert!(Path::new(&marker(&fx)).exists(), "{version}\n{out}");
    } else {
        eprintln!("rustup is not installed here: the harm is not shown");
    }
}

// ---------------------------------------------------------------------------
// Held: deny placeholders, a `.git` file, a new worktree.
// ---------------------------------------------------------------------------

/// Reads `$1` through an `O_PATH` descriptor reopened by `/proc/self/fd`.
const REOPEN: &str = "import os, sys\n\
fd = os.open(sys.argv[1], os.O_PATH)\n\
print(open('/proc/self/fd/%d' % fd).read(), end='')\n";

/// A denied file (`**/.env`, a placeholder mounted over it) opened
/// `O_PATH` and reopened through `/proc/self/fd` gives the placeholder, not
/// the file; a rename of the directory above it is refused (a mount point
/// is busy). Control: outside sluice the reopen reads the secret; inside, a
/// plain file is read the same way.
#[test]
fn a_deny_placeholder_is_not_reopened_through_proc() {
    let fx = Fixture::new(PROBE);
    fs::create_dir_all(fx.ws("sub")).unwrap();
    fs::write(fx.ws("sub/.env"), "SECRET-sub\n").unwrap();
    fs::write(fx.ws("sub/plain"), "PLAIN-sub\n").unwrap();
    let script = format!(
        "/usr/bin/python3 -c \"{REOPEN}\" sub/.env; /usr/bin/python3 -c \"{REOPEN}\" sub/plain; \
         mv sub moved && cat moved/.env; echo done"
    );
    let outside = run(&fx, None, &script);
    assert!(outside.stdout.contains("SECRET-sub"), "{outside}");
    fs::rename(fx.ws("moved"), fx.ws("sub")).unwrap();
    let out = run(&fx, Some(&[]), &script);
    assert!(!out.stdout.contains("SECRET"), "{out}");
    assert!(out.stdout.contains("PLAIN-sub"), "{out}");
    assert!(out.stdout.contains("done"), "{out}");
}

/// A `.git` file planted in a subdirectory (`gitdir: ELSEWHERE`) would
/// make the person's git, after `cd sub`, use a repository of the
/// program's choosing; a symlink named `.git` the same. Both are refused
/// (a name on the way to `.git/config`). So is `git worktree add`: it
/// writes a `.git` file and `.git/worktrees/NAME/commondir`, judged at the
/// open, before their content exists. Controls: the same outside sluice;
/// inside, a file named `.gitx` is written.
#[test]
fn a_git_file_or_a_new_worktree_is_not_made() {
    let fx = Fixture::new(PROBE);
    repository(&fx, "proj");
    let script = "mkdir -p proj/sub; echo 'gitdir: /tmp' > proj/sub/.git && echo gitfile; \
                  ln -s /tmp proj/sub2 && ln -s /tmp proj/sub/.git 2>/dev/null && echo gitlink; \
                  cd proj && git worktree add -q ../wt 2>/dev/null && echo worktree; \
                  echo x > sub/.gitx && echo control";
    let outside = run(&fx, None, script);
    for said in ["gitfile", "worktree", "control"] {
        assert!(outside.stdout.contains(said), "{said}\n{outside}");
    }
    let fx = Fixture::new(PROBE);
    repository(&fx, "proj");
    let out = run(&fx, Some(&[]), script);
    assert_eq!(out.stdout, "control\n", "{out}");
}

/// A repository the program makes (allowed: its configuration is checked
/// and holds no key that runs a command) whose `core.worktree` names a
/// directory outside the sandbox (`~`): the person's `git reset --hard`,
/// `git checkout BRANCH` or `git stash` there (discarding or reviewing the
/// program's work) wrote the program's files into that directory, such as
/// a `.bashrc`. `core.worktree` passed the configuration check because a
/// submodule's repository needs it (`../../../vendor/lib`); it is now
/// accepted only there, relative and within the superproject's work tree.
/// Control: the same outside sluice writes the file outside; inside, the
/// program's repository works without it. Mutation-checked: with
/// `worktree_elsewhere` giving `None`, the file is written.
#[test]
fn a_repository_the_program_makes_writes_nothing_outside_its_work_tree() {
    let script = |fx: &Fixture| {
        format!(
            "git init -q evil && cd evil && echo 'echo planted' > victim.sh && git add victim.sh \
             && git -c user.name=a -c user.email=a@a commit -q -m x \
             && git config core.worktree {} && echo configured",
            fx.outside_dir.display()
        )
    };
    let fx = Fixture::new(PROBE);
    let out = run(&fx, Some(&[]), &script(&fx));
    assert!(out.stderr.contains("core.worktree"), "{out}");
    let _ = git_outside(&fx, "evil", &["reset", "-q", "--hard"]);
    assert!(
        !fx.outside_dir.join("victim.sh").exists(),
        "the person's git wrote the program's file outside\n{out}"
    );
    // Control inside: the repository itself works.
    git_outside(&fx, "evil", &["log", "--oneline"]).succeeded();
    // Control outside sluice: the person's reset writes it there.
    let fx = Fixture::new(PROBE);
    let out = run(&fx, None, &script(&fx));
    assert!(out.stdout.contains("configured"), "{out}");
    git_outside(&fx, "evil", &["reset", "-q", "--hard"]).succeeded();
    assert!(fx.outside_dir.join("victim.sh").exists(), "{out}");
}

/// The guard judges calls that write or make a name; `unlink` and `rmdir`
/// are not among them (under `default`), so the program removed a
/// protected file the person keeps: an agent's settings with their deny
/// rules, a nested repository's pre-commit hook (a secret scanner). The
/// launch now pins what is protected and exists (every other way:
/// `redteam13pins`).
#[test]
fn a_protected_file_is_not_removed() {
    let fx = Fixture::new(PROBE);
    for rel in [".claude/settings.json", "sub/.git/hooks/pre-commit"] {
        let path = fx.ws(rel);
        fs::create_dir_all(Path::new(&path).parent().unwrap()).unwrap();
        fs::write(&path, "{ \"kept\": \"by the person\" }\n").unwrap();
    }
    let out = run(
        &fx,
        Some(&[]),
        "rm -f .claude/settings.json sub/.git/hooks/pre-commit; echo done",
    );
    assert!(out.stdout.contains("done"), "{out}");
    assert!(Path::new(&fx.ws(".claude/settings.json")).exists(), "{out}");
    assert!(
        Path::new(&fx.ws("sub/.git/hooks/pre-commit")).exists(),
        "{out}"
    );
}
