//! Red team 13: attacks on sluice as it was at 8e077d6, each with its
//! control (the same action where it is allowed, or outside sluice).

use std::process::Command;

use sluice_tests::pty::{Replies, Terminal};
use sluice_tests::Fixture;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

// ---------------------------------------------------------------------------
// The terminal's replies to the program's last queries.
// ---------------------------------------------------------------------------

/// A hundred cursor position queries and an ENQ, then the program ends at
/// once: the terminal's replies are still on their way when it has gone.
const ASK_AND_EXIT: &str =
    r"i=0; while [ $i -lt 100 ]; do printf '\033[6n'; i=$((i+1)); done; printf '\005'";

/// `/bin/sh -c script sh ARGS... PROGRAM...`: `program` (its environment
/// and directory kept) run by a shell script as `"$@"`, after `args`.
fn in_shell(script: &str, args: &[&str], program: &Command) -> Command {
    let mut shell = Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .arg(program.get_program())
        .args(program.get_args());
    for (key, value) in program.get_envs() {
        match value {
            Some(v) => shell.env(key, v),
            None => shell.env_remove(key),
        };
    }
    if let Some(dir) = program.get_current_dir() {
        shell.current_dir(dir);
    }
    shell
}

/// What the person's shell reads after `program` ends, on a terminal that
/// answers as xterm does over a slow link (each reply a moment after the
/// last): whatever the terminal typed meanwhile, shown by `od` between
/// `LEFT[` and `]`.
fn left_for_the_shell(program: Command) -> String {
    // The shell the person returns to: it reads what is typed, raw, until
    // the terminal has been quiet for a second.
    let script = r#""$@"; stty -icanon -echo min 0 time 10; printf 'LEFT['; cat | od -An -c | tr -d ' \n'; printf ']\n'"#;
    let shell = in_shell(script, &[], &program);
    let mut t = Terminal::spawn_with(shell, 24, 100, Replies::SlowXterm);
    t.expect("LEFT[");
    let left = t.expect("]");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    left
}

/// The relay stops reading the person's terminal when the program ends;
/// replies to queries the program wrote just before were typed into the
/// person's shell (an answerback, a report: with a terminal that reports
/// text the program chose, a command line). Now a fence at the end takes
/// them. Control: the same program outside sluice leaves them to the shell.
#[test]
fn the_terminals_replies_to_the_programs_last_queries_never_reach_the_persons_shell() {
    let fx = Fixture::new(PROBE);
    let inside = left_for_the_shell(fx.sluice_command(&[], &["/bin/sh", "-c", ASK_AND_EXIT]));
    assert_eq!(inside, "", "the terminal's replies reached the shell");
    // Control: outside sluice the shell reads them.
    let mut direct = Command::new("/bin/sh");
    direct.args(["-c", ASK_AND_EXIT]).current_dir(&fx.ws_dir);
    let outside = left_for_the_shell(direct);
    assert!(
        outside.contains("PuTTY") || outside.contains("033[1;1R"),
        "the control left nothing for the shell: the check proves nothing ({outside:?})"
    );
}

/// Control of the fence: a program that reads its own reply still gets it.
#[test]
fn a_program_still_reads_the_terminals_reply_to_its_query() {
    let fx = Fixture::new(PROBE);
    let script = r"stty -icanon -echo min 0 time 20; printf '\033[6n'; printf 'GOT['; cat | od -An -c | tr -d ' \n'; printf ']\n'";
    let mut t = Terminal::spawn(fx.sluice_command(&[], &["/bin/sh", "-c", script]), 24, 100);
    t.expect("GOT[");
    let got = t.expect("]");
    assert_eq!(got, "033[1;1R");
    assert_eq!(t.wait().code, 0);
}

// ---------------------------------------------------------------------------
// Python's bytecode cache: code the person runs later that no review shows.
// ---------------------------------------------------------------------------

const PYTHON: &str = "/usr/bin/python3";

