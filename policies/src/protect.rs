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
//! what `git init` writes, which git never runs). An exception written
//! `!PATTERN/**` is a subtree exception: what it matches and everything
//! beneath is not protected by a pattern that matches *above* it
//! (`!~/.claude/projects/**` under `**/.claude`: an agent's transcripts,
//! not its settings); a pattern matching at the same depth or deeper still
//! protects (`~/.claude/projects/x/.git/hooks/pre-commit`).
//!
//! Two questions are asked of a path ([`Protect::protects`] and
//! [`Protect::leads_to`]): is it protected, and is it on the way to
//! something a pattern could protect (`.git` for `**/.git/hooks/*`)? The
//! enforcement (the supervisor's guard) refuses writing a protected path
//! and making, by rename, link or symlink, a name on the way to one: that
//! is how `mv x .git` after writing `x/hooks/pre-commit` is refused.

use crate::broker::canonical::Canonicaliser;
use crate::broker::pattern::{is_plain, literal_value, NameMatcher, Pattern};
use crate::error::{Location, PolicyError};
use crate::spec::{PatternEntry, PolicySpec};
use crate::vars::Vars;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The last components of the rules [`ProtectRule::pinned`] leaves out:
/// Python's bytecode, compiled again from the source when it is missing.
const BYTECODE: [&str; 2] = ["*.pyc", "*.pyo"];

/// One resolved `protect` entry.
#[derive(Clone)]
pub struct ProtectRule {
    /// As written in the policy (without the `!` of an exception).
    pub written: String,
    /// Variables substituted, the existing literal prefix canonicalised.
    pub resolved: String,
    /// `!PATTERN`: what it matches itself is not protected.
    pub except: bool,
    /// `!PATTERN/**`: nor anything beneath it, from a pattern matching
    /// above it.
    pub subtree: bool,
    pub location: Option<Location>,
    /// The list it belongs to: `protect`, or `deny` for a `[filesystem]
    /// deny` pattern (see [`resolve_deny_patterns`]).
    pub list: &'static str,
    any_depth: bool,
    /// `a/**/b`: where the `**` stands in `components` (which hold it not):
    /// the components before it are the head, those after it the tail.
    deep: Option<usize>,
    components: Vec<Component>,
}

#[derive(Clone)]
enum Component {
    Literal(Vec<u8>),
    Glob(NameMatcher),
}

impl Component {
    fn matches(&self, name: &[u8]) -> bool {
        match self {
            Component::Literal(literal) => literal == name,
            Component::Glob(matcher) => matcher.is_match(name),
        }
    }
}

/// Whether `parts` is matched by `pattern` whole (`any_depth`: or ends with
/// a match).
fn ends_with(pattern: &[Component], parts: &[&[u8]], any_depth: bool) -> bool {
    let m = pattern.len();
    if parts.len() < m || (!any_depth && parts.len() != m) {
        return false;
    }
    let tail = &parts[parts.len() - m..];
    pattern.iter().zip(tail).all(|(c, p)| c.matches(p))
}

/// Where `head` matches in `parts` (at the start only unless `any_depth`):
/// the lengths of the prefixes of `parts` that end with a match.
fn head_ends<'p>(
    head: &'p [Component],
    parts: &'p [&[u8]],
    any_depth: bool,
) -> impl Iterator<Item = usize> + 'p {
    let h = head.len();
    (h..=parts.len())
        .filter(move |&k| any_depth || k == h)
        .filter(move |&k| head.iter().zip(&parts[k - h..k]).all(|(c, p)| c.matches(p)))
}

impl ProtectRule {
    /// The resolved pattern as a policy would write it: `!` for an
    /// exception, `/**` for a subtree exception.
    pub fn as_written_resolved(&self) -> String {
        let bang = if self.except { "!" } else { "" };
        let tree = if self.subtree { "/**" } else { "" };
        format!("{bang}{}{tree}", self.resolved)
    }

    /// Whether the launch pins what this rule protects where it exists at
    /// launch (a read-only mount each: `sluice run`'s `pin_protected`).
    /// Not for Python's bytecode (`**/*.pyc`, `*.pyo`): a project holds
    /// thousands, each a mount, and removing one does no harm, Python
    /// compiles the source again; writing one is what the guard refuses.
    pub fn pinned(&self) -> bool {
        let last = self.resolved.rsplit('/').next().unwrap_or_default();
        !BYTECODE.contains(&last)
    }

