//! Variables in paths and `[environment] set` values.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Location, PolicyError};

/// The values of the variables a policy may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    /// `~` and `$HOME`: the invoking user's home directory.
    pub home: PathBuf,
    /// `$WORKSPACE`: where `sluice run` was started, or `--workspace`.
    pub workspace: PathBuf,
    /// `$TMPDIR`: the session's private temporary directory.
    pub tmpdir: PathBuf,
}

/// Why a value could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VarError {
    /// `$NAME` or `${NAME}` with a name the format does not define; holds
    /// the variable as written.
    Unknown(String),
    /// A `$` that starts no variable, or an unterminated `${`.
    Malformed(String),
    /// A variable whose value is not UTF-8, in a `[broker]` pattern (which
    /// is text); holds the variable as written.
    NotText(String),
}

impl Vars {
    fn get(&self, name: &str) -> Option<&PathBuf> {
        match name {
            "HOME" => Some(&self.home),
            "WORKSPACE" => Some(&self.workspace),
            "TMPDIR" => Some(&self.tmpdir),
            _ => None,
        }
    }

    /// Substitutes `~` (the whole value, or at the start followed by `/`),
    /// `$NAME` and `${NAME}`; `$$` is a literal `$`.
    pub(crate) fn substitute(&self, text: &str) -> Result<OsString, VarError> {
        self.substitute_with(text, |out, value, _| {
            out.push(value);
            Ok(())
        })
    }

    /// Like [`substitute`](Vars::substitute), for a `[broker]` glob pattern:
    /// each value is inserted escaped, so that it matches only itself.
    pub(crate) fn substitute_pattern(&self, text: &str) -> Result<String, VarError> {
        let substituted = self.substitute_with(text, |out, value, written| {
            let value = value
                .to_str()
                .ok_or_else(|| VarError::NotText(written.to_string()))?;
            out.push(crate::rule::escape(value));
            Ok(())
        })?;
        // Every piece pushed was a `str`.
        Ok(substituted.into_string().expect("pattern pieces are UTF-8"))
    }

    /// [`substitute_pattern`](Vars::substitute_pattern) for a pattern
    /// written at `location` under `key`: an unknown or malformed variable,
    /// or one whose value is not text, is an error naming the file, line
    /// and key.
    pub(crate) fn substitute_pattern_at(
        &self,
        written: &str,
        location: &Location,
        key: &str,
    ) -> Result<String, PolicyError> {
        let invalid = |message: String| PolicyError::InvalidValue {
            location: location.clone(),
            key: key.to_owned(),
            message,
        };
        self.substitute_pattern(written)
            .map_err(|error| match error {
                VarError::Unknown(variable) => PolicyError::UnknownVariable {
                    location: location.clone(),
                    key: key.to_owned(),
                    variable,
                },
                VarError::Malformed(message) => invalid(message),
                VarError::NotText(variable) => invalid(format!(
                    "the value of '{variable}' is not valid UTF-8, which a pattern must be"
                )),
            })
    }

    /// Substitutes, inserting each value with `push(out, value, written)`.
    fn substitute_with(
        &self,
        text: &str,
        mut push: impl FnMut(&mut OsString, &Path, &str) -> Result<(), VarError>,
    ) -> Result<OsString, VarError> {
        let mut out = OsString::new();
        let mut rest = text;
        if rest == "~" || rest.starts_with("~/") {
            push(&mut out, &self.home, "~")?;
            rest = &rest[1..];
        }
        while let Some(dollar) = rest.find('$') {
            out.push(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push("$");
                rest = tail;
                continue;
            }
            let (name, written, tail) = split_variable(text, after)?;
            let value = self
                .get(name)
                .ok_or_else(|| VarError::Unknown(written.clone()))?;
            push(&mut out, value, &written)?;
            rest = tail;
        }
        out.push(rest);
        Ok(out)
    }
}

/// Splits `after` (the text following a `$`) into the variable's name, the
/// variable as written (with its `$`), and the text after it.
fn split_variable<'a>(text: &str, after: &'a str) -> Result<(&'a str, String, &'a str), VarError> {
    if let Some(braced) = after.strip_prefix('{') {
        let close = braced
            .find('}')
            .ok_or_else(|| VarError::Malformed(format!("unterminated '${{' in '{text}'")))?;
        let name = &braced[..close];
        return Ok((name, format!("${{{name}}}"), &braced[close + 1..]));
    }
    let end = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    let name = &after[..end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(VarError::Malformed(format!(
            "'$' in '{text}' starts no variable (write '$$' for a literal '$')"
        )));
    }
    Ok((name, format!("${name}"), &after[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            home: "/home/u".into(),
            workspace: "/ws".into(),
            tmpdir: "/tmp/s".into(),
        }
    }

    fn sub(text: &str) -> Result<String, VarError> {
        vars()
            .substitute(text)
            .map(|s| s.into_string().expect("utf-8"))
    }

    #[test]
    fn substitutes_every_form() {
        assert_eq!(sub("~").unwrap(), "/home/u");
        assert_eq!(sub("~/.ssh").unwrap(), "/home/u/.ssh");
        assert_eq!(sub("$HOME/.ssh").unwrap(), "/home/u/.ssh");
        assert_eq!(sub("${HOME}/.ssh").unwrap(), "/home/u/.ssh");
        assert_eq!(sub("$WORKSPACE/.env").unwrap(), "/ws/.env");
        assert_eq!(sub("${WORKSPACE}x").unwrap(), "/wsx");
        assert_eq!(sub("$TMPDIR").unwrap(), "/tmp/s");
        assert_eq!(sub("$TMPDIR/$WORKSPACE").unwrap(), "/tmp/s//ws");
        assert_eq!(sub("/a/$$b").unwrap(), "/a/$b");
        assert_eq!(sub("/plain").unwrap(), "/plain");
        // `~` is only special at the start, and only as a whole component.
        assert_eq!(sub("/a/~").unwrap(), "/a/~");
        assert_eq!(sub("~user").unwrap(), "~user");
    }

    #[test]
    fn pattern_values_are_escaped() {
        let vars = Vars {
            home: "/home/we*rd[1]".into(),
            ..vars()
        };
        assert_eq!(
            vars.substitute_pattern("~/**/*.pem").unwrap(),
            "/home/we[*]rd[[]1[]]/**/*.pem"
        );
        assert_eq!(vars.substitute_pattern("$$HOME").unwrap(), "$HOME");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let vars = Vars {
                tmpdir: std::ffi::OsStr::from_bytes(b"/t\xff").into(),
                ..vars
            };
            assert_eq!(
                vars.substitute_pattern("${TMPDIR}/x"),
                Err(VarError::NotText("${TMPDIR}".into()))
            );
        }
    }

    #[test]
    fn rejects_unknown_and_malformed() {
        assert_eq!(sub("$FOO/x"), Err(VarError::Unknown("$FOO".into())));
        assert_eq!(sub("${FOO}"), Err(VarError::Unknown("${FOO}".into())));
        assert_eq!(sub("$HOMEDIR"), Err(VarError::Unknown("$HOMEDIR".into())));
        assert_eq!(sub("$home"), Err(VarError::Unknown("$home".into())));
        assert!(matches!(sub("/a/$"), Err(VarError::Malformed(_))));
        assert!(matches!(sub("/a/$/b"), Err(VarError::Malformed(_))));
        assert!(matches!(sub("/a/$1"), Err(VarError::Malformed(_))));
        assert_eq!(
            sub("${HOME"),
            Err(VarError::Malformed("unterminated '${' in '${HOME'".into()))
        );
    }
}
