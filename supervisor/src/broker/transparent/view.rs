//! The sandbox's own view of the file system, as the policy built it: what
//! the program may open without the broker (Landlock's trees, less the paths
//! the mount view covers).
//!
//! This model only chooses who answers a call, never what the answer is: a
//! call it says the sandbox allows is left to the kernel, where Landlock and
//! the mounts still decide. If the model were wrong in either direction, the
//! program would get what it gets without transparent brokering, or what
//! the broker's rules grant: never more.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use policies::FsPolicy;

/// The trees of the sandbox's filesystem layer.
#[derive(Debug, Clone, Default)]
pub struct SandboxView {
    /// `read`, `write` and `execute`: readable.
    readable: Vec<PathBuf>,
    writable: Vec<PathBuf>,
    read_only: Vec<PathBuf>,
    denied: Vec<PathBuf>,
    /// Symlinks directly under `/` and their canonical targets (`/lib` →
    /// `/usr/lib` on merged-/usr systems): the policy's paths are
    /// canonical, programs' paths often are not.
    aliases: Vec<(PathBuf, PathBuf)>,
}

impl SandboxView {
    pub fn new(fs: &FsPolicy) -> SandboxView {
        let readable = fs.read.iter().chain(&fs.write).chain(&fs.execute);
        SandboxView {
            readable: readable.cloned().collect(),
            writable: fs.write.clone(),
            read_only: fs.read_only.clone(),
            denied: fs.deny.clone(),
            aliases: root_symlinks(),
        }
    }

    /// `path` with a leading top-level symlink replaced by its target.
    pub fn unalias<'a>(&self, path: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        for (link, target) in &self.aliases {
            let link = link.as_os_str().as_bytes();
            if beneath(path, link) {
                let mut out = target.as_os_str().as_bytes().to_vec();
                out.extend_from_slice(&path[link.len()..]);
                return out.into();
            }
        }
        path.into()
    }

    /// Whether the sandbox itself lets the program open `path` (absolute,
    /// lexically normal) for reading, or for writing too when `write`.
    pub fn allows(&self, path: &Path, write: bool) -> bool {
        self.allows_bytes(path.as_os_str().as_bytes(), write)
    }

    /// [`SandboxView::allows`] on the path's bytes.
    pub fn allows_bytes(&self, path: &[u8], write: bool) -> bool {
        let under = |roots: &[PathBuf]| {
            roots
                .iter()
                .any(|r| beneath(path, r.as_os_str().as_bytes()))
        };
        if under(&self.denied) {
            return false;
        }
        if write {
            under(&self.writable) && !under(&self.read_only)
        } else {
            under(&self.readable)
        }
    }
}

/// Whether `path` is `root` or beneath it; both absolute and lexically
/// normal (what `Path::starts_with` answers, on bytes, without parsing).
fn beneath(path: &[u8], root: &[u8]) -> bool {
    match path.strip_prefix(root) {
        Some(rest) => rest.is_empty() || rest[0] == b'/' || root.ends_with(b"/"),
        None => false,
    }
}

/// The symlinks in `/`, each with its canonical target.
fn root_symlinks() -> Vec<(PathBuf, PathBuf)> {
    let Ok(entries) = std::fs::read_dir("/") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .filter_map(|e| Some((e.path(), e.path().canonicalize().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> SandboxView {
        SandboxView::new(&FsPolicy {
            read: vec!["/etc".into()],
            write: vec!["/ws".into()],
            execute: vec!["/usr".into()],
            read_only: vec!["/ws/.git/hooks".into()],
            deny: vec!["/ws/.env".into(), "/etc/shadow".into()],
            absent: vec![],
            absent_read_only: vec![],
            protect: Default::default(),
            deny_patterns: Default::default(),
            links: vec![],
        })
    }

    #[test]
    fn top_level_symlinks_are_seen_through() {
        let mut v = view();
        v.aliases = vec![("/lib".into(), "/usr/lib".into())];
        let lib = b"/lib/x86_64-linux-gnu/libc.so.6";
        assert_eq!(&*v.unalias(lib), b"/usr/lib/x86_64-linux-gnu/libc.so.6");
        assert!(v.allows_bytes(&v.unalias(lib), false));
        assert_eq!(&*v.unalias(b"/library/x"), b"/library/x");
        assert_eq!(&*v.unalias(b"/lib"), b"/usr/lib");
    }

    #[test]
    fn trees_allow_beneath_them_and_nowhere_else() {
        let v = view();
        for (path, write, allowed) in [
            ("/etc/hosts", false, true),
            ("/etc/hosts", true, false),
            ("/usr/bin/cat", false, true),
            ("/ws/src/main.rs", true, true),
            ("/ws", false, true),
            ("/wsx/file", false, false),
            ("/", false, false),
            ("/home/u/notes", false, false),
            ("/ws/.git/hooks/pre-commit", false, true),
            ("/ws/.git/hooks/pre-commit", true, false),
            ("/ws/.env", false, false),
            ("/ws/.env/x", false, false),
            ("/ws/.envrc", true, true),
            ("/etc/shadow", false, false),
        ] {
            assert_eq!(
                v.allows(Path::new(path), write),
                allowed,
                "{path} write={write}"
            );
        }
    }

    #[test]
    fn beneath_is_by_whole_components() {
        assert!(beneath(b"/ws", b"/ws"));
        assert!(beneath(b"/ws/a", b"/ws"));
        assert!(!beneath(b"/wsx", b"/ws"));
        assert!(beneath(b"/anything", b"/"));
        assert!(!beneath(b"/w", b"/ws"));
    }
}
