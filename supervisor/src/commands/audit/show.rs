//! `sluice audit show`: the records of one session.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::audit::escape::{escape_os, for_terminal, path_for_terminal};
use crate::audit::filter::Filter;
use crate::audit::read::SessionLog;
use crate::audit::{ConnectionRecord, Entry, Record};

use super::{resolve, Out};

/// How `audit show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ShowFormat {
    Text,
    /// One document: `{"session", "file", "records": [...]}`.
    Json,
    /// The selected lines as stored.
    JsonLines,
}

pub(super) fn show(
    out: &mut Out,
    dir: &Path,
    id: &str,
    filter: &Filter,
    format: ShowFormat,
) -> Result<i32> {
    let file = resolve(dir, id)?;
    let log = SessionLog::load(&file)?;
    let selected = log.lines.iter().filter(|l| filter.matches(&l.entry));
    match format {
        ShowFormat::Text => {}
        ShowFormat::JsonLines => {
            for line in selected {
                writeln!(out, "{}", line.text)?;
            }
            return Ok(0);
        }
        ShowFormat::Json => {
            // Each stored line is one JSON record: parsed back, so the
            // document holds them as objects, not strings.
            let records = selected
                .map(|line| serde_json::from_str(&line.text))
                .collect::<Result<Vec<serde_json::Value>, _>>()
                .context("audit show: a stored record is not JSON")?;
            let document = serde_json::json!({
                "session": log.session,
                "file": escape_os(log.path.as_os_str()),
                "unreadable_lines": log.unreadable,
                "torn": log.torn,
                "records": records,
            });
            writeln!(out, "{document}")?;
            return Ok(0);
        }
    }
    writeln!(out, "session {}  ({})", log.session, log.path.display())?;
    if let Some(outer) = crate::platform::stacked_inside(dir, &log.session) {
        writeln!(
            out,
            "  stacked inside session {outer}: kept by it from inside its sandbox, \
             where its program could write too: this session's own claims"
        )?;
    }
    if let Some((entry, start)) = log.start() {
        let argv: Vec<_> = start.argv.iter().map(|a| escape_os(a)).collect();
        writeln!(
            out,
            "  started {}  policy '{}' (sha256 {})  sluice {}",
            entry.time,
            for_terminal(&start.policy),
            for_terminal(&start.policy_digest),
            for_terminal(&start.sluice_version)
        )?;
        writeln!(out, "  command: {}", for_terminal(&argv.join(" ")))?;
        writeln!(
            out,
            "  workspace: {}  supervisor pid {}, program pid {}",
            path_for_terminal(&start.workspace),
            start.supervisor_pid,
            start.child_pid
        )?;
        writeln!(
            out,
            "  enforcement: {}",
            for_terminal(&start.enforcement.to_string())
        )?;
    }
    writeln!(out)?;
    for line in selected {
        writeln!(out, "{}", row(&line.entry))?;
    }
    if log.unreadable > 0 || log.torn {
        writeln!(
            out,
            "\n({} unreadable line(s){}; see `sluice audit verify {}`)",
            log.unreadable,
            if log.torn { ", torn final record" } else { "" },
            log.session
        )?;
    }
    Ok(0)
}

/// One record as a line of text: seq, time, then what happened.
pub(super) fn row(e: &Entry) -> String {
    let what = match &e.record {
        Record::Start(s) => format!(
            "start    policy '{}' (sha256 {:.12}...)",
            for_terminal(&s.policy),
            for_terminal(&s.policy_digest)
        ),
        Record::End(end) => {
            let mut text = format!(
                "end      {}: {} allowed, {} denied, {} error",
                for_terminal(&end.exit),
                end.counts.allowed,
                end.counts.denied,
                end.counts.error
            );
            for q in &end.quarantined {
                let path = escape_os(q.path.as_os_str());
                let path = for_terminal(&path);
                text += &match (&q.moved_to, &q.why) {
                    (Some(to), Some(why)) => format!(
                        "; moved aside ({}) {path} -> {}",
                        for_terminal(why),
                        path_for_terminal(to)
                    ),
                    (None, Some(why)) => format!("; {}: {path}", for_terminal(why)),
                    (Some(to), None) => {
                        format!("; quarantined {path} -> {}", path_for_terminal(to))
                    }
                    (None, None) => format!("; could not quarantine {path}"),
                };
            }
            text
        }
        Record::Connection(c) => connection_line(c, false),
        Record::ConnectionOpen(c) => connection_line(c, true),
        Record::Decision(d) => {
            let mut text = format!(
                "{:<8} {:<10} {}",
                d.decision,
                d.access,
                path_for_terminal(&d.path_asked)
            );
            if let Some(opened) = d.path_opened.as_ref().filter(|p| **p != d.path_asked) {
                text += &format!(" -> {}", path_for_terminal(opened));
            }
            let flags: Vec<_> = d.flags.names().collect();
            if !flags.is_empty() {
                text += &format!(" ({})", flags.join(","));
            }
            text += &format!("  [{}", d.by);
            if let Some(rule) = &d.rule {
                text += &format!(": {}", for_terminal(rule));
            }
            text += "]";
            if let Some(reason) = &d.reason {
                text += &format!(" {}", for_terminal(reason));
            }
            let exe = d
                .exe
                .as_ref()
                .map_or("?".into(), |p| escape_os(p.as_os_str()).into_owned());
            text += &format!(
                "  pid {} {} ({} via {}, request {})  {}us",
                d.pid,
                for_terminal(&exe),
                for_terminal(&d.client),
                d.via,
                d.request_id,
                d.latency_us
            );
            text
        }
    };
    format!("{:>6}  {}  {what}", e.seq, e.time)
}

/// A connection's line: as it opened (`open`), or when it ended, with its
/// bytes and duration.
fn connection_line(c: &ConnectionRecord, open: bool) -> String {
    let mut text = format!(
        "{:<8} {:<10} {}:{}",
        c.decision,
        "net",
        for_terminal(&c.host),
        c.port
    );
    if let Some(address) = &c.address {
        text += &format!(" -> {}", for_terminal(address));
    }
    text += &format!("  [{}", c.by);
    if let Some(rule) = &c.rule {
        text += &format!(": {}", for_terminal(rule));
    }
    text += "]";
    if let Some(reason) = &c.reason {
        text += &format!(" {}", for_terminal(reason));
    }
    text += &match open {
        true => format!("  via {}, opened", for_terminal(&c.via)),
        false => format!(
            "  via {}, {} bytes sent, {} received, {} ms",
            for_terminal(&c.via),
            c.sent,
            c.received,
            c.duration_ms
        ),
    };
    text
}
