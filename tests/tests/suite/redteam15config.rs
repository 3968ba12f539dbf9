//! Red team 15: tool configurations in the workspace that make the person's
//! own tools run a command later, on an action that runs no project code
//! otherwise. Mercurial's `.hg/hgrc` (`[hooks]` on `hg status`,
//! `[extensions]` on any `hg` command) and what a share reads instead
//! (`sharedpath`), yarn's `yarnPath` (`.yarnrc.yml`) and `yarn-path`
//! (`.yarnrc`) and the release they name, run by `yarn --version`, and
//! cargo's `.cargo/config.toml`, whose `build.rustc-wrapper` runs on `cargo
//! metadata`, and lefthook's configuration, read by the hook it installed
//! on each commit; each shown with the real tool outside (where installed:
//! `.ci/run` installs hg, yarn and lefthook), and its control: the same
//! script outside sluice makes the tool run the program's command. The
//! siblings `default` protects from the tools' documentation (Sapling,
//! Jujutsu, Bazelisk, a VS Code workspace file, Cline's hooks) are shown
//! refused at any depth with lefthook's other names, their neighbours
//! written.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sluice_tests::{execute, Fixture, Outcome};

use super::escape_later::{as_nobody, marker};
use super::redteam12fs::run;
use super::redteam14::{refused_at_any_depth_written_beside, run_as_nobody};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// The ways a program is run here: `default`, and `--transparent`.
const WAYS: [&[&str]; 2] = [&[], &["--transparent"]];

