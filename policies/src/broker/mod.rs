//! The broker's decision rules (`[broker]`): which file opens a sandboxed
//! program may ask sluice for, and who decides.
//!
//! A [`BrokerPolicy`] is made by [`crate::PolicySpec::resolve`]; its patterns
//! are split into components then, so [`BrokerPolicy::decide`] only walks the
//! requested path's ancestors once, comparing bytes and matching the
//! wildcard patterns component by component ([`pattern::PathMatcher`]: no
//! regex is compiled for `*` and `?`, at launch or later).

pub(crate) mod canonical;
pub(crate) mod pattern;
pub(crate) mod resolve;

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::Location;
use crate::rule::BrokerList;
pub use crate::rule::{Verdict, Want};
use pattern::{literal_value, PathMatcher, Pattern};

pub(crate) use pattern::check_written;

/// One `[broker]` entry, resolved.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BrokerRule {
    pub verdict: Verdict,
    /// `allow_write` and `ask_write`: requests that write are covered too.
    /// Always false for `deny`, which refuses any access.
    pub grants_write: bool,
    /// The pattern as written, e.g. `~/.ssh`.
    pub pattern: String,
    /// The pattern after substitution, normalisation and canonicalisation of
    /// its literal prefix, e.g. `/home/u/.ssh`; this is what is matched.
    pub resolved: String,
    /// Where the entry was written.
    pub location: Option<Location>,
}

impl BrokerRule {
    /// The `[broker]` key the rule belongs to: `allow`, `ask_write`, ...
    pub fn list_name(&self) -> &'static str {
        BrokerList::of(self.verdict, self.grants_write).name()
    }

    /// Which rule wins a full tie (same depth, same literal count): the
    /// stricter verdict, then the one that grants less.
    fn strictness(&self) -> u8 {
        match (self.verdict, self.grants_write) {
            (Verdict::Deny, _) => 4,
            (Verdict::Ask, false) => 3,
            (Verdict::Ask, true) => 2,
            (Verdict::Allow, false) => 1,
            (Verdict::Allow, true) => 0,
        }
    }
}

/// `deny "~/.ssh" (default:140)`: for reasons and the audit log.
impl fmt::Display for BrokerRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.list_name(), self.pattern)?;
        match &self.location {
            Some(Location::Policy { policy, line }) => write!(f, " ({policy}:{line})"),
            Some(Location::CommandLine) => f.write_str(" (command line)"),
            None => Ok(()),
        }
    }
}

/// The answer to one request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Decision<'a> {
    pub verdict: Verdict,
    /// The rule that decided; `None` when no rule covers the path, the path
    /// is protected, or the path is not absolute and canonical.
    pub rule: Option<&'a BrokerRule>,
    /// A short sentence for the person and the audit log.
    pub reason: String,
    /// The path is one sluice keeps out of reach ([`BrokerPolicy::protect`]):
    /// denied before any rule was looked at.
    pub protected: bool,
}

/// The resolved `[broker]` table: its rules, compiled for [`decide`](BrokerPolicy::decide).
///
/// Two broker policies are equal when they decide alike: the same rules
/// (list and resolved pattern, in order) and the same protected paths;
/// where a rule was written is not compared.
#[derive(Clone)]
pub struct BrokerPolicy {
    rules: Vec<BrokerRule>,
    /// Per rule, what ranks it against others matching at the same depth.
    ranks: Vec<Rank>,
    /// Rules without wildcards, by depth: `(path, rule index)`.
    literals: Vec<Vec<(Box<[u8]>, usize)>>,
    /// The other rules, one matcher each, with the rule's index.
    globs: Vec<(PathMatcher, usize)>,
    protected: Vec<Protected>,
}

/// More literal characters first, then strictness.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Rank {
    literals: usize,
    strictness: u8,
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct Protected {
    path: PathBuf,
    why: String,
    /// A subtree of `path` that stays open to the rules.
    except: Option<PathBuf>,
}

/// Why rules could not be compiled: the rule (if one is to blame) and a message.
#[derive(Debug)]
pub(crate) struct BuildError {
    pub rule: Option<BrokerRule>,
    pub message: String,
}

