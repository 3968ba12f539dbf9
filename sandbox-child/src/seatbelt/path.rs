//! Paths as Seatbelt sees them, and as SBPL strings.
//!
//! Seatbelt matches the path the kernel resolved, so every path written into
//! a profile must be the real one: on macOS `/tmp`, `/var` and `/etc` are
//! symlinks into `/private`, and a rule for `/tmp/x` would never match.
//! Policies resolved on macOS are canonical already; the mapping here makes
//! a policy resolved elsewhere (Linux, for `sluice policy show --seatbelt`)
//! come out as macOS would see it.
//!
//! # Escaping
//!
//! A path becomes one SBPL string literal: `"` and `\` are escaped with a
//! backslash, and nothing else is special inside a string (parentheses and
//! `;` included). Paths that cannot be written safely are refused rather
//! than mangled:
//! - not UTF-8: APFS and HFS+ store names as UTF-8, so such a path cannot
//!   exist on macOS; refusing it costs nothing and keeps the profile text;
//! - control characters (U+0000 to U+001F, U+007F): a newline or a NUL in a
//!   string literal depends on the SBPL reader's escape handling, which is
//!   not documented, so the profile never relies on it;
//! - longer than `MAXPATHLEN` (1024 bytes): no macOS system call accepts it,
//!   and it keeps every string far below Seatbelt's 64 KiB limit.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// macOS's `MAXPATHLEN`, including the terminating NUL.
pub const MAX_PATH_BYTES: usize = 1024;

/// The top-level directories that are symlinks into `/private` on macOS.
const PRIVATE_ALIASES: [&str; 3] = ["tmp", "var", "etc"];

/// Why a path cannot be written into a profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("'{0}' is not an absolute path")]
    Relative(String),
    #[error("'{0}' is not valid UTF-8, which no macOS file name can be")]
    NotUtf8(String),
    #[error("'{path}' contains the control character U+{code:04X}, which a Seatbelt profile does not quote")]
    Control { path: String, code: u32 },
    #[error("'{path}…' is {len} bytes long, over macOS's MAXPATHLEN ({MAX_PATH_BYTES})")]
    TooLong { path: String, len: usize },
}

/// A path ready for a profile: absolute, normalised, mapped through
/// `/private`, valid UTF-8 without control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SbplPath(String);

