//! Python's bytecode cache, kept across sessions without keeping anything
//! the program wrote.
//!
//! `default` and `readonly` point `PYTHONPYCACHEPREFIX` at
//! `$TMPDIR/pycache`, so Python inside never writes bytecode beside the
//! person's sources (*A cache run instead of the source* in
//! ARCHITECTURE.md). With a prefix Python reads no `__pycache__`, the
//! system's included, so a session's first import of each module compiled
//! it. Where the prefix points the program now sees an overlay
//! (`sandbox_child::SessionOverlay`): its writes land in an upper layer of
//! the session's own, in a tmpfs the child mounts beneath the overlay
//! (bounded as the session's `/dev/shm`, out of the program's reach, and
//! nowhere on the host), dropped with the session; the lower layer,
//! read-only, is the cache kept across sessions, `<state>/pycache/<key>`,
//! beside the session records, denied to every sandbox.
//!
//! Nothing of the program's reaches the lower layer. When the session has
//! ended (the program and all it started gone), [`PyCache::end`] takes the
//! *names* of the bytecode the program's Python wrote (through the
//! descriptor of that tmpfs the child handed over with its root, which
//! keeps it readable after the session's namespace is gone; closing it
//! frees the tmpfs), and for each copies
//! into the lower layer the file Python outside would run for that source:
//! the source's own `__pycache__/NAME.TAG.pyc`, when it is valid for the
//! source now (a timestamp header naming its time and size, or a checked
//! hash) and both lie outside every tree the session could write, in a
//! tree it may read, denied by nothing. So the cache holds only bytes the
//! person's own Python runs for those sources, and only for sources the
//! session could read; a later session reading it gains no code and learns
//! nothing it could not read itself. The key is the workspace and the
//! trees the policy lets the sandbox read, write and not read, so a
//! session under a narrower policy never sees what a wider one cached.
//! Modules of the writable trees (the workspace's own) are not kept: they
//! compile in every session, as before.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use policies::FsPolicy;

/// The variable the policy sets; the cache is served where it points only
/// when that is `$TMPDIR/pycache`.
pub(crate) const PREFIX_VAR: &str = "PYTHONPYCACHEPREFIX";

/// The name of the prefix in the session's TMPDIR.
const DIR: &str = "pycache";

/// At most this many keys (workspace and policy) are kept; the least
/// recently ended go first.
const MAX_KEYS: usize = 8;

/// At most this many entries are looked at, and copied, at the end of one
/// session.
const MAX_SEEN: usize = 20_000;
const MAX_COPIED: usize = 5_000;

/// Deeper than this is no source tree.
const MAX_DEPTH: usize = 64;

/// A bytecode file larger than this is not copied.
const MAX_PYC: u64 = 16 << 20;

/// One session's use of the cache, from its launch to its end.
pub(crate) struct PyCache {
    /// `<state>/pycache`, holding one directory per key.
    root: PathBuf,
    /// `<root>/<key>`: the overlay's lower layer.
    lower: PathBuf,
    /// `$TMPDIR/pycache` on the host: the overlay's mount point.
    dir: PathBuf,
}

impl PyCache {
    /// The cache for this session if the program's environment points
    /// the prefix at `tmp/pycache` and `root` (sluice's state, private)
    /// may be used; makes the lower layer if it is new and the mount point
    /// (from one set aside, `session_dir::make_from_aside`). `None`
    /// otherwise: Python then caches in the TMPDIR as before.
    pub(crate) fn prepare(
        root: Option<&Path>,
        fs: &FsPolicy,
        workspace: &Path,
        tmp: &Path,
        env: &[(OsString, OsString)],
    ) -> Option<PyCache> {
        let root = root?;
        let dir = tmp.join(DIR);
        let points_here = env
            .iter()
            .rev()
            .find(|(k, _)| k == PREFIX_VAR)
            .is_some_and(|(_, v)| Path::new(v) == dir);
        if !points_here {
            return None;
        }
        let lower = root.join(key(fs, workspace, tmp));
        let session = tmp.parent()?;
        let (sessions, id) = (session.parent()?, session.file_name()?);
        let made = (|| {
            match fs::DirBuilder::new().mode(0o700).create(&lower) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            let rel = Path::new(id).join("tmp").join(DIR);
            crate::session_dir::make_from_aside(sessions, &rel)
        })();
        match made {
            Ok(()) => Some(PyCache {
                root: root.to_path_buf(),
                lower,
                dir,
            }),
            Err(e) => {
                tracing::debug!("no bytecode cache across sessions: {e}");
                None
            }
        }
    }

