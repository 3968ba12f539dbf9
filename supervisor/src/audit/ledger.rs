//! The per-user ledger: one chained line per session, so that removing a
//! session's whole audit file is detectable.
//!
//! ```text
//! <audit dir>/sessions.ledger
//! {"kind":"session","seq":N,"time":"...","session":"<id>","start":"<hash>","prev":"<hash>","hash":"<hash>"}
//! ```
//!
//! When a session opens its audit file it takes the ledger's `flock`, reads
//! the last line (seq and hash), writes its start record carrying
//! `"ledger":N` (the seq its ledger line will have), then appends that line
//! naming the session and its start record's hash, chained to the line
//! before it as records are ([`super::chain`]). `sluice audit verify` then
//! finds a session the ledger names but whose file is gone, a file replaced
//! by another chain (its start hash differs), a start record that names a
//! ledger line the ledger does not hold, and a removed or edited ledger line
//! (the ledger's own chain). Cost: one `open`, `flock`, a read of the last
//! few KiB and one `write(2)` per session.
//!
//! Not covered: whoever can write the audit directory can remove the newest
//! session together with its ledger line (a truncated tail, like a chain's),
//! or rewrite the ledger whole: it has no anchor outside the directory.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::chain::{self, Hex, LineError, GENESIS};
use super::read::split_lines;
use super::time::{self, Rfc3339};

/// The ledger's file name in the audit directory (not `*.jsonl`: it is no
/// session).
pub const FILE: &str = "sessions.ledger";

/// How much of the ledger's end is read to find its last line: a line is
/// a few hundred bytes (session ids are at most 128).
const TAIL: u64 = 4096;

/// The ledger, locked, between reading its end and appending a session.
pub struct Registration {
    file: File,
    path: PathBuf,
    seq: u64,
    prev: Hex,
}

/// Opens (creating, 0600) and locks the ledger in `dir`, and reads where it
/// ends. A ledger whose last line is damaged is an error: a session chained
/// to it would hide the damage.
pub fn begin(dir: &Path) -> io::Result<Registration> {
    let path = dir.join(FILE);
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    // It waits for another session registering at the same moment (a few
    // microseconds).
    if let Err(e) = crate::sys::fs::lock_exclusive(&file) {
        return Err(io::Error::new(
            e.kind(),
            format!("locking {}: {e}", path.display()),
        ));
    }
    let len = file.metadata()?.len();
    let from = len.saturating_sub(TAIL);
    let mut tail = vec![0; (len - from) as usize];
    file.read_exact_at(&mut tail, from)?;
    let (seq, prev) = match last_line(&tail, from == 0) {
        Ok(None) => (0, GENESIS),
        Ok(Some(line)) => (line.seq + 1, line.hash),
        Err(why) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the session ledger {} {why}; see `sluice audit verify`, then move the \
                     ledger aside to start a new one",
                    path.display()
                ),
            ))
        }
    };
    Ok(Registration {
        file,
        path,
        seq,
        prev,
    })
}

impl Registration {
    /// The seq the session's ledger line will have (its start record
    /// names it).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Appends the session's line, with one `write(2)`, and unlocks.
    pub fn commit(self, session: &str, start: &Hex) -> io::Result<()> {
        let mut line = format!(
            r#"{{"kind":"session","seq":{},"time":"{}","session":"{session}","start":"{}","prev":"{}""#,
            self.seq,
            Rfc3339(time::now_micros()),
            chain::hex_str(start),
            chain::hex_str(&self.prev)
        )
        .into_bytes();
        chain::seal(&mut line);
        (&self.file).write_all(&line).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("appending to {}: {e}", self.path.display()),
            )
        })
    }
}

/// One ledger line's fields.
#[derive(Debug, Deserialize)]
struct Head {
    kind: String,
    seq: u64,
    session: String,
    start: String,
    prev: String,
}

/// A checked ledger line.
struct Line {
    seq: u64,
    hash: Hex,
}

