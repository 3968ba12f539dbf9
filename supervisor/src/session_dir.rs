//! The session's private directory, the record that says whether its
//! session is alive, and the sweep of those whose supervisor died.
//!
//! Two places, kept apart because a sandbox must never decide for sluice
//! whether another session lives:
//!
//! - **The liveness record**, `<records>/<id>` (`$XDG_STATE_HOME/sluice/sessions`,
//!   beside the audit directory, 0700): a file its supervisor holds an
//!   `flock` on for as long as the session lives, naming the session's
//!   directory. The records directory is denied to every sandbox, like the
//!   audit directory, so no program can replace a lock or point a record
//!   elsewhere.
//! - **The session directory**, `$TMPDIR/sluice-<uid>/<id>/` with `tmp/`
//!   (the sandbox's TMPDIR), and in the child's view only, on a tmpfs over
//!   it, `private/` (deny placeholders, the root's mount point). Every
//!   session of a user lives under the one parent `sluice-<uid>`, which
//!   every sandbox sees as a read-only directory holding only its own
//!   `<id>/tmp` (the *veil*, made by the child), so no session can reach
//!   another one's directory, even one started later.
//!
//! A supervisor killed with SIGKILL runs no destructor: its directory and its
//! cgroup stay behind (the program itself dies with it, through
//! `PR_SET_PDEATHSIG`; what it left running stays in the cgroup). So every
//! `sluice run` sweeps the records whose lock is free (while its child runs
//! its steps, off the launch's path: `commands::run`): it kills what is
//! left in the session's cgroup, removes the cgroup and the directory the
//! record names, then the record. Directories no record names are never
//! acted on, except the leftovers of an older sluice (`$TMPDIR/sluice-<id>`
//! with a free `lock` file inside), which are removed but whose cgroup is
//! left alone: a sandbox that can write `$TMPDIR` could plant one of those.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cgroup::SessionCgroup;
pub use crate::platform::liveness::records_dir;
use crate::platform::liveness::{open_beneath, open_dir, session_id, write_record};
use crate::sys;

/// `sluice-`: the per-user parent is `sluice-<uid>`; an older sluice made
/// `sluice-<id>` directories.
const PREFIX: &str = "sluice-";

/// The file an older sluice's session directory held its `flock` on.
const LEGACY_LOCK: &str = "lock";

/// A record names a path of at most this many bytes.
const RECORD_MAX: u64 = 4096;

/// The session's private directory: `tmp/` is the sandbox's TMPDIR, its
/// one entry on disk (on Linux; macOS also has `private/`). The child
/// covers it with a tmpfs of its own holding `tmp/` and `private/` (deny
/// placeholders, the root's mount point: `sandbox_child::SessionDirs`).
/// Removed when the session ends, then its liveness record.
pub struct SessionDir {
    id: String,
    /// `$TMPDIR/sluice-<uid>`, canonical.
    parent: PathBuf,
    /// The liveness record, `flock`ed until this is dropped.
    record: PathBuf,
    _lock: File,
}

/// Where a sluice keeps its session records: [`records_dir`], or, stacked
/// inside another sluice sandbox (which lets it write nowhere else), beside
/// its other state under the outer session's TMPDIR.
pub fn records_dir_for(stacked: bool) -> io::Result<PathBuf> {
    match stacked {
        true => Ok(crate::nesting::state_dir().join("sessions")),
        false => records_dir(),
    }
}

impl SessionDir {
    /// Writes the liveness record of `session` in `records` (created 0700
    /// if missing) and locks it, then makes the session's directory.
    pub fn create(session: &str, records: &Path) -> Result<SessionDir> {
        let parent = sessions_parent()?;
        let root = parent.join(session);
        let lock = write_record(records, session, &root)?;
        let dir = SessionDir {
            id: session.to_owned(),
            parent,
            record: records.join(session),
            _lock: lock,
        };
        make_session_dir(&dir.parent, session)?;
        Ok(dir)
    }

    /// `$TMPDIR/sluice-<uid>`: every session directory of this user is in it.
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    fn root(&self) -> PathBuf {
        self.parent.join(&self.id)
    }

    /// The session's directory and the program's `TMPDIR` in it, for the
    /// child, which covers the one with a tmpfs holding the other.
    #[cfg(target_os = "linux")]
    pub fn dirs(&self) -> sandbox_child::SessionDirs {
        sandbox_child::SessionDirs {
            dir: self.root(),
            tmp: self.tmp(),
        }
    }

