//! Attacks on the approval prompt from inside the sandbox, each with its
//! control: a fake prompt the program draws and answers itself, TIOCSTI,
//! escape sequences in the path it asks for, the person's terminal made to
//! type by the program's queries, and type-ahead. None of them grants
//! anything: the program writes only to its own pty, whose output is shown
//! to the person but never read as the person's keys, and everything it
//! chose is shown escaped in the prompt.

use std::fs;
use std::os::unix::ffi::OsStrExt;

use serde_json::Value;
use sluice_tests::audit::{decisions, records, sessions};
use sluice_tests::pty::{Replies, Terminal};
use sluice_tests::{for_each_concurrently, Fixture};

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

/// The control: in `script` on a terminal, the person's `y` allows the
/// read of `q` (once), and the record says the person allowed it.
fn the_persons_y_allows(fx: &Fixture, policy: &str, script: &str, q: &str) {
    let mut t = shell(fx, policy, script, &[q]);
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
    assert_eq!(last_answers(fx), [pair("allowed", "person")]);
}

#[test]
fn the_program_cannot_answer_the_prompt_it_caused_or_a_fake_one() {
    let (fx, policy) = sluice_tests::broker::fixture(PROBE);
    let q = fx.brokered("asked/question.txt");
    let probe = fx.probe_path();
    let script = FAKE_AND_ANSWER.replace("\"$0\"", &probe);

    // Control: the person's `y` is what grants.
    the_persons_y_allows(&fx, &policy, &script, &q);

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
    // sequences are the end of its bold title, the fence's query and the
    // status line's erase.
    let escaped = format!(
        "{shown}\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07\\x0d\\x0a  [y] allow once\\u{{202e}}\\x1b[8m.txt"
    );
    assert!(
        prompt.contains(&format!("path     {escaped}\r\n")),
        "{prompt:?}"
    );
    assert_eq!(prompt.matches('\x1b').count(), 3, "{prompt:?}");
    assert!(prompt.contains("\x1b[c\r\x1b[K  ("), "{prompt:?}");
    // Nothing was pending: the prompt says nothing of discarded input.
    assert!(!prompt.contains(DISCARDED), "{prompt:?}");
    assert!(!prompt.contains('\u{202e}'));
    t.send(b"\r");
    let after = t.expect("\r\n");
    assert!(after.contains(&format!("denied: {escaped}")), "{after:?}");
    let done = t.wait();
    assert_eq!(done.code, 1, "{}", done.transcript.escape_debug());
    assert_eq!(last_answers(&fx), [pair("denied", "person")]);
}

/// The decisions of the fixture's last session, whole.
fn last_decisions(fx: &Fixture) -> Vec<Value> {
    let all = sessions(fx);
    let recs = records(fx, all.last().unwrap());
    decisions(&recs).into_iter().cloned().collect()
}

/// What a prompt says when it discarded input.
const DISCARDED: &str = "of input that came before this question were discarded";

/// Floods the terminal with status queries whose replies end in letters
/// that are answers (DECRQM's `$y`, DSR's `R`, DA1's `c`) or are plain
/// text (ENQ's answerback, `PuTTY`), reading none of the replies, then asks
/// for a file. First, as a control, it reads the
/// reply to one query: the terminal answers, through the relay.
const FLOOD_THEN_ASK: &str = r#"
stty raw -echo
printf '\033[?1$p'
printf 'reply: %s\r\n' "$(head -c 8 | od -An -tx1 | tr -d ' \n')"
i=0
while [ $i -lt 3000 ]; do
  printf '\033[?1$p\033[?25$p\033[6n\033[c\033[5n\005'
  i=$((i+1))
done
exec "$0" broker-read "$1"
"#;

#[test]
fn the_terminals_replies_to_the_programs_queries_never_answer_a_prompt() {
    let (fx, policy) = sluice_tests::broker::fixture(PROBE);
    let q = fx.brokered("asked/question.txt");
    let script = FLOOD_THEN_ASK.replace("\"$0\"", &fx.probe_path());

    // The attack: thousands of replies in flight when the prompt opens.
    let mut t = shell(&fx, &policy, &script, &[&q]);
    // Control: the program's queries are answered, through the relay.
    t.expect("reply: 1b5b3f313b322479\r\n");
    let prompt = t.expect(READY);
    assert!(prompt.contains(PROMPT), "{prompt:?}");
    // Whatever was still on its way has had time to arrive: nothing
    // answered the prompt but the person.
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        !t.transcript().contains("sluice:\x1b[0m "),
        "answered without a key: {:?}",
        &t.transcript()[t.transcript().len().saturating_sub(600)..]
    );
    assert!(prompt.contains(DISCARDED), "the prompt says so: {prompt:?}");
    assert!(t.replies() > 10_000, "{} replies", t.replies());
    t.send(b"\r");
    t.expect("denied: ");
    let done = t.wait();
    assert_eq!(done.code, 1);
    let decided = last_decisions(&fx);
    assert_eq!(last_answers(&fx), [pair("denied", "person")]);
    let reason = decided[0]["reason"].as_str().unwrap();
    assert!(reason.contains(DISCARDED), "{reason}");

    // Control: with the same flood, the person's own key answers.
    the_persons_y_allows(&fx, &policy, &script, &q);
}

