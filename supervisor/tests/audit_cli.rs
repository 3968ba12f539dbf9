//! `sluice audit list|show|verify|stats|tail` over sessions written with the
//! API.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use supervisor::audit::AuditLog;
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
    // Newest first.
    assert!(
        rows[3].starts_with("aa11 ") && rows[3].contains("default"),
        "{text}"
    );
    assert!(
        rows[3].contains("exit 0") && rows[3].contains(" ok "),
        "{text}"
    );
    assert!(
        rows[1].starts_with("bb33 ") && rows[1].contains(" - "),
        "{text}"
    );

    let sessions = json_lines(&sluice(&dir, &["list", "--json"]));
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions[2]["session"], "aa11");
    assert_eq!(sessions[2]["policy"], "default");
    assert_eq!(sessions[2]["chain"], "ok");
    assert_eq!(sessions[2]["records"], 12);
    assert_eq!(
        sessions[2]["counts"],
        serde_json::json!({"allowed": 6, "denied": 3, "error": 1})
    );
    assert_eq!(sessions[0]["exit"], serde_json::Value::Null);

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

    let lines = json_lines(&sluice(&dir, &["show", "aa22", "--jsonl"]));
    let file_lines = lines_of(&dir.join("aa22.jsonl"));
    assert_eq!(lines.len(), file_lines.len());
    let raw = stdout(&sluice(&dir, &["show", "aa22", "--jsonl"]));
    assert_eq!(raw.lines().collect::<Vec<_>>(), file_lines);
    // --json: the same records in one JSON document, with the session.
    let doc: serde_json::Value =
        serde_json::from_str(&stdout(&sluice(&dir, &["show", "aa22", "--json"]))).unwrap();
    assert_eq!(doc["session"], "aa22", "{doc}");
    assert_eq!(
        doc["records"].as_array().map(Vec::len),
        Some(file_lines.len()),
        "{doc}"
    );

    let denied = json_lines(&sluice(
        &dir,
        &["show", "aa11", "--jsonl", "--decision", "denied"],
    ));
    assert_eq!(denied.len(), 3);
    assert!(denied.iter().all(|v| v["decision"] == "denied"));
    let ssh = json_lines(&sluice(
        &dir,
        &["show", "aa11", "--jsonl", "--path", "*/.ssh/*"],
    ));
    assert_eq!(ssh.len(), 3);
    let both = json_lines(&sluice(
        &dir,
        &["show", "aa11", "--jsonl", "--decision", "allowed,error"],
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
    let all = json_lines(&sluice(&dir, &["show", "aa11", "--jsonl", "--since", "1h"]));
    assert_eq!(all.len(), 12);
    let future = json_lines(&sluice(
        &dir,
        &["show", "aa11", "--jsonl", "--since", "2999-01-01T00:00:00Z"],
    ));
    assert!(future.is_empty());
    // From the time of record 5 on.
    let time = all[5]["time"].as_str().unwrap();
    let later = json_lines(&sluice(&dir, &["show", "aa11", "--jsonl", "--since", time]));
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
    // bb33 has no end record and is not running: incomplete, exit 2.
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("ok      aa11  12 records"), "{text}");
    assert!(
        text.contains("INCOMPLETE bb33  7 records; no end record"),
        "{text}"
    );
    assert!(
        text.contains("3 session(s) verified: 2 ok, 0 running, 1 incomplete, 0 failed"),
        "{text}"
    );
    let json = stdout(&sluice(&dir, &["verify", "--json"]));
    let reports: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 4, "three sessions and the ledger");
    let statuses: Vec<_> = reports[..3]
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "ok", "incomplete"]);
    assert!(reports[..3].iter().all(|r| r["chain_intact"] == true));
    assert_eq!(reports[3]["ok"], true, "{}", reports[3]);

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
    write_session(&tmp.path().join("sluice/audit"), "xdg1", 1);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["audit", "list", "--json"])
        .env("XDG_STATE_HOME", tmp.path())
        .output()
        .unwrap();
    let sessions = json_lines(&out);
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["session"], "xdg1");

    let home = TempDir::new("home");
    write_session(&home.path().join(".local/state/sluice/audit"), "home1", 1);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["audit", "list", "--json"])
        .env_remove("XDG_STATE_HOME")
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(json_lines(&out)[0]["session"], "home1");
}