    /// The overlay the child mounts at the prefix.
    pub(crate) fn overlay(&self) -> sandbox_child::SessionOverlay {
        sandbox_child::SessionOverlay {
            path: self.dir.clone(),
            lower: self.lower.clone(),
        }
    }

    /// Once the program and all it started are gone: for each bytecode
    /// file the session's Python wrote (in the upper layer of `layers`,
    /// the tmpfs the child handed over; `None` when the overlay was not
    /// mounted), the source's own counterpart
    /// copied into the lower layer where it may be (see the module's
    /// documentation); then this key marked as used, and the oldest keys
    /// beyond [`MAX_KEYS`] removed. Nothing the program wrote is kept:
    /// closing `layers` frees the tmpfs. The mount point is moved aside
    /// for a later session to take (`session_dir::ASIDE`).
    pub(crate) fn end(self, fs: &FsPolicy, layers: Option<OwnedFd>) {
        let mut walk = Walk {
            fs,
            lower: &self.lower,
            seen: 0,
            copied: 0,
            canonical: HashMap::new(),
        };
        if let Some(upper) = layers.and_then(|l| open_subdir(&l, sandbox_child::LAYERS_UPPER)) {
            walk.dir(&upper, Path::new(""), 0);
        }
        if walk.copied > 0 {
            tracing::debug!(copied = walk.copied, "bytecode kept for later sessions");
        }

        // The least recently ended keys go first.
        let _ = File::open(&self.lower).and_then(|f| {
            f.set_times(fs::FileTimes::new().set_modified(std::time::SystemTime::now()))
        });
        prune(&self.root, &self.lower);
        // Empty unless no tmpfs was mounted (the program then wrote in the
        // directory itself, which goes with the TMPDIR).
        let session = self.dir.parent().and_then(Path::parent);
        if !session.is_some_and(|s| crate::session_dir::set_aside(&self.dir, s)) {
            tracing::debug!("the bytecode cache's mount point is removed with the TMPDIR");
        }
    }
}

/// The key of a session's cache: the workspace, and the trees its policy
/// lets the sandbox read, write, execute and not read, less the session's
/// own directory and what lies in the writable trees (the deny walk's
/// matches there change as files come and go, and nothing is kept from
/// those trees anyway).
fn key(fs: &FsPolicy, workspace: &Path, tmp: &Path) -> String {
    let sessions = tmp.parent().and_then(Path::parent).unwrap_or(tmp);
    let mut text = Vec::new();
    let mut add = |name: &str, paths: &mut dyn Iterator<Item = &PathBuf>| {
        text.extend_from_slice(name.as_bytes());
        for p in paths {
            text.push(0);
            text.extend_from_slice(p.as_os_str().as_bytes());
        }
        text.push(b'\n');
    };
    let own = |p: &&PathBuf| !p.starts_with(sessions);
    add("workspace", &mut std::iter::once(&workspace.to_path_buf()));
    add("read", &mut fs.read.iter().filter(own));
    add("execute", &mut fs.execute.iter().filter(own));
    add("write", &mut fs.write.iter().filter(own));
    let outside = |p: &&PathBuf| own(p) && !under(p, &fs.write);
    add("deny", &mut fs.deny.iter().filter(outside));
    for rule in fs.deny_patterns.rules() {
        text.extend_from_slice(rule.as_written_resolved().as_bytes());
        text.push(0);
    }
    crate::audit::chain::sha256_hex(&text)[..32].to_owned()
}

fn under(path: &Path, trees: &[PathBuf]) -> bool {
    trees.iter().any(|t| path.starts_with(t))
}

/// Whether the session could read `path` and could not have written it:
/// in a `read` or `execute` tree, in no writable tree, not denied.
fn trusted(fs: &FsPolicy, path: &Path) -> bool {
    (under(path, &fs.read) || under(path, &fs.execute))
        && !under(path, &fs.write)
        && !under(path, &fs.deny)
        && fs.deny_patterns.protects(path).is_none()
}

