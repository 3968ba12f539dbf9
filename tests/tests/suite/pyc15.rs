//! Python's bytecode cache kept across sessions (`supervisor/src/pycache.rs`).
//! `default` points `PYTHONPYCACHEPREFIX` at `$TMPDIR/pycache`; there the
//! program sees an overlay whose writes are the session's own, over a
//! cache kept per workspace and policy in sluice's state, which holds only
//! the host's own bytecode (the source's `__pycache__` file, valid for
//! it) for sources the session could read and not write.
//!
//! Attacks: bytecode the program writes in the cache (for a module of the
//! system and for one of the workspace, each with a header valid for the
//! source) runs in no later session of the workspace, nor of another
//! workspace, nor outside; a name made to have sluice copy bytecode of a
//! source the session may not read copies nothing; the cache itself is
//! out of the program's reach even where the policy lets it write around
//! it. Controls: the same planted bytecode runs where Python reads that
//! cache (the program's own session); a later session reads the cache an
//! earlier one kept (seen in `python3 -v`: the cache's file "matches" the
//! source, no compile), another workspace's first session compiles; the
//! cache holds the system's own file, byte for byte. As root and as the
//! unprivileged user 65534.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sluice_tests::{execute, sluice_bin, Fixture, Outcome};

use super::escape_later::give_to_nobody;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
const PYTHON: &str = "/usr/bin/python3";

/// A module of the system with its own bytecode beside it (Debian's).
const JSON: &str = "/usr/lib/python3.11/json/__init__.py";
const JSON_PYC: &str = "/usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc";

/// Plants, in the session's cache (`$TMPDIR/pycache`, where Python looks),
/// bytecode for `json` (the system's) and for the workspace's `a`, each
/// with the header of its real source (time and size), whose code leaves
/// a canary `ran-NAME` in the directory it runs in (each run's is its
/// workspace); and a file named for the bytecode of `SECRET` (argv[1], a
/// source outside the session's reach), for sluice to copy the real one of.
const PLANT: &str = r#"
import importlib._bootstrap_external as ext, os, sys
secret = sys.argv[1]
prefix, tag = sys.pycache_prefix, sys.implementation.cache_tag
def plant(name, source):
    text = "open('ran-%s', 'w').write('ran')\n" % name
    st = os.stat(source)
    data = ext._code_to_timestamp_pyc(compile(text, source, "exec"), st.st_mtime, st.st_size)
    path = prefix + os.path.dirname(source) + "/%s.%s.pyc" % (
        os.path.basename(source)[:-3], tag)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").write(data)
    print("planted", path, flush=True)
plant("json", "/usr/lib/python3.11/json/__init__.py")
plant("a", os.path.abspath("a.py"))
forged = prefix + os.path.dirname(secret) + "/secret.%s.pyc" % tag
os.makedirs(os.path.dirname(forged), exist_ok=True)
open(forged, "wb").write(b"x")
print("named", forged, flush=True)
"#;

/// Imports `json` and the workspace's `a`, saying so.
const IMPORT: &str = "import json, a; print('imported')";

/// Who runs sluice: root, or 65534 (the fixture given to it first).
#[derive(Clone, Copy, Debug)]
pub(super) enum Who {
    Root,
    Nobody,
}

/// The person's workspace `ws` (made if missing) with a clean `a.py`.
fn project(ws: &Path) {
    fs::create_dir_all(ws).unwrap();
    fs::write(ws.join("a.py"), "def f():\n    return 'a'\n").unwrap();
}

/// A fixture with a second workspace `ws2`, a source outside every policy
/// with its own valid bytecode (`outside/secret.py`, compiled outside
/// sluice), given to `who`.
pub(super) fn fixture(who: Who) -> (Fixture, PathBuf) {
    let fx = Fixture::new(PROBE);
    let ws2 = fx.root().join("ws2");
    project(&fx.ws_dir);
    project(&ws2);
    fs::create_dir_all(&fx.outside_dir).unwrap();
    let secret = fx.outside("secret.py");
    fs::write(&secret, "TOKEN = 'SECRET-in-bytecode'\n").unwrap();
    let out = execute({
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-m", "py_compile", &secret]);
        cmd
    });
    assert!(out.status.success(), "{out}");
    assert!(Path::new(&fx.outside("__pycache__/secret.cpython-311.pyc")).exists());
    if let Who::Nobody = who {
        give_to_nobody(&fx);
        fs::create_dir_all(fx.config_home()).unwrap();
        std::os::unix::fs::chown(fx.config_home(), Some(65534), Some(65534)).unwrap();
        for path in [ws2.clone(), ws2.join("a.py")] {
            std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
        }
    }
    (fx, ws2)
}

/// `sluice run --workspace WS [ARGS] -- PROGRAM` from `ws`, as `who`, with
/// the fixture's home and sluice state (so every workspace's sessions
/// share one state directory, as a person's do).
fn session(fx: &Fixture, who: Who, ws: &Path, args: &[&str], program: &[&str]) -> Outcome {
    execute(session_command(fx, who, ws, args, program))
}