/// Writes, beside the workspace's `mod.py`, the bytecode Python would
/// cache for it, compiled from other source: the header names the clean
/// file's modification time and size, so Python runs the cache and never
/// reads the source again. The canary is the file the planted code makes.
const PLANT_PYC: &str = r#"
import importlib.util, importlib._bootstrap_external as ext, os, sys
canary = sys.argv[1]
st = os.stat("mod.py")
evil = "open(%r, 'w').write('ran')\n" % canary + open("mod.py").read()
code = compile(evil, os.path.abspath("mod.py"), "exec")
# Where Python outside looks (not PYTHONPYCACHEPREFIX's tree, set inside).
cached = os.path.join("__pycache__", "mod.%s.pyc" % sys.implementation.cache_tag)
os.makedirs(os.path.dirname(cached), exist_ok=True)
with open(cached, "wb") as f:
    f.write(ext._code_to_timestamp_pyc(code, st.st_mtime, st.st_size))
print("planted", cached)
"#;

/// A workspace with a clean module and the program that imports it.
fn python_project(fx: &Fixture) {
    std::fs::write(fx.ws("mod.py"), "def greet():\n    return 'hello'\n").unwrap();
    std::fs::write(fx.ws("app.py"), "import mod\nprint(mod.greet())\n").unwrap();
}

/// The person's `python3 app.py` outside, after the session: whether the
/// planted bytecode ran (the source it shows is unchanged either way).
fn persons_run_ran_the_plant(fx: &Fixture, canary: &str) -> bool {
    let out = sluice_tests::execute({
        let mut cmd = Command::new(PYTHON);
        cmd.arg("app.py").current_dir(&fx.ws_dir);
        cmd
    });
    assert!(out.stdout.contains("hello"), "{out}");
    assert_eq!(
        std::fs::read_to_string(fx.ws("mod.py")).unwrap(),
        "def greet():\n    return 'hello'\n",
        "the source changed: this is not the hidden way"
    );
    std::path::Path::new(canary).exists()
}

/// The program writes `__pycache__/mod.cpython-3X.pyc` for the person's
/// clean `mod.py`: `git diff` and the source show nothing (`__pycache__` is
/// in every Python `.gitignore`), and the person's next `python3 app.py`
/// outside runs the planted code. Fixed: `default` protects `**/*.pyc`
/// (with `PYTHONPYCACHEPREFIX` set to the session's TMPDIR so that Python
/// inside keeps a cache); more ways in `redteam14cache.rs`.
#[test]
fn bytecode_the_program_caches_for_a_clean_module_never_runs_outside() {
    let fx = Fixture::new(PROBE);
    python_project(&fx);
    let canary = fx.outside("pyc-ran");
    let out =
        sluice_tests::execute(fx.sluice_command(&[], &[PYTHON, "-c", PLANT_PYC, canary.as_str()]));
    eprintln!("{out}");
    assert!(
        !persons_run_ran_the_plant(&fx, &canary),
        "the person's python3 ran the bytecode the program planted"
    );
}

/// Control: outside sluice the same plant runs on the person's next run.
#[test]
fn control_planted_bytecode_runs_on_the_persons_next_run() {
    let fx = Fixture::new(PROBE);
    python_project(&fx);
    let canary = fx.outside("pyc-ran");
    let out = sluice_tests::execute({
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-c", PLANT_PYC, canary.as_str()])
            .current_dir(&fx.ws_dir);
        cmd
    });
    assert!(out.stdout.contains("planted"), "{out}");
    assert!(persons_run_ran_the_plant(&fx, &canary));
}

// ---------------------------------------------------------------------------
// Credentials the broker served on one yes.
// ---------------------------------------------------------------------------

