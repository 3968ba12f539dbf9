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

/// `python3 -c script` in the workspace, under `sluice run SLUICE_ARGS`
/// or (`None`) outside sluice.
fn python(fx: &Fixture, script: &str, sluice: Option<&[&str]>) -> Outcome {
    let argv = ["/usr/bin/python3", "-c", script];
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
    let out = python(&fx, FULL_TABLE, None);
    assert!(out.status.success(), "{out}");
    assert_eq!(out.stdout, "full: EMFILE\none free: opened\n", "{out}");
}

/// Under `default` (the guard on) and `--transparent`: the same answers.
#[test]
fn a_write_open_the_program_has_no_room_for_is_answered_emfile() {
    let fx = Fixture::new(PROBE);
    for args in [&[][..], &["--transparent"][..]] {
        let out = python(&fx, FULL_TABLE, Some(args));
        assert!(out.status.success(), "{args:?}: {out}");
        assert_eq!(
            out.stdout, "full: EMFILE\none free: opened\n",
            "{args:?}: {out}"
        );
    }
}

/// Opens the null device for writing in every way the guard's fast path
/// serves it (`broker::guard::null`) and the ways it leaves to the
/// connector, and prints what each gave: whether it is the null device, its
/// access mode, `O_APPEND`, close-on-exec, what a write returns; or the
/// error.
const NULL_OPENS: &str = r#"
import ctypes, errno, fcntl, os, stat
libc = ctypes.CDLL(None, use_errno=True)
def raw_open(path, flags):
    fd = libc.open(path.encode(), flags, 0o644)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "open")
    return fd
def show(label, path, flags):
    try:
        fd = raw_open(path, flags)
    except OSError as e:
        print(label, errno.errorcode[e.errno])
        return
    st = os.fstat(fd)
    null = stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    fl = fcntl.fcntl(fd, fcntl.F_GETFL)
    cloexec = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
    try:
        wrote = os.write(fd, b"gone")
    except OSError as e:
        wrote = errno.errorcode[e.errno]
    print(label, null, fl & os.O_ACCMODE, bool(fl & os.O_APPEND), cloexec, wrote)
    os.close(fd)
show("write-create-truncate", "/dev/null", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
show("read-write-append", "/dev/null", os.O_RDWR | os.O_APPEND)
show("close-on-exec", "/dev/null", os.O_WRONLY | os.O_CLOEXEC)
os.symlink("/dev/null", "null-link")
show("through-a-symlink", "null-link", os.O_WRONLY)
show("exclusive", "/dev/null", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
show("directory", "/dev/null", os.O_WRONLY | os.O_DIRECTORY)
show("read", "/dev/null", os.O_RDONLY)
"#;

/// The null device opened for writing is served by the supervisor without
/// the connector; the program gets exactly what the kernel gives outside
/// sluice (the device, with the access, flags and errors asked), under
/// `default` and `--transparent`. Control: outside sluice.
#[test]
fn a_write_open_of_the_null_device_answers_as_the_kernel_does() {
    let fx = Fixture::new(PROBE);
    let outside = python(&fx, NULL_OPENS, None);
    assert!(outside.status.success(), "{outside}");
    assert!(
        outside
            .stdout
            .starts_with("write-create-truncate True 1 False False 4\n"),
        "{outside}"
    );
    for args in [&[][..], &["--transparent"][..]] {
        let fx = Fixture::new(PROBE);
        let out = python(&fx, NULL_OPENS, Some(args));
        assert!(out.status.success(), "{args:?}: {out}");
        assert_eq!(out.stdout, outside.stdout, "{args:?}: {out}");
    }
}

/// A policy whose sandbox may read the null device but not write it: the
/// fast path gives no writable one (`EACCES`, as the connector gets from
/// Landlock). Controls: reading it works, and so does writing the
/// workspace.
#[test]
fn the_null_device_is_not_served_for_writing_where_the_sandbox_may_only_read_it() {
    let fx = Fixture::new(PROBE);
    let policy = fx.write_policy(
        "null-read-only.toml",
        r#"
[filesystem]
execute = ["/usr", "/bin", { path = "/lib", optional = true }, { path = "/lib64", optional = true }]
read = ["/etc", "/proc", "/dev/null"]
write = ["$WORKSPACE", "$TMPDIR"]
protect = ["**/.git/hooks/*"]
"#,
    );
    let script = r#"
import errno, os
for label, flags in [("write", os.O_WRONLY), ("read-write", os.O_RDWR), ("read", os.O_RDONLY)]:
    try:
        os.close(os.open("/dev/null", flags))
        print(label, "opened")
    except OSError as e:
        print(label, errno.errorcode[e.errno])
fd = os.open("written", os.O_WRONLY | os.O_CREAT, 0o644)
print("workspace", os.write(fd, b"x"))
"#;
    let out = python(&fx, script, Some(&["--policy", &policy]));
    assert!(out.status.success(), "{out}");
    assert_eq!(
        out.stdout, "write EACCES\nread-write EACCES\nread opened\nworkspace 1\n",
        "{out}"
    );
}
