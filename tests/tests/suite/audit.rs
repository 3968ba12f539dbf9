//! The audit record end to end: sessions run through `sluice run` with the
//! probe asking the broker, then read back with `sluice audit` as a reviewer
//! would. (The record's format and chain are unit-tested in the supervisor.)

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::audit::{
    audit, audit_in, decision_about, decisions, json_lines, only_session, pretty, records, sessions,
};
use sluice_tests::broker::NOTES;
use sluice_tests::{execute, session_cgroups, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
/// Liveness guard for waiting on the record to grow: not a speed check.
const PATIENCE: Duration = Duration::from_secs(120);

/// `sh -c` running the probe once per action, each in its own process (so
/// each decision has its own requester), whatever each one's status.
fn script(fx: &Fixture, actions: &[Vec<String>]) -> String {
    let mut text = format!("{} marker session={{session}}", fx.probe_path());
    for action in actions {
        text += &format!("; {} {}", fx.probe_path(), action.join(" "));
    }
    text + "; exit 0"
}

/// Runs `actions` in one session; returns the outcome and the session id.
fn session(
    fx: &Fixture,
    policy: &str,
    approve: &str,
    actions: &[Vec<String>],
) -> (Outcome, String) {
    let script = script(fx, actions);
    let cmd = fx.sluice_command(
        &["--policy", policy, "--approve", approve],
        &["/bin/sh", "-c", &script],
    );
    let out = execute(cmd);
    out.assert_code(0);
    let session = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("OK marker session="))
        .unwrap_or_else(|| panic!("no session marker\n{out}"))
        .to_owned();
    assert!(!session.is_empty(), "SLUICE_SESSION is empty\n{out}");
    (out, session)
}