/// The markers the person's tools left (`ran-NAME` beside the fixture's
/// marker), sorted: one for each planted command that ran.
fn ran(fx: &Fixture) -> Vec<String> {
    let mark = PathBuf::from(marker(fx));
    let prefix = mark.file_name().unwrap().to_str().unwrap().to_owned();
    let mut names: Vec<String> = fs::read_dir(mark.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------
// Mercurial: the repository's configuration, as git's.
// ---------------------------------------------------------------------------

/// Where Debian's Mercurial is (`.ci/run` installs it).
const HG: &str = "/usr/bin/hg";

fn have_hg() -> bool {
    Path::new(HG).exists()
}

/// `hg ARGS` in the workspace's `dir` as the person runs it: their home,
/// no input.
fn hg_outside(fx: &Fixture, dir: &str, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(HG);
    cmd.args(args)
        .current_dir(fx.ws(dir))
        .env("HOME", &fx.home_dir)
        .env("HGUSER", "p")
        .stdin(Stdio::null());
    execute(cmd)
}

/// The person's repositories, each the place of one way of planting a
/// configuration: `w` (written), `r` (renamed into place), `l` (a hard
/// link), `s` (a symlink), `e` (one with the person's own `hgrc`, appended
/// to). `e`'s `hgrc` names its default path, as `hg clone` writes it.
const PERSONS_REPOSITORIES: [&str; 5] = ["w", "r", "l", "s", "e"];

fn hg_fixture() -> Fixture {
    let fx = Fixture::new(PROBE);
    for dir in PERSONS_REPOSITORIES {
        fs::create_dir_all(fx.ws(dir)).unwrap();
        let out = hg_outside(&fx, dir, &["init", "-q"]);
        assert!(out.status.success(), "{out}");
    }
    fs::write(fx.ws("e/.hg/hgrc"), "[paths]\ndefault = /nowhere\n").unwrap();
    fx
}

/// The program plants, in every way, a `[hooks] pre-status` that leaves
/// `MARKER-NAME`: in the person's repositories (`hgrc`, `hgrc-not-shared`,
/// appended to the person's own), in a repository it made itself (`hg
/// init`: allowed), by renaming a directory holding one onto a `.hg`, and
/// by pointing a share (`sharedpath`, with the `shared` and `share-safe`
/// requirements) at a directory of its own holding one. Each line says
/// `ok NAME` where its last step worked; `made` and `control` are allowed.
const PLANT_HGRC: &str = r#"hook() { printf '[hooks]\npre-status = touch %s-%s\n' "$MARK" "$1"; }
MARK=$1
hook w > w/.hg/hgrc && echo ok w
hook r > t && mv t r/.hg/hgrc && echo ok r
hook l > hook-l && ln hook-l l/.hg/hgrc-not-shared && echo ok l
hook s > hook-s && ln -s ../../hook-s s/.hg/hgrc && echo ok s
hook e >> e/.hg/hgrc && echo ok e
hg init -q n && hg init -q tmpl && hg init -q sh && echo made
hook n > n/.hg/hgrc && echo ok n
mkdir m && cp -r tmpl/.hg d && hook m > d/hgrc && mv d m/.hg && echo ok m
cp -r tmpl/.hg shsrc && hook sh > shsrc/hgrc && printf 'share-safe\nshared\n' > sh/.hg/requires && printf '%s/shsrc' "$PWD" > sh/.hg/sharedpath && echo ok sh
hook x > hgrc.txt && echo control"#;

/// Every place [`PLANT_HGRC`] plants in.
const HG_PLACES: [&str; 8] = ["w", "r", "l", "s", "e", "n", "m", "sh"];

/// The person's `hg status` in each place (`as_nobody`: as the user 65534,
/// whose files Mercurial trusts only for that user).
fn persons_hg_status(fx: &Fixture, as_nobody_too: bool) {
    for dir in HG_PLACES {
        if fs::metadata(fx.ws(dir)).is_err() {
            continue;
        }
        if as_nobody_too {
            as_nobody(fx, &[HG, "status"], dir);
        } else {
            hg_outside(fx, dir, &["status"]);
        }
    }
}

/// Mercurial reads a repository's `.hg/hgrc` (and `hgrc-not-shared`, and
/// under `share-safe` the `hgrc` of the directory `sharedpath` names) for
/// every command in it or beneath: `[hooks]` run (`pre-status` on a
/// prompt's `hg status`), `[extensions]` load a Python file (`hg
/// --version` included). The same class as git's `.git/config`, and none
/// of it was in `default`'s list: the program's command ran on the person's
/// next `hg status`. `default` protects `**/.hg/hgrc`,
/// `**/.hg/hgrc-not-shared` and `**/.hg/sharedpath`: every way is refused
/// (written, renamed, linked, symlinked, appended to an existing one, in a
/// repository the program made, a directory renamed onto `.hg`, a share),
/// under `default` and `--transparent`, and `hg init` works inside. Control:
/// `control_hg_runs_what_the_program_planted`. Mutation-checked: without
/// the three entries each way is planted and the person's `hg status` runs
/// all eight.
#[test]
fn the_persons_hg_runs_nothing_the_program_planted() {
    for way in WAYS {
        let fx = hg_fixture();
        let out = run(&fx, Some(way), PLANT_HGRC);
        if have_hg() {
            assert_eq!(out.stdout, "made\ncontrol\n", "{way:?}\n{out}");
        }
        assert!(
            out.stderr.contains("refused writing") && out.stderr.contains(".hg/hgrc"),
            "{way:?}\n{out}"
        );
        persons_hg_status(&fx, false);
        assert_eq!(ran(&fx), Vec::<String>::new(), "{way:?}\n{out}");
        // The person's own configuration is as it was.
        let kept = fs::read_to_string(fx.ws("e/.hg/hgrc")).unwrap();
        assert_eq!(kept, "[paths]\ndefault = /nowhere\n", "{way:?}");
    }
}

/// The same for an unprivileged user (the person is 65534 and runs `hg`
/// as such: Mercurial runs no hook from a file another user owns).
#[test]
fn the_persons_hg_runs_nothing_the_program_planted_as_an_unprivileged_user() {
    let fx = hg_fixture();
    let out = run_as_nobody(&fx, PLANT_HGRC);
    if have_hg() {
        assert_eq!(out.stdout, "made\ncontrol\n", "{out}");
    }
    persons_hg_status(&fx, true);
    assert_eq!(ran(&fx), Vec::<String>::new(), "{out}");
}

/// Control for the tests above: outside sluice every way plants, and the
/// person's `hg status` in each place runs the program's command.
#[test]
fn control_hg_runs_what_the_program_planted() {
    let fx = hg_fixture();
    let out = run(&fx, None, PLANT_HGRC);
    if !have_hg() {
        eprintln!("Mercurial is not installed here: the harm is not shown");
        return;
    }
    for place in HG_PLACES {
        assert!(
            out.stdout.contains(&format!("ok {place}\n")),
            "{place}\n{out}"
        );
    }
    persons_hg_status(&fx, false);
    let mark = PathBuf::from(marker(&fx));
    let base = mark.file_name().unwrap().to_str().unwrap();
    let mut want: Vec<String> = HG_PLACES.iter().map(|p| format!("{base}-{p}")).collect();
    want.sort();
    assert_eq!(ran(&fx), want, "{out}");
}

/// What it costs: Mercurial works inside on the person's repository (its
/// `hgrc` kept in place) and on the program's own; `hg clone`, which writes
/// `.hg/hgrc`, is refused, and the refusal names the rule and says to make
/// the change outside sluice.
#[test]
fn hg_works_inside_but_for_clone() {
    if !have_hg() {
        eprintln!("Mercurial is not installed here");
        return;
    }
    let script = r#"cd e && echo a > a && hg add -q a && hg commit -q -u p -m one && echo committed && cd ..
hg init -q mine && cd mine && echo b > b && hg commit -q -A -u p -m two && hg status && echo mine && cd ..
hg clone -q mine copy 2>/dev/null || echo clone refused
rm e/.hg/hgrc 2>/dev/null || echo kept"#;
    for way in WAYS {
        let fx = hg_fixture();
        let out = run(&fx, Some(way), script);
        assert_eq!(
            out.stdout, "committed\nmine\nclone refused\nkept\n",
            "{way:?}\n{out}"
        );
        assert!(
            out.stderr.contains("copy/.hg/hgrc")
                && out.stderr.contains("protect \"**/.hg/hgrc\"")
                && out.stderr.contains("outside sluice"),
            "{way:?}\n{out}"
        );
        let log = hg_outside(&fx, "e", &["log", "-q"]);
        assert!(log.stdout.starts_with("0:"), "{way:?}\n{log}");
        assert!(fs::metadata(fx.ws("e/.hg/hgrc")).is_ok(), "{way:?}");
    }
}

// ---------------------------------------------------------------------------
// Yarn: the JavaScript file run instead of yarn itself.
// ---------------------------------------------------------------------------

/// The person's `yarn --version` in the workspace's `dir` (`None` where
/// yarn is not installed here; `.ci/run` installs it with npm).
fn yarn_version_outside(fx: &Fixture, dir: &str) -> Option<Outcome> {
    let installed = Command::new("yarn")
        .arg("--version")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        return None;
    }
    let mut cmd = Command::new("yarn");
    cmd.arg("--version")
        .current_dir(fx.ws(dir))
        .env("HOME", &fx.home_dir)
        .env_remove("YARN_IGNORE_PATH")
        .env_remove("YARN_YARN_PATH")
        .stdin(Stdio::null());
    Some(execute(cmd))
}

/// The person's project `app` pins its yarn as Berry projects do: a
/// release in `.yarn/releases`, named by `.yarnrc.yml`. Theirs prints
/// `person's yarn`.
fn yarn_fixture() -> Fixture {
    let fx = Fixture::new(PROBE);
    fs::create_dir_all(fx.ws("app/.yarn/releases")).unwrap();
    fs::write(
        fx.ws("app/.yarnrc.yml"),
        "yarnPath: .yarn/releases/yarn-4.cjs\n",
    )
    .unwrap();
    fs::write(
        fx.ws("app/.yarn/releases/yarn-4.cjs"),
        "console.log(\"person's yarn\");\n",
    )
    .unwrap();
    fx
}

/// The program writes a script that leaves `MARKER-DIR` (allowed: its own
/// file) and makes yarn run it: `yarn-path` in a `.yarnrc` (`v1`),
/// `yarnPath` in a `.yarnrc.yml` renamed into place (`pkg`) or symlinked
/// (`lib`), the person's release overwritten (`app`), a plugin linked in.
const PLANT_YARN: &str = r#"printf 'require("fs").writeFileSync("%s-" + require("path").basename(process.cwd()), "")\n' "$1" > evil.cjs && echo control
mkdir -p v1 pkg lib
printf 'yarn-path "%s/evil.cjs"\n' "$PWD" > v1/.yarnrc && echo ok v1
printf 'yarnPath: %s/evil.cjs\n' "$PWD" > t && mv t pkg/.yarnrc.yml && echo ok pkg
printf 'yarnPath: %s/evil.cjs\n' "$PWD" > yml && ln -s ../yml lib/.yarnrc.yml && echo ok lib
cat evil.cjs > app/.yarn/releases/yarn-4.cjs && echo ok app
mkdir -p app/.yarn/plugins 2>/dev/null; ln evil.cjs app/.yarn/plugins/plugin.cjs && echo ok plugin"#;

/// The places whose yarn the person runs.
const YARN_PLACES: [&str; 4] = ["v1", "pkg", "lib", "app"];

/// yarn (1.22 and Berry) runs the JavaScript file `yarnPath` in a
/// `.yarnrc.yml` (or yarn 1's `yarn-path` in a `.yarnrc`) names instead of
/// itself, in that directory and beneath, for every command: the person's
/// `yarn --version` ran the program's script. `default` protects both
/// names and the project places such a file lives (`.yarn/releases`,
/// `.yarn/plugins`), so every way is refused, under `default` and
/// `--transparent`, and the person's own release still runs. Control:
/// `control_yarn_runs_what_the_program_planted`. Mutation-checked: without
/// the four entries every way is planted and the four places run it.
#[test]
fn the_persons_yarn_runs_nothing_the_program_planted() {
    for way in WAYS {
        let fx = yarn_fixture();
        let out = run(&fx, Some(way), PLANT_YARN);
        assert_eq!(out.stdout, "control\n", "{way:?}\n{out}");
        assert!(out.stderr.contains(".yarnrc"), "{way:?}\n{out}");
        for dir in YARN_PLACES {
            let Some(yarn) = yarn_version_outside(&fx, dir) else {
                continue;
            };
            if dir == "app" {
                assert!(yarn.stdout.contains("person's yarn"), "{way:?}\n{yarn}");
            }
        }
        assert_eq!(ran(&fx), Vec::<String>::new(), "{way:?}\n{out}");
    }
}

/// Control for the test above: outside sluice every way plants, and the
/// person's `yarn --version` in each place runs the program's script.
#[test]
fn control_yarn_runs_what_the_program_planted() {
    let fx = yarn_fixture();
    let out = run(&fx, None, PLANT_YARN);
    for place in YARN_PLACES.iter().chain(&["plugin"]) {
        assert!(
            out.stdout.contains(&format!("ok {place}\n")),
            "{place}\n{out}"
        );
    }
    let mut want = Vec::new();
    let mark = PathBuf::from(marker(&fx));
    let base = mark.file_name().unwrap().to_str().unwrap();
    for dir in YARN_PLACES {
        if yarn_version_outside(&fx, dir).is_none() {
            eprintln!("yarn is not installed here: the harm is not shown");
            return;
        }
        want.push(format!("{base}-{dir}"));
    }
    want.sort();
    assert_eq!(ran(&fx), want, "{out}");
}

// ---------------------------------------------------------------------------
// cargo: the wrapper a workspace configuration names.
// ---------------------------------------------------------------------------

/// The person's crate at the workspace's root and another in `crates/a`.
fn cargo_fixture() -> Fixture {
    let fx = Fixture::new(PROBE);
    for (dir, name) in [("", "p"), ("crates/a", "a")] {
        fs::create_dir_all(fx.ws(&format!("{dir}/src"))).unwrap();
        let manifest =
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n");
        fs::write(Path::new(&fx.ws(dir)).join("Cargo.toml"), manifest).unwrap();
        fs::write(Path::new(&fx.ws(dir)).join("src/lib.rs"), "").unwrap();
    }
    fx
}

/// The program writes wrappers that leave `MARKER-ws` and `MARKER-a`
/// (allowed: its own files) and names them as `build.rustc-wrapper` in a
/// `.cargo/config.toml` (written) and a legacy `.cargo/config` (renamed
/// into place).
const PLANT_CARGO: &str = r#"for w in ws a; do printf '#!/bin/sh\ntouch %s-%s\nexec "$@"\n' "$1" $w > wrap-$w; chmod +x wrap-$w; done && echo control
mkdir -p .cargo crates/a/.cargo
printf '[build]\nrustc-wrapper = "%s/wrap-ws"\n' "$PWD" > .cargo/config.toml && echo ok ws
printf '[build]\nrustc-wrapper = "%s/wrap-a"\n' "$PWD" > t && mv t crates/a/.cargo/config && echo ok a"#;

/// The person's `cargo metadata` in `dir`: what rust-analyzer runs on
/// opening the folder, before any build script.
fn cargo_metadata_outside(fx: &Fixture, dir: &str) -> Option<Outcome> {
    let args = ["metadata", "--format-version", "1", "--offline"];
    super::redteam12fs::rustup_proxy_outside(fx, dir, "cargo", &args)
}

/// cargo runs the `build.rustc-wrapper` a `.cargo/config.toml` (or legacy
/// `.cargo/config`) in the directory or above names, to learn the
/// compiler's version, on `cargo metadata`, `cargo tree` and `cargo clean`,
/// which run no project code otherwise (rust-analyzer's first step on
/// opening the folder): the program's wrapper ran there. `default`
/// protects both names at any depth. Control:
/// `control_cargo_runs_the_wrapper_the_program_named`. Mutation-checked:
/// without the two entries the marker appears.
#[test]
fn the_persons_cargo_runs_no_wrapper_the_program_named() {
    for way in WAYS {
        let fx = cargo_fixture();
        let out = run(&fx, Some(way), PLANT_CARGO);
        assert_eq!(out.stdout, "control\n", "{way:?}\n{out}");
        assert!(out.stderr.contains(".cargo/config"), "{way:?}\n{out}");
        for dir in ["", "crates/a"] {
            if let Some(metadata) = cargo_metadata_outside(&fx, dir) {
                assert!(metadata.status.success(), "{way:?}\n{metadata}");
            }
        }
        assert_eq!(ran(&fx), Vec::<String>::new(), "{way:?}\n{out}");
    }
}

/// Control for the test above: outside sluice the person's `cargo
/// metadata` runs the program's wrapper in both places.
#[test]
fn control_cargo_runs_the_wrapper_the_program_named() {
    let fx = cargo_fixture();
    let out = run(&fx, None, PLANT_CARGO);
    assert_eq!(out.stdout, "control\nok ws\nok a\n", "{out}");
    for dir in ["", "crates/a"] {
        if cargo_metadata_outside(&fx, dir).is_none() {
            eprintln!("rustup is not installed here: the harm is not shown");
            return;
        }
    }
    let mark = PathBuf::from(marker(&fx));
    let base = mark.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        ran(&fx),
        [format!("{base}-a"), format!("{base}-ws")],
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// The siblings, from the tools' documentation: refused at any depth.
// ---------------------------------------------------------------------------

/// What `default` protects from the tools' documentation (none of these
/// tools installed here), with the names of the tools above: Sapling's `.sl/config` and Jujutsu's `.jj/repo/config.toml` (a
/// pager or diff tool run on `jj log`), Bazelisk's `.bazeliskrc` and
/// `.bazelversion` (the Bazel downloaded and run for every `bazel`
/// command) and the `tools/bazel` wrapper it runs instead, lefthook's
/// other configuration names and script directories, a VS Code workspace file (settings and
/// tasks, as `.vscode`), Cline's `.clinerules/hooks`. Each refused at the
/// root and in a package, written, renamed or linked into place; their
/// neighbours are written. Control: outside sluice the same script writes
/// every name. Mutation-checked: without the entries each is written.
#[test]
fn tool_configurations_that_run_commands_are_refused_at_any_depth() {
    let refused = [
        ".sl/config",
        "pkg/.jj/repo/config.toml",
        ".bazeliskrc",
        "pkg/.bazelversion",
        "tools/bazel",
        "pkg/tools/bazel.linux-x86_64",
        "lefthook.yml",
        "pkg/.lefthook.yaml",
        "lefthook-local.toml",
        ".lefthook/pre-commit/check.sh",
        "pkg/.config/lefthook.yml",
        "project.code-workspace",
        "pkg/.clinerules/hooks/TaskStart",
        "pkg/.hg/hgrc",
        "pkg/.yarnrc.yml",
        ".cargo/config.toml",
    ];
    let written = [
        ".sl/store/x",
        ".jj/repo/store/x",
        ".hg/store/x",
        "tools/bazelisk.md",
        "docs/lefthook.md",
        "x.code-workspace.bak",
        ".clinerules/rules.md",
        ".yarn/cache/x.zip",
        ".cargo/notes.txt",
        ".npmrc",
    ];
    refused_at_any_depth_written_beside(&refused, &written);
}

// ---------------------------------------------------------------------------
// lefthook: the configuration the hook it installed reads on each commit.
// ---------------------------------------------------------------------------

/// Whether lefthook is installed (`.ci/run` installs it with npm).
fn have_lefthook() -> bool {
    Command::new("lefthook")
        .arg("version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The person's repositories, each with lefthook installed as its
/// documentation says (`lefthook install`: a `lefthook.yml` of comments, and
/// the `prepare-commit-msg` hook that runs `lefthook run`).
const LEFTHOOK_PLACES: [&str; 4] = ["a", "b", "c", "e"];

fn lefthook_fixture() -> Fixture {
    let fx = Fixture::new(PROBE);
    for dir in LEFTHOOK_PLACES {
        super::escape_later::repository(&fx, dir);
        if have_lefthook() {
            let mut cmd = Command::new("lefthook");
            cmd.arg("install")
                .current_dir(fx.ws(dir))
                .env("HOME", &fx.home_dir)
                .stdin(Stdio::null());
            let out = execute(cmd);
            assert!(out.status.success(), "{out}");
        }
    }
    fx
}

/// The program gives lefthook a `prepare-commit-msg` command that leaves
/// `MARKER-DIR`: a `lefthook-local.yml` written (`a`, the file lefthook
/// merges over the project's, kept out of the repository), one renamed
/// into place (`b`), one symlinked (`c`), and the person's `lefthook.yml`
/// appended to (`e`).
const PLANT_LEFTHOOK: &str = r#"cfg() { printf 'prepare-commit-msg:\n  commands:\n    x:\n      run: touch %s-%s\n' "$MARK" "$1"; }
MARK=$1
cfg a > a/lefthook-local.yml && echo ok a
cfg b > t && mv t b/.lefthook-local.yml && echo ok b
cfg c > cfg-c && ln -s ../cfg-c c/lefthook-local.yml && echo ok c
cfg e >> e/lefthook.yml && echo ok e
cfg x > lefthook.txt && echo control"#;

/// The person's next commit in each place.
fn persons_commits(fx: &Fixture) {
    for dir in LEFTHOOK_PLACES {
        let args = ["commit", "-q", "--allow-empty", "-m", "two"];
        super::escape_later::git_outside(fx, dir, &args);
    }
}

/// The hook `lefthook install` writes runs what lefthook's configuration
/// in the work tree says on each commit (the same as `.husky` and
/// `.pre-commit-config.yaml`, which `default` protected already): the
/// program's command ran on the person's next commit. `default` protects
/// lefthook's configuration names and script directories: every way is
/// refused, under `default` and `--transparent`. Control:
/// `control_lefthook_runs_what_the_program_configured`. Mutation-checked:
/// without the entries every way is planted and each commit runs it.
#[test]
fn the_persons_commit_runs_no_lefthook_command_the_program_configured() {
    for way in WAYS {
        let fx = lefthook_fixture();
        let out = run(&fx, Some(way), PLANT_LEFTHOOK);
        assert_eq!(out.stdout, "control\n", "{way:?}\n{out}");
        assert!(out.stderr.contains("lefthook-local.yml"), "{way:?}\n{out}");
        persons_commits(&fx);
        assert_eq!(ran(&fx), Vec::<String>::new(), "{way:?}\n{out}");
    }
}

/// Control for the test above: outside sluice every way plants, and the
/// person's commit in each place runs the program's command.
#[test]
fn control_lefthook_runs_what_the_program_configured() {
    let fx = lefthook_fixture();
    let out = run(&fx, None, PLANT_LEFTHOOK);
    for place in LEFTHOOK_PLACES {
        assert!(
            out.stdout.contains(&format!("ok {place}\n")),
            "{place}\n{out}"
        );
    }
    if !have_lefthook() {
        eprintln!("lefthook is not installed here: the harm is not shown");
        return;
    }
    persons_commits(&fx);
    let mark = PathBuf::from(marker(&fx));
    let base = mark.file_name().unwrap().to_str().unwrap();
    let want: Vec<String> = LEFTHOOK_PLACES
        .iter()
        .map(|p| format!("{base}-{p}"))
        .collect();
    assert_eq!(ran(&fx), want, "{out}");
}

// ---------------------------------------------------------------------------
// What the person's configuration names in the work tree.
// ---------------------------------------------------------------------------

/// The person's configurations naming files of the work tree: a repository
/// `inc` whose `hgrc` includes `../team.hgrc` (there) and `../local.hgrc`
/// (not there: hg skips a missing include), one `ext` whose `hgrc` loads
/// the extension `tools/hgext.py`, a project `y` whose `.yarnrc.yml`
/// names its yarn `scripts/yarn.cjs`, a crate `c` whose
/// `.cargo/config.toml` names the compiler's wrapper `tools/wrap.sh`.
fn named_fixture() -> Fixture {
    let fx = Fixture::new(PROBE);
    for dir in ["inc", "ext"] {
        fs::create_dir_all(fx.ws(dir)).unwrap();
        if have_hg() {
            assert!(hg_outside(&fx, dir, &["init", "-q"]).status.success());
        } else {
            fs::create_dir_all(fx.ws(&format!("{dir}/.hg"))).unwrap();
        }
    }
    let files = [
        (
            "inc/.hg/hgrc",
            "%include ../team.hgrc\n%include ../local.hgrc\n",
        ),
        ("inc/team.hgrc", "[ui]\n"),
        ("ext/.hg/hgrc", "[extensions]\ntools = tools/hgext.py\n"),
        ("ext/tools/hgext.py", ""),
        ("y/.yarnrc.yml", "yarnPath: scripts/yarn.cjs\n"),
        ("y/scripts/yarn.cjs", "console.log(\"person's yarn\");\n"),
        (
            "c/Cargo.toml",
            "[package]\nname = \"c\"\nversion = \"0.1.0\"\n",
        ),
        ("c/src/lib.rs", ""),
        (
            "c/.cargo/config.toml",
            "[build]\nrustc-wrapper = \"tools/wrap.sh\"\n",
        ),
    ];
    for (rel, text) in files {
        fs::create_dir_all(Path::new(&fx.ws(rel)).parent().unwrap()).unwrap();
        fs::write(fx.ws(rel), text).unwrap();
    }
    fs::create_dir_all(fx.ws("c/tools")).unwrap();
    let wrapper = Path::new(&fx.ws("c/tools/wrap.sh")).to_path_buf();
    sluice_tests::install_script(&wrapper, "#!/bin/sh\nexec \"$@\"\n");
    fx
}

/// The program edits what those configurations name: a hook appended to
/// the included `team.hgrc`, the missing `local.hgrc` renamed into place,
/// the extension, the yarn release and the compiler's wrapper rewritten.
const PLANT_NAMED: &str = r#"MARK=$1
printf '[hooks]\npre-status.team = touch %s-team\n' "$MARK" >> inc/team.hgrc && echo ok team
printf '[hooks]\npre-status.local = touch %s-local\n' "$MARK" > t && mv t inc/local.hgrc && echo ok local
printf 'open("%s-ext", "w").close()\n' "$MARK" > ext/tools/hgext.py && echo ok ext
printf 'require("fs").writeFileSync("%s-yarn", "")\n' "$MARK" > y/scripts/yarn.cjs && echo ok yarn
printf '#!/bin/sh\ntouch %s-cargo\nexec "$@"\n' "$MARK" > c/tools/wrap.sh && echo ok cargo
echo x > inc/notes.txt && echo control"#;

/// The person's `hg status` in `inc` and `ext`, `cargo metadata` in `c`
/// (whether it ran), `yarn --version` in `y`.
fn persons_tools_on_named(fx: &Fixture) -> (bool, Option<Outcome>) {
    if have_hg() {
        for dir in ["inc", "ext"] {
            hg_outside(fx, dir, &["status"]);
        }
    }
    let cargo = cargo_metadata_outside(fx, "c").is_some();
    (cargo, yarn_version_outside(fx, "y"))
}

/// A configuration there at launch is kept in place, but what it names in
/// the work tree runs as surely: an `hgrc`'s `%include` (a missing one
/// too), its extension's file, a `.yarnrc.yml`'s `yarnPath`, a
/// `.cargo/config.toml`'s `rustc-wrapper`. The launch
/// reads each configuration it pins and protects what it names
/// (`tool_configs`), so every edit is refused, under `default` and
/// `--transparent`, the person's tools run none and their own release
/// still. Control: `control_what_the_persons_configuration_names_runs`.
/// Mutation-checked: without `protect_named_by_tools` each is edited and
/// runs.
#[test]
fn what_the_persons_configuration_names_is_protected() {
    for way in WAYS {
        let fx = named_fixture();
        let out = run(&fx, Some(way), PLANT_NAMED);
        assert_eq!(out.stdout, "control\n", "{way:?}\n{out}");
        if let (_, Some(yarn)) = persons_tools_on_named(&fx) {
            assert!(yarn.stdout.contains("person's yarn"), "{way:?}\n{yarn}");
        }
        assert_eq!(ran(&fx), Vec::<String>::new(), "{way:?}\n{out}");
    }
}

/// Control for the test above: outside sluice each edit is made and the
/// person's `hg status`, `cargo metadata` and `yarn --version` run it.
#[test]
fn control_what_the_persons_configuration_names_runs() {
    let fx = named_fixture();
    let out = run(&fx, None, PLANT_NAMED);
    assert_eq!(
        out.stdout, "ok team\nok local\nok ext\nok yarn\nok cargo\ncontrol\n",
        "{out}"
    );
    let (cargo, yarn) = persons_tools_on_named(&fx);
    let mark = PathBuf::from(marker(&fx));
    let base = mark.file_name().unwrap().to_str().unwrap();
    let mut want = Vec::new();
    if cargo {
        want.push(format!("{base}-cargo"));
    }
    if have_hg() {
        want.extend(["ext", "local", "team"].map(|w| format!("{base}-{w}")));
    }
    if yarn.is_some() {
        want.push(format!("{base}-yarn"));
    }
    assert_eq!(ran(&fx), want, "{out}");
}