    pub fn tmp(&self) -> PathBuf {
        self.root().join("tmp")
    }

    pub fn private(&self) -> PathBuf {
        self.root().join("private")
    }
}

impl Drop for SessionDir {
    fn drop(&mut self) {
        // The record goes last, and only once the directory is gone: what
        // could not be removed is found by a later sweep.
        match retire_session(&self.parent, &self.id) {
            Ok(()) => {
                let _ = fs::remove_file(&self.record);
            }
            Err(e) => tracing::warn!(
                dir = %self.root().display(),
                "removing the session directory: {e:#}; the next `sluice run` tries again"
            ),
        }
    }
}

/// The prefix of a spare: an empty session directory a finished session
/// left for the next one's `<id>` (`.spare-<its id>`, never a session id).
const SPARE: &str = ".spare-";

/// At most this many spares wait in a parent; a session ending beyond them
/// removes its directory.
const MAX_SPARES: usize = 4;

/// The entries of a session's directory on disk: `tmp/`, and on macOS
/// `private/` (on Linux it is in the child's memory only, see
/// `sandbox_child::SessionDirs`; the Seatbelt profile names it).
fn session_entries() -> &'static [&'static str] {
    match cfg!(target_os = "macos") {
        true => &["tmp", "private"],
        false => &["tmp"],
    }
}

/// Makes `<parent>/<id>` (0700) and its entries. The directory itself is a
/// spare when one is there ([`take_spare`]): on ext4 mounted `discard`,
/// each directory made and removed costs an inode allocation and a
/// synchronous discard of its block (0.2 to 0.6 ms quiet, several ms under
/// load). `tmp/`, the one entry a program reaches, is always new.
fn make_session_dir(parent: &Path, id: &str) -> Result<()> {
    let parent_dir = open_dir(parent)?;
    let root = parent.join(id);
    let mut b = fs::DirBuilder::new();
    b.mode(0o700);
    if !take_spare(parent, &parent_dir, id) {
        b.create(&root)
            .with_context(|| format!("creating the session directory {}", root.display()))?;
    }
    for name in session_entries() {
        let d = root.join(name);
        b.create(&d)
            .with_context(|| format!("creating the session directory {}", d.display()))?;
    }
    Ok(())
}

/// Renames a spare in `parent` (`dir`) to `id` and keeps it if it is what
/// a finished session left: an empty directory of ours, mode 0700, not a
/// symlink. Anything else found by that name is removed, and a new
/// directory is made instead. No program ever held the directory: in the
/// child it is covered by a tmpfs before the program runs (the program's
/// `tmp/` is made new for each session), so nothing reaches the next
/// session through it. Two sluices starting at once cannot take the same
/// spare (the rename succeeds once).
fn take_spare(parent: &Path, dir: &File, id: &str) -> bool {
    let Ok(entries) = fs::read_dir(parent) else {
        return false;
    };
    let spares = entries
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.as_bytes().starts_with(SPARE.as_bytes()));
    for name in spares.take(MAX_SPARES * 2) {
        if sys::fs::rename_noreplace(dir.as_raw_fd(), name.as_bytes(), id.as_bytes()).is_err() {
            continue; // another sluice took it first
        }
        let sound = open_beneath(dir, id.as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY)
            .map(File::from)
            .is_ok_and(|d| {
                d.metadata()
                    .is_ok_and(|m| m.is_dir() && m.uid() == euid() && m.mode() & 0o7777 == 0o700)
                    && fs::read_dir(parent.join(id)).is_ok_and(|mut e| e.next().is_none())
            });
        if sound {
            return true;
        }
        // Not what a session left: gone, and a new directory made.
        if let Err(e) = remove_entry(dir, id.as_bytes()) {
            tracing::warn!(spare = %parent.join(&name).display(), "removing a spare: {e:#}");
        }
        return false;
    }
    false
}

