//! attack15: attacks on round 15's own changes. Tool configurations the
//! launch reads (`supervisor/src/commands/tool_configs.rs`): what an
//! `hgrc` names can make the launch read, protect or print.

use std::fs;
use std::path::Path;

use sluice_tests::Fixture;

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

/// A named path that is the repository's root (an extension `.`, a
/// hook's word `./`, `..` back into it) or above it: the launch protected
/// the workspace itself, and the program could write nothing.
#[test]
fn a_configuration_naming_the_workspace_does_not_protect_it() {
    for hgrc in [
        "[extensions]\nroot = .\n",
        "[hooks]\npre-status = sh ./\n",
        "[extensions]\nup = x/../..\n",
        "[extensions]\nup = sub/..\n",
    ] {
        let fx = hg_workspace(hgrc);
        let out = run(&fx, Some(&[]), WORK);
        assert_eq!(out.stdout, "ok notes\nok readme\nok src\n", "{hgrc:?}\n{out}");
    }
}

/// Control: the same work in the same workspace under an `hgrc` naming
/// nothing there.
#[test]
fn control_the_work_is_done_under_an_hgrc_naming_nothing() {
    let fx = hg_workspace("[ui]\nusername = p\n");
    let out = run(&fx, Some(&[]), WORK);
    assert_eq!(out.stdout, "ok notes\nok readme\nok src\n", "{out}");
}

/// An `hgrc` that includes itself many times over (each include names the
/// file again): the launch followed every include to the depth limit,
/// fan-out to the tenth power, and never started the program.
#[test]
fn an_include_bomb_does_not_hold_the_launch() {
    let fx = hg_workspace(&"%include hgrc\n".repeat(16));
    let out = run(&fx, Some(&[]), WORK);
    assert_eq!(out.stdout, "ok notes\nok readme\nok src\n", "{out}");
}

#[allow(dead_code)]
fn unused(_: &Path) {}
