//! `[broker]` patterns as text: checking what was written, splitting into
//! components, telling literal components from globs, escaping.
//!
//! The syntax is globset's (`*`, `?`, `[...]`, `{a,b}`, `\x`, `**` as a whole
//! component), matched with `literal_separator`: no wildcard crosses a `/`
//! except `**`. This module adds what globset leaves to its caller: a
//! pattern is absolute or starts with `**/`, has no `.`/`..` components, and
//! keeps `/` out of classes and alternations, so that it splits into
//! components that can be canonicalised and counted.

use globset::{Glob, GlobBuilder};

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
        // Most patterns are plain paths, which globset need not look at.
        if text.contains(['*', '?', '[', ']', '{', '}', '\\']) {
            compile(text).map_err(|e| format!("invalid pattern '{written}': {}", e.kind()))?;
        }
        let mut components = Vec::new();
        for component in split(rest).map_err(|why| format!("pattern '{written}': {why}"))? {
            let value = literal_value(component);
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
        self.components
            .iter()
            .take_while(|c| literal_value(c).is_some())
            .count()
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
    let stand_in = Vars {
        home: "/home".into(),
        workspace: "/workspace".into(),
        tmpdir: "/tmp".into(),
    };
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
    /// `*`, `?`, a class, or an alternation `{..}`.
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
            '*' | '?' => (Piece::Wildcard, 1),
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

/// The text a component matches, if it has no wildcard.
pub(crate) fn literal_value(component: &str) -> Option<String> {
    pieces(component)
        .map(|piece| match piece {
            Piece::Literal(c) => Some(c),
            Piece::Wildcard => None,
        })
        .collect()
}

fn literal_chars(component: &str) -> usize {
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
