//! Checking a session's chain: every line hashes to its own `hash`, every
//! record's `prev` is the hash of the record with the previous `seq`, and
//! the records are in `seq` order with none missing.
//!
//! Each problem is reported once, where it is: an edited record is named
//! and the chain continues from its stored hash, so one edit is one finding,
//! a removed record is one finding at the record after the gap, and two
//! swapped records are one finding at the one that came too late.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::chain::{self, Hex, LineError, GENESIS};
use super::read::{split_lines, SessionFile};
use super::record::{Counts, Decision, CONNECTION_OPEN};

/// What is wrong at one place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The line does not end with a hash: it is not a record.
    NotARecord,
    /// The line's content does not match its own hash.
    Edited,
    /// The line matches its hash but is not a readable record.
    Unreadable,
    /// The record names another session.
    WrongSession { found: String },
    /// A second record with a seq seen before (at `first_line`).
    Duplicate { first_line: usize },
    /// The record comes after one with a higher or equal seq.
    OutOfOrder { after: u64 },
    /// Records `from..=to` are in no line of the file.
    Missing { from: u64, to: u64 },
    /// `prev` is not the hash of record `prev_seq`: a record was replaced,
    /// or the file was stitched together from different chains.
    BrokenLink { prev_seq: u64 },
    /// Record 0 is not a session start with 64 zeros as `prev`.
    BadStart,
    /// A record after the session's end record.
    AfterEnd { end_seq: u64 },
    /// The end record's counts are not the decisions in the file.
    CountsMismatch { recorded: Counts, counted: Counts },
}

/// A problem, with the line (from 1) and the record's seq when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub line: usize,
    pub seq: Option<u64>,
    pub problem: Problem,
}

fn counts_text(c: &Counts) -> String {
    format!(
        "{} allowed, {} denied, {} error",
        c.allowed, c.denied, c.error
    )
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rec = match self.seq {
            Some(s) => format!("record {s}"),
            None => "the record".to_owned(),
        };
        match &self.problem {
            Problem::NotARecord => write!(f, "not a record (no hash at the end of the line)"),
            Problem::Edited => write!(f, "{rec} edited: its content does not match its hash"),
            Problem::Unreadable => write!(f, "{rec} matches its hash but cannot be read"),
            Problem::WrongSession { found } => {
                write!(
                    f,
                    "{rec} belongs to session {}",
                    super::escape::for_terminal(found)
                )
            }
            Problem::Duplicate { first_line } => {
                write!(f, "{rec} appears twice (first at line {first_line})")
            }
            Problem::OutOfOrder { after } => {
                write!(f, "{rec} reordered: it comes after record {after}")
            }
            Problem::Missing { from, to } => {
                let which = if from == to {
                    format!("record {from}")
                } else {
                    format!("records {from} to {to}")
                };
                if *from == 0 {
                    write!(f, "{which} missing: the file starts at record {}", to + 1)
                } else {
                    write!(
                        f,
                        "{which} missing: seq jumps from {} to {}",
                        from - 1,
                        to + 1
                    )
                }
            }
            Problem::BrokenLink { prev_seq } => write!(
                f,
                "{rec} missing or reordered: prev does not match record {prev_seq} \
                 (a record was replaced or the chain was spliced)"
            ),
            Problem::BadStart => write!(
                f,
                "{rec} is not a session start (kind start, prev all zeros)"
            ),
            Problem::AfterEnd { end_seq } => {
                write!(f, "{rec} comes after the session's end (record {end_seq})")
            }
            Problem::CountsMismatch { recorded, counted } => write!(
                f,
                "the end record counts {} but the file holds {}",
                counts_text(recorded),
                counts_text(counted)
            ),
        }
    }
}

