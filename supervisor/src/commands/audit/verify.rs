//! `sluice audit verify`: the hash chains and the ledger of sessions.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::audit::ledger::{self, LedgerReport};
use crate::audit::read;
use crate::audit::verify::{self, Report, Status};

use super::{nothing_in, resolve, Out};

pub(super) fn verify(out: &mut Out, dir: &Path, id: Option<&str>, json: bool) -> Result<i32> {
    let files = match id {
        Some(id) => vec![resolve(dir, id)?],
        None => read::session_files(dir)?,
    };
    let has_ledger = dir.join(ledger::FILE).exists();
    if files.is_empty() && !has_ledger {
        return nothing_in(out, dir, json);
    }
    let (mut failed, mut incomplete, mut running) = (0, 0, 0);
    let mut reports = Vec::with_capacity(files.len());
    for file in &files {
        let report = verify::verify_file(file)?;
        let status = report.status(crate::platform::session_is_live(&file.session));
        match status {
            Status::Failed => failed += 1,
            Status::Incomplete => incomplete += 1,
            Status::Running => running += 1,
            Status::Ok => {}
        }
        if json {
            writeln!(out, "{}", report_json(&report, status))?;
        } else {
            write_report(out, &report, status)?;
        }
        reports.push(report);
    }
    let sessions: Vec<ledger::Session> = reports
        .iter()
        .map(|r| ledger::Session {
            id: &r.session,
            start: r.start_hash,
            // A stacked session's record, kept by the outer one, names a
            // line of the inner session's ledger, which was not kept: its
            // own chain is verified, the ledger is not asked about it.
            ledger: match crate::platform::stacked_inside(dir, &r.session) {
                Some(_) => None,
                None => r.ledger,
            },
        })
        .collect();
    let ledger = ledger::check(dir, &sessions, id.is_none())?;
    if json {
        writeln!(out, "{}", ledger_json(&ledger))?;
    } else {
        write_ledger(out, &ledger)?;
    }
    if !json {
        writeln!(
            out,
            "{} session(s) verified: {} ok, {running} running, {incomplete} incomplete, \
             {failed} failed{}",
            files.len(),
            files.len() - failed - incomplete - running,
            if ledger.problems.is_empty() {
                ""
            } else {
                "; the ledger FAILED"
            }
        )?;
    }
    Ok(if failed > 0 || !ledger.problems.is_empty() {
        1
    } else if incomplete > 0 {
        2
    } else {
        0
    })
}

fn write_report(out: &mut Out, r: &Report, status: Status) -> Result<()> {
    if status != Status::Failed {
        let word = match status {
            Status::Incomplete => "INCOMPLETE",
            other => other.as_str(),
        };
        write!(out, "{word:<7} {}  {} records", r.session, r.records)?;
        if let Some(line) = r.torn_line {
            write!(
                out,
                "; torn final record at line {line} (a crash or a full disk during a write)"
            )?;
        }
        if !r.ended {
            match status {
                Status::Running => write!(out, "; no end record yet (the session is running)")?,
                _ => write!(
                    out,
                    "; no end record (the supervisor was killed or the disk filled: what \
                     the session did after its last record is unknown)"
                )?,
            }
        }
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "FAILED  {}  {}", r.session, r.path.display())?;
    for f in &r.findings {
        let seq = f.seq.map_or(String::new(), |s| format!(", seq {s}"));
        writeln!(out, "  line {}{seq}: {f}", f.line)?;
    }
    if let Some(line) = r.torn_line {
        writeln!(
            out,
            "  torn final record at line {line} (a crash or a full disk during a write)"
        )?;
    }
    Ok(())
}

fn write_ledger(out: &mut Out, l: &LedgerReport) -> Result<()> {
    if l.problems.is_empty() {
        writeln!(out, "ok      ledger  {} session(s)", l.entries)?;
        return Ok(());
    }
    writeln!(out, "FAILED  ledger  {}", l.path.display())?;
    for p in &l.problems {
        writeln!(out, "  {p}")?;
    }
    Ok(())
}

fn ledger_json(l: &LedgerReport) -> serde_json::Value {
    serde_json::json!({
        "ledger": l.path,
        "ok": l.problems.is_empty(),
        "sessions": l.entries,
        "problems": l.problems,
    })
}

fn report_json(r: &Report, status: Status) -> serde_json::Value {
    let problems: Vec<_> = r
        .findings
        .iter()
        .map(|f| serde_json::json!({"line": f.line, "seq": f.seq, "problem": f.to_string()}))
        .collect();
    serde_json::json!({
        "session": r.session,
        "file": r.path,
        "status": status.as_str(),
        "ok": matches!(status, Status::Ok | Status::Running),
        "chain_intact": r.ok(),
        "records": r.records,
        "torn_line": r.torn_line,
        "ended": r.ended,
        "problems": problems,
    })
}
