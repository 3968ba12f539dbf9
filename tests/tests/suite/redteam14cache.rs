//! Red team, round 14: a cache the person's tool runs later instead of the
//! source they review. Python runs `__pycache__/NAME.TAG.pyc` for a module
//! whose source's time and size (or hash) its header names, without
//! reading the source; a `NAME.pyc` beside the sources is imported where
//! no `NAME.py` is (a `json.pyc` beside `app.py` before the standard
//! library's). `__pycache__` and `*.pyc` are in every Python `.gitignore`:
//! no review shows them. `default` protects `**/*.pyc` (and `__pycache__`
//! is made only by `mkdir`, so not as a symlink to the session's TMPDIR,
//! where bytecode may be written), and sets `PYTHONPYCACHEPREFIX` to the
//! session's TMPDIR so that Python inside keeps its cache there. The harm
//! is checked, not the call: the person's `python3 app.py` outside, during
//! and after the session, runs none of the planted code. Controls: the
//! same script outside sluice plants each way and the person's run runs
//! it; inside, Python imports, caches and installs as before.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::{execute, sluice_bin, Fixture, Outcome};

use super::escape_later::{as_nobody, give_to_nobody};
use super::redteam13pins::HELPERS;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
const PYTHON: &str = "/usr/bin/python3";

/// The modules planted for, each with the canary its planted code leaves.
const PLANTED: [&str; 6] = ["a", "b", "json", "c", "d", "e"];

/// Plants bytecode for the person's clean modules every way, each said on
/// a line (`NAME: ok` or `NAME: ERROR`), then waits (at most a minute) for
/// `done` in the workspace if `ready` is given: `python3 -c PLANT OUT
/// [ready]`, in the workspace, `OUT` where the planted code leaves its
/// canaries, `$TMPDIR` a directory the program may write bytecode in.
/// After [`HELPERS`] (`attempt`).
const PLANT: &str = r#"
import importlib.util, importlib._bootstrap_external as ext, os, shutil, sys, time
out, tmp = sys.argv[1], os.environ["TMPDIR"]
tag = sys.implementation.cache_tag
def code(name, source):
    text = "open(%r, 'w').write('ran')\n" % os.path.join(out, name)
    if source:
        text += open(source).read()
    return compile(text, os.path.abspath(source or name + ".py"), "exec")
def timestamp(name, source):
    st = os.stat(source)
    return ext._code_to_timestamp_pyc(code(name, source), st.st_mtime, st.st_size)
def write(path, data):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
cached = lambda name: "__pycache__/%s.%s.pyc" % (name, tag)
# The cache of a clean module, by its source's time and size.
attempt("a", lambda: write(cached("a"), timestamp("a", "a.py")))
# A hash-based one, checked against the clean source's hash.
source_hash = importlib.util.source_hash(open("b.py", "rb").read())
attempt("b", lambda: write(cached("b"),
    ext._code_to_hash_pyc(code("b", "b.py"), source_hash, checked=True)))
# Beside the sources, before the standard library's `json`.
attempt("json", lambda: write("json.pyc", ext._code_to_timestamp_pyc(code("json", None), 0, 0)))
# Made where bytecode may be written, then copied or renamed into place.
write(tmp + "/c.pyc", timestamp("c", "c.py"))
write(tmp + "/d.pyc", timestamp("d", "d.py"))
attempt("c", lambda: shutil.copyfile(tmp + "/c.pyc", cached("c")))
attempt("d", lambda: os.rename(tmp + "/d.pyc", cached("d")))
# `pkg/__pycache__` a symlink to a directory of bytecode there.
write(tmp + "/cache/e.%s.pyc" % tag, timestamp("e", "pkg/e.py"))
attempt("e", lambda: os.symlink(tmp + "/cache", "pkg/__pycache__"))
print("planted", flush=True)
if len(sys.argv) > 2:
    open(sys.argv[2], "w").close()
    for _ in range(600):
        if os.path.exists("done"):
            break
        time.sleep(0.1)
"#;

/// The person's project: clean modules and the program that imports them.
fn python_project(fx: &Fixture) {
    for name in ["a", "b", "c", "d", "pkg/e"] {
        fs::create_dir_all(Path::new(&fx.ws(name)).parent().unwrap()).unwrap();
        fs::write(fx.ws(&format!("{name}.py")), source_of(name)).unwrap();
    }
    fs::write(fx.ws("pkg/__init__.py"), "").unwrap();
    fs::write(
        fx.ws("app.py"),
        "import a, b, c, d, json, pkg.e\nprint('hello', a.f(), b.f(), c.f(), d.f(), pkg.e.f())\n",
    )
    .unwrap();
    fs::create_dir_all(&fx.outside_dir).unwrap();
}

