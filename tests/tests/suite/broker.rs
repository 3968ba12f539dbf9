//! The broker's decisions end to end: `sluice run` with a policy extending
//! `default` whose `[broker]` rules point at a tree outside the workspace (see
//! `sluice_tests::broker`), and the probe asking for files there through the
//! client SDK: allow, ask, deny, writes, missing files, symlinks planted in the
//! workspace, sluice's protected paths, kinds of files, and what a served
//! descriptor allows beyond the access asked.
//!
//! Each test has its control: the sandbox itself cannot read the tree (so a
//! served file really came from the broker), and the same request on an allowed
//! path is served where the attack is refused. Races, load and the raw wire are
//! in `broker_races.rs` and `broker_wire.rs`; `sluice open` and the SDK example
//! in `broker_clients.rs`; served directories in `broker_dirs.rs`.

use std::fs;
use std::path::Path;

use sluice_tests::broker::{
    assert_file, ALLOWED_SAME, CONFIG_SECRET, DENIED_SECRET, DRAFT, EXISTING, NOTES, QUESTION,
    UNRULED,
};
use sluice_tests::{execute, Fixture, Outcome, CANARY_VALUE};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// A fixture with the broker's tree and its policy.
pub(super) fn fixture() -> (Fixture, String) {
    sluice_tests::broker::fixture(PROBE)
}

#[test]
fn an_allowed_file_is_served_that_the_sandbox_cannot_open_itself() {
    let (fx, policy) = fixture();
    let notes = fx.brokered("allowed/notes.txt");
    // Control: outside sluice the file is readable and there is no broker;
    // inside, the sandbox cannot open it itself.
    fx.direct(&["read", &notes]).assert_ok();
    fx.direct(&["broker-read", &notes])
        .assert_broker_error()
        .assert_says("not running under sluice");
    fx.brokered_run(&policy, &[], &["read", &notes])
        .assert_blocked();

    fx.brokered_run(&policy, &[], &["broker-read", &notes])
        .assert_ok()
        .assert_says(&NOTES.escape_debug().to_string());
    // A relative path is the requester's: resolved against its working
    // directory, the workspace.
    fx.brokered_run(&policy, &[], &["broker-read", "../broker/allowed/same.txt"])
        .assert_ok()
        .assert_says(&ALLOWED_SAME.escape_debug().to_string());
}

#[test]
fn ask_rules_follow_approve() {
    let (fx, policy) = fixture();
    let question = fx.brokered("asked/question.txt");
    // Control: --approve allow serves it.
    fx.brokered_run(
        &policy,
        &["--approve", "allow"],
        &["broker-read", &question],
    )
    .assert_ok()
    .assert_says(&QUESTION.escape_debug().to_string());

    fx.brokered_run(&policy, &[], &["broker-read", &question])
        .assert_blocked()
        .assert_says("non-interactive-default");
    fx.brokered_run(&policy, &["--approve", "deny"], &["broker-read", &question])
        .assert_blocked()
        .assert_says("non-interactive-default");
    fx.brokered_run(&policy, &[], &["broker-query", &question, "read"])
        .assert_ok()
        .assert_says("would-ask");
    // A path under no rule of the test falls to the default policy's
    // `ask = ["/"]`: asked too.
    let unruled = fx.brokered("unruled/other.txt");
    fx.brokered_run(&policy, &[], &["broker-read", &unruled])
        .assert_blocked();
    fx.brokered_run(&policy, &["--approve", "allow"], &["broker-read", &unruled])
        .assert_ok()
        .assert_says(&UNRULED.escape_debug().to_string());
}

#[test]
fn a_deny_rule_refuses_whatever_approve_says() {
    let (fx, policy) = fixture();
    fx.brokered_run(
        &policy,
        &[],
        &["broker-read", &fx.brokered("allowed/notes.txt")],
    )
    .assert_ok();
    for approve in ["deny", "allow"] {
        fx.brokered_run(
            &policy,
            &["--approve", approve],
            &["broker-read", &fx.brokered("denied/secret.txt")],
        )
        .assert_blocked()
        .assert_says("denied by rule deny");
    }
    fx.brokered_run(
        &policy,
        &[],
        &["broker-query", &fx.brokered("denied/secret.txt"), "read"],
    )
    .assert_blocked();
}

