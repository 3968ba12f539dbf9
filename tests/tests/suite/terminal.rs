//! The terminal relay: `sluice run` on a real pseudo-terminal
//! ([`sluice_tests::pty`]) gives the program a pty of its own and relays
//! bytes, modes, window size and Ctrl-C between it and the person's
//! terminal; the program never holds a descriptor of the person's terminal.
//! The output paused and restored around a prompt is tested here too.

use std::process::Command;

use sluice_tests::pty::Terminal;
use sluice_tests::Fixture;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
const PROMPT: &str = "sluice: the sandboxed program asks for a file";
const READY: &str = "without an answer) ? ";
/// What sluice writes before every prompt: attributes off, pastes
/// bracketed (so a paste is never an answer).
const BEFORE_PROMPT: &str = "\x1b[0m\x1b[?2004h";
/// And after it, before the program's next output: pastes as they were.
const AFTER_PROMPT: &str = "\x1b[?2004l";

/// `sh -c SCRIPT` inside `sluice run SLUICE_ARGS` on a terminal.
fn shell(fx: &Fixture, sluice_args: &[&str], script: &str, rows: u16, cols: u16) -> Terminal {
    let cmd = fx.sluice_command(sluice_args, &["/bin/sh", "-c", script]);
    Terminal::spawn(cmd, rows, cols)
}

#[test]
fn an_interactive_program_works_through_the_relay() {
    let fx = Fixture::new(PROBE);
    let script = r#"trap 'echo "caught INT"; exit 3' INT
        while read line; do echo "got: $line"; done"#;
    let mut t = shell(&fx, &[], script, 24, 80);
    t.send(b"hello\r");
    // The program's own terminal echoes (cooked mode, as the person's was)
    // and the program reads whole lines.
    t.expect("hello\r\n");
    t.expect("got: hello");
    t.send(b"second line\r");
    t.expect("got: second line");
    // Ctrl-C is a byte for sluice (raw mode) and a signal for the program,
    // from its own terminal's line discipline.
    t.send(b"\x03");
    t.expect("caught INT");
    let done = t.wait();
    assert_eq!(done.code, 3, "{}", done.transcript);
}

#[test]
fn the_person_terminal_is_raw_during_the_session_and_restored_after() {
    let fx = Fixture::new(PROBE);
    // The program puts its own terminal in raw mode: not the person's.
    let mut t = shell(
        &fx,
        &[],
        "echo started; read x; stty raw -echo; echo done",
        24,
        80,
    );
    let before = t.local_modes();
    // Control: before sluice takes it, the terminal is in cooked mode.
    let cooked = libc::ICANON | libc::ECHO | libc::ISIG;
    assert_eq!(before & cooked, cooked, "{before:o}");
    t.expect("started");
    let during = t.local_modes();
    assert_eq!(during & cooked, 0, "{during:o}");
    t.send(b"\r");
    t.expect("done");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(done.local_modes, before, "the modes were not restored");
}

#[test]
fn the_window_size_reaches_the_program_and_follows_resizes() {
    let fx = Fixture::new(PROBE);
    let mut t = shell(
        &fx,
        &[],
        "stty size; read x; stty size; read y; stty size",
        30,
        100,
    );
    t.expect("30 100");
    t.resize(40, 120);
    // sluice got SIGWINCH before this line was typed, and passes the size
    // on before it passes the line.
    t.send(b"\r");
    t.expect("40 120");
    t.resize(12, 34);
    t.send(b"\r");
    t.expect("12 34");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
}

