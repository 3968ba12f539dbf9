//! A git repository needs no `.git`: git's discovery takes any directory
//! holding a valid `HEAD` beside `objects/` and `refs/` for one (a bare
//! repository) and reads its `config`, `commondir` and `hooks/`. Every way
//! the program could make such a directory, or turn one that exists into
//! one whose configuration was not judged, is run with git itself: the
//! control runs the same script without sluice and shows that the person's
//! next `git status` (or commit) there runs the program's command; under
//! sluice the same script leaves nothing git runs. And git keeps working
//! inside: a repository made, cloned, committed to, a worktree, a submodule,
//! a remote's HEAD, an existing bare mirror fetched into.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use sluice_tests::Fixture;

use super::escape_later::{
    as_nobody, assert_not_ran, assert_ran, git_outside, give_to_nobody, marker, repository,
    script_inside, Succeeded, EXTENDING, HOOK,
};
use super::escape_later_git::{each_control_runs, each_vector_held, Vector};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// A configuration that makes the directory holding it a repository with a
/// work tree (itself) and an fsmonitor command that leaves the marker.
const CONFIG: &str = r#"printf '[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = .\n\tfsmonitor = "touch %s; false"\n' "$1""#;

/// The same without a work tree (a `.git`, or a worktree's directory, has
/// one already).
const FSMONITOR: &str =
    r#"printf '[core]\n\trepositoryformatversion = 0\n\tfsmonitor = "touch %s; false"\n' "$1""#;

/// `renameat2(A, B, RENAME_EXCHANGE)` (x86_64's number; perl has no name
/// for it).
const EXCHANGE: &str =
    r#"perl -e 'syscall(316, -100, $ARGV[0], -100, $ARGV[1], 2) == 0 or die "exchange: $!\n"'"#;

const STATUS: &[&str] = &["status", "--porcelain"];

/// A bare repository `repo.git` the person keeps in the workspace (a
/// mirror), made before the session.
fn bare_mirror(fx: &Fixture) {
    git_outside(fx, "", &["init", "-q", "--bare", "repo.git"]).succeeded();
}

