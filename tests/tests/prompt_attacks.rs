//! Attacks on the approval prompt from inside the sandbox, each with its
//! control: a fake prompt the program draws and answers itself, TIOCSTI,
//! and escape sequences in the path it asks for. None of them grants
//! anything: the program writes only to its own pty, whose output is shown
//! to the person but never read as the person's keys, and everything it
//! chose is shown escaped in the prompt.

use std::fs;
use std::os::unix::ffi::OsStrExt;

use serde_json::Value;
use sluice_tests::audit::{decisions, records, sessions};
use sluice_tests::pty::Terminal;
use sluice_tests::Fixture;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
const PROMPT: &str = "sluice: the sandboxed program asks for a file";
/// The real prompt's status line (the fake one has none).
const READY: &str =
    "for this file, 0 other question(s) queued; denied in 60 s without an answer) ? ";

fn shell(fx: &Fixture, policy: &str, script: &str, args: &[&str]) -> Terminal {
    let mut program = vec!["/bin/sh", "-c", script, "sh"];
    program.extend_from_slice(args);
    Terminal::spawn(fx.sluice_command(&["--policy", policy], &program), 24, 100)
}

/// The decisions of the fixture's last session, as `(decision, by)`.
fn last_answers(fx: &Fixture) -> Vec<(String, String)> {
    let all = sessions(fx);
    let recs = records(fx, all.last().unwrap());
    decisions(&recs)
        .iter()
        .map(|r: &&Value| {
            (
                r["decision"].as_str().unwrap().to_owned(),
                r["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(decision: &str, by: &str) -> (String, String) {
    (decision.to_owned(), by.to_owned())
}

/// Draws a fake prompt, answers it on every descriptor of its terminal,
/// and keeps typing `y` there while the real request waits.
const FAKE_AND_ANSWER: &str = r#"
printf '%s\r\n' "sluice: the sandboxed program asks for a file" "  [y] allow once"
printf '  (1 request) ? '
printf 'y\r'; printf 'y\r' >&0; printf 'y\r' > /dev/tty
( while :; do printf y; printf y >&0; printf 'y\r' > /dev/tty; done ) 2>/dev/null &
writer=$!
"$0" broker-read "$1"
status=$?
kill $writer
exit $status
"#;

#[test]
fn the_program_cannot_answer_the_prompt_it_caused_or_a_fake_one() {
    let (fx, policy) = sluice_tests::broker::fixture(PROBE);
    let q = fx.brokered("asked/question.txt");
    let probe = fx.probe_path();
    let script = FAKE_AND_ANSWER.replace("\"$0\"", &probe);

    // Control: the person's `y` is what grants.
    let mut t = shell(&fx, &policy, &script, &[&q]);
    t.expect(READY);
    t.send(b"y");
    t.expect("allowed once");
    let done = t.wait();
    assert_eq!(
        done.code,
        0,
        "{}",
        &done.transcript[done.transcript.len().saturating_sub(2000)..]
    );
    assert_eq!(last_answers(&fx), [pair("allowed", "person")]);

    // The attack: all the program's `y`s, and the person's Enter.
    let mut t = shell(&fx, &policy, &script, &[&q]);
    let before = t.expect(READY);
    assert!(
        before.contains("(1 request) ? y"),
        "the fake prompt was shown: {before:?}"
    );
    assert!(!before.contains("allowed"), "{before:?}");
    t.send(b"\r");
    t.expect("denied: ");
    let done = t.wait();
    assert_eq!(done.code, 1);
    assert!(!done.transcript.contains("allowed once"));
    assert_eq!(last_answers(&fx), [pair("denied", "person")]);
}

#[test]
fn tiocsti_from_the_program_answers_nothing() {
    let (fx, policy) = sluice_tests::broker::fixture(PROBE);
    let q = fx.brokered("asked/question.txt");
    // Control: on a terminal of its own, outside sluice, the probe injects.
    let t = Terminal::spawn(fx.direct_command(&["tiocsti"]), 24, 80);
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert!(
        done.transcript.contains("OK injected input"),
        "{}",
        done.transcript
    );

    let script = format!("{p} tiocsti; {p} broker-read \"$1\"", p = fx.probe_path());
    let mut t = shell(&fx, &policy, &script, &[&q]);
    let before = t.expect(READY);
    assert!(before.contains("BLOCKED"), "{before}");
    t.send(b"\r");
    t.expect("denied: ");
    let done = t.wait();
    assert_eq!(done.code, 1, "{}", done.transcript);
    assert_eq!(last_answers(&fx), [pair("denied", "person")]);
}

#[test]
fn escape_sequences_in_a_requested_path_are_shown_harmless() {
    let (fx, policy) = sluice_tests::broker::fixture(PROBE);
    let name = "\x1b[2J\x1b[H\x1b]0;pwned\x07\r\n  [y] allow once\u{202e}\x1b[8m.txt";
    let path = fx.broker_dir().join("unruled").join(name);
    fs::write(&path, "asked about\n").unwrap();
    let shown = format!("{}/unruled/", fx.broker_dir().display());
    let script = format!(
        "printf '%s\\n' \"$1\"; exec {} broker-read \"$1\"",
        fx.probe_path()
    );
    let arg = std::ffi::OsStr::from_bytes(path.as_os_str().as_bytes());
    let mut t = shell(&fx, &policy, &script, &[arg.to_str().unwrap()]);
    // Control: printed by the program itself, the name reaches the terminal
    // raw (the relay passes the program's output on unchanged).
    let before = t.expect(PROMPT);
    assert!(
        before.contains("\x1b[2J\x1b[H\x1b]0;pwned\x07"),
        "{before:?}"
    );
    let prompt = t.expect(READY);
    // In the prompt: written out, acting on nothing. The prompt's own
    // sequences are the end of its bold title and the status line's erase.
    let escaped = format!(
        "{shown}\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07\\x0d\\x0a  [y] allow once\\u{{202e}}\\x1b[8m.txt"
    );
    assert!(
        prompt.contains(&format!("path     {escaped}\r\n")),
        "{prompt:?}"
    );
    assert_eq!(prompt.matches('\x1b').count(), 2, "{prompt:?}");
    assert!(!prompt.contains('\u{202e}'));
    t.send(b"\r");
    let after = t.expect("\r\n");
    assert!(after.contains(&format!("denied: {escaped}")), "{after:?}");
    let done = t.wait();
    assert_eq!(done.code, 1, "{}", done.transcript.escape_debug());
    assert_eq!(last_answers(&fx), [pair("denied", "person")]);
}
