//! `sluice audit list | show | verify | stats | tail`: review the audit
//! record (see [`crate::audit`]).
//!
//! Everything printed that a sandboxed program could have chosen (paths,
//! its client name, reasons) goes through [`for_terminal`] first, and all
//! output, the JSON views too, through [`TerminalSafe`].

mod list;
mod show;
mod verify;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::audit::escape::{for_terminal, TerminalSafe};
use crate::audit::filter::{AccessWanted, Filter};
use crate::audit::read::{self, Follower, Line, SessionFile, SessionLog};
use crate::audit::{stats, time, AuditLog, Counts, Decision};
use list::{absolute_dir, list, Listing};
use show::{row, show, ShowFormat};
use verify::verify;

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
    let mut out = TerminalSafe(io::BufWriter::new(io::stdout().lock()));
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

/// Everything printed goes through [`TerminalSafe`]: the views escape what a
/// program chose, and the JSON views (`--json`, `--jsonl`, `tail --json`)
/// keep it as JSON escapes.
type Out<'a> = TerminalSafe<io::BufWriter<io::StdoutLock<'a>>>;

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
