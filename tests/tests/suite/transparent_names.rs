//! Transparent brokering of names (`sluice run --transparent`): `rename`,
//! `unlink` and `rmdir` outside the sandbox's trees follow the broker's write
//! rules, an ask rule waits for the answer, and git commits in a repository
//! approved for writing. Each test has its control: without `--transparent`
//! (or approved read only) the same steps fail. Opens, and the helpers these
//! tests share, are in `transparent.rs`.

use std::fs;
use std::path::Path;
use std::process::Command;

use sluice_tests::broker::{assert_file, DENIED_SECRET, NOTES, UNRULED};
use sluice_tests::{execute, Outcome};

use super::transparent::{assert_recorded, fixture, git, run};

/// The steps of [`renames_unlinks_and_rmdirs_follow_the_broker_rules`]: each
/// prints `NAME ok` or `NAME ERRNO-NAME`.
const NAME_STEPS: &str = r#"
import errno, os, sys
b, ws = sys.argv[1], sys.argv[2]
def step(name, f):
    try:
        f()
        print(name, 'ok')
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
def write(path, text):
    with open(path, 'w') as f:
        f.write(text)
def write_excl(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, text.encode())
    os.close(fd)
# Allowed: an editor's temporary file and rename, git's lock and rename.
step('tmp', lambda: write(b + '/writable/settings.json.tmp', 'new settings\n'))
step('rename', lambda: os.rename(b + '/writable/settings.json.tmp', b + '/writable/settings.json'))
step('lock', lambda: write_excl(b + '/writable/index.lock', 'index\n'))
step('renameat', lambda: os.rename('index.lock', 'index', src_dir_fd=os.open(b + '/writable', os.O_RDONLY), dst_dir_fd=os.open(b + '/writable', os.O_RDONLY)))
step('from-workspace', lambda: os.rename(ws + '/made-here.txt', b + '/writable/moved.txt'))
step('unlink', lambda: os.unlink(b + '/writable/existing.txt'))
step('mkdir', lambda: os.mkdir(b + '/writable/dir'))
step('rmdir', lambda: os.rmdir(b + '/writable/dir'))
step('unlinkat', lambda: os.unlink('moved.txt', dir_fd=os.open(b + '/writable', os.O_RDONLY)))
# Refused.
step('into-denied', lambda: os.rename(b + '/writable/settings.json', b + '/denied/settings.json'))
step('out-of-read-only', lambda: os.rename(b + '/allowed/notes.txt', b + '/writable/notes.txt'))
step('over-read-only', lambda: os.rename(b + '/writable/index', b + '/allowed/same.txt'))
step('unlink-read-only', lambda: os.unlink(b + '/allowed/notes.txt'))
step('unlink-denied', lambda: os.unlink(b + '/denied/secret.txt'))
step('unlink-unruled', lambda: os.unlink(b + '/unruled/other.txt'))
step('onto-protected', lambda: os.rename(b + '/writable/index', b + '/writable/.git/hooks/pre-commit'))
step('into-protected-workspace', lambda: os.rename(b + '/writable/index', ws + '/.claude/settings.json'))
step('mktree', lambda: os.mkdir(b + '/writable/tree'))
step('rename-directory', lambda: os.rename(b + '/writable/tree', b + '/writable/tree2'))
"#;

/// What step `name` of [`NAME_STEPS`] (or any script printing `NAME
/// RESULT` lines) printed.
#[track_caller]
pub(super) fn step_result(out: &Outcome, name: &str) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no step {name}: {out}"))
        .to_owned()
}