/// Ends the session directory `<parent>/<id>`: its entries are removed,
/// then the directory itself is kept as a spare for the next session
/// ([`take_spare`]) when it is empty and fewer than [`MAX_SPARES`] wait,
/// else removed.
fn retire_session(parent: &Path, id: &str) -> Result<()> {
    let Some(dir) = session_parent(parent)? else {
        return Ok(());
    };
    let root = match open_beneath(&dir, id.as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY) {
        Ok(root) => File::from(root),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => return remove_entry(&dir, id.as_bytes()),
    };
    for name in session_entries() {
        remove_entry(&root, name.as_bytes())?;
    }
    let empty = fs::read_dir(parent.join(id)).is_ok_and(|mut e| e.next().is_none());
    let waiting = fs::read_dir(parent).map_or(usize::MAX, |entries| {
        (entries.flatten())
            .filter(|e| e.file_name().as_bytes().starts_with(SPARE.as_bytes()))
            .count()
    });
    let spare = format!("{SPARE}{id}");
    if empty
        && waiting < MAX_SPARES
        && sys::fs::rename_noreplace(dir.as_raw_fd(), id.as_bytes(), spare.as_bytes()).is_ok()
    {
        return Ok(());
    }
    remove_entry(&dir, id.as_bytes())
}

/// `$TMPDIR/sluice-<uid>`, made 0700 if missing, and refused unless it is a
/// directory (not a symlink) of ours that nobody else can enter: in a shared
/// `/tmp` anyone could have made it first.
fn sessions_parent() -> Result<PathBuf> {
    private_parent(&std::env::temp_dir())
}

/// `<base>/sluice-<uid>`, made and checked as [`sessions_parent`] says.
fn private_parent(base: &Path) -> Result<PathBuf> {
    let path = base.join(format!("{PREFIX}{}", euid()));
    match fs::DirBuilder::new().mode(0o700).create(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            let named = match std::env::var_os("TMPDIR") {
                Some(dir) => format!("TMPDIR ({})", dir.to_string_lossy()),
                None => "/tmp (TMPDIR is not set)".to_owned(),
            };
            return Err(e).with_context(|| {
                format!(
                    "creating {}: sluice keeps its sessions beneath {named}, which must be \
                     a directory you can write; set TMPDIR to one",
                    path.display()
                )
            });
        }
    }
    let dir = open_dir(&path)?;
    let meta = dir.metadata()?;
    anyhow::ensure!(
        meta.uid() == euid() && meta.mode() & 0o077 == 0,
        "refusing {}: sluice keeps its sessions there, and it is owned by uid {} \
         with mode {:o} (it must be yours, mode 0700): remove it, or set TMPDIR elsewhere",
        path.display(),
        meta.uid(),
        meta.mode() & 0o7777
    );
    path.canonicalize()
        .with_context(|| format!("resolving {}", path.display()))
}

/// Removes what the sessions of this user whose supervisor is gone left
/// behind: those with a record in `records` whose lock is free, then an
/// older sluice's directories under `$TMPDIR` (see the module's
/// documentation).
pub fn sweep_stale(records: &Path) {
    if let Ok(dir) = open_dir(records) {
        sweep_records(&dir, records);
    }
    sweep_legacy();
}

/// The prefix of an empty directory a session set aside at its end for a
/// later one to take (`.aside-<its id>`): the mount point of Python's
/// bytecode cache in its TMPDIR (`crate::pycache`). Removing it while the
/// session's namespace is torn down waited for an RCU grace period (10.9
/// ms, measured), renaming it takes 0.06 ms; the next session renames it
/// into its own TMPDIR instead of making one.
const ASIDE: &str = ".aside-";

/// At most this many directories wait aside.
const MAX_ASIDE: usize = 4;

/// Renames the empty directory `dir` (in the session's TMPDIR) aside in
/// the parent of `session_dir` (see [`ASIDE`]), unless it holds anything
/// or [`MAX_ASIDE`] wait already; whether it was.
pub fn set_aside(dir: &Path, session_dir: &Path) -> bool {
    let (Some(parent), Some(id)) = (session_dir.parent(), session_dir.file_name()) else {
        return false;
    };
    let empty = fs::read_dir(dir).is_ok_and(|mut e| e.next().is_none());
    if !empty || asides(parent).len() >= MAX_ASIDE {
        return false;
    }
    let aside = parent.join(format!("{ASIDE}{}", id.to_string_lossy()));
    fs::rename(dir, aside).is_ok()
}

fn asides(parent: &Path) -> Vec<OsString> {
    fs::read_dir(parent)
        .map(|entries| {
            (entries.flatten())
                .map(|e| e.file_name())
                .filter(|n| n.as_bytes().starts_with(ASIDE.as_bytes()))
                .collect()
        })
        .unwrap_or_default()
}

