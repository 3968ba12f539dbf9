//! Red team, round 15: names the program makes that reach the person's
//! terminal later. A file's name holding an escape sequence (OSC 52 sets
//! the clipboard, CSI rewrites the screen) is printed as it is by the
//! person's `grep -r`, `find`, `git status` with `core.quotePath=false`, a
//! build log; a symlink's target by `ls -l` and `find -printf %l`; an
//! extended attribute's name by `getfattr -d`. The guard judges every name
//! made (`protect::judge_name`): one holding a C0 or C1 control, DEL, or a
//! lone byte 0x80 to 0x9F is refused (`EINVAL`), by every call that makes
//! one, under `default` and `--transparent`, as an unprivileged user and
//! stacked. The harm is checked with the person's `find` outside. Controls:
//! the same script outside sluice makes every name; inside, ordinary names
//! (UTF-8, spaces, a leading dash, Latin-1) are made by every call, and a
//! file the person named so before is written as before.

use std::fs;
use std::process::Command;

use sluice_tests::{execute, sluice_bin, Fixture, Outcome};

use super::escape_later::{as_nobody, give_to_nobody, Succeeded};
use super::redteam13pins::HELPERS;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
const PYTHON: &str = "/usr/bin/python3";

/// The name forms tried: OSC 52 (clipboard), a newline, CSI as UTF-8 C1,
/// CSI as a lone 8-bit byte, DEL.
const BAD: [&str; 5] = ["osc52", "newline", "c1", "lone", "del"];

/// Ordinary names, each made by every call inside.
const GOOD: [&str; 6] = ["utf8", "spaces", "dash", "cjk", "u00db", "latin1"];

/// The calls that make a name, each tried with every form.
const CALLS: [&str; 10] = [
    "open", "excl", "openat2", "mkdir", "fifo", "link", "symlink", "target", "rename", "xattr",
];

/// `python3 -c MAKE FORMS...` in the workspace: every call of [`CALLS`]
/// with every form named, each said on a line `CALL FORM: ok` (or the
/// error). After [`HELPERS`] (`attempt`).
const MAKE: &str = r#"
import os, struct, sys
forms = {
    "osc52": b"\x1b]52;c;ZWNobyBoaQ==\x07", "newline": b"\n", "c1": b"\xc2\x9b2J",
    "lone": b"\x9b2J", "del": b"\x7f",
    "utf8": "café – ünï ✓".encode(), "spaces": b" with spaces ", "dash": b"-rf",
    "cjk": "日本語 🎉".encode(), "u00db": b"\xc3\x9b", "latin1": b"caf\xe9",
}
with open("clean", "w") as f:
    f.write("x")
for form in sys.argv[1:]:
    b = forms[form]
    def name(call):
        return call.encode() + b"-" + b + b"-" + form.encode()
    def opened():
        os.close(os.open(name("open"), os.O_WRONLY | os.O_CREAT, 0o644))
    def excl():
        d = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.close(os.open(name("excl"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=d))
        finally:
            os.close(d)
    def openat2():
        # `RESOLVE_BENEATH`: the guard resolves it as asked.
        how = struct.pack("QQQ", os.O_WRONLY | os.O_CREAT, 0o644, 0x08)
        fd = libc.syscall(437, -100, name("openat2"), how, len(how))
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        os.close(fd)
    def renamed():
        tmp = b"tmp-" + form.encode()
        open(tmp, "w").close()
        os.rename(tmp, name("rename"))
    calls = {
        "open": opened,
        "excl": excl,
        "openat2": openat2,
        "mkdir": lambda: os.mkdir(name("mkdir")),
        "fifo": lambda: os.mkfifo(name("fifo")),
        "link": lambda: os.link("clean", name("link")),
        "symlink": lambda: os.symlink("clean", name("symlink")),
        "target": lambda: os.symlink(b"x" + b, b"target-" + form.encode()),
        "rename": renamed,
        "xattr": lambda: os.setxattr("clean", b"user.x" + b, b"v"),
    }
    for call, f in calls.items():
        attempt(call + " " + form, f)
print("tried", flush=True)
"#;

/// The script for `forms`, as `python3 -c` arguments.
fn make(forms: &[&str]) -> Vec<String> {
    let mut args = vec![
        PYTHON.to_owned(),
        "-c".to_owned(),
        format!("{HELPERS}{MAKE}"),
    ];
    args.extend(forms.iter().map(|f| f.to_string()));
    args
}

/// `args` inside sluice with `sluice_args`, in the workspace.
fn inside(fx: &Fixture, sluice_args: &[&str], args: &[String]) -> Outcome {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    execute(fx.sluice_command(sluice_args, &args))
}

/// `args` outside sluice, in the workspace.
fn outside(fx: &Fixture, args: &[String]) -> Outcome {
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..])
        .current_dir(&fx.ws_dir)
        .stdin(std::process::Stdio::null());
    execute(cmd)
}