/// Tokens of command-line tools and the browsers' session cookies, in the
/// home directory, each with the secret it holds.
const TOOL_CREDENTIALS: &[(&str, &str)] = &[
    (
        ".config/gh/hosts.yml",
        "github.com:\n  oauth_token: gho_SECRET-gh\n",
    ),
    (".config/hub", "github.com:\n- oauth_token: SECRET-hub\n"),
    (".config/glab-cli/config.yml", "token: SECRET-glab\n"),
    (
        ".config/rclone/rclone.conf",
        "[s3]\nsecret_access_key = SECRET-rclone\n",
    ),
    (
        ".terraform.d/credentials.tfrc.json",
        "{\"credentials\":{\"app.terraform.io\":{\"token\":\"SECRET-tf\"}}}\n",
    ),
    (".vault-token", "hvs.SECRET-vault\n"),
    (".pgpass", "db:5432:*:me:SECRET-pg\n"),
    (".gem/credentials", ":rubygems_api_key: SECRET-gem\n"),
    (
        ".mozilla/firefox/p.default/cookies.sqlite",
        "SECRET-firefox-cookies\n",
    ),
    (
        ".config/google-chrome/Default/Cookies",
        "SECRET-chrome-cookies\n",
    ),
    (
        ".config/chromium/Default/Login Data",
        "SECRET-chromium-logins\n",
    ),
];

fn fixture_with_tool_credentials() -> Fixture {
    let fx = Fixture::new(PROBE);
    for (rel, secret) in TOOL_CREDENTIALS {
        let path = std::path::PathBuf::from(fx.home(rel));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, secret).unwrap();
    }
    fx
}

/// `default`'s `[broker] deny` names the credentials it never serves
/// "even if a person would say yes" (`~/.ssh`, `~/.aws`, `~/.netrc`...),
/// but not the GitHub CLI's token nor the browsers' cookies: `ask "/"` put
/// them to the person, so one hurried yes (or `--approve allow`) handed
/// `~/.config/gh/hosts.yml` to the program. Control: a file of the home
/// directory that holds no credential is still served on that yes.
#[test]
fn tools_tokens_and_browser_cookies_are_never_served_whatever_the_answer() {
    let fx = fixture_with_tool_credentials();
    for (rel, secret) in TOOL_CREDENTIALS {
        let secret = secret.trim_end().escape_debug().to_string();
        let out = fx.sluice(&["--approve", "allow"], &["broker-read", &fx.home(rel)]);
        assert!(!out.stdout.contains(&secret), "{rel} was served: {out}");
        out.assert_blocked();
        let out = fx.sluice(
            &["--approve", "allow", "--transparent"],
            &["read", &fx.home(rel)],
        );
        assert!(!out.stdout.contains(&secret), "{rel} was read: {out}");
        out.assert_blocked();
    }
    // Control: the same yes serves the rest of the home directory.
    fx.sluice(
        &["--approve", "allow"],
        &["broker-read", &fx.home("notes.txt")],
    )
    .assert_ok()
    .assert_says("SECRET-home-notes");
    fx.sluice(
        &["--approve", "allow", "--transparent"],
        &["read", &fx.home("notes.txt")],
    )
    .assert_ok()
    .assert_says("SECRET-home-notes");
}

/// The same files stay hidden where a policy extending `default` lets the
/// sandbox read the home directory itself (control: the rest of it reads).
#[test]
fn tools_tokens_and_browser_cookies_stay_hidden_in_a_readable_home() {
    let fx = fixture_with_tool_credentials();
    let home = fx.home("");
    for (rel, secret) in TOOL_CREDENTIALS {
        let out = fx.sluice(&["--allow-read", &home], &["read", &fx.home(rel)]);
        let secret = secret.trim_end().escape_debug().to_string();
        assert!(!out.stdout.contains(&secret), "{rel} was read: {out}");
    }
    fx.sluice(&["--allow-read", &home], &["read", &fx.home("notes.txt")])
        .assert_ok()
        .assert_says("SECRET-home-notes");
}

// ---------------------------------------------------------------------------
// Terminals that act for the program beyond the screen.
// ---------------------------------------------------------------------------

