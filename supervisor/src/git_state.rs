//! The person's repositories after the session: what their own git, run
//! later outside, would restore from or hide.
//!
//! git trusts its object store: it checks no object's hash when it reads
//! it, and takes a pack's index, the multi-pack index, the commit graph and
//! a pack's reverse index at their word. A program that may write a
//! workspace's `.git` could put other content under a committed object's
//! name (the person's `git checkout -- f`, `git restore`, `git reset
//! --hard` then writes it back, with a clean `git diff`), or hide its edits
//! from the person's `git status` (the index's skip-worktree and
//! assume-unchanged bits, a stat cache that matches the edited file,
//! `info/exclude`, `info/sparse-checkout`, replace refs).
//!
//! So when the session ends, after the program and everything it left are
//! gone, the supervisor looks at each repository the launch's walk met
//! (and the workspace's own), at what changed during the session only (a
//! file's `ctime`, which no program sets back):
//!
//! - a loose object is inflated and hashed: one whose content is not its
//!   name is moved aside;
//! - a pack (or its index) is verified by `git index-pack --verify` (the
//!   objects' hashes and that the index is the one the pack gives): one that
//!   fails, or cannot be checked, has its index moved aside (git then reads
//!   nothing from it);
//! - the data git derives and trusts (commit graphs, multi-pack indexes,
//!   reverse indexes, bitmaps) is moved aside: git works without it and
//!   writes it again (`git commit-graph write`, `git gc`);
//! - the index's entries whose file changed during the session are
//!   checked (`index.rs` reads git's format): one git would not show
//!   (skip-worktree, assume-unchanged, or a stat cache matching a file
//!   whose content is not the entry's) is made visible again, its bits and
//!   cached time cleared and the index rewritten as git writes it, under
//!   git's own lock; while git holds the lock, the command that shows it
//!   again is said instead;
//! - a changed `info/exclude` and loose replace refs are moved aside;
//!   changed `info/sparse-checkout` patterns and replace refs in
//!   `packed-refs` are reported.
//!
//! Moved aside means renamed to `NAME.sluice-quarantine-SESSION` in the same
//! directory, which git ignores: nothing is deleted. The walk follows no
//! symlink. Each finding is said on the terminal and listed in the audit's
//! end record.

use std::ffi::{CString, OsStr};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::audit::Quarantined;
use crate::broker::safe_open;
use crate::quarantine::{lstat_at, open_path};

mod index;

/// Files changed at or after this time (seconds and nanoseconds since the
/// epoch, by their `ctime`, which no program sets back) are looked at.
#[derive(Debug, Clone, Copy)]
pub struct Since(pub i64, pub i64);

impl Since {
    /// Now, by the clock the kernel stamps files with, so that a file
    /// written after this call is never taken for older.
    pub fn now() -> Since {
        let (secs, nanos) = crate::sys::host::file_clock();
        Since(secs, nanos)
    }

    fn changed(self, st: &libc::stat) -> bool {
        (st.st_ctime, st.st_ctime_nsec) >= (self.0, self.1)
    }
}

/// Checks each repository whose `.git` (a directory, or a file naming one)
/// is in `git` (see the module's documentation). What was found.
pub fn check(git: &[PathBuf], since: Since, session: &str) -> Vec<Quarantined> {
    let mut found = Vec::new();
    let mut seen = Vec::new();
    // Worktrees share their common directory: its objects are checked once.
    let mut common_seen = Vec::new();
    for dot_git in git {
        let Some(work_tree) = dot_git.parent() else {
            continue;
        };
        let Some(git_dir) = git_dir_of(dot_git) else {
            continue;
        };
        if seen.contains(&git_dir) {
            continue;
        }
        seen.push(git_dir.clone());
        let repo = Repo {
            git_dir,
            work_tree: work_tree.to_path_buf(),
            since,
            session,
        };
        if let Err(e) = repo.check(&mut common_seen, &mut found) {
            crate::say!(
                "sluice: could not check the git repository {} after the session ({e}): \
                 run `git fsck` there before trusting it",
                dot_git.display()
            );
        }
    }
    found
}