/// What the person's `find . -printf '%p -> %l\n'` in the workspace prints
/// (names, and symlinks' targets) and the extended attributes' names of
/// `clean`: what reaches their terminal.
fn persons_find(fx: &Fixture) -> Vec<u8> {
    let mut cmd = Command::new("find");
    cmd.args([".", "-printf", "%p -> %l\\n"])
        .current_dir(&fx.ws_dir);
    let mut shown = cmd.output().unwrap().stdout;
    if let Ok(names) = xattr_names(&fx.ws("clean")) {
        shown.extend_from_slice(&names);
    }
    shown
}

/// The extended attributes' names of `path` (`listxattr`), NUL-separated.
fn xattr_names(path: &str) -> std::io::Result<Vec<u8>> {
    let c = std::ffi::CString::new(path).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = unsafe { libc::listxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// The bytes of a planted form found in what the person's tools print
/// (a newline in a name shows as a line with no ` -> `).
fn planted_in(shown: &[u8]) -> Vec<&'static str> {
    let mut found = Vec::new();
    let has = |needle: &[u8]| shown.windows(needle.len()).any(|w| w == needle);
    if has(b"\x1b]52;") {
        found.push("osc52");
    }
    if has(b"\xc2\x9b2J") {
        found.push("c1");
    }
    if (shown.utf8_chunks()).any(|chunk| chunk.invalid().contains(&0x9b)) {
        found.push("lone");
    }
    if has(b"\x7f") {
        found.push("del");
    }
    let text = String::from_utf8_lossy(shown);
    if text.lines().any(|l| l.starts_with("-newline")) {
        found.push("newline");
    }
    found
}

/// Each (call, form) line of `out`, asserted to say `want`.
fn each_says(out: &Outcome, forms: &[&str], want: &str) {
    assert!(out.stdout.contains("tried"), "{out}");
    let wrong: Vec<String> = (forms.iter())
        .flat_map(|form| {
            CALLS
                .iter()
                .map(move |call| format!("{call} {form}: {want}\n"))
        })
        .filter(|line| !out.stdout.contains(line))
        .collect();
    assert!(wrong.is_empty(), "not said: {wrong:?}\n{out}");
}

/// Control: outside sluice every call makes every form, and the person's
/// `find` prints each as it is.
#[test]
fn control_outside_sluice_every_call_makes_a_name_the_terminal_acts_on() {
    let fx = Fixture::new(PROBE);
    let out = outside(&fx, &make(&BAD));
    each_says(&out, &BAD, "ok");
    let shown = persons_find(&fx);
    assert_eq!(
        planted_in(&shown),
        ["osc52", "c1", "lone", "del", "newline"]
    );
}

/// Every call that makes a name refuses one holding a control, with
/// `EINVAL`, under `default` and `--transparent`; the person's `find`
/// afterwards prints none; the refusal says why without printing the
/// name's escape; `sluice explain` says it too.
#[test]
fn no_call_makes_a_name_the_terminal_acts_on() {
    for way in [&[][..], &["--transparent"][..]] {
        let fx = Fixture::new(PROBE);
        let out = inside(&fx, way, &make(&BAD));
        each_says(&out, &BAD, "Invalid argument");
        assert_eq!(
            planted_in(&persons_find(&fx)),
            Vec::<&str>::new(),
            "{way:?}"
        );
        assert!(out.stderr.contains("refused writing"), "{out}");
        assert!(
            out.stderr.contains("control character \\x1b"),
            "the refusal names the character\n{out}"
        );
        assert!(out.stderr.contains("EINVAL"), "{out}");
        assert!(
            !out.stderr.contains('\x1b'),
            "the refusal printed the escape\n{out}"
        );
    }
}

/// The same as the unprivileged user 65534 (its sandbox in a user
/// namespace of its own).
#[test]
fn no_call_makes_such_a_name_for_an_unprivileged_user() {
    let fx = Fixture::new(PROBE);
    give_to_nobody(&fx);
    let sluice = sluice_bin().to_string_lossy().into_owned();
    let ws = fx.ws("");
    let mut program: Vec<String> = ["run", "--workspace", &ws, "--"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    program.insert(0, sluice);
    program.extend(make(&BAD));
    let program: Vec<&str> = program.iter().map(String::as_str).collect();
    let out = as_nobody(&fx, &program, "");
    each_says(&out, &BAD, "Invalid argument");
    assert_eq!(planted_in(&persons_find(&fx)), Vec::<&str>::new());
    // Control: the same user makes ordinary names.
    let good = make(&GOOD);
    let program: Vec<&str> = (program[..5].iter().copied())
        .chain(good.iter().map(String::as_str))
        .collect();
    let out = as_nobody(&fx, &program, "");
    each_says(&out, &GOOD, "ok");
}

/// A sluice inside sluice: the outer guard judges the stacked program's
/// names too.
#[test]
fn a_stacked_sandbox_makes_no_such_name_either() {
    let fx = Fixture::new(PROBE);
    let sluice = sluice_bin().to_string_lossy().into_owned();
    let mut program = vec![sluice, "run".to_owned(), "--".to_owned()];
    program.extend(make(&BAD));
    let out = inside(&fx, &[], &program);
    each_says(&out, &BAD, "Invalid argument");
    assert_eq!(planted_in(&persons_find(&fx)), Vec::<&str>::new());
}

/// Control inside: every call makes ordinary names (UTF-8 with U+00DB,
/// whose second byte is 0x9B, CJK and an emoji, spaces, a leading dash,
/// a Latin-1 byte that is not UTF-8), with no refusal; a file the person
/// named with an escape before the session is written as before (no name
/// is made); `sluice explain` says which names are refused.
#[test]
fn ordinary_names_are_made_and_existing_ones_written() {
    for way in [&[][..], &["--transparent"][..]] {
        let fx = Fixture::new(PROBE);
        let old = fx.ws("old\x1b[2J");
        fs::write(&old, "").unwrap();
        let out = inside(&fx, way, &make(&GOOD));
        each_says(&out, &GOOD, "ok");
        assert!(!out.stderr.contains("refused"), "{out}");
        let append = inside(
            &fx,
            way,
            &[
                "/bin/sh".into(),
                "-c".into(),
                "echo kept >> \"$(printf 'old\\033[2J')\"".into(),
            ],
        );
        assert!(append.status.success(), "{append}");
        assert_eq!(fs::read_to_string(&old).unwrap(), "kept\n", "{append}");
    }
}

/// `sluice explain --write` of a name holding a control says the guard
/// refuses it and why, without printing the escape; an ordinary name is
/// allowed.
#[test]
fn explain_says_a_name_holding_a_control_is_refused() {
    let fx = Fixture::new(PROBE);
    let explain = |name: &str| {
        let mut cmd = fx.sluice_cli_command(&["explain", "--write", &fx.ws(name)]);
        cmd.current_dir(&fx.ws_dir);
        execute(cmd)
    };
    let bad = explain("a\x1b]52;c;eA==\x07b");
    assert!(!bad.status.success(), "{bad}");
    assert!(bad.stdout.contains("control character \\x1b"), "{bad}");
    assert!(bad.stdout.contains("refused"), "{bad}");
    assert!(!bad.stdout.contains('\x1b'), "{bad}");
    let good = explain("café.txt");
    assert!(good.status.success(), "{good}");
    assert!(!good.stdout.contains("control character"), "{good}");
}

/// The refusal is in the session's audit record (the name escaped, the
/// rule), and the summary said when the program fails names it as one no
/// flag lifts.
#[test]
fn the_refusal_is_recorded_and_summed_up() {
    let fx = Fixture::new(PROBE);
    let script = "echo x > \"$(printf 'a\\033]52;c;eA==\\007b')\"";
    let out = inside(&fx, &[], &["/bin/sh".into(), "-c".into(), script.into()]);
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("no flag lifts it"), "{out}");
    assert!(!out.stderr.contains("--allow-write"), "{out}");
    let mut recorded = String::new();
    for entry in fs::read_dir(fx.audit_dir()).unwrap().flatten() {
        recorded.push_str(&fs::read_to_string(entry.path()).unwrap_or_default());
    }
    assert!(recorded.contains("control character \\\\x1b"), "{recorded}");
    assert!(!recorded.contains('\x1b'), "{recorded}");
}

// ---------------------------------------------------------------------------
// A Python extension module in place of the source the person reviews.
// ---------------------------------------------------------------------------

/// The directories each holding the person's clean `a.py`, one per way an
/// extension module `a` is put beside it.
const BESIDE: [&str; 5] = ["p1", "p2", "p3", "p4", "p5"];

/// `sh -c PLANT sh C_SOURCE` in the workspace: the extension module `a`
/// (from `redteam14cache::extension_source`) put beside each clean `a.py`
/// a different way (built there, copied, renamed from the TMPDIR, a
/// symlink, a hard link; the suffixes `.so`, `.abi3.so` and this Python's
/// own), and a clean `a.py` made beside one built where no source was
/// (`rev`: written; `rev2`: renamed; `rev3`: in a directory the guard
/// knows already, a source made there first). Control: `rev4`, the same
/// with the extension module removed before, where the source is made
/// (`source-removed`). Renamed within the workspace: from
/// the TMPDIR (another file system) `mv` copies. Each said `WAY: ok` or `WAY: no`.
const PLANT_EXTENSION: &str = r#"
cc() { gcc -shared -fPIC -I/usr/include/python3.11 -o "$1" "$TMPDIR/ext.c"; }
t() { w=$1; shift; if "$@" 2>/dev/null; then echo "$w: ok"; else echo "$w: no"; fi; }
printf '%s' "$1" > "$TMPDIR/ext.c" && cc "$TMPDIR/evil.so" || exit 1
ext=$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
t build cc p1/a.so
t copy cp "$TMPDIR/evil.so" "p2/a$ext"
mkdir -p x && cp "$TMPDIR/evil.so" x/evil.so && cp x/evil.so x/m.so
t rename mv x/m.so p3/a.abi3.so
t symlink ln -s "$TMPDIR/evil.so" p4/a.so
t link ln x/evil.so p5/a.so
mkdir -p rev rev2
cc rev/a.so && cc rev2/a.so && echo "lone: ok"
t source sh -c 'printf "def f():\n    return 1\n" > rev/a.py'
printf 'def f():\n    return 1\n' > x/a.py
t source-renamed mv x/a.py rev2/a.py
mkdir -p rev3 rev4
: > rev3/other.py && cc rev3/a.so
t source-known sh -c 'printf "def f():\n    return 1\n" > rev3/a.py'
: > rev4/other.py && cc rev4/a.so && rm rev4/a.so
t source-removed sh -c 'printf "def f():\n    return 1\n" > rev4/a.py'
echo tried
"#;

/// The ways of [`PLANT_EXTENSION`].
const PLANT_WAYS: [&str; 8] = [
    "build",
    "copy",
    "rename",
    "symlink",
    "link",
    "source",
    "source-renamed",
    "source-known",
];

/// The person's project for [`PLANT_EXTENSION`]: a clean `a.py` in each
/// of [`BESIDE`].
fn clean_sources(fx: &Fixture) {
    for dir in BESIDE {
        fs::create_dir_all(fx.ws(dir)).unwrap();
        fs::write(fx.ws(&format!("{dir}/a.py")), "def f():\n    return 'a'\n").unwrap();
    }
    fs::create_dir_all(&fx.outside_dir).unwrap();
}

/// The planting script's arguments: `sh -c PLANT_EXTENSION sh C_SOURCE`.
fn plant_extension(fx: &Fixture) -> Vec<String> {
    let source = super::redteam14cache::extension_source(&fx.outside_dir.to_string_lossy());
    ["/bin/sh", "-c", PLANT_EXTENSION, "sh", &source]
        .map(str::to_owned)
        .to_vec()
}

/// The person's `python3 -c 'import DIR.a'` outside, for each of
/// [`BESIDE`]: the directories where the planted extension ran instead of
/// the clean source.
fn persons_imports(fx: &Fixture) -> Vec<&'static str> {
    let canary = fx.outside("so");
    BESIDE
        .into_iter()
        .filter(|dir| {
            let mut cmd = Command::new(PYTHON);
            cmd.args(["-c", &format!("import {dir}.a as m; print(m.f())")])
                .current_dir(&fx.ws_dir)
                .env_remove("PYTHONPYCACHEPREFIX")
                .stdin(std::process::Stdio::null());
            let out = execute(cmd);
            assert!(out.stdout.contains('a'), "{out}");
            fs::remove_file(&canary).is_ok()
        })
        .collect()
}

