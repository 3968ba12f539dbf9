//! What the deny walk learnt at earlier launches, per directory, so an
//! unchanged directory is not listed again (Linux).
//!
//! A directory's listing is kept with its stamp: device, inode, ctime and
//! mtime, read by `fstat` on the open directory *before* it was listed. A
//! later launch `statx`es the directory by path (without opening it) and
//! uses the listing only if the stamp is the same. Every change of a
//! directory's entries (a file created, removed, renamed in or out, a hard
//! link made) sets its ctime to the current time, and nobody but the clock
//! sets a ctime: `utimensat` sets the mtime it is given and the ctime to
//! now. A listing is kept only when it is *settled*: its ctime is more than
//! [`SETTLE`] older than the walk's start, so a change in the same clock
//! tick as the stamp (a coarse timestamp would not tell them apart) cannot
//! go unseen; a fresher directory is listed at every launch until it
//! settles. Only file systems whose ctime the local kernel keeps are
//! trusted (ext2/3/4, xfs, btrfs, tmpfs); elsewhere (a network or FUSE
//! file system, overlayfs, whose lower layers change underneath) every
//! directory is listed, as without a cache.
//!
//! One file per tree and rule set, in a directory of the person's sluice
//! state that every sandbox is denied; each file names its tree and rules
//! in full and ends with a checksum: anything else (truncated, corrupted,
//! another's, a symlink, writable by others) is ignored and replaced.

use std::collections::HashMap;
use std::ffi::CStr;
use std::hash::Hasher;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::Listing;

/// How much older than the walk a directory's ctime must be for its
/// listing to be kept (far more than a clock tick).
pub const SETTLE: i64 = 2;

/// A cache file larger than this is not read (nor written).
const MAX_FILE: u64 = 256 << 20;

const MAGIC: &[u8] = b"sluice deny-walk cache 1\n";

/// What identifies a directory's state without listing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    ctime: (i64, u32),
    mtime: (i64, u32),
}

/// The cache of one tree for one rule set, while it is walked.
pub struct Cache {
    /// `<dir>/<hash of the key>`.
    file: PathBuf,
    key: Vec<u8>,
    /// Listings read from the file, by path relative to the tree.
    old: HashMap<Vec<u8>, (Stamp, Listing)>,
    /// Listings of this walk, to be written.
    new: HashMap<Vec<u8>, (Stamp, Listing)>,
    /// Whether `new` differs from `old`.
    changed: bool,
    /// A stamp whose ctime is before this (seconds, nanoseconds) is settled.
    settled_before: (i64, u32),
    /// File systems seen, by device: whether their ctime is trusted.
    devices: Vec<(u64, bool)>,
}

impl Cache {
    /// The cache in `dir` for `tree` walked with the rules `rules` (as
    /// resolved, in order); empty if there is none or it is not sound.
    pub fn open(dir: &Path, tree: &Path, rules: &str) -> Option<Cache> {
        let mut key = b"tree ".to_vec();
        key.extend_from_slice(tree.as_os_str().as_bytes());
        key.extend_from_slice(b"\0rules ");
        key.extend_from_slice(rules.as_bytes());
        key.push(0);
        let name = format!("{:016x}", checksum(&key));
        let now = now();
        let mut cache = Cache {
            file: dir.join(name),
            key,
            old: HashMap::new(),
            new: HashMap::new(),
            changed: false,
            settled_before: (now.0 - SETTLE, now.1),
            devices: Vec::new(),
        };
        if let Some(old) = read_file(&cache.file).and_then(|text| parse(&text, &cache.key)) {
            cache.old = old;
        }
        Some(cache)
    }

    /// Whether a listing of the directory at `rel` is kept (worth a `statx`).
    pub fn knows(&self, rel: &[u8]) -> bool {
        self.old.contains_key(rel)
    }

    /// The listing of the directory at `path` (the tree's own path is its
    /// first `tree_len` bytes) if its stamp `now` (by `statx`) is the one
    /// it was listed with; it is kept for the next launch.
    pub fn get(&mut self, path: &[u8], tree_len: usize, now: &Stamp) -> Option<Listing> {
        let rel = &path[tree_len..];
        let (stamp, _) = self.old.get(rel)?;
        if stamp != now || !self.trusted(now.dev, || statfs_type(path)) {
            return None;
        }
        let (stamp, listing) = self.old.remove(rel)?;
        self.new.insert(rel.to_vec(), (stamp, listing.clone()));
        Some(listing)
    }

