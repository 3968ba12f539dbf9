//! `[broker]` entries to a [`BrokerPolicy`]: variables substituted (their
//! values escaped), the longest existing literal prefix of each pattern
//! canonicalised, repeats removed, globs compiled.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::pattern::{escape, literal_value, Pattern};
use super::{BrokerPolicy, BrokerRule, Verdict};
use crate::error::{Location, PolicyError};
use crate::spec::{BrokerList, PatternEntry, PolicySpec};
use crate::vars::{VarError, Vars};

/// The `[broker]` part of [`PolicySpec::resolve`]. Within each list, a
/// pattern that resolves like an earlier one is dropped.
pub(crate) fn resolve_broker(
    spec: &PolicySpec,
    vars: &Vars,
    canonicaliser: &mut Canonicaliser,
) -> Result<BrokerPolicy, PolicyError> {
    let mut rules = Vec::new();
    let mut seen = HashSet::new();
    for list in BrokerList::ALL {
        for entry in spec.broker_list(list) {
            let resolved = resolve_pattern(list, entry, vars, canonicaliser)?;
            if seen.insert((list as usize, resolved.clone())) {
                rules.push(BrokerRule {
                    verdict: list.verdict(),
                    grants_write: list.grants_write(),
                    pattern: entry.written.clone(),
                    resolved,
                    location: Some(entry.location.clone()),
                });
            }
        }
    }
    // `[filesystem] deny` patterns hold for the broker too: one list, so
    // that what the sandbox hides is never served instead. Exceptions are
    // not carried over (the broker's own lists decide those paths).
    let fs_deny = spec.list(crate::spec::FsList::Deny).iter();
    for entry in fs_deny.filter(|e| crate::protect::is_deny_pattern(&e.written)) {
        if entry.written.starts_with('!') {
            continue;
        }
        let entry = PatternEntry {
            written: entry.written.clone(),
            location: entry.location.clone(),
        };
        let resolved = resolve_pattern(BrokerList::Deny, &entry, vars, canonicaliser)?;
        if seen.insert((BrokerList::Deny as usize, resolved.clone())) {
            rules.push(BrokerRule {
                verdict: Verdict::Deny,
                grants_write: false,
                pattern: entry.written,
                resolved,
                location: Some(entry.location),
            });
        }
    }
    BrokerPolicy::new(rules).map_err(|error| match error.rule {
        Some(rule) => {
            let list = BrokerList::of(rule.verdict, rule.grants_write);
            PolicyError::InvalidValue {
                location: rule.location.unwrap_or(Location::CommandLine),
                key: list.key(),
                message: error.message,
            }
        }
        None => PolicyError::Invalid {
            policy: spec.name().to_string(),
            message: error.message,
        },
    })
}

/// `written` (a pattern of `entry`, under `key`) with its variables
/// substituted; an unknown or malformed variable, or one whose value is not
/// text, is an error naming the entry's file, line and key.
pub(crate) fn substitute(
    vars: &Vars,
    written: &str,
    entry: &PatternEntry,
    key: &str,
) -> Result<String, PolicyError> {
    let invalid = |message: String| PolicyError::InvalidValue {
        location: entry.location.clone(),
        key: key.to_owned(),
        message,
    };
    vars.substitute_pattern(written)
        .map_err(|error| match error {
            VarError::Unknown(variable) => PolicyError::UnknownVariable {
                location: entry.location.clone(),
                key: key.to_owned(),
                variable,
            },
            VarError::Malformed(message) => invalid(message),
            VarError::NotText(variable) => invalid(format!(
                "the value of '{variable}' is not valid UTF-8, which a pattern must be"
            )),
        })
}

/// The pattern with variables substituted and its longest existing literal
/// prefix canonicalised; the rest is kept as written.
fn resolve_pattern(
    list: BrokerList,
    entry: &PatternEntry,
    vars: &Vars,
    canonicaliser: &mut Canonicaliser,
) -> Result<String, PolicyError> {
    let key = list.key();
    let invalid = |message: String| PolicyError::InvalidValue {
        location: entry.location.clone(),
        key: key.clone(),
        message,
    };
    let text = substitute(vars, &entry.written, entry, &key)?;
    let mut pattern = Pattern::parse(&text, &entry.written).map_err(invalid)?;
    if pattern.any_depth {
        return Ok(pattern.text());
    }
    let literal = pattern.literal_prefix();
    let names: Vec<String> = pattern.components[..literal]
        .iter()
        .map(|component| literal_value(component).unwrap_or_default())
        .collect();
    let (canonical, kept) =
        canonicaliser
            .existing(&names)
            .map_err(|(at, error)| PolicyError::PathIo {
                location: entry.location.clone(),
                key: key.clone(),
                written: entry.written.clone(),
                resolved: at,
                error,
            })?;
    let canonical = canonical.to_str().ok_or_else(|| {
        invalid(format!(
            "pattern '{}': path {} is not valid UTF-8, which a pattern must be",
            entry.written,
            canonical.display()
        ))
    })?;
    let mut components: Vec<String> = canonical
        .split('/')
        .filter(|c| !c.is_empty())
        .map(escape)
        .collect();
    components.extend(pattern.components.drain(kept..));
    pattern.components = components;
    Ok(pattern.text())
}

/// Finds the real path of the longest existing prefix of a pattern, or of a
/// path, remembering what it found: the entries of a policy share most of
/// their prefixes (`~`, `/etc`), so each directory is looked up once per
/// resolution (one `statx` each, not a `readlink` of every component of
/// every entry as `realpath` does). One lives through a whole
/// [`PolicySpec::resolve`]; the paths it knows are taken as they were then.
#[derive(Default)]
pub(crate) struct Canonicaliser {
    /// Path as written (no `.` or `..`) to its real path.
    known: HashMap<PathBuf, PathBuf>,
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
            if let Some(known) = self.known.get(&written) {
                real.clone_from(known);
                continue;
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
                Err(error) if stops_lookup(&error) => return Ok((real, count)),
                Err(error) => return Err((candidate, error)),
            }
            self.known.insert(written.clone(), real.clone());
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