fn source_of(name: &str) -> String {
    format!("def f():\n    return {name:?}\n")
}

/// The person's `python3 app.py` outside: which planted modules ran (their
/// canaries, removed for the next run). The sources are unchanged.
fn persons_run(fx: &Fixture) -> Vec<&'static str> {
    let mut cmd = Command::new(PYTHON);
    cmd.arg("app.py")
        .current_dir(&fx.ws_dir)
        .env_remove("PYTHONPYCACHEPREFIX")
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .stdin(Stdio::null());
    let out = execute(cmd);
    assert!(out.stdout.contains("hello"), "{out}");
    for name in ["a", "b", "c", "d", "pkg/e"] {
        let source = fs::read_to_string(fx.ws(&format!("{name}.py"))).unwrap();
        assert_eq!(source, source_of(name), "the source changed");
    }
    let ran: Vec<&str> = (PLANTED.iter().copied())
        .filter(|name| fs::remove_file(fx.outside(name)).is_ok())
        .collect();
    eprintln!("the person's run: {out}\nplanted code that ran: {ran:?}");
    ran
}

/// The plant inside sluice (`sluice_args`), the person's run during the
/// session, then after it: nothing planted runs, and no way to plant
/// worked. Returns the session.
fn assert_planted_nothing(sluice_args: &[&str]) -> Outcome {
    let fx = Fixture::new(PROBE);
    python_project(&fx);
    let ready = fx.ws("ready");
    let plant = format!("{HELPERS}{PLANT}");
    let cmd = fx.sluice_command(
        sluice_args,
        &[
            PYTHON,
            "-c",
            &plant,
            &fx.outside_dir.to_string_lossy(),
            &ready,
        ],
    );
    let session = std::thread::spawn(move || execute(cmd));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !Path::new(&ready).exists() && !session.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let during = persons_run(&fx);
    fs::write(fx.ws("done"), "").unwrap();
    let session = session.join().unwrap();
    assert!(session.stdout.contains("planted"), "{session}");
    assert!(Path::new(&ready).exists(), "never ready\n{session}");
    let after = persons_run(&fx);
    assert!(
        during.is_empty(),
        "ran during the session: {during:?}\n{session}"
    );
    assert!(
        after.is_empty(),
        "ran after the session: {after:?}\n{session}"
    );
    let worked: Vec<&str> = (session.stdout.lines())
        .filter(|l| l.ends_with(": ok"))
        .collect();
    assert!(worked.is_empty(), "{worked:?}\n{session}");
    session
}

#[test]
fn bytecode_planted_for_the_persons_clean_modules_never_runs_outside() {
    let session = assert_planted_nothing(&[]);
    assert!(session.stderr.contains("refused writing"), "{session}");
    assert!(
        session.stderr.contains("Python would run this bytecode"),
        "{session}"
    );
}

#[test]
fn under_transparent_bytecode_planted_never_runs_outside() {
    assert_planted_nothing(&["--transparent"]);
}

#[test]
fn under_claude_code_bytecode_planted_never_runs_outside() {
    assert_planted_nothing(&["--policy", "claude-code"]);
}

/// As the unprivileged user 65534 (the person's run after the session).
#[test]
fn as_an_unprivileged_user_bytecode_planted_never_runs_outside() {
    let fx = Fixture::new(PROBE);
    python_project(&fx);
    give_to_nobody(&fx);
    let sluice = sluice_bin().to_string_lossy().into_owned();
    let outside = fx.outside_dir.to_string_lossy().into_owned();
    let plant = format!("{HELPERS}{PLANT}");
    let program = [sluice.as_str(), "run", "--", PYTHON, "-c", &plant, &outside];
    let session = as_nobody(&fx, &program, "");
    assert!(session.stdout.contains("planted"), "{session}");
    assert!(!session.stdout.contains(": ok"), "{session}");
    assert!(persons_run(&fx).is_empty(), "{session}");
}