/// Control: outside sluice every way puts the extension module beside the
/// source (or the source beside it), and the person's import of each runs
/// the extension.
#[test]
fn control_outside_sluice_an_extension_module_beside_its_source_runs() {
    let fx = Fixture::new(PROBE);
    clean_sources(&fx);
    let out = outside(&fx, &plant_extension(&fx));
    assert!(out.stdout.contains("tried"), "{out}");
    for way in PLANT_WAYS {
        assert!(out.stdout.contains(&format!("{way}: ok\n")), "{way}\n{out}");
    }
    assert_eq!(persons_imports(&fx), BESIDE);
}

/// Inside sluice, under `default` and `--transparent`: no way puts an
/// extension module beside the person's source (nor a source beside one),
/// the refusal says why, and the person's imports run the sources; an
/// extension module with no source beside it is built as before.
#[test]
fn no_extension_module_is_made_beside_its_source() {
    for way in [&[][..], &["--transparent"][..]] {
        let fx = Fixture::new(PROBE);
        clean_sources(&fx);
        let out = inside(&fx, way, &plant_extension(&fx));
        extension_refused(&fx, &out);
    }
}

/// The same as the unprivileged user 65534.
#[test]
fn no_extension_module_is_made_beside_its_source_for_an_unprivileged_user() {
    let fx = Fixture::new(PROBE);
    clean_sources(&fx);
    give_to_nobody(&fx);
    let sluice = sluice_bin().to_string_lossy().into_owned();
    let ws = fx.ws("");
    let mut program: Vec<String> = [sluice.as_str(), "run", "--workspace", &ws, "--"]
        .map(str::to_owned)
        .to_vec();
    program.extend(plant_extension(&fx));
    let program: Vec<&str> = program.iter().map(String::as_str).collect();
    let out = as_nobody(&fx, &program, "");
    extension_refused(&fx, &out);
}

