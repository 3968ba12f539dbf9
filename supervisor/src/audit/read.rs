//! Reading audit files back: which sessions there are, and their records.

use std::io;
use std::path::{Path, PathBuf};

use super::record::{Entry, Record, StartRecord};

/// One session's audit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFile {
    pub session: String,
    pub path: PathBuf,
}

/// The `*.jsonl` files in `dir`, by session id. A missing directory has none.
pub fn session_files(dir: &Path) -> io::Result<Vec<SessionFile>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("reading the audit directory {}: {e}", dir.display()),
            ))
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let is_file = entry.file_type()?.is_file();
        let session = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"));
        if let (true, Some(session)) = (is_file, session) {
            files.push(SessionFile {
                session: session.to_owned(),
                path,
            });
        }
    }
    files.sort_by(|a, b| a.session.cmp(&b.session));
    Ok(files)
}

/// The largest audit file the commands read into memory (about three
/// million decisions): beyond it they say so rather than run out of memory.
pub const MAX_AUDIT_BYTES: u64 = 1 << 30;

/// Reads an audit file (or the ledger) whole: a regular file, not followed
/// if it is a symlink, of at most [`MAX_AUDIT_BYTES`]. Anything else is an
/// error naming it, never a read without end (a FIFO or `/dev/zero` put in
/// the directory).
pub fn read_audit_file(path: &Path) -> io::Result<Vec<u8>> {
    read_audit_file_from(path, 0)
}

/// [`read_audit_file`] from byte `offset` on.
pub fn read_audit_file_from(path: &Path, offset: u64) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    let named = |e: io::Error| io::Error::new(e.kind(), format!("reading {}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(named)?;
    let meta = file.metadata().map_err(named)?;
    if !meta.is_file() {
        return Err(named(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file, so no audit file",
        )));
    }
    let too_large = || {
        named(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than the {} MiB sluice reads", MAX_AUDIT_BYTES >> 20),
        ))
    };
    if meta.len() > MAX_AUDIT_BYTES {
        return Err(too_large());
    }
    file.seek(SeekFrom::Start(offset)).map_err(named)?;
    let mut data = Vec::with_capacity(meta.len().saturating_sub(offset) as usize);
    file.take(MAX_AUDIT_BYTES + 1 - offset.min(MAX_AUDIT_BYTES))
        .read_to_end(&mut data)
        .map_err(named)?;
    if offset + data.len() as u64 > MAX_AUDIT_BYTES {
        return Err(too_large());
    }
    Ok(data)
}

/// A line number (from 1) and the line's bytes, without the newline.
pub type NumberedLine<'a> = (usize, &'a [u8]);

/// The complete lines of a file, and the final line if it has no newline (a
/// record torn by a crash during its write).
pub fn split_lines(data: &[u8]) -> (Vec<NumberedLine<'_>>, Option<NumberedLine<'_>>) {
    let mut lines = Vec::new();
    let mut rest = data;
    let mut number = 1;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        lines.push((number, &rest[..end]));
        rest = &rest[end + 1..];
        number += 1;
    }
    let torn = (!rest.is_empty()).then_some((number, rest));
    (lines, torn)
}

/// A record as read, with its line and its text (for `--json`).
#[derive(Debug, Clone)]
pub struct Line {
    pub number: usize,
    pub text: String,
    pub entry: Entry,
}

/// A session's records as read. Reading does not check the chain (that is
/// [`super::verify`]); lines that are not records are counted and skipped.
#[derive(Debug, Clone)]
pub struct SessionLog {
    pub session: String,
    pub path: PathBuf,
    pub lines: Vec<Line>,
    /// Lines that could not be read as records.
    pub unreadable: usize,
    /// The file ends in a partial line.
    pub torn: bool,
}

