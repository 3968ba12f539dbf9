//! attack15: attacks on round 15's own changes. Tool configurations the
//! launch reads (`supervisor/src/commands/tool_configs.rs`): what an
//! `hgrc` names can make the launch read, protect or print.

use std::fs;
use std::path::Path;

use sluice_tests::Fixture;

use super::escape_later::marker;
use super::redteam12fs::run;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// The workspace a repository of the person's (`.hg` at its root, no
/// Mercurial needed: the launch reads the file whatever runs it), its
/// `hgrc` holding `hgrc`.
fn hg_workspace(hgrc: &str) -> Fixture {
    let fx = Fixture::new(PROBE);
    fs::create_dir_all(fx.ws(".hg")).unwrap();
    fs::write(fx.ws(".hg/hgrc"), hgrc).unwrap();
    fx
}

/// The program's ordinary work: a file written, one edited, one made in a
/// new directory.
const WORK: &str = r#"echo new > notes.txt && echo ok notes
echo more >> README.md && echo ok readme
mkdir -p src && echo x > src/lib.rs && echo ok src"#;

/// What the launch says when a named path holds the workspace.
const HOLDS: &str = "which holds a tree the program may write: protected whole";

/// A named path that is the repository's root (an extension `.`: hg
/// imports its `__init__.py`; a hook's word `./`; `..` back into it):
/// the launch protects the workspace itself, so the program can write
/// nothing there. It stays protected (not protecting it would let the
/// program write what the person's hg then imports), but the person was
/// told only, at each refusal, that one file was refused; the launch now
/// says which named path holds the workspace. Mutation-checked: without
/// the launch's line the test fails, and without the protection the
/// program's writes pass.
#[test]
fn a_configuration_naming_the_workspace_protects_it_and_says_so() {
    for hgrc in [
        "[extensions]\nroot = .\n",
        "[hooks]\npre-status = sh ./\n",
        "[extensions]\nup = sub/..\n",
    ] {
        let fx = hg_workspace(hgrc);
        let out = run(&fx, Some(&[]), WORK);
        assert_eq!(out.stdout, "", "{hgrc:?}\n{out}");
        assert!(out.stderr.contains(HOLDS), "{hgrc:?}\n{out}");
    }
}

/// Control: the same work in the same workspace under an `hgrc` naming
/// a file in it is done, and nothing is said.
#[test]
fn control_the_work_is_done_under_an_hgrc_naming_a_file() {
    let fx = hg_workspace("[extensions]\nmine = tools/ext.py\n");
    let out = run(&fx, Some(&[]), WORK);
    assert_eq!(out.stdout, "ok notes\nok readme\nok src\n", "{out}");
    assert!(!out.stderr.contains(HOLDS), "{out}");
}

/// A path named by a configuration, holding terminal control bytes (a
/// title set, the screen cleared), printed by `--verbose` as written: the
/// launch's line shows it escaped. Control: the line is printed.
/// Mutation-checked: with `path.display()` the escape reaches stderr.
#[test]
fn a_named_path_is_shown_escaped() {
    let fx = hg_workspace("[extensions]\nmine = tools/\x1b]0;owned\x07\x1b[2J.py\n");
    let out = run(&fx, Some(&["--verbose"]), "echo ok");
    assert_eq!(out.stdout, "ok\n", "{out}");
    assert!(
        out.stderr.contains("(named by a tool's configuration)"),
        "{out}"
    );
    assert!(
        !out.stderr.contains('\x1b') && !out.stderr.contains('\x07'),
        "{out}"
    );
}

/// An `hgrc` that includes itself many times over (each include names the
/// file again): the launch followed every include to the depth limit,
/// fan-out to the tenth power (16^10 reads), and never started the
/// program. Mutation-checked (each include followed however often it is
/// named): the launch did not end. The unit test
/// `tool_configs::tests::an_include_bomb_is_read_once_and_within_the_limit`
/// bounds the reads and names.
#[test]
fn an_include_bomb_does_not_hold_the_launch() {
    let fx = hg_workspace(&"%include hgrc\n".repeat(16));
    let out = run(&fx, Some(&[]), WORK);
    assert_eq!(out.stdout, "ok notes\nok readme\nok src\n", "{out}");
}

/// The person's extension at a path holding glob characters
/// (`tools/ext[1].py`): the launch could not make a protect pattern of
/// it, left it unprotected (a warning in the log only), and the program
/// rewrote it; the person's next `hg` ran the program's code. The path is
/// now escaped as a pattern: the rewrite is refused and `hg` outside runs
/// the person's extension (where installed). Control:
/// `control_an_extension_named_with_glob_characters_is_rewritten_outside`.
/// Mutation-checked: with the launch refusing such a path again the
/// rewrite passed.
#[test]
fn an_extension_named_with_glob_characters_is_protected() {
    for way in [&[][..], &["--transparent"][..]] {
        let fx = bracket_extension();
        let out = run(&fx, Some(way), REWRITE_EXTENSION);
        assert_eq!(out.stdout, "control\n", "{way:?}\n{out}");
        assert_eq!(hg_ran_extension(&fx), Some(false), "{way:?}\n{out}");
    }
}

/// Control for the test above: outside sluice the rewrite is made and the
/// person's `hg` runs it.
#[test]
fn control_an_extension_named_with_glob_characters_is_rewritten_outside() {
    let fx = bracket_extension();
    let out = run(&fx, None, REWRITE_EXTENSION);
    assert_eq!(out.stdout, "ok ext\ncontrol\n", "{out}");
    assert_eq!(hg_ran_extension(&fx), Some(true), "{out}");
}