/// Makes the directory `rel` (`<id>/tmp/NAME`) in the sessions' parent
/// `parent`, 0700, from one set aside if one waits ([`set_aside`]): taken
/// only if it is an empty directory of ours, mode 0700, not a symlink,
/// else removed and a new one made.
pub fn make_from_aside(parent: &Path, rel: &Path) -> io::Result<()> {
    let dir = open_dir(parent).map_err(io::Error::other)?;
    for name in asides(parent).into_iter().take(MAX_ASIDE * 2) {
        let to = rel.as_os_str().as_bytes();
        if sys::fs::rename_noreplace(dir.as_raw_fd(), name.as_bytes(), to).is_err() {
            continue; // another sluice took it first
        }
        let taken = parent.join(rel);
        let sound = fs::symlink_metadata(&taken)
            .is_ok_and(|m| m.is_dir() && m.uid() == euid() && m.mode() & 0o7777 == 0o700)
            && fs::read_dir(&taken).is_ok_and(|mut e| e.next().is_none());
        if sound {
            return Ok(());
        }
        let _ = fs::remove_dir_all(&taken).or_else(|_| fs::remove_file(&taken));
        break;
    }
    fs::DirBuilder::new().mode(0o700).create(parent.join(rel))
}

fn sweep_records(dir: &File, records: &Path) {
    let Ok(entries) = fs::read_dir(records) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(session_id) else {
            continue;
        };
        let Ok(record) = open_beneath(dir, id.as_bytes(), libc::O_RDONLY) else {
            continue;
        };
        let record = File::from(record);
        if !record
            .metadata()
            .is_ok_and(|m| m.is_file() && m.uid() == euid())
            || !try_lock(&record)
        {
            continue;
        }
        // Ours, and its supervisor (the lock's holder) is gone. Held locked
        // while it is swept, so two sweeps do not race.
        let Some(parent) = recorded_parent(&record, id) else {
            tracing::warn!(
                record = %records.join(id).display(),
                "a session record that names no session directory of sluice's: left alone"
            );
            continue;
        };
        if let Some(cgroup) = SessionCgroup::existing(id) {
            cgroup.kill_all();
        }
        match remove_session(&parent, id) {
            Ok(()) => {
                let _ = fs::remove_file(records.join(id));
                tracing::debug!(session = id, "swept a session whose supervisor died");
            }
            Err(e) => tracing::warn!(
                dir = %parent.join(id).display(),
                "sweeping a dead session's directory: {e:#}"
            ),
        }
    }
}

/// The parents (`…/sluice-<uid>`) of the directories of live sessions
/// recorded in `records` that were started with another `$TMPDIR` than
/// `ours`, except those holding `ours`: the veil hides only `ours`, so a
/// launch denies these to its sandbox too. (A session started later with yet
/// another `$TMPDIR` is not covered: see ARCHITECTURE.md.)
pub fn other_live_parents(records: &Path, ours: &Path) -> Vec<PathBuf> {
    let (Ok(dir), Ok(entries)) = (open_dir(records), fs::read_dir(records)) else {
        return Vec::new();
    };
    let mut parents: Vec<PathBuf> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(session_id) else {
            continue;
        };
        let Ok(record) = open_beneath(&dir, id.as_bytes(), libc::O_RDONLY) else {
            continue;
        };
        let record = File::from(record);
        if sys::fs::try_lock(&record, false) {
            continue;
        }
        if let Some(parent) = recorded_parent(&record, id) {
            if parent != ours && !ours.starts_with(&parent) && !parents.contains(&parent) {
                parents.push(parent);
            }
        }
    }
    parents
}

/// The parent (`…/sluice-<uid>`) of the session directory a record names,
/// if it names one of this session's: an absolute path ending in
/// `sluice-<uid>/<id>`, with no `.` or `..`.
fn recorded_parent(record: &File, id: &str) -> Option<PathBuf> {
    let mut text = Vec::new();
    record.take(RECORD_MAX).read_to_end(&mut text).ok()?;
    let line = text.strip_suffix(b"\n")?;
    let path = Path::new(OsStr::from_bytes(line));
    let plain = path.is_absolute()
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::RootDir
            )
        })
        && !line.contains(&b'\n');
    let parent = path.parent()?;
    let named = path.file_name()? == OsStr::new(id)
        && parent.file_name()? == OsStr::new(&format!("{PREFIX}{}", euid()));
    (plain && named).then(|| parent.to_path_buf())
}

