//! Helpers shared by the audit tests: sample records, sessions written
//! with the API, and the `sluice audit` command.

// Each test file uses its own subset of these.
#![allow(dead_code)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use supervisor::audit::read::SessionFile;
use supervisor::audit::verify::{verify_file, Report};
use supervisor::audit::{
    chain, Access, AuditLog, By, Decision, DecisionRecord, Op, StartRecord, Via,
};

/// A fresh private directory, removed when the test ends.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("sluice-audit-test-{name}-"))
            .tempdir()
            .unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn audit(&self) -> PathBuf {
        self.path().join("audit")
    }
}

pub fn start() -> StartRecord {
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

pub fn path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes.to_vec()))
}

/// A varied decision: every third denied by a rule, every fifth asked of a
/// person, every seventh an error.
pub fn decision(i: u64) -> DecisionRecord {
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
        flags: proto::OpenFlags {
            create: i % 2 == 1,
            ..proto::OpenFlags::default()
        },
        decision,
        by,
        rule,
        reason: (decision == Decision::Error).then(|| "No such file or directory".to_owned()),
        latency_us: 10 + i,
    }
}

/// A finished session of `n` decisions; returns its file.
pub fn write_session(dir: &Path, id: &str, n: u64) -> PathBuf {
    let log = AuditLog::open(dir, id, &start()).unwrap();
    for i in 0..n {
        log.append(&decision(i)).unwrap();
    }
    log.finish("exit 0").unwrap();
    log.path().to_owned()
}

pub fn verify(dir: &Path, id: &str) -> Report {
    verify_file(&SessionFile {
        session: id.into(),
        path: dir.join(format!("{id}.jsonl")),
    })
    .unwrap()
}

pub fn lines_of(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn write_lines(file: &Path, lines: &[String]) {
    std::fs::write(
        file,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

pub fn sluice(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("audit")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{out:?}");
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}