/// The command [`session`] runs.
pub(super) fn session_command(
    fx: &Fixture,
    who: Who,
    ws: &Path,
    args: &[&str],
    program: &[&str],
) -> Command {
    let mut cmd = match who {
        Who::Root => Command::new(sluice_bin()),
        Who::Nobody => {
            let mut cmd = sluice_tests::setpriv_nobody();
            cmd.arg(sluice_bin());
            cmd.env("TMPDIR", fx.root().join("tmp"));
            cmd
        }
    };
    cmd.arg("run")
        .arg("--workspace")
        .arg(ws)
        .args(args)
        .arg("--")
        .args(program)
        .current_dir(ws)
        .env("HOME", &fx.home_dir)
        .env("XDG_STATE_HOME", fx.state_dir())
        .env("XDG_CONFIG_HOME", fx.config_home())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// The canaries planted code left in either workspace (removed for the
/// next run).
fn ran(fx: &Fixture) -> Vec<&'static str> {
    let ws2 = fx.root().join("ws2");
    ["json", "a"]
        .into_iter()
        .filter(|name| {
            let canary = format!("ran-{name}");
            let left = [fx.ws_dir.join(&canary), ws2.join(&canary)];
            left.iter().filter(|p| fs::remove_file(p).is_ok()).count() > 0
        })
        .collect()
}

/// The person's `python3 -c IMPORT` in `ws`, outside sluice.
fn persons_run(ws: &Path) -> Outcome {
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", IMPORT])
        .current_dir(ws)
        .env_remove("PYTHONPYCACHEPREFIX")
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .stdin(Stdio::null());
    execute(cmd)
}

/// Every file of sluice's bytecode cache (all keys).
fn cached_files(fx: &Fixture) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![fx.state_dir().join("sluice/pycache")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                dirs.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files
}

fn planted_bytecode_runs_in_no_later_session(who: Who) {
    let (fx, ws2) = fixture(who);
    let secret = fx.outside("secret.py");
    let plant = session(&fx, who, &fx.ws_dir, &[], &[PYTHON, "-c", PLANT, &secret]);
    assert_eq!(plant.stdout.matches("planted").count(), 2, "{plant}");
    assert!(plant.stdout.contains("named"), "{plant}");
    // Control: in the program's own session the planted bytecode is what
    // Python runs (so the checks below can fail).
    let own = [PYTHON, "-c", PLANT, &secret];
    let own = format!(
        "{} && {PYTHON} -c {IMPORT:?}",
        own.map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .join(" ")
    );
    let control = session(&fx, who, &fx.ws_dir, &[], &["/bin/sh", "-c", &own]);
    assert!(control.stdout.contains("imported"), "{control}");
    assert_eq!(ran(&fx), ["json", "a"], "{control}");
    // The person's run outside.
    let outside = persons_run(&fx.ws_dir);
    assert!(outside.stdout.contains("imported"), "{outside}");
    assert!(ran(&fx).is_empty(), "ran outside sluice\n{outside}");
    // A later session of the same workspace, and one of another.
    for ws in [&fx.ws_dir, &ws2] {
        let later = session(&fx, who, ws, &[], &[PYTHON, "-c", IMPORT]);
        assert!(later.stdout.contains("imported"), "{later}");
        assert!(
            ran(&fx).is_empty(),
            "ran in a later session of {}\n{later}",
            ws.display()
        );
    }
    // Nothing of the secret's bytecode was copied where a session reads.
    let cached = cached_files(&fx);
    assert!(!cached.is_empty(), "nothing was kept at all");
    let secret_kept: Vec<_> = (cached.iter())
        .filter(|p| p.to_string_lossy().contains("secret"))
        .collect();
    assert!(secret_kept.is_empty(), "{secret_kept:?}");
    for file in &cached {
        assert!(
            !fs::read(file).unwrap().windows(6).any(|w| w == b"SECRET"),
            "{}",
            file.display()
        );
    }
    // What was kept for `json` is the system's own file, and nothing for
    // the workspace's `a`.
    let json: Vec<_> = (cached.iter())
        .filter(|p| p.ends_with("usr/lib/python3.11/json/__init__.cpython-311.pyc"))
        .collect();
    assert!(!json.is_empty(), "{cached:?}");
    for file in json {
        assert_eq!(fs::read(file).unwrap(), fs::read(JSON_PYC).unwrap());
    }
    assert!(
        !cached
            .iter()
            .any(|p| p.to_string_lossy().contains("/a.cpython")),
        "{cached:?}"
    );
}

#[test]
fn bytecode_planted_in_the_cache_runs_in_no_later_session_nor_outside() {
    planted_bytecode_runs_in_no_later_session(Who::Root);
}

#[test]
fn as_an_unprivileged_user_bytecode_planted_in_the_cache_runs_nowhere_later() {
    planted_bytecode_runs_in_no_later_session(Who::Nobody);
}