/// The directory a `.git` names: itself, or a `gitdir:` file's target.
fn git_dir_of(dot_git: &Path) -> Option<PathBuf> {
    let meta = dot_git.symlink_metadata().ok()?;
    if meta.is_dir() {
        return Some(dot_git.to_path_buf());
    }
    if !meta.is_file() || meta.len() > 4096 {
        return None;
    }
    let text = std::fs::read_to_string(dot_git).ok()?;
    let target = text.strip_prefix("gitdir:")?.trim();
    Some(dot_git.parent()?.join(target))
}

struct Repo<'a> {
    git_dir: PathBuf,
    work_tree: PathBuf,
    since: Since,
    session: &'a str,
}

impl Repo<'_> {
    fn check(
        &self,
        common_seen: &mut Vec<PathBuf>,
        found: &mut Vec<Quarantined>,
    ) -> io::Result<()> {
        let dir = open_path(libc::AT_FDCWD, self.git_dir.as_os_str(), true)?;
        // A worktree's or submodule's directory may share its objects.
        let common = match read_small(&dir, OsStr::new("commondir")) {
            Ok(Some(text)) => {
                let rel = String::from_utf8_lossy(&text).trim().to_owned();
                let path = self.git_dir.join(rel);
                Some((open_path(libc::AT_FDCWD, path.as_os_str(), true)?, path))
            }
            _ => None,
        };
        let (common_dir, common_path) = match &common {
            Some((fd, path)) => (fd, path.as_path()),
            None => (&dir, self.git_dir.as_path()),
        };
        let sha256 = read_small(common_dir, OsStr::new("config"))
            .ok()
            .flatten()
            .map(|c| {
                let c = String::from_utf8_lossy(&c).to_ascii_lowercase();
                c.lines().any(|l| {
                    let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
                    l == "objectformat=sha256"
                })
            })
            .unwrap_or(false);
        self.index(&dir, sha256, found);
        // Sparse-checkout patterns are a worktree's own, excludes are read
        // from the common directory.
        self.changed_patterns(&dir, &self.git_dir, "info/sparse-checkout", found);
        if common_seen.iter().any(|c| c == common_path) {
            return Ok(());
        }
        common_seen.push(common_path.to_path_buf());
        if let Some(objects) = open_sub(common_dir, "objects") {
            self.objects(
                common_dir,
                &objects,
                &common_path.join("objects"),
                sha256,
                found,
            );
        }
        self.changed_patterns(common_dir, common_path, "info/exclude", found);
        self.replace_refs(common_dir, common_path, found);
        Ok(())
    }

    /// Loose objects, packs and what git derives from them.
    fn objects(
        &self,
        common: &OwnedFd,
        objects: &OwnedFd,
        path: &Path,
        sha256: bool,
        found: &mut Vec<Quarantined>,
    ) {
        // Every fan-out directory is listed: one whose entries are unchanged
        // may hold an object rewritten in place (a file's write changes its
        // own time, not its directory's).
        for (name, _) in entries(objects) {
            let is_fanout = name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
            if !is_fanout {
                continue;
            }
            let Some(sub) = open_sub(objects, &name) else {
                continue;
            };
            for (object, st) in entries(&sub) {
                let hex = format!("{name}{object}");
                let hashed =
                    matches!(hex.len(), 40 | 64) && hex.bytes().all(|b| b.is_ascii_hexdigit());
                if !hashed || !self.since.changed(&st) {
                    continue;
                }
                let ok = read_file(&sub, OsStr::new(&object), MAX_LOOSE)
                    .is_ok_and(|bytes| loose_object_is(&bytes, &hex));
                if !ok {
                    let why = "a git object whose content is not the one its name promises";
                    self.move_aside(&sub, &object, &path.join(&name).join(&object), why, found);
                }
            }
        }
        // The commit graph: a commit's tree and parents read from it.
        if let Some(info) = open_sub(objects, "info") {
            let info_path = path.join("info");
            let mut changed: Vec<(OwnedFd, PathBuf, String)> = Vec::new();
            for (name, st) in entries(&info) {
                if self.since.changed(&st) && name.starts_with("commit-graph") && !aside(&name) {
                    changed.extend(open_sub(objects, "info").map(|d| (d, info_path.clone(), name)));
                }
            }
            if let Some(graphs) = open_sub(&info, "commit-graphs") {
                for (name, st) in entries(&graphs) {
                    if self.since.changed(&st) && !aside(&name) {
                        let dir = info_path.join("commit-graphs");
                        changed.extend(open_sub(&info, "commit-graphs").map(|d| (d, dir, name)));
                    }
                }
            }
            if !changed.is_empty() {
                if let Err(why) = git_verifies(common, &["commit-graph", "verify"]) {
                    for (dir, dir_path, name) in changed {
                        let why = format!("a commit graph that does not verify ({why})");
                        self.move_aside(&dir, &name, &dir_path.join(&name), &why, found);
                    }
                }
            }
        }
        let Some(pack) = open_sub(objects, "pack") else {
            return;
        };
        let pack_path = path.join("pack");
        let listed = entries(&pack);
        let changed = |name: &str| {
            listed
                .iter()
                .any(|(n, st)| n == name && self.since.changed(st))
        };
        let midx: Vec<&String> = (listed.iter())
            .filter(|(n, st)| {
                n.starts_with("multi-pack-index") && self.since.changed(st) && !aside(n)
            })
            .map(|(n, _)| n)
            .collect();
        if !midx.is_empty() {
            if let Err(why) = git_verifies(common, &["multi-pack-index", "verify"]) {
                for name in midx {
                    let why = format!("a multi-pack index that does not verify ({why})");
                    self.move_aside(&pack, name, &pack_path.join(name), &why, found);
                }
            }
        }
        for (name, _) in &listed {
            let Some(stem) = name.strip_suffix(".idx").filter(|s| s.starts_with("pack-")) else {
                continue;
            };
            let derived = ["pack", "rev", "bitmap"].map(|ext| format!("{stem}.{ext}"));
            if !changed(name) && !derived.iter().any(|d| changed(d)) {
                continue;
            }
            let rev = listed.iter().any(|(n, _)| *n == derived[1]);
            let size = (listed.iter())
                .find(|(n, _)| *n == derived[0])
                .map_or(0, |(_, st)| st.st_size);
            if size > LARGE_PACK {
                crate::say!(
                    "sluice: verifying the git pack the session wrote, {} ({} MB)...",
                    pack_path.join(&derived[0]).display(),
                    size >> 20
                );
            }
            if let Err(why) = verify_pack(&pack, &derived[0], sha256, rev) {
                let why = format!("a git pack that does not verify ({why}): its index");
                self.move_aside(&pack, name, &pack_path.join(name), &why, found);
                continue;
            }
            // A bitmap git reads without checking; it is written again by
            // the next `git repack -b`.
            if changed(&derived[2]) {
                let why = "a pack's reachability bitmap, which git reads unchecked";
                self.move_aside(&pack, &derived[2], &pack_path.join(&derived[2]), why, found);
            }
        }
    }

    /// Index entries whose file changed during the session and that the
    /// person's `git status` would not show: their hiding bits cleared and
    /// stat cache emptied, so git looks at the file again.
    fn index(&self, dir: &OwnedFd, sha256: bool, found: &mut Vec<Quarantined>) {
        let Ok(st) = lstat_at(dir, OsStr::new("index")) else {
            return;
        };
        let index_changed = self.since.changed(&st);
        let Ok(mut bytes) = read_file(dir, OsStr::new("index"), MAX_INDEX) else {
            return;
        };
        let hash_len = if sha256 { 32 } else { 20 };
        let entries = match index::entries(&bytes, hash_len) {
            Ok(entries) => entries,
            Err(why) => {
                crate::say!(
                    "sluice: could not read the git index {} after the session ({why}): \
                     run `git update-index --really-refresh` there before reviewing with `git status`",
                    self.git_dir.join("index").display()
                );
                return;
            }
        };
        let mut hidden = Vec::new();
        for e in &entries {
            let flagged = e.skip_worktree || e.assume_unchanged;
            if !flagged && !index_changed {
                continue;
            }
            let name = Path::new(OsStr::from_bytes(&e.name));
            if !name.components().all(|c| matches!(c, Component::Normal(_))) {
                continue;
            }
            let path = self.work_tree.join(name);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if (meta.ctime(), meta.ctime_nsec()) < (self.since.0, self.since.1) {
                continue;
            }
            let stale_stat = !flagged
                && meta.is_file()
                && e.size == meta.size() as u32
                && e.mtime == (meta.mtime() as u32, meta.mtime_nsec() as u32)
                && !blob_is(&path, &e.oid);
            if flagged || stale_stat {
                index::make_visible(&mut bytes, e);
                hidden.push((path, e));
            }
        }
        if hidden.is_empty() {
            return;
        }
        let written = index::seal(&mut bytes, hash_len)
            .and_then(|()| replace_locked(dir, "index", &bytes, &st));
        for (path, e) in hidden {
            let how = if e.skip_worktree {
                "the index's skip-worktree bit"
            } else if e.assume_unchanged {
                "the index's assume-unchanged bit"
            } else {
                "an index stat cache matching the changed file"
            };
            let name = String::from_utf8_lossy(&e.name);
            match &written {
                Ok(()) => crate::say!(
                    "sluice: the program changed {} and hid it from the person's `git status` \
                     and `git diff` ({how}); undone, `git status` shows it",
                    path.display()
                ),
                Err(err) => crate::say!(
                    "sluice: the program changed {} and hid it from the person's `git status` \
                     and `git diff` ({how}), and the index could not be rewritten ({err}): run \
                     `git update-index --no-skip-worktree --no-assume-unchanged --really-refresh \
                     -- {name}` in {}",
                    path.display(),
                    self.work_tree.display()
                ),
            }
            found.push(Quarantined {
                path,
                moved_to: None,
                why: Some(format!(
                    "changed and hidden from git status by {how}{}",
                    if written.is_ok() { "; undone" } else { "" }
                )),
            });
        }
    }

    /// `info/exclude` or `info/sparse-checkout` changed during the session:
    /// what it names, said. The exclude file, which hides files from
    /// `git status` outright, is moved aside (the person's own lines with
    /// it, to take back); the sparse-checkout patterns hide nothing from
    /// `git status` until the person's next checkout applies them.
    fn changed_patterns(
        &self,
        dir: &OwnedFd,
        base: &Path,
        name: &str,
        found: &mut Vec<Quarantined>,
    ) {
        let (sub, file) = name.split_once('/').expect("info/NAME");
        let Some(info) = open_sub(dir, sub) else {
            return;
        };
        match lstat_at(&info, OsStr::new(file)) {
            Ok(st) if self.since.changed(&st) => {}
            _ => return,
        }
        let text = read_file(&info, OsStr::new(file), 1 << 20).unwrap_or_default();
        let patterns: Vec<String> = String::from_utf8_lossy(&text)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        if patterns.is_empty() {
            return;
        }
        let path = base.join(name);
        if file == "exclude" {
            let why = format!(
                "an exclude file hiding from the person's `git status` what it names ({})",
                patterns.join(", ")
            );
            self.move_aside(&info, file, &path, &why, found);
            return;
        }
        crate::say!(
            "sluice: the program changed {}: the person's next checkout hides what it does not \
             name from the work tree ({}); check it with `git sparse-checkout list`",
            path.display(),
            patterns.join(", ")
        );
        found.push(Quarantined {
            path,
            moved_to: None,
            why: Some("changed sparse-checkout patterns".into()),
        });
    }

    /// Replace refs made during the session (git shows one object in
    /// another's place): a loose one is moved aside, one in `packed-refs`
    /// is said (`git replace -d`).
    fn replace_refs(&self, common: &OwnedFd, path: &Path, found: &mut Vec<Quarantined>) {
        if let Some(replace) = open_sub(common, "refs").and_then(|r| open_sub(&r, "replace")) {
            let dir = path.join("refs/replace");
            for (name, st) in entries(&replace) {
                if self.since.changed(&st) && !aside(&name) {
                    let why = "a replace ref, by which git shows another object in one's place";
                    self.move_aside(&replace, &name, &dir.join(&name), why, found);
                }
            }
        }
        match lstat_at(common, OsStr::new("packed-refs")) {
            Ok(st) if self.since.changed(&st) => {}
            _ => return,
        }
        let text = read_file(common, OsStr::new("packed-refs"), MAX_INDEX).unwrap_or_default();
        for line in String::from_utf8_lossy(&text).lines() {
            let Some((_, name)) = line.split_once(" refs/replace/") else {
                continue;
            };
            crate::say!(
                "sluice: the program made the replace ref refs/replace/{name} in {}: git shows \
                 another object in that one's place (`git replace -d {name}` there removes it)",
                path.display()
            );
            found.push(Quarantined {
                path: path.join("packed-refs"),
                moved_to: None,
                why: Some(format!("a replace ref made: refs/replace/{name}")),
            });
        }
    }

    fn move_aside(
        &self,
        dir: &OwnedFd,
        name: &str,
        path: &Path,
        why: &str,
        found: &mut Vec<Quarantined>,
    ) {
        let aside = format!("{name}.sluice-quarantine-{}", self.session);
        let moved = safe_open::rename_noreplace(dir.as_raw_fd(), name.as_bytes(), aside.as_bytes());
        match &moved {
            Ok(()) => crate::say!(
                "sluice: the program wrote {why}, {}; moved to {} (nothing deleted)",
                path.display(),
                path.with_file_name(&aside).display()
            ),
            Err(e) => crate::say!(
                "sluice: the program wrote {why}, {}, and it could not be moved aside ({e}): \
                 run `git fsck` there before trusting the repository",
                path.display()
            ),
        }
        found.push(Quarantined {
            path: path.to_path_buf(),
            moved_to: moved.ok().map(|()| path.with_file_name(aside)),
            why: Some(why.to_owned()),
        });
    }
}

