//! Why preparing a launch failed ([`crate::prepare`]).

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::landlock_rules;

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Landlock(#[from] landlock_rules::RulesetError),
    #[error("preparing the placeholder for '{path}': {source}")]
    Placeholder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{0}' contains a NUL byte")]
    Nul(String),
    #[error("{0}")]
    Policy(String),
    #[error("reading {what}: {source}")]
    Probe {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// `s` as a C string for the raw calls ([`PrepareError::Nul`] where it holds
/// a NUL byte).
pub(crate) fn cstring(s: &OsStr) -> Result<CString, PrepareError> {
    CString::new(s.as_bytes()).map_err(|_| PrepareError::Nul(s.to_string_lossy().into_owned()))
}