fn vectors() -> Vec<Vector> {
    let skeleton = "mkdir -p sub/objects sub/refs/heads";
    vec![
        Vector {
            name: "a bare repository made by hand (HEAD a file)",
            setup: |_| {},
            script: format!("{skeleton}; echo 'ref: refs/heads/main' > sub/HEAD; {CONFIG} > sub/config"),
            trigger: ("sub", STATUS),
        },
        Vector {
            name: "HEAD a symlink",
            setup: |_| {},
            script: format!("{skeleton}; ln -s refs/heads/main sub/HEAD; {CONFIG} > sub/config"),
            trigger: ("sub", STATUS),
        },
        Vector {
            name: "HEAD a hard link",
            setup: |_| {},
            script: format!(
                "{skeleton}; echo 'ref: refs/heads/main' > h; ln h sub/HEAD; {CONFIG} > sub/config"
            ),
            trigger: ("sub", STATUS),
        },
        Vector {
            name: "HEAD renamed into place (as git's HEAD.lock)",
            setup: |_| {},
            script: format!(
                "{skeleton}; echo 'ref: refs/heads/main' > sub/HEAD.lock; \
                 mv sub/HEAD.lock sub/HEAD; {CONFIG} > sub/config"
            ),
            trigger: ("sub", STATUS),
        },
        Vector {
            name: "HEAD by mknod",
            setup: |_| {},
            script: format!(
                "{skeleton}; python3 -S -c 'import os, stat; os.mknod(\"sub/HEAD\", stat.S_IFREG | 0o644)'; \
                 echo 'ref: refs/heads/main' > sub/HEAD; {CONFIG} > sub/config"
            ),
            trigger: ("sub", STATUS),
        },
        Vector {
            name: "git init --bare",
            setup: |_| {},
            script: format!("git init -q --bare sub; {CONFIG} > sub/config"),
            trigger: ("sub", STATUS),
        },
        Vector {
            name: "git clone --bare",
            setup: |fx| repository(fx, "src"),
            script: format!("git clone -q --bare src sub; {CONFIG} > sub/config"),
            trigger: ("sub", STATUS),
        },
        Vector {
            name: "a repository made inside, its .git renamed to another name",
            setup: |_| {},
            script: format!("git init -q sub; mv sub/.git sub/x; {CONFIG} > sub/x/config"),
            trigger: ("sub/x", STATUS),
        },
        Vector {
            name: "a .git renamed to another name, configured by git config",
            setup: |fx| repository(fx, "sub"),
            script: "mv sub/.git sub/x; git --git-dir=sub/x config core.worktree .; \
                     git --git-dir=sub/x config core.fsmonitor \"touch $1; false\""
                .to_owned(),
            trigger: ("sub/x", STATUS),
        },
        Vector {
            name: "an existing bare repository's configuration",
            setup: bare_mirror,
            script: format!("{CONFIG} > repo.git/config"),
            trigger: ("repo.git", STATUS),
        },
        Vector {
            name: "an existing bare repository's configuration, renamed into place",
            setup: bare_mirror,
            script: format!("{CONFIG} > c.lock; mv c.lock repo.git/config"),
            trigger: ("repo.git", STATUS),
        },
        Vector {
            name: "an existing bare repository's hook",
            setup: bare_mirror,
            script: format!(
                "{HOOK} > repo.git/hooks/pre-commit; chmod +x repo.git/hooks/pre-commit"
            ),
            trigger: (
                "repo.git",
                &["--work-tree=.", "commit", "-q", "--allow-empty", "-m", "x"],
            ),
        },
        Vector {
            name: "an existing bare repository's commondir",
            setup: bare_mirror,
            script: format!(
                "mkdir -p evil/objects evil/refs; {FSMONITOR} > evil/config; \
                 echo ../evil > repo.git/commondir"
            ),
            trigger: ("repo.git", &["--work-tree=.", "status", "--porcelain"]),
        },
        // Its `commondir` is pinned inside (`redteam13pins`): removing it
        // fails, outside it works; the configuration is refused either way.
        Vector {
            name: "a worktree's directory made a repository of its own",
            setup: |fx| {
                repository(fx, "proj");
                git_outside(fx, "proj", &["worktree", "add", "-q", "wt"]).succeeded();
            },
            script: format!(
                "cd proj/.git/worktrees/wt && {{ rm commondir || true; }} \
                 && mkdir -p objects refs && {FSMONITOR} > config"
            ),
            trigger: ("proj/wt", STATUS),
        },
        Vector {
            name: "a reflog's directory made a repository",
            setup: |fx| repository(fx, "sub"),
            script: format!("mkdir sub/.git/logs/objects; {CONFIG} > sub/.git/logs/config"),
            trigger: ("sub/.git/logs", STATUS),
        },
        Vector {
            name: "an existing bare repository's hooks exchanged with the program's (RENAME_EXCHANGE)",
            setup: bare_mirror,
            script: format!(
                "mkdir h; {HOOK} > h/pre-commit; chmod +x h/pre-commit; {EXCHANGE} h repo.git/hooks"
            ),
            trigger: (
                "repo.git",
                &["--work-tree=.", "commit", "-q", "--allow-empty", "-m", "x"],
            ),
        },
        Vector {
            name: "a symlink named .git to a repository of the program's",
            setup: |fx| repository(fx, "sub"),
            script: format!(
                "mkdir -p evil/objects evil/refs; echo 'ref: refs/heads/main' > evil/HEAD; \
                 {FSMONITOR} > evil/config; rm -rf sub/.git; ln -s ../evil sub/.git"
            ),
            trigger: ("sub", STATUS),
        },
        Vector {
            name: "a .git exchanged with a directory of the program's (RENAME_EXCHANGE)",
            setup: |fx| repository(fx, "sub"),
            script: format!(
                "mkdir -p evil/objects evil/refs; {FSMONITOR} > evil/config; \
                 {EXCHANGE} evil sub/.git; echo 'ref: refs/heads/main' > sub/.git/HEAD"
            ),
            trigger: ("sub", STATUS),
        },
    ]
}

