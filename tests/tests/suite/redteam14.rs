//! Red team 14: files the person's shell runs later, and the terminal the
//! program leaves behind, against sluice as it was at 89c99eb. Each attack
//! with its control (the same action outside sluice, where the harm
//! happens); `#[ignore = "escape: ..."]` marks one that still works, its
//! reason says how.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use sluice_tests::pty::Terminal;
use sluice_tests::{execute, Fixture, Outcome};

use super::escape_later::{as_nobody, give_to_nobody, marker, repository};
use super::redteam12fs::run;
use super::terminal::under_job_control;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// The ways a program is run here: `default`, and `--transparent`.
const WAYS: [&[&str]; 2] = [&[], &["--transparent"]];

/// `sh -c SCRIPT sh MARKER` inside sluice (`default`) as the unprivileged
/// user 65534, whose sandbox is made in a user namespace of its own; the
/// fixture given to that user first.
pub(super) fn run_as_nobody(fx: &Fixture, script: &str) -> Outcome {
    give_to_nobody(fx);
    let sluice = sluice_tests::sluice_bin();
    let (ws, mark) = (fx.ws(""), marker(fx));
    let program = [
        sluice.to_str().unwrap(),
        "run",
        "--workspace",
        &ws,
        "--",
        "/bin/sh",
        "-c",
        script,
        "sh",
        &mark,
    ];
    as_nobody(fx, &program, "")
}

// ---------------------------------------------------------------------------
// direnv: what an approved `.envrc` loads.
// ---------------------------------------------------------------------------

/// Whether direnv is installed (`.ci/run` installs it).
fn have_direnv() -> bool {
    Path::new("/usr/bin/direnv").exists()
}

