//! Nothing the program writes runs outside the sandbox later (issue 14),
//! every git vector run with git itself: the control runs the same script
//! without sluice and shows that the person's next `git status` or `git
//! commit` then runs the program's command (it leaves a marker outside the
//! workspace); under sluice the same script leaves nothing git runs. Under
//! the built-in `default`, a policy extending it and `--transparent`. The
//! helpers are `escape_later.rs`'s.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use sluice_tests::{for_each_concurrently, Fixture};

use super::escape_later::{
    assert_not_ran, assert_ran, git_outside, marker, repository, script_inside, script_outside,
    submodule, Succeeded, ACL_EXEC, EXTENDING, FCHMOD, FCHMODAT2_EMPTY, HOOK,
};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// A fsmonitor command in a git configuration, written by `printf`.
const FSMONITOR: &str =
    r#"printf '[core]\n\trepositoryformatversion = 0\n\tfsmonitor = "touch %s; false"\n' "$1""#;

/// The same ACL set by `fsetxattr` on a descriptor opened for reading.
const ACL_EXEC_FD: &str = r#"'import os, struct, sys
acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, 0xffffffff)
    for t, p in [(1, 7), (4, 4), (0x20, 4)])
os.setxattr(os.open(sys.argv[1], os.O_RDONLY), "system.posix_acl_access", acl)'"#;

/// A repository `sub` whose pre-commit hook the person keeps disabled (not
/// executable, so git skips it); made executable, it leaves the marker.
fn inert_hook(fx: &Fixture) {
    repository(fx, "sub");
    let hook = fx.ws("sub/.git/hooks/pre-commit");
    fs::write(&hook, format!("#!/bin/sh\ntouch {}\n", marker(fx))).unwrap();
    let out = git_outside(fx, "sub", &["commit", "-q", "--allow-empty", "-m", "inert"]);
    out.succeeded();
    assert!(
        !Path::new(&marker(fx)).exists(),
        "git ran a non-executable hook"
    );
}

pub(super) struct Vector {
    pub name: &'static str,
    /// Made outside sluice, before the session.
    pub setup: fn(&Fixture),
    /// What the program runs (each step on its own: a refusal does not
    /// stop the next one).
    pub script: String,
    /// The person's git command, outside, afterwards: (directory, args).
    pub trigger: (&'static str, &'static [&'static str]),
}

fn vectors() -> Vec<Vector> {
    let commit: &'static [&'static str] = &["commit", "-q", "--allow-empty", "-m", "two"];
    let status: &'static [&'static str] = &["status", "--porcelain"];
    vec![
        Vector {
            name: "commondir naming a configuration of the program's",
            setup: |fx| repository(fx, "proj"),
            script: format!("cp -r proj/.git evil; {FSMONITOR} > evil/config; echo ../../evil > proj/.git/commondir"),
            trigger: ("proj", status),
        },
        Vector {
            name: "a hook in a nested repository",
            setup: |fx| repository(fx, "sub"),
            script: format!(
                "{HOOK} > sub/.git/hooks/pre-commit; chmod +x sub/.git/hooks/pre-commit"
            ),
            trigger: ("sub", commit),
        },
        Vector {
            name: "a submodule's configuration in .git/modules",
            setup: |fx| {
                repository(fx, "proj");
                fs::create_dir_all(fx.ws("proj/.git/modules")).unwrap();
                git_outside(
                    fx,
                    "proj",
                    &["init", "-q", "--separate-git-dir", ".git/modules/m", "m"],
                )
                .succeeded();
            },
            script: format!("{FSMONITOR} >> proj/.git/modules/m/config"),
            trigger: ("proj/m", status),
        },
        Vector {
            name: "a hook in a submodule's repository (a name with a slash)",
            setup: submodule,
            script: format!(
                "{HOOK} > proj/.git/modules/vendor/lib/hooks/pre-commit; \
                 chmod +x proj/.git/modules/vendor/lib/hooks/pre-commit"
            ),
            trigger: ("proj/vendor/lib", commit),
        },
        Vector {
            name: "a submodule's repository moved into .git/modules from outside",
            setup: submodule,
            script: format!(
                "cp -r proj/.git/modules/vendor/lib evil; {HOOK} > evil/hooks/pre-commit; \
                 chmod +x evil/hooks/pre-commit; rm -rf proj/.git/modules/vendor/lib; \
                 mv evil proj/.git/modules/vendor/lib"
            ),
            trigger: ("proj/vendor/lib", commit),
        },
        Vector {
            name: "a submodule's hooks directory made a symlink",
            setup: submodule,
            script: format!(
                "mkdir evil; {HOOK} > evil/pre-commit; chmod +x evil/pre-commit; \
                 rm -rf proj/.git/modules/vendor/lib/hooks; \
                 ln -s ../../../../../evil proj/.git/modules/vendor/lib/hooks"
            ),
            trigger: ("proj/vendor/lib", commit),
        },
        Vector {
            name: "a worktree's commondir in .git/worktrees",
            setup: |fx| {
                repository(fx, "proj");
                git_outside(fx, "proj", &["worktree", "add", "-q", "wt"]).succeeded();
            },
            script: format!(
                "cp -r proj/.git evil; {FSMONITOR} > evil/config; \
                 echo ../../../../evil > proj/.git/worktrees/wt/commondir"
            ),
            trigger: ("proj/wt", status),
        },
        Vector {
            name: "renaming .git away, writing a hook, renaming it back",
            setup: |fx| repository(fx, "sub"),
            script: format!(
                "mv sub/.git sub/x; {HOOK} > sub/x/hooks/pre-commit; \
                 chmod +x sub/x/hooks/pre-commit; mv sub/x sub/.git"
            ),
            trigger: ("sub", commit),
        },
        Vector {
            name: "a symlink for the hooks directory",
            setup: |fx| repository(fx, "sub"),
            script: format!(
                "mkdir evil; {HOOK} > evil/pre-commit; chmod +x evil/pre-commit; \
                 rm -rf sub/.git/hooks; ln -s ../../evil sub/.git/hooks"
            ),
            trigger: ("sub", commit),
        },
        Vector {
            name: "a hard link to a hook made elsewhere",
            setup: |fx| repository(fx, "sub"),
            script: format!(
                "{HOOK} > hook; chmod +x hook; ln hook sub/.git/hooks/pre-commit"
            ),
            trigger: ("sub", commit),
        },
        Vector {
            name: "a non-executable hook made executable (chmod)",
            setup: inert_hook,
            script: "chmod +x sub/.git/hooks/pre-commit".to_owned(),
            trigger: ("sub", commit),
        },
        Vector {
            name: "a non-executable hook made executable through a descriptor (fchmod)",
            setup: inert_hook,
            script: format!("perl -e {FCHMOD} sub/.git/hooks/pre-commit"),
            trigger: ("sub", commit),
        },
        Vector {
            name: "a non-executable hook made executable by fchmodat2 on a descriptor",
            setup: inert_hook,
            script: format!("perl -e {FCHMODAT2_EMPTY} sub/.git/hooks/pre-commit"),
            trigger: ("sub", commit),
        },
        Vector {
            name: "a non-executable hook given an access ACL that lets its owner run it",
            setup: inert_hook,
            script: format!("python3 -S -c {ACL_EXEC} sub/.git/hooks/pre-commit"),
            trigger: ("sub", commit),
        },
        Vector {
            name: "a non-executable hook given an access ACL through a descriptor",
            setup: inert_hook,
            script: format!("python3 -S -c {ACL_EXEC_FD} sub/.git/hooks/pre-commit"),
            trigger: ("sub", commit),
        },
        Vector {
            name: "a non-executable hook made executable through a symlink to it",
            setup: inert_hook,
            script: "ln -s sub/.git/hooks/pre-commit h; chmod +x h".to_owned(),
            trigger: ("sub", commit),
        },
        Vector {
            name: "a gitdir file pointing at a repository of the program's",
            setup: |fx| repository(fx, "sub"),
            script: format!(
                "cp -r sub/.git evil; {HOOK} > evil/hooks/pre-commit; \
                 chmod +x evil/hooks/pre-commit; rm -rf sub/.git; \
                 echo 'gitdir: ../evil' > sub/.git"
            ),
            trigger: ("sub", commit),
        },
    ]
}