/// The pids the probe lines name, by the path each asked about (the first
/// absolute path in the line), in order.
fn pids_by_path(out: &Outcome) -> BTreeMap<String, Vec<u64>> {
    let mut pids: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in out.stdout.lines() {
        let Some((head, rest)) = line.split_once(" (pid ") else {
            continue;
        };
        let pid = rest.split(')').next().unwrap().parse().unwrap();
        let path = head
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .unwrap_or_else(|| panic!("no path in {line:?}"));
        pids.entry(path.to_owned()).or_default().push(pid);
    }
    pids
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn is_hash(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Fields a record must have, with their values.
type Expect<'a> = Vec<(&'a str, Value)>;

/// Decision counts as `sluice audit` gives them (other kinds may be counted
/// too).
#[track_caller]
fn assert_counts(counts: &Value, allowed: u64, denied: u64, error: u64) {
    for (key, expected) in [("allowed", allowed), ("denied", denied), ("error", error)] {
        assert_eq!(counts[key], expected, "{key} in {counts}");
    }
}

/// The pids the probe prints are its PID namespace's; a record names each
/// process as the supervisor sees it (its `exe` was read there). The two
/// must correspond one to one.
#[derive(Default)]
struct Pids(std::cell::RefCell<BTreeMap<u64, u64>>);

impl Pids {
    #[track_caller]
    fn check(&self, inside: u64, recorded: &Value) {
        let recorded = recorded.as_u64().expect("a pid");
        let mut seen = self.0.borrow_mut();
        let was = *seen.entry(inside).or_insert(recorded);
        assert_eq!(
            was, recorded,
            "pid {inside} recorded as {was} and {recorded}"
        );
        let names = seen.values().filter(|&&r| r == recorded).count();
        assert_eq!(
            names, 1,
            "pid {recorded} recorded for two processes: {seen:?}"
        );
    }
}

#[track_caller]
fn assert_decision(record: &Value, pid: u64, pids: &Pids, fx: &Fixture, expect: &[(&str, Value)]) {
    let show = || serde_json::to_string_pretty(record).unwrap();
    pids.check(pid, &record["pid"]);
    assert_eq!(record["exe"], fx.probe_path(), "exe\n{}", show());
    assert_eq!(record["client"], "sluice-probe", "{}", show());
    assert_eq!(record["via"], "sdk", "{}", show());
    assert!(record["latency_us"].is_u64(), "latency\n{}", show());
    assert!(record["request_id"].is_u64(), "{}", show());
    for (key, value) in expect {
        assert_eq!(&record[*key], value, "{key}\n{}", show());
    }
}

/// The rule's text as the record gives it: list, pattern, policy file and line.
fn rule_text(fx: &Fixture, list: &str, rel: &str, line: usize) -> Value {
    let policy = fx.root().join("broker.toml");
    Value::from(format!(
        "{list} \"{}\" ({}:{line})",
        fx.brokered(rel),
        policy.display()
    ))
}

#[test]
fn every_decision_is_recorded_with_who_asked_and_who_decided() {
    let fx = Fixture::with_broker(PROBE);
    let policy = fx.broker_policy(&[]);
    let notes = fx.brokered("allowed/notes.txt");
    let secret = fx.brokered("denied/secret.txt");
    let question = fx.brokered("asked/question.txt");
    let missing = fx.brokered("allowed/missing.txt");
    let new = fx.brokered("writable/new.txt");
    let link = fx.ws("to-notes");
    std::os::unix::fs::symlink(&notes, &link).unwrap();
    let record_file = format!("{}/{{session}}.jsonl", fx.audit_dir().display());
    let actions = [
        argv(&["broker-read", &notes]),
        argv(&["broker-read", &secret]),
        argv(&["broker-read", &question]),
        argv(&["broker-read", "/proc/self/environ"]),
        argv(&["broker-read", &missing]),
        argv(&["broker-write", &new, "x", "--create"]),
        argv(&["broker-query", &secret, "read"]),
        argv(&["broker-read", &link]),
        argv(&["broker-read", &record_file]),
    ];
    let (out, first) = session(&fx, &policy, "deny", &actions);
    let record_file = record_file.replace("{session}", &first);
    let by_path = pids_by_path(&out);
    assert_eq!(
        by_path.values().map(Vec::len).sum::<usize>(),
        actions.len(),
        "one pid per request\n{out}"
    );
    let pids: BTreeMap<&str, u64> = by_path.iter().map(|(p, v)| (p.as_str(), v[0])).collect();
    let (out2, second) = session(&fx, &policy, "allow", &[argv(&["broker-read", &question])]);
    out2.assert_ok();

    // The chains verify.
    let verified = audit(&fx, &["verify"]);
    verified.assert_code(0);
    assert!(
        verified
            .stdout
            .contains("2 session(s) verified: 2 ok, 0 running, 0 incomplete, 0 failed"),
        "{verified}"
    );
    let mut listed = sessions(&fx);
    listed.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    let all = records(&fx, &first);
    // seq 0.. without gaps, each record chained to the one before.
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r["seq"], i as u64, "{r}");
        assert_eq!(r["session"], first.as_str(), "{r}");
        assert!(is_hash(&r["hash"]) && is_hash(&r["prev"]), "{r}");
        if i > 0 {
            assert_eq!(r["prev"], all[i - 1]["hash"], "record {i} is not chained");
        }
    }

    // The start record: the policy, its digest, what was enforced, what ran.
    let start = &all[0];
    assert_eq!(start["kind"], "start");
    assert_eq!(start["prev"], "0".repeat(64));
    assert!(is_hash(&start["policy_digest"]), "{start}");
    assert!(
        start["policy"]
            .as_str()
            .is_some_and(|p| p.contains("broker.toml")),
        "{start}"
    );
    let layers = start["enforcement"]["layers"]
        .as_array()
        .expect("enforcement layers");
    for layer in [
        "filesystem",
        "network",
        "scopes",
        "syscalls",
        "namespaces",
        "no_new_privs",
        "capabilities",
        "limits",
    ] {
        let found = layers.iter().find(|l| l["layer"] == layer);
        assert!(
            found.is_some_and(|l| l["status"] == "enforced"),
            "layer {layer} not enforced in the start record: {start}"
        );
    }
    assert_eq!(start["argv"][0], "/bin/sh");
    assert_eq!(start["workspace"], fx.ws(""));
    assert!(start["supervisor_pid"].is_u64() && start["child_pid"].is_u64());

    // One decision per request, nothing else.
    let decided = decisions(&all);
    assert_eq!(decided.len(), actions.len(), "{}", pretty(&decided));
    let null = Value::Null;
    let rule = |list, rel, line| rule_text(&fx, list, rel, line);
    let cases: [(&str, u64, Expect); 7] = [
        (
            &notes,
            pids[notes.as_str()],
            vec![
                ("op", "open".into()),
                ("path_opened", notes.as_str().into()),
                ("access", "read".into()),
                ("decision", "allowed".into()),
                ("by", "rule".into()),
                ("rule", rule("allow", "allowed", 4)),
            ],
        ),
        (
            &question,
            pids[question.as_str()],
            vec![
                ("path_opened", null.clone()),
                ("decision", "denied".into()),
                ("by", "non-interactive-default".into()),
                ("rule", rule("ask", "asked", 6)),
            ],
        ),
        (
            "/proc/self/environ",
            pids["/proc/self/environ"],
            vec![
                ("path_opened", null.clone()),
                ("decision", "denied".into()),
                ("by", "protected".into()),
                ("rule", null.clone()),
            ],
        ),
        (
            &missing,
            pids[missing.as_str()],
            vec![("path_opened", null.clone()), ("decision", "error".into())],
        ),
        (
            &new,
            pids[new.as_str()],
            vec![
                ("path_opened", new.as_str().into()),
                ("access", "write".into()),
                ("flags", serde_json::json!(["create"])),
                ("decision", "allowed".into()),
                ("by", "rule".into()),
                ("rule", rule("allow_write", "writable", 5)),
            ],
        ),
        (
            &record_file,
            pids[record_file.as_str()],
            vec![
                ("path_opened", null.clone()),
                ("decision", "denied".into()),
                ("by", "protected".into()),
                ("rule", null.clone()),
            ],
        ),
        (
            &link,
            pids[link.as_str()],
            vec![
                ("path_opened", notes.as_str().into()),
                ("decision", "allowed".into()),
                ("rule", rule("allow", "allowed", 4)),
            ],
        ),
    ];
    let seen = Pids::default();
    for (path, pid, expect) in &cases {
        assert_decision(decision_about(&all, path), *pid, &seen, &fx, expect);
    }
    // The secret was asked twice, by two processes: an open and a query.
    let about_secret: Vec<&Value> = decided
        .iter()
        .copied()
        .filter(|r| r["path_asked"] == secret.as_str())
        .collect();
    assert_eq!(about_secret.len(), 2, "{}", pretty(&about_secret));
    let secret_pids = &by_path[&secret];
    for (i, (op, record)) in [("open", about_secret[0]), ("query", about_secret[1])]
        .into_iter()
        .enumerate()
    {
        assert_decision(record, secret_pids[i], &seen, &fx, &[]);
        let expect = [
            ("op", Value::from(op)),
            ("path_opened", null.clone()),
            ("decision", "denied".into()),
            ("by", "rule".into()),
            ("rule", rule("deny", "denied", 8)),
        ];
        for (key, value) in expect {
            assert_eq!(record[key], value, "{key}: {record}");
        }
    }
    assert_ne!(about_secret[0]["pid"], about_secret[1]["pid"]);

    // The end record, with the counts of the decisions above.
    let end = all.last().unwrap();
    assert_eq!(end["kind"], "end", "{end}");
    assert_eq!(end["exit"], "exit 0");
    assert_counts(&end["counts"], 3, 5, 1);

    // --approve allow: the same ask is served, decided by the default answer.
    let all2 = records(&fx, &second);
    let asked = decision_about(&all2, &question);
    assert_decision(
        asked,
        pids_by_path(&out2)[&question][0],
        &Pids::default(),
        &fx,
        &[
            ("decision", "allowed".into()),
            ("by", "non-interactive-default".into()),
            ("path_opened", question.as_str().into()),
            ("rule", rule("ask", "asked", 6)),
        ],
    );

    // stats and tail agree with the records.
    let stats = audit(&fx, &["stats", "--json"]);
    stats.assert_code(0);
    let stats = &json_lines(&stats)[0];
    assert_counts(&stats["decisions"], 4, 5, 1);
    let tail = audit(&fx, &["tail", "-n", "2", "--json", "--session", &first]);
    tail.assert_code(0);
    let tail = json_lines(&tail);
    assert_eq!(tail.len(), 2);
    assert_eq!(tail[1], *end);
}

