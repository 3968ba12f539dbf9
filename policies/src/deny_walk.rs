//! `[filesystem] deny` patterns made concrete at launch: the trees they
//! apply to are walked once and every match is added to `deny`, so the
//! sandbox's usual deny-within-allow mounts hide each one (see
//! `sandbox-child`'s `mounts.rs`), and every way of reaching the file
//! meets the kernel's placeholder.
//!
//! The walk lists each directory with `getdents64` into one buffer and
//! reads the entry's type from `d_type` (a `stat` only where the file
//! system does not say), never follows a symlink on the way, and does not
//! descend into a match (the mount covers everything beneath it). A
//! symlink that matches is denied where it leads, if that exists.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::model::FsPolicy;
use crate::Protect;

#[cfg(target_os = "linux")]
mod cache;

/// What the walk needs of one directory's entries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Entries, `.` and `..` left out.
    pub entries: u32,
    /// The subdirectories to walk (matching ones left out), each name
    /// NUL-terminated.
    pub subdirs: Vec<u8>,
    /// The matching entries: each its `d_type` byte, its name, a NUL.
    pub matches: Vec<u8>,
    /// Whether it holds a `.git` (a directory or a file).
    pub git: bool,
}

/// A walk that lists more entries than this is refused: the launch would
/// take too long. Narrow the pattern to a root (`$WORKSPACE/src/**/.env`).
pub const MAX_ENTRIES: usize = 2_000_000;
/// More matches than this are refused: each is a mount.
pub const MAX_MATCHES: usize = 10_000;

/// More git repositories than this met by a walk are refused: the launch
/// reads each one's `core.hooksPath`.
pub const MAX_REPOSITORIES: usize = 1_000;

/// What a walk did, for `--verbose` and the benchmark, and the git
/// repositories it met.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WalkStats {
    /// Directory entries looked at.
    pub entries: usize,
    /// Paths added to `deny`.
    pub matches: usize,
    /// Every `.git` (a directory, or a file naming one: a submodule's or a
    /// worktree's) the walk met, so the launch can read where each
    /// repository runs its hooks from (`core.hooksPath`).
    pub git: Vec<PathBuf>,
    /// Directories listed, and those whose listing came from the cache of
    /// earlier walks (unchanged since).
    pub listed: usize,
    pub cached: usize,
    /// Why the cache could not be saved (the walk itself succeeded).
    pub cache_error: Option<String>,
    /// What the `protect` list protects in the writable trees, found by
    /// the same walk ([`FsPolicy::existing_protected`]'s answer); `None`
    /// where the walk did not look (no `**/` deny pattern, so no writable
    /// tree walked whole, or no `protect` list).
    pub protected: Option<Vec<PathBuf>>,
}

impl FsPolicy {
    /// Walks the trees the `deny` patterns apply to and adds every match
    /// to [`FsPolicy::deny`]. A pattern with a root (`$WORKSPACE/**/.env`,
    /// `/data/**/*.pem`) applies beneath its root, where the policy lets
    /// the program reach; a pattern that starts with `**/` applies in
    /// every tree the program may write, and in `workspace` (read-only
    /// under `readonly`, and still full of secrets). No walk at all when
    /// there is no pattern.
    ///
    /// Errors, naming the tree and the patterns: a tree larger than
    /// [`MAX_ENTRIES`], more than [`MAX_MATCHES`] matches, and a directory
    /// that cannot be listed although the program could make it listable
    /// (its owner is the person running sluice).
    pub fn expand_deny_patterns(&mut self, workspace: &Path) -> Result<WalkStats, String> {
        self.expand_within(workspace, (MAX_ENTRIES, MAX_MATCHES), None)
    }