/// The walk of the session's upper layer at its end.
struct Walk<'a> {
    fs: &'a FsPolicy,
    lower: &'a Path,
    seen: usize,
    copied: usize,
    /// Whether each source directory met is its own canonical path.
    canonical: HashMap<PathBuf, bool>,
}

impl Walk<'_> {
    /// `dir` is the upper layer's directory for the source directory
    /// `/rel`; subdirectories are entered beneath it, symlinks never
    /// followed.
    fn dir(&mut self, dir: &OwnedFd, rel: &Path, depth: usize) {
        let Ok(entries) = fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
            return;
        };
        for entry in entries.flatten() {
            self.seen += 1;
            if self.seen > MAX_SEEN || self.copied >= MAX_COPIED {
                return;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            if kind.is_dir() && depth < MAX_DEPTH {
                let sub = std::ffi::CString::new(name.as_bytes()).ok();
                if let Some(sub) = sub.and_then(|n| open_subdir(dir, &n)) {
                    self.dir(&sub, &rel.join(&name), depth + 1);
                }
            } else if kind.is_file() && name.as_bytes().ends_with(b".pyc") {
                if let Err(e) = self.keep(rel, &name) {
                    tracing::debug!(rel = %rel.display(), "bytecode not kept: {e}");
                }
            }
        }
    }

    /// Copies the counterpart of `/rel/name` into the lower layer if it
    /// may be kept. `Ok` when it was, or was not to be.
    fn keep(&mut self, rel: &Path, name: &OsStr) -> io::Result<()> {
        let dir = Path::new("/").join(rel);
        // As Python's `source_from_cache`: the name up to its first dot.
        let module = name.as_bytes().split(|b| *b == b'.').next().unwrap_or(b"");
        let mut source = module.to_vec();
        source.extend_from_slice(b".py");
        let source = dir.join(OsStr::from_bytes(&source));
        let counterpart = dir.join("__pycache__").join(name);
        // `__pycache__` itself canonical too: a symlink there (the
        // person's, to a shared or denied directory) led the copy to a
        // file in no tree the session could read.
        if module.is_empty()
            || !trusted(self.fs, &source)
            || !trusted(self.fs, &counterpart)
            || !self.is_canonical(&dir)
            || !self.is_canonical(&dir.join("__pycache__"))
        {
            return Ok(());
        }
        let Some(bytes) = valid_counterpart(&counterpart, &source)? else {
            return Ok(());
        };
        let target_dir = self.lower.join(rel);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&target_dir)?;
        let target = target_dir.join(name);
        let mut temporary = name.to_os_string();
        temporary.push(format!(".sluice-{}", std::process::id()));
        let temporary = target_dir.join(temporary);
        fs::write(&temporary, &bytes)?;
        match fs::rename(&temporary, &target) {
            Ok(()) => {
                self.copied += 1;
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&temporary);
                Err(e)
            }
        }
    }

    fn is_canonical(&mut self, dir: &Path) -> bool {
        if let Some(known) = self.canonical.get(dir) {
            return *known;
        }
        let is = dir.canonicalize().is_ok_and(|c| c == dir);
        self.canonical.insert(dir.to_path_buf(), is);
        is
    }
}

/// The directory `name` in `dir`, not by a symlink.
fn open_subdir(dir: &OwnedFd, name: &std::ffi::CStr) -> Option<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    crate::sys::fs::openat(dir, name, flags, 0).ok()
}

/// The bytes of `counterpart` if Python would run it for `source` now: a
/// regular file (not a symlink) whose header names the source's time and
/// size, or a hash Python checks against the source. An unchecked hash
/// (run whatever the source says) is not kept: the cache would outlive a
/// change the person makes to that file.
fn valid_counterpart(counterpart: &Path, source: &Path) -> io::Result<Option<Vec<u8>>> {
    let Ok(src) = fs::metadata(source) else {
        return Ok(None);
    };
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(counterpart)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !src.is_file() || !meta.is_file() || meta.len() > MAX_PYC {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_PYC).read_to_end(&mut bytes)?;
    Ok(header_valid(&bytes, src.mtime(), src.size()).then_some(bytes))
}

