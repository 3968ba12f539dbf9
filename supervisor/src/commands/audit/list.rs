//! `sluice audit list`: one line per session.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::audit::escape::{escape_os, for_terminal, path_for_terminal};
use crate::audit::filter::Filter;
use crate::audit::read::{Line, SessionFile};
use crate::audit::verify::{self, Report, Status};
use crate::audit::{Counts, Record};

use super::{files, load, nothing_in, Out};

/// What `audit list` selects beyond the records' filter.
pub(super) struct Listing {
    /// The newest N sessions.
    pub(super) count: Option<usize>,
    /// Sessions whose workspace is beneath this (absolute) directory.
    pub(super) workspace: Option<PathBuf>,
}

/// `--workspace DIR` as the records name workspaces: absolute and, where it
/// exists, canonical (a relative DIR is taken from the current directory).
pub(super) fn absolute_dir(dir: &Path) -> Result<PathBuf> {
    let absolute = std::env::current_dir()
        .context("the current directory")?
        .join(dir);
    Ok(absolute.canonicalize().unwrap_or(absolute))
}

/// A word of a command as a shell would need it: `'two words'`.
fn quoted(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    match plain {
        true => word.to_owned(),
        false => format!("'{}'", word.replace('\'', "'\\''")),
    }
}

/// `12s`, `3m04s`, `2h05m`, `3d04h`.
fn duration_text(micros: i64) -> String {
    let s = micros.max(0) / 1_000_000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

pub(super) fn list(
    out: &mut Out,
    dir: &Path,
    filter: &Filter,
    listing: &Listing,
    json: bool,
) -> Result<i32> {
    let mut logs = load(&files(dir, filter)?)?;
    if logs.is_empty() {
        return nothing_in(out, dir, json);
    }
    // Newest first; sessions without a start record (torn) still last.
    let started = logs.iter().position(|l| l.start().is_none());
    let torn = started.map_or(Vec::new(), |i| logs.split_off(i));
    logs.reverse();
    logs.extend(torn);
    let narrowed = filter.decisions_only() || filter.since.is_some();
    if !json {
        writeln!(
            out,
            "{:<18} {:<27} {:>8} {:<12} {:>7} {:>6} {:>5}  {:<10} {:<10} {:<24} COMMAND",
            "SESSION",
            "STARTED",
            "DURATION",
            "POLICY",
            "ALLOWED",
            "DENIED",
            "ERROR",
            "EXIT",
            "CHAIN",
            "WORKSPACE"
        )?;
    }
    let mut shown = 0;
    for log in &logs {
        if listing.count.is_some_and(|n| shown >= n) {
            break;
        }
        let start = log.start();
        if let Some(want) = &listing.workspace {
            if !start.is_some_and(|(_, s)| s.workspace.starts_with(want)) {
                continue;
            }
        }
        let selected: Vec<&Line> = log
            .lines
            .iter()
            .filter(|l| filter.matches(&l.entry))
            .collect();
        if narrowed && selected.is_empty() {
            continue;
        }
        shown += 1;
        let mut counts = Counts::default();
        for d in selected.iter().filter_map(|l| l.entry.decision()) {
            counts.add(d.decision);
        }
        let duration = match (start.and_then(|(e, _)| e.micros()), log.end()) {
            (Some(from), Some(end)) => end.micros().map(|to| to - from),
            _ => None,
        };
        let exit = log.end().and_then(|e| match &e.record {
            Record::End(end) => Some(end.exit.clone()),
            _ => None,
        });
        let report = verify::verify_file(&SessionFile {
            session: log.session.clone(),
            path: log.path.clone(),
        })?;
        let chain = chain_word(&report, crate::platform::session_is_live(&log.session));
        if json {
            let value = serde_json::json!({
                "session": log.session,
                "started": start.map(|(e, _)| &e.time),
                "policy": start.map(|(_, s)| &s.policy),
                "policy_digest": start.map(|(_, s)| &s.policy_digest),
                "counts": counts,
                "exit": exit,
                "records": log.lines.len(),
                "chain": chain,
                "duration_us": duration,
                "workspace": start.map(|(_, s)| escape_os(s.workspace.as_os_str())),
                "command": start.map(|(_, s)| {
                    s.argv.iter().map(|a| escape_os(a)).collect::<Vec<_>>()
                }),
            });
            writeln!(out, "{value}")?;
        } else {
            let duration = match (duration, chain) {
                (Some(d), _) => duration_text(d),
                (None, "running") => "running".to_owned(),
                (None, _) => "-".to_owned(),
            };
            let workspace = start.map_or("-".into(), |(_, s)| path_for_terminal(&s.workspace));
            let command = start.map_or("-".into(), |(_, s)| {
                let words: Vec<String> = s
                    .argv
                    .iter()
                    .map(|a| quoted(&for_terminal(&escape_os(a))))
                    .collect();
                words.join(" ")
            });
            writeln!(
                out,
                "{:<18} {:<27} {:>8} {:<12} {:>7} {:>6} {:>5}  {:<10} {chain:<10} {workspace:<24} {command}",
                log.session,
                start.map_or("-", |(e, _)| e.time.as_str()),
                duration,
                for_terminal(start.map_or("-", |(_, s)| s.policy.as_str())),
                counts.allowed,
                counts.denied,
                counts.error,
                for_terminal(exit.as_deref().unwrap_or("-")),
            )?;
        }
    }
    Ok(0)
}

/// `ok`, `running`, `INCOMPLETE` or `FAILED`.
fn chain_word(report: &Report, live: bool) -> &'static str {
    match report.status(live) {
        Status::Ok => "ok",
        Status::Running => "running",
        Status::Incomplete => "INCOMPLETE",
        Status::Failed => "FAILED",
    }
}