/// The controls, once per process for both ways.
fn every_control_runs() {
    static CONTROLS: OnceLock<()> = OnceLock::new();
    CONTROLS.get_or_init(|| each_control_runs(&vectors()));
}

fn every_vector(sluice_args: &[&str], policy: Option<&str>) {
    every_control_runs();
    each_vector_held(&vectors(), sluice_args, policy);
}

#[test]
fn bare_repository_vectors_are_held_under_default() {
    every_vector(&[], None);
}

#[test]
fn bare_repository_vectors_are_held_under_a_policy_extending_default() {
    every_vector(&[], Some(EXTENDING));
}

#[test]
fn bare_repository_vectors_are_held_under_transparent() {
    every_vector(&["--transparent"], None);
}

/// What is refused says why, once: a HEAD would make a repository, and
/// `git init --bare` must be run outside sluice.
#[test]
fn a_refused_head_says_why_and_what_to_do() {
    let fx = Fixture::new(PROBE);
    let script = "git init -q --bare x.git; mkdir e; echo 'ref: refs/heads/main' > e/HEAD; \
                  echo 'ref: refs/heads/main' > e/HEAD; echo done";
    let out = script_inside(&fx, &[], script);
    assert!(out.stdout.contains("done"), "{out}");
    let said = out.stderr.matches("x.git/HEAD").count();
    assert_eq!(said, 1, "said once\n{out}");
    assert_eq!(
        out.stderr.matches("e/HEAD: a directory").count(),
        1,
        "said once\n{out}"
    );
    assert!(out.stderr.contains("git init --bare"), "{out}");
    assert!(out.stderr.contains("outside sluice"), "{out}");
    assert!(!Path::new(&fx.ws("x.git/HEAD")).exists(), "{out}");
    // Even alone in an empty directory (nothing to judge beside it yet).
    assert!(!Path::new(&fx.ws("e/HEAD")).exists(), "{out}");
}

/// Control: git keeps working inside: a repository made, committed to,
/// branched, its refs packed, cloned from a local repository (a remote's
/// HEAD in `refs/remotes/origin`), `git remote set-head`, a directory
/// holding a repository renamed, and an existing bare mirror configured
/// (its configuration checked as a `.git`'s) and fetched into.
#[test]
fn git_keeps_working_inside_with_heads_where_git_keeps_them() {
    let script = "set -e; export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t \
                  GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t; \
                  git init -q a; cd a; echo x > f; git add f; git commit -q -m one; \
                  git checkout -q -b topic; git checkout -q -; git pack-refs --all; cd ..; \
                  git clone -q a b; git -C b remote set-head origin topic; \
                  git -C b checkout -q topic; mv b b2; git -C b2 status --porcelain; \
                  git --git-dir=repo.git config user.name someone; \
                  git --git-dir=repo.git fetch -q ./a 'refs/heads/*:refs/heads/*'; \
                  echo done";
    for way in [&[][..], &["--transparent"][..]] {
        let fx = Fixture::new(PROBE);
        bare_mirror(&fx);
        let out = script_inside(&fx, way, script);
        assert_eq!(out.stdout, "done\n", "{way:?}: {out}");
        assert!(!out.stderr.contains("refused"), "{out}");
        let head = fs::read_to_string(fx.ws("b2/.git/refs/remotes/origin/HEAD")).unwrap();
        assert_eq!(head, "ref: refs/remotes/origin/topic\n");
        let log = git_outside(&fx, "b2", &["log", "--oneline"]);
        assert!(log.stdout.contains("one"), "{log}");
        let name = git_outside(&fx, "repo.git", &["config", "--local", "user.name"]);
        assert_eq!(name.stdout, "someone\n", "{name}");
        let log = git_outside(&fx, "repo.git", &["log", "--oneline", "topic"]);
        assert!(log.stdout.contains("one"), "{log}");
    }
}

