//! Every call the guard serves is answered, whatever the kernel does with
//! the answer. The guard places the descriptor of a file opened for writing
//! in the program with `SECCOMP_ADDFD_FLAG_SEND`, in one step; when the
//! program has no room for it, the kernel refuses to install it and the
//! call must still fail with that error, never wait for ever.

use sluice_tests::{execute, Fixture, Outcome};
use std::process::{Command, Stdio};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// Fills the descriptor table, then opens a file for writing (a call the
/// guard serves under `default`); then frees one slot and opens again. An
/// alarm kills a call left waiting.
const FULL_TABLE: &str = r#"
import errno, os, resource, signal
signal.alarm(60)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
held = []
try:
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    assert e.errno == errno.EMFILE, e
try:
    os.open("written", os.O_WRONLY | os.O_CREAT, 0o644)
    print("full: opened")
except OSError as e:
    print("full:", errno.errorcode[e.errno])
os.close(held.pop())
fd = os.open("written", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"x")
print("one free: opened")
"#;

fn python(fx: &Fixture, sluice: Option<&[&str]>) -> Outcome {
    let argv = ["/usr/bin/python3", "-c", FULL_TABLE];
    let mut cmd = match sluice {
        Some(args) => fx.sluice_command(args, &argv),
        None => {
            let mut cmd = Command::new(argv[0]);
            cmd.args(&argv[1..]).current_dir(&fx.ws_dir);
            cmd
        }
    };
    cmd.stdin(Stdio::null());
    execute(cmd)
}

/// Control: outside sluice the kernel says `EMFILE`, then opens.
#[test]
fn a_full_descriptor_table_refuses_a_write_open_outside_sluice() {
    let fx = Fixture::new(PROBE);
    let out = python(&fx, None);
    assert!(out.status.success(), "{out}");
    assert_eq!(out.stdout, "full: EMFILE\none free: opened\n", "{out}");
}

/// Under `default` (the guard on) and `--transparent`: the same answers.
#[test]
fn a_write_open_the_program_has_no_room_for_is_answered_emfile() {
    let fx = Fixture::new(PROBE);
    for args in [&[][..], &["--transparent"][..]] {
        let out = python(&fx, Some(args));
        assert!(out.status.success(), "{args:?}: {out}");
        assert_eq!(
            out.stdout, "full: EMFILE\none free: opened\n",
            "{args:?}: {out}"
        );
    }
}