/// A sluice inside sluice (`default` in `default`): the outer guard judges
/// the stacked program's writes by both lists; its Python caches in its
/// own TMPDIR, inside the outer one's.
#[test]
fn a_stacked_sandbox_plants_no_bytecode_either() {
    let fx = Fixture::new(PROBE);
    python_project(&fx);
    let sluice = sluice_bin().to_string_lossy().into_owned();
    let outside = fx.outside_dir.to_string_lossy().into_owned();
    let plant = format!("{HELPERS}{PLANT}");
    let program = [sluice.as_str(), "run", "--", PYTHON, "-c", &plant, &outside];
    let session = execute(fx.sluice_command(&[], &program));
    assert!(session.stdout.contains("planted"), "{session}");
    assert!(!session.stdout.contains(": ok"), "{session}");
    assert!(persons_run(&fx).is_empty(), "{session}");
    let stacked = [sluice.as_str(), "run", "--", PYTHON, "app.py"];
    let run = execute(fx.sluice_command(&[], &stacked));
    assert!(run.stdout.contains("hello"), "{run}");
    assert!(!run.stderr.contains("refused writing"), "{run}");
}

/// An extension module beside the source: Python's `FileFinder` tries
/// the extension suffixes (`.cpython-3X-ARCH.so`, `.abi3.so`, `.so`)
/// before `.py`, so an `a.so` the program builds beside the person's
/// clean `a.py` is imported instead (`*.so` is in every Python
/// `.gitignore` too). `sh -c SCRIPT sh C_SOURCE`: built with `gcc` from a
/// source in the TMPDIR.
const EXTENSION: &str = r#"printf '%s' "$1" > "$TMPDIR/ext.c" &&
gcc -shared -fPIC -I/usr/include/python3.11 -o a.so "$TMPDIR/ext.c" && echo built"#;

/// The C source of an extension module `a` that leaves the canary `so`
/// in `out`, then runs the clean source's `def f()`.
pub(super) fn extension_source(out: &str) -> String {
    format!(
        r#"#include <Python.h>
static struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, "a", NULL, -1, NULL}};
PyMODINIT_FUNC PyInit_a(void) {{
    FILE *f = fopen("{out}/so", "w");
    if (f) {{ fputs("ran", f); fclose(f); }}
    PyObject *m = PyModule_Create(&def);
    PyObject *d = PyModule_GetDict(m);
    PyDict_SetItemString(d, "__builtins__", PyEval_GetBuiltins());
    Py_XDECREF(PyRun_String("def f():\n    return 'a'\n", Py_file_input, d, d));
    return m;
}}
"#
    )
}

/// Fixed in round 15: protecting `**/*.so` would refuse every in-place
/// build of an extension (`build_ext --inplace`, an editable install of a
/// C, Cython or Rust extension), so the guard refuses an extension module
/// made beside a `.py` of the same module, and that source made beside one
/// (`guard/python.rs`; more ways in `redteam15names`).
#[test]
fn an_extension_module_built_beside_a_clean_source_never_runs_outside() {
    let fx = Fixture::new(PROBE);
    python_project(&fx);
    let source = extension_source(&fx.outside_dir.to_string_lossy());
    let program = ["/bin/sh", "-c", EXTENSION, "sh", &source];
    let session = execute(fx.sluice_command(&[], &program));
    persons_run(&fx);
    let ran = Path::new(&fx.outside("so")).exists();
    assert!(
        !ran,
        "the person's python3 ran the planted extension\n{session}"
    );
}

/// `program` outside sluice, in the workspace, with a TMPDIR of its own.
fn outside_sluice(fx: &Fixture, program: &[&str]) -> Outcome {
    let tmp = fx.root().join("tmp-outside");
    fs::create_dir_all(&tmp).unwrap();
    let mut cmd = Command::new(program[0]);
    cmd.args(&program[1..])
        .current_dir(&fx.ws_dir)
        .env("TMPDIR", &tmp)
        .env_remove("PYTHONPYCACHEPREFIX")
        .stdin(Stdio::null());
    execute(cmd)
}

/// Control: outside sluice the extension built beside `a.py` runs on the
/// person's next run.
#[test]
fn control_an_extension_module_built_beside_a_clean_source_runs() {
    let fx = Fixture::new(PROBE);
    python_project(&fx);
    let source = extension_source(&fx.outside_dir.to_string_lossy());
    let out = outside_sluice(&fx, &["/bin/sh", "-c", EXTENSION, "sh", &source]);
    assert!(out.stdout.contains("built"), "{out}");
    persons_run(&fx);
    assert!(Path::new(&fx.outside("so")).exists(), "{out}");
}

/// Control: outside sluice the same script plants every way, and the
/// person's next run runs each (so the tests above can fail).
#[test]
fn control_outside_sluice_each_planted_bytecode_runs_on_the_persons_run() {
    let fx = Fixture::new(PROBE);
    python_project(&fx);
    let plant = format!("{HELPERS}{PLANT}");
    let outside = fx.outside_dir.to_string_lossy().into_owned();
    let out = outside_sluice(&fx, &[PYTHON, "-c", &plant, &outside]);
    assert_eq!(out.stdout.matches(": ok").count(), PLANTED.len(), "{out}");
    assert_eq!(persons_run(&fx), PLANTED, "{out}");
}

