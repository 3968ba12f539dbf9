//! Whether a session is alive: its liveness record, the same on Linux and
//! macOS, so `sluice audit list/show/verify` tell a running session from
//! one whose supervisor died on both.
//!
//! The record is `<records>/<id>` (`$XDG_STATE_HOME/sluice/sessions`,
//! beside the audit directory, 0700), naming the session's directory. Its
//! supervisor holds an exclusive `flock` on it for as long as the session
//! lives; it is written under a name starting with `.`, locked, and only
//! then renamed into place without replacing anything, so a record anyone
//! can see under its session's name is locked while its session lives.
//! The records directory is denied to every sandbox (Linux: never mounted;
//! macOS: hidden by the profile), so no program can replace a record or
//! hold a lock on one. The sweep of dead sessions' records is Linux's
//! (`session_dir`); a macOS supervisor removes its own record at the end.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::sys;

/// The directory of liveness records outside any sandbox:
/// `$XDG_STATE_HOME/sluice/sessions` (or `~/.local/state/sluice/sessions`).
pub fn records_dir() -> io::Result<PathBuf> {
    Ok(crate::xdg::base_dir("XDG_STATE_HOME", ".local/state")?.join("sluice/sessions"))
}

/// Whether session `id` (started with the default records directory,
/// [`records_dir`]) is alive: its record exists and its supervisor still
/// holds the lock on it. A session without a record (ended, swept, or never
/// started here) is not.
pub fn is_live(id: &str) -> bool {
    records_dir().is_ok_and(|records| is_live_in(&records, id))
}

/// [`is_live`] with the records in `records`.
pub(crate) fn is_live_in(records: &Path, id: &str) -> bool {
    if session_id(id).is_none() {
        return false;
    }
    let Ok(dir) = open_dir(records) else {
        return false;
    };
    let Ok(record) = open_beneath(&dir, id.as_bytes(), libc::O_RDONLY) else {
        return false;
    };
    // A shared lock: if it is granted, no supervisor holds the exclusive one.
    !sys::fs::try_lock(&record, false)
}

/// The session id itself when `id` is 16 lowercase hex digits.
pub(crate) fn session_id(id: &str) -> Option<&str> {
    let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    (id.len() == 16 && id.chars().all(hex)).then_some(id)
}

pub(crate) fn open_dir(path: &Path) -> Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// `name` in `dir`, opened with `flags` (close-on-exec), following no
/// symlink and never leaving `dir`. O_NONBLOCK: a FIFO planted where a lock
/// or record is looked for must not hang the sweep (every `sluice run`) or
/// `sluice audit verify` waiting for a writer.
///
/// `name` is one entry's name, so `openat` with `O_NOFOLLOW` is all the
/// confinement there is to have (and, unlike `openat2`, it is not a call a
/// guarding outer session must make for a stacked sluice: see
/// `broker::guard`).
pub(crate) fn open_beneath(dir: &File, name: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    if !is_path_only(flags) {
        flags |= libc::O_NONBLOCK;
    }
    let name =
        std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    sys::fs::openat(dir, &name, flags, 0)
}

/// Whether `flags` ask for an `O_PATH` descriptor (Linux only).
fn is_path_only(flags: libc::c_int) -> bool {
    #[cfg(target_os = "linux")]
    return flags & libc::O_PATH != 0;
    #[cfg(not(target_os = "linux"))]
    {
        let _ = flags;
        false
    }
}

/// Creates `<records>/<session>` (`records` made 0700 if missing) naming
/// `root`, locked, under a name the sweep ignores first (a record the sweep
/// can see is always locked while its session lives). The lock lasts as
/// long as the returned file.
pub(crate) fn write_record(records: &Path, session: &str, root: &Path) -> Result<File> {
    anyhow::ensure!(
        session_id(session).is_some(),
        "session id {session:?} is not 16 hex digits"
    );
    crate::audit::ensure_private_dir(records).with_context(|| {
        format!(
            "the session records directory {}: sluice keeps its state beneath \
             $XDG_STATE_HOME (~/.local/state when it is not set); set XDG_STATE_HOME \
             to a directory you can write",
            records.display()
        )
    })?;
    let staging = records.join(format!(".{session}"));
    let mut lock = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    anyhow::ensure!(
        sys::fs::try_lock(&lock, true),
        "locking {}",
        staging.display()
    );
    let mut text = root.as_os_str().as_bytes().to_vec();
    text.push(b'\n');
    lock.write_all(&text)
        .with_context(|| format!("writing {}", staging.display()))?;
    let bytes = |p: &Path| p.as_os_str().as_bytes().to_vec();
    sys::fs::rename_noreplace(
        libc::AT_FDCWD,
        &bytes(&staging),
        &bytes(&records.join(session)),
    )
    .inspect_err(|_| {
        let _ = fs::remove_file(&staging);
    })
    .with_context(|| format!("recording session {session} in {}", records.display()))?;
    Ok(lock)
}

/// A session's liveness record, held (locked) until dropped, then
/// removed: what the macOS launcher keeps (Linux's `SessionDir` holds its
/// record the same way and removes it after its directory).
pub struct Record {
    path: PathBuf,
    _lock: File,
}

impl Record {
    /// Writes and locks the record of `session` in `records` (created 0700
    /// if missing), naming the session's directory `root`.
    pub fn hold(records: &Path, session: &str, root: &Path) -> Result<Record> {
        let lock = write_record(records, session, root)?;
        Ok(Record {
            path: records.join(session),
            _lock: lock,
        })
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // Removed while still locked: nobody sees it unlocked.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held record is live, under its own name only; after the drop it
    /// is neither live nor there. Control: another id, and a name outside
    /// the directory, are never live.
    #[test]
    fn a_held_record_is_live_until_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let records = tmp.path().join("sessions");
        let id = "0123456789abcdef";
        let record = Record::hold(&records, id, Path::new("/tmp/sluice-0/x")).unwrap();
        assert!(is_live_in(&records, id));
        assert!(!is_live_in(&records, "00000000000000ef"));
        assert!(!is_live_in(&records, "../sessions"));
        let text = fs::read_to_string(records.join(id)).unwrap();
        assert_eq!(text, "/tmp/sluice-0/x\n");
        assert!(!records.join(format!(".{id}")).exists(), "staging left");
        drop(record);
        assert!(!is_live_in(&records, id));
        assert!(!records.join(id).exists(), "record left behind");
    }

    /// A second session with the same id (or a record planted under it)
    /// is refused, never replaced: the rename does not overwrite.
    #[test]
    fn a_record_is_never_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let records = tmp.path().join("sessions");
        let id = "0123456789abcdef";
        let _first = Record::hold(&records, id, Path::new("/a")).unwrap();
        let err = Record::hold(&records, id, Path::new("/b")).err().unwrap();
        assert!(format!("{err:#}").contains("recording session"), "{err:#}");
        assert_eq!(fs::read_to_string(records.join(id)).unwrap(), "/a\n");
        assert!(!records.join(format!(".{id}")).exists(), "staging left");
        assert!(is_live_in(&records, id));
    }

    /// A record whose holder is gone (its lock released, the file left, as
    /// after SIGKILL) is not live; a bad id is refused before any lock.
    #[test]
    fn an_unlocked_record_is_not_live_and_bad_ids_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let records = tmp.path().join("sessions");
        let id = "00000000000000aa";
        crate::audit::ensure_private_dir(&records).unwrap();
        fs::write(records.join(id), "/x\n").unwrap();
        assert!(!is_live_in(&records, id));
        assert!(Record::hold(&records, "../x", Path::new("/x")).is_err());
    }
}
