//! [`PolicySpec::resolve`]: variables substituted, globs expanded, paths
//! canonicalised and checked.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::hash::Hash;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::broker::canonical::Canonicaliser;
use crate::broker::pattern::NameMatcher;
use crate::broker::resolve::resolve_broker;
use crate::error::{Location, PolicyError};
use crate::model::{EnvPolicy, FsPolicy, Layers, Nested, Policy};
use crate::spec::{FsList, PathEntry, PolicySpec};
use crate::vars::{VarError, Vars};

/// Characters that make the last component of a `deny` or `read_only` entry a glob.
pub(crate) const GLOB_CHARS: [char; 4] = ['*', '?', '[', '{'];

impl PolicySpec {
    /// Substitutes variables, expands globs in the last component of `deny`
    /// and `read_only` entries (one directory listing per entry),
    /// canonicalises every path and checks that it exists.
    ///
    /// A missing `read`, `write` or `execute` path is an error unless the
    /// entry is optional; missing optional entries and missing `deny` or
    /// `read_only` targets are recorded in [`FsPolicy::absent`]. Each list is
    /// de-duplicated, keeping the first occurrence. `[environment] set`
    /// values have their variables substituted too.
    ///
    /// `[broker]` patterns need not exist: each has its variables
    /// substituted and its longest existing literal prefix canonicalised, and
    /// is compiled for [`crate::BrokerPolicy::decide`]. Repeats within a
    /// `[broker]` list are dropped too.
    pub fn resolve(&self, vars: &Vars) -> Result<Policy, PolicyError> {
        let mut filesystem = FsPolicy::default();
        let mut canonicaliser = Canonicaliser::default();
        for list in FsList::ALL {
            for entry in self.list(list) {
                if list == FsList::Deny && crate::protect::is_deny_pattern(&entry.written) {
                    continue;
                }
                resolve_entry(list, entry, vars, &mut filesystem, &mut canonicaliser)?;
            }
        }
        for paths in [
            &mut filesystem.read,
            &mut filesystem.write,
            &mut filesystem.execute,
            &mut filesystem.read_only,
            &mut filesystem.deny,
            &mut filesystem.absent,
            &mut filesystem.absent_read_only,
        ] {
            dedupe(paths);
        }
        filesystem.protect = crate::protect::resolve_protect(self, vars, &mut canonicaliser)?;
        filesystem.deny_patterns = crate::protect::resolve_deny_patterns(
            self.list(FsList::Deny),
            vars,
            &mut canonicaliser,
        )?;
        let mut pass = self.env_pass.clone();
        dedupe(&mut pass);
        let mut set = BTreeMap::new();
        for (name, value) in &self.env_set {
            let key = format!("environment.set.{name}");
            let resolved = substitute(&value.written, &value.location, &key, vars)?
                .into_string()
                .ok()
                .filter(|text| !text.contains('\0'))
                .ok_or_else(|| invalid(&value.location, &key, "value is not valid text"))?;
            set.insert(name.clone(), resolved);
        }
        Ok(Policy {
            name: self.name.clone(),
            filesystem,
            network: self.network.clone().unwrap_or_default(),
            limits: self.limits,
            env: EnvPolicy { pass, set },
            layers: Layers {
                best_effort: self.best_effort.clone(),
                nested_best_effort: self
                    .nested_best_effort
                    .clone()
                    .unwrap_or_else(|| Layers::DEFAULT_NESTED_BEST_EFFORT.into_iter().collect()),
            },
            nested: self.nested.unwrap_or(Nested::PLATFORM_DEFAULT),
            broker: resolve_broker(self, vars, &mut canonicaliser)?,
            transparent: self.transparent.unwrap_or(false),
            ptrace: self.ptrace.unwrap_or_default(),
        })
    }
}

/// Where the resolved paths of one entry go.
fn output(filesystem: &mut FsPolicy, list: FsList) -> &mut Vec<PathBuf> {
    match list {
        FsList::Read => &mut filesystem.read,
        FsList::Write => &mut filesystem.write,
        FsList::Execute => &mut filesystem.execute,
        FsList::ReadOnly => &mut filesystem.read_only,
        FsList::Deny => &mut filesystem.deny,
    }
}