    /// [`FsPolicy::expand_deny_patterns`] keeping what it learns in
    /// `cache_dir`, where no sandbox may write, so a later walk lists only
    /// the directories that changed (`statx` of each, no listing, for the
    /// others). Linux; elsewhere the cache is not used.
    pub fn expand_deny_patterns_cached(
        &mut self,
        workspace: &Path,
        cache_dir: &Path,
    ) -> Result<WalkStats, String> {
        self.expand_within(workspace, (MAX_ENTRIES, MAX_MATCHES), Some(cache_dir))
    }

    /// The `deny` pattern that hides `path` from the program, where the
    /// walk of [`FsPolicy::expand_deny_patterns`] applies it: a rooted
    /// pattern beneath its root where the policy lets the program reach, a
    /// `**/` one in the writable trees and `workspace`. For `sluice explain`,
    /// which walks nothing.
    pub fn deny_pattern_for(&self, workspace: &Path, path: &Path) -> Option<&crate::ProtectRule> {
        let rule = self.deny_patterns.protects(path)?;
        let under = |trees: &[&PathBuf]| trees.iter().any(|t| path.starts_with(t));
        let applies = match rule.root() {
            None => under(
                &self
                    .write
                    .iter()
                    .chain([&workspace.to_path_buf()])
                    .collect::<Vec<_>>(),
            ),
            Some(root) => {
                let reach: Vec<&PathBuf> = self
                    .read
                    .iter()
                    .chain(&self.write)
                    .chain(&self.execute)
                    .collect();
                path.starts_with(&root) && under(&reach)
            }
        };
        applies.then_some(rule)
    }

    /// [`FsPolicy::expand_deny_patterns`] with its limits (entries,
    /// matches), and the cache's directory if one is used.
    fn expand_within(
        &mut self,
        workspace: &Path,
        limits: (usize, usize),
        cache_dir: Option<&Path>,
    ) -> Result<WalkStats, String> {
        let (found, stats) = self.walk(Purpose::Deny, workspace, limits, cache_dir)?;
        for path in found {
            if !self.deny.iter().any(|d| path.starts_with(d)) {
                self.deny.push(path);
            }
        }
        Ok(stats)
    }