/// The verdict on one file.
#[derive(Debug, Clone)]
pub struct Report {
    pub session: String,
    pub path: PathBuf,
    /// Complete lines that are records (including edited ones).
    pub records: usize,
    pub findings: Vec<Finding>,
    /// The line number of a final line without its newline: a record torn
    /// by a crash during its write (or a full disk). Not tampering, but the
    /// session's record is incomplete ([`Status::Incomplete`]).
    pub torn_line: Option<usize>,
    /// The session has its end record.
    pub ended: bool,
    /// The hash of record 0, when it is a readable start record.
    pub start_hash: Option<Hex>,
    /// The ledger line its start record names ([`super::ledger`]); `None`
    /// for a session from before the ledger.
    pub ledger: Option<u64>,
}

/// The verdict on a session, from its report and whether it still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Whole: every record chained, and the end record last.
    Ok,
    /// No end record yet, and the session is still running.
    Running,
    /// The chain holds, but the end record is missing or the last record is
    /// torn, and the session is not running: its supervisor was killed, or
    /// the disk filled. What it did after its last whole record is unknown.
    Incomplete,
    /// A record was edited, removed or reordered (see the findings).
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Running => "running",
            Status::Incomplete => "incomplete",
            Status::Failed => "failed",
        }
    }
}

impl Report {
    /// The chain holds: no record was edited, removed or reordered. (An
    /// incomplete session's chain can hold: see [`Report::status`].)
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// Whether the record is complete: its end record is there, last, and
    /// nothing after it is torn.
    pub fn complete(&self) -> bool {
        self.ended && self.torn_line.is_none()
    }

    /// The verdict, given whether the session is still running (its lock
    /// is held: `platform::liveness::is_live`).
    pub fn status(&self, live: bool) -> Status {
        match (self.ok(), self.complete(), live) {
            (false, _, _) => Status::Failed,
            (true, true, _) => Status::Ok,
            (true, false, true) => Status::Running,
            (true, false, false) => Status::Incomplete,
        }
    }
}

/// The fields the verifier needs; the rest of a record is only hashed.
#[derive(Deserialize)]
struct Head {
    kind: String,
    seq: u64,
    session: String,
    prev: String,
    /// Read loosely: an edited value is reported as an edit, not as an
    /// unreadable record.
    decision: Option<serde_json::Value>,
    counts: Option<serde_json::Value>,
    /// The start record's ledger line ([`super::ledger`]).
    ledger: Option<u64>,
}

impl Head {
    fn decision(&self) -> Option<Decision> {
        self.decision.as_ref()?.as_str()?.parse().ok()
    }

    fn counts(&self) -> Counts {
        let counts = self.counts.clone().map(serde_json::from_value);
        counts.and_then(Result::ok).unwrap_or_default()
    }
}