    /// Whether `path` (split into components) matches this rule exactly.
    fn matches_exactly(&self, parts: &[&[u8]]) -> bool {
        let Some(h) = self.deep else {
            return ends_with(&self.components, parts, self.any_depth);
        };
        self.deep_match(&self.components[h..], parts)
    }

    /// `head/**/tail` matches `parts` whole (any depth before the head if
    /// the rule is `**/`).
    fn deep_match(&self, tail: &[Component], parts: &[&[u8]]) -> bool {
        let h = self.deep.unwrap_or(0);
        let t = tail.len();
        if parts.len() < h + t || !ends_with(tail, parts, true) {
            return false;
        }
        let before = &parts[..parts.len() - t];
        head_ends(&self.components[..h], before, self.any_depth)
            .next()
            .is_some()
    }

    /// The shortest prefix of `parts` this rule matches, as a length.
    fn first_match(&self, parts: &[&[u8]]) -> Option<usize> {
        let m = self.components.len();
        if !self.any_depth && self.deep.is_none() {
            return (parts.len() >= m && self.matches_exactly(&parts[..m])).then_some(m);
        }
        (m..=parts.len()).find(|&k| self.matches_exactly(&parts[..k]))
    }

    /// Whether `parts` ends with a proper prefix of this rule's components
    /// (for an anchored rule: is exactly one). For `head/**/tail`: a
    /// prefix of the head, the head itself, or the head, anything, and a
    /// proper prefix of the tail (not what lies beneath the head alone:
    /// that is [`Self::region`]).
    fn leads_to(&self, parts: &[&[u8]]) -> bool {
        let Some(h) = self.deep else {
            return (1..self.components.len())
                .any(|j| ends_with(&self.components[..j], parts, self.any_depth));
        };
        let m = self.components.len();
        (1..=h).any(|j| ends_with(&self.components[..j], parts, self.any_depth))
            || (h + 1..m).any(|j| self.deep_match(&self.components[h..j], parts))
    }

    /// For `head/**/tail`: the directory matching the head that `parts` lies
    /// strictly beneath (the outermost), as a length of `parts`.
    fn region(&self, parts: &[&[u8]]) -> Option<usize> {
        let h = self.deep?;
        head_ends(&self.components[..h], parts, self.any_depth).find(|&k| k < parts.len())
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
            .take(self.deep.unwrap_or(usize::MAX));
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
        write!(f, "{}", self.as_written_resolved())
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
    /// The rules (not exceptions) whose last component is a literal name,
    /// by that name: each with the component before it where the two are
    /// always adjacent (no `**` between), and its index. One lookup per
    /// name however many there are.
    literal: std::collections::HashMap<Vec<u8>, Vec<(Option<Component>, usize)>>,
    /// The others: their last component, a glob, then the same.
    glob: Vec<(Component, Option<Component>, usize)>,
}

/// The resolved `protect` list. Equal when the resolved patterns are.
#[derive(Clone, Debug, Default)]
pub struct Protect {
    rules: Vec<ProtectRule>,
}

impl PartialEq for Protect {
    fn eq(&self, other: &Self) -> bool {
        let key = |p: &Protect| -> Vec<(bool, bool, String)> {
            p.rules
                .iter()
                .map(|r| (r.except, r.subtree, r.resolved.clone()))
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
            if except && text.ends_with("/**") {
                rules.last_mut().expect("just pushed").subtree = true;
            }
        }
        Ok(Protect { rules })
    }

    pub fn rules(&self) -> &[ProtectRule] {
        &self.rules
    }

