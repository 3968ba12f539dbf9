//! The audit record end to end: written with the API, tampered with on
//! disk, killed mid-append, and read back with `sluice audit`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use supervisor::audit::read::{SessionFile, SessionLog};
use supervisor::audit::verify::{verify_file, Problem, Report};
use supervisor::audit::{
    chain, Access, AuditLog, By, Decision, DecisionRecord, Flags, Op, Record, StartRecord, Via,
};

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sluice-audit-test-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn audit(&self) -> PathBuf {
        self.0.join("audit")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start() -> StartRecord {
    StartRecord {
        sluice_version: "0.1.0".into(),
        policy: "default".into(),
        policy_digest: chain::sha256_hex(b"[policy]\nname = \"default\"\n"),
        enforcement: serde_json::json!({"landlock_abi": 7, "layers": [{"layer": "filesystem", "status": "enforced"}]}),
        argv: vec![
            "cargo".into(),
            "build".into(),
            OsString::from_vec(b"--x\xff".to_vec()),
        ],
        workspace: "/home/ana/proj".into(),
        supervisor_pid: 100,
        child_pid: 101,
    }
}

fn path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes.to_vec()))
}

/// A varied decision: every third denied by a rule, every fifth asked of a
/// person, every seventh an error.
fn decision(i: u64) -> DecisionRecord {
    let (decision, by, rule) = if i % 7 == 6 {
        (Decision::Error, By::Error, None)
    } else if i % 3 == 2 {
        (Decision::Denied, By::Rule, Some("deny ~/.ssh".to_owned()))
    } else if i % 5 == 4 {
        (Decision::Allowed, By::Person, None)
    } else {
        (
            Decision::Allowed,
            By::Rule,
            Some("read $WORKSPACE".to_owned()),
        )
    };
    let asked = if decision == Decision::Denied {
        format!("/home/ana/.ssh/id_{i}")
    } else {
        format!("/home/ana/proj/src/file{i}.rs")
    };
    DecisionRecord {
        pid: 4000 + i as u32,
        exe: Some("/usr/bin/cat".into()),
        client: "test-agent".into(),
        via: Via::Sdk,
        request_id: i,
        op: if i % 4 == 3 { Op::Query } else { Op::Open },
        path_asked: asked.clone().into(),
        path_opened: (decision == Decision::Allowed).then(|| asked.into()),
        access: if i % 2 == 0 {
            Access::Read
        } else {
            Access::ReadWrite
        },
        flags: Flags {
            create: i % 2 == 1,
            ..Flags::default()
        },
        decision,
        by,
        rule,
        reason: (decision == Decision::Error).then(|| "No such file or directory".to_owned()),
        latency_us: 10 + i,
    }
}

/// A finished session of `n` decisions; returns its file.
fn write_session(dir: &Path, id: &str, n: u64) -> PathBuf {
    let log = AuditLog::open(dir, id, &start()).unwrap();
    for i in 0..n {
        log.append(&decision(i)).unwrap();
    }
    log.finish("exit 0").unwrap();
    log.path().to_owned()
}

fn verify(dir: &Path, id: &str) -> Report {
    verify_file(&SessionFile {
        session: id.into(),
        path: dir.join(format!("{id}.jsonl")),
    })
    .unwrap()
}