#[test]
fn the_program_holds_no_descriptor_of_the_persons_terminal() {
    let fx = Fixture::new(PROBE);
    let script = "tty; for fd in 0 1 2; do printf fd$fd=; readlink /proc/self/fd/$fd; done; \
                  echo terminals=$(find /proc/$$/fd -lname '/dev/pts/*' | wc -l)";
    // Control: without sluice, the shell's descriptors are the terminal
    // the test gave it.
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", script]);
    let t = Terminal::spawn(cmd, 24, 80);
    let outer = t.slave_name();
    let done = t.wait();
    assert!(
        done.transcript.contains(&format!("fd0={outer}\r\n")),
        "{}",
        done.transcript
    );

    let t = shell(&fx, &[], script, 24, 80);
    let outer = t.slave_name();
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    let inner = done.transcript.lines().next().unwrap().trim().to_owned();
    assert!(inner.starts_with("/dev/pts/"), "{}", done.transcript);
    assert_ne!(inner, outer, "the program runs on the person's terminal");
    assert!(
        !done.transcript.contains(&format!("{outer}\r")),
        "{}",
        done.transcript
    );
    for fd in 0..3 {
        assert!(
            done.transcript.contains(&format!("fd{fd}={inner}\r\n")),
            "{}",
            done.transcript
        );
    }
    // The shell holds no other terminal descriptor.
    assert!(
        done.transcript.contains("terminals=3\r\n"),
        "{}",
        done.transcript
    );
}

#[test]
fn all_output_reaches_the_terminal_when_the_program_exits_at_once() {
    let fx = Fixture::new(PROBE);
    let t = shell(&fx, &[], "seq 1 30000", 24, 80);
    let done = t.wait();
    assert_eq!(done.code, 0);
    let numbers: Vec<&str> = done
        .transcript
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(numbers.len(), 30000, "lines lost or mangled");
    assert_eq!(numbers.last(), Some(&"30000"));
}

/// The broker fixture, and a shell script's path to the probe.
fn broker_fixture() -> (Fixture, String) {
    sluice_tests::broker::fixture(PROBE)
}

#[test]
fn output_waits_while_a_prompt_is_open_and_resumes_intact() {
    let (fx, policy) = broker_fixture();
    let q = fx.brokered("asked/question.txt");
    // A writer that never stops while the request waits: while the prompt
    // is open its output must not reach the screen, and none may be lost.
    let script = format!(
        "{probe} broker-read {q} > /dev/null & pid=$!; i=0; \
         while kill -0 $pid 2>/dev/null; do echo \"line $i\"; i=$((i+1)); done; echo finished",
        probe = fx.probe.display()
    );
    let mut t = shell(&fx, &["--policy", &policy], &script, 24, 80);
    t.expect(PROMPT);
    let prompt = t.expect(READY);
    t.send(b"y");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert!(
        !prompt.contains("line "),
        "output inside the prompt:\n{prompt}"
    );
    // Between the prompt's first line and its answer, nothing of the program.
    let start = done.transcript.find(PROMPT).unwrap();
    let end = start + done.transcript[start..].find("allowed once").unwrap();
    assert!(
        !done.transcript[start..end].contains("line "),
        "{}",
        &done.transcript[start..end]
    );
    // Every line, in order, each once: nothing lost, nothing interleaved.
    // A line the prompt interrupted ends in the reset sluice writes before
    // the prompt; after the answer sluice writes its text again and the
    // program finishes it: that is the line that counts.
    let mut expected = 0;
    for l in done.transcript.split("\r\n") {
        if l.ends_with(BEFORE_PROMPT) && l.contains("line ") {
            continue;
        }
        let l = l.strip_prefix(AFTER_PROMPT).unwrap_or(l);
        let text = l.rsplit('\r').next().unwrap_or(l);
        if let Some(n) = text.strip_prefix("line ") {
            assert_eq!(n, expected.to_string(), "after line {}", expected);
            expected += 1;
        }
    }
    assert!(expected > 0, "{}", done.transcript);
    assert!(
        done.transcript.ends_with("finished\r\n"),
        "{}",
        done.transcript
    );
}