impl SessionLog {
    pub fn load(file: &SessionFile) -> io::Result<SessionLog> {
        let data = read_audit_file(&file.path)?;
        let (raw, torn) = split_lines(&data);
        let mut lines = Vec::with_capacity(raw.len());
        let mut unreadable = 0;
        for (number, bytes) in raw {
            match parse_line(&file.session, bytes) {
                Some((text, entry)) => lines.push(Line {
                    number,
                    text,
                    entry,
                }),
                None => unreadable += 1,
            }
        }
        Ok(SessionLog {
            session: file.session.clone(),
            path: file.path.clone(),
            lines,
            unreadable,
            torn: torn.is_some(),
        })
    }

    /// The start record, if the first record is one.
    pub fn start(&self) -> Option<(&Entry, &StartRecord)> {
        let first = &self.lines.first()?.entry;
        match &first.record {
            Record::Start(s) => Some((first, s)),
            _ => None,
        }
    }

    /// The end record, if the last record is one.
    pub fn end(&self) -> Option<&Entry> {
        let last = &self.lines.last()?.entry;
        matches!(last.record, Record::End(_)).then_some(last)
    }
}

/// Reads a file as it grows, a complete line at a time (`tail --follow`).
#[derive(Debug)]
pub struct Follower {
    pub file: SessionFile,
    offset: u64,
    next_line: usize,
}

impl Follower {
    pub fn new(file: SessionFile) -> Follower {
        Follower {
            file,
            offset: 0,
            next_line: 1,
        }
    }

    /// The records completed since the last call. A partial last line is
    /// left for the next call.
    pub fn read_new(&mut self) -> io::Result<Vec<Line>> {
        let data = read_audit_file_from(&self.file.path, self.offset)?;
        let (raw, _partial) = split_lines(&data);
        let mut lines = Vec::with_capacity(raw.len());
        for (_, bytes) in &raw {
            if let Some((text, entry)) = parse_line(&self.file.session, bytes) {
                lines.push(Line {
                    number: self.next_line,
                    text,
                    entry,
                });
            }
            self.next_line += 1;
            self.offset += bytes.len() as u64 + 1;
        }
        Ok(lines)
    }
}

/// One line of `session`'s file as a record, and its text. A record that
/// names another session is not one of this file's (`verify` says so): a
/// file the program could write (a stacked session's, kept with the outer
/// session's records) must not put records under a real session's id in
/// `tail`, `stats` or a `--session` selection.
pub fn parse_line(session: &str, bytes: &[u8]) -> Option<(String, Entry)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let entry: Entry = serde_json::from_str(text).ok()?;
    (entry.session == session).then(|| (text.to_owned(), entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO, a symlink (to `/dev/zero`) or a device put where an audit
    /// file or the ledger is expected is refused at once, not read without
    /// end. Control: a regular file is read, from an offset too.
    #[test]
    fn only_regular_files_are_read_as_audit_files() {
        let dir =
            std::env::temp_dir().join(format!("sluice-unit-audit-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.jsonl");
        std::fs::write(&file, b"line\n").unwrap();
        assert_eq!(read_audit_file(&file).unwrap(), b"line\n");
        assert_eq!(read_audit_file_from(&file, 2).unwrap(), b"ne\n");
        let fifo = dir.join("fifo.jsonl");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let zero = dir.join("zero.jsonl");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for bad in [fifo, zero, PathBuf::from("/dev/zero")] {
            let e = read_audit_file(&bad).unwrap_err().to_string();
            assert!(e.contains(&bad.display().to_string()), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn split_lines_numbers_lines_and_keeps_a_torn_tail_apart() {
        let (lines, torn) = split_lines(b"a\nbb\n\ncc");
        assert_eq!(lines, vec![(1, &b"a"[..]), (2, b"bb"), (3, b"")]);
        assert_eq!(torn, Some((4, &b"cc"[..])));
        let (lines, torn) = split_lines(b"a\n");
        assert_eq!(lines, vec![(1, &b"a"[..])]);
        assert_eq!(torn, None);
        assert_eq!(split_lines(b""), (vec![], None));
    }
}