/// What [`PLANT_EXTENSION`] inside sluice must leave: every way refused,
/// said on standard error, the extension with no source beside it built,
/// no planted extension run by the person's imports.
fn extension_refused(fx: &Fixture, out: &Outcome) {
    assert!(out.stdout.contains("tried"), "{out}");
    assert!(out.stdout.contains("lone: ok\n"), "{out}");
    assert!(out.stdout.contains("source-removed: ok\n"), "{out}");
    let made: Vec<&str> = (PLANT_WAYS.into_iter())
        .filter(|way| !out.stdout.contains(&format!("{way}: no\n")))
        .collect();
    assert!(made.is_empty(), "{made:?}\n{out}");
    assert!(
        out.stderr
            .contains("an extension module beside the Python source a.py"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("a Python source beside the extension module a.so"),
        "{out}"
    );
    for dir in ["rev", "rev2", "rev3"] {
        assert!(
            fs::symlink_metadata(fx.ws(&format!("{dir}/a.py"))).is_err(),
            "{out}"
        );
    }
    assert_eq!(persons_imports(fx), Vec::<&str>::new(), "{out}");
}

/// Control inside: `setup.py build_ext --inplace` of an extension module
/// with no source of its name beside it builds, and imports; a source
/// written beside an extension module of another name, and the person's
/// clean source edited beside nothing, draw no refusal.
#[test]
fn an_extension_module_with_no_source_of_its_name_is_built_in_place() {
    for way in [&[][..], &["--transparent"][..]] {
        let fx = Fixture::new(PROBE);
        clean_sources(&fx);
        fs::write(fx.ws("fast.c"), FAST_C).unwrap();
        fs::write(
            fx.ws("setup.py"),
            "from setuptools import setup, Extension\n\
             setup(name='fast', version='1', ext_modules=[Extension('fast', ['fast.c'])])\n",
        )
        .unwrap();
        let script = "set -e\n\
            /usr/bin/python3 setup.py -q build_ext --inplace\n\
            /usr/bin/python3 -c 'import fast; print(\"fast\", fast.f())'\n\
            printf 'import fast\\n' > faster.py\n\
            printf 'def f():\\n    return 2\\n' > p1/a.py\n\
            echo done";
        let out = inside(&fx, way, &["/bin/sh".into(), "-c".into(), script.into()]);
        assert!(out.stdout.contains("fast 42\n"), "{way:?}\n{out}");
        assert!(out.stdout.contains("done"), "{way:?}\n{out}");
        assert!(!out.stderr.contains("refused"), "{way:?}\n{out}");
    }
}

/// An extension module `fast` whose `f()` returns 42.
const FAST_C: &str = r#"#include <Python.h>
static PyObject *f(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"f", f, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "fast", NULL, -1, methods};
PyMODINIT_FUNC PyInit_fast(void) { return PyModule_Create(&def); }
"#;

/// `sh -c PACKAGE sh OUT`: a package `a` (its `__init__.py` leaves the
/// canary `pkg` in `OUT`), hidden from `git status` by a `.gitignore` of
/// `*`, made beside the person's clean `q1/a.py` (written) and `q2/a.py`
/// (renamed in, hard-linked in `q3`), and a source `b.py` made beside a
/// package `b` made first (`q4`). Each said `WAY: ok` or `WAY: no`.
const PACKAGE: &str = r#"
t() { w=$1; shift; if "$@" 2>/dev/null; then echo "$w: ok"; else echo "$w: no"; fi; }
init="open('$1/pkg', 'w').write('ran')
def f():
    return 'a'
"
mkdir -p q1/a q2/a q3/a q4/b x
printf '*\n' > q1/a/.gitignore && printf '*\n' > q2/a/.gitignore && printf '*\n' > q3/a/.gitignore
t package-written sh -c 'printf "%s" "$0" > q1/a/__init__.py' "$init"
printf '%s' "$init" > x/init.py && printf '%s' "$init" > x/init2.py
t package-renamed mv x/init.py q2/a/__init__.py
t package-linked ln x/init2.py q3/a/__init__.py
printf '%s' "$init" > q4/b/__init__.py && echo "lone package: ok"
t source-beside-package sh -c 'printf "def f():\n    return 1\n" > q4/b.py'
echo tried
"#;

/// The ways of [`PACKAGE`].
const PACKAGE_WAYS: [&str; 4] = [
    "package-written",
    "package-renamed",
    "package-linked",
    "source-beside-package",
];

/// The person's clean `a.py` in `q1` to `q3`; the ways of [`PACKAGE`]
/// said on `out`, and which of the person's `import qN.a` outside ran
/// the package.
fn package_beside(fx: &Fixture, sluice_args: Option<&[&str]>) -> (Outcome, Vec<&'static str>) {
    for dir in ["q1", "q2", "q3"] {
        fs::create_dir_all(fx.ws(dir)).unwrap();
        fs::write(fx.ws(&format!("{dir}/a.py")), "def f():\n    return 'a'\n").unwrap();
    }
    fs::create_dir_all(&fx.outside_dir).unwrap();
    let out_dir = fx.outside_dir.to_string_lossy().into_owned();
    let program = ["/bin/sh", "-c", PACKAGE, "sh", &out_dir].map(str::to_owned);
    let out = match sluice_args {
        Some(args) => inside(fx, args, &program),
        None => outside(fx, &program),
    };
    assert!(out.stdout.contains("tried"), "{out}");
    assert!(out.stdout.contains("lone package: ok"), "{out}");
    let ran = ["q1", "q2", "q3"]
        .into_iter()
        .filter(|dir| {
            let mut cmd = Command::new(PYTHON);
            cmd.args(["-c", &format!("import {dir}.a as m; print(m.f())")])
                .current_dir(&fx.ws_dir)
                .stdin(std::process::Stdio::null());
            execute(cmd);
            fs::remove_file(fx.outside("pkg")).is_ok()
        })
        .collect();
    (out, ran)
}

/// Control: outside sluice each way is made, and the person's import of
/// `qN.a` runs the hidden package.
#[test]
fn control_outside_sluice_a_package_beside_its_source_runs() {
    let fx = Fixture::new(PROBE);
    fx.git_outside(&fx.ws_dir, &["init", "-q"]).succeeded();
    let (out, ran) = package_beside(&fx, None);
    for way in PACKAGE_WAYS {
        assert!(out.stdout.contains(&format!("{way}: ok\n")), "{way}\n{out}");
    }
    assert_eq!(ran, ["q1", "q2", "q3"], "{out}");
    let status = fx.git_outside(
        &fx.ws_dir,
        &["status", "--porcelain", "--untracked-files=all"],
    );
    assert!(status.status.success(), "{status}");
    assert!(status.stdout.contains("q1/a.py"), "{status}");
    assert!(
        !status.stdout.contains("a/__init__"),
        "hidden from review: {status}"
    );
}

/// Inside sluice, under `default` and `--transparent`: no package is
/// made beside the person's source, nor a source beside a package; the
/// person's imports run the sources. Control: a module turned into a
/// package by moving its source in (`mv a.py a/__init__.py`) works.
#[test]
fn no_package_is_made_beside_its_source() {
    for way in [&[][..], &["--transparent"][..]] {
        let fx = Fixture::new(PROBE);
        let (out, ran) = package_beside(&fx, Some(way));
        let made: Vec<&str> = (PACKAGE_WAYS.into_iter())
            .filter(|w| !out.stdout.contains(&format!("{w}: no\n")))
            .collect();
        assert!(made.is_empty(), "{made:?}\n{out}");
        assert!(ran.is_empty(), "{ran:?}\n{out}");
        assert!(
            out.stderr
                .contains("a package beside the Python source a.py"),
            "{out}"
        );
        let turned = inside(
            &fx,
            way,
            &[
                "/bin/sh".into(),
                "-c".into(),
                "mkdir q1/c && printf 'x = 1\\n' > q1/c.py && mv q1/c.py q1/c/__init__.py && echo turned"
                    .into(),
            ],
        );
        assert!(turned.stdout.contains("turned"), "{turned}");
    }
}

// ---------------------------------------------------------------------------
// A symlink that redirects the person's later write.
// ---------------------------------------------------------------------------

/// `python3 -c LEADS`: symlinks in the workspace (beside `../home`, the
/// person's home) that lead where the person's own tools would later
/// write into a path that runs code: made absolute and relative, to a
/// file and to a directory; made harmless deeper (`deep`, `deep2`) then
/// renamed or hard-linked up to where they lead to `~/.bashrc` (inside
/// sluice refused already where made: renamed higher, they would). Each
/// said `WAY: ok` or the error.
const LEADS: &str = r#"
import os
home = os.path.abspath("../home")
os.makedirs("a/b/c", exist_ok=True)
attempt("absolute", lambda: os.symlink(home + "/.bashrc", "build.log"))
attempt("relative", lambda: os.symlink("../home/.bashrc", "out.log"))
attempt("directory", lambda: os.symlink(home + "/.local/bin", "tools"))
attempt("hook", lambda: os.symlink(".git/hooks/pre-commit", "hook.log"))
# From a/b/c, ../../home/.bashrc is a/home/.bashrc: nothing protected
# there, but renamed or linked up into `a` it leads to the person's.
attempt("deep", lambda: os.symlink("../../home/.bashrc", "a/b/c/deep"))
attempt("deep2", lambda: os.symlink("../../home/.bashrc", "a/b/c/deep2"))
attempt("renamed", lambda: os.rename("a/b/c/deep", "a/renamed.log"))
attempt("linked", lambda: os.link("a/b/c/deep2", "a/linked.log", follow_symlinks=False))
# Controls: a virtual environment's interpreter, a tool's relative link.
attempt("control-system", lambda: os.symlink("/usr/bin/python3", "python"))
attempt("control-relative", lambda: os.symlink("../b/c/deep2", "a/b/rel"))
attempt("control-home", lambda: os.symlink(home + "/.pyenv/versions/3/bin/python3", "py"))
print("tried", flush=True)
"#;

/// The ways of [`LEADS`] that lead into the person's start-up file.
const LEAD_WAYS: [&str; 4] = ["absolute", "relative", "renamed", "linked"];

/// The person's home with a `.bashrc` and a `~/.local/bin`, a repository
/// in the workspace; [`LEADS`] run (inside sluice with `sluice_args`, or
/// outside); then the person's own writes to each name outside (`echo
/// ... > build.log`, as `make > build.log` would): what their `.bashrc`
/// holds after.
fn persons_writes_after(fx: &Fixture, sluice_args: Option<&[&str]>) -> (Outcome, String) {
    fs::create_dir_all(fx.home(".local/bin")).unwrap();
    fs::write(fx.home(".bashrc"), "# the person's\n").unwrap();
    fx.git_outside(&fx.ws_dir, &["init", "-q"]).succeeded();
    let program = [PYTHON.to_owned(), "-c".into(), format!("{HELPERS}{LEADS}")];
    let out = match sluice_args {
        Some(args) => inside(fx, args, &program),
        None => outside(fx, &program),
    };
    assert!(out.stdout.contains("tried"), "{out}");
    for control in ["control-system", "control-relative", "control-home"] {
        assert!(out.stdout.contains(&format!("{control}: ok\n")), "{out}");
    }
    for name in ["build.log", "out.log", "a/renamed.log", "a/linked.log"] {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", &format!("echo 'echo PWNED' >> {name}")])
            .current_dir(&fx.ws_dir);
        execute(cmd);
    }
    (out, fs::read_to_string(fx.home(".bashrc")).unwrap())
}

/// Control: outside sluice each symlink is made, and the person's writes
/// to the workspace's logs land in their `.bashrc`.
#[test]
fn control_outside_sluice_a_symlink_redirects_the_persons_write() {
    let fx = Fixture::new(PROBE);
    let (out, bashrc) = persons_writes_after(&fx, None);
    for way in LEAD_WAYS.iter().chain(&["directory", "hook"]) {
        assert!(out.stdout.contains(&format!("{way}: ok\n")), "{way}\n{out}");
    }
    assert_eq!(bashrc.matches("PWNED").count(), LEAD_WAYS.len(), "{bashrc}");
}

/// Inside sluice, under `default` and `--transparent`, and as 65534: no
/// symlink leads to a protected path, made there or moved there; the
/// person's writes make plain files and leave their `.bashrc` alone; the
/// refusal names the symlink and where it would lead. Controls (in
/// [`persons_writes_after`]): a link to the system's interpreter, a
/// relative link within the workspace, one into the home that nothing
/// protects (pyenv's interpreter, for a virtual environment).
#[test]
fn no_symlink_leads_the_persons_write_to_a_protected_path() {
    for way in [&[][..], &["--transparent"][..]] {
        let fx = Fixture::new(PROBE);
        let (out, bashrc) = persons_writes_after(&fx, Some(way));
        for way in ["absolute", "relative", "directory", "hook", "deep", "deep2"] {
            assert!(
                out.stdout.contains(&format!("{way}: Permission denied\n")),
                "{way}\n{out}"
            );
        }
        for way in ["renamed", "linked"] {
            assert!(
                !out.stdout.contains(&format!("{way}: ok\n")),
                "{way}\n{out}"
            );
        }
        assert_eq!(bashrc, "# the person's\n", "{out}");
        assert!(out.stderr.contains("this symlink would lead to"), "{out}");
    }
}

/// A virtual environment is made and runs inside (its `bin/python` a
/// symlink to the system's interpreter).
#[test]
fn a_virtual_environment_is_made_inside() {
    let fx = Fixture::new(PROBE);
    let script =
        "/usr/bin/python3 -m venv --without-pip .venv && .venv/bin/python -c 'print(\"venv ok\")'";
    let out = inside(&fx, &[], &["/bin/sh".into(), "-c".into(), script.into()]);
    assert!(out.stdout.contains("venv ok"), "{out}");
    assert!(!out.stderr.contains("refused"), "{out}");
}

/// The program links `a/b/c/deep -> ../../../home/.bashrc` (from there,
/// `ws/home/.bashrc`) and renames `a/b/c` to `a/c` (from there, the
/// person's); then the person appends to `a/c/deep` outside. What their
/// `.bashrc` holds after, and the program's outcome.
fn renamed_directory(fx: &Fixture, sluice_args: Option<&[&str]>) -> (Outcome, String) {
    fs::create_dir_all(fx.ws("a/b/c")).unwrap();
    fs::write(fx.home(".bashrc"), "# the person's\n").unwrap();
    let script = "ln -s ../../../home/.bashrc a/b/c/deep && mv a/b/c a/c && echo moved";
    let program = ["/bin/sh".into(), "-c".into(), script.into()];
    let out = match sluice_args {
        Some(args) => inside(fx, args, &program),
        None => outside(fx, &program),
    };
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "echo 'echo PWNED' >> a/c/deep"])
        .current_dir(&fx.ws_dir);
    execute(cmd);
    (out, fs::read_to_string(fx.home(".bashrc")).unwrap())
}