    /// Walks the trees `purpose`'s patterns apply to: what matches, and
    /// what the walk did.
    fn walk(
        &self,
        purpose: Purpose,
        workspace: &Path,
        limits: (usize, usize),
        cache_dir: Option<&Path>,
    ) -> Result<(Vec<PathBuf>, WalkStats), String> {
        // What the protect list pins by: not Python's bytecode.
        let protect = self.protect.pinned();
        let patterns = match purpose {
            Purpose::Deny => &self.deny_patterns,
            Purpose::Protect => &protect,
        };
        if patterns.is_empty() {
            return Ok((Vec::new(), WalkStats::default()));
        }
        // A protected path is pinned only where the program could remove
        // it: in a writable tree.
        let allowed: Vec<&PathBuf> = match purpose {
            Purpose::Deny => (self.read.iter())
                .chain(&self.write)
                .chain(&self.execute)
                .collect(),
            Purpose::Protect => self.write.iter().collect(),
        };
        let reachable = |p: &Path| allowed.iter().any(|a| p.starts_with(a));
        // Trees for patterns that match anywhere: walked with every rule.
        let mut anywhere: Vec<PathBuf> = self
            .write
            .iter()
            .chain(
                (purpose == Purpose::Deny)
                    .then(|| workspace.to_path_buf())
                    .as_ref(),
            )
            .filter(|p| p.is_dir() && reachable(p))
            .cloned()
            .collect();
        outermost(&mut anywhere);
        let unrooted = patterns
            .rules()
            .iter()
            .any(|r| !r.except && r.root().is_none());
        if !unrooted {
            anywhere.clear();
        }
        // Trees for patterns with a root, not inside one of those: walked
        // with the rooted rules only.
        let mut rooted: Vec<PathBuf> = Vec::new();
        let mut literal_files: Vec<PathBuf> = Vec::new();
        for root in patterns.rules().iter().filter(|r| !r.except) {
            let Some(root) = root.root() else { continue };
            if reachable(&root) {
                if purpose == Purpose::Protect && root.symlink_metadata().is_ok_and(|m| m.is_file())
                {
                    literal_files.push(root.clone());
                }
                rooted.push(root);
            } else {
                rooted.extend(
                    allowed
                        .iter()
                        .filter(|a| a.starts_with(&root))
                        .map(|a| a.to_path_buf()),
                );
            }
        }
        rooted.retain(|r| r.is_dir() && !anywhere.iter().any(|a| r.starts_with(a)));
        outermost(&mut rooted);
        let only_rooted = patterns.filtered(|r| r.root().is_some());
        // The `protect` list rides the deny walk where it walks a writable
        // tree whole with every rule: each writable directory is then one
        // of those trees, so nothing else needs walking for it.
        let ride = purpose == Purpose::Deny && !anywhere.is_empty() && !protect.is_empty();
        let writable = |tree: &Path| self.write.iter().any(|w| tree.starts_with(w));
        let protect_key: Vec<String> = (protect.rules().iter())
            .map(|r| r.as_written_resolved())
            .collect();
        let protect_key = format!("\0\0protect\0{}", protect_key.join("\0"));

        let mut walker = Walker {
            buf: vec![0u8; 64 * 1024],
            path: Vec::new(),
            rules: patterns,
            index: None,
            hits: Vec::new(),
            stats: WalkStats::default(),
            limits,
            found: Vec::new(),
            purpose,
            pins: None,
            pin_index: None,
            pinned: Vec::new(),
            cache: None,
            tree_len: 0,
            euid: {
                // SAFETY: geteuid has no preconditions and cannot fail.
                unsafe { libc::geteuid() }
            },
        };
        for (pass, (trees, rules)) in [(&anywhere, patterns), (&rooted, &only_rooted)]
            .into_iter()
            .enumerate()
        {
            walker.rules = rules;
            walker.index = None;
            let rules_key: Vec<String> = (rules.rules().iter())
                .map(|r| r.as_written_resolved())
                .collect();
            let rules_key = rules_key.join("\0");
            for tree in trees {
                let pins = ride && pass == 0 && writable(tree);
                walker.pins = pins.then_some(&protect);
                let key = match pins {
                    true => format!("{rules_key}{protect_key}"),
                    false => rules_key.clone(),
                };
                walker.walk_tree(tree, cache_dir, &key).map_err(|why| {
                    let names: Vec<String> = (rules.rules().iter())
                        .filter(|r| !r.except)
                        .map(|r| r.to_string())
                        .collect();
                    format!(
                        "looking through {} for what the [filesystem] {} patterns match \
                         ({}): {why}",
                        tree.display(),
                        purpose.list(),
                        names.join(", ")
                    )
                })?;
            }
        }
        // A literal pattern naming a file in a writable tree that no walk
        // met (a tree walked holds it: met there).
        for file in literal_files {
            let met = anywhere.iter().chain(&rooted).any(|t| file.starts_with(t));
            if !met && patterns.protects(&file).is_some() {
                walker
                    .record_pin(file)
                    .map_err(|why| format!("the [filesystem] protect patterns: {why}"))?;
            }
        }
        let sorted = |mut paths: Vec<PathBuf>| {
            paths.sort();
            paths.dedup();
            paths
        };
        let mut stats = walker.stats;
        let found = match purpose {
            Purpose::Deny => {
                stats.protected = ride.then(|| sorted(walker.pinned));
                sorted(walker.found)
            }
            Purpose::Protect => sorted(walker.pinned),
        };
        Ok((found, stats))
    }
}

/// What a walk looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// `[filesystem] deny` patterns' matches, to hide: a symlink where it
    /// leads.
    Deny,
    /// What the `protect` list protects, to pin: a symlink left out.
    Protect,
}

impl Purpose {
    /// The list's name, for errors.
    fn list(self) -> &'static str {
        match self {
            Purpose::Deny => "deny",
            Purpose::Protect => "protect",
        }
    }
}

