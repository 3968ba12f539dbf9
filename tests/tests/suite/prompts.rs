//! Approval prompts end to end: `sluice run` on a real pseudo-terminal
//! ([`sluice_tests::pty`]), the probe asking for files under `ask` rules
//! through the broker, and the test reading the prompt and typing answers as
//! a person would. Each choice, the timeout, queued and identical requests,
//! the rate limit, requests served by rule while a prompt waits, and the
//! audit record of each answer. The attacks on the prompt (a fake prompt
//! answered by the program, TIOCSTI, escape sequences in the path) are in
//! `prompt_attacks.rs`; the relay itself in `terminal.rs`.
//!
//! The broker fixture's `asked/` directory is under an `ask` rule (read
//! only), `unruled/` under the default policy's `ask = ["/"]`, `allowed/`
//! under `allow`.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::audit::{decisions, decisions_about, records, sessions};
use sluice_tests::broker::{QUESTION, UNRULED};
use sluice_tests::pty::Terminal;
use sluice_tests::Fixture;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
/// The first line of every prompt.
const PROMPT: &str = "sluice: the sandboxed program asks for a file";
/// The end of a prompt's status line: the prompt is drawn whole.
const READY: &str = "without an answer) ? ";
/// How the line that replaces an answered prompt starts.
const ANSWERED: &str = "sluice:\x1b[0m ";

fn fixture() -> (Fixture, String) {
    sluice_tests::broker::fixture(PROBE)
}

/// The probe inside `sluice run --policy POLICY SLUICE_ARGS` on a terminal.
fn session(fx: &Fixture, policy: &str, sluice_args: &[&str], action: &[&str]) -> Terminal {
    let mut args = vec!["--policy", policy];
    args.extend_from_slice(sluice_args);
    let mut program = vec![fx.probe.to_str().unwrap()];
    program.extend_from_slice(action);
    Terminal::spawn(fx.sluice_command(&args, &program), 24, 100)
}

/// The probe reading `q` through the broker twice, on a terminal.
fn reading_twice(fx: &Fixture, policy: &str, q: &str) -> Terminal {
    session(fx, policy, &[], &["broker-read", q, "+", "broker-read", q])
}

/// Waits for the next prompt; returns its text (up to the status line).
#[track_caller]
fn next_prompt(t: &mut Terminal) -> String {
    t.expect(PROMPT);
    t.expect(READY)
}

/// The path a prompt shows.
fn prompted_path(prompt: &str) -> &str {
    prompt
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("path     "))
        .expect("a path line")
        .trim_end()
}

/// The decisions of the fixture's last session.
#[track_caller]
fn last_session(fx: &Fixture) -> Vec<Value> {
    let all = sessions(fx);
    let last = all.last().expect("an audited session");
    records(fx, last)
}

