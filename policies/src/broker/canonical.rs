//! The real path of the longest existing prefix of a path or pattern, for
//! rules and protected paths to match the kernel's names for files.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Finds the real path of the longest existing prefix of a pattern, or of a
/// path, remembering what it found: the entries of a policy share most of
/// their prefixes (`~`, `/etc`), so each directory is looked up once per
/// resolution (one `statx` each, not a `readlink` of every component of
/// every entry as `realpath` does), and so is each missing one (`~/.cargo`
/// where there is none: `default` names ten paths beneath it). One lives
/// through a whole [`PolicySpec::resolve`]; the paths it knows are taken as
/// they were then.
#[derive(Default)]
pub(crate) struct Canonicaliser {
    /// Path as written (no `.` or `..`) to its real path. Keyed by the
    /// path's bytes: a `Path`'s hash and comparison walk its components
    /// again at every lookup, and the key is always built the same way
    /// (`/` and one name after another), so equal bytes are what matters.
    known: HashMap<OsString, PathBuf>,
    /// Paths as written whose last name was missing, or could not be
    /// looked into: where the existing part ended.
    ends: HashSet<OsString>,
}

impl Canonicaliser {
    /// The real path of `/` joined with the longest existing prefix of
    /// `names`, and how many names that prefix has. A missing name, or one
    /// that cannot be looked into, ends the existing part; any other error (a
    /// loop of symlinks, an I/O error) is returned with the path it happened on.
    pub(crate) fn existing<N: AsRef<Path>>(
        &mut self,
        names: &[N],
    ) -> Result<(PathBuf, usize), (PathBuf, io::Error)> {
        let mut written = PathBuf::from("/");
        let mut real = PathBuf::from("/");
        for (count, name) in names.iter().enumerate() {
            written.push(name);
            if let Some(known) = self.known.get(written.as_os_str()) {
                real.clone_from(known);
                continue;
            }
            if self.ends.contains(written.as_os_str()) {
                return Ok((real, count));
            }
            // Below a real directory, a name that is not a symlink is real too.
            let candidate = real.join(name);
            let found = match fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(&candidate),
                Ok(_) => Ok(candidate.clone()),
                Err(error) => Err(error),
            };
            match found {
                Ok(found) => real = found,
                Err(error) if stops_lookup(&error) => {
                    self.ends.insert(written.into_os_string());
                    return Ok((real, count));
                }
                Err(error) => return Err((candidate, error)),
            }
            self.known
                .insert(written.as_os_str().to_owned(), real.clone());
        }
        Ok((real, names.len()))
    }

    /// [`Canonicaliser::existing`], any error ending the existing part.
    pub(crate) fn existing_lenient<N: AsRef<Path>>(&mut self, names: &[N]) -> (PathBuf, usize) {
        match self.existing(names) {
            Ok(found) => found,
            // Not cached: the prefix before the failing name is, so this
            // looks up nothing twice.
            Err(_) => (1..names.len())
                .rev()
                .find_map(|n| self.existing(&names[..n]).ok())
                .unwrap_or((PathBuf::from("/"), 0)),
        }
    }

    /// `fs::canonicalize(path)`, with the same errors: the real path of
    /// `path`, which must exist.
    pub(crate) fn canonicalize(&mut self, path: &Path) -> io::Result<PathBuf> {
        let mut names = Vec::new();
        for component in path.components() {
            match component {
                Component::RootDir => {}
                Component::Normal(name) => names.push(name),
                // `..` after a symlink is the kernel's to resolve.
                _ => return fs::canonicalize(path),
            }
        }
        if !path.is_absolute() {
            return fs::canonicalize(path);
        }
        match self.existing(&names) {
            Ok((real, n)) if n == names.len() => Ok(real),
            // The first name that does not exist, or cannot be looked into:
            // the error `realpath` gives.
            Ok((real, n)) => {
                fs::symlink_metadata(real.join(names[n])).and_then(|_| fs::canonicalize(path))
            }
            Err((_, error)) => Err(error),
        }
    }
}

/// `path` (absolute) with its longest existing prefix canonicalised; `path`
/// itself if it has `..` components or cannot be looked up (for
/// [`BrokerPolicy::protect`], which cannot fail).
pub(crate) fn canonical_prefix(path: &Path) -> PathBuf {
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => names.push(name),
            Component::Prefix(_) | Component::ParentDir => return path.to_path_buf(),
        }
    }
    match Canonicaliser::default().existing(&names) {
        Ok((real, count)) => names[count..]
            .iter()
            .fold(real, |path, name| path.join(name)),
        Err(_) => path.to_path_buf(),
    }
}

fn stops_lookup(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::PermissionDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One Canonicaliser through many lookups, the missing prefixes among
    /// them remembered, answers each as a fresh one does: the real path of
    /// the longest existing prefix and its length, through a symlink too.
    #[test]
    fn remembered_answers_are_those_of_a_fresh_lookup() {
        let base = std::env::temp_dir().join(format!("sluice-unit-canon-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("real/a/x")).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
        let base = fs::canonicalize(&base).unwrap();
        let paths = [
            "link/a/x/y",
            "link/missing/b",
            "link/missing/c",
            "missing/z",
            "real/a",
            "link/a",
            "link/a/x",
            "real/missing/b/c",
            "link/a/missing",
        ];
        let mut shared = Canonicaliser::default();
        let mut fresh_answers = Vec::new();
        for rel in paths.iter().chain(paths.iter().rev()) {
            let path = base.join(rel);
            let names: Vec<&std::ffi::OsStr> = path.iter().skip(1).collect();
            let fresh = Canonicaliser::default().existing(&names).unwrap();
            assert_eq!(shared.existing(&names).unwrap(), fresh, "{rel}");
            fresh_answers.push(fresh);
        }
        assert_eq!(
            fresh_answers[0],
            (base.join("real/a/x"), base.iter().count() + 2),
            "control: the lookup went through the symlink"
        );
        fs::remove_dir_all(&base).unwrap();
    }
}