fn resolve_entry(
    list: FsList,
    entry: &PathEntry,
    vars: &Vars,
    filesystem: &mut FsPolicy,
    canonicaliser: &mut Canonicaliser,
) -> Result<(), PolicyError> {
    let key = list.key();
    let path = substitute_path(entry, &key, vars)?;
    check_glob_placement(list, entry, &path)?;
    if entry.create {
        creatable_under(list, entry, &path, vars)?;
    }
    let written_last = entry.written.rsplit('/').next().unwrap_or_default();
    if list.narrows() && written_last.contains(GLOB_CHARS) {
        return expand_glob(list, entry, &path, filesystem);
    }
    match canonicaliser.canonicalize(&path) {
        Ok(canonical) => {
            if !list.narrows() && canonical != path {
                add_links(&path, &mut filesystem.links);
            }
            output(filesystem, list).push(canonical)
        }
        // A `create` entry is made before launch (`sluice run`); resolved
        // without that (`policy show`), it is reported absent.
        Err(error) if is_missing(&error) && (entry.optional || entry.create || list.narrows()) => {
            if list == FsList::ReadOnly {
                filesystem.absent_read_only.push(path.clone());
            }
            filesystem.absent.push(path)
        }
        Err(error) if is_missing(&error) => {
            return Err(PolicyError::MissingPath {
                location: entry.location.clone(),
                key,
                written: entry.written.clone(),
                resolved: path,
            })
        }
        Err(error) => return Err(path_io(entry, &key, path, error)),
    }
    Ok(())
}

/// One `[filesystem]` entry and the paths it stands for once resolved:
/// what `sluice explain` names as the rule that decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsRule {
    /// The list: `read`, `write`, `execute`, `read_only` or `deny`.
    pub list: &'static str,
    /// As written (`~/.ssh`, `$WORKSPACE/.env.*`).
    pub written: String,
    pub location: Location,
    /// Canonical paths (a glob's matches); empty when absent at resolution.
    pub paths: Vec<PathBuf>,
    /// Substituted but missing at resolution (an optional or `create`
    /// entry, a deny or read-only target not there yet).
    pub absent: Vec<PathBuf>,
}

impl PolicySpec {
    /// Every `[filesystem]` entry, each resolved on its own exactly as
    /// [`PolicySpec::resolve`] resolves it, parent policies' first.
    pub fn fs_rules(&self, vars: &Vars) -> Result<Vec<FsRule>, PolicyError> {
        let mut rules = Vec::new();
        for list in FsList::ALL {
            for entry in self.list(list) {
                // A `deny` pattern stands for no path of its own: it is
                // matched where the walk applies it
                // ([`FsPolicy::deny_pattern_for`]).
                if list == FsList::Deny && crate::protect::is_deny_pattern(&entry.written) {
                    continue;
                }
                let mut scratch = FsPolicy::default();
                resolve_entry(
                    list,
                    entry,
                    vars,
                    &mut scratch,
                    &mut Canonicaliser::default(),
                )?;
                rules.push(FsRule {
                    list: list.name(),
                    written: entry.written.clone(),
                    location: entry.location.clone(),
                    paths: std::mem::take(output(&mut scratch, list)),
                    absent: scratch.absent,
                });
            }
        }
        Ok(rules)
    }

    /// The directories of `create = true` entries that do not exist yet,
    /// variables substituted, each with the directory it must be made
    /// beneath (`$HOME`, `$WORKSPACE` or `$TMPDIR`, as in `vars`): the
    /// caller makes them there, owned by the person, mode 0700, following no
    /// symlink below that directory.
    pub fn dirs_to_create(&self, vars: &Vars) -> Result<Vec<(PathBuf, PathBuf)>, PolicyError> {
        let mut out = Vec::new();
        for list in FsList::ALL {
            for entry in self.list(list).iter().filter(|e| e.create) {
                let path = substitute_path(entry, &list.key(), vars)?;
                let base = creatable_under(list, entry, &path, vars)?;
                let exists = fs::symlink_metadata(&path).is_ok();
                if !exists && !out.iter().any(|(_, p)| *p == path) {
                    out.push((base, path));
                }
            }
        }
        Ok(out)
    }
}

