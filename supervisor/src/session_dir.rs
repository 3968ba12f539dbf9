//! The session's private directory, and the sweep of those whose supervisor
//! died.
//!
//! A supervisor killed with SIGKILL runs no destructor: its directory under
//! `$TMPDIR` and its cgroup stay behind (the program itself dies with it,
//! through `PR_SET_PDEATHSIG`; what it left running stays in the cgroup). So
//! each live session holds an `flock` on a file in its directory, and every
//! `sluice run` first sweeps the directories of this user whose lock is free: it kills
//! what is left in the session's cgroup, removes the cgroup, and removes the
//! directory.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::broker::fsops;
use crate::cgroup::SessionCgroup;

/// `sluice-` and the session id: the names the sweep considers.
const PREFIX: &str = "sluice-";

/// The session's private directory: `tmp/` is the sandbox's TMPDIR, `private/`
/// holds what only the supervisor may touch (deny placeholders). Removed when
/// the session ends; locked while it lives.
pub struct SessionDir {
    root: PathBuf,
    /// Its [`LOCK`] file, `flock`ed until this is dropped (after the
    /// directory is removed).
    _lock: File,
}

/// The file in a session directory its supervisor holds an `flock` on. A
/// directory without one (made by a sluice from before the sweep) is never
/// swept: whether its supervisor lives cannot be told.
const LOCK: &str = "lock";

impl SessionDir {
    pub fn create(session: &str) -> Result<SessionDir> {
        let parent = std::env::temp_dir();
        let root = parent.join(format!("{PREFIX}{session}"));
        // Made and locked under a name the sweep ignores, then renamed: a
        // directory the sweep can see is locked for as long as its session
        // lives.
        let staging = parent.join(format!(".{PREFIX}{session}"));
        let mut b = fs::DirBuilder::new();
        b.mode(0o700);
        b.create(&staging)
            .with_context(|| format!("creating the session directory {}", staging.display()))?;
        let lock = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(staging.join(LOCK))
            .with_context(|| format!("creating {}", staging.join(LOCK).display()))?;
        anyhow::ensure!(try_lock(&lock), "locking {}", staging.display());
        let bytes = |p: &Path| p.as_os_str().as_encoded_bytes().to_vec();
        fsops::rename_noreplace(libc::AT_FDCWD, &bytes(&staging), &bytes(&root))
            .with_context(|| format!("creating the session directory {}", root.display()))?;
        let dir = SessionDir {
            root: root.canonicalize()?,
            _lock: lock,
        };
        b.create(dir.tmp())?;
        b.create(dir.private())?;
        Ok(dir)
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn private(&self) -> PathBuf {
        self.root.join("private")
    }
}

impl Drop for SessionDir {
    fn drop(&mut self) {
        remove(&self.root);
    }
}

/// Removes what the sessions of this user under `$TMPDIR` whose supervisor
/// is gone left behind (see the module's documentation). Directories of
/// other users, and anything not a directory, are left alone.
pub fn sweep_stale() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(session_id) else {
            continue;
        };
        let path = entry.path();
        // O_NOFOLLOW: a symlink by that name is not a session.
        let Ok(dir) = open_dir(&path) else { continue };
        if !dir.metadata().is_ok_and(|m| m.uid() == me) {
            continue;
        }
        let Ok(lock) = open_lock(&dir) else { continue };
        if !try_lock(&lock) {
            continue;
        }
        // Ours, and its supervisor (the lock's holder) is gone.
        if let Some(cgroup) = SessionCgroup::existing(id) {
            cgroup.kill_all();
        }
        remove(&path);
        tracing::debug!(session = id, "swept a session whose supervisor died");
    }
}

/// Whether session `id` is running: its supervisor holds the lock of its
/// directory under our `$TMPDIR`. The one place outside this module that
/// asks (`sluice audit verify`, `list`) calls only this, so moving the lock
/// changes only this function. A session started with another `$TMPDIR`
/// is not found, so it counts as not running (its record is then reported
/// incomplete until it ends: the safe side).
pub fn is_live(id: &str) -> bool {
    let name = format!("{PREFIX}{id}");
    if session_id(&name).is_none() {
        return false;
    }
    let Ok(dir) = open_dir(&std::env::temp_dir().join(name)) else {
        return false;
    };
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if !dir.metadata().is_ok_and(|m| m.uid() == me) {
        return false;
    }
    // Taking the lock means nobody held it (it is let go at once, when
    // `lock` is dropped).
    open_lock(&dir).is_ok_and(|lock| !try_lock(&lock))
}