#[test]
fn a_line_cut_by_a_prompt_is_continued_after_it() {
    let (fx, policy) = broker_fixture();
    let q = fx.brokered("asked/question.txt");
    let script = format!(
        "printf 'half a line, '; {} broker-read {q} > /dev/null; echo 'and the rest'",
        fx.probe.display()
    );
    let mut t = shell(&fx, &["--policy", &policy], &script, 24, 80);
    let before = t.expect(PROMPT);
    // The prompt starts on a line of its own.
    assert!(
        before.ends_with(&format!("half a line, {BEFORE_PROMPT}\r\n\x1b[1m")),
        "{before:?}"
    );
    t.expect(READY);
    t.send(b"n");
    t.expect("denied: ");
    let done = t.wait();
    assert!(
        done.transcript
            .contains(&format!("\r\n{AFTER_PROMPT}half a line, and the rest\r\n")),
        "{:?}",
        done.transcript
    );
}

/// A sluice stacked inside another one leaves the terminal to the outer
/// session (whose program could write to it anyway): no pty of its own, no
/// prompts, and the program still runs on the outer session's terminal.
#[test]
fn a_stacked_sluice_leaves_the_terminal_to_the_outer_session() {
    let fx = Fixture::new(PROBE);
    let sluice = sluice_tests::sluice_bin();
    let inner = [
        sluice.to_str().unwrap(),
        "run",
        "--",
        "/bin/sh",
        "-c",
        "echo inner=$(tty)",
    ];
    let t = Terminal::spawn(fx.sluice_command(&[], &inner), 24, 80);
    let person = t.slave_name();
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    let line = done
        .transcript
        .lines()
        .find_map(|l| l.trim().strip_prefix("inner="))
        .unwrap_or_else(|| panic!("no inner line\n{}", done.transcript))
        .to_owned();
    assert!(line.starts_with("/dev/pts/"), "{}", done.transcript);
    assert_ne!(line, person, "the program runs on the person's terminal");
}

/// Ctrl-Z suspends the whole session, as it would the program on the
/// person's own terminal: the program leads a session of its own (so its
/// terminal alone cannot stop it), and sluice stops it and itself. The
/// person's shell sees the job stopped and `fg` continues both, the program
/// where it was. The shell here is `sh -c 'set -m ...'`: job control, so
/// sluice runs in a process group of its own for the shell to continue.
/// Control: the program's own stop, by its terminal, does not happen.
#[test]
fn ctrl_z_suspends_the_session_and_fg_continues_it() {
    let fx = Fixture::new(PROBE);
    let program = r#"echo ready; read line; echo "got $line""#;
    let cmd = under_job_control(&fx, Some(&[]), program);
    let mut t = Terminal::spawn(cmd, 24, 80);
    t.expect("ready");
    t.send(b"\x1a");
    // The shell's wait returned with sluice stopped; its `fg` continues it.
    t.expect("the job stopped");
    t.send(b"hello\r");
    t.expect("got hello");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert!(done.transcript.contains("status=0"), "{}", done.transcript);
}

/// A prompt drawn over a full-screen program (in the alternate screen) is
/// cleared by the program itself: after the answer its terminal's size
/// changes and changes back, and it draws its screen again on SIGWINCH.
/// Control: a program in the normal screen, where the prompt is a few
/// lines of the scrollback, is left alone.
#[test]
fn a_full_screen_program_is_made_to_redraw_after_a_prompt() {
    for alternate in [true, false] {
        let (fx, policy) = broker_fixture();
        let q = fx.brokered("asked/question.txt");
        let (enter, leave) = match alternate {
            true => (r"printf '\033[?1049h'", r"printf '\033[?1049l'"),
            false => (":", ":"),
        };
        let script = format!(
            "trap 'echo redrawn' WINCH; {enter}; echo drawn; \
             {probe} broker-read {q} > /dev/null; sleep 0.2; {leave}; echo finished",
            probe = fx.probe.display()
        );
        let mut t = shell(&fx, &["--policy", &policy], &script, 24, 80);
        t.expect(PROMPT);
        t.expect(READY);
        t.send(b"y");
        let done = t.wait();
        assert_eq!(done.code, 0, "{}", done.transcript);
        assert!(
            done.transcript.ends_with("finished\r\n"),
            "{}",
            done.transcript
        );
        assert_eq!(
            done.transcript.contains("redrawn"),
            alternate,
            "alternate screen: {alternate}\n{}",
            done.transcript
        );
    }
}