/// Where a `create = true` entry may be made: only in `read`, `write` and
/// `execute`, only strictly beneath `$HOME`, `$WORKSPACE` or `$TMPDIR`, and
/// named without `.` or `..`. Returns the directory it lies beneath.
fn creatable_under(
    list: FsList,
    entry: &PathEntry,
    path: &Path,
    vars: &Vars,
) -> Result<PathBuf, PolicyError> {
    let key = list.key();
    if list.narrows() {
        let message = "create = true is for read, write and execute entries (a deny or \
                       read_only path needs no directory)";
        return Err(invalid(&entry.location, &key, message));
    }
    use std::path::Component;
    let plain = path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let base = [&vars.home, &vars.workspace, &vars.tmpdir]
        .into_iter()
        .find(|base| path.starts_with(base) && path != base.as_path());
    match base {
        Some(base) if plain => Ok(base.clone()),
        _ => {
            let message = format!(
                "create = true: '{}' ({}) is not beneath ~, $WORKSPACE or $TMPDIR; sluice \
                 makes directories only there (make it yourself, or drop create)",
                entry.written,
                path.display()
            );
            Err(invalid(&entry.location, &key, &message))
        }
    }
}

/// Records every symlink met on the way along `path` (which exists), each
/// at its real place (parent canonicalised) with its target as read.
fn add_links(path: &Path, links: &mut Vec<(PathBuf, PathBuf)>) {
    let mut walked = PathBuf::new();
    for component in path.components() {
        walked.push(component);
        let (Some(parent), Some(name)) = (walked.parent(), walked.file_name()) else {
            continue;
        };
        let Ok(real) = fs::canonicalize(parent).map(|parent| parent.join(name)) else {
            continue;
        };
        let is_link = fs::symlink_metadata(&real).is_ok_and(|m| m.file_type().is_symlink());
        if let (true, Ok(target)) = (is_link, fs::read_link(&real)) {
            if !links.iter().any(|(link, _)| *link == real) {
                links.push((real, target));
            }
        }
    }
}

/// Refuses a glob where it would not be expanded, so that no entry is
/// accepted that does not hold as written (`deny = ["$WORKSPACE/**/x"]`
/// was taken as a literal path that does not exist: nothing was denied).
/// Only the last component of a `deny` or `read_only` entry is a glob;
/// elsewhere glob characters are accepted only where the path exists as
/// written (a directory whose name holds a `[`). `**` is refused in those
/// two lists: a path there already covers its whole tree.
fn check_glob_placement(list: FsList, entry: &PathEntry, path: &Path) -> Result<(), PolicyError> {
    let written = without_variables(&entry.written);
    let (dirs, last) = written.rsplit_once('/').unwrap_or(("", &written));
    let refuse = |message: String| Err(invalid(&entry.location, &list.key(), &message));
    let exists = |p: Option<&Path>| p.is_some_and(|p| fs::symlink_metadata(p).is_ok());
    let key = list.key();
    let shown = &entry.written;
    if !list.narrows() {
        if written.contains(GLOB_CHARS) && !exists(Some(path)) {
            return refuse(format!(
                "'{shown}' does not exist, and globs are not expanded in {key}: list each path \
                 (a directory covers everything beneath it); a name that really holds `*`, `?`, \
                 `[` or `{{` is accepted once it exists"
            ));
        }
        return Ok(());
    }
    if written.contains("**") {
        let top = shown.split("/**").next().unwrap_or(shown);
        let broker = match last.contains('*') {
            true => String::new(),
            false => format!(
                " (to keep the broker from serving it anywhere, add '**/{last}' to [broker] deny)"
            ),
        };
        return refuse(format!(
            "'{shown}' is not enforced as written: `**` is not expanded in {key}; a path \
             there covers its whole tree (write '{top}'), and a name at every depth cannot be \
             {what} by the sandbox: list each path{broker}",
            what = if list == FsList::Deny {
                "denied"
            } else {
                "kept read-only"
            },
        ));
    }
    if dirs.contains(GLOB_CHARS) && !exists(path.parent()) {
        return refuse(format!(
            "'{shown}' is not enforced as written: only its last component may be a glob \
             (the directories are taken literally, and '{}' does not exist); list each \
             directory's path",
            path.parent()
                .map_or(String::new(), |p| p.display().to_string())
        ));
    }
    Ok(())
}

/// The written text with every variable (`$NAME`, `${NAME}`, `$$`) taken
/// out: what the person wrote literally, where glob characters count.
fn without_variables(written: &str) -> String {
    let mut out = String::with_capacity(written.len());
    let mut rest = written;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        rest = if let Some(tail) = after.strip_prefix('$') {
            tail
        } else if let Some(braced) = after.strip_prefix('{') {
            braced.find('}').map_or("", |end| &braced[end + 1..])
        } else {
            let name = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            &after[name..]
        };
    }
    out.push_str(rest);
    out
}