/// The last line of the ledger's `tail` (the whole file when `whole`).
fn last_line(tail: &[u8], whole: bool) -> Result<Option<Line>, &'static str> {
    if tail.is_empty() {
        return Ok(None);
    }
    let Some(body) = tail.strip_suffix(b"\n") else {
        return Err("ends in a torn line");
    };
    let line = match body.iter().rposition(|&b| b == b'\n') {
        Some(at) => &body[at + 1..],
        None if whole => body,
        None => return Err("ends in a line too long to be a ledger line"),
    };
    let hash = chain::check(line).map_err(|_| "ends in a line that does not match its hash")?;
    let head: Head = serde_json::from_slice(line).map_err(|_| "ends in an unreadable line")?;
    if head.kind != "session" {
        return Err("ends in a line that is no ledger line");
    }
    Ok(Some(Line {
        seq: head.seq,
        hash,
    }))
}

/// A session as the ledger check needs it.
pub struct Session<'a> {
    pub id: &'a str,
    /// The hash of its seq-0 record, if that is a readable start record.
    pub start: Option<Hex>,
    /// The ledger seq its start record names (`None`: from before the
    /// ledger).
    pub ledger: Option<u64>,
}

/// What the ledger check found, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerReport {
    pub path: PathBuf,
    /// Sessions the ledger names.
    pub entries: usize,
    pub problems: Vec<String>,
}