#[test]
fn a_missing_file_is_not_found_where_allowed_and_denied_where_denied() {
    let (fx, policy) = fixture();
    fx.brokered_run(
        &policy,
        &[],
        &["broker-read", &fx.brokered("allowed/no-such-file")],
    )
    .assert_not_found();
    // Under deny, "missing" and "present" get the same answer: the broker is
    // no oracle for what exists there.
    let missing = fx.brokered_run(
        &policy,
        &[],
        &["broker-read", &fx.brokered("denied/no-such-file")],
    );
    missing.assert_blocked();
    let present = fx.brokered_run(
        &policy,
        &[],
        &["broker-read", &fx.brokered("denied/secret.txt")],
    );
    present.assert_blocked();
    let reason = |out: &Outcome, name: &str| {
        let line = out.status_line().replace(name, "NAME");
        // The requester's pid differs from run to run.
        let (head, rest) = line.split_once("(pid ").expect("a pid in the status line");
        let rest = rest.split_once(')').map_or("", |(_, rest)| rest);
        format!("{head}(pid){rest}")
    };
    assert_eq!(
        reason(&missing, "no-such-file"),
        reason(&present, "secret.txt"),
        "a missing and a present denied file are answered differently"
    );
}

#[test]
fn writes_are_served_only_where_a_rule_grants_writing() {
    let (fx, policy) = fixture();
    let new = fx.brokered("writable/new.txt");
    let existing = fx.brokered("writable/existing.txt");
    // Controls: create and truncate under allow_write.
    fx.brokered_run(&policy, &[], &["broker-write", &new, "created", "--create"])
        .assert_ok();
    assert_file(&new, "created");
    fx.brokered_run(
        &policy,
        &[],
        &["broker-write", &existing, "replaced", "--truncate"],
    )
    .assert_ok();
    assert_file(&existing, "replaced");
    fx.brokered_run(&policy, &[], &["broker-query", &existing, "write"])
        .assert_ok()
        .assert_says("allowed");
    // Without --create a missing file stays missing.
    let absent = fx.brokered("writable/absent.txt");
    fx.brokered_run(&policy, &[], &["broker-write", &absent, "x"])
        .assert_not_found();
    assert!(!Path::new(&absent).exists());

    // `allow` is read only: no write, create or truncate.
    let notes = fx.brokered("allowed/notes.txt");
    for flags in [&[][..], &["--truncate"][..], &["--append"][..]] {
        let mut action = vec!["broker-write", notes.as_str(), "pwned"];
        action.extend_from_slice(flags);
        fx.brokered_run(&policy, &[], &action)
            .assert_blocked()
            .assert_says("grants read only");
    }
    let created = fx.brokered("allowed/created.txt");
    fx.brokered_run(
        &policy,
        &[],
        &["broker-write", &created, "pwned", "--create"],
    )
    .assert_blocked();
    assert!(!Path::new(&created).exists(), "{created} was created");
    assert_file(&notes, NOTES);

    // `ask` is read only even when the answer is allow; `ask_write` is not.
    let question = fx.brokered("asked/question.txt");
    fx.brokered_run(
        &policy,
        &["--approve", "allow"],
        &["broker-write", &question, "pwned", "--truncate"],
    )
    .assert_blocked()
    .assert_says("grants read only");
    assert_file(&question, QUESTION);
    let draft = fx.brokered("asked-writable/draft.txt");
    fx.brokered_run(
        &policy,
        &[],
        &["broker-write", &draft, "pwned", "--truncate"],
    )
    .assert_blocked();
    assert_file(&draft, DRAFT);
    fx.brokered_run(
        &policy,
        &["--approve", "allow"],
        &["broker-write", &draft, "edited", "--truncate"],
    )
    .assert_ok();
    assert_file(&draft, "edited");

    // The default policy's `ask = ["/"]` grants reading only.
    let unruled = fx.brokered("unruled/other.txt");
    fx.brokered_run(
        &policy,
        &["--approve", "allow"],
        &["broker-write", &unruled, "pwned"],
    )
    .assert_blocked();
    assert_file(&unruled, UNRULED);
    let secret = fx.brokered("denied/secret.txt");
    fx.brokered_run(
        &policy,
        &["--approve", "allow"],
        &["broker-write", &secret, "pwned", "--truncate"],
    )
    .assert_blocked();
    assert_file(&secret, DENIED_SECRET);
}