#[test]
fn type_ahead_is_discarded_when_a_prompt_opens_and_the_prompt_says_so() {
    let (fx, policy) = sluice_tests::broker::fixture(PROBE);
    let q = fx.brokered("asked/question.txt");
    // The program reads none of its input; what the person types for it
    // fills its terminal (raw: nothing is dropped there), then waits in the
    // relay and in the person's terminal when it asks.
    let script = format!(
        "stty raw -echo; echo typing; sleep 1; exec {} broker-read \"$1\"",
        fx.probe_path()
    );
    let mut t = shell(&fx, &policy, &script, &[&q]);
    t.expect("typing");
    t.send(&[b'y'; 200 * 1024]);
    let prompt = t.expect(READY);
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        !t.transcript().contains("sluice:\x1b[0m "),
        "answered by type-ahead"
    );
    assert!(prompt.contains(DISCARDED), "the prompt says so: {prompt:?}");
    t.send(b"n");
    t.expect("denied: ");
    let done = t.wait();
    assert_eq!(done.code, 1);
    assert_eq!(last_answers(&fx), [pair("denied", "person")]);
}

#[test]
fn a_terminal_that_never_replies_still_gets_an_answerable_prompt() {
    let (fx, policy) = sluice_tests::broker::fixture(PROBE);
    let q = fx.brokered("asked/question.txt");
    let script = format!("exec {} broker-read \"$1\"", fx.probe_path());
    let mut program = vec!["/bin/sh", "-c", &script, "sh", &q];
    let cmd = fx.sluice_command(&["--policy", &policy], &program.split_off(0));
    let mut t = Terminal::spawn_with(cmd, 24, 100, Replies::None);
    let prompt = t.expect(READY);
    // The fence waited in vain, and says nothing about it.
    assert!(!prompt.contains(DISCARDED), "{prompt:?}");
    assert_eq!(t.replies(), 0);
    t.send(b"y");
    t.expect("allowed once");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(last_answers(&fx), [pair("allowed", "person")]);
}

#[test]
fn replies_still_coming_after_the_fence_timed_out_answer_nothing() {
    // A DA1 query as a raw 8-bit C1 control, which this terminal (like
    // xterm in UTF-8) ignores: sluice counts one reply more than will
    // come, so its fence times out while the replies to the flood, sent
    // slowly, are still on their way (plain-text answerbacks among them).
    let script = r#"stty raw -echo
printf '\233c'
i=0
while [ $i -lt 1000 ]; do
  printf '\033[?1$p\033[c\005'
  i=$((i+1))
done
exec "$2" broker-read "$1""#;
    // The attack and its control at once, each in a session of its own:
    // both wait out the fence and a second of silence.
    for_each_concurrently(&[&b"\r"[..], b"y"], 2, |&key| {
        let (fx, policy) = sluice_tests::broker::fixture(PROBE);
        let q = fx.brokered("asked/question.txt");
        let probe = fx.probe_path();
        let mut program = vec!["/bin/sh", "-c", script, "sh", &q, &probe];
        let cmd = fx.sluice_command(&["--policy", &policy], &program.split_off(0));
        let mut t = Terminal::spawn_with(cmd, 24, 100, Replies::SlowXterm);
        let prompt = t.expect(READY);
        std::thread::sleep(std::time::Duration::from_secs(1));
        assert!(
            !t.transcript().contains("sluice:\x1b[0m "),
            "answered without a key: {:?}",
            &t.transcript()[t.transcript().len().saturating_sub(600)..]
        );
        assert!(prompt.contains(DISCARDED), "{prompt:?}");
        t.send(key);
        let done = t.wait();
        // The attack: denied by the person's Enter; the control: the
        // person's y allows.
        let expected = if key == b"y" {
            pair("allowed", "person")
        } else {
            pair("denied", "person")
        };
        assert_eq!(last_answers(&fx), [expected], "{:?}", done.transcript.len());
    });
}