/// Reads the ledger in `dir` (bounded like an audit file) and checks it
/// against `sessions`, the audit files found there. `all`: `sessions` is
/// every file in the directory, so a ledger entry without one is a
/// removed record.
pub fn check(dir: &Path, sessions: &[Session<'_>], all: bool) -> io::Result<LedgerReport> {
    let path = dir.join(FILE);
    let data = match super::read::read_audit_file(&path) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(check_bytes(&path, &data, sessions, all))
}

fn check_bytes(path: &Path, data: &[u8], sessions: &[Session<'_>], all: bool) -> LedgerReport {
    let (lines, torn) = split_lines(data);
    let mut problems = Vec::new();
    // seq -> (line, session, start hash)
    let mut entries: HashMap<u64, (usize, String, Option<Hex>)> = HashMap::new();
    let mut expect: (u64, Hex) = (0, GENESIS);
    for (number, bytes) in lines {
        let hash = match chain::check(bytes) {
            Ok(hash) => hash,
            Err(LineError::Mismatch { stored }) => {
                problems.push(format!(
                    "ledger line {number} edited: its content does not match its hash"
                ));
                stored
            }
            Err(LineError::NoHash) => {
                problems.push(format!("ledger line {number} is not a ledger line"));
                continue;
            }
        };
        let Some(head) = serde_json::from_slice::<Head>(bytes)
            .ok()
            .filter(|h| h.kind == "session")
        else {
            problems.push(format!("ledger line {number} cannot be read"));
            continue;
        };
        let prev = chain::parse_hex(&head.prev);
        if head.seq != expect.0 {
            problems.push(format!(
                "ledger line {number}: seq {} where {} was due: ledger lines were removed or reordered",
                head.seq, expect.0
            ));
        } else if prev != Some(expect.1) {
            problems.push(format!(
                "ledger line {number}: prev does not match the line before it \
                 (a ledger line was replaced or removed)"
            ));
        }
        expect = (head.seq + 1, hash);
        if entries.contains_key(&head.seq) {
            problems.push(format!(
                "ledger line {number}: seq {} appears twice",
                head.seq
            ));
            continue;
        }
        entries.insert(
            head.seq,
            (number, head.session, chain::parse_hex(&head.start)),
        );
    }
    if let Some((number, _)) = torn {
        problems.push(format!("ledger line {number} is torn (no newline)"));
    }
    let mut named: HashMap<&str, ()> = HashMap::new();
    for s in sessions {
        named.insert(s.id, ());
        let Some(seq) = s.ledger else { continue };
        match entries.get(&seq) {
            Some((_, id, start)) if id == s.id => {
                if s.start.is_some() && *start != s.start {
                    problems.push(format!(
                        "session {}: its start record is not the one the ledger holds \
                         (the file was replaced)",
                        s.id
                    ));
                }
            }
            _ => problems.push(format!(
                "session {}: its start record names ledger line seq {seq}, which the ledger \
                 does not hold for it (the ledger was cut short, replaced or removed)",
                s.id
            )),
        }
    }
    if all {
        let mut missing: Vec<_> = entries
            .values()
            .filter(|(_, id, _)| !named.contains_key(id.as_str()))
            .collect();
        missing.sort_by_key(|(line, _, _)| *line);
        for (line, id, _) in missing {
            problems.push(format!(
                "session {} (ledger line {line}) has no audit file: its record was removed",
                super::escape::for_terminal(id)
            ));
        }
    }
    LedgerReport {
        path: path.to_owned(),
        entries: entries.len(),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_of(sessions: &[(&str, Hex)]) -> Vec<Vec<u8>> {
        let mut prev = GENESIS;
        sessions
            .iter()
            .enumerate()
            .map(|(seq, (id, start))| {
                let mut line = format!(
                    r#"{{"kind":"session","seq":{seq},"time":"t","session":"{id}","start":"{}","prev":"{}""#,
                    chain::hex_str(start),
                    chain::hex_str(&prev)
                )
                .into_bytes();
                prev = chain::seal(&mut line);
                line
            })
            .collect()
    }

    fn session(id: &str, n: u64) -> Session<'_> {
        Session {
            id,
            start: Some(chain::digest(id.as_bytes())),
            ledger: Some(n),
        }
    }

    #[test]
    fn removals_and_replacements_are_named() {
        let ids = ["a", "b", "c"];
        let starts: Vec<(&str, Hex)> = ids
            .iter()
            .map(|id| (*id, chain::digest(id.as_bytes())))
            .collect();
        let lines = ledger_of(&starts);
        let all: Vec<Session> = ids.iter().zip(0..).map(|(id, n)| session(id, n)).collect();
        let p = Path::new("l");
        // Control: intact.
        let r = check_bytes(p, &lines.concat(), &all, true);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.entries, 3);
        // A session's file removed.
        let r = check_bytes(p, &lines.concat(), &all[..2], true);
        assert_eq!(
            r.problems,
            ["session c (ledger line 3) has no audit file: its record was removed"]
        );
        // Its ledger line removed too: the chain says so.
        let cut = [lines[0].clone(), lines[2].clone()].concat();
        let r = check_bytes(p, &cut, &[session("a", 0), session("c", 2)], true);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(
            r.problems[0].contains("seq 2 where 1 was due"),
            "{:?}",
            r.problems
        );
        // The whole ledger removed: the files say they were in it.
        let r = check_bytes(p, b"", &all, true);
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
        // A file replaced by another chain.
        let mut other = session("b", 1);
        other.start = Some(chain::digest(b"forged"));
        let r = check_bytes(
            p,
            &lines.concat(),
            &[session("a", 0), other, session("c", 2)],
            true,
        );
        assert_eq!(r.problems, ["session b: its start record is not the one the ledger holds (the file was replaced)"]);
        // A file from before the ledger is no problem.
        let old = Session {
            id: "old",
            start: None,
            ledger: None,
        };
        let r = check_bytes(
            p,
            &lines.concat(),
            &[session("a", 0), session("b", 1), session("c", 2), old],
            true,
        );
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn the_last_line_is_found_or_refused() {
        let lines = ledger_of(&[("a", GENESIS), ("b", GENESIS)]);
        let data = lines.concat();
        let last = last_line(&data, true).unwrap().unwrap();
        assert_eq!(last.seq, 1);
        assert_eq!(last_line(b"", true).unwrap().map(|l| l.seq), None);
        assert!(last_line(&data[..data.len() - 3], true).is_err());
        let mut edited = data.clone();
        let n = edited.len();
        edited[n - 80] ^= 1;
        assert!(last_line(&edited, true).is_err());
    }
}
