//! The real path of the longest existing prefix of a path or pattern, for
//! rules and protected paths to match the kernel's names for files.

use std::collections::HashMap;
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
    /// looked into: where the existing part ended, with the error number
    /// of the lookup that found so when it was the name's own (`None`: a
    /// symlink whose target could not be resolved), so that
    /// [`Canonicaliser::canonicalize`] answers a missing path without
    /// looking it up a second time.
    ends: HashMap<OsString, Option<i32>>,
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
        self.lookup(names).map(|(real, count, _)| (real, count))
    }

    /// [`Canonicaliser::existing`], and, when the existing part ended
    /// before the last name, the error number the first missing name's own
    /// lookup gave (`None` when it was a symlink that could not be resolved).
    fn lookup<N: AsRef<Path>>(
        &mut self,
        names: &[N],
    ) -> Result<(PathBuf, usize, Option<i32>), (PathBuf, io::Error)> {
        let mut written = PathBuf::from("/");
        let mut real = PathBuf::from("/");
        for (count, name) in names.iter().enumerate() {
            written.push(name);
            if let Some(known) = self.known.get(written.as_os_str()) {
                real.clone_from(known);
                continue;
            }
            if let Some(&errno) = self.ends.get(written.as_os_str()) {
                return Ok((real, count, errno));
            }
            // Below a real directory, a name that is not a symlink is real too.
            let candidate = real.join(name);
            let found = match fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    fs::canonicalize(&candidate).map_err(|error| (error, None))
                }
                Ok(_) => Ok(candidate.clone()),
                Err(error) => {
                    let errno = error.raw_os_error();
                    Err((error, errno))
                }
            };
            match found {
                Ok(found) => real = found,
                Err((error, errno)) if stops_lookup(&error) => {
                    self.ends.insert(written.into_os_string(), errno);
                    return Ok((real, count, errno));
                }
                Err((error, _)) => return Err((candidate, error)),
            }
            self.known
                .insert(written.as_os_str().to_owned(), real.clone());
        }
        Ok((real, names.len(), None))
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
        match self.lookup(&names) {
            Ok((real, n, _)) if n == names.len() => Ok(real),
            // The first name that does not exist, or cannot be looked into:
            // the error `realpath` gives, as its lookup found it (one
            // `statx` for each missing entry of a policy, not two).
            Ok((_, _, Some(errno))) => Err(io::Error::from_raw_os_error(errno)),
            Ok((real, n, None)) => {
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

    /// `Canonicaliser::canonicalize` answers as `fs::canonicalize` does,
    /// the same real path or the same error, also when the missing name
    /// was met before (its error remembered, not looked up again): a
    /// missing name, one beneath a file, a dangling symlink, one through
    /// a symlink.
    #[test]
    fn canonicalize_answers_as_realpath_also_from_memory() {
        let base = std::env::temp_dir().join(format!("sluice-unit-canon2-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("real/a")).unwrap();
        fs::write(base.join("real/file"), b"").unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
        std::os::unix::fs::symlink(base.join("nowhere"), base.join("dangling")).unwrap();
        let base = fs::canonicalize(&base).unwrap();
        let paths = [
            "real/a",
            "link/a",
            "missing",
            "missing/b",
            "real/file",
            "real/file/under",
            "link/file/under",
            "dangling",
            "dangling/x",
            "link/missing/c",
            "real/missing",
        ];
        let mut shared = Canonicaliser::default();
        let answer = |result: io::Result<PathBuf>| result.map_err(|e| e.raw_os_error());
        let mut errors = 0;
        for rel in paths.iter().chain(paths.iter().rev()).chain(paths.iter()) {
            let path = base.join(rel);
            let expected = answer(fs::canonicalize(&path));
            errors += usize::from(expected.is_err());
            assert_eq!(answer(shared.canonicalize(&path)), expected, "{rel}");
        }
        assert_eq!(errors, 3 * 8, "control: the missing paths were missing");
        assert_eq!(
            answer(shared.canonicalize(&base.join("real/file/under"))),
            Err(Some(libc::ENOTDIR)),
            "control: beneath a file is not a missing name"
        );
        fs::remove_dir_all(&base).unwrap();
    }
}
