//! The resolved, typed policy: what the launcher enforces.
//!
//! Every path here is absolute and canonical (symlinks resolved at launch), and
//! every variable has been substituted. Nothing in this module touches the file
//! system; producing a `Policy` is the job of [`crate::PolicySpec::resolve`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::broker::BrokerPolicy;

/// A fully resolved policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Where the policy came from: a built-in name (`default`) or a file path.
    pub name: String,
    pub filesystem: FsPolicy,
    pub network: NetPolicy,
    pub limits: Limits,
    pub env: EnvPolicy,
    pub layers: Layers,
    /// Which file opens the broker serves, asks about or refuses (`[broker]`).
    pub broker: BrokerPolicy,
    /// Broker the program's own `open` calls too, not only the SDK's
    /// requests (`[broker] transparent`, Linux: seccomp user notification).
    pub transparent: bool,
}

/// File-system access. Later lists narrow earlier ones: `read_only` and `deny`
/// hold even inside trees that `read`, `write` or `execute` allow
/// (deny-within-allow).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsPolicy {
    /// Trees that may be read (files and directory listings).
    pub read: Vec<PathBuf>,
    /// Trees that may be read and written (create, remove, rename, truncate).
    pub write: Vec<PathBuf>,
    /// Trees whose files may be executed (implies read).
    pub execute: Vec<PathBuf>,
    /// Readable but never writable, even inside a `write` tree.
    pub read_only: Vec<PathBuf>,
    /// Neither readable nor writable, even inside an allowed tree. Only the
    /// entries that existed at resolution time (after glob expansion).
    pub deny: Vec<PathBuf>,
    /// Entries that did not exist when the policy was resolved: optional
    /// allows, and deny or read-only paths. Kept for the enforcement report.
    pub absent: Vec<PathBuf>,
}

/// Network access.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetPolicy {
    /// No sockets but AF_UNIX.
    #[default]
    None,
    /// Unrestricted.
    All,
    /// TCP only, to these ports; no UDP, no raw sockets.
    Tcp {
        connect: BTreeSet<u16>,
        bind: BTreeSet<u16>,
    },
}

/// Resource limits; `None` leaves the inherited limit alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_AS, bytes.
    pub address_space: Option<u64>,
    /// RLIMIT_NOFILE.
    pub open_files: Option<u64>,
    /// RLIMIT_NPROC.
    pub processes: Option<u64>,
    /// RLIMIT_CPU, seconds.
    pub cpu_seconds: Option<u64>,
    /// RLIMIT_FSIZE, bytes.
    pub file_size: Option<u64>,
}

/// The child's environment: nothing passes unless named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvPolicy {
    /// Variable names or globs (`LC_*`) copied from sluice's own environment.
    pub pass: Vec<String>,
    /// Variables set to fixed values (after variable substitution).
    pub set: BTreeMap<String, String>,
}

/// A protection layer of the sandbox, as named in policies and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// Landlock file-system rules.
    Filesystem,
    /// Landlock TCP rules and the seccomp socket-family filter.
    Network,
    /// Landlock scopes: abstract unix sockets and signals.
    Scopes,
    /// The seccomp deny filter.
    Syscalls,
    /// The private mount namespace that makes deny-within-allow hold.
    Namespaces,
    /// PR_SET_NO_NEW_PRIVS.
    NoNewPrivs,
    /// Dropping every capability (effective, permitted, inheritable, ambient, bounding).
    Capabilities,
    /// Resource limits.
    Limits,
}

impl Layer {
    pub const ALL: [Layer; 8] = [
        Layer::Filesystem,
        Layer::Network,
        Layer::Scopes,
        Layer::Syscalls,
        Layer::Namespaces,
        Layer::NoNewPrivs,
        Layer::Capabilities,
        Layer::Limits,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Filesystem => "filesystem",
            Layer::Network => "network",
            Layer::Scopes => "scopes",
            Layer::Syscalls => "syscalls",
            Layer::Namespaces => "namespaces",
            Layer::NoNewPrivs => "no_new_privs",
            Layer::Capabilities => "capabilities",
            Layer::Limits => "limits",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Layer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layer::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Layer::ALL.iter().map(|l| l.as_str()).collect();
                format!("unknown layer '{s}' (expected one of {})", names.join(", "))
            })
    }
}

/// Which layers must be enforced for the launch to go ahead. Every layer is
/// required unless the policy lists it as best effort.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layers {
    pub best_effort: BTreeSet<Layer>,
}

impl Layers {
    pub fn is_required(&self, layer: Layer) -> bool {
        !self.best_effort.contains(&layer)
    }
}