/// Removes the session's cgroup, which a killed supervisor leaves behind,
/// once the processes in it are gone (each got SIGKILL with its parent).
fn remove_session_cgroup(session: &str) {
    for dir in session_cgroups(session) {
        let deadline = Instant::now() + PATIENCE;
        while fs::remove_dir(&dir).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} stayed busy: the program outlived its supervisor",
                dir.display()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Copies an audit file into a new private directory (`sluice audit`
/// refuses a directory others can write), changed by `edit`.
fn tampered_copy(
    fx: &Fixture,
    name: &str,
    original: &Path,
    edit: impl FnOnce(&mut Vec<u8>),
) -> PathBuf {
    let dir = fx.root().join(name);
    fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
    let mut data = fs::read(original).unwrap();
    edit(&mut data);
    let copy = dir.join(original.file_name().unwrap());
    fs::write(&copy, data).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o600)).unwrap();
    // The session's ledger comes along, else its removal is what shows.
    let ledger = original.with_file_name("sessions.ledger");
    fs::copy(&ledger, dir.join("sessions.ledger")).unwrap();
    dir
}

#[test]
fn killing_the_supervisor_mid_flood_leaves_a_record_that_verifies() {
    let fx = Fixture::with_broker(PROBE);
    let policy = fx.broker_policy(&[]);
    // The session directory a killed sluice leaves behind goes in the fixture.
    let tmp = fx.root().join("tmp");
    fs::DirBuilder::new().mode(0o700).create(&tmp).unwrap();
    let notes = fx.brokered("allowed/notes.txt");
    let mut cmd = fx.sluice_command(
        &["--policy", &policy],
        &[&fx.probe_path(), "broker-flood", "8", "100000000", &notes],
    );
    cmd.env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut sluice = cmd.spawn().expect("start sluice");

    // Wait until the flood has written a few thousand decisions.
    let deadline = Instant::now() + PATIENCE;
    let file = loop {
        let grown = fs::read_dir(fx.audit_dir())
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path())
            .find(|p| fs::metadata(p).is_ok_and(|m| m.len() > 2 << 20));
        if let Some(file) = grown {
            break file;
        }
        if Instant::now() > deadline || sluice.try_wait().unwrap().is_some() {
            sluice.kill().ok();
            panic!(
                "the flood did not fill the audit record (sluice: {:?})",
                sluice.try_wait()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    // While the supervisor lives (it holds the session's lock), the record
    // without its end is `running`, exit 0.
    let session = file.file_stem().unwrap().to_str().unwrap().to_owned();
    let mut cmd = fx.sluice_cli_command(&["audit", "verify", &session]);
    cmd.env("TMPDIR", &tmp);
    let live = execute(cmd);
    live.assert_code(0);
    assert!(
        live.stdout.starts_with(&format!("running {session}")),
        "{live}"
    );
    sluice.kill().unwrap(); // SIGKILL, to sluice itself, mid-append
    let status = sluice.wait().unwrap();
    assert!(!status.success(), "{status}");
    remove_session_cgroup(&session);

    // What is left verifies, and is said to be incomplete (no end record,
    // perhaps a torn last line), not ok: exit 2.
    let verified = audit(&fx, &["verify", &session]);
    verified.assert_code(2);
    assert!(
        verified
            .stdout
            .starts_with(&format!("INCOMPLETE {session}")),
        "{verified}"
    );
    assert!(verified.stdout.contains("no end record"), "{verified}");
    let json = audit(&fx, &["verify", &session, "--json"]);
    let report: Value = serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(report["status"], "incomplete", "{report}");
    assert_eq!(report["chain_intact"], true, "{report}");
    assert_eq!(report["ended"], false, "{report}");

    // No record in the middle is damaged: every complete line is a record,
    // in order, chained, the first a start and the rest decisions.
    let data = fs::read(&file).unwrap();
    let complete = &data[..data.iter().rposition(|&b| b == b'\n').unwrap() + 1];
    let lines: Vec<Value> = complete
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(l)))
        })
        .collect();
    assert!(lines.len() > 1000, "only {} records", lines.len());
    assert_eq!(report["records"], lines.len() as u64, "{report}");
    for (i, r) in lines.iter().enumerate() {
        assert_eq!(r["seq"], i as u64);
        assert_eq!(r["kind"], if i == 0 { "start" } else { "decision" }, "{r}");
        if i > 0 {
            assert_eq!(r["prev"], lines[i - 1]["hash"], "record {i}");
            assert_eq!(r["decision"], "allowed", "{r}");
        }
    }
    let listed = &json_lines(&audit(&fx, &["list", "--json"]))[0];
    assert_eq!(listed["exit"], Value::Null, "{listed}");
    assert_eq!(listed["chain"], "INCOMPLETE", "{listed}");

    // Controls on copies: a torn final line is reported and accepted; an edit
    // in the middle is caught (so the checks above could have failed).
    let n = lines.len();
    let torn = tampered_copy(&fx, "torn", &file, |data| {
        data.truncate(complete.len());
        data.pop();
        let start = data.iter().rposition(|&b| b == b'\n').unwrap() + 1;
        let half = (data.len() - start) / 2;
        data.truncate(start + half);
    });
    let out = audit_in(&fx, &torn, &["verify"]);
    out.assert_code(2);
    assert!(
        out.stdout
            .contains(&format!("torn final record at line {n}")),
        "{out}"
    );
    let edited = tampered_copy(&fx, "edited", &file, |data| {
        let middle = data.len() / 2;
        let at = middle
            + data[middle..]
                .windows(9)
                .position(|w| w == b"\"allowed\"")
                .unwrap()
            + 1;
        data[at] = b'A';
    });
    let out = audit_in(&fx, &edited, &["verify"]);
    out.assert_code(1);
    assert!(out.stdout.contains("edited"), "{out}");
}

