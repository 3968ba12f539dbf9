//! `[filesystem] protect`: paths that make the person's own tools run code
//! later (git hooks and configuration, editor and agent settings, shell
//! start-up files), never writable by the program at any depth, whether or
//! not they exist at launch.
//!
//! A pattern is a `[broker]`-style pattern (`**/.git/hooks/*`,
//! `~/.bashrc`); a pattern protects what it matches *and everything
//! beneath*, so `**/.vscode` (or `**/.vscode/**`, the same) covers every
//! file in every `.vscode`. An entry written `!PATTERN` is an exception: a
//! path it matches itself is not protected (`!**/.git/hooks/*.sample`:
//! what `git init` writes, which git never runs).
//!
//! Two questions are asked of a path ([`Protect::protects`] and
//! [`Protect::leads_to`]): is it protected, and is it on the way to
//! something a pattern could protect (`.git` for `**/.git/hooks/*`)? The
//! enforcement (the supervisor's guard) refuses writing a protected path
//! and making, by rename, link or symlink, a name on the way to one: that
//! is how `mv x .git` after writing `x/hooks/pre-commit` is refused.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use globset::GlobMatcher;

use crate::broker::pattern::{compile, escape, literal_value, Pattern};
use crate::error::{Location, PolicyError};
use crate::spec::{PatternEntry, PolicySpec};
use crate::vars::Vars;

/// One resolved `protect` entry.
#[derive(Clone)]
pub struct ProtectRule {
    /// As written in the policy (without the `!` of an exception).
    pub written: String,
    /// Variables substituted, the existing literal prefix canonicalised.
    pub resolved: String,
    /// `!PATTERN`: what it matches itself is not protected.
    pub except: bool,
    pub location: Option<Location>,
    /// The list it belongs to: `protect`, or `deny` for a `[filesystem]
    /// deny` pattern (see [`resolve_deny_patterns`]).
    pub list: &'static str,
    any_depth: bool,
    /// `/a/**/b` (deny patterns only): the number of components matched
    /// from the root before the `**`; the rest match at any depth below.
    middle: Option<usize>,
    components: Vec<Component>,
}

#[derive(Clone)]
enum Component {
    Literal(Vec<u8>),
    Glob(GlobMatcher),
}

impl Component {
    fn matches(&self, name: &[u8]) -> bool {
        match self {
            Component::Literal(literal) => literal == name,
            Component::Glob(glob) => glob.is_match(OsStr::from_bytes(name)),
        }
    }
}

impl ProtectRule {
    /// Whether `path` (split into components) matches this rule exactly.
    fn matches_exactly(&self, parts: &[&[u8]]) -> bool {
        let m = self.components.len();
        if let Some(head) = self.middle {
            let (above, below) = self.components.split_at(head);
            let tail = parts.len().wrapping_sub(below.len());
            return parts.len() >= m
                && above.iter().zip(parts).all(|(c, p)| c.matches(p))
                && below.iter().zip(&parts[tail..]).all(|(c, p)| c.matches(p));
        }
        if parts.len() < m || (!self.any_depth && parts.len() != m) {
            return false;
        }
        let tail = &parts[parts.len() - m..];
        self.components.iter().zip(tail).all(|(c, p)| c.matches(p))
    }

    /// The shortest prefix of `parts` this rule matches, as a length.
    fn first_match(&self, parts: &[&[u8]]) -> Option<usize> {
        let m = self.components.len();
        if !self.any_depth && self.middle.is_none() {
            return (parts.len() >= m && self.matches_exactly(&parts[..m])).then_some(m);
        }
        (m..=parts.len()).find(|&k| self.matches_exactly(&parts[..k]))
    }

    /// Whether `parts` ends with a proper prefix of this rule's components
    /// (for an anchored rule: is exactly one). Never for a rule with `**`
    /// in the middle, which only `deny` has (it has no use for the question).
    fn leads_to(&self, parts: &[&[u8]]) -> bool {
        if self.middle.is_some() {
            return false;
        }
        (1..self.components.len()).any(|j| {
            let prefix = &self.components[..j];
            if parts.len() < j || (!self.any_depth && parts.len() != j) {
                return false;
            }
            let tail = &parts[parts.len() - j..];
            prefix.iter().zip(tail).all(|(c, p)| c.matches(p))
        })
    }
}