#[test]
fn existing_writable_file_keeps_its_content_without_truncate() {
    // Control for the truncate case above: without --truncate the broker does
    // not truncate (the request carries exactly the flags asked for).
    let (fx, policy) = fixture();
    let existing = fx.brokered("writable/existing.txt");
    fx.brokered_run(&policy, &[], &["broker-write", &existing, "OLD"])
        .assert_ok();
    let mut expected = String::from("OLD");
    expected.push_str(&EXISTING[3..]);
    assert_file(&existing, &expected);
}

#[test]
fn a_symlink_planted_in_the_workspace_is_judged_by_its_target() {
    let (fx, policy) = fixture();
    let run = |action: &[&str]| fx.brokered_run(&policy, &["--approve", "allow"], action);
    // Controls: links to allowed files and directories are followed and served.
    run(&[
        "symlink",
        &fx.brokered("allowed/notes.txt"),
        &fx.ws("to-notes"),
        "+",
        "broker-read",
        &fx.ws("to-notes"),
    ])
    .assert_ok()
    .assert_says(&NOTES.escape_debug().to_string());
    run(&[
        "symlink",
        &fx.brokered("writable"),
        &fx.ws("to-writable"),
        "+",
        "broker-write",
        &fx.ws("to-writable/via-link.txt"),
        "created",
        "--create",
    ])
    .assert_ok();
    assert_file(&fx.brokered("writable/via-link.txt"), "created");

    // The workspace is allow_write (default policy), but the links lead out of it.
    run(&[
        "symlink",
        &fx.brokered("denied/secret.txt"),
        &fx.ws("to-secret"),
        "+",
        "broker-read",
        &fx.ws("to-secret"),
    ])
    .assert_blocked()
    .assert_says("denied by rule deny");
    run(&["broker-write", &fx.ws("to-secret"), "pwned", "--truncate"]).assert_blocked();
    run(&[
        "symlink",
        &fx.brokered("denied"),
        &fx.ws("to-denied"),
        "+",
        "broker-read",
        &fx.ws("to-denied/secret.txt"),
    ])
    .assert_blocked();
    run(&[
        "broker-write",
        &fx.ws("to-denied/planted.txt"),
        "pwned",
        "--create",
    ])
    .assert_blocked();
    // Write access through a link to a read-only rule's file.
    run(&[
        "symlink",
        &fx.brokered("allowed/notes.txt"),
        &fx.ws("to-notes-w"),
        "+",
        "broker-write",
        &fx.ws("to-notes-w"),
        "pwned",
        "--truncate",
    ])
    .assert_blocked();
    // `..` out of the workspace is resolved too.
    run(&[
        "broker-read",
        &format!("{}/../broker/denied/secret.txt", fx.ws("")),
    ])
    .assert_blocked();
    run(&[
        "broker-read",
        &format!("{}/../broker/allowed/notes.txt", fx.ws("")),
    ])
    .assert_ok();
    // A link to the supervisor's own /proc entries.
    run(&[
        "symlink",
        "/proc/self/environ",
        &fx.ws("to-environ"),
        "+",
        "broker-read",
        &fx.ws("to-environ"),
    ])
    .assert_blocked();

    assert_file(&fx.brokered("denied/secret.txt"), DENIED_SECRET);
    assert_file(&fx.brokered("allowed/notes.txt"), NOTES);
    assert!(!Path::new(&fx.brokered("denied/planted.txt")).exists());
}