/// Keeps only the paths not beneath another one, each once.
fn outermost(paths: &mut Vec<PathBuf>) {
    paths.sort();
    paths.dedup();
    let all = paths.clone();
    paths.retain(|p| !all.iter().any(|o| o != p && p.starts_with(o)));
}

struct Walker<'a> {
    /// The one `getdents64` buffer.
    buf: Vec<u8>,
    /// The path of the entry looked at, as bytes.
    path: Vec<u8>,
    rules: &'a Protect,
    /// `rules`' last components (compiled at the first entry: an empty
    /// tree costs no glob compilation), and scratch space for their matches.
    index: Option<crate::protect::NameIndex>,
    hits: Vec<usize>,
    stats: WalkStats,
    /// At most this many entries and matches.
    limits: (usize, usize),
    found: Vec<PathBuf>,
    purpose: Purpose,
    /// The `protect` list, where it rides a deny walk of a writable tree
    /// (`Purpose::Deny`), its last components compiled at the first
    /// entry, and what it protects there (or, `Purpose::Protect`, what the
    /// walk's own rules match).
    pins: Option<&'a Protect>,
    pin_index: Option<crate::protect::NameIndex>,
    pinned: Vec<PathBuf>,
    /// The cache of the tree walked, if one is used.
    cache: Option<cache::Cache>,
    /// The length of the tree's own path at the start of `path`.
    tree_len: usize,
    euid: libc::uid_t,
}

/// An error worth stopping the walk for, in words.
type WalkError = String;