fn lines_of(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(file: &Path, lines: &[String]) {
    std::fs::write(
        file,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn sluice(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("audit")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{out:?}");
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

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
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["ok"], false);
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

#[test]
fn a_torn_final_record_is_reported_and_the_rest_verified() {
    let tmp = TempDir::new("torn");
    let file = write_session(&tmp.audit(), "s1", 8);
    let data = std::fs::read(&file).unwrap();
    std::fs::write(&file, &data[..data.len() - 40]).unwrap();
    let report = verify(&tmp.audit(), "s1");
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!((report.records, report.torn_line), (9, Some(10)));
    let out = sluice(&tmp.audit(), &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out).contains("torn final record at line 10 (crash during append)"),
        "{}",
        stdout(&out)
    );
    let out = sluice(&tmp.audit(), &["list"]);
    assert!(stdout(&out).contains("ok (torn)"), "{}", stdout(&out));
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
    let dir = tmp.0.join("state/sluice/audit");
    let file = write_session(&dir, "s1", 1);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o600);
    for d in [tmp.0.join("state"), tmp.0.join("state/sluice"), dir.clone()] {
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

/// Three sessions: `aa11` (10 decisions), `aa22` (4), `bb33` (6, no end).
fn three_sessions(tmp: &TempDir) -> PathBuf {
    let dir = tmp.audit();
    write_session(&dir, "aa11", 10);
    write_session(&dir, "aa22", 4);
    let log = AuditLog::open(&dir, "bb33", &start()).unwrap();
    for i in 0..6 {
        log.append(&decision(i)).unwrap();
    }
    dir
}

#[test]
fn list_shows_one_line_per_session() {
    let tmp = TempDir::new("list");
    let dir = three_sessions(&tmp);
    let out = sluice(&dir, &["list"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(rows[0].starts_with("SESSION"));
    assert!(
        rows[1].starts_with("aa11 ") && rows[1].contains("default"),
        "{text}"
    );
    assert!(
        rows[1].contains("exit 0") && rows[1].ends_with(" ok"),
        "{text}"
    );
    assert!(
        rows[3].starts_with("bb33 ") && rows[3].contains(" - "),
        "{text}"
    );

    let sessions = json_lines(&sluice(&dir, &["list", "--json"]));
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions[0]["session"], "aa11");
    assert_eq!(sessions[0]["policy"], "default");
    assert_eq!(sessions[0]["chain"], "ok");
    assert_eq!(sessions[0]["records"], 12);
    assert_eq!(
        sessions[0]["counts"],
        serde_json::json!({"allowed": 6, "denied": 3, "error": 1})
    );
    assert_eq!(sessions[2]["exit"], serde_json::Value::Null);

    let only = json_lines(&sluice(&dir, &["list", "--json", "--session", "aa"]));
    assert_eq!(only.len(), 2);
    let denied = json_lines(&sluice(
        &dir,
        &["list", "--json", "--decision", "error", "--session", "aa2"],
    ));
    assert_eq!(denied.len(), 0, "aa22 has no error decision");
}

#[test]
fn show_prints_records_and_raw_lines() {
    let tmp = TempDir::new("show");
    let dir = three_sessions(&tmp);
    let out = sluice(&dir, &["show", "aa2"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("session aa22"), "{text}");
    assert!(text.contains("policy 'default'"), "{text}");
    assert!(text.contains(r"command: cargo build --x\xff"), "{text}");
    assert!(
        text.contains("denied   read       /home/ana/.ssh/id_2  [rule: deny ~/.ssh]"),
        "{text}"
    );
    assert!(
        text.contains("end      exit 0: 3 allowed, 1 denied, 0 error"),
        "{text}"
    );

    let lines = json_lines(&sluice(&dir, &["show", "aa22", "--json"]));
    let file_lines = lines_of(&dir.join("aa22.jsonl"));
    assert_eq!(lines.len(), file_lines.len());
    let raw = stdout(&sluice(&dir, &["show", "aa22", "--json"]));
    assert_eq!(raw.lines().collect::<Vec<_>>(), file_lines);

    let denied = json_lines(&sluice(
        &dir,
        &["show", "aa11", "--json", "--decision", "denied"],
    ));
    assert_eq!(denied.len(), 3);
    assert!(denied.iter().all(|v| v["decision"] == "denied"));
    let ssh = json_lines(&sluice(
        &dir,
        &["show", "aa11", "--json", "--path", "*/.ssh/*"],
    ));
    assert_eq!(ssh.len(), 3);
    let both = json_lines(&sluice(
        &dir,
        &["show", "aa11", "--json", "--decision", "allowed,error"],
    ));
    assert_eq!(both.len(), 7);

    let out = sluice(&dir, &["show", "aa"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("names several sessions: aa11, aa22"), "{err}");
    let out = sluice(&dir, &["show", "zz"]);
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn since_selects_by_time() {
    let tmp = TempDir::new("since");
    let dir = three_sessions(&tmp);
    let all = json_lines(&sluice(&dir, &["show", "aa11", "--json", "--since", "1h"]));
    assert_eq!(all.len(), 12);
    let future = json_lines(&sluice(
        &dir,
        &["show", "aa11", "--json", "--since", "2999-01-01T00:00:00Z"],
    ));
    assert!(future.is_empty());
    // From the time of record 5 on.
    let time = all[5]["time"].as_str().unwrap();
    let later = json_lines(&sluice(&dir, &["show", "aa11", "--json", "--since", time]));
    assert!(later.len() >= 7 && later.iter().any(|v| v["seq"] == 5));
    assert!(later.iter().all(|v| v["time"].as_str().unwrap() >= time));
    let listed = json_lines(&sluice(&dir, &["list", "--json", "--since", "2999-01-01"]));
    assert!(listed.is_empty());

    let out = sluice(&dir, &["show", "aa11", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'yesterday'"), "{err}");
}

#[test]
fn verify_checks_every_session() {
    let tmp = TempDir::new("verify");
    let dir = three_sessions(&tmp);
    let out = sluice(&dir, &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("ok      aa11  12 records"), "{text}");
    assert!(text.contains("no end record"), "{text}");
    assert!(text.contains("3 session(s) verified, 0 failed"), "{text}");
    let reports = json_lines(&sluice(&dir, &["verify", "--json"]));
    assert_eq!(reports.len(), 3);
    assert!(reports.iter().all(|r| r["ok"] == true));

    let empty = TempDir::new("verify-empty");
    let out = sluice(&empty.audit(), &["verify"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("no audit records"));
}

#[test]
fn stats_counts_by_decision_decider_path_and_session() {
    let tmp = TempDir::new("stats");
    let dir = three_sessions(&tmp);
    let out = sluice(&dir, &["stats", "--json", "--top", "3"]);
    let v = &json_lines(&out)[0];
    // 10 + 4 + 6 decisions.
    assert_eq!(
        v["decisions"],
        serde_json::json!({"allowed": 13, "denied": 6, "error": 1})
    );
    assert_eq!(v["top_paths"].as_array().unwrap().len(), 3);
    // Most asked first, then by path.
    assert_eq!(v["top_paths"][0]["path"], "/home/ana/.ssh/id_2", "{v}");
    assert_eq!(v["top_paths"][0]["counts"]["denied"], 3, "{v}");
    assert_eq!(
        v["top_paths"][1]["path"], "/home/ana/proj/src/file0.rs",
        "{v}"
    );
    assert_eq!(v["deciders"][0]["by"], "rule");
    assert_eq!(v["deciders"][0]["rule"], "read $WORKSPACE");
    assert_eq!(v["deciders"][0]["counts"]["allowed"], 10);
    assert_eq!(v["deciders"][1]["rule"], "deny ~/.ssh");
    assert_eq!(v["deciders"][1]["counts"]["denied"], 6);
    assert_eq!(v["sessions"].as_array().unwrap().len(), 3);
    assert_eq!(v["sessions"][1]["session"], "aa22");

    let v = &json_lines(&sluice(&dir, &["stats", "--json", "--decision", "denied"]))[0];
    assert_eq!(
        v["decisions"],
        serde_json::json!({"allowed": 0, "denied": 6, "error": 0})
    );
    let out = sluice(&dir, &["stats"]);
    let text = stdout(&out);
    assert!(
        text.starts_with("decisions: 20 (13 allowed, 6 denied, 1 error)"),
        "{text}"
    );
    assert!(text.contains("rule: deny ~/.ssh"), "{text}");
    assert!(text.contains("person"), "{text}");
}

#[test]
fn tail_shows_the_most_recent_records() {
    let tmp = TempDir::new("tail");
    let dir = three_sessions(&tmp);
    let last = json_lines(&sluice(&dir, &["tail", "-n", "3", "--json"]));
    assert_eq!(last.len(), 3);
    // bb33 was written last.
    assert!(last.iter().all(|v| v["session"] == "bb33"), "{last:?}");
    assert_eq!(last[2]["seq"], 6);
    let denied = json_lines(&sluice(
        &dir,
        &[
            "tail",
            "--json",
            "--decision",
            "denied",
            "--session",
            "aa11",
        ],
    ));
    assert_eq!(denied.len(), 3);
    let text = stdout(&sluice(&dir, &["tail", "-n", "1"]));
    assert!(text.starts_with("bb33       6  "), "{text}");
}

#[test]
fn tail_follow_prints_new_records() {
    let tmp = TempDir::new("follow");
    let dir = tmp.audit();
    let log = AuditLog::open(&dir, "live", &start()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["audit", "tail", "--follow", "--json", "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(first.contains(r#""kind":"start""#), "{first}");
    log.append(&decision(2)).unwrap();
    let next = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&next).unwrap();
    assert_eq!(
        (v["seq"].as_u64(), v["decision"].as_str()),
        (Some(1), Some("denied"))
    );
    // A session that starts while following is picked up too.
    write_session(&dir, "later", 0);
    let next = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(next.contains(r#""session":"later""#), "{next}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_default_directory_follows_xdg_state_home() {
    let tmp = TempDir::new("xdg");
    write_session(&tmp.0.join("sluice/audit"), "xdg1", 1);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["audit", "list", "--json"])
        .env("XDG_STATE_HOME", &tmp.0)
        .output()
        .unwrap();
    let sessions = json_lines(&out);
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["session"], "xdg1");

    let home = TempDir::new("home");
    write_session(&home.0.join(".local/state/sluice/audit"), "home1", 1);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["audit", "list", "--json"])
        .env_remove("XDG_STATE_HOME")
        .env("HOME", &home.0)
        .output()
        .unwrap();
    assert_eq!(json_lines(&out)[0]["session"], "home1");
}