#[test]
fn a_decision_that_cannot_be_recorded_is_not_served() {
    let fx = Fixture::with_broker(PROBE);
    let policy = fx.broker_policy(&[]);
    let notes = fx.brokered("allowed/notes.txt");
    // Control: recorded and served; it gives the records' sizes.
    fx.brokered_run(&policy, &[], &["broker-read", &notes])
        .assert_ok();
    let session = only_session(&fx);
    let text = fs::read_to_string(fx.audit_dir().join(format!("{session}.jsonl"))).unwrap();
    let sizes: Vec<u64> = text.lines().map(|l| l.len() as u64 + 1).collect();
    // Room for the start record, not for a decision after it: sluice's writes
    // to the record fail (EFBIG; SIGXFSZ ignored) from the first decision on.
    let limit = sizes[0] + sizes[1] / 2;

    let mut cmd = fx.sluice_command(
        &["--policy", &policy],
        &[&fx.probe_path(), "broker-read", &notes],
    );
    // SAFETY: between fork and exec only setrlimit and signal, both
    // async-signal-safe, on plain values.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = execute(cmd);
    // The session ran and the broker answered (not a launch that failed).
    assert!(
        ["ERROR ", "BLOCKED "]
            .iter()
            .any(|s| out.status_line().starts_with(s)),
        "expected the broker to answer the request with a refusal\n{out}"
    );
    assert!(
        out.stderr.contains("audit"),
        "sluice did not say the record failed\n{out}"
    );
    assert!(
        !out.stdout.contains(&NOTES.escape_debug().to_string())
            && !out.status_line().starts_with("OK "),
        "the file was handed out although its decision could not be recorded \
         (ARCHITECTURE: \"If the record cannot be written, nothing is handed out\")\n{out}"
    );
    // The half-written record is the file's torn last line: no tampering,
    // but the session's record is incomplete (exit 2), and said so.
    let verified = audit(&fx, &["verify"]);
    verified.assert_code(2);
    assert!(verified.stdout.contains("torn final record"), "{verified}");
    assert!(verified.stdout.contains("INCOMPLETE"), "{verified}");
}