/// `python3 -v -c 'import json'`: whether `json` came from the prefix's
/// bytecode (which "matches" its source) rather than compiled.
fn json_from_cache(out: &Outcome) -> bool {
    let matched = out
        .stderr
        .lines()
        .any(|l| l.contains("/pycache/usr/lib/python3.11/json/__init__.cpython-311.pyc matches"));
    let compiled = out
        .stderr
        .lines()
        .any(|l| l.trim_end() == format!("# code object from {JSON}"));
    assert!(matched != compiled, "{out}");
    matched
}

fn a_later_session_reads_what_an_earlier_one_kept(who: Who) {
    let (fx, ws2) = fixture(who);
    let import = [PYTHON, "-v", "-c", "import json"];
    let first = session(&fx, who, &fx.ws_dir, &[], &import);
    assert!(
        !json_from_cache(&first),
        "the first session did not compile"
    );
    let second = session(&fx, who, &fx.ws_dir, &[], &import);
    assert!(json_from_cache(&second), "the second session compiled");
    // Another workspace's cache is its own.
    let other = session(&fx, who, &ws2, &[], &import);
    assert!(
        !json_from_cache(&other),
        "another workspace's session read it"
    );
    // So is another policy's.
    let readonly = session(&fx, who, &fx.ws_dir, &["--policy", "readonly"], &import);
    assert!(
        !json_from_cache(&readonly),
        "another policy's session read it"
    );
    let root = fx.state_dir().join("sluice/pycache");
    let meta = fs::metadata(&root).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
    let uid = match who {
        Who::Root => 0,
        Who::Nobody => 65534,
    };
    assert_eq!(meta.uid(), uid);
    assert_eq!(fs::read_dir(&root).unwrap().count(), 3, "one key each");
}

#[test]
fn a_later_session_of_the_workspace_reads_the_bytecode_an_earlier_one_kept() {
    a_later_session_reads_what_an_earlier_one_kept(Who::Root);
}

#[test]
fn as_an_unprivileged_user_a_later_session_reads_the_kept_bytecode() {
    a_later_session_reads_what_an_earlier_one_kept(Who::Nobody);
}

/// Rewrites every cached `json` bytecode with code leaving a canary.
const OVERWRITE: &str = r#"
import glob, os, sys
root = sys.argv[1]
text = "open('ran-json', 'w').write('ran')\n"
import importlib._bootstrap_external as ext
st = os.stat("/usr/lib/python3.11/json/__init__.py")
data = ext._code_to_timestamp_pyc(compile(text, "j", "exec"), st.st_mtime, st.st_size)
found = glob.glob(root + "/*/usr/lib/python3.11/json/__init__.cpython-311.pyc")
print("found", len(found), flush=True)
for path in found:
    try:
        open(path, "wb").write(data)
        print("overwrote", path, flush=True)
    except OSError as e:
        print("refused", e, flush=True)
"#;

/// A policy with no `protect` list (whose guard would refuse any `.pyc`
/// written outside the TMPDIR), the system readable, the workspace
/// written.
const NO_PROTECT: &str = r#"
[filesystem]
execute = ["/usr", "/bin", { path = "/lib", optional = true }, { path = "/lib64", optional = true },
           "$WORKSPACE", "$TMPDIR"]
read = ["/etc", "/proc", "/dev/urandom"]
write = ["$WORKSPACE", "$TMPDIR", "/dev/null"]
"#;

/// A policy that lets the program write the directory holding sluice's
/// state: the cache there is denied to it like the rest of that state
/// (and not used by that session), so what a later session reads is
/// unchanged; under `default` and under a policy with no `protect` list.
#[test]
fn the_cache_is_out_of_reach_where_the_policy_lets_the_program_write_around_it() {
    let (fx, _) = fixture(Who::Root);
    let import = [PYTHON, "-v", "-c", "import json"];
    session(&fx, Who::Root, &fx.ws_dir, &[], &import);
    let state = fx.state_dir();
    let root = state.join("sluice/pycache");
    let root_s = root.to_string_lossy();
    let allow = state.to_string_lossy();
    let no_protect = fx.write_policy("no-protect.toml", NO_PROTECT);
    for policy in ["default", &no_protect] {
        let attack = session(
            &fx,
            Who::Root,
            &fx.ws_dir,
            &["--policy", policy, "--allow-write", &allow],
            &[PYTHON, "-c", OVERWRITE, &root_s],
        );
        assert!(attack.stdout.contains("found"), "{attack}");
        assert!(!attack.stdout.contains("overwrote"), "{attack}");
    }
    // Control: the same script outside sluice finds and overwrites it.
    let later = session(&fx, Who::Root, &fx.ws_dir, &[], &import);
    assert!(json_from_cache(&later), "{later}");
    assert!(ran(&fx).is_empty(), "{later}");
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", OVERWRITE, &root_s]);
    let control = execute(cmd);
    assert!(control.stdout.contains("overwrote"), "{control}");
    let later = session(&fx, Who::Root, &fx.ws_dir, &[], &import);
    assert_eq!(ran(&fx), ["json"], "{later}");
}
