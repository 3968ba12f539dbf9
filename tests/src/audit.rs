//! A fixture's audit record, read back the way a reviewer would: through the
//! `sluice audit` commands and their `--json` output, never by parsing the
//! files behind sluice's back (except where a test tampers with one).

use std::path::Path;

use serde_json::Value;

use crate::{execute, Fixture, Outcome};

/// `sluice audit ARGS --dir DIR`.
pub fn audit_in(fx: &Fixture, dir: &Path, args: &[&str]) -> Outcome {
    let mut cmd = fx.sluice_cli_command(&["audit"]);
    cmd.args(args).arg("--dir").arg(dir);
    execute(cmd)
}

/// `sluice audit ARGS` on the fixture's audit directory.
pub fn audit(fx: &Fixture, args: &[&str]) -> Outcome {
    audit_in(fx, &fx.audit_dir(), args)
}

/// Each line of `out`'s stdout as JSON.
#[track_caller]
pub fn json_lines(out: &Outcome) -> Vec<Value> {
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{out}"))
        })
        .collect()
}

/// The session ids in the audit directory (`sluice audit list --json`).
#[track_caller]
pub fn sessions(fx: &Fixture) -> Vec<String> {
    let out = audit(fx, &["list", "--json"]);
    out.assert_code(0);
    // `list` shows the newest first.
    let mut ids: Vec<String> = json_lines(&out)
        .iter()
        .map(|s| s["session"].as_str().expect("a session id").to_owned())
        .collect();
    ids.reverse();
    ids
}

/// The one session recorded so far.
#[track_caller]
pub fn only_session(fx: &Fixture) -> String {
    let all = sessions(fx);
    assert_eq!(all.len(), 1, "expected one audited session, found {all:?}");
    all.into_iter().next().unwrap()
}

/// Every record of `session`, in file order (`sluice audit show ID --jsonl`).
#[track_caller]
pub fn records(fx: &Fixture, session: &str) -> Vec<Value> {
    let out = audit(fx, &["show", session, "--jsonl"]);
    out.assert_code(0);
    json_lines(&out)
}

/// The decision records among `records`.
pub fn decisions(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["kind"] == "decision").collect()
}

/// The decision records about `path` (asked for by that name).
pub fn decisions_about<'a>(records: &'a [Value], path: &str) -> Vec<&'a Value> {
    decisions(records)
        .into_iter()
        .filter(|r| r["path_asked"] == path)
        .collect()
}

/// The one decision about `path`; panics, listing the decisions, otherwise.
#[track_caller]
pub fn decision_about<'a>(records: &'a [Value], path: &str) -> &'a Value {
    let found = decisions_about(records, path);
    assert_eq!(
        found.len(),
        1,
        "expected one decision about {path}, found {}:\n{}",
        found.len(),
        pretty(&decisions(records))
    );
    found[0]
}

/// Records as indented JSON, for failure messages.
pub fn pretty(records: &[&Value]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string_pretty(r).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}
