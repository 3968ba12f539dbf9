//! What the broker benches share: a broker state as `sluice run` builds it,
//! with a real audit log, so every measured request pays for its record.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use supervisor::audit::{AuditLog, StartRecord};
use supervisor::broker::{Approvals, Shared};

/// `policy`, `ask` answered deny, the audit log in `dir/audit`.
pub fn audited_shared(dir: &Path, policy: policies::Policy) -> Arc<Shared> {
    let start = StartRecord {
        sluice_version: "bench".into(),
        policy: "bench".into(),
        policy_digest: String::new(),
        enforcement: serde_json::Value::Null,
        argv: Vec::new(),
        workspace: dir.to_path_buf(),
        supervisor_pid: std::process::id(),
        child_pid: 0,
    };
    let audit = AuditLog::open(&dir.join("audit"), "bench", &start).unwrap();
    Arc::new(Shared::new(
        "bench".into(),
        policy,
        Approvals::NonInteractive { allow: false },
        Some(audit),
        Vec::new(),
    ))
}

/// A fresh private directory `sluice-bench-<name>-XXXXXX` under the temporary
/// directory, canonical, kept after the bench for a look.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(&format!("sluice-bench-{name}-"))
        .tempdir()
        .unwrap()
        .keep();
    dir.canonicalize().unwrap()
}

/// `text` as a policy file, with `$HOME`, `$WORKSPACE` and `$TMPDIR` all
/// `dir`.
pub fn policy(text: &str, dir: &Path) -> policies::Policy {
    let spec = policies::load_str("bench.toml", text, dir).unwrap();
    spec.resolve(&policies::Vars {
        home: dir.to_path_buf(),
        workspace: dir.to_path_buf(),
        tmpdir: dir.to_path_buf(),
    })
    .unwrap()
}