/// kitty's remote control (`launch` runs a command outside, where the
/// person set `allow_remote_control yes`), kitty's file transfer, and
/// iTerm2's clipboard and file download, and a user-defined key (xterm's
/// Shift-F6 would type `echo pwned` and Enter into the person's shell after
/// the session), between text that must pass.
const TERMINAL_ACTIONS: &str = r#"printf 'before\033P@kitty-cmd{"cmd":"launch","version":[0,26,0],"no_response":true,"payload":{"args":["sh","-c","touch /tmp/x"],"type":"background"}}\033\\mid1'
printf '\033]5113;ac=send;id=a;dest=~/.bashrc\033\\mid2'
printf '\033]1337;Copy=:ZWNobyBwd25lZAo=\007mid3'
printf '\033P0;1|17/6563686f2070776e65640d\033\\mid4'
printf '\033]1337;File=name=LmJhc2hyYw==;inline=0:ZWNobyBwd25lZAo=\007after\n'"#;

/// What the person's terminal was sent, outside sluice or in it.
fn terminal_transcript(cmd: Command) -> String {
    let mut t = Terminal::spawn(cmd, 24, 100);
    t.expect("after");
    let done = t.wait();
    assert_eq!(done.code, 0, "{:?}", done.transcript);
    done.transcript
}

/// The relay dropped only clipboard strings: kitty's remote control, by
/// which a terminal configured to accept it (`allow_remote_control yes`)
/// launches any command the program names outside the sandbox, reached
/// the person's terminal, as did kitty's file transfer, iTerm2's
/// clipboard and file download and xterm's user-defined keys. Control: outside sluice the terminal is
/// sent each of them.
#[test]
fn the_program_cannot_drive_the_persons_terminal_beyond_its_screen() {
    let fx = Fixture::new(PROBE);
    let inside = terminal_transcript(fx.sluice_command(&[], &["/bin/sh", "-c", TERMINAL_ACTIONS]));
    for needle in [
        "@kitty-cmd",
        "5113;",
        "1337;Copy",
        "1337;File",
        "ZWNv",
        "|17/",
    ] {
        assert!(
            !inside.contains(needle),
            "{needle} reached the terminal: {inside:?}"
        );
    }
    assert!(inside.contains("beforemid1mid2mid3mid4after"), "{inside:?}");
    // Control: a program outside sluice sends them all.
    let mut direct = Command::new("/bin/sh");
    direct
        .args(["-c", TERMINAL_ACTIONS])
        .current_dir(&fx.ws_dir);
    let outside = terminal_transcript(direct);
    for needle in ["@kitty-cmd", "5113;", "1337;Copy", "1337;File", "|17/"] {
        assert!(outside.contains(needle), "{needle}: {outside:?}");
    }
}

/// Without a pty (sluice's stdout a pipe: `sluice run -- cargo build |
/// tee log`), the program's standard error is the person's terminal
/// itself, and kitty's remote control written there reaches it unfiltered:
/// with `allow_remote_control yes`, a command run outside the sandbox. Now
/// each standard descriptor that is the terminal is a pipe, relayed
/// through the same filter (`tty::Piped`).
#[test]
fn without_a_pty_the_program_still_cannot_drive_the_persons_terminal() {
    let fx = Fixture::new(PROBE);
    let to_stderr = format!("{{ {TERMINAL_ACTIONS}; }} >&2");
    let mut t = piped_session(&fx, &to_stderr);
    t.expect("done");
    let transcript = t.wait().transcript;
    assert!(transcript.contains("after"), "{transcript:?}");
    assert!(
        !transcript.contains("@kitty-cmd"),
        "kitty's remote control reached the terminal: {transcript:?}"
    );
}