/// Control inside: Python imports the workspace's modules and keeps its
/// cache in the session's TMPDIR (a second run in the session uses it),
/// writes nothing beside the sources and draws no refusal; `compileall`,
/// `unittest`, a virtual environment with `pip install -e` work; a run
/// without the variable (`python3 -E`) imports too, its cache refused.
#[test]
fn inside_python_imports_caches_and_installs_as_before() {
    for args in [&[][..], &["--transparent"][..]] {
        let fx = Fixture::new(PROBE);
        python_project(&fx);
        fs::write(
            fx.ws("test_a.py"),
            "import unittest, a\nclass T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(a.f(), 'a')\n",
        )
        .unwrap();
        fs::write(
            fx.ws("setup.py"),
            "from setuptools import setup\nsetup(name='proj', version='1', py_modules=['a'])\n",
        )
        .unwrap();
        let script = r#"set -e
PY=/usr/bin/python3
$PY -c 'import sys, os; print("prefix", sys.pycache_prefix.startswith(os.environ["TMPDIR"]))'
$PY app.py
test -n "$(find "$TMPDIR/pycache" -name 'a.*.pyc')"
$PY app.py
$PY -m compileall -q .
$PY -m unittest -q test_a 2>&1
$PY -m venv --system-site-packages "$TMPDIR/venv"
"$TMPDIR/venv/bin/pip" install -q --no-index --no-build-isolation --no-deps \
  --no-cache-dir --disable-pip-version-check -e . 2>&1
"$TMPDIR/venv/bin/python" -c 'import a; print("venv", a.f())'
test -z "$(find . -name '*.pyc')"
echo before-isolated >&2
$PY -E app.py
echo done
"#;
        let out = execute(fx.sluice_command(args, &["/usr/bin/bash", "-c", script]));
        assert!(out.stdout.contains("prefix True"), "{out}");
        assert_eq!(
            out.stdout.matches("hello a b c d pkg/e").count(),
            3,
            "{out}"
        );
        assert!(out.stdout.contains("venv a"), "{out}");
        assert!(out.stdout.contains("done"), "{out}");
        let (before, isolated) = out.stderr.split_once("before-isolated").unwrap();
        assert!(!before.contains("refused writing"), "{out}");
        assert!(isolated.contains("refused writing"), "{out}");
        assert!(persons_run(&fx).is_empty());
    }
}

/// Bytecode that exists at launch is not pinned (a project holds
/// thousands; removing one harms nothing): the launch mounts nothing for
/// it, the program removes it, and cannot write over it.
#[test]
fn existing_bytecode_is_not_pinned_and_not_overwritten() {
    let fx = Fixture::new(PROBE);
    python_project(&fx);
    for i in 0..3000 {
        let dir = fx.ws(&format!("lib{}/__pycache__", i / 100));
        fs::create_dir_all(&dir).unwrap();
        fs::write(format!("{dir}/m{i}.cpython-311.pyc"), "x").unwrap();
    }
    let script = "rm lib0/__pycache__/m0.cpython-311.pyc && echo removed; \
                  mv lib1 lib1x && echo moved; \
                  echo evil > lib2/__pycache__/m200.cpython-311.pyc || echo refused";
    let out = execute(fx.sluice_command(&["-v"], &["/bin/sh", "-c", script]));
    assert!(out.stdout.contains("removed"), "{out}");
    assert!(out.stdout.contains("moved"), "{out}");
    assert!(out.stdout.contains("refused"), "{out}");
    let pins = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("sluice: protect: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    assert!(pins < 10, "{pins} pins\n{out}");
    let kept = fs::read(fx.ws("lib2/__pycache__/m200.cpython-311.pyc")).unwrap();
    assert_eq!(kept, b"x");
}

/// `sluice explain --write` names the rule and what Python does instead.
#[test]
fn explain_names_the_bytecode_rule() {
    let fx = Fixture::new(PROBE);
    python_project(&fx);
    let path = fx.ws("__pycache__/a.cpython-311.pyc");
    let mut cmd = fx.sluice_cli_command(&["explain", "--write", &path]);
    cmd.current_dir(&fx.ws_dir);
    let out = execute(cmd);
    assert!(out.stdout.contains("refused by protect \"**/"), "{out}");
    assert!(out.stdout.contains("PYTHONPYCACHEPREFIX"), "{out}");
    assert!(!out.stdout.contains("keeps it in place"), "{out}");
}