#[test]
fn what_the_requester_chose_cannot_forge_lines_or_drive_the_reviewers_terminal() {
    let fx = Fixture::with_broker(PROBE);
    let policy = fx.broker_policy(&[]);
    // The client name and the path are the requester's: terminal sequences,
    // a bell, a carriage return, and a newline that starts a fake record.
    let name = "evil\u{1b}[2J\u{1b}]0;owned\u{7}\nFAKE  9  allowed\r\tx";
    let path = format!("{}/evil\nFAKE  8  allowed /etc/shadow\u{1b}[31m", fx.ws(""));
    let out = fx.brokered_run(&policy, &[], &["broker-read-as", name, &path]);
    out.assert_not_found();
    let session = only_session(&fx);

    // The JSON keeps the exact text...
    let all = records(&fx, &session);
    let asked = decision_about(&all, &path);
    assert_eq!(asked["client"], name);
    // ...and every text view shows it escaped: three records, three rows.
    for args in [
        vec!["show", session.as_str()],
        vec!["tail"],
        vec!["list"],
        vec!["stats"],
        vec!["verify"],
    ] {
        let out = audit(&fx, &args);
        out.assert_code(0);
        for raw in ['\u{1b}', '\u{7}', '\r'] {
            assert!(
                !out.stdout.contains(raw),
                "{args:?} printed {raw:?} raw\n{out}"
            );
        }
        assert!(
            !out.stdout.lines().any(|l| l.starts_with("FAKE")),
            "{args:?}: the requester's newline started a line\n{out}"
        );
    }
    let tail = audit(&fx, &["tail"]);
    assert_eq!(tail.stdout.lines().count(), 3, "{tail}");
}