/// Whether a `.pyc`'s header (PEP 552) is one Python checks against a
/// source of this time and size and finds valid.
fn header_valid(pyc: &[u8], mtime: i64, size: u64) -> bool {
    let word = |at: usize| {
        pyc.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    match word(4) {
        // Timestamp: the source's time and size, modulo 2^32, as Python
        // compares them.
        Some(0) => word(8) == Some(mtime as u32) && word(12) == Some(size as u32),
        // Hash-based, checked against the source at every import.
        Some(3) => pyc.len() >= 16,
        _ => false,
    }
}

/// Removes the keys beyond [`MAX_KEYS`], least recently ended first, never
/// `ours`. A session still using one reads on from what it has open, or
/// compiles.
fn prune(root: &Path, ours: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let mut keys: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if keys.len() <= MAX_KEYS {
        return;
    }
    keys.sort();
    let excess = keys.len() - MAX_KEYS;
    for (_, path) in keys.into_iter().filter(|(_, p)| p != ours).take(excess) {
        if let Err(e) = fs::remove_dir_all(&path) {
            tracing::debug!(key = %path.display(), "removing a bytecode cache: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pyc(flags: u32, a: u32, b: u32) -> Vec<u8> {
        let mut v = vec![0xa7, 0x0d, 0x0d, 0x0a];
        for w in [flags, a, b] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v.extend_from_slice(b"code");
        v
    }

    /// attack15: a source in a tree the session reads whose `__pycache__`
    /// is a symlink (the person's) into a directory the policy denies: the
    /// walk checked the path as named, and copied the denied directory's
    /// file into the cache a later session reads. Control: a real
    /// `__pycache__` there is copied. Mutation-checked: without the
    /// `__pycache__` check the denied file was copied.
    #[test]
    fn bytecode_behind_a_symlinked_pycache_is_not_copied() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let (read, denied) = (root.join("r"), root.join("denied"));
        let lib = read.join("lib");
        fs::create_dir_all(&lib).unwrap();
        fs::create_dir_all(&denied).unwrap();
        fs::write(lib.join("m.py"), "x = 1\n").unwrap();
        let src = fs::metadata(lib.join("m.py")).unwrap();
        let mut secret = pyc(0, src.mtime() as u32, src.size() as u32);
        secret.extend_from_slice(b"SECRET");
        let name = "m.cpython-311.pyc";
        fs::write(denied.join(name), &secret).unwrap();
        let fs_policy = FsPolicy {
            read: vec![read.clone()],
            deny: vec![denied.clone()],
            ..FsPolicy::default()
        };
        let upper = root.join("upper");
        let named = upper.join(lib.strip_prefix("/").unwrap());
        fs::create_dir_all(&named).unwrap();
        fs::write(named.join(name), "").unwrap();
        let kept = |lower: &Path| {
            let mut walk = Walk {
                fs: &fs_policy,
                lower,
                seen: 0,
                copied: 0,
                canonical: HashMap::new(),
            };
            walk.dir(&File::open(&upper).unwrap().into(), Path::new(""), 0);
            fs::read(lower.join(lib.strip_prefix("/").unwrap()).join(name)).ok()
        };
        std::os::unix::fs::symlink(&denied, lib.join("__pycache__")).unwrap();
        assert_eq!(kept(&root.join("lower1")), None);
        fs::remove_file(lib.join("__pycache__")).unwrap();
        fs::create_dir(lib.join("__pycache__")).unwrap();
        fs::write(lib.join("__pycache__").join(name), &secret).unwrap();
        assert_eq!(kept(&root.join("lower2")), Some(secret));
    }

    #[test]
    fn only_a_header_python_would_accept_for_the_source_is_valid() {
        assert!(header_valid(&pyc(0, 1_700_000_000, 42), 1_700_000_000, 42));
        assert!(!header_valid(&pyc(0, 1_700_000_001, 42), 1_700_000_000, 42));
        assert!(!header_valid(&pyc(0, 1_700_000_000, 43), 1_700_000_000, 42));
        // Modulo 2^32, as Python compares.
        assert!(header_valid(&pyc(0, 5, 7), (1 << 32) + 5, (1 << 32) + 7));
        assert!(header_valid(&pyc(3, 0, 0), 1, 1));
        // An unchecked hash, unknown flags, a truncated header.
        assert!(!header_valid(&pyc(1, 0, 0), 1, 1));
        assert!(!header_valid(&pyc(2, 0, 0), 1, 1));
        assert!(!header_valid(&pyc(0, 5, 7)[..12], 5, 7));
    }
}