/// An older sluice's `$TMPDIR/sluice-<id>` directories whose `lock` is free.
fn sweep_legacy() {
    let tmp = std::env::temp_dir();
    let Ok(entries) = fs::read_dir(&tmp) else {
        return;
    };
    // TMPDIR itself may be a symlink (it is the person's own).
    let Ok(tmp_fd) = File::open(&tmp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if session_id(id).is_none() {
            continue;
        }
        let Ok(dir) = open_beneath(&tmp_fd, name.as_bytes(), libc::O_DIRECTORY) else {
            continue;
        };
        let dir = File::from(dir);
        if !dir.metadata().is_ok_and(|m| m.uid() == euid()) {
            continue;
        }
        let Ok(lock) = open_beneath(&dir, LEGACY_LOCK.as_bytes(), libc::O_RDONLY) else {
            continue;
        };
        if !try_lock(&File::from(lock)) {
            continue;
        }
        if let Err(e) = remove_entry(&tmp_fd, name.as_bytes()) {
            tracing::warn!(dir = %entry.path().display(), "sweeping a dead session's directory: {e:#}");
        }
    }
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// An exclusive `flock`, without waiting; whether it was taken.
fn try_lock(file: &File) -> bool {
    sys::fs::try_lock(file, true)
}

/// Removes the session directory `<parent>/<id>` and everything in it,
/// walking by descriptors from `parent` (which must be a directory of ours,
/// not a symlink). A directory that is already gone is not an error.
fn remove_session(parent: &Path, id: &str) -> Result<()> {
    match session_parent(parent)? {
        Some(dir) => remove_entry(&dir, id.as_bytes()),
        None => Ok(()),
    }
}

/// `parent` opened, refused unless it is a directory of ours (not a
/// symlink); `None` if it is gone.
fn session_parent(parent: &Path) -> Result<Option<File>> {
    let dir = match open_dir(parent) {
        Ok(dir) => dir,
        Err(_) if fs::symlink_metadata(parent).is_err() => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = dir.metadata()?;
    anyhow::ensure!(
        meta.uid() == euid(),
        "{} is owned by uid {}, not by us",
        parent.display(),
        meta.uid()
    );
    Ok(Some(dir))
}

/// Removes the directory `name` in `dir` and everything in it, opening up
/// directories a program left unreadable (mode 000) when a first pass
/// fails. (The deny placeholders are in the child's memory: a session of
/// this sluice leaves none on disk; an older one's are opened up so.) A missing `name` is not an error; a symlink by that
/// name is removed, never followed.
fn remove_entry(dir: &File, name: &[u8]) -> Result<()> {
    let shown = String::from_utf8_lossy(name).into_owned();
    // std's remove_dir_all opens every directory with O_NOFOLLOW; the
    // magic link of `dir` keeps the walk beneath the directory we opened.
    let path =
        PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(OsStr::from_bytes(name));
    match fs::remove_dir_all(&path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    if let Ok(fd) = open_beneath(dir, name, libc::O_PATH | libc::O_DIRECTORY) {
        open_up(fd, 0);
    }
    match fs::remove_dir_all(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {shown}")),
    }
}

/// Gives the owner every right on the directory `dir` (an `O_PATH`
/// descriptor, so that a mode-000 directory can be opened) and every
/// directory beneath it, so that it can be removed. Directory by directory
/// through descriptors, none followed if it is a symlink: a program still
/// running may swap a directory for a symlink meanwhile, and must not get a
/// chmod of its target.
fn open_up(dir: OwnedFd, depth: usize) {
    let magic = format!("/proc/self/fd/{}", dir.as_raw_fd());
    // chmod through the magic link changes the inode `dir` holds, which was
    // opened as a directory without following a symlink.
    let _ = fs::set_permissions(&magic, fs::Permissions::from_mode(0o700));
    // Deeper than this is no tree a program made in earnest.
    if depth > 64 {
        return;
    }
    let Ok(readable) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(&magic)
    else {
        return;
    };
    let Ok(entries) = fs::read_dir(&magic) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        if let Ok(fd) = open_beneath(&readable, name.as_bytes(), libc::O_PATH | libc::O_DIRECTORY) {
            open_up(fd, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests;