#[test]
fn the_program_cannot_reach_the_record_even_where_its_policy_would() {
    let fx = Fixture::with_broker(PROBE);
    // Make sluice's state exist, then run with a policy that may write the
    // whole fixture, the state and configuration directories included.
    fx.brokered_run(&fx.broker_policy(&[]), &[], &["marker", "first"])
        .assert_ok();
    let root = fx.root().to_str().unwrap();
    let record = format!("{}/{{session}}.jsonl", fx.audit_dir().display());
    let earlier = format!("{}/{}.jsonl", fx.audit_dir().display(), only_session(&fx));
    let config = format!("{}/remembered.toml", fx.config_dir().display());
    let run = |action: &[&str]| fx.sluice(&["--allow-write", root], action);
    // Control: the policy does reach the rest of the fixture.
    run(&["append", &fx.outside("secret.txt")]).assert_ok();
    run(&["read", &fx.brokered("denied/secret.txt")]).assert_ok();

    for action in [
        vec!["append", record.as_str()],
        vec!["read", record.as_str()],
        vec!["append", earlier.as_str()],
        vec!["unlink", earlier.as_str()],
        vec!["rename", earlier.as_str(), &fx.outside("moved.jsonl")],
        vec![
            "write",
            &format!("{}/forged.jsonl", fx.audit_dir().display()),
        ],
        vec!["read", config.as_str()],
        vec!["append", config.as_str()],
        vec!["broker-read", record.as_str()],
    ] {
        let out = run(&action);
        out.assert_blocked();
        assert!(!out.stdout.contains("policy_digest"), "{action:?}\n{out}");
    }
    let verified = audit(&fx, &["verify"]);
    verified.assert_code(0);
    assert_eq!(
        sessions(&fx).len(),
        1 + 2 + 9,
        "one record per session\n{verified}"
    );
    assert!(!fx.audit_dir().join("forged.jsonl").exists());
}