/// Puts `bytes` in place of `name` in `dir` as git does (`NAME.lock`,
/// made exclusively, renamed over it): never while git holds the lock.
/// The file keeps the owner and mode `was` gives.
fn replace_locked(dir: &OwnedFd, name: &str, bytes: &[u8], was: &libc::stat) -> io::Result<()> {
    let lock = CString::new(format!("{name}.lock")).map_err(io::Error::other)?;
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let file = {
        let dir =
            crate::sys::fs::reopen(dir, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)?;
        (
            crate::sys::fs::openat(&dir, &lock, flags, was.st_mode & 0o777)?,
            dir,
        )
    };
    let (fd, dir) = file;
    let done = (|| {
        nix::unistd::fchown(&fd, Some(was.st_uid.into()), Some(was.st_gid.into()))?;
        let mut out = std::fs::File::from(fd);
        std::io::Write::write_all(&mut out, bytes)?;
        out.sync_all()?;
        nix::fcntl::renameat(&dir, lock.as_c_str(), &dir, name)?;
        Ok(())
    })();
    if done.is_err() {
        let _ = nix::unistd::unlinkat(
            &dir,
            lock.as_c_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    done
}

/// The largest loose object inflated (git writes a larger file into a pack,
/// `core.bigFileThreshold`); a larger one is not verified, so moved aside.
const MAX_LOOSE: u64 = 1 << 30;
/// A pack larger than this is said before it is verified (seconds).
const LARGE_PACK: i64 = 64 << 20;
/// The largest index or `packed-refs` read.
const MAX_INDEX: u64 = 1 << 30;

/// Whether the zlib stream `bytes` inflates to an object whose hash is `hex`.
fn loose_object_is(bytes: &[u8], hex: &str) -> bool {
    match miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(bytes, MAX_LOOSE as usize) {
        Ok(object) => hash_hex(&object, hex.len() == 64) == hex,
        Err(_) => false,
    }
}

/// Whether the file at `path` is, as a blob, the object `oid`.
fn blob_is(path: &Path, oid: &[u8]) -> bool {
    let Ok(content) = std::fs::read(path) else {
        return false;
    };
    let mut object = format!("blob {}\0", content.len()).into_bytes();
    object.extend_from_slice(&content);
    let hex: String = oid.iter().map(|b| format!("{b:02x}")).collect();
    hash_hex(&object, oid.len() == 32) == hex
}

fn hash_hex(bytes: &[u8], sha256: bool) -> String {
    let digest: Vec<u8> = if sha256 {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).to_vec()
    } else {
        use sha1::Digest;
        sha1::Sha1::digest(bytes).to_vec()
    };
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A path to `name` in `dir` (the supervisor's descriptor) for a git it
/// runs.
fn for_git(dir: &OwnedFd, name: &str) -> String {
    format!("/proc/{}/fd/{}/{name}", std::process::id(), dir.as_raw_fd())
}

/// `git index-pack --verify` of the pack `name` in `dir`: every object's
/// hash, and that the index (and reverse index, where `rev`) are the ones
/// the pack gives.
fn verify_pack(dir: &OwnedFd, name: &str, sha256: bool, rev: bool) -> Result<(), String> {
    let format = format!("--object-format={}", if sha256 { "sha256" } else { "sha1" });
    let mut args = vec!["index-pack", "--verify", &format];
    if rev {
        args.push("--rev-index");
    }
    // index-pack takes no `--`; the path starts with `/`.
    let path = for_git(dir, name);
    args.push(&path);
    run_git(None, &args)
}

/// `git ARGS` (a `verify` command) on the repository whose common
/// directory is `common`.
fn git_verifies(common: &OwnedFd, args: &[&str]) -> Result<(), String> {
    run_git(Some(&for_git(common, ".")), args)
}

/// Runs the person's `git` with none of their configuration but the
/// repository's (checked by the guard when written), its output kept to say
/// why it failed.
fn run_git(git_dir: Option<&str>, args: &[&str]) -> Result<(), String> {
    let mut git = std::process::Command::new("git");
    if let Some(dir) = git_dir {
        git.arg(format!("--git-dir={dir}"));
    } else {
        git.env_remove("GIT_DIR");
    }
    let out = git
        .args(args)
        .current_dir("/")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .env_remove("GIT_WORK_TREE")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| format!("git could not be run to check it: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(err.lines().last().unwrap_or("git failed").trim().to_owned())
}

/// Whether `name` is one this check moved aside before.
fn aside(name: &str) -> bool {
    name.contains(".sluice-quarantine-")
}

/// The entries of a directory (`.` and `..` left out), each with its
/// `lstat`; names that are not UTF-8 are left out (git makes none here).
fn entries(dir: &OwnedFd) -> Vec<(String, libc::stat)> {
    let Ok(listing) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
        return Vec::new();
    };
    listing
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| {
            let st = lstat_at(dir, OsStr::new(&name)).ok()?;
            Some((name, st))
        })
        .collect()
}

fn open_sub(dir: &OwnedFd, name: &str) -> Option<OwnedFd> {
    open_path(dir.as_raw_fd(), OsStr::new(name), false).ok()
}

/// A regular file's content, read without following a symlink or blocking
/// on a FIFO; more than `max` bytes is an error.
fn read_file(dir: &OwnedFd, name: &OsStr, max: u64) -> io::Result<Vec<u8>> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    let fd = safe_open::openat2(dir.as_raw_fd(), name.as_bytes(), flags, 0, resolve)?;
    let st = crate::sys::fs::fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size as u64 > max {
        return Err(io::Error::other("not a regular file of a size git writes"));
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd).take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A small file's content, `None` if there is none.
fn read_small(dir: &OwnedFd, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
    match read_file(dir, name, 1 << 20) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// The index git writes, in versions 3 (an extended flag) and 4
    /// (prefix-compressed names), read back with each entry's bits; then
    /// made visible and sealed, which git reads as its own.
    #[test]
    fn the_index_is_read_as_git_writes_it_and_rewritten_as_git_reads_it() {
        let dir =
            std::env::temp_dir().join(format!("sluice-unit-git-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        git(&dir, &["init", "-q"]);
        for name in ["a", "sub/b", "sub/c"] {
            std::fs::write(dir.join(name), name).unwrap();
        }
        git(&dir, &["add", "."]);
        git(
            &dir,
            &[
                "-c",
                "user.name=p",
                "-c",
                "user.email=p@e",
                "commit",
                "-qm",
                "x",
            ],
        );
        git(&dir, &["update-index", "--skip-worktree", "sub/b"]);
        git(&dir, &["update-index", "--assume-unchanged", "sub/c"]);
        for version in ["3", "4"] {
            git(&dir, &["update-index", "--index-version", version]);
            let mut bytes = std::fs::read(dir.join(".git/index")).unwrap();
            let entries = index::entries(&bytes, 20).unwrap();
            let seen: Vec<(String, bool, bool)> = (entries.iter())
                .map(|e| {
                    let name = String::from_utf8(e.name.clone()).unwrap();
                    (name, e.skip_worktree, e.assume_unchanged)
                })
                .collect();
            let want = [
                ("a", false, false),
                ("sub/b", true, false),
                ("sub/c", false, true),
            ];
            assert_eq!(
                seen,
                want.map(|(n, s, a)| (n.to_owned(), s, a)),
                "version {version}"
            );
            assert!(loose_object_is(
                &std::fs::read(
                    dir.join(".git/objects")
                        .join(&hex(&entries[0].oid)[..2])
                        .join(&hex(&entries[0].oid)[2..])
                )
                .unwrap(),
                &hex(&entries[0].oid)
            ));
            std::fs::write(dir.join("sub/b"), "changed b").unwrap();
            std::fs::write(dir.join("sub/c"), "changed c").unwrap();
            let before = git(&dir, &["status", "--porcelain"]);
            assert_eq!(before, "", "hidden before");
            for e in &entries {
                index::make_visible(&mut bytes, e);
            }
            index::seal(&mut bytes, 20).unwrap();
            std::fs::write(dir.join(".git/index"), &bytes).unwrap();
            let after = git(&dir, &["status", "--porcelain"]);
            assert_eq!(after, " M sub/b\n M sub/c\n", "version {version}");
            git(&dir, &["checkout", "--", "."]);
            git(&dir, &["update-index", "--skip-worktree", "sub/b"]);
            git(&dir, &["update-index", "--assume-unchanged", "sub/c"]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn hex(oid: &[u8]) -> String {
        oid.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_loose_object_is_its_name_and_nothing_else() {
        let object = b"blob 3\0abc";
        let hash = hash_hex(object, false);
        let stored = miniz_oxide::deflate::compress_to_vec_zlib(object, 6);
        assert!(loose_object_is(&stored, &hash));
        let other = miniz_oxide::deflate::compress_to_vec_zlib(b"blob 3\0abd", 6);
        assert!(!loose_object_is(&other, &hash));
        assert!(!loose_object_is(b"not zlib", &hash));
    }
}