impl ProtectRule {
    /// Where the rule's matches lie: the directory its literal leading
    /// components name (`/ws` for `/ws/**/.env`); `None` for a rule that
    /// matches at any depth anywhere (`**/.env`).
    pub fn root(&self) -> Option<PathBuf> {
        if self.any_depth {
            return None;
        }
        let literal = self
            .components
            .iter()
            .take_while(|c| matches!(c, Component::Literal(_)))
            .take(self.middle.unwrap_or(usize::MAX));
        let mut root = PathBuf::from("/");
        for c in literal {
            if let Component::Literal(name) = c {
                root.push(OsStr::from_bytes(name));
            }
        }
        Some(root)
    }
}

impl fmt::Debug for ProtectRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bang = if self.except { "!" } else { "" };
        write!(f, "{bang}{}", self.resolved)
    }
}

impl fmt::Display for ProtectRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bang = if self.except { "!" } else { "" };
        write!(f, "{} \"{bang}{}\"", self.list, self.written)?;
        if let Some(location) = &self.location {
            write!(f, " ({location})")?;
        }
        Ok(())
    }
}

/// See [`Protect::name_index`].
pub struct NameIndex {
    set: globset::GlobSet,
    /// The rule of each glob in `set`, by index.
    rules: Vec<usize>,
}

/// The resolved `protect` list. Equal when the resolved patterns are.
#[derive(Clone, Debug, Default)]
pub struct Protect {
    rules: Vec<ProtectRule>,
}

impl PartialEq for Protect {
    fn eq(&self, other: &Self) -> bool {
        let key = |p: &Protect| -> Vec<(bool, String)> {
            p.rules
                .iter()
                .map(|r| (r.except, r.resolved.clone()))
                .collect()
        };
        key(self) == key(other)
    }
}

impl Eq for Protect {}

impl Protect {
    /// Compiles resolved patterns (`!` marks an exception); for tests and
    /// for callers that build a list by hand.
    pub fn from_patterns<'a>(
        patterns: impl IntoIterator<Item = &'a str>,
    ) -> Result<Protect, String> {
        let mut rules = Vec::new();
        for text in patterns {
            let (except, text) = split_except(text);
            rules.push(rule(text, text, except, None)?);
        }
        Ok(Protect { rules })
    }

    pub fn rules(&self) -> &[ProtectRule] {
        &self.rules
    }

    /// The rules `keep` keeps, with every exception.
    pub fn filtered(&self, keep: impl Fn(&ProtectRule) -> bool) -> Protect {
        Protect {
            rules: (self.rules.iter())
                .filter(|r| r.except || keep(r))
                .cloned()
                .collect(),
        }
    }

    /// The rules' last components in one glob set, for a walk that asks of
    /// every name whether a rule could match there ([`Protect::matches_at`]).
    pub fn name_index(&self) -> NameIndex {
        let mut builder = globset::GlobSetBuilder::new();
        let mut rules = Vec::new();
        for (at, rule) in self.rules.iter().enumerate().filter(|(_, r)| !r.except) {
            let glob = match rule.components.last() {
                Some(Component::Glob(matcher)) => Some(matcher.glob().clone()),
                Some(Component::Literal(name)) => std::str::from_utf8(name)
                    .ok()
                    .and_then(|name| compile(&escape(name)).ok()),
                None => None,
            };
            if let Some(glob) = glob {
                builder.add(glob);
                rules.push(at);
            }
        }
        NameIndex {
            set: builder
                .build()
                .unwrap_or_else(|_| globset::GlobSet::empty()),
            rules,
        }
    }

    /// Whether a rule matches `path` itself (its last component `name`),
    /// no exception matching it: [`Protect::protects`] for a path whose
    /// ancestors were found to match nothing. `hits` is scratch space.
    pub fn matches_at(
        &self,
        index: &NameIndex,
        name: &[u8],
        path: &Path,
        hits: &mut Vec<usize>,
    ) -> bool {
        index.set.matches_into(OsStr::from_bytes(name), hits);
        if hits.is_empty() {
            return false;
        }
        let parts = split(path);
        let matched = hits
            .iter()
            .any(|&h| self.rules[index.rules[h]].matches_exactly(&parts));
        matched
            && !self
                .rules
                .iter()
                .any(|r| r.except && r.matches_exactly(&parts))
    }

    /// No pattern protects anything.
    pub fn is_empty(&self) -> bool {
        self.rules.iter().all(|r| r.except)
    }

    /// The rule that protects `path` (absolute, canonical), if any: it
    /// matches `path` or a directory above it, and no exception matches
    /// `path` itself unless the protecting match is above it.
    pub fn protects(&self, path: &Path) -> Option<&ProtectRule> {
        let parts = split(path);
        let mut at_path = None;
        for rule in self.rules.iter().filter(|r| !r.except) {
            match rule.first_match(&parts) {
                Some(k) if k < parts.len() => return Some(rule),
                Some(_) => at_path = at_path.or(Some(rule)),
                None => {}
            }
        }
        let excepted = self
            .rules
            .iter()
            .any(|r| r.except && r.matches_exactly(&parts));
        if excepted {
            None
        } else {
            at_path
        }
    }

    /// The rule `path` leads to: `path` is a directory some pattern could
    /// protect something beneath (`/ws/.git` for `**/.git/hooks/*`,
    /// `/home/u/.config` for `~/.config/autostart`).
    pub fn leads_to(&self, path: &Path) -> Option<&ProtectRule> {
        let parts = split(path);
        self.rules
            .iter()
            .filter(|r| !r.except)
            .find(|r| r.leads_to(&parts))
    }
}