#[test]
fn an_audit_directory_inside_the_workspace_is_out_of_the_programs_reach() {
    // `--audit-dir` in the workspace, which the default policy lets the
    // program write: sluice denies it in the sandbox all the same.
    let fx = Fixture::new(PROBE);
    let dir = fx.ws("logs/sluice/audit");
    let run = |action: &[&str]| fx.sluice(&["--audit-dir", &dir], action);
    run(&["marker", "first"]).assert_ok();
    let earlier = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let earlier = earlier.to_str().unwrap();
    let record = format!("{dir}/{{session}}.jsonl");
    // Control: the rest of the workspace, next to it too, is writable.
    run(&["write", &fx.ws("logs/notes.txt")]).assert_ok();
    run(&["mkdir", &fx.ws("logs/sluice/other")]).assert_ok();

    for action in [
        vec!["append", record.as_str()],
        vec!["append", earlier],
        vec!["unlink", earlier],
        vec!["write", &format!("{dir}/forged.jsonl")],
        vec!["ls", dir.as_str()],
        vec!["rename", dir.as_str(), &fx.ws("moved")],
        // Moving an ancestor away to put a directory of one's own in its place.
        vec!["rename", &fx.ws("logs/sluice"), &fx.ws("moved")],
        vec!["rename", &fx.ws("logs"), &fx.ws("moved")],
        vec!["broker-read", record.as_str()],
    ] {
        let out = run(&action);
        out.assert_blocked();
        assert!(!out.stdout.contains("policy_digest"), "{action:?}\n{out}");
    }
    let verified = audit_in(&fx, Path::new(&dir), &["verify"]);
    verified.assert_code(0);
    assert!(
        verified
            .stdout
            .contains("12 session(s) verified: 12 ok, 0 running, 0 incomplete, 0 failed"),
        "{verified}"
    );
    assert!(!Path::new(&fx.ws("moved")).exists());
}

/// Two real sessions verify, the ledger too (control); removing one
/// session's whole audit file is then reported (exit 1), naming it.
#[test]
fn removing_a_real_sessions_whole_record_is_detected() {
    let fx = Fixture::new(PROBE);
    fx.sluice(&[], &["marker", "one"]).assert_ok();
    fx.sluice(&[], &["marker", "two"]).assert_ok();
    let verified = audit(&fx, &["verify"]);
    verified.assert_code(0);
    assert!(
        verified.stdout.contains("ok      ledger  2 session(s)"),
        "{verified}"
    );
    let gone = sessions(&fx).remove(0);
    fs::remove_file(fx.audit_dir().join(format!("{gone}.jsonl"))).unwrap();
    let verified = audit(&fx, &["verify"]);
    verified.assert_code(1);
    assert!(
        verified
            .stdout
            .contains(&format!("session {gone} (ledger line")),
        "{verified}"
    );
    assert!(
        verified.stdout.contains("its record was removed"),
        "{verified}"
    );
}

#[test]
fn a_program_whose_record_cannot_be_opened_does_not_run_on() {
    let fx = Fixture::new(PROBE);
    // The program leaves a mark a moment after it starts, unless stopped.
    let mark = PathBuf::from(fx.ws("ran-on"));
    let script = format!("sleep 1; echo > '{}'", mark.display());
    let run = || execute(fx.sluice_command(&[], &["/bin/sh", "-c", &script]));
    // Control: with its record, the program runs to its end.
    run().assert_code(0);
    assert!(mark.exists(), "the control's program did not run");
    fs::remove_file(&mark).unwrap();
    // The ledger every start record is committed to (the control's is
    // there) cannot be opened: the child is started, then the start record
    // fails.
    let ledger = fx.audit_dir().join("sessions.ledger");
    fs::remove_file(&ledger).unwrap();
    fs::create_dir(&ledger).unwrap();
    let out = run();
    assert_ne!(out.code(), 0, "{out}");
    assert!(
        out.stderr.contains("opening the audit record"),
        "expected sluice to fail at the start record\n{out}"
    );
    // Twice the program's delay, after sluice has returned.
    thread::sleep(Duration::from_secs(2));
    assert!(
        !mark.exists(),
        "the program ran on without an audit record (ARCHITECTURE: no record, no broker: \
         the program is stopped)\n{out}"
    );
}
