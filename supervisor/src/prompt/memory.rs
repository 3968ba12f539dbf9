//! Answers remembered for the rest of the session.

use std::path::{Path, PathBuf};

use super::queue::Key;

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
    /// Hosts answered for the session: `host:port` and the answer.
    hosts: Vec<(String, bool)>,
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

    /// Allows or denies one `host:port` for the rest of the session.
    pub fn host(&mut self, target: &str, allow: bool) {
        self.hosts.push((target.to_owned(), allow));
    }

    /// The remembered answer for the question `key`, if any.
    pub fn lookup_key(&self, key: &Key) -> Option<bool> {
        match key {
            Key::File { path, write } => self.lookup(path, *write),
            Key::Host { target } => {
                let mut matching = self.hosts.iter().filter(|(t, _)| t == target);
                if matching.clone().any(|(_, allow)| !allow) {
                    return Some(false);
                }
                matching.next().map(|_| true)
            }
        }
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

    #[test]
    fn a_remembered_host_covers_that_host_and_port_only() {
        let mut m = Memory::default();
        let key = |t: &str| Key::Host { target: t.into() };
        m.host("a.example.com:443", true);
        assert_eq!(m.lookup_key(&key("a.example.com:443")), Some(true));
        assert_eq!(m.lookup_key(&key("a.example.com:80")), None);
        assert_eq!(m.lookup_key(&key("b.a.example.com:443")), None);
        m.host("a.example.com:443", false);
        assert_eq!(m.lookup_key(&key("a.example.com:443")), Some(false));
        // A path that looks like it is not a host.
        let file = Key::File {
            path: "a.example.com:443".into(),
            write: false,
        };
        assert_eq!(m.lookup_key(&file), None);
    }
}
