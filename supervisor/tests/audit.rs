//! The audit record end to end: written with the API, tampered with on
//! disk, killed mid-append, and read back. (`sluice audit` itself: audit_cli.rs.)

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use supervisor::audit::read::{SessionFile, SessionLog};
use supervisor::audit::verify::Problem;
use supervisor::audit::{chain, AuditLog, Record};
#[test]
fn a_written_session_verifies_and_reads_back() {
    let tmp = TempDir::new("roundtrip");
    let file = write_session(&tmp.audit(), "s1", 20);
    let report = verify(&tmp.audit(), "s1");
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(
        (report.records, report.ended, report.torn_line),
        (22, true, None)
    );

    let log = SessionLog::load(&SessionFile {
        session: "s1".into(),
        path: file,
    })
    .unwrap();
    assert_eq!(log.lines.len(), 22);
    assert_eq!(log.start().unwrap().1, &start());
    for (i, line) in log.lines[1..21].iter().enumerate() {
        assert_eq!(line.entry.seq, i as u64 + 1);
        assert_eq!(line.entry.session, "s1");
        assert_eq!(line.entry.record, Record::Decision(decision(i as u64)));
    }
    let Record::End(end) = &log.lines[21].entry.record else {
        panic!("no end record");
    };
    assert_eq!(end.exit, "exit 0");
    let expected = (0..20).fold(supervisor::audit::Counts::default(), |mut c, i| {
        c.add(decision(i).decision);
        c
    });
    assert_eq!(end.counts, expected);
}

