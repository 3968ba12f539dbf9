//! `sluice audit list | show | verify | stats | tail`: review the audit
//! record (see [`crate::audit`]).
//!
//! Everything printed that a sandboxed program could have chosen (paths,
//! its client name, reasons) goes through [`for_terminal`] first.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::audit::escape::{escape_os, for_terminal};
use crate::audit::filter::{AccessWanted, Filter};
use crate::audit::ledger::{self, LedgerReport};
use crate::audit::read::{self, Follower, Line, SessionFile, SessionLog};
use crate::audit::verify::{self, Report, Status};
use crate::audit::{stats, time, AuditLog, Counts, Decision, Entry, Record};

#[derive(Debug, Args)]
pub struct AuditCommand {
    /// The audit directory [default: $XDG_STATE_HOME/sluice/audit, or
    /// ~/.local/state/sluice/audit].
    #[arg(long, value_name = "DIR", global = true)]
    dir: Option<PathBuf>,
    /// Print JSON instead of text: `list` and `tail` print one object per
    /// line (JSON lines); `show`, `verify` and `stats` one JSON document.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// One line per session, newest first: start, duration, policy,
    /// decisions, exit, whether its chain verifies, workspace, command.
    List {
        #[command(flatten)]
        select: SelectArgs,
        /// Only the N newest sessions (after the other filters).
        #[arg(short = 'n', long = "count", value_name = "N")]
        count: Option<usize>,
        /// Only sessions whose workspace is DIR or beneath it.
        #[arg(long, value_name = "DIR")]
        workspace: Option<PathBuf>,
    },
    /// The records of one session (--json: one document, the records in
    /// an array; --jsonl: the lines as stored, one record per line).
    Show {
        /// A session id, or a prefix that names one session.
        session: String,
        #[command(flatten)]
        records: RecordArgs,
        /// The selected records as stored in the session's file, one JSON
        /// record per line (JSON lines), byte for byte.
        #[arg(long)]
        jsonl: bool,
    },
    /// Check the hash chains of every session, or of one, and the ledger
    /// of sessions; exit 1 if any record was edited, removed or reordered
    /// (or a whole session's record removed), 2 if none was but a session
    /// that is not running has no end record or a torn last record.
    Verify {
        /// A session id, or a prefix that names one session.
        session: Option<String>,
    },
    /// Decisions counted by outcome, by rule or person, by path, by session.
    Stats {
        #[command(flatten)]
        select: SelectArgs,
        /// How many of the most asked-for paths to show.
        #[arg(long, default_value_t = 10, value_name = "N")]
        top: usize,
    },
    /// The most recent records, across sessions.
    Tail {
        #[command(flatten)]
        select: SelectArgs,
        /// How many records.
        #[arg(short = 'n', long = "lines", default_value_t = 10, value_name = "N")]
        lines: usize,
        /// Keep printing records as they are appended.
        #[arg(short, long)]
        follow: bool,
    },
}

#[derive(Debug, Args)]
struct SelectArgs {
    /// Only this session (an id or a prefix of one).
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    #[command(flatten)]
    records: RecordArgs,
}

#[derive(Debug, Args)]
struct RecordArgs {
    /// Only decisions about a path (asked or opened) matching this glob;
    /// `*` matches `/` too.
    #[arg(long, value_name = "GLOB")]
    path: Option<String>,
    /// Only these decisions: allowed, denied, error (repeat the option or
    /// separate with commas).
    #[arg(long, value_name = "DECISION", value_delimiter = ',')]
    decision: Vec<Decision>,
    /// Only decisions about this access: read (read or read-write), write
    /// (write or read-write), net (connections through the proxy).
    #[arg(long, value_enum, value_name = "read|write|net")]
    access: Option<AccessArg>,
    /// Only records since TIME: RFC 3339 (2026-11-23T14:00:00Z) or a
    /// duration back from now (30s, 10m, 2h, 3d, 1w).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    since: Option<i64>,
}

/// `--access`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AccessArg {
    Read,
    Write,
    Net,
}

fn parse_since(text: &str) -> Result<i64, time::TimeError> {
    time::parse_since(text, time::now_micros())
}

impl SelectArgs {
    fn filter(&self) -> Result<Filter> {
        let mut f = self.records.filter()?;
        f.session = self.session.clone();
        Ok(f)
    }
}

impl RecordArgs {
    fn filter(&self) -> Result<Filter> {
        let mut f = Filter::default();
        f.decisions = self.decision.clone();
        f.since = self.since;
        f.access = self.access.map(|a| match a {
            AccessArg::Read => AccessWanted::Read,
            AccessArg::Write => AccessWanted::Write,
            AccessArg::Net => AccessWanted::Net,
        });
        if let Some(glob) = &self.path {
            f.set_path_glob(glob).map_err(anyhow::Error::msg)?;
        }
        Ok(f)
    }
}

