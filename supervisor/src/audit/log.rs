//! The writer: one file per session, one `write(2)` per record.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use super::chain::{self, Hex};
use super::escape;
use super::record::{
    By, ConnectionRecord, Counts, Decision, DecisionRecord, EndRecord, Quarantined, Refused,
    StartRecord,
};
use super::time::{self, Rfc3339};

/// The audit log of one session. `append` may be called from any thread;
/// records get their `seq` in the order they are appended.
pub struct AuditLog {
    path: PathBuf,
    session: String,
    inner: Mutex<Inner>,
}

struct Inner {
    file: File,
    /// The seq of the next record.
    seq: u64,
    prev: Hex,
    /// The line being built, reused so that appending does not allocate.
    buf: Vec<u8>,
    counts: Counts,
    /// Refusals grouped by path and access (at most [`MAX_REFUSED`] groups).
    refused: Vec<Refused>,
    finished: bool,
    /// Set when a record was only partly written: the file no longer ends
    /// on a record boundary, so nothing more may be appended.
    broken: bool,
    /// The session's ledger line, written into the start record's envelope.
    ledger: Option<u64>,
    /// Bytes written to the file so far, and how many records other than
    /// the end record may take ([`MAX_SESSION_BYTES`]).
    written: u64,
    limit: u64,
}

/// A session's audit file made by [`AuditLog::create`], empty: started by
/// [`Created::start`], else removed when dropped (the launch failed before
/// its program ran), so no file without a start record is left.
pub struct Created {
    dir: PathBuf,
    path: PathBuf,
    session: String,
    /// Until [`Created::start`] takes it.
    file: Option<File>,
}

impl Created {
    /// Writes the start record and enters the session in the directory's
    /// ledger ([`super::ledger`]), under the ledger's lock: the rest of
    /// [`AuditLog::open`].
    pub fn start(mut self, start: &StartRecord) -> io::Result<AuditLog> {
        let ledger = super::ledger::begin(&self.dir)?;
        let Some(file) = self.file.take() else {
            return Err(io::Error::other("the audit file was started twice"));
        };
        let log = AuditLog {
            path: std::mem::take(&mut self.path),
            session: std::mem::take(&mut self.session),
            inner: Mutex::new(Inner {
                file,
                seq: 0,
                prev: chain::GENESIS,
                buf: Vec::with_capacity(1024),
                counts: Counts::default(),
                refused: Vec::new(),
                finished: false,
                broken: false,
                ledger: Some(ledger.seq()),
                written: 0,
                limit: MAX_SESSION_BYTES,
            }),
        };
        let start_hash = log.write(&mut log.lock(), "start", start)?;
        ledger.commit(&log.session, &start_hash)?;
        Ok(log)
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Ours, empty, in a directory only we can change.
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(
                    file = %self.path.display(),
                    "removing the unstarted audit file: {e}"
                );
            }
        }
    }
}

/// The most a session's records (but the end record) may take. A program
/// can make a record a request (a refused connection, a refused path)
/// thousands of times a second: unbounded, it filled the person's disk and
/// grew its record past what the review commands read
/// ([`super::read::MAX_AUDIT_BYTES`]), so `verify` and `show` refused the
/// very session to review. Past it a record cannot be written, so nothing
/// more is served or let through (as on a full disk), and the end record,
/// which has the room, says how the session ended.
pub const MAX_SESSION_BYTES: u64 = 512 << 20;

/// The refusal groups a session keeps for its summary: a program probing
/// thousands of paths gets the first ones (each is in its decision record).
pub const MAX_REFUSED: usize = 512;

/// Session ids become file names: keep them to a harmless alphabet.
fn check_session_id(session: &str) -> io::Result<()> {
    let ok = !session.is_empty()
        && session.len() <= 128
        && !session.starts_with('.')
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("session id {session:?} cannot name an audit file"),
        ))
    }
}

impl AuditLog {
    /// `$XDG_STATE_HOME/sluice/audit` or `~/.local/state/sluice/audit`.
    pub fn default_dir() -> io::Result<PathBuf> {
        super::dir::default_dir()
    }

