//! Approval prompts end to end, on a real pseudo-terminal.

use sluice_tests::pty::Terminal;
use sluice_tests::Fixture;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
const PROMPT: &str = "sluice: the sandboxed program asks for a file";
const READY: &str = "without an answer) ? ";

fn fixture() -> (Fixture, String) {
    sluice_tests::broker::fixture(PROBE)
}

fn session(fx: &Fixture, policy: &str, sluice_args: &[&str], action: &[&str]) -> Terminal {
    let mut args = vec!["--policy", policy];
    args.extend_from_slice(sluice_args);
    let mut program = vec![fx.probe.to_str().unwrap()];
    program.extend_from_slice(action);
    Terminal::spawn(fx.sluice_command(&args, &program), 24, 100)
}

#[test]
fn smoke() {
    let (fx, policy) = fixture();
    let q = fx.brokered("asked/question.txt");
    let mut t = session(&fx, &policy, &[], &["broker-read", &q, "+", "broker-read", &q]);
    t.expect(PROMPT);
    t.expect(READY);
    t.send(b"y");
    t.expect("allowed once");
    t.expect(PROMPT);
    t.expect(READY);
    t.send(b"n");
    let done = t.wait();
    println!("{}", done.transcript.escape_debug());
    assert_eq!(done.code, 1);
}
