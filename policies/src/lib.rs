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
//! A policy also holds the broker's decision rules (`[broker]`), resolved
//! into a [`BrokerPolicy`]: for each file the program asks sluice to open,
//! [`BrokerPolicy::decide`] picks the most specific rule covering its real
//! path and answers allow, ask (a person decides) or deny, with the rule and
//! a reason for the audit log.
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
//! The broker's rules:
//!
//! ```
//! use std::path::Path;
//! use policies::{Vars, Verdict, Want};
//!
//! let text = r#"
//!     [broker]
//!     ask = ["/"]
//!     ask_write = ["~"]
//!     deny = ["~/.ssh", "**/*.pem"]
//! "#;
//! let vars = Vars { home: "/home/u".into(), workspace: "/ws".into(), tmpdir: "/tmp/s".into() };
//! let mut policy = policies::load_str("example.toml", text, Path::new("/"))?.resolve(&vars)?;
//! let broker = &mut policy.broker;
//! broker.protect("/home/u/.sluice/audit.log".into(), "sluice's audit log");
//!
//! let decision = broker.decide(Path::new("/home/u/.ssh/id_rsa"), Want::Read);
//! assert_eq!(decision.verdict, Verdict::Deny);
//! assert_eq!(decision.reason, r#"denied by rule deny "~/.ssh" (example.toml:5)"#);
//! let decision = broker.decide(Path::new("/etc/hosts"), Want::Write);
//! assert_eq!(decision.reason, r#"rule ask "/" (example.toml:3) grants read only"#);
//! assert_eq!(broker.decide(Path::new("/home/u/notes"), Want::Write).verdict, Verdict::Ask);
//! let decision = broker.decide(Path::new("/home/u/.sluice/audit.log"), Want::Read);
//! assert_eq!((decision.verdict, decision.rule), (Verdict::Deny, None));
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
//!
//! The broker's rules are decided on the path they are given, which must be
//! the real path of the file (the caller resolves it); a relative path, or
//! one with `.`, `..` or empty components, is denied. A broker `deny` is not
//! absolute: a more specific rule inside it wins, as `FORMAT.md` describes.
//! Only [`BrokerPolicy::protect`]ed paths are denied before any rule. sluice
//! serves brokered files with its own rights, so the broker can hand out what
//! the sandbox itself cannot reach; the built-in policies deny through the
//! broker what their `[filesystem]` lists deny or keep read-only.

mod broker;
mod deny_walk;
mod error;
mod load;
pub mod model;
mod net;
mod parse;
mod print;
mod protect;
mod raw;
mod resolve;
mod rule;
mod size;
mod spec;
mod vars;

#[cfg(test)]
mod tests;

pub use broker::{BrokerPolicy, BrokerRule, Decision};
pub use deny_walk::{WalkStats, MAX_ENTRIES, MAX_MATCHES, MAX_REPOSITORIES};
pub use error::{Location, PolicyError};
pub use load::{load, load_str, read_policy_file, MAX_POLICY_BYTES};
pub use model::*;
pub use net::{
    AskHosts, Host, HostPattern, HostPolicy, HostRule, DEFAULT_PORTS, DNS_PORT, PROXY_PORT,
};
pub use protect::{Protect, ProtectRule};
pub use resolve::FsRule;
pub use rule::{literal_pattern, Verdict, Want};
pub use spec::PolicySpec;
pub use vars::Vars;

/// The built-in `default` of this platform: the Linux one, or on macOS the
/// macOS one (so the policies that extend `default` extend it there).
#[cfg(not(target_os = "macos"))]
const DEFAULT: &str = include_str!("../builtin/default.toml");
#[cfg(target_os = "macos")]
const DEFAULT: &str = MACOS;

/// The built-in policy for macOS's paths, by name on every platform (for
/// review: `sluice policy show macos --seatbelt`).
const MACOS: &str = include_str!("../builtin/macos.toml");

/// The built-in policies, by name: `(name, TOML text)`.
const BUILTINS: [(&str, &str); 7] = [
    ("default", DEFAULT),
    ("macos", MACOS),
    ("readonly", include_str!("../builtin/readonly.toml")),
    ("agent", include_str!("../builtin/agent.toml")),
    ("claude-code", include_str!("../builtin/claude-code.toml")),
    ("codex", include_str!("../builtin/codex.toml")),
    ("aider", include_str!("../builtin/aider.toml")),
];

/// The names of the built-in policies, as `sluice policy list` shows them.
pub fn builtin_names() -> &'static [&'static str] {
    &[
        "default",
        "macos",
        "readonly",
        "agent",
        "claude-code",
        "codex",
        "aider",
    ]
}

/// The TOML text of a built-in policy, as embedded in the binary.
pub fn builtin_source(name: &str) -> Option<&'static str> {
    BUILTINS
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, text)| *text)
}
