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
        self.expand_within(workspace, (MAX_ENTRIES, MAX_MATCHES))
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

    /// [`FsPolicy::expand_deny_patterns`] with its limits (entries, matches).
    fn expand_within(
        &mut self,
        workspace: &Path,
        limits: (usize, usize),
    ) -> Result<WalkStats, String> {
        let patterns = &self.deny_patterns;
        if patterns.is_empty() {
            return Ok(WalkStats::default());
        }
        let allowed: Vec<&PathBuf> = self
            .read
            .iter()
            .chain(&self.write)
            .chain(&self.execute)
            .collect();
        let reachable = |p: &Path| allowed.iter().any(|a| p.starts_with(a));
        // Trees for patterns that match anywhere: walked with every rule.
        let mut anywhere: Vec<PathBuf> = self
            .write
            .iter()
            .chain(std::iter::once(&workspace.to_path_buf()))
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
        for root in patterns.rules().iter().filter(|r| !r.except) {
            let Some(root) = root.root() else { continue };
            if reachable(&root) {
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

        let mut walker = Walker {
            buf: vec![0u8; 64 * 1024],
            path: Vec::new(),
            rules: patterns,
            index: None,
            hits: Vec::new(),
            stats: WalkStats::default(),
            limits,
            found: Vec::new(),
            euid: {
                // SAFETY: geteuid has no preconditions and cannot fail.
                unsafe { libc::geteuid() }
            },
        };
        for (trees, rules) in [(&anywhere, patterns), (&rooted, &only_rooted)] {
            walker.rules = rules;
            walker.index = None;
            for tree in trees {
                walker.walk_tree(tree).map_err(|why| {
                    let names: Vec<String> = (rules.rules().iter())
                        .filter(|r| !r.except)
                        .map(|r| r.to_string())
                        .collect();
                    format!(
                        "looking through {} for what the [filesystem] deny patterns match \
                         ({}): {why}",
                        tree.display(),
                        names.join(", ")
                    )
                })?;
            }
        }
        let stats = std::mem::take(&mut walker.stats);
        for path in walker.found {
            if !self.deny.iter().any(|d| path.starts_with(d)) {
                self.deny.push(path);
            }
        }
        Ok(stats)
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
    euid: libc::uid_t,
}

/// An error worth stopping the walk for, in words.
type WalkError = String;

impl Walker<'_> {
    fn walk_tree(&mut self, tree: &Path) -> Result<(), WalkError> {
        self.path.clear();
        self.path.extend_from_slice(tree.as_os_str().as_bytes());
        // Below, only the names the walk meets are matched: the tree
        // itself, or a directory above it, could match too.
        if self.rules.protects(tree).is_some() {
            return self.found_match(libc::DT_DIR);
        }
        let name = CString::new(self.path.clone()).map_err(|_| "a NUL in the path".to_string())?;
        let Some(dir) = self.open_dir(libc::AT_FDCWD, &name)? else {
            return Ok(());
        };
        self.walk(&dir)
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

    /// Looks at every entry of `dir` (whose path is `self.path`), then
    /// walks its subdirectories that do not match.
    fn walk(&mut self, dir: &OwnedFd) -> Result<(), WalkError> {
        // The subdirectories' names, NUL-terminated, one after the other.
        let mut subdirs: Vec<u8> = Vec::new();
        let mut buf = std::mem::take(&mut self.buf);
        let listed = list(dir, &mut buf, |name, d_type| {
            self.entry(dir, name, d_type, &mut subdirs)
        });
        self.buf = buf;
        match listed {
            Ok(result) => result?,
            Err(error) => return Err(format!("listing {}: {error}", self.shown())),
        }
        for name in subdirs.split_inclusive(|&b| b == 0) {
            let keep = self.path.len();
            self.path.push(b'/');
            self.path.extend_from_slice(&name[..name.len() - 1]);
            let cname = CStr::from_bytes_with_nul(name).map_err(|e| e.to_string())?;
            if let Some(sub) = self.open_dir(dir.as_raw_fd(), cname)? {
                self.walk(&sub)?;
            }
            self.path.truncate(keep);
        }
        Ok(())
    }

    /// Looks at one entry of `dir`: a match is recorded, a directory that
    /// is not one is kept in `subdirs` to be walked.
    fn entry(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        d_type: u8,
        subdirs: &mut Vec<u8>,
    ) -> Result<(), WalkError> {
        if name == b"." || name == b".." {
            return Ok(());
        }
        self.stats.entries += 1;
        if self.stats.entries > self.limits.0 {
            return Err(format!(
                "more than {} files and directories: too many to look through at every \
                 launch; give the patterns a root that holds fewer \
                 (`$WORKSPACE/src/**/.env`), or drop them",
                self.limits.0
            ));
        }
        let keep = self.path.len();
        self.path.push(b'/');
        self.path.extend_from_slice(name);
        let path = Path::new(OsStr::from_bytes(&self.path));
        let rules = self.rules;
        let index = self.index.get_or_insert_with(|| rules.name_index());
        let matched = rules.matches_at(index, name, path, &mut self.hits);
        let d_type = match d_type {
            libc::DT_UNKNOWN => type_of(dir, name),
            known => known,
        };
        if name == b".git" && matches!(d_type, libc::DT_DIR | libc::DT_REG) {
            if self.stats.git.len() >= MAX_REPOSITORIES {
                self.path.truncate(keep);
                return Err(format!(
                    "more than {MAX_REPOSITORIES} git repositories: too many to read where \
                     each runs its hooks from at every launch; give the session a \
                     smaller workspace"
                ));
            }
            self.stats.git.push(path.to_path_buf());
        }
        let result = if matched {
            self.found_match(d_type)
        } else {
            if d_type == libc::DT_DIR {
                subdirs.extend_from_slice(name);
                subdirs.push(0);
            }
            Ok(())
        };
        self.path.truncate(keep);
        result
    }

    /// Records the match at `self.path`: itself, or for a symlink where it
    /// leads (nothing if it leads nowhere).
    fn found_match(&mut self, d_type: u8) -> Result<(), WalkError> {
        let path = Path::new(OsStr::from_bytes(&self.path));
        let denied = if d_type == libc::DT_LNK {
            match std::fs::canonicalize(path) {
                Ok(target) => target,
                Err(_) => return Ok(()),
            }
        } else {
            path.to_path_buf()
        };
        self.found.push(denied);
        self.stats.matches += 1;
        if self.stats.matches > self.limits.1 {
            return Err(format!(
                "more than {} matches, each hidden by a mount of its own; give the \
                 patterns a root that holds fewer, or deny the directory that holds them",
                self.limits.1
            ));
        }
        Ok(())
    }
}

/// Calls `each(name, d_type)` for every entry of `dir` until it fails;
/// the outer error is the listing's own. Linux: `getdents64` into `buf`.
#[cfg(target_os = "linux")]
fn list<E>(
    dir: &OwnedFd,
    buf: &mut [u8],
    mut each: impl FnMut(&[u8], u8) -> Result<(), E>,
) -> io::Result<Result<(), E>> {
    loop {
        // SAFETY: `buf` is writable for its length; `dir` is open.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(error);
        }
        if n == 0 {
            return Ok(Ok(()));
        }
        let records = &buf[..n as usize];
        let mut at = 0usize;
        while at < records.len() {
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type,
            // then the NUL-terminated name, padded.
            let record = &records[at..];
            let reclen = u16::from_ne_bytes([record[16], record[17]]) as usize;
            let name = &record[19..reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if let Err(e) = each(name, record[18]) {
                return Ok(Err(e));
            }
            at += reclen;
        }
    }
}

/// [`list`] elsewhere (macOS): `readdir` on a duplicate of `dir`.
#[cfg(not(target_os = "linux"))]
fn list<E>(
    dir: &OwnedFd,
    _buf: &mut [u8],
    mut each: impl FnMut(&[u8], u8) -> Result<(), E>,
) -> io::Result<Result<(), E>> {
    let copy = dir.try_clone()?;
    // SAFETY: `copy` is an open directory descriptor whose ownership passes
    // to the stream (closedir closes it).
    let stream = unsafe { libc::fdopendir(copy.as_raw_fd()) };
    if stream.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(copy);
    let result = loop {
        // SAFETY: `stream` is a valid stream until closedir below.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break Ok(());
        }
        // SAFETY: readdir returned a valid entry with a NUL-terminated name.
        let (name, d_type) = unsafe { (CStr::from_ptr((*entry).d_name.as_ptr()), (*entry).d_type) };
        if let Err(e) = each(name.to_bytes(), d_type) {
            break Err(e);
        }
    };
    // SAFETY: `stream` came from fdopendir and is closed once.
    unsafe { libc::closedir(stream) };
    Ok(result)
}

/// The type of `name` in `dir` by `fstatat`, for file systems whose
/// listings leave it out (`DT_UNKNOWN`); unknown if it is gone.
fn type_of(dir: &OwnedFd, name: &[u8]) -> u8 {
    let Ok(name) = CString::new(name) else {
        return libc::DT_UNKNOWN;
    };
    // SAFETY: plain data; all zeroes is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated, `dir` open and `st` a valid out-pointer.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return libc::DT_UNKNOWN;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => libc::DT_DIR,
        libc::S_IFLNK => libc::DT_LNK,
        _ => libc::DT_REG,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_str, Vars};

    struct Tree(PathBuf);

    impl Tree {
        fn new(tag: &str) -> Tree {
            let dir = std::env::temp_dir().join(format!("deny-walk-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Tree(dir.canonicalize().unwrap())
        }
        fn file(&self, rel: &str) -> PathBuf {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "x").unwrap();
            path
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn policy(tree: &Tree, deny: &str) -> FsPolicy {
        let text = format!(
            "[filesystem]\nwrite = [\"$WORKSPACE\"]\nread = [\"{}/ro\"]\ndeny = [{deny}]\n",
            tree.0.display()
        );
        let vars = Vars {
            home: tree.0.join("home"),
            workspace: tree.0.join("ws"),
            tmpdir: tree.0.join("tmp"),
        };
        load_str("p.toml", &text, &tree.0)
            .unwrap()
            .resolve(&vars)
            .unwrap()
            .filesystem
    }

    #[test]
    fn bare_patterns_apply_in_writable_trees_rooted_ones_beneath_their_root() {
        let tree = Tree::new("scope");
        let deep = tree.file("ws/a/b/.env");
        let template = tree.file("ws/a/.env.example");
        let in_ro = tree.file("ro/x/.env");
        let pem = tree.file("ro/certs/k.pem");
        let outside = tree.file("elsewhere/.env");
        let dir_match = tree.file("ws/c/.env/inner");
        std::os::unix::fs::symlink(&pem, tree.0.join("ws/link.env")).unwrap();
        let mut fs = policy(
            &tree,
            &format!(
                "\"**/.env\", \"**/*.env\", \"!**/.env.example\", \"{}/ro/**/*.pem\"",
                tree.0.display()
            ),
        );
        let stats = fs.expand_deny_patterns(&tree.0.join("ws")).unwrap();
        let deny = &fs.deny;
        assert!(deny.contains(&deep), "{deny:?}");
        assert!(deny.contains(&pem), "{deny:?}");
        // A matching directory is denied whole, and not walked into.
        assert!(deny.contains(&dir_match.parent().unwrap().to_path_buf()));
        assert!(!deny.contains(&dir_match));
        for not in [&template, &in_ro, &outside] {
            assert!(!deny.contains(not), "{} {deny:?}", not.display());
        }
        // The symlink is denied where it leads (the pem, already there).
        assert_eq!(stats.matches, 4, "{deny:?}");
        assert!(!deny.contains(&tree.0.join("ws/link.env")));
    }

    #[test]
    fn the_walk_lists_the_repositories_it_meets() {
        let tree = Tree::new("repos");
        tree.file("ws/a/.git/config");
        tree.file("ws/a/sub/.git");
        tree.file("ws/b/.env");
        tree.file("ws/c/.github/x");
        tree.file("ro/f");
        let mut fs = policy(&tree, "\"**/.env\"");
        let mut git = fs.expand_deny_patterns(&tree.0.join("ws")).unwrap().git;
        git.sort();
        git.dedup();
        assert_eq!(
            git,
            vec![tree.0.join("ws/a/.git"), tree.0.join("ws/a/sub/.git")]
        );
    }

    #[test]
    fn no_walk_without_a_pattern_and_limits_are_refused_by_name() {
        let tree = Tree::new("limits");
        tree.file("ro/f");
        for i in 0..5 {
            tree.file(&format!("ws/d{i}/.env"));
        }
        let mut fs = policy(&tree, "\"$WORKSPACE/.env\"");
        assert_eq!(
            fs.expand_deny_patterns(&tree.0.join("ws")).unwrap(),
            WalkStats::default()
        );
        let mut fs = policy(&tree, "\"**/.env\"");
        let ws = tree.0.join("ws");
        let error = fs.clone().expand_within(&ws, (6, 100)).unwrap_err();
        assert!(error.contains("more than 6 files"), "{error}");
        assert!(
            error.contains("deny \"**/.env\" (policy 'p.toml', line 4)"),
            "{error}"
        );
        let error = fs.clone().expand_within(&ws, (100, 4)).unwrap_err();
        assert!(error.contains("more than 4 matches"), "{error}");
        assert_eq!(fs.expand_within(&ws, (10, 5)).unwrap().matches, 5);
    }
}

#[cfg(test)]
mod timing {
    /// `cargo test -p policies --release timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn walk_of_ten_thousand_files() {
        let dir = std::env::temp_dir().join(format!("deny-walk-timing-{}", std::process::id()));
        let ws = dir.join("ws");
        for i in 0..10_000 {
            let sub = ws.join(format!("d{}", i / 100));
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join(format!("f{i}")), "x").unwrap();
        }
        let text = crate::builtin_source("default").unwrap();
        let vars = crate::Vars {
            home: dir.join("home"),
            workspace: ws.clone(),
            tmpdir: dir.join("tmp"),
        };
        std::fs::create_dir_all(&vars.tmpdir).unwrap();
        let spec = crate::load_str("default", text, &dir).unwrap();
        let policy = spec.resolve(&vars).unwrap();
        let mut times = Vec::new();
        for _ in 0..21 {
            let mut fs = policy.filesystem.clone();
            let start = std::time::Instant::now();
            let stats = fs.expand_deny_patterns(&ws).unwrap();
            times.push(start.elapsed());
            assert_eq!(stats.entries, 10_100);
        }
        times.sort();
        println!("walk of 10,100 entries: median {:?}", times[10]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