/// `--transparent` brokers `rename`, `unlink` and `rmdir` of names outside
/// the sandbox's trees with the rules of a write: what an `allow_write`
/// rule covers (both names of a rename) is done and recorded; anything else
/// is refused as the sandbox refuses it, and recorded. A directory is never
/// renamed by the broker (`EXDEV`: `mv` copies instead). Control: without
/// `--transparent` the allowed steps fail too.
#[test]
fn renames_unlinks_and_rmdirs_follow_the_broker_rules() {
    let (fx, policy) = fixture();
    fs::create_dir_all(fx.brokered("writable/.git/hooks")).unwrap();
    fs::create_dir_all(fx.ws("sub")).unwrap();
    fs::create_dir_all(fx.ws(".claude")).unwrap();
    fs::write(fx.ws("made-here.txt"), "from the workspace\n").unwrap();
    let broker = fx.broker_dir();
    let b = broker.to_str().unwrap();
    let steps = |transparent: bool| {
        let out = run(
            &fx,
            &policy,
            transparent,
            &["python3", "-c", NAME_STEPS, b, &fx.ws("")],
        );
        assert_eq!(out.code(), 0, "{out}");
        out
    };
    let out = steps(true);
    let result = |name: &str| step_result(&out, name);
    for allowed in [
        "tmp",
        "rename",
        "lock",
        "renameat",
        "from-workspace",
        "unlink",
        "mkdir",
        "rmdir",
        "unlinkat",
    ] {
        assert_eq!(result(allowed), "ok", "{allowed}: {out}");
    }
    assert_file(&fx.brokered("writable/settings.json"), "new settings\n");
    assert_file(&fx.brokered("writable/index"), "index\n");
    for gone in [
        "writable/settings.json.tmp",
        "writable/index.lock",
        "writable/existing.txt",
        "writable/dir",
        "writable/moved.txt",
    ] {
        assert!(!Path::new(&fx.brokered(gone)).exists(), "{gone}: {out}");
    }
    assert!(!Path::new(&fx.ws("made-here.txt")).exists(), "{out}");
    for refused in [
        "into-denied",
        "out-of-read-only",
        "over-read-only",
        "unlink-read-only",
        "unlink-denied",
        "unlink-unruled",
        "onto-protected",
        "into-protected-workspace",
    ] {
        let got = result(refused);
        assert!(
            ["EACCES", "EXDEV", "EROFS", "EPERM"].contains(&got.as_str()),
            "{refused}: {got}: {out}"
        );
    }
    assert_eq!(result("rename-directory"), "EXDEV", "{out}");
    // Nothing refused changed.
    assert_file(&fx.brokered("allowed/notes.txt"), NOTES);
    assert_file(&fx.brokered("denied/secret.txt"), DENIED_SECRET);
    assert_file(&fx.brokered("unruled/other.txt"), UNRULED);
    assert_file(
        &fx.brokered("allowed/same.txt"),
        sluice_tests::broker::ALLOWED_SAME,
    );
    assert!(!Path::new(&fx.brokered("denied/settings.json")).exists());
    assert!(!Path::new(&fx.brokered("writable/.git/hooks/pre-commit")).exists());
    assert!(!Path::new(&fx.ws(".claude/settings.json")).exists());
    assert!(Path::new(&fx.brokered("writable/tree")).is_dir());
    // Recorded: what was done and what was refused.
    let settings = fx.brokered("writable/settings.json");
    assert_recorded(&fx, "seccomp:rename", "allowed", &settings);
    for (call, decision, path) in [
        ("seccomp:renameat", "allowed", "writable/index"),
        ("seccomp:unlink", "allowed", "writable/existing.txt"),
        ("seccomp:unlinkat", "allowed", "writable/moved.txt"),
        ("seccomp:rmdir", "allowed", "writable/dir"),
        ("seccomp:rename", "denied", "denied/settings.json"),
        ("seccomp:unlink", "denied", "allowed/notes.txt"),
        ("seccomp:unlink", "denied", "denied/secret.txt"),
        ("seccomp:rename", "denied", "writable/.git/hooks/pre-commit"),
    ] {
        assert_recorded(&fx, call, decision, &fx.brokered(path));
    }

    // Control: without --transparent the same steps are the sandbox's, and
    // it refuses them (the broker's tree is not in its view).
    fs::write(fx.ws("made-here.txt"), "from the workspace\n").unwrap();
    fs::write(fx.brokered("writable/existing.txt"), "back\n").unwrap();
    fs::remove_dir(fx.brokered("writable/tree")).unwrap();
    fs::write(fx.brokered("writable/settings.json.tmp"), "x\n").unwrap();
    let out = steps(false);
    let result = |name: &str| step_result(&out, name);
    for step in ["tmp", "rename", "from-workspace", "unlink", "mkdir"] {
        assert_ne!(result(step), "ok", "{step}: {out}");
    }
    assert_file(&fx.brokered("writable/existing.txt"), "back\n");
}