/// The broker applies the same rule to the writes it serves: with the
/// home directory behind `ask_write` and every question answered yes, the
/// SDK's writes and a plain open under `--transparent` make no `HEAD`
/// there, nor write an existing bare repository's configuration there; the same writes outside sluice make
/// git run the command. Control: an ordinary file beside is written.
#[test]
fn the_broker_makes_no_bare_repository_either() {
    let config = |fx: &Fixture| {
        format!(
            "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = .\n\t\
             fsmonitor = \"touch {}; false\"\n",
            marker(fx)
        )
    };
    let prepare = |fx: &Fixture| {
        for dir in ["bare/objects", "bare/refs/heads"] {
            fs::create_dir_all(fx.home_dir.join(dir)).unwrap();
        }
        let mut git = std::process::Command::new("git");
        git.args(["init", "-q", "--bare"])
            .arg(fx.home_dir.join("mirror.git"))
            .env("GIT_CONFIG_NOSYSTEM", "1");
        assert!(git.status().unwrap().success());
    };
    let status = |fx: &Fixture, dir: &str| {
        let mut git = std::process::Command::new("git");
        git.args(["status", "--porcelain"])
            .current_dir(fx.home_dir.join(dir))
            .env("HOME", &fx.home_dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(std::process::Stdio::null());
        sluice_tests::execute(git)
    };
    // Control: the same files written outside sluice make git run it.
    for dir in ["bare", "mirror.git"] {
        let fx = Fixture::new(PROBE);
        prepare(&fx);
        fs::write(fx.home(&format!("{dir}/config")), config(&fx)).unwrap();
        fs::write(fx.home("bare/HEAD"), "ref: refs/heads/main\n").unwrap();
        let out = status(&fx, dir);
        assert_ran(&fx, dir, &out);
    }
    for way in ["sdk", "transparent"] {
        let fx = Fixture::new(PROBE);
        prepare(&fx);
        let write = |path: &str, text: &str| {
            let path = fx.home(path);
            let out = if way == "sdk" {
                let action = ["broker-write", &path, text, "--create", "--truncate"];
                fx.sluice(&["--approve", "allow"], &action)
            } else {
                let script = r#"printf %s "$2" > "$1""#;
                let args = ["--transparent", "--approve", "allow"];
                sluice_tests::execute(
                    fx.sluice_command(&args, &["/bin/sh", "-c", script, "sh", &path, text]),
                )
            };
            (out.status.success(), out)
        };
        let (ok, out) = write("notes2.txt", "x");
        assert!(ok, "{way}: {out}");
        let (ok, out) = write("bare/config", &config(&fx));
        assert!(ok, "{way}: {out}");
        let (ok, out) = write("bare/HEAD", "ref: refs/heads/main\n");
        assert!(!ok, "{way}: {out}");
        let (ok, out) = write("mirror.git/config", &config(&fx));
        assert!(!ok, "{way}: {out}");
        assert!(!Path::new(&fx.home("bare/HEAD")).exists());
        let out = status(&fx, "bare");
        assert_not_ran(&fx, "a bare repository made through the broker", &out);
        let out = status(&fx, "mirror.git");
        assert_not_ran(&fx, "a bare mirror configured through the broker", &out);
    }
}

/// As an unprivileged user (sluice without root): the bare repository made
/// by hand and by `git init --bare` runs nothing on the person's `git
/// status`; the control, without sluice, runs the command.
#[test]
fn a_bare_repository_is_refused_for_an_unprivileged_user() {
    let script = format!(
        "mkdir -p sub/objects sub/refs/heads; echo 'ref: refs/heads/main' > sub/HEAD; \
         {CONFIG} > sub/config; git init -q --bare x.git; {CONFIG} > x.git/config"
    );
    let sluice = sluice_tests::sluice_bin();
    for under_sluice in [false, true] {
        let fx = Fixture::new(PROBE);
        give_to_nobody(&fx);
        let mark = marker(&fx);
        let ws = fx.ws("");
        let mut program: Vec<&str> = Vec::new();
        if under_sluice {
            program.extend([sluice.to_str().unwrap(), "run", "--workspace", &ws, "--"]);
        }
        program.extend(["/bin/sh", "-c", &script, "sh", &mark]);
        let inside = as_nobody(&fx, &program, "");
        for dir in ["sub", "x.git"] {
            let out = as_nobody(&fx, &["git", "status", "--porcelain"], dir);
            if under_sluice {
                assert!(inside.stderr.contains("refused writing"), "{inside}");
                assert_not_ran(&fx, dir, &format!("{inside}\n{out}"));
            } else {
                assert_ran(&fx, dir, &format!("{inside}\n{out}"));
                fs::remove_file(&mark).unwrap();
            }
        }
    }
}

/// Where git keeps a `HEAD` in a `.git` (a reflog's directory, a
/// worktree's), the program removes it and plants a configuration; git
/// makes the `HEAD` again later, outside the session (the person's next
/// commit writes `logs/HEAD`; a worktree's HEAD put back), and the
/// directory is a repository whose configuration git reads. Judged as a
/// `.git` without its `HEAD`, the configuration is refused. The control,
/// without sluice, runs the command.
#[test]
fn a_git_directory_whose_head_git_makes_again_later_is_judged_without_it() {
    /// A vector whose trigger needs the person's git first (`person`).
    struct Later {
        name: &'static str,
        setup: fn(&Fixture),
        script: String,
        person: fn(&Fixture),
        trigger: (&'static str, &'static [&'static str]),
    }
    let cases = [
        Later {
            name: "a reflog's directory",
            setup: |fx| repository(fx, "sub"),
            script: format!(
                "cd sub/.git/logs && rm HEAD && mkdir objects && {FSMONITOR} > config \
                 && printf '\\tworktree = .\\n' >> config"
            ),
            person: |fx| {
                let commit = ["commit", "-q", "--allow-empty", "-m", "later"];
                git_outside(fx, "sub", &commit).succeeded();
            },
            trigger: ("sub/.git/logs", STATUS),
        },
        // Its `commondir`, protected, cannot be removed inside (pinned:
        // `redteam13pins`), which changes nothing of what is judged here.
        Later {
            name: "a worktree's directory",
            setup: |fx| {
                repository(fx, "proj");
                git_outside(fx, "proj", &["worktree", "add", "-q", "wt"]).succeeded();
            },
            script: format!(
                "cd proj/.git/worktrees/wt && rm HEAD && {{ rm commondir || true; }} \
                 && mkdir -p objects refs && {FSMONITOR} > config"
            ),
            person: |fx| {
                fs::write(fx.ws("proj/.git/worktrees/wt/HEAD"), "ref: refs/heads/wt\n").unwrap()
            },
            trigger: ("proj/wt", STATUS),
        },
    ];
    for Later {
        name,
        setup,
        script,
        person,
        trigger: (dir, args),
    } in &cases
    {
        let control = Fixture::new(PROBE);
        setup(&control);
        let out = super::escape_later::script_outside(&control, script);
        person(&control);
        let status = git_outside(&control, dir, args);
        assert_ran(&control, name, &format!("{out}\n{status}"));
        for way in [&[][..], &["--transparent"][..]] {
            let fx = Fixture::new(PROBE);
            setup(&fx);
            let inside = script_inside(&fx, way, script);
            assert!(
                inside.stderr.contains("refused writing"),
                "{name}: {inside}"
            );
            person(&fx);
            let status = git_outside(&fx, dir, args);
            assert_not_ran(&fx, name, &format!("{inside}\n{status}"));
        }
    }
}