    /// Creates `dir` (0700) if needed, refuses it if someone else could
    /// change it, creates `<dir>/<session>.jsonl` (0600; it must not exist
    /// yet), writes the start record and enters the session in the
    /// directory's ledger ([`super::ledger`]), under the ledger's lock.
    pub fn open(dir: &Path, session: &str, start: &StartRecord) -> io::Result<AuditLog> {
        AuditLog::create(dir, session)?.start(start)
    }

    /// The first half of [`AuditLog::open`]: the directory checked and the
    /// session's file made, empty (`sluice run` makes it while the child
    /// runs its steps: on ext4 a new file is an inode allocation, a tenth
    /// of a millisecond quiet and milliseconds under load). Nothing is
    /// recorded until [`Created::start`].
    pub fn create(dir: &Path, session: &str) -> io::Result<Created> {
        check_session_id(session)?;
        super::dir::ensure_private_dir(dir)?;
        let path = dir.join(format!("{session}.jsonl"));
        // O_APPEND so that every write(2) lands whole at the end; O_EXCL
        // (create_new) so that we never continue someone else's chain, nor
        // follow a planted symlink. std adds O_CLOEXEC.
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("creating the audit file {}: {e}", path.display()),
                )
            })?;
        Ok(Created {
            dir: dir.to_path_buf(),
            path,
            session: session.to_owned(),
            file: Some(file),
        })
    }

    /// Appends one decision. Cheap (one SHA-256 and one `write(2)` under a
    /// lock) and synchronous. An error means the decision is *not* recorded;
    /// the broker should then refuse the request rather than let it through
    /// unaudited.
    pub fn append(&self, record: &DecisionRecord) -> io::Result<()> {
        let mut inner = self.lock();
        self.write(&mut inner, "decision", record)?;
        inner.counts.add(record.decision);
        if record.decision == Decision::Denied {
            let path = &record.path_asked;
            let refused = &mut inner.refused;
            let found = refused
                .iter()
                .position(|g| g.access == record.access && g.op == record.op && g.path == *path);
            match found {
                Some(i) => refused[i].count += 1,
                None if refused.len() < MAX_REFUSED => refused.push(Refused {
                    path: path.clone(),
                    op: record.op,
                    access: record.access,
                    count: 1,
                    by: record.by,
                    // A path the broker protects outright has no rule of
                    // the policy's, only its reason (`deny "~/.ssh" (the
                    // policy's [filesystem] deny)`, `sluice's audit log`).
                    rule: (record.rule.clone()).or_else(|| {
                        let decided = matches!(record.by, By::Rule | By::Protected);
                        record.reason.clone().filter(|_| decided)
                    }),
                }),
                None => {}
            }
        }
        Ok(())
    }

    /// The refusals so far, grouped by path and access, in the order of
    /// their first occurrence.
    pub fn refused(&self) -> Vec<Refused> {
        self.lock().refused.clone()
    }

    /// Appends one proxied connection (counted with the decisions).
    pub fn append_connection(&self, record: &ConnectionRecord) -> io::Result<()> {
        let mut inner = self.lock();
        self.write(&mut inner, "connection", record)?;
        inner.counts.add(record.decision);
        Ok(())
    }

    /// Appends a proxied connection as it opens, before anything passes
    /// through it (not counted: its record at the end is).
    pub fn append_connection_open(&self, record: &ConnectionRecord) -> io::Result<()> {
        let mut inner = self.lock();
        self.write(&mut inner, "connection-open", record)
            .map(|_| ())
    }

    /// Writes the end record, with the decision counts, and flushes the file
    /// to disk when it holds a decision or a quarantined path (a session
    /// that recorded nothing but its start and end is not worth an
    /// `fdatasync`, 0.4 ms quiet and several under disk load). Every record
    /// is written before what it records takes effect either way. Nothing
    /// can be appended after it.
    pub fn finish(&self, exit: &str) -> io::Result<()> {
        self.finish_with(exit, Vec::new())
    }

    /// [`AuditLog::finish`], listing the paths the session ended by moving
    /// aside.
    pub fn finish_with(&self, exit: &str, quarantined: Vec<Quarantined>) -> io::Result<()> {
        let mut inner = self.lock();
        let c = inner.counts;
        let worth_syncing =
            c.allowed + c.denied + c.error + c.would_ask > 0 || !quarantined.is_empty();
        let end = EndRecord {
            exit: exit.to_owned(),
            counts: inner.counts,
            quarantined,
            refused: inner.refused.clone(),
        };
        self.write(&mut inner, "end", &end)?;
        inner.finished = true;
        match worth_syncing {
            true => inner.file.sync_data(),
            false => Ok(()),
        }
    }

    /// The session's audit file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state is only updated after a complete write, so it is
        // consistent even if a thread panicked while holding the lock.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Builds the whole line in the buffer, then writes it with one
    /// `write(2)`, under the caller's lock.
    fn write<T: Serialize>(&self, inner: &mut Inner, kind: &str, body: &T) -> io::Result<Hex> {
        if inner.finished || inner.broken {
            return Err(io::Error::other(format!(
                "the audit log {} is {}",
                self.path.display(),
                if inner.broken {
                    "broken by an earlier failed write"
                } else {
                    "finished"
                }
            )));
        }
        // The time is taken under the lock, so it never goes back as seq
        // goes up (unless the clock itself is stepped back).
        let buf = &mut inner.buf;
        buf.clear();
        write!(
            buf,
            r#"{{"kind":"{kind}","seq":{},"time":"{}","session":"{}""#,
            inner.seq,
            Rfc3339(time::now_micros()),
            self.session
        )?;
        if let Some(seq) = inner.ledger.take() {
            write!(buf, r#","ledger":{seq}"#)?;
        }
        // The body is `{...}`: its `{` becomes the `,` after the envelope
        // and its `}` gives way to `prev` and the hash.
        let at = buf.len();
        serde_json::to_writer(&mut *buf, body)?;
        // What a program chose (a path, its client name) is stored with the
        // characters that act on a terminal as JSON escapes, so the line is
        // read, printed as stored (`audit show --jsonl`) or followed with
        // `tail -f` as harmless text, with the same value.
        if !buf[at..].is_ascii() {
            let body = String::from_utf8_lossy(&buf[at..]).into_owned();
            if let Cow::Owned(safe) = escape::json_for_terminal(&body) {
                buf.truncate(at);
                buf.extend_from_slice(safe.as_bytes());
            }
        }
        debug_assert!(buf[at] == b'{' && buf.len() > at + 2 && buf.ends_with(b"}"));
        buf[at] = b',';
        buf.pop();
        buf.extend_from_slice(br#","prev":""#);
        buf.extend_from_slice(&inner.prev);
        buf.push(b'"');
        let hash = chain::seal(buf);
        let size = buf.len() as u64;
        if kind != "end" && inner.written + size > inner.limit {
            return Err(io::Error::other(format!(
                "the session's audit record {} reached its limit of {} MiB: nothing more is \
                 recorded, so nothing more is served or connected this session",
                self.path.display(),
                inner.limit >> 20
            )));
        }
        if let Err((partial, e)) = write_record(&inner.file, &inner.buf) {
            inner.broken |= partial;
            return Err(e);
        }
        inner.written += size;
        inner.seq += 1;
        inner.prev = hash;
        Ok(hash)
    }
}

/// One `write(2)`. On a regular file a short write only happens when the
/// disk or a limit is hit; finish the line if possible, else report it. The
/// error says whether part of the line reached the file.
fn write_record(mut file: &File, line: &[u8]) -> Result<(), (bool, io::Error)> {
    let n = loop {
        match file.write(line) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((false, e)),
        }
    };
    if n == line.len() {
        return Ok(());
    }
    file.write_all(&line[n..]).map_err(|e| {
        let e = io::Error::new(
            e.kind(),
            format!(
                "a record was written only in part ({n} of {} bytes): {e}",
                line.len()
            ),
        );
        (n > 0, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(n: u64) -> ConnectionRecord {
        ConnectionRecord {
            host: format!("h{n}.example"),
            port: 443,
            via: "connect".into(),
            address: None,
            decision: Decision::Denied,
            by: By::Rule,
            rule: None,
            reason: Some("not in [network] hosts".into()),
            sent: 0,
            received: 0,
            duration_ms: 0,
        }
    }

    /// A program making records without end meets the session's limit:
    /// records are refused from there on (not a broken file), and the end
    /// record still goes in, so the session verifies and ends as recorded.
    #[test]
    fn a_session_s_records_stop_at_its_limit_and_the_end_record_still_fits() {
        let dir = tempfile::tempdir().unwrap();
        let start = StartRecord::for_test(dir.path().to_path_buf());
        let log = AuditLog::open(dir.path(), "s", &start).unwrap();
        log.lock().limit = 8 << 10;
        let mut written = 0;
        while log.append_connection(&connection(written)).is_ok() {
            written += 1;
            assert!(written < 1_000, "no limit");
        }
        // Control: records were written up to it.
        assert!(written > 10, "{written}");
        let err = log.append_connection(&connection(0)).unwrap_err();
        assert!(err.to_string().contains("reached its limit"), "{err}");
        assert!(!log.lock().broken);
        log.finish("exit 0").unwrap();
        let data = std::fs::read(log.path()).unwrap();
        assert!(data.len() as u64 <= (8 << 10) + 4096, "{}", data.len());
        let report = super::super::verify::verify_bytes("s", log.path(), &data);
        assert!(report.ok(), "{:?}", report.findings);
    }

    /// What a program chose (here a connection's reason and a workspace
    /// path: any text field) is stored with the characters that act on a
    /// terminal or reorder text as JSON escapes, so the file itself, read
    /// with `cat` or `tail -f`, is harmless; the value is the same and the
    /// chain verifies.
    #[test]
    fn a_record_holds_no_character_that_acts_on_a_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws\u{9b}6n\u{202e}hs.live");
        let log = AuditLog::open(dir.path(), "s", &StartRecord::for_test(ws.clone())).unwrap();
        let mut c = connection(1);
        c.reason = Some("x\u{1b}]52;c;eA==\u{7}\u{9b}6n\u{202e}\u{61c}y".into());
        log.append_connection(&c).unwrap();
        log.finish("exit 0").unwrap();
        let data = std::fs::read(log.path()).unwrap();
        let text = String::from_utf8(data.clone()).unwrap();
        for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\u{61c}'] {
            assert!(!text.contains(bad), "{bad:?} stored raw: {text}");
        }
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records[0]["workspace"], ws.to_str().unwrap());
        assert_eq!(records[1]["reason"], c.reason.as_deref().unwrap());
        let report = super::super::verify::verify_bytes("s", log.path(), &data);
        assert!(report.ok(), "{:?}", report.findings);
    }

    /// A file made while the child runs its steps is removed when the
    /// launch fails before its start record, and is the record once
    /// started; a second session cannot take the same file.
    #[test]
    fn an_unstarted_audit_file_is_removed_and_a_started_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let created = AuditLog::create(dir.path(), "s").unwrap();
        assert!(path.exists());
        assert!(AuditLog::create(dir.path(), "s").is_err(), "O_EXCL");
        drop(created);
        assert!(!path.exists(), "the unstarted file was left");
        // Control: started, it is the session's record.
        let start = StartRecord::for_test(dir.path().to_path_buf());
        let log = AuditLog::create(dir.path(), "s")
            .unwrap()
            .start(&start)
            .unwrap();
        log.finish("exit 0").unwrap();
        let data = std::fs::read(&path).unwrap();
        let report = super::super::verify::verify_bytes("s", log.path(), &data);
        assert!(report.ok(), "{:?}", report.findings);
    }

    #[test]
    fn session_ids_must_be_plain_names() {
        for ok in ["3f9a2c1d4e5b6a7f", "a", "test-1_x.y"] {
            assert!(check_session_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "../x",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(check_session_id(bad).is_err(), "{bad:?}");
        }
    }
}