/// `sh -c SCRIPT` run as `sluice run -- ... | cat >/dev/null` (no pty: its
/// stdout a pipe) on a terminal; a shell that then says `done`.
fn piped_session(fx: &Fixture, script: &str) -> Terminal {
    let mut cmd = fx.sluice_command(&[], &["/bin/sh", "-c", script]);
    cmd.current_dir(&fx.ws_dir);
    let shell = in_shell(r#""$@" | cat >/dev/null; echo done"#, &[], &cmd);
    Terminal::spawn(shell, 24, 100)
}

/// Which of the program's stdin, stdout and stderr are a terminal.
const WHICH_ARE_TERMINALS: &str =
    "for fd in 0 1 2; do if [ -t $fd ]; then echo tty-on-$fd >&2; fi; done; echo checked >&2";

/// The class: without a pty, no standard descriptor of the program is the
/// person's terminal (stdin, stdout or stderr: each could write to it or
/// change its modes). Control: outside sluice, stdin and stderr are.
#[test]
fn without_a_pty_no_descriptor_of_the_program_is_the_persons_terminal() {
    let fx = Fixture::new(PROBE);
    let mut t = piped_session(&fx, WHICH_ARE_TERMINALS);
    t.expect("done");
    let inside = t.wait().transcript;
    assert!(inside.contains("checked"), "{inside:?}");
    assert!(!inside.contains("tty-on-"), "{inside:?}");
    // Control: the same shell outside sluice.
    let mut shell = Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg(format!(
            "{{ {WHICH_ARE_TERMINALS}; }} | cat >/dev/null; echo done"
        ))
        .current_dir(&fx.ws_dir);
    let mut t = Terminal::spawn(shell, 24, 100);
    t.expect("done");
    let outside = t.wait().transcript;
    assert!(
        outside.contains("tty-on-0") && outside.contains("tty-on-2"),
        "{outside:?}"
    );
}

/// Control of the pipes: without a pty, what the program writes on stderr
/// still reaches the person's terminal, in order, and its exit status and
/// its stdout (a file: not a terminal, untouched) are as they were.
#[test]
fn without_a_pty_the_programs_stderr_still_reaches_the_terminal_in_order() {
    let fx = Fixture::new(PROBE);
    let script = "i=0; while [ $i -lt 200 ]; do echo \"err-$i\" >&2; echo \"out-$i\"; \
        i=$((i+1)); done; printf 'partial' >&2; exit 7";
    let mut cmd = fx.sluice_command(&[], &["/bin/sh", "-c", script]);
    cmd.current_dir(&fx.ws_dir);
    let out = fx.ws("stdout.txt");
    let wrapper = r#"out="$1"; shift; "$@" >"$out"; echo " rc=$?""#;
    let mut t = Terminal::spawn(in_shell(wrapper, &[&out], &cmd), 24, 100);
    t.expect("rc=");
    let transcript = t.wait().transcript;
    let lines: Vec<String> = (0..200).map(|i| format!("err-{i}")).collect();
    let mut at = 0;
    for line in &lines {
        at += transcript[at..]
            .find(line.as_str())
            .unwrap_or_else(|| panic!("{line} missing or out of order: {transcript:?}"));
    }
    // The last of stderr (no newline) came before sluice ended.
    let partial = transcript[at..].find("partial").expect("partial");
    assert!(
        transcript[at + partial..].contains(" rc=7"),
        "{transcript:?}"
    );
    let written = std::fs::read_to_string(&out).unwrap();
    let expected: String = (0..200).map(|i| format!("out-{i}\n")).collect();
    assert_eq!(written, expected);
}

/// Control of the pipes: without a pty because stdin is a file, stdout and
/// stderr (one terminal) share one pipe, so what the program writes on the
/// two keeps its order; its stdin is the file itself.
#[test]
fn without_a_pty_stdout_and_stderr_keep_their_order() {
    let fx = Fixture::new(PROBE);
    let script = "read first; echo \"in:$first\"; i=0; while [ $i -lt 100 ]; do \
        echo \"o$i\"; echo \"e$i\" >&2; i=$((i+1)); done; [ -t 1 ] || echo not-a-tty";
    let mut cmd = fx.sluice_command(&[], &["/bin/sh", "-c", script]);
    cmd.current_dir(&fx.ws_dir);
    let input = fx.ws("input.txt");
    std::fs::write(&input, "from-the-file\n").unwrap();
    let wrapper = r#"in="$1"; shift; "$@" <"$in"; echo " rc=$?""#;
    let mut t = Terminal::spawn(in_shell(wrapper, &[&input], &cmd), 24, 100);
    t.expect("rc=");
    let transcript = t.wait().transcript;
    let mut expected = String::from("in:from-the-file\r\n");
    for i in 0..100 {
        expected += &format!("o{i}\r\ne{i}\r\n");
    }
    expected += "not-a-tty\r\n rc=0";
    assert!(transcript.contains(&expected), "{transcript:?}");
}

/// Control of the pipes: without a pty, what the person types still
/// reaches the program (stdin from the terminal, stdout piped), and the end
/// of input (Ctrl-D) ends its input.
#[test]
fn without_a_pty_the_persons_input_still_reaches_the_program() {
    let fx = Fixture::new(PROBE);
    let script = "echo ready >&2; read line; echo \"got:$line\" >&2; cat >&2; echo input-ended >&2";
    let mut t = piped_session(&fx, script);
    t.expect("ready");
    t.send(b"hello\r");
    t.expect("got:hello");
    t.send(b"more\r");
    t.expect("more");
    t.send(b"\x04");
    t.expect("input-ended");
    t.expect("done");
    assert_eq!(t.wait().code, 0);
}

/// Without a pty, the terminal's replies to the program's last queries
/// (written on its stderr) never reach the person's shell either: the exit
/// fence holds there too. (The control outside sluice is
/// `the_terminals_replies_to_the_programs_last_queries_never_reach_the_persons_shell`'s.)
#[test]
fn without_a_pty_the_terminals_replies_never_reach_the_persons_shell() {
    let fx = Fixture::new(PROBE);
    let to_stderr = format!("{{ {ASK_AND_EXIT}; }} >&2");
    let mut cmd = fx.sluice_command(&[], &["/bin/sh", "-c", &to_stderr]);
    cmd.current_dir(&fx.ws_dir);
    let piped = in_shell(r#""$@" | cat >/dev/null"#, &[], &cmd);
    let inside = left_for_the_shell(piped);
    assert_eq!(inside, "", "the terminal's replies reached the shell");
}

// ---------------------------------------------------------------------------
// The suspend key.
// ---------------------------------------------------------------------------

/// Says when it is continued after a stop, for three seconds.
const TRAPS_CONT: &str = "trap 'echo GOT-CONT' CONT; echo ready; i=0; \
    while [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; echo end";

/// Whether typing `key` at the program suspended (stopped and continued)
/// it, the program having made `susp` its terminal's suspend character.
fn key_suspends(fx: &Fixture, susp: &str, key: &[u8]) -> bool {
    let script = format!("stty susp {susp}; {TRAPS_CONT}");
    let mut t = Terminal::spawn(fx.sluice_command(&[], &["/bin/sh", "-c", &script]), 24, 100);
    t.expect("ready");
    t.send(key);
    let before_end = t.expect("end");
    t.wait();
    before_end.contains("GOT-CONT")
}

/// The relay suspended the session on the suspend character of the
/// program's own pty, which the program sets: a key of its choosing (a
/// space, Enter) stopped sluice mid-line, and the rest of what the person
/// was typing to the program went to the person's shell. Now only the
/// person's own suspend character does. Control: Ctrl-Z still suspends.
#[test]
fn the_program_cannot_choose_the_key_that_hands_the_terminal_back_to_the_shell() {
    let fx = Fixture::new(PROBE);
    assert!(
        !key_suspends(&fx, "a", b"a"),
        "a key the program chose suspended the session"
    );
    // Control: the person's Ctrl-Z, the program's too, suspends it.
    assert!(key_suspends(&fx, "^Z", b"\x1a"));
}
