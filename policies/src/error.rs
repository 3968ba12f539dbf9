//! The one error type of this crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a policy value was written, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A policy file (or built-in policy) and the 1-based line in it.
    Policy { policy: String, line: usize },
    /// An override given on the command line (`PolicySpec::allow_read` and friends).
    CommandLine,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Policy { policy, line } => write!(f, "policy '{policy}', line {line}"),
            Location::CommandLine => f.write_str("command line"),
        }
    }
}

/// Everything that can go wrong loading or resolving a policy.
///
/// Messages are complete sentences for the user; no variant has an error
/// `source`, so printing the chain (`{:#}` in anyhow) does not repeat them.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A name without `/` and not ending in `.toml` that is no built-in policy.
    #[error("unknown built-in policy '{name}' (built-ins: {})", crate::builtin_names().join(", "))]
    UnknownBuiltin { name: String },

    /// A policy file could not be read.
    #[error("cannot read policy '{policy}': {}", io_message(error))]
    Read { policy: String, error: io::Error },

    /// The TOML is malformed, a key is unknown, or a value has the wrong type.
    #[error("policy '{policy}', line {line}, column {column}: {message}")]
    Parse {
        policy: String,
        line: usize,
        column: usize,
        message: String,
    },

    /// A problem the TOML parser could not place in the file.
    #[error("policy '{policy}': {message}")]
    Invalid { policy: String, message: String },

    /// `extends` leads back to a policy that is already being loaded.
    #[error("policy '{policy}': extends cycle: {}", chain.join(" -> "))]
    Cycle { policy: String, chain: Vec<String> },

    /// An `extends` entry names no built-in or an unreadable file.
    #[error("{location}, key 'extends': {error}")]
    Extends {
        location: Location,
        error: Box<PolicyError>,
    },

    /// `$NAME` is not one of the variables the format defines.
    #[error("{location}, key '{key}': unknown variable '{variable}'")]
    UnknownVariable {
        location: Location,
        key: String,
        variable: String,
    },

    /// A value that parsed but makes no sense (relative path, bad glob, ...).
    #[error("{location}, key '{key}': {message}")]
    InvalidValue {
        location: Location,
        key: String,
        message: String,
    },

    /// A required (non-optional) path does not exist.
    #[error(
        "{location}, key '{key}': path '{written}' ({}) does not exist{}",
        resolved.display(),
        missing_hint(location)
    )]
    MissingPath {
        location: Location,
        key: String,
        /// The path as written in the policy.
        written: String,
        /// The path after variable substitution.
        resolved: PathBuf,
    },

    /// A path could not be canonicalised or listed for a reason other than
    /// not existing (permission denied, a loop of symlinks, ...).
    #[error(
        "{location}, key '{key}': cannot resolve path '{written}' ({}): {}",
        resolved.display(),
        io_message(error)
    )]
    PathIo {
        location: Location,
        key: String,
        written: String,
        resolved: PathBuf,
        error: io::Error,
    },
}

/// "No such file or directory", without the " (os error 2)" that std appends.
fn io_message(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn missing_hint(location: &Location) -> &'static str {
    match location {
        Location::Policy { .. } => "; mark it optional or create it",
        Location::CommandLine => "",
    }
}