/// An `ask_write` rule puts a brokered rename or unlink to the person (here
/// `--approve`, without a terminal): done when the answer is yes, refused
/// and recorded when it is no.
#[test]
fn a_rename_or_unlink_under_an_ask_rule_waits_for_the_answer() {
    let (fx, policy) = fixture();
    let draft = fx.brokered("asked-writable/draft.txt");
    let renamed = fx.brokered("asked-writable/renamed.txt");
    let script = format!(
        "import os\n\
         for f in (lambda: os.rename({draft:?}, {renamed:?}), lambda: os.unlink({renamed:?})):\n\
         \x20   try:\n\
         \x20       f(); print('ok')\n\
         \x20   except OSError as e:\n\
         \x20       print(e.strerror)\n"
    );
    let go = |approve: &str| {
        let mut cmd = fx.sluice_command(
            &["--policy", &policy, "--transparent", "--approve", approve],
            &["python3", "-c", &script],
        );
        cmd.env("SLUICE_LOG", "supervisor::broker=debug");
        execute(cmd)
    };
    let out = go("deny");
    assert_eq!(out.code(), 0, "{out}");
    assert!(!out.stdout.contains("ok"), "{out}");
    assert_file(&draft, sluice_tests::broker::DRAFT);
    assert_recorded(&fx, "seccomp:rename", "denied", &draft);
    let out = go("allow");
    assert_eq!(out.stdout, "ok\nok\n", "{out}");
    assert!(!Path::new(&draft).exists() && !Path::new(&renamed).exists());
    assert_recorded(&fx, "seccomp:unlink", "allowed", &renamed);
}

/// git commits in a repository outside the workspace that the broker lets
/// the program write (`allow_write`): its lock files are created, renamed
/// over the index and refs, and removed through the broker, and none is
/// left behind. Control: approved read only, the commit fails at its first
/// lock and leaves nothing either; the history is unchanged.
#[test]
fn git_commit_works_in_a_repository_approved_for_writing_and_leaves_no_lock() {
    let (fx, _) = fixture();
    let who = ["-c", "user.name=t", "-c", "user.email=t@example.com"];
    let make = |name: &str| {
        let repo = fx.root().join(name);
        fs::create_dir_all(&repo).unwrap();
        fs::write(repo.join("f.txt"), "one\n").unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["add", "."]);
        git(&repo, &[&who[..], &["commit", "-qm", "first"]].concat());
        repo
    };
    let (writable, readable) = (make("repo-w"), make("repo-r"));
    let (w, r) = (writable.to_str().unwrap(), readable.to_str().unwrap());
    let policy = fx.write_policy(
        "git.toml",
        &format!("extends = [\"default\"]\n[broker]\nallow_write = [{w:?}]\nallow = [{r:?}]\n"),
    );
    let commit = |repo: &str| {
        format!(
            "cd {repo:?} && echo two >> f.txt && git add f.txt && \
             git -c user.name=t -c user.email=t@example.com commit -qm second"
        )
    };
    let locks = |repo: &Path| -> Vec<String> {
        let mut found = Vec::new();
        let mut dirs = vec![repo.join(".git")];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "lock") {
                    found.push(path.display().to_string());
                }
            }
        }
        found
    };
    let log = |repo: &Path| {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["log", "--format=%s"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let out = run(&fx, &policy, true, &["/bin/sh", "-c", &commit(w)]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(log(&writable), "second\nfirst\n", "{out}");
    assert!(locks(&writable).is_empty(), "{:?}: {out}", locks(&writable));
    assert_recorded(&fx, "seccomp:rename", "allowed", &format!("{w}/.git/index"));
    // Control.
    let out = run(&fx, &policy, true, &["/bin/sh", "-c", &commit(r)]);
    assert_ne!(out.code(), 0, "{out}");
    assert_eq!(log(&readable), "first\n", "{out}");
    assert!(locks(&readable).is_empty(), "{:?}: {out}", locks(&readable));
}