fn split(path: &Path) -> Vec<&[u8]> {
    path.as_os_str()
        .as_bytes()
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect()
}

fn split_except(written: &str) -> (bool, &str) {
    match written.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, written),
    }
}

/// Checks a pattern as written, before its variables are known.
pub(crate) fn check_written(written: &str) -> Result<(), String> {
    crate::broker::check_written(split_except(written).1)
}

fn rule(
    text: &str,
    written: &str,
    except: bool,
    location: Option<Location>,
) -> Result<ProtectRule, String> {
    rule_in("protect", text, written, except, location)
}

/// Compiles one pattern of `list` (`protect` or `deny`). `a/**/b`, depth
/// in the middle, is for `deny` only, and once: said rather than matched
/// wrongly.
fn rule_in(
    list: &'static str,
    text: &str,
    written: &str,
    except: bool,
    location: Option<Location>,
) -> Result<ProtectRule, String> {
    let mut pattern = Pattern::parse(text, written)?;
    let stars: Vec<usize> = (pattern.components.iter().enumerate())
        .filter(|(_, c)| *c == "**")
        .map(|(at, _)| at)
        .collect();
    let middle = match (list, stars.as_slice()) {
        (_, []) => None,
        ("deny", [at]) if !pattern.any_depth => {
            pattern.components.remove(*at);
            Some(*at)
        }
        ("deny", _) => {
            return Err(format!(
                "pattern '{written}': a deny pattern has one '**', at its start \
                 (`**/.env`) or after its root (`$WORKSPACE/**/.env`)"
            ))
        }
        _ => {
            return Err(format!(
                "pattern '{written}': '**' may only start or end a protect pattern"
            ))
        }
    };
    let components = pattern
        .components
        .iter()
        .map(|c| match literal_value(c) {
            Some(literal) => Ok(Component::Literal(literal.into_bytes())),
            None => compile(c)
                .map(|glob| Component::Glob(glob.compile_matcher()))
                .map_err(|e| format!("invalid pattern '{written}': {}", e.kind())),
        })
        .collect::<Result<Vec<_>, String>>()?;
    let resolved = match middle {
        Some(at) => {
            let (above, below) = pattern.components.split_at(at);
            format!("/{}/**/{}", above.join("/"), below.join("/"))
        }
        None => pattern.text(),
    };
    Ok(ProtectRule {
        written: written.to_string(),
        resolved,
        except,
        location,
        list,
        any_depth: pattern.any_depth,
        middle,
        components,
    })
}

/// The `protect` part of [`PolicySpec::resolve`].
pub(crate) fn resolve_protect(spec: &PolicySpec, vars: &Vars) -> Result<Protect, PolicyError> {
    let mut rules: Vec<ProtectRule> = Vec::new();
    for entry in &spec.protect {
        let r = resolve_entry(entry, vars)?;
        if !rules
            .iter()
            .any(|o| o.except == r.except && o.resolved == r.resolved)
        {
            rules.push(r);
        }
    }
    Ok(Protect { rules })
}

/// Whether a `[filesystem] deny` entry as written is a pattern (`**`, or
/// an exception `!PATTERN`) rather than a path.
pub(crate) fn is_deny_pattern(written: &str) -> bool {
    written.starts_with('!') || written.contains("**")
}