/// The `"seq":N` of a line that is no longer valid JSON, to name it anyway.
fn scan_seq(line: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"seq\":";
    let at = line.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = line[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// A record the chain checks look at.
struct Seen {
    line: usize,
    seq: u64,
    hash: Hex,
    prev: Hex,
    kind: String,
}

pub fn verify_file(file: &SessionFile) -> io::Result<Report> {
    let data = super::read::read_audit_file(&file.path)?;
    Ok(verify_bytes(&file.session, &file.path, &data))
}

/// Verifies the contents of a session's file.
pub fn verify_bytes(session: &str, path: &Path, data: &[u8]) -> Report {
    let (lines, torn) = split_lines(data);
    let mut findings = Vec::new();
    let mut seen: Vec<Seen> = Vec::new();
    let mut unreadable_lines = Vec::new();
    let mut counted = Counts::default();
    let mut end: Option<(u64, Counts)> = None;
    let mut start: (Option<Hex>, Option<u64>) = (None, None);
    for (line, bytes) in lines {
        let mut finding = |seq, problem| findings.push(Finding { line, seq, problem });
        let (hash, edited) = match chain::check(bytes) {
            Ok(h) => (h, false),
            Err(LineError::Mismatch { stored }) => (stored, true),
            Err(LineError::NoHash) => {
                unreadable_lines.push(line);
                finding(None, Problem::NotARecord);
                continue;
            }
        };
        let head = serde_json::from_slice::<Head>(bytes).ok();
        let prev = head.as_ref().and_then(|h| chain::parse_hex(&h.prev));
        let (Some(head), Some(prev)) = (head, prev) else {
            unreadable_lines.push(line);
            let problem = if edited {
                Problem::Edited
            } else {
                Problem::Unreadable
            };
            finding(scan_seq(bytes), problem);
            continue;
        };
        if edited {
            finding(Some(head.seq), Problem::Edited);
        }
        if head.session != session {
            finding(
                Some(head.seq),
                Problem::WrongSession {
                    found: head.session.clone(),
                },
            );
        }
        // A connection's record as it opened is not counted: its record
        // at the end is ([`super::record::CONNECTION_OPEN`]).
        if let Some(d) = head.decision().filter(|_| head.kind != CONNECTION_OPEN) {
            counted.add(d);
        }
        if head.kind == "end" {
            end = Some((head.seq, head.counts()));
        }
        if head.kind == "start" && head.seq == 0 && start.0.is_none() {
            start = (Some(hash), head.ledger);
        }
        seen.push(Seen {
            line,
            seq: head.seq,
            hash,
            prev,
            kind: head.kind,
        });
    }
    check_order_and_links(&seen, &unreadable_lines, &mut findings);
    if let Some((end_seq, recorded)) = end {
        check_end(&seen, end_seq, recorded, counted, &mut findings);
    }
    findings.sort_by_key(|f| f.line);
    Report {
        session: session.to_owned(),
        path: path.to_owned(),
        records: seen.len(),
        findings,
        torn_line: torn.map(|(line, _)| line),
        ended: end.is_some(),
        start_hash: start.0,
        ledger: start.1,
    }
}

/// Nothing after the end record, and its counts are the file's decisions.
fn check_end(
    seen: &[Seen],
    end_seq: u64,
    recorded: Counts,
    counted: Counts,
    findings: &mut Vec<Finding>,
) {
    for s in seen.iter().filter(|s| s.seq > end_seq) {
        findings.push(Finding {
            line: s.line,
            seq: Some(s.seq),
            problem: Problem::AfterEnd { end_seq },
        });
    }
    // After an edit the counts prove nothing more than the edit.
    let edited = findings.iter().any(|f| f.problem == Problem::Edited);
    if recorded != counted && !edited {
        let line = seen.iter().find(|s| s.seq == end_seq).map_or(0, |s| s.line);
        findings.push(Finding {
            line,
            seq: Some(end_seq),
            problem: Problem::CountsMismatch { recorded, counted },
        });
    }
}

fn check_order_and_links(seen: &[Seen], unreadable_lines: &[usize], findings: &mut Vec<Finding>) {
    let mut by_seq: HashMap<u64, &Seen> = HashMap::with_capacity(seen.len());
    let mut in_order: Vec<&Seen> = Vec::with_capacity(seen.len());
    for s in seen {
        if let Some(first) = by_seq.get(&s.seq) {
            findings.push(Finding {
                line: s.line,
                seq: Some(s.seq),
                problem: Problem::Duplicate {
                    first_line: first.line,
                },
            });
            continue;
        }
        by_seq.insert(s.seq, s);
        if let Some(before) = in_order.last() {
            if s.seq < before.seq {
                findings.push(Finding {
                    line: s.line,
                    seq: Some(s.seq),
                    problem: Problem::OutOfOrder { after: before.seq },
                });
            }
        }
        in_order.push(s);
    }
    let mut present: Vec<u64> = by_seq.keys().copied().collect();
    present.sort_unstable();
    for s in &in_order {
        let finding = |problem| Finding {
            line: s.line,
            seq: Some(s.seq),
            problem,
        };
        if s.seq == 0 {
            if s.kind != "start" || s.prev != GENESIS {
                findings.push(finding(Problem::BadStart));
            }
            continue;
        }
        match by_seq.get(&(s.seq - 1)) {
            Some(p) if p.hash != s.prev => {
                findings.push(finding(Problem::BrokenLink { prev_seq: p.seq }));
            }
            Some(_) => {}
            None => {
                // The nearest record before the gap, by seq.
                let below = present.partition_point(|&q| q < s.seq);
                let before = below.checked_sub(1).map(|i| by_seq[&present[i]]);
                // An unreadable line between the two is most likely the
                // record that seems missing; it is reported already.
                let after_line = before.map_or(0, |b| b.line);
                let explained = any_between(
                    unreadable_lines,
                    after_line.min(s.line),
                    after_line.max(s.line),
                );
                if !explained {
                    let from = before.map_or(0, |b| b.seq + 1);
                    findings.push(finding(Problem::Missing {
                        from,
                        to: s.seq - 1,
                    }));
                }
            }
        }
    }
}

/// Whether `sorted` holds a number strictly between `low` and `high`: a
/// binary search, so that a file of many gaps and many unreadable lines is
/// verified in time linear in its size, not quadratic (a crafted 8 MB file
/// took 4.4 s, each doubling four times longer).
fn any_between(sorted: &[usize], low: usize, high: usize) -> bool {
    let first_above = sorted.partition_point(|&l| l <= low);
    sorted.get(first_above).is_some_and(|&l| l < high)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines in the real format, chained, without going through the log.
    fn chain_of(n: u64) -> Vec<Vec<u8>> {
        let mut prev = GENESIS;
        (0..n)
            .map(|seq| {
                let kind = if seq == 0 { "start" } else { "decision" };
                let decision = if seq == 0 {
                    ""
                } else {
                    r#","decision":"allowed""#
                };
                let mut line = format!(
                    r#"{{"kind":"{kind}","seq":{seq},"session":"s"{decision},"prev":"{}""#,
                    chain::hex_str(&prev)
                )
                .into_bytes();
                prev = chain::seal(&mut line);
                line
            })
            .collect()
    }

    fn verify(lines: &[Vec<u8>]) -> Report {
        verify_bytes("s", Path::new("s.jsonl"), &lines.concat())
    }

    fn only(report: &Report) -> &Finding {
        assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
        &report.findings[0]
    }

    #[test]
    fn an_intact_chain_verifies() {
        let r = verify(&chain_of(10));
        assert!(r.ok(), "{:?}", r.findings);
        assert_eq!(r.records, 10);
        assert_eq!(r.torn_line, None);
        assert!(verify(&[]).ok());
    }

    #[test]
    fn an_edit_is_one_finding_at_the_edited_record() {
        let mut lines = chain_of(10);
        let at = lines[4].iter().position(|&b| b == b'a').unwrap();
        lines[4][at] = b'b';
        let r = verify(&lines);
        let f = only(&r);
        assert_eq!((f.line, f.seq, &f.problem), (5, Some(4), &Problem::Edited));
        assert_eq!(
            f.to_string(),
            "record 4 edited: its content does not match its hash"
        );
    }

    #[test]
    fn a_removed_record_is_named() {
        let mut lines = chain_of(10);
        lines.remove(4);
        let r = verify(&lines);
        let f = only(&r);
        assert_eq!(f.problem, Problem::Missing { from: 4, to: 4 });
        assert_eq!((f.line, f.seq), (5, Some(5)));
        assert_eq!(f.to_string(), "record 4 missing: seq jumps from 3 to 5");
        lines.remove(4);
        let f = verify(&lines).findings[0].clone();
        assert_eq!(
            f.to_string(),
            "records 4 to 5 missing: seq jumps from 3 to 6"
        );
        let mut lines = chain_of(3);
        lines.remove(0);
        assert_eq!(
            only(&verify(&lines)).problem,
            Problem::Missing { from: 0, to: 0 }
        );
    }

    #[test]
    fn swapped_records_are_one_finding() {
        let mut lines = chain_of(10);
        lines.swap(4, 5);
        let r = verify(&lines);
        let f = only(&r);
        assert_eq!((f.line, f.seq), (6, Some(4)));
        assert_eq!(f.problem, Problem::OutOfOrder { after: 5 });
    }

    #[test]
    fn a_rehashed_replacement_breaks_the_next_link() {
        let mut lines = chain_of(10);
        let text = String::from_utf8(lines[4].clone()).unwrap();
        let body = &text[..text.len() - chain::SUFFIX_LEN - 1];
        let mut forged = body.replace("allowed", "denied").into_bytes();
        chain::seal(&mut forged);
        lines[4] = forged;
        let r = verify(&lines);
        let f = only(&r);
        assert_eq!((f.line, f.seq), (6, Some(5)));
        assert_eq!(f.problem, Problem::BrokenLink { prev_seq: 4 });
    }

    #[test]
    fn a_torn_final_line_is_no_tampering_but_an_incomplete_session() {
        let mut lines = chain_of(5);
        let last = lines.last_mut().unwrap();
        last.truncate(last.len() / 2);
        let r = verify(&lines);
        assert!(r.ok(), "{:?}", r.findings);
        assert_eq!(r.records, 4);
        assert_eq!(r.torn_line, Some(5));
        assert_eq!(r.status(false), Status::Incomplete);
        assert_eq!(r.status(true), Status::Running);
    }

    #[test]
    fn only_a_session_with_its_end_record_is_ok() {
        let mut lines = chain_of(4);
        let mut end = format!(
            r#"{{"kind":"end","seq":4,"session":"s","counts":{{"allowed":3,"denied":0,"error":0}},"prev":"{}""#,
            chain::hex_str(&chain::check(&lines[3][..lines[3].len() - 1]).unwrap())
        )
        .into_bytes();
        chain::seal(&mut end);
        lines.push(end);
        let r = verify(&lines);
        assert_eq!(
            (r.status(false), r.status(true)),
            (Status::Ok, Status::Ok),
            "{:?}",
            r.findings
        );
        assert!(r.start_hash.is_some());
        lines.pop();
        let r = verify(&lines);
        assert_eq!(
            (r.status(false), r.status(true)),
            (Status::Incomplete, Status::Running)
        );
        lines[2][12] ^= 1;
        assert_eq!(verify(&lines).status(true), Status::Failed);
    }

    #[test]
    fn the_gap_check_finds_a_line_strictly_between() {
        let sorted = [3, 7, 20];
        assert!(any_between(&sorted, 2, 4));
        assert!(any_between(&sorted, 6, 21));
        assert!(!any_between(&sorted, 3, 7));
        assert!(!any_between(&sorted, 7, 8));
        assert!(!any_between(&sorted, 20, 100));
        assert!(!any_between(&[], 0, 100));
    }

    /// Many records each after a gap, and the unreadable lines all at the
    /// end, so that no gap is explained: every gap scanned the whole list.
    /// 100,000 of each took minutes; now well under the generous bound.
    #[test]
    fn a_file_of_gaps_and_unreadable_lines_verifies_in_linear_time() {
        const N: u64 = 100_000;
        let mut data = Vec::with_capacity(40 << 20);
        for i in 0..N {
            let mut line = format!(
                r#"{{"kind":"decision","seq":{},"session":"s","prev":"{}""#,
                2 * i + 1,
                chain::hex_str(&GENESIS)
            )
            .into_bytes();
            chain::seal(&mut line);
            data.extend_from_slice(&line);
        }
        for _ in 0..N {
            data.extend_from_slice(b"x\n");
        }
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = verify_bytes("s", Path::new("s.jsonl"), &data);
            done.send(r.findings.len()).unwrap();
        });
        let findings = finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("verifying took more than two minutes: not linear");
        assert_eq!(findings as u64, 2 * N);
    }

    #[test]
    fn garbage_and_duplicates_are_reported() {
        let mut lines = chain_of(5);
        lines.insert(2, b"hello\n".to_vec());
        let f = only(&verify(&lines)).clone();
        assert_eq!((f.line, f.problem), (3, Problem::NotARecord));

        let mut lines = chain_of(5);
        lines.push(lines[2].clone());
        let r = verify(&lines);
        assert_eq!(r.findings[0].problem, Problem::Duplicate { first_line: 3 });
    }

    #[test]
    fn an_edit_that_breaks_the_json_is_still_named_once() {
        let mut lines = chain_of(6);
        lines[3][0] = b'[';
        let r = verify(&lines);
        let f = only(&r);
        assert_eq!((f.line, f.seq, &f.problem), (4, Some(3), &Problem::Edited));
    }
}