    /// Protects `path` and everything beneath it, as a resolved `protect`
    /// entry naming it would (the launch adds what it learns after
    /// resolution: a nested repository's hooks directory). Its glob
    /// characters are escaped (a configuration naming `tools/ext[1].py` or
    /// `hooks{old}` left it unprotected); a path that is not UTF-8 cannot
    /// be named by a pattern: an error.
    pub fn add_tree(&mut self, path: &Path) -> Result<(), String> {
        let text = path
            .to_str()
            .map(crate::rule::escape)
            .ok_or_else(|| format!("{}: a pattern cannot name it", path.display()))?;
        self.rules.push(rule(&text, &text, false, None)?);
        Ok(())
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

    /// The rules the launch pins by (see [`ProtectRule::pinned`]), without
    /// the exceptions for bytecode either (`!$TMPDIR/**/*.pyc`: a session's
    /// own path, which would make the walk's cache key new at each launch).
    pub fn pinned(&self) -> Protect {
        Protect {
            rules: self.rules.iter().filter(|r| r.pinned()).cloned().collect(),
        }
    }

    /// The rules' last components, for a walk that asks of every name
    /// whether a rule could match there ([`Protect::matches_at`]).
    pub fn name_index(&self) -> NameIndex {
        let mut index = NameIndex {
            literal: std::collections::HashMap::new(),
            glob: Vec::new(),
        };
        for (at, rule) in self.rules.iter().enumerate().filter(|(_, r)| !r.except) {
            let n = rule.components.len();
            // `head/**/last` leaves the parent free.
            let parent =
                (n >= 2 && rule.deep != Some(n - 1)).then(|| rule.components[n - 2].clone());
            match rule.components.last() {
                Some(Component::Literal(name)) => index
                    .literal
                    .entry(name.clone())
                    .or_default()
                    .push((parent, at)),
                Some(last) => index.glob.push((last.clone(), parent, at)),
                None => {}
            }
        }
        index
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
        hits.clear();
        // The parent's name first, where the rule fixes it: `*` of
        // `**/.git/hooks/*` matches every name, its `hooks` turns nearly
        // all of them away at once, before any glob is run.
        let bytes = path.as_os_str().as_bytes();
        let dir = &bytes[..bytes.len().saturating_sub(name.len() + 1)];
        let parent = &dir[dir.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)..];
        let fits = |before: &Option<Component>| before.as_ref().is_none_or(|b| b.matches(parent));
        if let Some(rules) = index.literal.get(name) {
            hits.extend(rules.iter().filter(|(b, _)| fits(b)).map(|(_, rule)| *rule));
        }
        hits.extend(
            (index.glob.iter())
                .filter(|(last, before, _)| fits(before) && last.matches(name))
                .map(|(_, _, rule)| *rule),
        );
        if hits.is_empty() {
            return false;
        }
        let parts = split(path);
        let matched = hits.iter().any(|&h| self.rules[h].matches_exactly(&parts));
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
        // The deepest subtree exception matching the path or a directory
        // above it: a pattern protects only by a match at that depth or
        // deeper (the most specific wins; a tie protects).
        let floor = self
            .rules
            .iter()
            .filter(|r| r.except && r.subtree)
            .filter_map(|r| {
                (1..=parts.len())
                    .rev()
                    .find(|&j| r.matches_exactly(&parts[..j]))
            })
            .max()
            .unwrap_or(0);
        let mut at_path = None;
        for rule in self.rules.iter().filter(|r| !r.except) {
            let first = if floor == 0 {
                rule.first_match(&parts)
            } else {
                (floor..=parts.len()).find(|&k| rule.matches_exactly(&parts[..k]))
            };
            match first {
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

    /// Whether `path` itself is kept from a rule matching it only by an
    /// exception (`/ws/.git/logs/HEAD` under `**/HEAD` and
    /// `!**/.git/logs/HEAD`): a place the list names as allowed.
    pub fn excepted(&self, path: &Path) -> bool {
        let parts = split(path);
        let matching = |except: bool| {
            (self.rules.iter()).any(|r| r.except == except && r.matches_exactly(&parts))
        };
        matching(true) && matching(false)
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

    /// Whether a subtree exception (`!~/.claude/projects/**`) could take
    /// something beneath the directory `path`, or `path` itself, out of
    /// what protects it: then not everything beneath a protected `path` is
    /// protected (an agent's transcripts in its protected state directory).
    pub fn excepts_beneath(&self, path: &Path) -> bool {
        let parts = split(path);
        (self.rules.iter())
            .filter(|r| r.except && r.subtree)
            .any(|r| r.leads_to(&parts) || r.matches_exactly(&parts))
    }

    /// The protected tree `path` lies in, for a pattern with `**` in the
    /// middle (`/ws/.git/modules` for `/ws/.git/modules/a/objects/x` and
    /// `**/.git/modules/**/config`): beneath it, any name may lead to a
    /// protected path, so a name is made there only for what is already in
    /// that tree (the guard's rule: nothing is moved, linked or symlinked
    /// in from outside). Returns the rule and the tree's root.
    pub fn region(&self, path: &Path) -> Option<(&ProtectRule, PathBuf)> {
        let parts = split(path);
        self.rules.iter().filter(|r| !r.except).find_map(|r| {
            let k = r.region(&parts)?;
            let root: PathBuf = std::iter::once(OsStr::new("/"))
                .chain(parts[..k].iter().map(|p| OsStr::from_bytes(p)))
                .collect();
            Some((r, root))
        })
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

/// Compiles one pattern of `list` (`protect` or `deny`). One `**` may
/// stand in the middle (`a/**/b`), once: more is said rather than matched
/// wrongly.
fn rule_in(
    list: &'static str,
    text: &str,
    written: &str,
    except: bool,
    location: Option<Location>,
) -> Result<ProtectRule, String> {
    let pattern = Pattern::parse(text, written)?;
    let components = pattern
        .components
        .iter()
        .map(|c| match literal_value(c) {
            Some(literal) => Ok(Component::Literal(literal.into_bytes())),
            None => NameMatcher::new(c)
                .map(Component::Glob)
                .map_err(|e| format!("invalid pattern '{written}': {}", e.kind())),
        })
        .collect::<Result<Vec<_>, String>>()?;
    // One `**` in the middle, after at least one component (`a/**/b`).
    let stars: Vec<usize> = (pattern.components.iter().enumerate())
        .filter(|(_, c)| *c == "**")
        .map(|(i, _)| i)
        .collect();
    if stars.len() > 1 || stars.first() == Some(&0) {
        return Err(format!(
            "pattern '{written}': a {list} pattern has one '**' at most, at its start \
             (`**/.env`) or in the middle after a name (`$WORKSPACE/**/.env`, \
             `**/.git/modules/**/config`)"
        ));
    }
    let deep = stars.first().copied();
    let mut components = components;
    if let Some(at) = deep {
        components.remove(at);
    }
    Ok(ProtectRule {
        written: written.to_string(),
        resolved: pattern.text(),
        except,
        subtree: except && written.ends_with("/**"),
        location,
        list,
        any_depth: pattern.any_depth,
        deep,
        components,
    })
}

/// The `protect` part of [`PolicySpec::resolve`].
pub(crate) fn resolve_protect(
    spec: &PolicySpec,
    vars: &Vars,
    canonicaliser: &mut Canonicaliser,
) -> Result<Protect, PolicyError> {
    let mut rules: Vec<ProtectRule> = Vec::new();
    // Repeats found by a set, not by comparing each with all before it.
    let mut seen = HashSet::new();
    for entry in &spec.protect {
        let r = resolve_entry_in("protect", entry, vars, canonicaliser)?;
        if seen.insert((r.except, r.subtree, r.resolved.clone())) {
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
    canonicaliser: &mut Canonicaliser,
) -> Result<Protect, PolicyError> {
    let mut rules: Vec<ProtectRule> = Vec::new();
    let mut seen = HashSet::new();
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
        let r = resolve_entry_in("deny", &as_pattern, vars, canonicaliser)?;
        if seen.insert((r.except, r.resolved.clone())) {
            rules.push(r);
        }
    }
    Ok(Protect { rules })
}

fn resolve_entry_in(
    list: &'static str,
    entry: &PatternEntry,
    vars: &Vars,
    canonicaliser: &mut Canonicaliser,
) -> Result<ProtectRule, PolicyError> {
    let key = format!("filesystem.{list}");
    let invalid = |message: String| PolicyError::InvalidValue {
        location: entry.location.clone(),
        key: key.clone(),
        message,
    };
    let (except, written) = split_except(&entry.written);
    let text = vars.substitute_pattern_at(written, &entry.location, &key)?;
    let text = canonical_prefix(&text, canonicaliser);
    rule_in(list, &text, written, except, Some(entry.location.clone())).map_err(invalid)
}

/// An anchored pattern with its longest existing literal prefix
/// canonicalised (a home directory behind a symlink), so it matches the
/// kernel's names for paths.
fn canonical_prefix(text: &str, canonicaliser: &mut Canonicaliser) -> String {
    if !text.starts_with('/') {
        return text.to_string();
    }
    let parts: Vec<&str> = text.split('/').filter(|c| !c.is_empty()).collect();
    let literal = parts.iter().take_while(|c| is_plain(c)).count();
    let (real, kept) = canonicaliser.existing_lenient(&parts[..literal]);
    match real.to_str() {
        Some(real) if kept > 0 => {
            let mut out = real.trim_end_matches('/').to_string();
            for rest in &parts[kept..] {
                out.push('/');
                out.push_str(rest);
            }
            out
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