impl SbplPath {
    /// Checks and maps `path`. `.` and `..` components are removed
    /// lexically: resolved policy paths have none, except paths that did
    /// not exist at resolution (which were never canonicalised).
    pub fn new(path: &Path) -> Result<SbplPath, PathError> {
        let shown = || path.to_string_lossy().into_owned();
        let Some(text) = path.to_str() else {
            return Err(PathError::NotUtf8(shown()));
        };
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(PathError::Control {
                path: text.escape_debug().to_string(),
                code: c as u32,
            });
        }
        if !path.is_absolute() {
            return Err(PathError::Relative(shown()));
        }
        let mut parts: Vec<&str> = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(name) => parts.push(name.to_str().expect("checked UTF-8")),
                Component::ParentDir => {
                    parts.pop();
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        if parts
            .first()
            .is_some_and(|top| PRIVATE_ALIASES.contains(top))
        {
            parts.insert(0, "private");
        }
        let joined = format!("/{}", parts.join("/"));
        if joined.len() >= MAX_PATH_BYTES {
            let cut = (0..=64)
                .rev()
                .find(|&i| joined.is_char_boundary(i))
                .unwrap_or(0);
            return Err(PathError::TooLong {
                path: joined[..cut].to_string(),
                len: joined.len(),
            });
        }
        Ok(SbplPath(joined))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `other` or beneath it, by whole components.
    pub fn is_within(&self, other: &SbplPath) -> bool {
        Path::new(&self.0).starts_with(&other.0)
    }

    /// Every proper ancestor, from `/` down to the parent.
    pub fn ancestors(&self) -> Vec<SbplPath> {
        let mut out: Vec<SbplPath> = Path::new(&self.0)
            .ancestors()
            .skip(1)
            .map(|a| SbplPath(a.to_str().expect("built from UTF-8").to_string()))
            .collect();
        out.reverse();
        out
    }

    /// The path as an SBPL string literal, quotes included.
    pub fn quoted(&self) -> String {
        quote(&self.0)
    }
}

impl fmt::Display for SbplPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `text` as an SBPL string literal. Callers pass text without control
/// characters ([`SbplPath`] checks; the fixed names in this module have none).
pub fn quote(text: &str) -> String {
    debug_assert!(!text.chars().any(char::is_control), "{text:?}");
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Sorted, without repeats, and without any path that lies within another
/// path of the same set: one `subpath` filter covers them all. This is
/// what keeps a profile small however many entries beneath one tree a
/// policy lists.
pub fn minimise(paths: impl IntoIterator<Item = SbplPath>) -> Vec<SbplPath> {
    let mut sorted: Vec<SbplPath> = paths.into_iter().collect();
    sorted.sort_by(|a, b| Path::new(&a.0).cmp(Path::new(&b.0)));
    sorted.dedup();
    let mut out: Vec<SbplPath> = Vec::with_capacity(sorted.len());
    for path in sorted {
        // Sorted by components, a path's ancestors in the set come before it;
        // the last kept path is the only candidate that can contain it.
        if out.last().is_some_and(|kept| path.is_within(kept)) {
            continue;
        }
        out.push(path);
    }
    out
}

/// Converts every path, stopping at the first that cannot be written.
pub fn convert<'a>(
    paths: impl IntoIterator<Item = &'a PathBuf>,
) -> Result<Vec<SbplPath>, PathError> {
    paths.into_iter().map(|p| SbplPath::new(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> SbplPath {
        SbplPath::new(Path::new(text)).unwrap()
    }

    #[test]
    fn tmp_var_and_etc_go_through_private() {
        assert_eq!(p("/tmp/x").as_str(), "/private/tmp/x");
        assert_eq!(p("/var/folders/a").as_str(), "/private/var/folders/a");
        assert_eq!(p("/etc").as_str(), "/private/etc");
        assert_eq!(p("/private/etc/hosts").as_str(), "/private/etc/hosts");
        // Whole components only.
        assert_eq!(p("/tmpx/y").as_str(), "/tmpx/y");
        assert_eq!(p("/usr/tmp").as_str(), "/usr/tmp");
        assert_eq!(p("/").as_str(), "/");
    }

    #[test]
    fn dots_are_removed_lexically() {
        assert_eq!(p("/a/./b/../c/").as_str(), "/a/c");
        assert_eq!(p("/a/../../tmp").as_str(), "/private/tmp");
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes_only() {
        assert_eq!(p(r#"/a "b" \c (d);e"#).quoted(), r#""/a \"b\" \\c (d);e""#);
        assert_eq!(p("/é/日本").quoted(), "\"/é/日本\"");
    }

    #[test]
    fn unwritable_paths_are_refused() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let bad = Path::new(OsStr::from_bytes(b"/a/\xff"));
        assert_eq!(
            SbplPath::new(bad),
            Err(PathError::NotUtf8("/a/\u{fffd}".into()))
        );
        assert_eq!(
            SbplPath::new(Path::new("/a\nb")),
            Err(PathError::Control {
                path: "/a\\nb".into(),
                code: 10
            })
        );
        assert!(matches!(
            SbplPath::new(Path::new("a/b")),
            Err(PathError::Relative(_))
        ));
        let long = format!("/{}", "x".repeat(MAX_PATH_BYTES));
        let err = SbplPath::new(Path::new(&long)).unwrap_err();
        assert!(err.to_string().contains("MAXPATHLEN"), "{err}");
    }

    #[test]
    fn minimise_keeps_only_the_outermost_paths() {
        let got = minimise(["/a/b", "/a", "/ab", "/a/b/c", "/z", "/a"].map(p));
        assert_eq!(got, ["/a", "/ab", "/z"].map(p));
        assert_eq!(minimise(["/x", "/"].map(p)), [p("/")]);
    }

    #[test]
    fn ancestors_run_from_the_root_down() {
        assert_eq!(p("/a/b/c").ancestors(), ["/", "/a", "/a/b"].map(p));
        assert!(p("/").ancestors().is_empty());
    }
}