/// `direnv ARGS` in the workspace's `dir` as the person would run it: their
/// home, direnv's approvals kept under it.
fn direnv_outside(fx: &Fixture, dir: &str, args: &[&str]) -> Outcome {
    let mut cmd = Command::new("/usr/bin/direnv");
    cmd.args(args)
        .current_dir(fx.ws(dir))
        .env("HOME", &fx.home_dir)
        .env("XDG_CONFIG_HOME", fx.home(".config"))
        .env("XDG_DATA_HOME", fx.home(".local/share"))
        .env("XDG_CACHE_HOME", fx.home(".cache"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null());
    execute(cmd)
}

/// The person's `.envrc` in `dir`, approved with `direnv allow` (where
/// direnv is installed): it sources the local files direnv's convention
/// names, and loads a `.env` with `dotenv_if_exists`.
fn approved_envrc(fx: &Fixture, dir: &str) {
    fs::create_dir_all(fx.ws(dir)).unwrap();
    fs::write(
        Path::new(&fx.ws(dir)).join(".envrc"),
        "source_env_if_exists .envrc.local\nsource_env_if_exists .envrc.private\n\
         dotenv_if_exists\n",
    )
    .unwrap();
    if have_direnv() {
        let out = direnv_outside(fx, dir, &["allow", "."]);
        assert!(out.status.success(), "{out}");
    }
}

/// The program writes, renames and symlinks the local files an approved
/// `.envrc` sources: a command that leaves the marker.
const PLANT_ENVRC_LOCAL: &str = r#"printf 'touch %s\n' "$1" > .envrc.local && echo wrote local
printf 'touch %s\n' "$1" > pkg/.envrc.private && echo wrote private
printf 'touch %s\n' "$1" > x && mv x pkg/.envrc.local && echo renamed
ln -s x .envrc.private 2>/dev/null && echo linked
printf 'touch %s\n' "$1" > envrc.local.txt && echo control"#;

/// Whether the person's direnv, entering `dir`, ran the marker's command.
fn persons_direnv_ran(fx: &Fixture, dir: &str) -> bool {
    if !have_direnv() {
        return false;
    }
    let out = direnv_outside(fx, dir, &["exec", ".", "true"]);
    assert!(out.status.success(), "{out}");
    Path::new(&marker(fx)).exists()
}

/// direnv approves an `.envrc` by its content, and what it sources with
/// `source_env_if_exists` (`.envrc.local`, `.envrc.private`: direnv's own
/// documented convention for settings kept out of the repository) is run
/// unapproved: a command the program wrote there ran on the person's next
/// `cd` (or prompt: direnv reloads on a watched file's change). `default`
/// protects `**/.envrc.*`. Control:
/// `control_direnv_runs_what_an_approved_envrc_sources`. Mutation-checked:
/// without the `default` entry, each name is written and the marker appears.
#[test]
fn what_an_approved_envrc_sources_is_not_written() {
    for way in WAYS {
        let fx = Fixture::new(PROBE);
        approved_envrc(&fx, "");
        approved_envrc(&fx, "pkg");
        let out = run(&fx, Some(way), PLANT_ENVRC_LOCAL);
        assert_eq!(out.stdout, "control\n", "{way:?}\n{out}");
        assert!(out.stderr.contains(".envrc.local"), "{way:?}\n{out}");
        for dir in ["", "pkg"] {
            assert!(!persons_direnv_ran(&fx, dir), "{way:?} {dir}\n{out}");
        }
        for rel in [".envrc.local", "pkg/.envrc.private", "pkg/.envrc.local"] {
            assert!(fs::symlink_metadata(fx.ws(rel)).is_err(), "{rel}\n{out}");
        }
    }
}

/// The same for an unprivileged user, whose sandbox is made in a user
/// namespace of its own.
#[test]
fn what_an_approved_envrc_sources_is_not_written_by_an_unprivileged_user() {
    let fx = Fixture::new(PROBE);
    approved_envrc(&fx, "");
    approved_envrc(&fx, "pkg");
    let out = run_as_nobody(&fx, PLANT_ENVRC_LOCAL);
    assert_eq!(out.stdout, "control\n", "{out}");
    for dir in ["", "pkg"] {
        assert!(!persons_direnv_ran(&fx, dir), "{dir}\n{out}");
    }
}

/// Control for the tests above: outside sluice the same script plants the
/// files and the person's direnv runs them, without asking again.
#[test]
fn control_direnv_runs_what_an_approved_envrc_sources() {
    let fx = Fixture::new(PROBE);
    approved_envrc(&fx, "");
    approved_envrc(&fx, "pkg");
    let out = run(&fx, None, PLANT_ENVRC_LOCAL);
    for said in [
        "wrote local",
        "wrote private",
        "renamed",
        "linked",
        "control",
    ] {
        assert!(out.stdout.contains(said), "{said}\n{out}");
    }
    if !have_direnv() {
        eprintln!("direnv is not installed here: the harm is not shown");
        return;
    }
    assert!(persons_direnv_ran(&fx, "pkg"), "{out}");
}

/// The program writes a `.env` (none at launch, so no deny placeholder is
/// there) whose variables give git a configuration: `core.fsmonitor`, a
/// command git runs on `status`.
const PLANT_DOTENV: &str = r#"printf 'GIT_CONFIG_COUNT=1\nGIT_CONFIG_KEY_0=core.fsmonitor\nGIT_CONFIG_VALUE_0="touch %s"\n' "$1" > .env && echo wrote"#;

/// A repository with an approved `.envrc` and no `.env` yet (the
/// fixture's own, a secret, is taken away: one there at launch is denied).
fn dotenv_fixture() -> Fixture {
    let fx = Fixture::new(PROBE);
    fs::remove_file(fx.ws(".env")).unwrap();
    repository(&fx, "");
    approved_envrc(&fx, "");
    fx
}

/// Whether the person's `git status` under their direnv ran the marker's
/// command.
fn persons_git_under_direnv_ran(fx: &Fixture) -> bool {
    if !have_direnv() {
        return false;
    }
    direnv_outside(fx, "", &["exec", ".", "git", "status"]);
    Path::new(&marker(fx)).exists()
}

/// `dotenv` (or `dotenv_if_exists`), the commonest line of an `.envrc`,
/// loads `.env` into the person's environment unapproved (direnv approves
/// the `.envrc` only); oh-my-zsh's `dotenv` plugin sources it as zsh code
/// on `cd` (asking first, where any key but n/e is yes, or never for a
/// directory once answered "always"); bun, pipenv and docker compose read
/// it too. A `.env` that exists at launch is denied (a placeholder mounted
/// over it); one the program made was its own, so `GIT_CONFIG_*` variables
/// there ran a command on the person's next `git status` in that
/// directory (`.env` is in every `.gitignore`: no review shows it).
/// `default` protects `**/.env` and `**/.env.*` but the templates, as it
/// denies them. Control: `control_direnv_loads_a_dotenv_the_program_wrote`.
/// Mutation-checked: without the `protect` entries, `.env` is written and
/// (direnv installed) the marker appears.
#[test]
fn a_dotenv_the_program_writes_is_not_loaded_by_the_persons_direnv() {
    for way in WAYS {
        let fx = dotenv_fixture();
        let out = run(&fx, Some(way), PLANT_DOTENV);
        assert!(!out.stdout.contains("wrote"), "{way:?}\n{out}");
        assert!(
            out.stderr.contains("refused writing") && out.stderr.contains(".env"),
            "{way:?}\n{out}"
        );
        assert!(
            fs::symlink_metadata(fx.ws(".env")).is_err(),
            "{way:?}\n{out}"
        );
        assert!(!persons_git_under_direnv_ran(&fx), "{way:?}\n{out}");
    }
}

/// Every way of making an environment file where none was at launch:
/// written in a package, its variants (`.env.local`, `.env.production`),
/// renamed, symlinked or hard-linked into place, a directory by that name;
/// a template (`.env.example`, `.env.sample`) is the program's to write.
const PLANT_DOTENV_WAYS: &str = r#"mkdir -p pkg && printf 'A=1\n' > x
printf 'A=1\n' > pkg/.env && echo wrote
printf 'A=1\n' > pkg/.env.local && echo wrote local
cp x y && mv y .env.production 2>/dev/null && echo renamed
ln -s x pkg/.env.development 2>/dev/null && echo symlinked
ln x .env.test 2>/dev/null && echo linked
mkdir pkg/.env.d 2>/dev/null && echo made a directory
cp x .env.example && cp x pkg/.env.sample && echo control"#;

/// The names [`PLANT_DOTENV_WAYS`] must not have made.
const DOTENV_WAYS_REFUSED: [&str; 6] = [
    "pkg/.env",
    "pkg/.env.local",
    ".env.production",
    "pkg/.env.development",
    ".env.test",
    "pkg/.env.d",
];

/// Each way is refused, under `default` and `--transparent`, and as an
/// unprivileged user; the templates are written. Control: outside sluice
/// the same script makes every name (`control_every_way_of_making_a_dotenv`).
/// Mutation-checked: without the `protect` entries, each name is made.
#[test]
fn no_way_of_making_a_dotenv_works() {
    let check = |fx: &Fixture, out: &Outcome, how: &str| {
        assert_eq!(out.stdout, "control\n", "{how}\n{out}");
        for rel in DOTENV_WAYS_REFUSED {
            assert!(
                fs::symlink_metadata(fx.ws(rel)).is_err(),
                "{how} {rel}\n{out}"
            );
        }
        for rel in [".env.example", "pkg/.env.sample"] {
            assert_eq!(
                fs::read_to_string(fx.ws(rel)).unwrap(),
                "A=1\n",
                "{how} {rel}"
            );
        }
    };
    for way in WAYS {
        let fx = dotenv_fixture();
        let out = run(&fx, Some(way), PLANT_DOTENV_WAYS);
        check(&fx, &out, &format!("{way:?}"));
    }
    let fx = dotenv_fixture();
    let out = run_as_nobody(&fx, PLANT_DOTENV_WAYS);
    check(&fx, &out, "unprivileged");
}

/// Control for the test above: outside sluice every name is made.
#[test]
fn control_every_way_of_making_a_dotenv() {
    let fx = dotenv_fixture();
    let out = run(&fx, None, PLANT_DOTENV_WAYS);
    for said in [
        "wrote\n",
        "wrote local",
        "renamed",
        "symlinked",
        "linked",
        "made a directory",
        "control",
    ] {
        assert!(out.stdout.contains(said), "{said}\n{out}");
    }
    for rel in DOTENV_WAYS_REFUSED {
        assert!(fs::symlink_metadata(fx.ws(rel)).is_ok(), "{rel}\n{out}");
    }
}

/// A `.env` that exists at launch is both denied and protected: it stays
/// unreadable (the pin that keeps a protected path in place is a
/// read-only bind of the path itself, which must not re-expose what the
/// deny placeholder hides), and is neither written, removed nor renamed
/// away; the same for `.env.local`, under `default`, `--transparent` and as
/// an unprivileged user. Control: outside sluice the script reads both.
/// Mutation-checked: pinning a denied path (`pin_protected` without its
/// `deny` cover) with a read-only mount winning over a deny placeholder on
/// the same path (`mounts::normalise`) prints both secrets; either alone
/// still hides them.
#[test]
fn a_dotenv_there_at_launch_stays_unreadable_and_in_place() {
    const SCRIPT: &str = "cat .env; cat .env.local; echo x >> .env; rm -f .env.local; \
                          mv .env moved; cat moved; echo done";
    let check = |fx: &Fixture, out: &Outcome, how: &str| {
        assert!(!out.stdout.contains("SECRET"), "{how}\n{out}");
        assert!(out.stdout.contains("done"), "{how}\n{out}");
        assert_eq!(
            fs::read_to_string(fx.ws(".env")).unwrap(),
            sluice_tests::DOTENV,
            "{how}"
        );
        assert_eq!(
            fs::read_to_string(fx.ws(".env.local")).unwrap(),
            sluice_tests::DOTENV_LOCAL,
            "{how}"
        );
    };
    for way in WAYS {
        let fx = Fixture::new(PROBE);
        let out = run(&fx, Some(way), SCRIPT);
        check(&fx, &out, &format!("{way:?}"));
    }
    let fx = Fixture::new(PROBE);
    let out = run_as_nobody(&fx, SCRIPT);
    check(&fx, &out, "unprivileged");
    // Control: outside sluice both secrets are read.
    let fx = Fixture::new(PROBE);
    let out = run(&fx, None, "cat .env; cat .env.local");
    assert!(out.stdout.contains("SECRET-dotenv\n"), "{out}");
    assert!(out.stdout.contains("SECRET-dotenv-local"), "{out}");
}

/// Control for the test above: outside sluice the person's `git status`
/// under direnv runs the command a `.env` names.
#[test]
fn control_direnv_loads_a_dotenv_the_program_wrote() {
    let fx = dotenv_fixture();
    let out = run(&fx, None, PLANT_DOTENV);
    assert!(out.stdout.contains("wrote"), "{out}");
    if !have_direnv() {
        eprintln!("direnv is not installed here: the harm is not shown");
        return;
    }
    assert!(persons_git_under_direnv_ran(&fx), "{out}");
}

// ---------------------------------------------------------------------------
// The terminal the program leaves behind.
// ---------------------------------------------------------------------------

/// A full-screen program that ends (or is killed) without undoing its
/// settings: the alternate screen, mouse reports (SGR encoding), focus
/// reports, the kitty keyboard protocol's flags, a hidden cursor and
/// concealed text.
const LEAVE_MODES_ON: &str =
    r"printf '\033[?1049h\033[?1000h\033[?1006h\033[?1004h\033[>1u\033[?25l\033[8mfull screen'";

/// Whether the terminal was left with `set` (`\e[?1000h`) in force: sent,
/// and not followed by `reset`.
fn left_on(transcript: &str, set: &str, reset: &str) -> bool {
    match (transcript.rfind(set), transcript.rfind(reset)) {
        (Some(s), Some(r)) => s > r,
        (Some(_), None) => true,
        _ => false,
    }
}

/// What the person's terminal was sent by `cmd` to its end.
fn sent_to_terminal(cmd: Command) -> String {
    let mut t = Terminal::spawn(cmd, 24, 100);
    t.expect("full screen");
    let done = t.wait();
    assert_eq!(done.code, 0, "{:?}", done.transcript);
    done.transcript
}

/// The settings a program leaves on.
const LEFT: [(&str, &str); 6] = [
    ("\x1b[?1049h", "\x1b[?1049l"),
    ("\x1b[?1000h", "\x1b[?1000l"),
    ("\x1b[?1006h", "\x1b[?1006l"),
    ("\x1b[?1004h", "\x1b[?1004l"),
    ("\x1b[>1u", "\x1b[<99u"),
    ("\x1b[?25l", "\x1b[?25h"),
];

/// The relay passed the program's settings through and left them when it
/// ended: with mouse and focus reports on, each click and change of window
/// typed a report into the person's shell; kitty's keyboard flags made
/// Enter and Ctrl-C reach it as escape sequences; the shell stayed in the
/// alternate screen, its text concealed. Now the relay gives the terminal
/// back with every setting it follows at its power-on value
/// (`Screen::give_back`), with a pty and without one (`sluice ... | cat`).
/// Control: `control_a_program_leaves_its_terminal_settings_on`.
/// Mutation-checked: without the call in `Relay::finish` (with a pty), or
/// in `Piped::finish` (without), the settings are left on.
#[test]
fn the_terminal_is_given_back_without_the_programs_settings() {
    let fx = Fixture::new(PROBE);
    let inside = sent_to_terminal(fx.sluice_command(&[], &["/bin/sh", "-c", LEAVE_MODES_ON]));
    for (set, reset) in LEFT {
        assert!(
            inside.contains(set),
            "the program's {set:?} passed: {inside:?}"
        );
        assert!(!left_on(&inside, set, reset), "{set:?} left on: {inside:?}");
    }
    // Without a pty: sluice's stdout a pipe, its stderr the terminal.
    let to_stderr = format!("{{ {LEAVE_MODES_ON}; }} >&2");
    let mut piped = Command::new("/bin/sh");
    let sluice = fx.sluice_command(&[], &["/bin/sh", "-c", &to_stderr]);
    piped
        .arg("-c")
        .arg(r#""$@" | cat >/dev/null"#)
        .arg("sh")
        .arg(sluice.get_program())
        .args(sluice.get_args())
        .current_dir(&fx.ws_dir);
    for (key, value) in sluice.get_envs() {
        match value {
            Some(v) => piped.env(key, v),
            None => piped.env_remove(key),
        };
    }
    let bare = sent_to_terminal(piped);
    for (set, reset) in LEFT {
        assert!(!left_on(&bare, set, reset), "{set:?} left on: {bare:?}");
    }
}

/// Control for the test above: outside sluice the program's settings stay
/// on after it ends.
#[test]
fn control_a_program_leaves_its_terminal_settings_on() {
    let fx = Fixture::new(PROBE);
    let mut direct = Command::new("/bin/sh");
    direct.args(["-c", LEAVE_MODES_ON]).current_dir(&fx.ws_dir);
    let outside = sent_to_terminal(direct);
    for (set, reset) in LEFT {
        assert!(left_on(&outside, set, reset), "{set:?}: {outside:?}");
    }
}

/// A program with mouse reports on, waiting for a line.
const MOUSE_AND_WAIT: &str =
    r#"printf '\033[?1000h\033[?1006hready\n'; read line; echo "got $line""#;

/// Whether, at its stop and after its `fg`, the terminal had the
/// program's mouse reports on; and what it was sent. The shell says the
/// job stopped once sluice has stopped, so what came before that is what
/// the terminal had while the shell held it.
fn mouse_at_stop_and_after(cmd: Command) -> (bool, bool, String) {
    let mut t = Terminal::spawn(cmd, 24, 80);
    t.expect("ready");
    t.send(b"\x1a");
    t.expect("the job stopped");
    t.send(b"hello\r");
    t.expect("got hello");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    let sent = done.transcript;
    let upto = |text: &str| &sent[..sent.find(text).unwrap_or(sent.len())];
    (
        left_on(upto("the job stopped"), "\x1b[?1000h", "\x1b[?1000l"),
        left_on(upto("got hello"), "\x1b[?1000h", "\x1b[?1000l"),
        sent.clone(),
    )
}

/// Ctrl-Z hands the terminal to the person's shell while the program is
/// stopped: its mouse reports stayed on, each click typing a report at the
/// shell's prompt. Now the relay gives the terminal back at the stop and
/// writes the program's settings again when it continues. Control: outside
/// sluice a stopped program that set them leaves them on (a program that
/// handles `SIGTSTP` itself may undo them; this one does not).
/// Mutation-checked: without the `give_back` in `Relay::suspend`, the mouse
/// stays on at the stop.
#[test]
fn a_suspended_session_gives_the_terminal_back_and_takes_it_again() {
    let fx = Fixture::new(PROBE);
    let inside = under_job_control(&fx, Some(&[]), MOUSE_AND_WAIT);
    let (at_stop, after, sent) = mouse_at_stop_and_after(inside);
    assert!(!at_stop, "mouse reports left on for the shell: {sent:?}");
    assert!(after, "the program's mouse reports not set again: {sent:?}");
    // Control: outside sluice.
    let outside = under_job_control(&fx, None, MOUSE_AND_WAIT);
    let (at_stop, _, sent) = mouse_at_stop_and_after(outside);
    assert!(
        at_stop,
        "control: the stopped program's setting stays: {sent:?}"
    );
}

/// What a prompt's status line ends with, once a key can answer it.
const READY: &str = "without an answer) ? ";

/// Ctrl-Z typed at an approval prompt (the person reaching for their
/// shell): the relay reads the prompt's keys itself, so the key is an
/// answer there, a refusal, and the session is neither stopped nor is the
/// file served. Control: `y` at the same prompt serves it.
#[test]
fn ctrl_z_at_a_prompt_refuses_and_never_stops_the_session() {
    for (key, said) in [(&b"\x1a"[..], "READ-REFUSED"), (b"y", "READ-OK")] {
        let (fx, policy) = sluice_tests::broker::fixture(PROBE);
        let q = fx.brokered("asked/question.txt");
        let script = format!(
            "{probe} broker-read {q} >/dev/null 2>&1 && echo READ-OK || echo READ-REFUSED; echo end",
            probe = fx.probe.display()
        );
        let cmd = under_job_control(&fx, Some(&["--policy", &policy]), &script);
        let mut t = Terminal::spawn(cmd, 24, 100);
        t.expect(READY);
        t.send(key);
        let before = t.expect("end");
        let done = t.wait();
        assert!(before.contains(said), "{key:?}: {}", done.transcript);
        assert!(
            !before.contains("the job stopped"),
            "{key:?}: {}",
            done.transcript
        );
        assert!(done.transcript.contains("status="), "{}", done.transcript);
    }
}

// ---------------------------------------------------------------------------
// Other names that start commands when the person opens the folder.
// ---------------------------------------------------------------------------

/// Files that tools run commands from when the person next opens the
/// folder, missing from `default`'s list: a dev container configuration at
/// the repository's root (`.devcontainer.json`, the other place the
/// specification names beside `.devcontainer/`: its `initializeCommand`
/// runs on the host at "Reopen in Container"), Qwen Code's project settings
/// (`.qwen/settings.json`: MCP servers it starts, as `.gemini`'s), and
/// GitHub Copilot CLI's hooks (`.github/hooks/*.json`, loaded from the
/// working directory: `sessionStart` runs a shell command). Now refused at
/// any depth, written, renamed or linked into place; the rest of
/// `.github` and the same names elsewhere are written. Mutation-checked:
/// without the three `default` entries each is written. (None of these
/// tools is installed here: the harm is from their documentation.)
#[test]
fn files_that_start_commands_when_the_folder_is_opened_are_refused() {
    let refused = [
        ".devcontainer.json",
        "pkg/.devcontainer.json",
        ".qwen/settings.json",
        "pkg/.qwen/settings.json",
        ".github/hooks/hooks.json",
        "pkg/.github/hooks/start.json",
    ];
    let written = [
        ".github/workflows/ci.yml",
        ".github/copilot-instructions.md",
        "devcontainer.json",
        "qwen/settings.json",
        "hooks/hooks.json",
    ];
    refused_at_any_depth_written_beside(&refused, &written);
}

/// Each of `refused` (paths in the workspace) is made by the program under
/// `default` and `--transparent` in one of three ways (written in place,
/// renamed or hard-linked there from a file beside the workspace's root)
/// and fails, leaving nothing; each of `written` is made. Control: outside
/// sluice the same script makes every one.
pub(super) fn refused_at_any_depth_written_beside(refused: &[&str], written: &[&str]) {
    let mut script = String::new();
    for (i, rel) in refused.iter().chain(written).enumerate() {
        let dir = Path::new(rel).parent().unwrap().to_str().unwrap();
        if !dir.is_empty() {
            script.push_str(&format!("mkdir -p {dir} 2>/dev/null; "));
        }
        let how = match i % 3 {
            0 => format!("echo x > {rel}"),
            1 => format!("echo x > t{i} && mv t{i} {rel}"),
            _ => format!("echo x > t{i} && ln t{i} {rel}"),
        };
        script.push_str(&format!("{how} 2>/dev/null && echo wrote {rel}; "));
    }
    let outside = run(&Fixture::new(PROBE), None, &script);
    for rel in refused.iter().chain(written) {
        assert!(
            outside.stdout.contains(&format!("wrote {rel}\n")),
            "{rel}\n{outside}"
        );
    }
    for way in WAYS {
        let fx = Fixture::new(PROBE);
        let out = run(&fx, Some(way), &script);
        for rel in refused {
            assert!(
                !out.stdout.contains(&format!("wrote {rel}\n")),
                "{way:?} {rel}\n{out}"
            );
            assert!(
                fs::symlink_metadata(fx.ws(rel)).is_err(),
                "{way:?} {rel}\n{out}"
            );
        }
        for rel in written {
            assert!(
                out.stdout.contains(&format!("wrote {rel}\n")),
                "{way:?} {rel}\n{out}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The program's bytes reaching the person's terminal after the session.
// ---------------------------------------------------------------------------

/// A file whose name holds OSC 52 (set the clipboard to `echo hi`), made
/// by the program.
const ESCAPE_IN_A_NAME: &str =
    r#"echo x > "$(printf 'a\033]52;c;ZWNobyBoaQ==\007b')" && echo made"#;

/// The person's `grep -r x .` in the workspace after the program ran
/// (inside sluice or, `None`, outside): what it prints, to be shown on
/// their terminal.
fn persons_grep_after(fx: &Fixture, sluice_args: Option<&[&str]>) -> String {
    let out = run(fx, sluice_args, ESCAPE_IN_A_NAME);
    // Inside sluice the guard refuses the name (`protect::judge_name`).
    assert_eq!(out.stdout.contains("made"), sluice_args.is_none(), "{out}");
    let grep = run(fx, None, "grep -r x . 2>/dev/null; true");
    grep.stdout
}

/// The relay filters what the program writes to the terminal while it
/// runs, but what it leaves in files reaches the person's terminal later
/// through their own tools, unfiltered: `grep -r` prints a file's name as
/// it is (`ls` and `git status` quote one on a terminal), so an OSC 52 in a
/// name set the person's clipboard, kitty's remote control (`@kitty-cmd`,
/// where allowed) launched a command. Fixed in round 15: the guard refuses
/// a name holding a control character (every call, `redteam15names`).
/// File contents are left (`cat`; ARCHITECTURE.md, *What is not
/// protected*). Control: `control_a_name_reaches_the_terminal_through_grep`.
#[test]
fn no_name_the_program_makes_reaches_the_persons_terminal_later() {
    let fx = Fixture::new(PROBE);
    let shown = persons_grep_after(&fx, Some(&[]));
    assert!(!shown.contains("\x1b]52;"), "{shown:?}");
}

/// Control for the test above: outside sluice the person's `grep -r`
/// prints the name's escape sequence whole.
#[test]
fn control_a_name_reaches_the_terminal_through_grep() {
    let fx = Fixture::new(PROBE);
    let shown = persons_grep_after(&fx, None);
    assert!(shown.contains("\x1b]52;c;ZWNobyBoaQ==\x07"), "{shown:?}");
}