#[test]
fn what_the_program_left_that_garbles_a_prompt_is_reset_and_restored() {
    let (fx, policy) = broker_fixture();
    let q = fx.brokered("asked/question.txt");
    // Line drawing in G0 and G1 shifted in, a scroll region of its own,
    // origin mode, reverse video, the cursor hidden, autowrap off, insert
    // mode, mouse reports on: each garbles, hides or answers a prompt.
    let left =
        "\\033(0\\033)0\\016\\033[3;20r\\033[?6h\\033[?5h\\033[?25l\\033[?7l\\033[4h\\033[?1000h";
    let script = format!(
        "printf '{left}'; printf half; {} broker-read {q} > /dev/null; printf 'after\\n'",
        fx.probe.display()
    );
    let mut t = shell(&fx, &["--policy", &policy], &script, 24, 80);
    let before = t.expect(PROMPT);
    let written = &before[before.rfind("half").expect("the program's text") + 4..];
    for reset in [
        "\x1b(B",
        "\x0f",
        "\x1b[r",
        "\x1b[?6l",
        "\x1b[?5l",
        "\x1b[?25h",
        "\x1b[?7h",
        "\x1b[4l",
        "\x1b[?1000l",
    ] {
        assert!(written.contains(reset), "{reset:?} not in {written:?}");
    }
    // The prompt starts below everything, on a line of its own.
    assert!(written.ends_with("\x1b[999;1H\r\n\x1b[1m"), "{written:?}");
    t.expect(READY);
    t.send(b"n");
    t.expect("denied: ");
    let back = t.expect("after");
    for restore in [
        "\x1b[3;20r",
        "\x1b[?6h",
        "\x1b[?5h",
        "\x1b[?25l",
        "\x1b[?7l",
        "\x1b[4h",
        "\x1b[?1000h",
        "\x1b(0",
        "\x0e",
    ] {
        assert!(back.contains(restore), "{restore:?} not in {back:?}");
    }
    let done = t.wait();
    assert_eq!(done.code, 0, "{:?}", done.transcript);
}

#[test]
fn a_long_attribute_sequence_cut_by_a_prompt_is_replayed_whole() {
    let (fx, policy) = broker_fixture();
    let q = fx.brokered("asked/question.txt");
    // ESC [ with 62 zeros and m: 65 bytes, one more than was once kept.
    let sgr = format!("\x1b[{}m", "0".repeat(62));
    let script = format!(
        "printf '\\033[{}mpartial'; {} broker-read {q} > /dev/null; printf ' rest\\n'",
        "0".repeat(62),
        fx.probe.display()
    );
    let mut t = shell(&fx, &["--policy", &policy], &script, 24, 80);
    t.expect(READY);
    t.send(b"n");
    t.expect("denied: ");
    let back = t.expect(" rest");
    assert!(
        back.ends_with(&format!("{AFTER_PROMPT}{sgr}partial")),
        "{back:?}"
    );
    t.wait();
}

/// `sluice run -- sh -c PROGRAM` under a job-control shell that says when
/// the job stopped and continues it with `fg` (as
/// `ctrl_z_suspends_the_session_and_fg_continues_it`), or
/// (`None`) the program itself under that shell.
pub(super) fn under_job_control(fx: &Fixture, sluice: Option<&[&str]>, program: &str) -> Command {
    let inner = if let Some(args) = sluice {
        fx.sluice_command(args, &["/bin/sh", "-c", program])
    } else {
        let mut direct = Command::new("/bin/sh");
        direct.args(["-c", program]).current_dir(&fx.ws_dir);
        direct
    };
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"set -m; "$@"; echo "the job stopped"; fg >/dev/null; echo "status=$?""#)
        .arg("sh")
        .arg(inner.get_program())
        .args(inner.get_args());
    if let Some(dir) = inner.get_current_dir() {
        cmd.current_dir(dir);
    }
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd
}