/// Vectors checked at once: each waits on its sandbox and git far longer
/// than it computes.
const WORKERS: usize = 4;

/// The control of every vector: without sluice, the script makes git run
/// the program's command. The same for every way, so run once per process
/// (by the first of the tests below to get here; the others wait for it).
fn every_control_runs() {
    static CONTROLS: OnceLock<()> = OnceLock::new();
    CONTROLS.get_or_init(|| each_control_runs(&vectors()));
}

/// Without sluice, each of `vectors` makes git run the program's command.
pub(super) fn each_control_runs(vectors: &[Vector]) {
    for_each_concurrently(vectors, WORKERS, |v| {
        let control = Fixture::new(PROBE);
        (v.setup)(&control);
        let script = script_outside(&control, &v.script);
        let (dir, args) = v.trigger;
        let out = git_outside(&control, dir, args);
        assert_ran(&control, v.name, &format!("{script}\n{out}"));
    });
}

/// Control and attack for every vector, with `sluice_args` (a policy, or
/// `--transparent`).
fn every_vector(sluice_args: &[&str], policy: Option<&str>) {
    every_control_runs();
    each_vector_held(&vectors(), sluice_args, policy);
}

/// Under sluice, each of `vectors` is refused and leaves nothing git runs.
pub(super) fn each_vector_held(vectors: &[Vector], sluice_args: &[&str], policy: Option<&str>) {
    for_each_concurrently(vectors, WORKERS, |v| {
        let fx = Fixture::new(PROBE);
        (v.setup)(&fx);
        let mut sluice_args = sluice_args.to_vec();
        let policy_path = policy.map(|p| fx.write_policy("extending.toml", p));
        if let Some(path) = &policy_path {
            sluice_args.extend(["--policy", path]);
        }
        let inside = script_inside(&fx, &sluice_args, &v.script);
        assert!(
            inside.stderr.contains("sluice: refused writing"),
            "{}: not refused\n{inside}",
            v.name
        );
        let (dir, args) = v.trigger;
        // The directory may not be there: nothing for git to run.
        if Path::new(&fx.ws(dir)).is_dir() {
            let out = git_outside(&fx, dir, args);
            assert_not_ran(&fx, v.name, &format!("{inside}\n{out}"));
        }
        assert_not_ran(&fx, v.name, &inside);
    });
}

#[test]
fn git_vectors_are_held_under_default() {
    every_vector(&[], None);
}

#[test]
fn git_vectors_are_held_under_transparent() {
    every_vector(&["--transparent"], None);
}

#[test]
fn git_vectors_are_held_under_a_policy_extending_default() {
    every_vector(&[], Some(EXTENDING));
}