#[test]
fn protected_paths_are_refused_whatever_the_rules_say() {
    let fx = Fixture::with_broker(PROBE);
    // Rules that would serve all of it: the whole fixture (audit and config
    // directories included), every process's environment, all of /sys.
    let root = fx.root().to_str().unwrap().to_owned();
    let policy = fx.broker_policy(&[
        ("allow", &root),
        ("allow", "/proc/*/environ"),
        ("allow", "/proc/self"),
        ("allow", "/sys"),
    ]);
    let run = |action: &[&str]| fx.brokered_run(&policy, &["--approve", "allow"], action);
    // Control: the rule over the whole fixture serves a file under no other rule.
    run(&["broker-read", &fx.brokered("unruled/other.txt")])
        .assert_ok()
        .assert_says(&UNRULED.escape_debug().to_string());
    // Control: /proc and /sys are real, readable files for the sandbox itself.
    run(&["read", "/proc/self/environ"]).assert_ok();

    let audit_dir = fx.audit_dir().display().to_string();
    let audit_file = format!("{audit_dir}/{{session}}.jsonl");
    let attacks: [(&str, &[&str]); 10] = [
        (
            "the supervisor's environment",
            &["broker-read", "/proc/self/environ"],
        ),
        (
            "the supervisor's environment by pid",
            &["broker-read", "/proc/{ppid}/environ"],
        ),
        ("a magic link", &["broker-read", "/proc/self/fd/0"]),
        (
            "the supervisor's root",
            &["broker-read", "/proc/self/root/etc/hostname"],
        ),
        (
            "kernel state",
            &["broker-read", "/sys/kernel/uevent_seqnum"],
        ),
        ("this session's audit record", &["broker-read", &audit_file]),
        ("the audit directory", &["broker-read", &audit_dir]),
        (
            "appending to the audit record",
            &["broker-write", &audit_file, "{}\n", "--append"],
        ),
        (
            "sluice's configuration",
            &[
                "broker-read",
                &format!("{}/remembered.toml", fx.config_dir().display()),
            ],
        ),
        (
            "the session's private directory",
            &["broker-read", "{tmpdir}/../private"],
        ),
    ];
    for (name, action) in attacks {
        let out = run(action);
        assert!(
            out.code() == 1 && out.status_line().starts_with("BLOCKED "),
            "{name}: expected the broker to refuse\n{out}"
        );
        out.assert_no_secret();
        assert!(!out.stdout.contains(CANARY_VALUE), "{name}\n{out}");
        assert!(
            !out.stdout.contains("policy_digest"),
            "{name}: the audit record leaked\n{out}"
        );
        assert!(
            !out.status_line().contains("(rule "),
            "{name}: a rule decided, not the protection\n{out}"
        );
    }
    assert_eq!(
        fs::read_to_string(fx.config_dir().join("remembered.toml")).unwrap(),
        CONFIG_SECRET
    );
    // A link in the workspace to the audit directory is refused too.
    run(&[
        "symlink",
        &fx.audit_dir().display().to_string(),
        &fx.ws("to-audit"),
        "+",
        "broker-read",
        &format!("{}/{{session}}.jsonl", fx.ws("to-audit")),
    ])
    .assert_blocked();
}

#[test]
fn only_regular_files_and_directories_are_served() {
    let (fx, policy) = fixture();
    let fifo = fx.brokered("allowed/fifo");
    let c = std::ffi::CString::new(fifo.as_str()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {fifo}"
    );
    let device = fx.brokered("allowed/null");
    let c = std::ffi::CString::new(device.as_str()).unwrap();
    // SAFETY: c is a valid path; the device is /dev/null's (1, 3).
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(rc, 0, "mknod {device}: {}", std::io::Error::last_os_error());

    // In one session: the FIFO (which would block an open for reading) and
    // the device are refused, and the broker goes on serving.
    let script = format!(
        "{p} broker-read {fifo}; {p} broker-read {device}; {p} broker-read {notes}",
        p = fx.probe_path(),
        notes = fx.brokered("allowed/notes.txt")
    );
    let mut cmd = fx.sluice_command(&["--policy", &policy], &["/bin/sh", "-c", &script]);
    cmd.env("SLUICE_LOG", "warn");
    let out = execute(cmd);
    out.assert_ok()
        .assert_says(&NOTES.escape_debug().to_string());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("ERROR ") && lines[0].contains("only regular files"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("ERROR ") && lines[1].contains("only regular files"),
        "{out}"
    );
}

