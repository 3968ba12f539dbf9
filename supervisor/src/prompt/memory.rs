//! Answers remembered for the rest of the session.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Remembered {
    path: PathBuf,
    /// Everything beneath `path` too (allow this directory).
    beneath: bool,
    /// Covers requests that write (an allow given to a write request).
    write: bool,
    allow: bool,
}

/// What the person said "for this session" or "always".
#[derive(Debug, Default)]
pub struct Memory {
    entries: Vec<Remembered>,
}

impl Memory {
    /// Allows `path` (and everything beneath it when `beneath`), for reads,
    /// and for writes too when `write`.
    pub fn allow(&mut self, path: &Path, beneath: bool, write: bool) {
        self.entries.push(Remembered {
            path: path.to_path_buf(),
            beneath,
            write,
            allow: true,
        });
    }

    /// Denies `path`, whatever the access.
    pub fn deny(&mut self, path: &Path) {
        self.entries.push(Remembered {
            path: path.to_path_buf(),
            beneath: false,
            write: true,
            allow: false,
        });
    }

    /// The remembered answer for a request, if any: a denial wins over an
    /// allowance; an allowance for reading does not cover a write.
    pub fn lookup(&self, path: &Path, write: bool) -> Option<bool> {
        let covers = |e: &&Remembered| {
            (e.path == path || (e.beneath && path.starts_with(&e.path))) && (e.write || !write)
        };
        let mut matching = self.entries.iter().filter(covers);
        if matching.clone().any(|e| !e.allow) {
            return Some(false);
        }
        matching.next().map(|_| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_allowance_covers_what_it_says_and_no_more() {
        let mut m = Memory::default();
        m.allow(Path::new("/h/notes.txt"), false, false);
        m.allow(Path::new("/h/docs"), true, true);
        assert_eq!(m.lookup(Path::new("/h/notes.txt"), false), Some(true));
        assert_eq!(m.lookup(Path::new("/h/notes.txt"), true), None);
        assert_eq!(m.lookup(Path::new("/h/notes.txt.bak"), false), None);
        assert_eq!(m.lookup(Path::new("/h/docs/a/b"), true), Some(true));
        // Components, not string prefixes.
        assert_eq!(m.lookup(Path::new("/h/docs2"), false), None);
        m.deny(Path::new("/h/docs/secret"));
        assert_eq!(m.lookup(Path::new("/h/docs/secret"), false), Some(false));
        assert_eq!(m.lookup(Path::new("/h/docs/other"), false), Some(true));
    }
}