/// A directory renamed carries its relative symlinks to a place where
/// they lead elsewhere, and the guard does not walk what a renamed
/// directory holds: so a relative target that climbs is judged where it
/// is made from every writable directory above it too.
#[test]
fn a_renamed_directory_moves_no_symlink_to_a_protected_path() {
    let fx = Fixture::new(PROBE);
    let (out, bashrc) = renamed_directory(&fx, Some(&[]));
    assert!(!bashrc.contains("PWNED"), "{out}");
    assert!(!out.stdout.contains("moved"), "{out}");
}

/// Control: outside sluice the directory renamed makes the symlink lead
/// to the person's `.bashrc`, and their write lands there.
#[test]
fn control_outside_sluice_a_renamed_directory_moves_a_symlink() {
    let fx = Fixture::new(PROBE);
    let (out, bashrc) = renamed_directory(&fx, None);
    assert!(out.stdout.contains("moved"), "{out}");
    assert!(bashrc.contains("PWNED"), "{out}");
}

/// A symlink renamed (or hard-linked) into another directory is judged
/// again where it lands: `../a/hook` made in `p/q` leads to `p/a/hook`, moved into `r/s`
/// to `r/a/hook`, which a policy protects (a path, not a pattern at any
/// depth: from the directories above `p/q` it leads nowhere protected).
/// Control: the same rename of a symlink nothing protected lies behind.
#[test]
fn a_symlink_renamed_is_judged_where_it_lands() {
    let fx = Fixture::new(PROBE);
    let policy = fx.write_policy(
        "hook.toml",
        "extends = [\"default\"]\n\n[filesystem]\nprotect = [\"$WORKSPACE/r/a/hook\"]\n",
    );
    let script =
        "mkdir -p p/q r/s && ln -s ../a/hook p/q/l && ln -s ../a/other p/q/m && echo made; \
                  mv p/q/l r/s/l && echo moved; ln -P p/q/l r/s/l2 && echo linked; \
                  mv p/q/m r/s/m && echo control";
    let out = inside(
        &fx,
        &["--policy", &policy],
        &["/bin/sh".into(), "-c".into(), script.into()],
    );
    assert!(out.stdout.contains("made"), "{out}");
    assert!(!out.stdout.contains("moved"), "{out}");
    assert!(!out.stdout.contains("linked"), "{out}");
    assert!(out.stdout.contains("control"), "{out}");
    assert!(out.stderr.contains("this symlink would lead to"), "{out}");
}