impl BrokerPolicy {
    /// Compiles `rules`, each with its `resolved` pattern in the form
    /// resolution gives it (absolute or `**/`, normalised), split and
    /// checked: `patterns`, in the same order (each one's
    /// [`Pattern::text`] is its rule's `resolved`), not parsed again.
    pub(crate) fn new(
        rules: Vec<BrokerRule>,
        patterns: Vec<Pattern>,
    ) -> Result<BrokerPolicy, BuildError> {
        debug_assert_eq!(rules.len(), patterns.len());
        let mut ranks = Vec::with_capacity(rules.len());
        let mut literals: Vec<Vec<(Box<[u8]>, usize)>> = Vec::new();
        let mut globs = Vec::new();
        for (index, (rule, pattern)) in rules.iter().zip(patterns).enumerate() {
            debug_assert_eq!(pattern.text(), rule.resolved);
            let blame = |message| BuildError {
                rule: Some(rule.clone()),
                message,
            };
            ranks.push(Rank {
                literals: pattern.literal_chars(),
                strictness: rule.strictness(),
            });
            let depth = pattern.components.len();
            if pattern.literal_prefix() == depth {
                let values: Option<Vec<String>> = pattern
                    .components
                    .iter()
                    .map(|c| literal_value(c))
                    .collect();
                let path = format!("/{}", values.unwrap_or_default().join("/"));
                if literals.len() <= depth {
                    literals.resize_with(depth + 1, Vec::new);
                }
                literals[depth].push((path.into_bytes().into_boxed_slice(), index));
            } else {
                let matcher = PathMatcher::new(&pattern).map_err(|e| {
                    blame(format!("invalid pattern '{}': {}", rule.resolved, e.kind()))
                })?;
                globs.push((matcher, index));
            }
        }
        Ok(BrokerPolicy {
            rules,
            ranks,
            literals,
            globs,
            protected: Vec::new(),
        })
    }