/// A repository whose `hgrc` loads `tools/ext[1].py` (the person's: it
/// does nothing).
fn bracket_extension() -> Fixture {
    let fx = hg_workspace("[extensions]\nmine = tools/ext[1].py\n");
    fs::create_dir_all(fx.ws("tools")).unwrap();
    fs::write(fx.ws("tools/ext[1].py"), "").unwrap();
    fx
}

/// The program rewrites the extension to leave a mark when loaded, and
/// writes a file of its own beside it.
const REWRITE_EXTENSION: &str = r#"printf 'open("%s-ext", "w").close()\n' "$1" > 'tools/ext[1].py' && echo ok ext
echo x > tools/notes.txt && echo control"#;

/// Whether the person's `hg root` there ran the program's extension;
/// `None` without Mercurial.
fn hg_ran_extension(fx: &Fixture) -> Option<bool> {
    let hg = Path::new("/usr/bin/hg");
    if !hg.exists() {
        return None;
    }
    let out = sluice_tests::execute({
        let mut cmd = std::process::Command::new(hg);
        cmd.arg("root")
            .current_dir(&fx.ws_dir)
            .env("HOME", &fx.home_dir)
            .stdin(std::process::Stdio::null());
        cmd
    });
    assert!(out.status.success(), "{out}");
    Some(Path::new(&format!("{}-ext", marker(fx))).exists())
}

// ---------------------------------------------------------------------------
// Transparent watches (`supervisor/src/broker/transparent/watch.rs`).
// ---------------------------------------------------------------------------

/// A directory in the workspace that the program's user may not list (the
/// person's other account's, 65534's, mode 0700), as root: the program
/// runs with every capability dropped, so the kernel refuses its watch
/// there; under `--transparent` the supervisor makes the watch itself,
/// with its own capabilities (`CAP_DAC_READ_SEARCH`), judged by the
/// policy's trees only, and the program learnt every name made there. The
/// lookup and the watch are now made with the serving thread's effective
/// capabilities cleared: refused as the kernel refuses it. Mutation-checked:
/// without the clearing the program is told the file's name. Control: `control_the_kernel_refuses_a_watch_on_a_directory_the_program_may_not_list`.
#[test]
fn under_transparent_a_watch_needs_the_programs_own_permission() {
    let (fx, theirs) = not_listable();
    let said = super::redteam15::watched(&fx, &["--transparent"], "theirs", &theirs);
    assert_eq!(said, ["refused: Permission denied"]);
}

/// Control for the test above: without `--transparent` the kernel refuses
/// the same watch (the program's credentials); a directory of the
/// program's own is watched under `--transparent` and names the file.
#[test]
fn control_the_kernel_refuses_a_watch_on_a_directory_the_program_may_not_list() {
    let (fx, theirs) = not_listable();
    let said = super::redteam15::watched(&fx, &[], "theirs", &theirs);
    assert_eq!(said, ["refused: Permission denied"]);
    let own = fx.ws_dir.join("own");
    fs::create_dir_all(&own).unwrap();
    let said = super::redteam15::watched(&fx, &["--transparent"], "own", &own);
    assert!(
        said.iter().any(|l| l.contains("salary-2027.ods")),
        "{said:?}"
    );
}

/// As root: a fixture whose workspace holds `theirs`, 65534's, mode 0700.
fn not_listable() -> (Fixture, std::path::PathBuf) {
    // SAFETY: no arguments, no memory.
    assert_eq!(unsafe { libc::geteuid() }, 0, "run as root");
    let fx = Fixture::new(PROBE);
    let theirs = fx.ws_dir.join("theirs");
    fs::create_dir_all(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&theirs, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    (fx, theirs)
}

/// Files that would hold a reader: the repository's `hgrc` a FIFO, and an
/// `hgrc` including a FIFO, a terminal-like device and the supervisor's
/// own standard input (`/proc/self/fd/0`): the launch opens each without
/// waiting (`O_NONBLOCK`), reads none that is not a regular file, and the
/// program runs. (Checked, not a hole: the reader opened non-blocking
/// already.) Control: `control_the_work_is_done_under_an_hgrc_naming_a_file`.
#[test]
fn configurations_that_would_block_do_not_hold_the_launch() {
    let fifo_hgrc = hg_workspace("");
    fs::remove_file(fifo_hgrc.ws(".hg/hgrc")).unwrap();
    mkfifo(&fifo_hgrc.ws(".hg/hgrc"));
    let includes = hg_workspace(
        "%include ../pipe\n%include /dev/zero\n%include /dev/tty\n%include /proc/self/fd/0\n",
    );
    mkfifo(&includes.ws("pipe"));
    for fx in [fifo_hgrc, includes] {
        let out = run(&fx, Some(&[]), WORK);
        assert_eq!(out.stdout, "ok notes\nok readme\nok src\n", "{out}");
    }
}

fn mkfifo(path: &str) {
    let c = std::ffi::CString::new(path).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// The same class as the watch above, for what `--transparent` opens and
/// lists on the program's behalf: a file and a directory of 65534's, mode
/// 0600 and 0700, in the workspace, read by a session run by root (the
/// program without capabilities). Control (without `--transparent`) the
/// kernel refuses each.
#[test]
fn under_transparent_what_the_programs_user_may_not_read_stays_unread() {
    let (fx, theirs) = not_listable();
    let file = fx.ws_dir.join("their-file");
    fs::write(&file, "SECRET-theirs").unwrap();
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    fs::write(theirs.join("inside"), "x").unwrap();
    let script = "cat their-file; ls theirs; echo done";
    for way in [&[][..], &["--transparent"][..]] {
        let out = run(&fx, Some(way), script);
        assert_eq!(out.stdout, "done\n", "{way:?}\n{out}");
    }
}
