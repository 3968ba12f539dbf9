//! Sandbox policies for sluice: the file format, the built-in policies, and
//! the resolved [`Policy`] the launcher enforces.
//!
//! A policy is a TOML file (see `FORMAT.md` next to this crate's
//! `Cargo.toml`) or a built-in name. Loading follows `extends` and merges
//! the chain into a [`PolicySpec`]; command-line overrides are applied to
//! the spec; [`PolicySpec::resolve`] then substitutes the variables
//! (`~`, `$HOME`, `$WORKSPACE`, `$TMPDIR`), expands globs and canonicalises
//! every path, giving a [`Policy`]. [`Policy::to_toml`] writes the result
//! back in the same format, so it can be saved and checked again.
//!
//! ```
//! use std::path::Path;
//! use policies::{NetPolicy, Vars};
//!
//! let text = r#"
//!     [filesystem]
//!     read = ["/", { path = "$WORKSPACE/missing", optional = true }]
//!     write = ["$TMPDIR"]
//!     deny = ["~/.ssh"]
//!
//!     [limits]
//!     address_space = "8GiB"
//! "#;
//! let mut spec = policies::load_str("example.toml", text, Path::new("/"))?;
//! spec.set_network("tcp:443".parse::<NetPolicy>()?);
//!
//! let tmp = std::env::temp_dir();
//! let vars = Vars { home: tmp.clone(), workspace: tmp.clone(), tmpdir: tmp.clone() };
//! let policy = spec.resolve(&vars)?;
//! assert_eq!(policy.limits.address_space, Some(8 << 30));
//! assert!(policy.filesystem.absent.contains(&tmp.join("missing")));
//! println!("{}", policy.to_toml());
//!
//! // The built-ins load the same way.
//! assert_eq!(policies::load("default")?.name(), "default");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Compatibility
//!
//! Parsing and merging are portable. Resolution uses `std::fs` only
//! (`canonicalize`, `read_dir`) and so runs wherever the policy's paths
//! exist; the built-in policies describe a Linux system (merged `/usr` or
//! not; `optional` marks what a distribution may lack).
//!
//! # Security
//!
//! This crate decides *what* a sandbox allows; it enforces nothing. Paths
//! are canonicalised when the policy is resolved, so a symlink swapped
//! afterwards is not followed by the policy, and a `deny` target that did
//! not exist at resolution is not protected (it is listed in
//! [`FsPolicy::absent`] for the enforcement report). Errors are never
//! softened: a required path that is missing, an unknown key or an unknown
//! variable stops the load.

mod error;
mod load;
pub mod model;
mod net;
mod parse;
mod print;
mod raw;
mod resolve;
mod size;
mod spec;
mod vars;

#[cfg(test)]
mod tests;

pub use error::{Location, PolicyError};
pub use load::{load, load_str};
pub use model::*;
pub use spec::PolicySpec;
pub use vars::Vars;

/// The built-in policies, by name: `(name, TOML text)`.
const BUILTINS: [(&str, &str); 2] = [
    ("default", include_str!("../builtin/default.toml")),
    ("readonly", include_str!("../builtin/readonly.toml")),
];

/// The names of the built-in policies: `["default", "readonly"]`.
pub fn builtin_names() -> &'static [&'static str] {
    &["default", "readonly"]
}

/// The TOML text of a built-in policy, as embedded in the binary.
pub fn builtin_source(name: &str) -> Option<&'static str> {
    BUILTINS
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, text)| *text)
}