/// The session id in a directory name `sluice-<16 hex digits>`.
fn session_id(name: &str) -> Option<&str> {
    let id = name.strip_prefix(PREFIX)?;
    let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    (id.len() == 16 && id.chars().all(hex)).then_some(id)
}

fn open_dir(path: &Path) -> Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// The [`LOCK`] file in `dir`, not followed if it is a symlink. O_NONBLOCK:
/// a FIFO planted as `lock` must not hang the sweep (every `sluice run`) or
/// `sluice audit verify` waiting for a writer.
fn open_lock(dir: &File) -> std::io::Result<File> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    fsops::openat2(dir.as_raw_fd(), LOCK.as_bytes(), flags, 0, resolve).map(File::from)
}

/// An exclusive `flock`, without waiting; whether it was taken.
fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Removes `root` and everything in it.
fn remove(root: &Path) {
    if fs::remove_dir_all(root).is_ok() {
        return;
    }
    // The program may have left unreadable directories behind: open them up.
    make_removable(root);
    if let Err(e) = fs::remove_dir_all(root) {
        tracing::warn!(dir = %root.display(), "removing the session directory: {e}");
    }
}

/// Gives the owner every right on `root` and every directory beneath it, so
/// that it can be removed. Directory by directory through descriptors, none
/// followed if it is a symlink: a program still running may swap a
/// directory for a symlink meanwhile, and must not get a chmod of its target.
fn make_removable(root: &Path) {
    if let Ok(dir) = open_dir(root) {
        open_up(dir, 0);
    }
}

fn open_up(dir: File, depth: usize) {
    let _ = dir.set_permissions(fs::Permissions::from_mode(0o700));
    // Deeper than this is no tree a program made in earnest.
    if depth > 64 {
        return;
    }
    let Ok(entries) = fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
        if let Ok(fd) = fsops::openat2(dir.as_raw_fd(), name.as_encoded_bytes(), flags, 0, resolve)
        {
            open_up(File::from(fd), depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sluice_and_sixteen_hex_digits_name_a_session() {
        assert_eq!(
            session_id("sluice-0123456789abcdef"),
            Some("0123456789abcdef")
        );
        for name in [
            "sluice-nested-state",
            "sluice-0123456789ABCDEF",
            "sluice-0123456789abcde",
            "sluice-0123456789abcdef0",
            ".sluice-0123456789abcdef",
            "sluice-0123456789abcdeg",
        ] {
            assert_eq!(session_id(name), None, "{name}");
        }
    }

    /// A FIFO planted as a session's `lock` hung every later `sluice run`
    /// in the sweep (and `audit verify`), opening it for a writer that
    /// never came. Control: a real lock is seen held, then free.
    #[test]
    fn a_fifo_as_lock_does_not_hang_whoever_looks() {
        let base =
            std::env::temp_dir().join(format!("sluice-unit-fifo-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let c = std::ffi::CString::new(base.join(LOCK).as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let dir = open_dir(&base).unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            done.send(open_lock(&dir).map(|l| try_lock(&l)).ok())
                .unwrap()
        });
        let taken = finished
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("opening a FIFO lock blocked");
        assert_eq!(taken, Some(true));
        fs::remove_file(base.join(LOCK)).unwrap();
        let held = File::create(base.join(LOCK)).unwrap();
        assert!(try_lock(&held));
        let dir = open_dir(&base).unwrap();
        assert!(
            !try_lock(&open_lock(&dir).unwrap()),
            "a held lock was taken"
        );
        drop(held);
        assert!(try_lock(&open_lock(&dir).unwrap()));
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn making_a_tree_removable_opens_its_directories_and_follows_no_symlink() {
        let base =
            std::env::temp_dir().join(format!("sluice-unit-removable-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (tree, outside) = (base.join("tree"), base.join("outside"));
        for dir in [tree.join("a/b"), outside.clone()] {
            fs::create_dir_all(dir).unwrap();
        }
        let file = outside.join("file");
        fs::write(&file, "x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&file, tree.join("a/to-file")).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("a/to-dir")).unwrap();
        for dir in [tree.join("a/b"), tree.join("a")] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o000)).unwrap();
        }
        make_removable(&tree);
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&tree.join("a")), 0o700);
        assert_eq!(mode(&tree.join("a/b")), 0o700);
        assert_eq!(mode(&file), 0o644, "followed a symlink to a file");
        assert_eq!(mode(&outside), 0o755, "followed a symlink to a directory");
        fs::remove_dir_all(&base).unwrap();
    }
}