/// Adds every existing entry of the parent directory whose name matches
/// the last component of `pattern`; records the pattern as absent if none does.
fn expand_glob(
    list: FsList,
    entry: &PathEntry,
    pattern: &Path,
    filesystem: &mut FsPolicy,
) -> Result<(), PolicyError> {
    let key = list.key();
    let (Some(parent), Some(glob)) = (pattern.parent(), pattern.file_name()) else {
        return Err(invalid(
            &entry.location,
            &key,
            "a glob needs a parent directory",
        ));
    };
    let glob = glob.to_string_lossy();
    // Matched by hand for `*` and `?` (`NameMatcher`): no regex compiled at
    // every launch for `/etc/ssh/ssh_host_*_key`.
    let matcher = NameMatcher::new(&glob).map_err(|e| {
        invalid(
            &entry.location,
            &key,
            &format!("invalid glob '{glob}': {}", e.kind()),
        )
    })?;
    let parent = match fs::canonicalize(parent) {
        Ok(parent) => parent,
        Err(error) if is_missing(&error) => {
            filesystem.absent.push(pattern.to_path_buf());
            return Ok(());
        }
        Err(error) => return Err(path_io(entry, &key, parent.to_path_buf(), error)),
    };
    let listing_error = |error| path_io(entry, &key, parent.clone(), error);
    let mut matches = Vec::new();
    for child in fs::read_dir(&parent).map_err(listing_error)? {
        let name = child.map_err(listing_error)?.file_name();
        if matcher.is_match(name.as_bytes()) {
            matches.push(parent.join(name));
        }
    }
    matches.sort();
    if matches.is_empty() {
        filesystem.absent.push(parent.join(&*glob));
    }
    for found in matches {
        match fs::canonicalize(&found) {
            Ok(canonical) => output(filesystem, list).push(canonical),
            // A dangling symlink, or removed since the listing.
            Err(error) if is_missing(&error) => filesystem.absent.push(found),
            Err(error) => return Err(path_io(entry, &key, found, error)),
        }
    }
    Ok(())
}

/// The entry's path with variables substituted; it must be absolute.
fn substitute_path(entry: &PathEntry, key: &str, vars: &Vars) -> Result<PathBuf, PolicyError> {
    let written = &entry.written;
    let anchored = written.starts_with(['/', '$']) || written == "~" || written.starts_with("~/");
    if !anchored {
        let message = format!("path '{written}' is relative; start it with /, ~ or a variable");
        return Err(invalid(&entry.location, key, &message));
    }
    let path = PathBuf::from(substitute(written, &entry.location, key, vars)?);
    if !path.is_absolute() {
        let message = format!(
            "path '{written}' ({}) is relative; variables must hold absolute paths",
            path.display()
        );
        return Err(invalid(&entry.location, key, &message));
    }
    Ok(path)
}

fn substitute(
    text: &str,
    location: &Location,
    key: &str,
    vars: &Vars,
) -> Result<std::ffi::OsString, PolicyError> {
    vars.substitute(text).map_err(|error| match error {
        VarError::Unknown(variable) => PolicyError::UnknownVariable {
            location: location.clone(),
            key: key.to_string(),
            variable,
        },
        VarError::Malformed(message) => invalid(location, key, &message),
        // Only pattern substitution needs text.
        VarError::NotText(variable) => {
            invalid(location, key, &format!("'{variable}' is not valid UTF-8"))
        }
    })
}

fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn invalid(location: &Location, key: &str, message: &str) -> PolicyError {
    PolicyError::InvalidValue {
        location: location.clone(),
        key: key.to_string(),
        message: message.to_string(),
    }
}

fn path_io(entry: &PathEntry, key: &str, resolved: PathBuf, error: io::Error) -> PolicyError {
    PolicyError::PathIo {
        location: entry.location.clone(),
        key: key.to_string(),
        written: entry.written.clone(),
        resolved,
        error,
    }
}

/// Removes repeats, keeping the first occurrence of each item in place.
fn dedupe<T: Clone + Eq + Hash>(items: &mut Vec<T>) {
    let mut seen = HashSet::new();
    items.retain(|item| seen.insert(item.clone()));
}
