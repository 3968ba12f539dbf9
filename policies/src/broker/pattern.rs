//! `[broker]` patterns as text: checking what was written, splitting into
//! components, telling literal components from globs, escaping.
//!
//! The syntax is globset's (`*`, `?`, `[...]`, `{a,b}`, `\x`, `**` as a whole
//! component), matched with `literal_separator`: no wildcard crosses a `/`
//! except `**`. This module adds what globset leaves to its caller: a
//! pattern is absolute or starts with `**/`, has no `.`/`..` components, and
//! keeps `/` out of classes and alternations, so that it splits into
//! components that can be canonicalised and counted.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use globset::{Glob, GlobBuilder, GlobMatcher};

use crate::vars::{VarError, Vars};

/// A pattern after variable substitution, split and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    /// Starts with `**/`: matches at any depth, so nothing to canonicalise.
    pub any_depth: bool,
    /// The components in pattern syntax, without empty ones, without the
    /// leading `**` of an any-depth pattern and without trailing `**`.
    pub components: Vec<String>,
}

impl Pattern {
    /// Splits and checks `text`, a pattern whose variables are substituted.
    /// Messages name the pattern as `written`.
    pub(crate) fn parse(text: &str, written: &str) -> Result<Pattern, String> {
        let (any_depth, rest) = if let Some(rest) = text.strip_prefix("**/") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix('/') {
            (false, rest)
        } else {
            return Err(if text == written {
                relative(written)
            } else {
                format!(
                    "pattern '{written}' ({text}) is relative; variables must hold absolute paths"
                )
            });
        };
        // Most patterns are plain paths or have only `*` and `?`, which
        // globset accepts wherever they stand (`names_match_as_globset_
        // matches_them`): it need not look at them.
        if text.contains(['[', ']', '{', '}', '\\']) {
            compile(text).map_err(|e| format!("invalid pattern '{written}': {}", e.kind()))?;
        }
        let mut components = Vec::new();
        for component in split(rest).map_err(|why| format!("pattern '{written}': {why}"))? {
            let value = match is_plain(component) {
                true => Some(std::borrow::Cow::Borrowed(component)),
                false => literal_value(component).map(std::borrow::Cow::Owned),
            };
            if let Some(component @ ("." | "..")) = value.as_deref() {
                return Err(format!(
                    "pattern '{written}' has a '{component}' component; \
                     write the path it stands for"
                ));
            }
            if !component.is_empty() {
                components.push(component.to_string());
            }
        }
        // `x/**` covers what `x` covers; `**/**/x` is `**/x`.
        while components.last().is_some_and(|c| c == "**") {
            components.pop();
        }
        if any_depth {
            let leading = components.iter().take_while(|c| *c == "**").count();
            components.drain(..leading);
            if components.is_empty() {
                return Err(format!(
                    "pattern '{written}' covers every path; write \"/\" for that"
                ));
            }
        }
        Ok(Pattern {
            any_depth,
            components,
        })
    }

    /// The pattern as text: `/a/b`, `**/x`, or `/`.
    pub(crate) fn text(&self) -> String {
        let lead = if self.any_depth { "**/" } else { "/" };
        format!("{lead}{}", self.components.join("/"))
    }

    /// How many leading components are literal (no wildcard).
    pub(crate) fn literal_prefix(&self) -> usize {
        if self.any_depth {
            return 0;
        }
        self.components.iter().take_while(|c| is_literal(c)).count()
    }

    /// The number of literal characters: those outside wildcards, `/` not counted.
    pub(crate) fn literal_chars(&self) -> usize {
        self.components.iter().map(|c| literal_chars(c)).sum()
    }
}