    /// The rules, in the order of the `[broker]` lists (`allow`,
    /// `allow_write`, `ask`, `ask_write`, `deny`), each parent first.
    pub fn rules(&self) -> &[BrokerRule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Paths sluice itself must keep out of reach (its audit log, approval
    /// overlay, session state): a protected path and everything under it is
    /// denied before any rule is looked at, with the given reason; `decide`
    /// reports rule `None` and that reason.
    ///
    /// The path need not exist. It is protected as given (made absolute
    /// against the current directory) and with its longest existing prefix
    /// canonicalised, so that the real path the supervisor sees is covered.
    pub fn protect(&mut self, path: PathBuf, why: &str) {
        self.protect_except(path, None, why);
    }

    /// [`protect`](Self::protect) `path` but for the subtree `except`
    /// (canonical), which the rules decide as usual: every session
    /// directory but the program's own `tmp/`.
    pub fn protect_except(&mut self, path: PathBuf, except: Option<PathBuf>, why: &str) {
        let given = std::path::absolute(&path).unwrap_or(path);
        let canonical = canonical::canonical_prefix(&given);
        for path in [given, canonical] {
            if !self.protected.iter().any(|p| p.path == path) {
                self.protected.push(Protected {
                    path,
                    why: why.to_string(),
                    except: except.clone(),
                });
            }
        }
    }

    /// Decides a request for `path`, an absolute canonical path (the real
    /// path of the file: symlinks resolved, no `.` or `..`). Anything else is
    /// denied. See `FORMAT.md`, "[broker]", for how the deciding rule is chosen.
    pub fn decide(&self, path: &Path, want: Want) -> Decision<'_> {
        let bytes = path.as_os_str().as_bytes();
        let depth = match depth(bytes) {
            Ok(depth) => depth,
            Err(problem) => return refusal(format!("path {} {problem}", Shown(bytes))),
        };
        if let Some(protected) = self.protected.iter().find(|p| {
            is_within(bytes, p.path.as_os_str().as_bytes())
                && !p
                    .except
                    .as_ref()
                    .is_some_and(|e| is_within(bytes, e.as_os_str().as_bytes()))
        }) {
            return Decision {
                protected: true,
                ..refusal(protected.why.clone())
            };
        }
        let Some(index) = self.winner(bytes, depth) else {
            return refusal(format!("no broker rule covers {}", Shown(bytes)));
        };
        let rule = &self.rules[index];
        let (verdict, reason) = match rule.verdict {
            Verdict::Deny => (
                Verdict::Deny,
                sentence(format_args!("denied by rule {rule}")),
            ),
            _ if want.writes() && !rule.grants_write => (
                Verdict::Deny,
                sentence(format_args!("rule {rule} grants read only")),
            ),
            Verdict::Allow => (
                Verdict::Allow,
                sentence(format_args!("allowed by rule {rule}")),
            ),
            Verdict::Ask => (Verdict::Ask, sentence(format_args!("asked by rule {rule}"))),
        };
        Decision {
            verdict,
            rule: Some(rule),
            reason,
            protected: false,
        }
    }

    /// The most specific rule covering `path`, whose depth is `depth`: the
    /// ancestors are tried from `path` itself up to `/`, and the first that
    /// any rule matches decides among the rules matching it.
    fn winner(&self, path: &[u8], mut depth: usize) -> Option<usize> {
        let mut ancestor = path;
        let parts: Vec<&[u8]> = match self.globs.is_empty() {
            true => Vec::new(),
            false => path[1..].split(|b| *b == b'/').collect(),
        };
        loop {
            let mut best = None;
            for (literal, index) in self.literals.get(depth).into_iter().flatten() {
                if **literal == *ancestor {
                    best = self.better(best, *index);
                }
            }
            // A wildcard never stands for an empty component, so no glob
            // matches `/` itself (`/*` would, to globset).
            if depth > 0 {
                for (glob, index) in &self.globs {
                    if glob.is_match(&parts[..depth]) {
                        best = self.better(best, *index);
                    }
                }
            }
            if best.is_some() || depth == 0 {
                return best;
            }
            depth -= 1;
            ancestor = match ancestor.iter().rposition(|b| *b == b'/') {
                Some(0) | None => b"/",
                Some(cut) => &ancestor[..cut],
            };
        }
    }

    /// The better of rule `best` (if any) and rule `other`, both matching at
    /// the same depth; on a full tie, the earlier rule.
    fn better(&self, best: Option<usize>, other: usize) -> Option<usize> {
        match best {
            Some(best)
                if (self.ranks[best], std::cmp::Reverse(best))
                    >= (self.ranks[other], std::cmp::Reverse(other)) =>
            {
                Some(best)
            }
            _ => Some(other),
        }
    }
}

impl Default for BrokerPolicy {
    /// No rules: every request is denied.
    fn default() -> Self {
        BrokerPolicy {
            rules: Vec::new(),
            ranks: Vec::new(),
            literals: Vec::new(),
            globs: Vec::new(),
            protected: Vec::new(),
        }
    }
}

impl PartialEq for BrokerPolicy {
    fn eq(&self, other: &Self) -> bool {
        let key = |rule: &BrokerRule| (rule.verdict, rule.grants_write, rule.resolved.clone());
        self.rules.len() == other.rules.len()
            && self.rules.iter().map(key).eq(other.rules.iter().map(key))
            && self.protected == other.protected
    }
}

impl Eq for BrokerPolicy {}

impl fmt::Debug for BrokerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerPolicy")
            .field("rules", &self.rules)
            .field("protected", &self.protected)
            .finish_non_exhaustive()
    }
}

/// Formats into one allocation of a size that fits most reasons.
fn sentence(args: fmt::Arguments<'_>) -> String {
    let mut out = String::with_capacity(128);
    fmt::Write::write_fmt(&mut out, args).expect("formatting into a String");
    out
}

/// A denial that no rule made.
fn refusal(reason: String) -> Decision<'static> {
    Decision {
        verdict: Verdict::Deny,
        rule: None,
        reason,
        protected: false,
    }
}

/// The number of components of an absolute canonical path (`/` has none),
/// or what is wrong with it.
fn depth(path: &[u8]) -> Result<usize, &'static str> {
    let Some(rest) = path.strip_prefix(b"/") else {
        return Err("is not absolute");
    };
    if rest.is_empty() {
        return Ok(0);
    }
    let mut depth = 0;
    for component in rest.split(|b| *b == b'/') {
        if matches!(component, b"" | b"." | b"..") {
            return Err("is not canonical");
        }
        depth += 1;
    }
    Ok(depth)
}

/// Whether `path` is `root` or beneath it.
fn is_within(path: &[u8], root: &[u8]) -> bool {
    root == b"/"
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
}

/// A byte path for messages: UTF-8 as is, other bytes as `\xNN`.
struct Shown<'a>(&'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        Ok(())
    }
}