pub fn run(cmd: AuditCommand) -> Result<i32> {
    let dir = match cmd.dir {
        Some(dir) => dir,
        None => AuditLog::default_dir()?,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let json = cmd.json;
    let result = match &cmd.action {
        Action::List {
            select,
            count,
            workspace,
        } => {
            let listing = Listing {
                count: *count,
                workspace: workspace.as_deref().map(absolute_dir).transpose()?,
            };
            list(&mut out, &dir, &select.filter()?, &listing, json)
        }
        Action::Show {
            session,
            records,
            jsonl,
        } => {
            let format = match (json, *jsonl) {
                (true, true) => bail!("audit show: give --json (one document) or --jsonl (the lines as stored), not both"),
                (true, false) => ShowFormat::Json,
                (false, true) => ShowFormat::JsonLines,
                (false, false) => ShowFormat::Text,
            };
            show(&mut out, &dir, session, &records.filter()?, format)
        }
        Action::Verify { session } => verify(&mut out, &dir, session.as_deref(), json),
        Action::Stats { select, top } => stats(&mut out, &dir, &select.filter()?, *top, json),
        Action::Tail {
            select,
            lines,
            follow,
        } => tail(&mut out, &dir, &select.filter()?, *lines, *follow, json),
    };
    let result = result.and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        // `sluice audit show ... | head` is not an error.
        Err(e) if is_broken_pipe(&e) => Ok(0),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

type Out<'a> = io::BufWriter<io::StdoutLock<'a>>;

/// Session files in `dir` whose id the filter selects.
fn files(dir: &Path, filter: &Filter) -> Result<Vec<SessionFile>> {
    let mut files = read::session_files(dir)?;
    files.retain(|f| filter.session_matches(&f.session));
    Ok(files)
}

/// The session named by an id or by a prefix of exactly one id.
fn resolve(dir: &Path, id: &str) -> Result<SessionFile> {
    let all = read::session_files(dir)?;
    if let Some(exact) = all.iter().find(|f| f.session == id) {
        return Ok(exact.clone());
    }
    let matching: Vec<_> = all.iter().filter(|f| f.session.starts_with(id)).collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no session '{}' in {}", for_terminal(id), dir.display()),
        many => {
            let ids: Vec<_> = many.iter().map(|f| f.session.as_str()).collect();
            bail!(
                "'{}' names several sessions: {}",
                for_terminal(id),
                ids.join(", ")
            )
        }
    }
}

/// Loads sessions, oldest start first (sessions without a start record last).
fn load(files: &[SessionFile]) -> Result<Vec<SessionLog>> {
    let mut logs = files
        .iter()
        .map(SessionLog::load)
        .collect::<io::Result<Vec<_>>>()?;
    logs.sort_by_cached_key(|log| {
        let started = log.start().map(|(e, _)| e.time.clone());
        (started.is_none(), started, log.session.clone())
    });
    Ok(logs)
}

fn nothing_in(out: &mut Out, dir: &Path, json: bool) -> Result<i32> {
    if !json {
        writeln!(out, "no audit records in {}", dir.display())?;
    }
    Ok(0)
}

/// What `audit list` selects beyond the records' filter.
struct Listing {
    /// The newest N sessions.
    count: Option<usize>,
    /// Sessions whose workspace is beneath this (absolute) directory.
    workspace: Option<PathBuf>,
}

/// `--workspace DIR` as the records name workspaces: absolute and, where it
/// exists, canonical (a relative DIR is taken from the current directory).
fn absolute_dir(dir: &Path) -> Result<PathBuf> {
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

fn list(out: &mut Out, dir: &Path, filter: &Filter, listing: &Listing, json: bool) -> Result<i32> {
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
        let chain = chain_word(&report, crate::session_dir::is_live(&log.session));
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
            let workspace = start.map_or("-".into(), |(_, s)| {
                for_terminal(&escape_os(s.workspace.as_os_str())).into_owned()
            });
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

/// How `audit show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShowFormat {
    Text,
    /// One document: `{"session", "file", "records": [...]}`.
    Json,
    /// The selected lines as stored.
    JsonLines,
}

fn show(out: &mut Out, dir: &Path, id: &str, filter: &Filter, format: ShowFormat) -> Result<i32> {
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
    if let Some(outer) = crate::nesting::stacked_inside(dir, &log.session) {
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
            for_terminal(&escape_os(start.workspace.as_os_str())),
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
fn row(e: &Entry) -> String {
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
                text += &match &q.moved_to {
                    Some(to) => format!(
                        "; quarantined {path} -> {}",
                        for_terminal(&escape_os(to.as_os_str()))
                    ),
                    None => format!("; could not quarantine {path}"),
                };
            }
            text
        }
        Record::Connection(c) => {
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
            text += &format!(
                "  via {}, {} bytes sent, {} received, {} ms",
                for_terminal(&c.via),
                c.sent,
                c.received,
                c.duration_ms
            );
            text
        }
        Record::Decision(d) => {
            let mut text = format!(
                "{:<8} {:<10} {}",
                d.decision,
                d.access,
                for_terminal(&escape_os(d.path_asked.as_os_str()))
            );
            if let Some(opened) = d.path_opened.as_ref().filter(|p| **p != d.path_asked) {
                text += &format!(" -> {}", for_terminal(&escape_os(opened.as_os_str())));
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

fn verify(out: &mut Out, dir: &Path, id: Option<&str>, json: bool) -> Result<i32> {
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
        let status = report.status(crate::session_dir::is_live(&file.session));
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
            ledger: match crate::nesting::stacked_inside(dir, &r.session) {
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

fn stats(out: &mut Out, dir: &Path, filter: &Filter, top: usize, json: bool) -> Result<i32> {
    let logs = load(&files(dir, filter)?)?;
    let decisions = logs.iter().flat_map(|log| {
        log.lines
            .iter()
            .filter(|l| filter.matches(&l.entry))
            .filter_map(|l| Some((log.session.as_str(), l.entry.decision()?)))
    });
    let s = stats::collect(decisions, top);
    if json {
        writeln!(out, "{}", serde_json::to_string(&s)?)?;
        return Ok(0);
    }
    let c = &s.decisions;
    writeln!(
        out,
        "decisions: {} ({} allowed, {} denied, {} error)",
        c.total(),
        c.allowed,
        c.denied,
        c.error
    )?;
    let head = format!(
        "{:>7} {:>7} {:>6} {:>5}",
        "TOTAL", "ALLOWED", "DENIED", "ERROR"
    );
    let nums = |c: &Counts| {
        format!(
            "{:>7} {:>7} {:>6} {:>5}",
            c.total(),
            c.allowed,
            c.denied,
            c.error
        )
    };
    writeln!(out, "\nby rule or person:\n  {head}  BY")?;
    for d in &s.deciders {
        let rule = d.rule.as_deref().map(|r| format!(": {}", for_terminal(r)));
        writeln!(
            out,
            "  {}  {}{}",
            nums(&d.counts),
            d.by,
            rule.unwrap_or_default()
        )?;
    }
    writeln!(out, "\ntop paths:\n  {head}  PATH")?;
    for p in &s.top_paths {
        writeln!(out, "  {}  {}", nums(&p.counts), for_terminal(&p.path))?;
    }
    writeln!(out, "\nsessions:\n  {head}  SESSION")?;
    for t in &s.sessions {
        writeln!(out, "  {}  {}", nums(&t.counts), t.session)?;
    }
    Ok(0)
}

fn tail(
    out: &mut Out,
    dir: &Path,
    filter: &Filter,
    n: usize,
    follow: bool,
    json: bool,
) -> Result<i32> {
    let mut followers: Vec<Follower> = files(dir, filter)?.into_iter().map(Follower::new).collect();
    let mut recent = read_new(&mut followers, filter)?;
    recent.drain(..recent.len().saturating_sub(n));
    print_tail(out, &recent, json)?;
    if !follow {
        return Ok(0);
    }
    loop {
        out.flush()?;
        std::thread::sleep(Duration::from_millis(250));
        for file in files(dir, filter)? {
            if !followers.iter().any(|f| f.file == file) {
                followers.push(Follower::new(file));
            }
        }
        let new = read_new(&mut followers, filter)?;
        print_tail(out, &new, json)?;
    }
}

/// What the followers read since their last call, selected, oldest first.
fn read_new(followers: &mut [Follower], filter: &Filter) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    for f in followers {
        let new = f
            .read_new()
            .with_context(|| format!("reading {}", f.file.path.display()))?;
        lines.extend(new.into_iter().filter(|l| filter.matches(&l.entry)));
    }
    lines.sort_by(|a, b| {
        (&a.entry.time, &a.entry.session, a.entry.seq).cmp(&(
            &b.entry.time,
            &b.entry.session,
            b.entry.seq,
        ))
    });
    Ok(lines)
}

fn print_tail(out: &mut Out, lines: &[Line], json: bool) -> Result<()> {
    for line in lines {
        if json {
            writeln!(out, "{}", line.text)?;
        } else {
            writeln!(out, "{}  {}", line.entry.session, row(&line.entry))?;
        }
    }
    Ok(())
}