/// `(decision, by)` of each decision about `path`, in order.
fn answers(records: &[Value], path: &str) -> Vec<(String, String)> {
    decisions_about(records, path)
        .iter()
        .map(|r| {
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

/// Waits until `path` exists (made by the sandboxed probe).
#[track_caller]
fn wait_for_file(path: &Path) {
    let guard = Instant::now() + Duration::from_secs(120);
    while !path.exists() {
        assert!(Instant::now() < guard, "{} never appeared", path.display());
        thread::sleep(Duration::from_millis(10));
    }
}

/// The number of files in `dir` whose name ends with `suffix`.
fn marks(dir: &Path, suffix: &str) -> usize {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn allow_once_serves_that_request_only() {
    let (fx, policy) = fixture();
    let q = fx.brokered("asked/question.txt");
    let mut t = reading_twice(&fx, &policy, &q);
    let prompt = next_prompt(&mut t);
    assert_eq!(prompted_path(&prompt), q);
    assert!(prompt.contains("access   read"), "{prompt}");
    assert!(
        prompt.contains(&format!("rule     ask \"{}\"", fx.brokered("asked"))),
        "{prompt}"
    );
    assert!(prompt.contains("/ws/bin/sluice-probe"), "{prompt}");
    t.send(b"y");
    t.expect("allowed once");
    t.expect(&format!("OK read {} bytes", QUESTION.len()));
    // Once is once: the same request asks again.
    next_prompt(&mut t);
    t.send(b"n");
    t.expect(&format!("{ANSWERED}denied: "));
    let done = t.wait();
    assert_eq!(done.code, 1, "{}", done.transcript);
    let records = last_session(&fx);
    assert_eq!(
        answers(&records, &q),
        [pair("allowed", "person"), pair("denied", "person")]
    );
}

#[test]
fn deny_once_enter_and_any_other_key_deny() {
    let (fx, policy) = fixture();
    let q = fx.brokered("asked/question.txt");
    for key in [&b"n"[..], b"\r", b"x", b"\x03", "é".as_bytes()] {
        let mut t = session(&fx, &policy, &[], &["broker-read", &q]);
        next_prompt(&mut t);
        t.send(key);
        t.expect(&format!("{ANSWERED}denied: "));
        let done = t.wait();
        assert_eq!(done.code, 1, "key {key:?}\n{}", done.transcript);
        assert_eq!(answers(&last_session(&fx), &q), [pair("denied", "person")]);
    }
    // A function key (an escape sequence, as the terminal's replies are)
    // answers nothing: the key after it does.
    let mut t = session(&fx, &policy, &[], &["broker-read", &q]);
    next_prompt(&mut t);
    t.send(b"\x1b[A\x1bOP\x1b[15~y");
    t.expect(&format!("{ANSWERED}allowed once: "));
    assert_eq!(t.wait().code, 0);
    assert_eq!(answers(&last_session(&fx), &q), [pair("allowed", "person")]);
    // Deny once is not remembered: the next session (no terminal) follows
    // --approve.
    fx.brokered_run(&policy, &["--approve", "allow"], &["broker-read", &q])
        .assert_ok();
}

#[test]
fn allow_for_the_session_answers_the_same_file_without_asking() {
    let (fx, policy) = fixture();
    let q = fx.brokered("asked/question.txt");
    let second = fx.brokered("asked/second.txt");
    fs::write(&second, "a second asked file\n").unwrap();
    let mut t = session(
        &fx,
        &policy,
        &[],
        &[
            "broker-read",
            &q,
            "+",
            "broker-read",
            &q,
            "+",
            "broker-read",
            &second,
        ],
    );
    next_prompt(&mut t);
    t.send(b"s");
    t.expect("allowed for this session");
    // The same file again: served without a prompt. Control: another file
    // of the same directory is still asked about.
    let between = t.expect(PROMPT);
    assert_eq!(between.matches("OK read").count(), 2, "{between}");
    let prompt = t.expect(READY);
    assert_eq!(prompted_path(&prompt), second);
    t.send(b"\r");
    let done = t.wait();
    assert_eq!(done.code, 1, "{}", done.transcript);
    let records = last_session(&fx);
    assert_eq!(
        answers(&records, &q),
        [pair("allowed", "person"), pair("allowed", "session")]
    );
    assert_eq!(answers(&records, &second), [pair("denied", "person")]);
}

#[test]
fn allow_for_the_directory_answers_everything_beneath_it() {
    let (fx, policy) = fixture();
    let q = fx.brokered("asked/question.txt");
    let second = fx.brokered("asked/second.txt");
    fs::write(&second, "a second asked file\n").unwrap();
    let other = fx.brokered("unruled/other.txt");
    let mut t = session(
        &fx,
        &policy,
        &[],
        &[
            "broker-read",
            &q,
            "+",
            "broker-read",
            &second,
            "+",
            "broker-read",
            &other,
        ],
    );
    let prompt = next_prompt(&mut t);
    assert!(prompt.contains(&format!(
        "[d] allow everything in {} for",
        fx.brokered("asked")
    )));
    t.send(b"d");
    t.expect("allowed, with its directory, for this session");
    let between = t.expect(PROMPT);
    assert!(between.contains("OK read 20 bytes"), "{between}");
    // Control: another directory is asked about.
    assert_eq!(prompted_path(&t.expect(READY)), other);
    t.send(b"y");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert!(done
        .transcript
        .contains(&UNRULED.escape_debug().to_string()));
    let records = last_session(&fx);
    assert_eq!(answers(&records, &second), [pair("allowed", "session")]);
    assert_eq!(answers(&records, &other), [pair("allowed", "person")]);
}

#[test]
fn allow_always_is_written_to_the_overlay_and_used_by_later_sessions() {
    let (fx, policy) = fixture();
    let q = fx.brokered("asked/question.txt");
    let overlay = fx.config_dir().join("approvals.toml");
    assert!(!overlay.exists());
    // Control: without the overlay, a session without a terminal is denied.
    fx.brokered_run(&policy, &[], &["broker-read", &q])
        .assert_blocked();

    let mut t = reading_twice(&fx, &policy, &q);
    next_prompt(&mut t);
    t.send(b"a");
    t.expect("allowed always");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(
        done.transcript.matches(PROMPT).count(),
        1,
        "{}",
        done.transcript
    );
    let text = fs::read_to_string(&overlay).unwrap();
    assert!(
        text.contains("[broker]") && text.contains(&format!("allow = [\"{q}\"]")),
        "{text}"
    );
    assert_eq!(
        answers(&last_session(&fx), &q),
        [pair("allowed", "person"), pair("allowed", "session")]
    );

    // The next session loads it: served without a terminal, and the audit
    // names the overlay rule.
    fx.brokered_run(&policy, &[], &["broker-read", &q])
        .assert_ok();
    let records = last_session(&fx);
    let decided = decisions_about(&records, &q)[0];
    assert_eq!(decided["by"], "overlay", "{decided}");
    assert!(
        decided["rule"]
            .as_str()
            .unwrap()
            .starts_with(&format!("allow \"{q}\"")),
        "{decided}"
    );
    // On a terminal: no prompt either.
    let t = session(&fx, &policy, &[], &["broker-read", &q]);
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert!(!done.transcript.contains(PROMPT), "{}", done.transcript);
    // Only that file: its neighbour is still asked about (and denied here).
    fs::write(fx.brokered("asked/second.txt"), "x\n").unwrap();
    fx.brokered_run(
        &policy,
        &[],
        &["broker-read", &fx.brokered("asked/second.txt")],
    )
    .assert_blocked();
}

#[test]
fn deny_always_is_written_to_the_overlay_and_holds_against_approve_allow() {
    let (fx, policy) = fixture();
    let q = fx.brokered("asked/question.txt");
    // Control: --approve allow serves it before the person says never.
    fx.brokered_run(&policy, &["--approve", "allow"], &["broker-read", &q])
        .assert_ok();
    let mut t = reading_twice(&fx, &policy, &q);
    next_prompt(&mut t);
    t.send(b"v");
    t.expect("denied always");
    let done = t.wait();
    assert_eq!(done.code, 1, "{}", done.transcript);
    let text = fs::read_to_string(fx.config_dir().join("approvals.toml")).unwrap();
    assert!(text.contains(&format!("deny = [\"{q}\"]")), "{text}");
    fx.brokered_run(&policy, &["--approve", "allow"], &["broker-read", &q])
        .assert_blocked()
        .assert_says("(overlay)");
    assert_eq!(answers(&last_session(&fx), &q), [pair("denied", "overlay")]);
}

#[test]
fn an_unanswered_prompt_times_out_and_denies() {
    let (fx, policy) = fixture();
    let q = fx.brokered("asked/question.txt");
    // The test never types: the only way out is the timeout.
    let mut t = session(
        &fx,
        &policy,
        &["--approve-timeout", "1"],
        &["broker-read", &q],
    );
    t.expect(PROMPT);
    t.expect("denied in 1 s without an answer");
    t.expect(&format!("{ANSWERED}denied: no answer in time"));
    let done = t.wait();
    assert_eq!(done.code, 1, "{}", done.transcript);
    assert!(
        done.transcript.contains("the answer was deny (timeout)"),
        "{}",
        done.transcript
    );
    assert_eq!(answers(&last_session(&fx), &q), [pair("denied", "timeout")]);
}

#[test]
fn identical_requests_share_one_prompt_and_others_queue_behind_it() {
    let (fx, policy) = fixture();
    let q = fx.brokered("asked/question.txt");
    let other = fx.brokered("unruled/other.txt");
    let mut t = session(
        &fx,
        &policy,
        &[],
        &["broker-parallel", "-", &q, &q, &q, &other],
    );
    // Which question comes first is up to the scheduler; each is answered
    // once every request has joined it.
    for round in 0..2 {
        t.expect(PROMPT);
        t.expect("path     ");
        let path = t.expect("\r\n");
        let (count, behind) = match (path == q, round) {
            (true, 0) => ("3 requests", 1),
            (true, _) => ("3 requests", 0),
            (false, 0) => ("1 request", 1),
            (false, _) => ("1 request", 0),
        };
        t.expect(&format!(
            "({count} for this file, {behind} other question(s) queued"
        ));
        t.send(if path == q { b"y" } else { b"n" });
    }
    t.expect("OK parallel served=3 denied=1 other=0");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(
        done.transcript.matches(PROMPT).count(),
        2,
        "{}",
        done.transcript
    );
    let records = last_session(&fx);
    assert_eq!(answers(&records, &q), vec![pair("allowed", "person"); 3]);
    assert_eq!(answers(&records, &other), [pair("denied", "person")]);
}

#[test]
fn a_request_allowed_by_rule_is_served_while_a_prompt_waits() {
    let (fx, policy) = fixture();
    let q = fx.brokered("asked/question.txt");
    let notes = fx.brokered("allowed/notes.txt");
    let marks_dir = fx.ws_dir.join("marks");
    fs::create_dir(&marks_dir).unwrap();
    let mut t = session(
        &fx,
        &policy,
        &[],
        &["broker-parallel", marks_dir.to_str().unwrap(), &q, &notes],
    );
    next_prompt(&mut t);
    // The prompt is open (the asked request has no answer), and the allowed
    // one is served meanwhile.
    wait_for_file(&marks_dir.join("1.served"));
    assert_eq!(
        marks(&marks_dir, ""),
        1,
        "the asked request was answered before the person"
    );
    t.send(b"y");
    t.expect("OK parallel served=2 denied=0");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert!(marks_dir.join("0.served").exists());
    let records = last_session(&fx);
    assert_eq!(answers(&records, &notes), [pair("allowed", "rule")]);
    assert_eq!(answers(&records, &q), [pair("allowed", "person")]);
}

#[test]
fn a_flood_of_questions_is_cut_by_the_rate_limit_and_counted() {
    let (fx, policy) = fixture();
    let paths: Vec<String> = (0..20)
        .map(|i| {
            let p = fx.brokered(&format!("unruled/flood-{i:02}.txt"));
            fs::write(&p, "flood\n").unwrap();
            p
        })
        .collect();
    let marks_dir = fx.ws_dir.join("marks");
    fs::create_dir(&marks_dir).unwrap();
    let mut action = vec!["broker-parallel", marks_dir.to_str().unwrap()];
    action.extend(paths.iter().map(String::as_str));
    let mut t = session(&fx, &policy, &[], &action);
    // 16 questions may wait (the one shown included); the other 4 are
    // denied at once, while the person has answered nothing.
    t.expect(PROMPT);
    t.expect("15 other question(s) queued");
    let guard = Instant::now() + Duration::from_secs(120);
    while marks(&marks_dir, ".denied") < 4 {
        assert!(Instant::now() < guard, "the excess was never denied");
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(marks(&marks_dir, ""), 4);
    // One answer for the directory answers the 15 queued ones.
    t.send(b"d");
    t.expect("OK parallel served=16 denied=4 other=0");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(done.transcript.matches(PROMPT).count(), 1);
    let records = last_session(&fx);
    let by = |who: &str| {
        decisions(&records)
            .iter()
            .filter(|r| r["by"] == who)
            .count()
    };
    assert_eq!((by("rate-limit"), by("person"), by("session")), (4, 1, 15));
    let limited = decisions(&records)
        .into_iter()
        .find(|r| r["by"] == "rate-limit")
        .unwrap();
    assert_eq!(limited["decision"], "denied");
    assert!(
        limited["reason"]
            .as_str()
            .unwrap()
            .contains("rate limit: 16 questions"),
        "{limited}"
    );
    // `sluice audit stats` counts them.
    let stats = sluice_tests::audit::audit(&fx, &["stats"]);
    assert!(stats.stdout.contains("rate-limit"), "{stats}");
}

#[test]
fn under_transparent_a_question_holds_only_its_own_thread() {
    // An unmodified program: one thread opens a file under an `ask` rule
    // (a prompt), the other, once the prompt is up, one a rule allows.
    let (fx, policy) = fixture();
    let q = fx.brokered("asked/question.txt");
    let notes = fx.brokered("allowed/notes.txt");
    let marks_dir = fx.ws_dir.join("marks");
    fs::create_dir(&marks_dir).unwrap();
    let script = "import os, sys, threading, time\n\
         marks, asked, allowed = sys.argv[1:4]\n\
         def mark(name, text):\n\
         \x20   open(os.path.join(marks, name), 'w').write(text)\n\
         def ask():\n\
         \x20   mark('asked.done', open(asked).read())\n\
         t = threading.Thread(target=ask)\n\
         t.start()\n\
         while not os.path.exists(os.path.join(marks, 'go')):\n\
         \x20   time.sleep(0.01)\n\
         mark('allowed.done', open(allowed).read())\n\
         t.join()\n";
    let args = ["--policy", &policy, "--transparent"];
    let program = [
        "/usr/bin/python3",
        "-S",
        "-c",
        script,
        marks_dir.to_str().unwrap(),
        &q,
        &notes,
    ];
    let mut t = Terminal::spawn(fx.sluice_command(&args, &program), 24, 100);
    assert_eq!(prompted_path(&next_prompt(&mut t)), q);
    fs::write(marks_dir.join("go"), "").unwrap();
    // Served while the question waits for its answer.
    wait_for_file(&marks_dir.join("allowed.done"));
    assert!(!marks_dir.join("asked.done").exists());
    t.send(b"y");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    let read = |name: &str| fs::read_to_string(marks_dir.join(name)).unwrap();
    assert_eq!(read("asked.done"), QUESTION);
    assert_eq!(read("allowed.done"), sluice_tests::broker::NOTES);
    let records = last_session(&fx);
    assert_eq!(answers(&records, &notes), [pair("allowed", "rule")]);
    assert_eq!(answers(&records, &q), [pair("allowed", "person")]);
    // Control: answered no, the same open fails as the sandbox fails it
    // (in its thread: the program itself exits 0).
    for name in ["go", "asked.done", "allowed.done"] {
        fs::remove_file(marks_dir.join(name)).unwrap();
    }
    let mut t = Terminal::spawn(fx.sluice_command(&args, &program), 24, 100);
    next_prompt(&mut t);
    fs::write(marks_dir.join("go"), "").unwrap();
    t.send(b"n");
    let done = t.wait();
    assert!(!marks_dir.join("asked.done").exists());
    assert!(marks_dir.join("allowed.done").exists());
    assert!(
        done.transcript.contains("PermissionError"),
        "{}",
        done.transcript
    );
}