/// Mode, modification time and the probe's extended attribute of `path`.
fn metadata_of(path: &str) -> (u32, i64, i64, Option<Vec<u8>>) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).unwrap();
    let c_path = std::ffi::CString::new(path).unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: c_path is NUL-terminated; buf is writable for its length.
    let n = unsafe {
        libc::getxattr(
            c_path.as_ptr(),
            c"user.sluice".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let xattr = (n >= 0).then(|| buf[..n as usize].to_vec());
    (m.mode(), m.mtime(), m.mtime_nsec(), xattr)
}

/// The owner of a file may change its mode, times and attributes through
/// any descriptor of it, a read-only one too; what the kernel checks is the
/// mount. So the broker opens what it grants for reading only in a
/// read-only copy of the mount tree (`broker/readonly.rs`). Control: a
/// descriptor granted for writing changes them.
#[test]
fn a_read_only_descriptor_from_the_broker_cannot_change_the_files_metadata() {
    let (fx, policy) = fixture();
    let writable = fx.brokered("writable/existing.txt");
    let before = metadata_of(&writable);
    fx.brokered_run(&policy, &[], &["broker-meta", &writable, "write"])
        .assert_ok();
    assert_ne!(
        metadata_of(&writable),
        before,
        "the control changed nothing"
    );
    // An `allow` rule grants reading, and so does a person; the served
    // descriptor must not be a way to change the file's mode, times or
    // attributes. Nor in the workspace, where the program could by name.
    for path in [
        fx.brokered("allowed/notes.txt"),
        fx.brokered("asked/question.txt"),
        fx.brokered("writable/existing.txt"),
        fx.ws("README.md"),
    ] {
        let before = metadata_of(&path);
        let out = fx.brokered_run(&policy, &["--approve", "allow"], &["broker-meta", &path]);
        assert_eq!(
            metadata_of(&path),
            before,
            "{path}: metadata changed\n{out}"
        );
        out.assert_blocked();
        assert_eq!(
            out.stdout.matches("Read-only file system").count(),
            4,
            "{out}"
        );
    }
}

#[test]
fn files_the_broker_refuses_keep_their_metadata() {
    // Not the broker's doing, but what its `deny` rules are worth: the
    // sandbox must not change by name the mode, times or attributes of files
    // it may neither open nor ask for.
    let (fx, _) = fixture();
    fx.sluice(&[], &["meta", &fx.ws("README.md")]).assert_ok();
    for path in [
        fx.brokered("denied/secret.txt"),
        fx.brokered("allowed/notes.txt"),
        fx.outside("secret.txt"),
        fx.home(".ssh/id_rsa"),
    ] {
        let before = metadata_of(&path);
        let out = fx.sluice(&[], &["meta", &path]);
        assert_eq!(
            metadata_of(&path),
            before,
            "{path}: metadata changed from the sandbox\n{out}"
        );
        out.assert_blocked();
    }
}

#[test]
fn the_broker_keeps_what_the_default_policy_protects() {
    // The built-in policy alone: the workspace is allow_write for the broker,
    // but its secrets, hooks and configuration are not, nor the home's.
    let fx = Fixture::new(PROBE);
    fx.sluice(&[], &["broker-read", &fx.ws("README.md")])
        .assert_ok();
    fx.sluice(&[], &["broker-write", &fx.ws("new.txt"), "x", "--create"])
        .assert_ok();
    fx.sluice(&[], &["broker-read", &fx.ws(".git/hooks/pre-commit")])
        .assert_ok();
    fx.sluice(
        &["--approve", "allow"],
        &["broker-read", &fx.home("notes.txt")],
    )
    .assert_ok();

    let before = fx.snapshot();
    let approve = ["--approve", "allow"];
    let attacks: [&[&str]; 10] = [
        &["broker-read", &fx.ws(".env")],
        &["broker-read", &fx.ws(".env.local")],
        &["broker-write", &fx.ws(".env"), "pwned", "--truncate"],
        &[
            "broker-write",
            &fx.ws(".git/hooks/pre-commit"),
            "pwned",
            "--truncate",
        ],
        &[
            "broker-write",
            &fx.ws(".git/hooks/post-checkout"),
            "pwned",
            "--create",
        ],
        &["broker-write", &fx.ws(".git/config"), "pwned", "--append"],
        &["broker-read", &fx.home(".ssh/id_rsa")],
        &["broker-read", &fx.home(".aws/credentials")],
        &["broker-read", &fx.home(".bash_history")],
        &["broker-write", &fx.home(".bashrc"), "pwned", "--create"],
    ];
    for action in attacks {
        fx.sluice(&approve, action).assert_blocked();
    }
    fx.assert_unchanged(&before);
    assert!(!Path::new(&fx.home(".bashrc")).exists());
    assert!(!Path::new(&fx.ws(".git/hooks/post-checkout")).exists());
}