#[test]
fn lines_have_the_documented_shape() {
    let tmp = TempDir::new("shape");
    let file = write_session(&tmp.audit(), "s1", 3);
    let lines = lines_of(&file);
    assert!(
        lines[0].starts_with(r#"{"kind":"start","seq":0,"time":""#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(r#"{"kind":"decision","seq":1,"time":""#),
        "{}",
        lines[1]
    );
    assert!(
        lines[4].starts_with(r#"{"kind":"end","seq":4,"time":""#),
        "{}",
        lines[4]
    );
    let mut prev = "0".repeat(64);
    for line in &lines {
        // `,"hash":"<64 hex>"}` ends the line; the hash covers what precedes it.
        let (body, suffix) = line.split_at(line.len() - chain::SUFFIX_LEN);
        let hash = &suffix[9..73];
        assert_eq!(suffix, format!(r#","hash":"{hash}"}}"#));
        assert_eq!(chain::sha256_hex(body.as_bytes()), hash);
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["prev"], prev.as_str());
        assert!(body.ends_with(&format!(r#","prev":"{prev}""#)));
        assert_eq!(v["session"], "s1");
        prev = hash.to_owned();
    }
    let v: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    assert_eq!(v["access"], "read-write");
    assert_eq!(v["flags"], serde_json::json!(["create"]));
    assert_eq!(v["decision"], "allowed");
    assert_eq!(v["path_opened"], "/home/ana/proj/src/file1.rs");
    let v: serde_json::Value = serde_json::from_str(&lines[3]).unwrap();
    assert_eq!(v["decision"], "denied");
    assert_eq!(v["flags"], serde_json::json!([]));
    assert_eq!(v["path_opened"], serde_json::Value::Null);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["argv"], serde_json::json!(["cargo", "build", "--x\\xff"]));
    assert_eq!(v["enforcement"]["landlock_abi"], 7);
}

#[test]
fn an_edited_record_is_named() {
    let tmp = TempDir::new("edit");
    let file = write_session(&tmp.audit(), "s1", 12);
    let mut lines = lines_of(&file);
    lines[7] = lines[7].replacen("/home/ana/", "/home/bob/", 1);
    write_lines(&file, &lines);
    let report = verify(&tmp.audit(), "s1");
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let f = &report.findings[0];
    assert_eq!((f.line, f.seq, &f.problem), (8, Some(7), &Problem::Edited));

    let out = sluice(&tmp.audit(), &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("FAILED  s1"), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(
        text.contains("line 8, seq 7: record 7 edited: its content does not match its hash"),
        "{text}"
    );
}

#[test]
fn a_deleted_record_is_named() {
    let tmp = TempDir::new("delete");
    let file = write_session(&tmp.audit(), "s1", 12);
    let mut lines = lines_of(&file);
    lines.remove(6);
    write_lines(&file, &lines);
    let report = verify(&tmp.audit(), "s1");
    assert!(!report.ok());
    let f = &report.findings[0];
    assert_eq!((f.line, f.seq), (7, Some(7)));
    assert_eq!(f.problem, Problem::Missing { from: 6, to: 6 });
    let out = sluice(&tmp.audit(), &["verify", "s1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("record 6 missing: seq jumps from 5 to 7"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn swapped_records_are_named() {
    let tmp = TempDir::new("swap");
    let file = write_session(&tmp.audit(), "s1", 12);
    let mut lines = lines_of(&file);
    lines.swap(4, 5);
    write_lines(&file, &lines);
    let report = verify(&tmp.audit(), "s1");
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let f = &report.findings[0];
    assert_eq!((f.line, f.seq), (6, Some(4)));
    assert_eq!(f.problem, Problem::OutOfOrder { after: 5 });
    let out = sluice(&tmp.audit(), &["verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let first = stdout(&out).lines().next().unwrap().to_owned();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["status"], "failed");
    assert_eq!(v["problems"][0]["seq"], 4);
    assert_eq!(v["problems"][0]["line"], 6);
}

#[test]
fn a_removed_end_record_is_no_failure_but_edited_counts_are() {
    let tmp = TempDir::new("end");
    let file = write_session(&tmp.audit(), "s1", 5);
    let mut lines = lines_of(&file);
    lines.pop();
    write_lines(&file, &lines);
    let report = verify(&tmp.audit(), "s1");
    assert!(report.ok() && !report.ended);

    // A forged end record with its own valid hash still has to match.
    let last = lines.last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    let mut body = format!(
        r#"{{"kind":"end","seq":6,"time":"2030-01-01T00:00:00.000000Z","session":"s1","exit":"exit 0","counts":{{"allowed":0,"denied":0,"error":0}},"prev":"{}""#,
        v["hash"].as_str().unwrap()
    )
    .into_bytes();
    chain::seal(&mut body);
    lines.push(String::from_utf8(body).unwrap().trim_end().to_owned());
    write_lines(&file, &lines);
    let report = verify(&tmp.audit(), "s1");
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert!(matches!(
        report.findings[0].problem,
        Problem::CountsMismatch { .. }
    ));
}

/// A torn last record (a crash or a full disk mid-write) is no tampering,
/// but the session's record is incomplete: said so, not `ok`, and exit 2
/// (the session is not running). Control: the whole file verifies `ok`.
#[test]
fn a_torn_final_record_is_reported_incomplete_and_the_rest_verified() {
    let tmp = TempDir::new("torn");
    let file = write_session(&tmp.audit(), "s1", 8);
    let out = sluice(&tmp.audit(), &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out).starts_with("ok      s1  10 records\n"),
        "{}",
        stdout(&out)
    );
    let data = std::fs::read(&file).unwrap();
    std::fs::write(&file, &data[..data.len() - 40]).unwrap();
    let report = verify(&tmp.audit(), "s1");
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!((report.records, report.torn_line), (9, Some(10)));
    let out = sluice(&tmp.audit(), &["verify"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("INCOMPLETE s1  9 records; torn final record at line 10"),
        "{text}"
    );
    assert!(text.contains("1 incomplete, 0 failed"), "{text}");
    let json = stdout(&sluice(&tmp.audit(), &["verify", "--json"]));
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(
        (v["status"].as_str(), &v["ok"], &v["chain_intact"]),
        (Some("incomplete"), &false.into(), &true.into())
    );
    let out = sluice(&tmp.audit(), &["list"]);
    assert!(stdout(&out).contains("INCOMPLETE"), "{}", stdout(&out));
}

/// The removal of a whole session's record is found through the ledger:
/// the file alone, the file and its ledger line, or the whole ledger.
/// Control: the intact directory verifies.
#[test]
fn removing_a_whole_sessions_record_is_detected() {
    let tmp = TempDir::new("ledger");
    let dir = tmp.audit();
    let files: Vec<PathBuf> = ["s1", "s2", "s3"]
        .iter()
        .map(|id| write_session(&dir, id, 3))
        .collect();
    let out = sluice(&dir, &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out).contains("ok      ledger  3 session(s)"),
        "{}",
        stdout(&out)
    );

    let ledger = dir.join("sessions.ledger");
    let kept_ledger = std::fs::read(&ledger).unwrap();
    let kept_s2 = std::fs::read(&files[1]).unwrap();
    std::fs::remove_file(&files[1]).unwrap();
    let out = sluice(&dir, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout(&out)
            .contains("session s2 (ledger line 2) has no audit file: its record was removed"),
        "{}",
        stdout(&out)
    );

    // Its ledger line removed too: the ledger's chain breaks.
    let lines: Vec<String> = lines_of(&ledger)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    write_lines(&ledger, &lines);
    let out = sluice(&dir, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout(&out).contains("ledger lines were removed"),
        "{}",
        stdout(&out)
    );

    // The whole ledger removed: each start record names its line.
    std::fs::write(&files[1], &kept_s2).unwrap();
    std::fs::remove_file(&ledger).unwrap();
    let out = sluice(&dir, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout(&out).contains("session s3: its start record names ledger line seq 2"),
        "{}",
        stdout(&out)
    );

    // Restored, it verifies again; a new session continues the ledger.
    std::fs::write(&ledger, &kept_ledger).unwrap();
    write_session(&dir, "s4", 1);
    let out = sluice(&dir, &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out).contains("ok      ledger  4 session(s)"),
        "{}",
        stdout(&out)
    );
}

/// A session without its end record is `running` while its supervisor
/// holds the session's lock (exit 0), and `INCOMPLETE` once nobody does
/// (exit 2).
#[test]
fn a_session_without_its_end_is_running_only_while_its_lock_is_held() {
    use std::os::fd::AsRawFd;
    let tmp = TempDir::new("live");
    let id = "0123456789abcdef";
    let log = AuditLog::open(&tmp.audit(), id, &start()).unwrap();
    log.append(&decision(0)).unwrap();
    // The session's liveness record (`session_dir`), which its supervisor
    // keeps locked while it runs.
    let state = tmp.path().join("state");
    let records = state.join("sluice/sessions");
    std::fs::create_dir_all(&records).unwrap();
    std::fs::set_permissions(&records, std::fs::Permissions::from_mode(0o700)).unwrap();
    let lock = std::fs::File::create(records.join(id)).unwrap();
    let verify_with_tmpdir = || {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["audit", "--dir"])
            .arg(tmp.audit())
            .arg("verify")
            .env("XDG_STATE_HOME", &state)
            .output()
            .unwrap();
        (out.status.code(), stdout(&out))
    };
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let (code, text) = verify_with_tmpdir();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.starts_with(&format!("running {id}  2 records; no end record yet")),
        "{text}"
    );
    drop(lock);
    let (code, text) = verify_with_tmpdir();
    assert_eq!(code, Some(2), "{text}");
    assert!(text.starts_with(&format!("INCOMPLETE {id}")), "{text}");
    drop(log);
}

const HELPER_DIR: &str = "SLUICE_AUDIT_TEST_APPEND_FOREVER";

/// Not a test: the process `a_kill_9_leaves_a_log_that_verifies` kills.
#[test]
#[ignore = "helper process for a_kill_9_leaves_a_log_that_verifies"]
fn append_forever_helper() {
    let Some(dir) = std::env::var_os(HELPER_DIR) else {
        return;
    };
    let log = Arc::new(AuditLog::open(Path::new(&dir), "killed", &start()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in (t..).step_by(4) {
                    log.append(&decision(i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_kill_9_leaves_a_log_that_verifies() {
    for round in 0..3 {
        let tmp = TempDir::new("kill");
        let file = tmp.audit().join("killed.jsonl");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "append_forever_helper",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(HELPER_DIR, tmp.audit())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        // Kill it at a different size each round.
        let enough = 200_000 * (round + 1);
        while std::fs::metadata(&file).map_or(0, |m| m.len()) < enough {
            assert!(Instant::now() < deadline, "the helper did not write");
            assert!(child.try_wait().unwrap().is_none(), "the helper exited");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let report = verify(&tmp.audit(), "killed");
        assert!(report.ok(), "round {round}: {:?}", report.findings);
        assert!(report.records > 100, "{}", report.records);
        assert!(!report.ended);
    }
}

#[test]
fn files_are_0600_in_0700_directories() {
    let tmp = TempDir::new("modes");
    let dir = tmp.path().join("state/sluice/audit");
    let file = write_session(&dir, "s1", 1);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o600);
    for d in [
        tmp.path().join("state"),
        tmp.path().join("state/sluice"),
        dir.clone(),
    ] {
        let mode = std::fs::metadata(&d).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    // A second log for the same session does not continue the first.
    let err = AuditLog::open(&dir, "s1", &start()).err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    let err = AuditLog::open(&dir, "../escape", &start()).err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}

#[test]
fn an_unsafe_existing_directory_is_refused() {
    let tmp = TempDir::new("unsafe");
    let dir = tmp.audit();
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = AuditLog::open(&dir, "s1", &start()).err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(
        err.to_string().contains("group or others can write it"),
        "{err}"
    );
    assert!(!dir.join("s1.jsonl").exists());

    // A directory owned by someone else: as root, make one; otherwise `/`.
    // SAFETY: geteuid has no preconditions.
    let other = if unsafe { libc::geteuid() } == 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        dir.clone()
    } else {
        PathBuf::from("/")
    };
    let err = AuditLog::open(&other, "s1", &start()).err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(err.to_string().contains("not by us"), "{err}");
}

#[test]
fn concurrent_appends_make_one_valid_chain() {
    let tmp = TempDir::new("threads");
    let log = Arc::new(AuditLog::open(&tmp.audit(), "s1", &start()).unwrap());
    let per_thread = 500;
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let mut d = decision(i);
                    d.request_id = t * 1_000_000 + i;
                    log.append(&d).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    log.finish("exit 0").unwrap();
    assert!(log.append(&decision(0)).is_err(), "appended after the end");
    let report = verify(&tmp.audit(), "s1");
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(report.records, 8 * per_thread as usize + 2);
    let log = SessionLog::load(&SessionFile {
        session: "s1".into(),
        path: log.path().to_owned(),
    })
    .unwrap();
    let mut ids: Vec<u64> = log
        .lines
        .iter()
        .filter_map(|l| l.entry.decision().map(|d| d.request_id))
        .collect();
    ids.sort_unstable();
    let expected: Vec<u64> = (0..8u64)
        .flat_map(|t| (0..per_thread).map(move |i| t * 1_000_000 + i))
        .collect();
    assert_eq!(ids, expected);
    let times: Vec<&str> = log.lines.iter().map(|l| l.entry.time.as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times go back");
}

#[test]
fn non_utf8_and_hostile_paths_are_stored_escaped_and_shown_inert() {
    let tmp = TempDir::new("bytes");
    let log = AuditLog::open(&tmp.audit(), "s1", &start()).unwrap();
    let hostile = path(b"/tmp/\xff\xfeback\\slash\x1b[2J\xe2\x80\xaeevil");
    let mut d = decision(0);
    d.path_asked = hostile.clone();
    d.path_opened = Some(hostile.clone());
    d.client = "agent\x1b]0;pwned\x07".into();
    log.append(&d).unwrap();
    log.finish("exit 0").unwrap();

    let line = &lines_of(log.path())[1];
    assert!(
        line.contains(r#""path_asked":"/tmp/\\xff\\xfeback\\\\slash\u001b[2J"#),
        "{line}"
    );
    let read = SessionLog::load(&SessionFile {
        session: "s1".into(),
        path: log.path().to_owned(),
    })
    .unwrap();
    assert_eq!(read.lines[1].entry.decision().unwrap().path_asked, hostile);

    let out = sluice(&tmp.audit(), &["show", "s1"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!out.stdout.contains(&0x1b), "raw escape printed");
    assert!(!out.stdout.contains(&0x07), "raw bell printed");
    let text = stdout(&out);
    assert!(
        text.contains(r"/tmp/\xff\xfeback\\slash\x1b[2J\u{202e}evil"),
        "{text}"
    );
    assert!(text.contains(r"agent\x1b]0;pwned\x07"), "{text}");
}