impl Walker<'_> {
    /// Walks `tree`, with the cache of earlier walks in `cache_dir` if given
    /// (see [`cache`]), kept up to date when the walk succeeds.
    fn walk_tree(
        &mut self,
        tree: &Path,
        cache_dir: Option<&Path>,
        rules_key: &str,
    ) -> Result<(), WalkError> {
        self.path.clear();
        self.path.extend_from_slice(tree.as_os_str().as_bytes());
        self.tree_len = self.path.len();
        // Below, only the names the walk meets are matched: the tree
        // itself, or a directory above it, could match too.
        if self.pins.is_some_and(|p| p.protects(tree).is_some()) {
            self.found_pin(libc::DT_DIR)?;
        }
        if self.rules.protects(tree).is_some() {
            return self.found_match(libc::DT_DIR);
        }
        let name = CString::new(self.path.clone()).map_err(|_| "a NUL in the path".to_string())?;
        self.cache = cache_dir.and_then(|dir| cache::Cache::open(dir, tree, rules_key));
        let walked = self.visit(libc::AT_FDCWD, &name);
        if let (Some(cache), Ok(())) = (self.cache.take(), &walked) {
            if let Err(error) = cache.save() {
                self.stats.cache_error = Some(format!(
                    "saving what the walk of {} found, for the next launch: {error}",
                    tree.display()
                ));
            }
        }
        walked
    }

    /// Looks through the directory `name` beneath `at` (its path is
    /// `self.path`): its listing from the cache if the directory's stamp is
    /// the one it was listed with, else listed now; then its subdirectories.
    fn visit(&mut self, at: libc::c_int, name: &CStr) -> Result<(), WalkError> {
        if let Some(cache) = &mut self.cache {
            let known = cache.knows(&self.path[self.tree_len..]);
            if let Some(now) = known
                .then(|| cache::stamp(at, name, 0).ok().flatten())
                .flatten()
            {
                if let Some(listing) = cache.get(&self.path, self.tree_len, &now) {
                    self.stats.cached += 1;
                    self.apply(&listing)?;
                    // Its subdirectories by path, while that is short
                    // enough for the kernel; deeper, beneath a descriptor.
                    if self.path.len() < LONG_PATH {
                        return self.descend(None, &listing.subdirs);
                    }
                    if let Some(held) = open_path(at, name) {
                        return self.descend(Some(&held), &listing.subdirs);
                    }
                }
            }
        }
        let Some(dir) = self.open_dir(at, name)? else {
            return Ok(());
        };
        // The stamp before the listing: a change made after it changes it.
        let stamp = match self.cache {
            Some(_) => cache::stamp_of(&dir),
            None => None,
        };
        let listing = self.list_dir(&dir)?;
        self.stats.listed += 1;
        self.apply(&listing)?;
        if let Some(cache) = &mut self.cache {
            cache.put(&self.path[self.tree_len..], stamp, &dir, &listing);
        }
        self.descend(Some(&dir), &listing.subdirs)
    }

    /// Visits each of `subdirs` (NUL-terminated names) of the directory at
    /// `self.path`: beneath `dir` if it is open, else by path.
    fn descend(&mut self, dir: Option<&OwnedFd>, subdirs: &[u8]) -> Result<(), WalkError> {
        for name in subdirs.split_inclusive(|&b| b == 0) {
            let keep = self.path.len();
            self.path.push(b'/');
            self.path.extend_from_slice(&name[..name.len() - 1]);
            let visited = match dir {
                Some(dir) => CStr::from_bytes_with_nul(name)
                    .map_err(|e| e.to_string())
                    .and_then(|name| self.visit(dir.as_raw_fd(), name)),
                None => CString::new(self.path.clone())
                    .map_err(|e| e.to_string())
                    .and_then(|path| self.visit(libc::AT_FDCWD, &path)),
            };
            self.path.truncate(keep);
            visited?;
        }
        Ok(())
    }

    /// Opens the directory `name` (beneath `at`) without following a
    /// symlink; `None` if it is gone, is not a directory any more, or may
    /// be skipped (see [`Walker::unlistable`]).
    fn open_dir(&self, at: libc::c_int, name: &CStr) -> Result<Option<OwnedFd>, WalkError> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: `name` is NUL-terminated; `at` is AT_FDCWD or a directory
        // descriptor this walk holds open.
        let fd = unsafe { libc::openat(at, name.as_ptr(), flags) };
        if fd >= 0 {
            // SAFETY: a descriptor openat just returned, owned by nobody else.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP) => Ok(None),
            Some(libc::EACCES) => self.unlistable(at, name).map(|()| None),
            _ => Err(format!("{}: {error}", self.shown())),
        }
    }

    /// A directory the person running sluice cannot list: refused when the
    /// program, which runs as that person, could `chmod` it open and read
    /// what lies beneath (theirs, its mode the only obstacle, on a writable
    /// mount); skipped otherwise: someone else's, or kept shut by something
    /// the program cannot change either (a read-only mount such as an
    /// enclosing sluice's deny placeholder, or its Landlock rules).
    fn unlistable(&self, at: libc::c_int, name: &CStr) -> Result<(), WalkError> {
        // SAFETY: plain data; all zeroes is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `name` is NUL-terminated and `st` a valid out-pointer.
        let rc = unsafe { libc::fstatat(at, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        let user_rx = (libc::S_IRUSR | libc::S_IXUSR) as libc::mode_t;
        let mode_shuts_it = rc == 0 && st.st_mode & user_rx != user_rx;
        if rc == 0 && (st.st_uid != self.euid || !mode_shuts_it || self.read_only_mount()) {
            return Ok(());
        }
        Err(format!(
            "cannot list {}, which the program could make listable: give yourself read \
             and search permission on it (chmod u+rx), or remove it",
            self.shown()
        ))
    }

    /// Whether `self.path` lies on a read-only mount (unknown: no).
    fn read_only_mount(&self) -> bool {
        let Ok(path) = CString::new(self.path.clone()) else {
            return false;
        };
        // SAFETY: plain data; all zeroes is a valid value.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is NUL-terminated and `st` a valid out-pointer.
        let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
        rc == 0 && st.f_flag & libc::ST_RDONLY != 0
    }

    fn shown(&self) -> String {
        Path::new(OsStr::from_bytes(&self.path))
            .display()
            .to_string()
    }

    /// The entries of `dir` (whose path is `self.path`) that the walk
    /// needs: the matches, the subdirectories to walk, whether a `.git` is
    /// there.
    fn list_dir(&mut self, dir: &OwnedFd) -> Result<Listing, WalkError> {
        let mut listing = Listing::default();
        let mut buf = std::mem::take(&mut self.buf);
        let listed = list(dir, &mut buf, |name, d_type| {
            self.entry(dir, name, d_type, &mut listing)
        });
        self.buf = buf;
        match listed {
            Ok(result) => result?,
            Err(error) => return Err(format!("listing {}: {error}", self.shown())),
        }
        Ok(listing)
    }

    /// Sorts one entry of `dir` into `listing`: a match, or a directory to
    /// walk.
    fn entry(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        d_type: u8,
        listing: &mut Listing,
    ) -> Result<(), WalkError> {
        if name == b"." || name == b".." {
            return Ok(());
        }
        listing.entries += 1;
        if self.stats.entries + listing.entries as usize > self.limits.0 {
            return Err(self.too_many_entries());
        }
        let keep = self.path.len();
        self.path.push(b'/');
        self.path.extend_from_slice(name);
        let path = Path::new(OsStr::from_bytes(&self.path));
        let rules = self.rules;
        let index = self.index.get_or_insert_with(|| rules.name_index());
        let matched = rules.matches_at(index, name, path, &mut self.hits);
        let pinned = self.pins.is_some_and(|pins| {
            let index = self.pin_index.get_or_insert_with(|| pins.name_index());
            pins.matches_at(index, name, path, &mut self.hits)
        });
        self.path.truncate(keep);
        let d_type = match d_type {
            libc::DT_UNKNOWN => type_of(dir, name),
            known => known,
        };
        if name == b".git" && matches!(d_type, libc::DT_DIR | libc::DT_REG) {
            listing.git = true;
        }
        if matched || pinned {
            // Which list matched, where the protect list rides along.
            let kind = match self.pins {
                Some(_) => (if matched { DENIED } else { 0 }) | (if pinned { PINNED } else { 0 }),
                None => 0,
            };
            listing.matches.push(d_type | kind);
            listing.matches.extend_from_slice(name);
            listing.matches.push(0);
        }
        // A directory only the protect list matches is walked for the deny
        // patterns beneath it.
        if !matched && d_type == libc::DT_DIR {
            listing.subdirs.extend_from_slice(name);
            listing.subdirs.push(0);
        }
        Ok(())
    }

    fn too_many_entries(&self) -> WalkError {
        format!(
            "more than {} files and directories: too many to look through at every \
             launch; give the patterns a root that holds fewer \
             (`$WORKSPACE/src/**/.env`), or drop them",
            self.limits.0
        )
    }

    /// Counts the entries of the directory at `self.path`, records its
    /// `.git` and its matches.
    fn apply(&mut self, listing: &Listing) -> Result<(), WalkError> {
        self.stats.entries += listing.entries as usize;
        if self.stats.entries > self.limits.0 {
            return Err(self.too_many_entries());
        }
        let keep = self.path.len();
        if listing.git {
            if self.stats.git.len() >= MAX_REPOSITORIES {
                return Err(format!(
                    "more than {MAX_REPOSITORIES} git repositories: too many to read where \
                     each runs its hooks from at every launch; give the session a \
                     smaller workspace"
                ));
            }
            self.path.extend_from_slice(b"/.git");
            let git = Path::new(OsStr::from_bytes(&self.path)).to_path_buf();
            self.stats.git.push(git);
            self.path.truncate(keep);
        }
        for one in listing.matches.split_inclusive(|&b| b == 0) {
            let Some((&byte, name)) = one.split_first() else {
                continue;
            };
            let (kind, d_type) = (byte & (DENIED | PINNED), byte & !(DENIED | PINNED));
            self.path.push(b'/');
            self.path
                .extend_from_slice(&name[..name.len().saturating_sub(1)]);
            let mut found = Ok(());
            if kind == 0 || kind & DENIED != 0 {
                found = self.found_match(d_type);
            }
            if found.is_ok() && kind & PINNED != 0 {
                found = self.found_pin(d_type);
            }
            self.path.truncate(keep);
            found?;
        }
        Ok(())
    }

    /// Records the match at `self.path`: itself, or for a symlink where it
    /// leads (nothing if it leads nowhere).
    fn found_match(&mut self, d_type: u8) -> Result<(), WalkError> {
        if self.purpose == Purpose::Protect {
            return self.found_pin(d_type);
        }
        let path = Path::new(OsStr::from_bytes(&self.path));
        let denied = if d_type == libc::DT_LNK {
            match std::fs::canonicalize(path) {
                Ok(target) => target,
                Err(_) => return Ok(()),
            }
        } else {
            path.to_path_buf()
        };
        self.record(denied)
    }

    /// Adds `path` to what the walk found, within the limit.
    fn record(&mut self, path: PathBuf) -> Result<(), WalkError> {
        self.found.push(path);
        self.stats.matches += 1;
        self.within_limit()
    }

    /// Whether the matches, both lists', are within the limit.
    fn within_limit(&mut self) -> Result<(), WalkError> {
        let pins = match self.purpose {
            Purpose::Protect => 0,
            Purpose::Deny => self.pinned.len(),
        };
        if self.stats.matches + pins > self.limits.1 {
            let advice = match self.purpose {
                Purpose::Deny => {
                    "each hidden by a mount of its own; give the patterns a root that \
                     holds fewer, or deny the directory that holds them"
                }
                Purpose::Protect => {
                    "each kept in place by a mount of its own; protect the directory \
                     that holds them instead"
                }
            };
            return Err(format!("more than {} matches, {advice}", self.limits.1));
        }
        Ok(())
    }
}

/// Where the `protect` list rides a deny walk ([`Walker::pins`]), the
/// `d_type` byte of each match in a [`Listing`] carries which list matched
/// (both may); a walk without it keeps the plain `d_type`, its own rules'
/// match. `d_type` values are below 16.
const DENIED: u8 = 0x40;
const PINNED: u8 = 0x80;

/// A directory whose path is longer than this has its subdirectories
/// visited beneath a descriptor of it, not by path: a subdirectory's path
/// (at most 255 bytes more) stays below `PATH_MAX`.
const LONG_PATH: usize = 2048;

mod read_dir;
use read_dir::{list, open_path, type_of};

/// Elsewhere than on Linux no cache: every directory is listed.
#[cfg(not(target_os = "linux"))]
mod cache {
    use std::ffi::CStr;
    use std::os::fd::OwnedFd;
    use std::path::Path;

    use super::Listing;

    pub enum Cache {}
    pub enum Stamp {}

    impl Cache {
        pub fn open(_: &Path, _: &Path, _: &str) -> Option<Cache> {
            None
        }
        pub fn knows(&self, _: &[u8]) -> bool {
            match *self {}
        }
        pub fn get(&mut self, _: &[u8], _: usize, _: &Stamp) -> Option<Listing> {
            match *self {}
        }
        pub fn put(&mut self, _: &[u8], _: Option<Stamp>, _: &OwnedFd, _: &Listing) {
            match *self {}
        }
        pub fn save(self) -> std::io::Result<()> {
            match self {}
        }
    }

    pub fn stamp(_: libc::c_int, _: &CStr, _: libc::c_int) -> std::io::Result<Option<Stamp>> {
        Ok(None)
    }

    pub fn stamp_of(_: &OwnedFd) -> Option<Stamp> {
        None
    }
}

mod pins;

#[cfg(test)]
mod tests_support;

#[cfg(test)]
mod tests;

#[cfg(all(test, target_os = "linux"))]
mod cached;

#[cfg(test)]
mod timing;