/// The check made when a policy is parsed, with stand-in values for the
/// variables: everything about the pattern but where its variables point.
pub(crate) fn check_written(written: &str) -> Result<(), String> {
    let anchored = written.starts_with(['/', '$'])
        || written == "~"
        || written.starts_with("~/")
        || written.starts_with("**/");
    if !anchored {
        return Err(relative(written));
    }
    // Made once: this is asked of every pattern of every policy read.
    static STAND_IN: OnceLock<Vars> = OnceLock::new();
    let stand_in = STAND_IN.get_or_init(|| Vars {
        home: "/home".into(),
        workspace: "/workspace".into(),
        tmpdir: "/tmp".into(),
    });
    let text = stand_in
        .substitute_pattern(written)
        .map_err(|error| match error {
            VarError::Unknown(variable) => format!("unknown variable '{variable}'"),
            VarError::Malformed(message) => message,
            VarError::NotText(variable) => format!("variable '{variable}' is not valid text"),
        })?;
    Pattern::parse(&text, written).map(|_| ())
}

fn relative(written: &str) -> String {
    format!("pattern '{written}' is relative; start it with /, ~, a variable or **/")
}

/// The glob matcher for a pattern's text.
pub(crate) fn compile(text: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(text).literal_separator(true).build()
}

/// One element of a component in pattern syntax.
enum Piece {
    /// A character that matches itself (plain, `\x`, or a class `[x]` of one).
    Literal(char),
    /// `*`: any bytes but `/`.
    Star,
    /// `?`: one byte but `/`.
    One,
    /// A class or an alternation `{..}`.
    Wildcard,
}

/// The pieces of `text`, which globset has already accepted: classes are
/// closed and braces balanced.
fn pieces(text: &str) -> impl Iterator<Item = Piece> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let rest = &text[at..];
        let c = rest.chars().next()?;
        let (piece, len) = match c {
            '\\' => match rest[1..].chars().next() {
                Some(escaped) => (Piece::Literal(escaped), 1 + escaped.len_utf8()),
                None => (Piece::Literal('\\'), 1),
            },
            '[' => {
                let len = class_len(rest);
                let inner = &rest[1..len - 1];
                let mut chars = inner.chars();
                match (chars.next(), chars.next()) {
                    (Some(only), None) if only != '!' && only != '^' => (Piece::Literal(only), len),
                    _ => (Piece::Wildcard, len),
                }
            }
            '{' => (Piece::Wildcard, brace_len(rest)),
            '*' => (Piece::Star, 1),
            '?' => (Piece::One, 1),
            c => (Piece::Literal(c), c.len_utf8()),
        };
        at += len;
        Some(piece)
    })
}

/// The length of the class at the start of `text` (`[` to its `]`), as
/// globset reads it: after an optional `!` or `^`, a first `]` is a member.
fn class_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 1;
    if matches!(bytes.get(i), Some(b'!' | b'^')) {
        i += 1;
    }
    if bytes.get(i) == Some(&b']') {
        i += 1;
    }
    match text[i..].find(']') {
        Some(close) => i + close + 1,
        None => text.len(),
    }
}