    /// Records the listing of the directory at `rel`, made after its stamp
    /// was read from `dir`: kept if settled on a trusted file system.
    pub fn put(&mut self, rel: &[u8], stamp: Option<Stamp>, dir: &OwnedFd, listing: &Listing) {
        let had = self.old.remove(rel).is_some();
        let keep = stamp
            .filter(|s| s.ctime < self.settled_before && self.trusted(s.dev, || fstatfs_type(dir)));
        match keep {
            Some(stamp) => {
                self.new.insert(rel.to_vec(), (stamp, listing.clone()));
                self.changed = true;
            }
            None => self.changed |= had,
        }
    }

    /// Writes the listings of this walk if they differ from what was read
    /// (a directory no longer walked is dropped). Errors are the caller's
    /// to report; the cache is only ever a shortcut.
    pub fn save(self) -> io::Result<()> {
        if !self.changed && self.old.is_empty() {
            return Ok(());
        }
        let text = serialize(&self.key, &self.new);
        if text.len() as u64 > MAX_FILE {
            return Ok(());
        }
        let dir = self.file.parent().unwrap_or(Path::new("/"));
        let temp = dir.join(format!(
            ".{}.{}",
            self.file.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&temp);
        let write = || -> io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&temp)?;
            file.write_all(&text)?;
            std::fs::rename(&temp, &self.file)
        };
        let result = write();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    fn trusted(&mut self, dev: u64, fs_type: impl FnOnce() -> Option<u32>) -> bool {
        if let Some((_, ok)) = self.devices.iter().find(|(d, _)| *d == dev) {
            return *ok;
        }
        let ok = fs_type().is_some_and(trusted_type);
        self.devices.push((dev, ok));
        ok
    }
}

/// File systems whose directories' ctime only the local kernel sets.
fn trusted_type(fs_type: u32) -> bool {
    const EXT: u32 = 0xEF53;
    const XFS: u32 = 0x5846_5342;
    const BTRFS: u32 = 0x9123_683E;
    const TMPFS: u32 = 0x0102_1994;
    matches!(fs_type, EXT | XFS | BTRFS | TMPFS)
}

#[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
fn statfs_type(path: &[u8]) -> Option<u32> {
    let path = std::ffi::CString::new(path).ok()?;
    // SAFETY: plain data; all zeroes is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` a valid out-pointer.
    let rc = unsafe { libc::statfs(path.as_ptr(), &mut st) };
    (rc == 0).then_some(st.f_type as u32)
}

#[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
fn fstatfs_type(dir: &OwnedFd) -> Option<u32> {
    // SAFETY: plain data; all zeroes is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is open and `st` a valid out-pointer.
    let rc = unsafe { libc::fstatfs(dir.as_raw_fd(), &mut st) };
    (rc == 0).then_some(st.f_type as u32)
}