/// The `[filesystem] deny` entries that are patterns, compiled like
/// `protect`'s (see [`is_deny_pattern`]).
pub(crate) fn resolve_deny_patterns(
    entries: &[crate::spec::PathEntry],
    vars: &Vars,
) -> Result<Protect, PolicyError> {
    let mut rules: Vec<ProtectRule> = Vec::new();
    for entry in entries.iter().filter(|e| is_deny_pattern(&e.written)) {
        // Checked as written first, as `protect` entries are when parsed:
        // `..` must not be canonicalised away with the prefix.
        check_written(&entry.written).map_err(|message| PolicyError::InvalidValue {
            location: entry.location.clone(),
            key: "filesystem.deny".to_string(),
            message,
        })?;
        let as_pattern = PatternEntry {
            written: entry.written.clone(),
            location: entry.location.clone(),
        };
        let r = resolve_entry_in("deny", &as_pattern, vars)?;
        if !rules
            .iter()
            .any(|o| o.except == r.except && o.resolved == r.resolved)
        {
            rules.push(r);
        }
    }
    Ok(Protect { rules })
}

fn resolve_entry(entry: &PatternEntry, vars: &Vars) -> Result<ProtectRule, PolicyError> {
    resolve_entry_in("protect", entry, vars)
}

fn resolve_entry_in(
    list: &'static str,
    entry: &PatternEntry,
    vars: &Vars,
) -> Result<ProtectRule, PolicyError> {
    let key = format!("filesystem.{list}");
    let invalid = |message: String| PolicyError::InvalidValue {
        location: entry.location.clone(),
        key: key.clone(),
        message,
    };
    let (except, written) = split_except(&entry.written);
    let text = crate::broker::resolve::substitute(vars, written, entry, &key)?;
    let text = canonical_prefix(&text);
    rule_in(list, &text, written, except, Some(entry.location.clone())).map_err(invalid)
}

/// An anchored pattern with its longest existing literal prefix
/// canonicalised (a home directory behind a symlink), so it matches the
/// kernel's names for paths.
fn canonical_prefix(text: &str) -> String {
    if !text.starts_with('/') {
        return text.to_string();
    }
    let parts: Vec<&str> = text.split('/').filter(|c| !c.is_empty()).collect();
    let literal = parts
        .iter()
        .take_while(|c| literal_value(c).as_deref() == Some(**c))
        .count();
    for keep in (1..=literal).rev() {
        let prefix: PathBuf = std::iter::once("/")
            .chain(parts[..keep].iter().copied())
            .collect();
        if let Ok(canonical) = std::fs::canonicalize(&prefix) {
            if let Some(c) = canonical.to_str() {
                let mut out = c.trim_end_matches('/').to_string();
                for rest in &parts[keep..] {
                    out.push('/');
                    out.push_str(rest);
                }
                return out;
            }
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Protect {
        Protect::from_patterns([
            "**/.git/hooks/*",
            "!**/.git/hooks/*.sample",
            "**/.git/config",
            "**/.vscode/**",
            "/home/u/.bashrc",
            "/home/u/.config/autostart",
        ])
        .unwrap()
    }

    #[test]
    fn patterns_protect_what_they_match_and_everything_beneath_at_any_depth() {
        let p = list();
        for yes in [
            "/ws/.git/hooks/pre-commit",
            "/ws/a/b/sub/.git/hooks/post-checkout",
            "/ws/.git/hooks/pre-commit.sample/x",
            "/ws/.git/config",
            "/tmp/x/.git/config",
            "/ws/.vscode",
            "/ws/pkg/.vscode/tasks.json",
            "/home/u/.bashrc",
            "/home/u/.config/autostart/evil.desktop",
        ] {
            assert!(p.protects(Path::new(yes)).is_some(), "{yes}");
        }
        for no in [
            "/ws/.git/hooks/pre-commit.sample",
            "/ws/.git/hooks",
            "/ws/.git",
            "/ws/.git/config.lock",
            "/ws/git/config",
            "/ws/hooks/pre-commit",
            "/ws/home/u/.bashrc",
            "/home/u/.bashrc2",
        ] {
            assert!(p.protects(Path::new(no)).is_none(), "{no}");
        }
    }

    #[test]
    fn names_on_the_way_to_a_protected_path_are_found() {
        let p = list();
        for yes in ["/ws/.git", "/ws/x/.git/hooks", "/home/u/.config", "/home/u"] {
            assert!(p.leads_to(Path::new(yes)).is_some(), "{yes}");
        }
        for no in [
            "/ws/x",
            "/ws/.gitx",
            "/ws/hooks",
            "/home/u/x/.config",
            "/ws/.vscode",
        ] {
            assert!(p.leads_to(Path::new(no)).is_none(), "{no}");
        }
    }

    #[test]
    fn double_stars_in_the_middle_are_refused() {
        assert!(Protect::from_patterns(["**/a/**/b"]).is_err());
        assert!(Protect::from_patterns(["a/b"]).is_err());
    }
}