/// The length of the alternation at the start of `text`, nested ones and
/// classes inside included.
fn brace_len(text: &str) -> usize {
    let mut depth = 0;
    let mut i = 0;
    while i < text.len() {
        match text.as_bytes()[i] {
            b'\\' => i += 1,
            b'[' => {
                i += class_len(&text[i..]);
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    text.len()
}

/// Splits at the `/` that separate components. A `/` inside a class or an
/// alternation, or escaped, is refused: the components would be ambiguous.
fn split(text: &str) -> Result<Vec<&str>, String> {
    let mut components = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        let len = match text.as_bytes()[i] {
            b'/' => {
                components.push(&text[start..i]);
                start = i + 1;
                1
            }
            b'\\' => 1 + text[i + 1..].chars().next().map_or(0, char::len_utf8),
            b'[' => class_len(&text[i..]),
            b'{' => brace_len(&text[i..]),
            _ => 1,
        };
        if len > 1 && text[i..i + len].contains('/') {
            return Err("a '/' inside '[...]' or '{...}', or after '\\', is not supported".into());
        }
        i += len;
    }
    components.push(&text[start..]);
    Ok(components)
}

/// The characters that may make a component more than its own text: an
/// escape, a class, an alternation or a wildcard. A component without any
/// is its own literal value (`pieces` reads every other character as a
/// literal), the common case, answered without reading it piece by piece.
const SPECIAL: [char; 5] = ['\\', '[', '{', '*', '?'];

/// The text a component matches, if it has no wildcard.
pub(crate) fn literal_value(component: &str) -> Option<String> {
    if !component.contains(SPECIAL) {
        return Some(component.to_owned());
    }
    pieces(component)
        .map(|piece| match piece {
            Piece::Literal(c) => Some(c),
            Piece::Star | Piece::One | Piece::Wildcard => None,
        })
        .collect()
}

/// Whether a component has no wildcard: [`literal_value`] is `Some`,
/// nothing allocated.
pub(crate) fn is_literal(component: &str) -> bool {
    !component.contains(SPECIAL)
        || pieces(component).all(|piece| matches!(piece, Piece::Literal(_)))
}

/// Whether a component is exactly the text it matches (no wildcard, and
/// nothing escaped or written as a class of one).
pub(crate) fn is_plain(component: &str) -> bool {
    !component.contains(SPECIAL)
}

/// A matcher for one component (no `/`) in pattern syntax, matching as
/// globset does with `literal_separator` (bytes; `?` one byte, `*` any
/// bytes). A component of literal characters, `?` and `*` (nearly every
/// pattern sluice meets) is matched by hand, with nothing compiled; one
/// with a class or an alternation is globset's, its regex and DFA compiled
/// on first use (tens of microseconds each: at every launch otherwise).
#[derive(Clone, Debug)]
pub(crate) enum NameMatcher {
    Simple(SimpleGlob),
    Compiled(Glob, OnceLock<GlobMatcher>),
}

impl NameMatcher {
    /// The matcher for `component`, which globset has accepted as part of
    /// its pattern (see [`Pattern::parse`]).
    pub(crate) fn new(component: &str) -> Result<NameMatcher, globset::Error> {
        // Classes and escapes are globset's to check first: `pieces` reads
        // only what it accepts (globset accepts any text of `*` and `?`).
        let checked = match component.contains(['[', ']', '{', '}', '\\']) {
            true => Some(compile(component)?),
            false => None,
        };
        match SimpleGlob::new(component) {
            Some(simple) => Ok(NameMatcher::Simple(simple)),
            None => Ok(NameMatcher::Compiled(
                checked.map_or_else(|| compile(component), Ok)?,
                OnceLock::new(),
            )),
        }
    }

    pub(crate) fn is_match(&self, name: &[u8]) -> bool {
        match self {
            NameMatcher::Simple(simple) => simple.is_match(name),
            NameMatcher::Compiled(glob, matcher) => matcher
                .get_or_init(|| glob.compile_matcher())
                .is_match(OsStr::from_bytes(name)),
        }
    }
}

/// A whole pattern with a wildcard, matched component by component against
/// an absolute canonical path's components, as globset matches the
/// pattern's text with `literal_separator` (`**` spans whole components,
/// none or more), with nothing compiled for the usual patterns.
#[derive(Clone, Debug)]
pub(crate) struct PathMatcher {
    /// `None` for `**`; an any-depth pattern starts with one.
    components: Vec<Option<NameMatcher>>,
    /// The number of components a path must have, if there is no `**`.
    fixed: Option<usize>,
}

impl PathMatcher {
    pub(crate) fn new(pattern: &Pattern) -> Result<PathMatcher, globset::Error> {
        let mut components = Vec::with_capacity(pattern.components.len() + 1);
        if pattern.any_depth {
            components.push(None);
        }
        for c in &pattern.components {
            components.push(match c.as_str() {
                "**" => None,
                c => Some(NameMatcher::new(c)?),
            });
        }
        let fixed = components
            .iter()
            .all(Option::is_some)
            .then_some(components.len());
        Ok(PathMatcher { components, fixed })
    }

    /// Whether the path whose components are `parts` matches.
    pub(crate) fn is_match(&self, parts: &[&[u8]]) -> bool {
        if self.fixed.is_some_and(|n| n != parts.len()) {
            return false;
        }
        // Most paths fail at the last component, the cheapest to look at.
        match (self.components.last(), parts.last()) {
            (Some(Some(last)), Some(name)) if !last.is_match(name) => return false,
            (Some(Some(_)), None) => return false,
            _ => {}
        }
        // The classic wildcard match, `**` as the star: on a mismatch, the
        // last `**` takes one more component and the rest is tried again
        // (at most components x parts steps).
        let (mut c, mut p) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while p < parts.len() {
            match self.components.get(c) {
                Some(None) => {
                    star = Some((c + 1, p));
                    c += 1;
                }
                Some(Some(name)) if name.is_match(parts[p]) => {
                    c += 1;
                    p += 1;
                }
                _ => match star {
                    Some((after, from)) => {
                        c = after;
                        p = from + 1;
                        star = Some((after, from + 1));
                    }
                    None => return false,
                },
            }
        }
        self.components[c..].iter().all(Option::is_none)
    }
}

/// A component of literal bytes, `?` and `*`, cut at each `*`: the first
/// part matches at the start, the last at the end, those between at their
/// leftmost place in order (which finds a match whenever one exists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SimpleGlob {
    /// Each byte, `None` for `?`.
    parts: Vec<Vec<Option<u8>>>,
}

impl SimpleGlob {
    /// `None` for a component with a class of more than one character, an
    /// alternation, or a `**`.
    fn new(component: &str) -> Option<SimpleGlob> {
        if component.contains("**") {
            return None;
        }
        let mut parts = vec![Vec::new()];
        for piece in pieces(component) {
            let part = parts.last_mut().expect("never empty");
            match piece {
                Piece::Literal(c) => {
                    let mut buf = [0; 4];
                    part.extend(c.encode_utf8(&mut buf).bytes().map(Some));
                }
                Piece::One => part.push(None),
                Piece::Star => parts.push(Vec::new()),
                Piece::Wildcard => return None,
            }
        }
        Some(SimpleGlob { parts })
    }

    pub(crate) fn is_match(&self, name: &[u8]) -> bool {
        if name.contains(&b'/') {
            return false;
        }
        let (first, rest) = self.parts.split_first().expect("never empty");
        let Some((last, middle)) = rest.split_last() else {
            return part_is(first, name);
        };
        if name.len() < first.len() + last.len()
            || !part_is(first, &name[..first.len()])
            || !part_is(last, &name[name.len() - last.len()..])
        {
            return false;
        }
        let mut between = &name[first.len()..name.len() - last.len()];
        for part in middle {
            let Some(at) = (0..=between.len().saturating_sub(part.len())).find(|&at| {
                between.len() >= part.len() && part_is(part, &between[at..at + part.len()])
            }) else {
                return false;
            };
            between = &between[at + part.len()..];
        }
        true
    }
}

/// Whether `text` is `part` (of the same length; `None` matches any byte).
fn part_is(part: &[Option<u8>], text: &[u8]) -> bool {
    part.len() == text.len()
        && part
            .iter()
            .zip(text)
            .all(|(p, b)| p.is_none_or(|p| p == *b))
}

fn literal_chars(component: &str) -> usize {
    if is_plain(component) {
        return component.chars().count();
    }
    pieces(component)
        .filter(|piece| matches!(piece, Piece::Literal(_)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::escape;

    fn parse(text: &str) -> Result<Pattern, String> {
        Pattern::parse(text, text)
    }

    #[test]
    fn splits_and_normalises() {
        let p = parse("/a//b/").unwrap();
        assert_eq!(p.components, ["a", "b"]);
        assert_eq!(p.text(), "/a/b");
        assert_eq!(parse("/a/b/**").unwrap().text(), "/a/b");
        assert_eq!(parse("/**").unwrap().text(), "/");
        assert_eq!(parse("/").unwrap().text(), "/");
        assert_eq!(parse("**/**/x/**").unwrap().text(), "**/x");
        assert_eq!(parse("/a/**/b").unwrap().components, ["a", "**", "b"]);
        assert_eq!(
            parse("/a/{b,c}/[/]x").unwrap_err(),
            "pattern '/a/{b,c}/[/]x': a '/' inside '[...]' or '{...}', or after '\\', \
             is not supported"
        );
        assert!(parse("/a\\/b").is_err());
        assert!(parse("/{a/b,c}").is_err());
        assert_eq!(
            parse("/a/../b").unwrap_err(),
            "pattern '/a/../b' has a '..' component; write the path it stands for"
        );
        assert!(parse("/a/./b").is_err());
        assert!(parse("/a/[.][.]/b").is_err());
        assert!(parse("**/").is_err());
        assert!(parse("a/b").is_err());
        assert_eq!(
            parse("/a/[").unwrap_err(),
            "invalid pattern '/a/[': unclosed character class; missing ']'"
        );
    }

    #[test]
    fn literal_components_and_counts() {
        assert_eq!(literal_value("a[*]b\\?"), Some("a*b?".to_string()));
        assert_eq!(literal_value("[]]"), Some("]".to_string()));
        assert_eq!(literal_value("a*"), None);
        assert_eq!(literal_value("[!a]"), None);
        assert_eq!(literal_value("{a,b}"), None);
        assert_eq!(literal_chars("*.pem"), 4);
        assert_eq!(literal_chars("x{a,[}]b}y"), 2);
        assert_eq!(literal_chars("[ab]c[*]"), 2);
        let p = parse("/home/u/*/x").unwrap();
        assert_eq!(p.literal_prefix(), 2);
        assert_eq!(p.literal_chars(), 6);
        assert_eq!(parse("**/*.pem").unwrap().literal_chars(), 4);
        assert_eq!(parse("/").unwrap().literal_chars(), 0);
    }

    #[test]
    fn escaped_text_matches_only_itself() {
        for text in ["/a*b/[x]/{c,d}/e?\\f", "/plain", "/]]"] {
            let escaped = escape(text);
            let matcher = compile(&escaped).unwrap().compile_matcher();
            assert!(matcher.is_match(text), "{escaped}");
            let p = parse(&escaped).unwrap();
            assert_eq!(p.literal_prefix(), p.components.len(), "{escaped}");
            let values: Vec<_> = p
                .components
                .iter()
                .map(|c| literal_value(c).unwrap())
                .collect();
            assert_eq!(format!("/{}", values.join("/")), text);
        }
        assert!(!compile(&escape("/a*"))
            .unwrap()
            .compile_matcher()
            .is_match("/ab"));
    }

    /// Every string of up to `n` items of `alphabet`, joined.
    fn strings(alphabet: &[&str], n: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..n {
            last = (last.iter())
                .flat_map(|s| alphabet.iter().map(move |a| format!("{s}{a}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    /// The shortcuts for components without special characters
    /// (`literal_value`, `is_literal`, `is_plain`) answer as reading the
    /// component piece by piece does, on every component of a small
    /// alphabet that globset accepts.
    #[test]
    fn literal_shortcuts_answer_as_the_pieces_do() {
        let mut special = 0;
        for component in strings(&["a", "é", "\\", "[", "]", "{", "}", ",", "*", "?", "!"], 4) {
            if compile(&component).is_err() {
                continue;
            }
            let by_pieces: Option<String> = pieces(&component)
                .map(|piece| match piece {
                    Piece::Literal(c) => Some(c),
                    _ => None,
                })
                .collect();
            assert_eq!(literal_value(&component), by_pieces, "{component:?}");
            assert_eq!(is_literal(&component), by_pieces.is_some(), "{component:?}");
            assert_eq!(
                is_plain(&component),
                by_pieces.as_deref() == Some(component.as_str()),
                "{component:?}"
            );
            special += usize::from(!is_plain(&component) && by_pieces.is_some());
        }
        // Control: escapes and classes of one character were met.
        assert!(special > 100, "{special}");
    }

    #[test]
    fn names_match_as_globset_matches_them() {
        let names = strings(&["a", "b", ".", "\n", "é"], 4);
        let mut simple = 0;
        for pattern in strings(&["a", "b", ".", "*", "?", "[b]", "é"], 4) {
            let pattern = if pattern.is_empty() {
                "x".to_owned()
            } else {
                pattern
            };
            let matcher = NameMatcher::new(&pattern).unwrap();
            simple += usize::from(matches!(matcher, NameMatcher::Simple(_)));
            let globset = compile(&pattern).unwrap().compile_matcher();
            for name in &names {
                assert_eq!(
                    matcher.is_match(name.as_bytes()),
                    globset.is_match(name),
                    "pattern {pattern:?}, name {name:?}"
                );
            }
        }
        assert!(simple > 1000, "{simple}");
        // What globset refuses is refused.
        for pattern in ["a[", "{a", "x[!"] {
            assert!(NameMatcher::new(pattern).is_err(), "{pattern}");
        }
        // A class or an alternation is globset's.
        for pattern in ["[ab]", "{a,b}", "x[!a]"] {
            let matcher = NameMatcher::new(pattern).unwrap();
            assert!(matches!(matcher, NameMatcher::Compiled(..)), "{pattern}");
            assert!(
                matcher.is_match(b"xb") || matcher.is_match(b"a"),
                "{pattern}"
            );
        }
    }

    #[test]
    fn no_wildcard_stands_for_an_empty_component() {
        // FORMAT.md: `**/*/x` covers `/a/x`, not `/x` (globset matches
        // `/x`, its `*` taking the empty text before the first `/`).
        let matcher = PathMatcher::new(&parse("**/*/x").unwrap()).unwrap();
        assert!(matcher.is_match(&[b"a", b"x"]));
        assert!(matcher.is_match(&[b"b", b"a", b"x"]));
        assert!(!matcher.is_match(&[b"x"]));
        let top = PathMatcher::new(&parse("/*").unwrap()).unwrap();
        assert!(top.is_match(&[b"etc"]));
        assert!(!top.is_match(&[]));
    }

    #[test]
    fn globset_accepts_every_pattern_of_stars_and_question_marks() {
        // What lets `Pattern::parse` skip globset for them.
        for text in strings(&["/", "a", "*", "?", "é"], 5) {
            assert!(compile(&text).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn paths_match_as_globset_matches_them() {
        let paths: Vec<String> = strings(&["/a", "/b", "/ab", "/xb"], 4)
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        let components = strings(&["/a", "/*", "/**", "/?b", "/b*"], 4);
        for rest in components.iter().filter(|c| !c.is_empty()) {
            for text in [rest.clone(), format!("**{rest}")] {
                let Ok(pattern) = parse(&text) else { continue };
                if pattern.components.is_empty() {
                    continue;
                }
                let matcher = PathMatcher::new(&pattern).unwrap();
                let globset = compile(&pattern.text()).unwrap().compile_matcher();
                for path in &paths {
                    let parts: Vec<&[u8]> = path[1..].split('/').map(str::as_bytes).collect();
                    // To globset, `**/*/a` matches `/a`: its `*` matches
                    // the empty text before the first `/`. No wildcard
                    // stands for an empty component here; an any-depth
                    // pattern is compared on the path without its `/`.
                    let text = match pattern.any_depth {
                        true => &path[1..],
                        false => path.as_str(),
                    };
                    assert_eq!(
                        matcher.is_match(&parts),
                        globset.is_match(text),
                        "pattern {}, path {path}",
                        pattern.text()
                    );
                }
            }
        }
    }

    #[test]
    fn written_patterns_are_checked_with_stand_in_values() {
        assert!(check_written("~").is_ok());
        assert!(check_written("~/.ssh").is_ok());
        assert!(check_written("${WORKSPACE}/**/*.pem").is_ok());
        assert!(check_written("**/id_rsa*").is_ok());
        assert_eq!(
            check_written("~user/x").unwrap_err(),
            "pattern '~user/x' is relative; start it with /, ~, a variable or **/"
        );
        assert_eq!(
            check_written("$FOO/x").unwrap_err(),
            "unknown variable '$FOO'"
        );
        assert_eq!(
            check_written("$HOME/[").unwrap_err(),
            "invalid pattern '$HOME/[': unclosed character class; missing ']'"
        );
    }
}