/// The stamp of `name` beneath `at` (or of `at` itself with an empty name
/// and `AT_EMPTY_PATH`), not following a symlink; `Ok(None)` if it is not
/// a directory or the file system does not give every part of the stamp.
pub fn stamp(at: libc::c_int, name: &CStr, flags: libc::c_int) -> io::Result<Option<Stamp>> {
    // SAFETY: plain data; all zeroes is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let want = libc::STATX_TYPE | libc::STATX_INO | libc::STATX_CTIME | libc::STATX_MTIME;
    // SAFETY: `name` is NUL-terminated, `at` AT_FDCWD or an open
    // descriptor, and `stx` a valid out-pointer.
    let rc = unsafe {
        libc::statx(
            at,
            name.as_ptr(),
            flags | libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT,
            want,
            &mut stx,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let is_dir = u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFDIR;
    if stx.stx_mask & want != want || !is_dir {
        return Ok(None);
    }
    Ok(Some(Stamp {
        dev: (u64::from(stx.stx_dev_major) << 32) | u64::from(stx.stx_dev_minor),
        ino: stx.stx_ino,
        ctime: (stx.stx_ctime.tv_sec, stx.stx_ctime.tv_nsec),
        mtime: (stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec),
    }))
}

/// The stamp of the open directory `dir`, if its file system gives one.
pub fn stamp_of(dir: &OwnedFd) -> Option<Stamp> {
    stamp(dir.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
        .ok()
        .flatten()
}

/// The wall clock, the one file times are taken from.
fn now() -> (i64, u32) {
    // SAFETY: plain data; all zeroes is a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec, ts.tv_nsec as u32)
}

/// The file's bytes, if it is a regular file of ours that nobody else may
/// write, no larger than [`MAX_FILE`].
fn read_file(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let us = unsafe { libc::geteuid() };
    if !meta.is_file() || meta.uid() != us || meta.mode() & 0o022 != 0 || meta.len() > MAX_FILE {
        return None;
    }
    let mut text = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut text).ok()?;
    Some(text)
}

fn checksum(bytes: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// The file: magic, key, then per directory its path, stamp and listing;
/// a checksum of all that at the end. Numbers little-endian.
fn serialize(key: &[u8], dirs: &HashMap<Vec<u8>, (Stamp, Listing)>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    bytes(&mut out, key);
    out.extend_from_slice(&(dirs.len() as u64).to_le_bytes());
    for (rel, (s, l)) in dirs {
        bytes(&mut out, rel);
        for n in [s.dev, s.ino] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for (sec, nsec) in [s.ctime, s.mtime] {
            out.extend_from_slice(&sec.to_le_bytes());
            out.extend_from_slice(&nsec.to_le_bytes());
        }
        out.extend_from_slice(&l.entries.to_le_bytes());
        out.push(u8::from(l.git));
        bytes(&mut out, &l.subdirs);
        bytes(&mut out, &l.matches);
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// [`serialize`]'s output back, if whole, intact and for `key`.
fn parse(text: &[u8], key: &[u8]) -> Option<HashMap<Vec<u8>, (Stamp, Listing)>> {
    let (body, sum) = text.split_at_checked(text.len().checked_sub(8)?)?;
    if checksum(body).to_le_bytes() != sum {
        return None;
    }
    let mut r = Reader(body.strip_prefix(MAGIC)?);
    if r.bytes()? != key {
        return None;
    }
    let count = r.u64()?;
    let mut dirs = HashMap::new();
    for _ in 0..count {
        let rel = r.bytes()?.to_vec();
        let stamp = Stamp {
            dev: r.u64()?,
            ino: r.u64()?,
            ctime: (r.u64()? as i64, r.u32()?),
            mtime: (r.u64()? as i64, r.u32()?),
        };
        let entries = r.u32()?;
        let git = r.take(1)?[0] != 0;
        let subdirs = r.bytes()?.to_vec();
        let matches = r.bytes()?.to_vec();
        let terminated = |b: &[u8]| b.is_empty() || b.ends_with(&[0]);
        if !terminated(&subdirs) || !terminated(&matches) {
            return None;
        }
        let listing = Listing {
            entries,
            subdirs,
            matches,
            git,
        };
        dirs.insert(rel, (stamp, listing));
    }
    r.0.is_empty().then_some(dirs)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A cache file with every directory's matches left out.
    pub fn without_matches(text: &[u8]) -> Vec<u8> {
        let key = Reader(&text[MAGIC.len()..]).bytes().unwrap().to_vec();
        let mut dirs = parse(text, &key).unwrap();
        for (_, listing) in dirs.values_mut() {
            listing.matches.clear();
        }
        serialize(&key, &dirs)
    }

    fn sample() -> HashMap<Vec<u8>, (Stamp, Listing)> {
        let stamp = Stamp {
            dev: 7,
            ino: 42,
            ctime: (1_700_000_000, 5),
            mtime: (1_600_000_000, 6),
        };
        let listing = Listing {
            entries: 3,
            subdirs: b"a\0b\0".to_vec(),
            matches: b"\x08.env\0".to_vec(),
            git: true,
        };
        HashMap::from([(b"x/y".to_vec(), (stamp, listing))])
    }

    #[test]
    fn a_file_reads_back_only_whole_intact_and_for_its_key() {
        let dirs = sample();
        let text = serialize(b"k", &dirs);
        assert_eq!(parse(&text, b"k"), Some(dirs));
        assert_eq!(parse(&text, b"other"), None);
        for cut in 0..text.len() {
            assert_eq!(parse(&text[..cut], b"k"), None, "cut at {cut}");
        }
        for at in 0..text.len() {
            let mut bad = text.clone();
            bad[at] ^= 0x10;
            assert_eq!(parse(&bad, b"k"), None, "byte {at} flipped");
        }
    }
}
