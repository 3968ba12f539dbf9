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
pub use crate::net::NetPolicy;

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
    /// What `sluice run` does when it is itself inside a sluice sandbox.
    pub nested: Nested,
    /// Which file opens the broker serves, asks about or refuses (`[broker]`).
    pub broker: BrokerPolicy,
    /// Broker the program's own `open` calls too, not only the SDK's
    /// requests (`[broker] transparent`, Linux: seccomp user notification).
    pub transparent: bool,
    /// Which processes the program may trace (`[process] ptrace`).
    pub ptrace: Ptrace,
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
    /// The `read_only` entries among `absent` (no globs): no mount can
    /// guard a path that does not exist, so a program that may write the
    /// tree around one can create it. The supervisor checks them when the
    /// session ends.
    pub absent_read_only: Vec<PathBuf>,
    /// Paths that run code later (`protect`): never written by the program,
    /// at any depth, existing at launch or not.
    pub protect: crate::Protect,
    /// `deny` entries that are patterns (`**/.env`, `$WORKSPACE/**/*.pem`,
    /// `!**/.env.example`): unreadable at any depth. `sluice run` walks
    /// the trees they apply to before launch and adds every match to
    /// `deny` ([`FsPolicy::expand_deny_patterns`]).
    pub deny_patterns: crate::Protect,
    /// Symlinks on the way to a `read`, `write` or `execute` entry as it was
    /// written (`~/work -> /data/work`): each link's own path (its parent
    /// canonical) and its target as read. The sandbox's view, which holds
    /// only the canonical trees, recreates them so that the name the policy
    /// used works inside too; the trees they lead to are decided as usual.
    pub links: Vec<(PathBuf, PathBuf)>,
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
    /// A PID namespace of the program's own, with an init and its own
    /// `/proc`: other processes are invisible.
    PidNamespace,
    /// PR_SET_NO_NEW_PRIVS.
    NoNewPrivs,
    /// Dropping every capability (effective, permitted, inheritable, ambient, bounding).
    Capabilities,
    /// Resource limits.
    Limits,
}

impl Layer {
    pub const ALL: [Layer; 9] = [
        Layer::Filesystem,
        Layer::Network,
        Layer::Scopes,
        Layer::Syscalls,
        Layer::Namespaces,
        Layer::PidNamespace,
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
            Layer::PidNamespace => "pid_namespace",
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    pub best_effort: BTreeSet<Layer>,
    /// Also best effort when the sandbox is stacked inside another sluice
    /// sandbox, whose own version of the layer still holds over the whole
    /// process tree (its mount view, its process cgroup).
    pub nested_best_effort: BTreeSet<Layer>,
}

impl Default for Layers {
    fn default() -> Self {
        Layers {
            best_effort: BTreeSet::new(),
            nested_best_effort: Layers::DEFAULT_NESTED_BEST_EFFORT.into_iter().collect(),
        }
    }
}

impl Layers {
    /// What the outer sandbox makes impossible inside it: Landlock forbids
    /// every mount to a sandboxed process, its seccomp filter refuses new
    /// user namespaces (so a PID namespace too), and the session cgroup is
    /// not writable from inside.
    pub const DEFAULT_NESTED_BEST_EFFORT: [Layer; 3] =
        [Layer::Namespaces, Layer::PidNamespace, Layer::Limits];

    pub fn is_required(&self, layer: Layer) -> bool {
        !self.best_effort.contains(&layer)
    }

    /// The layers as they apply to a sandbox stacked inside another one.
    pub fn when_nested(&self) -> Layers {
        Layers {
            best_effort: self
                .best_effort
                .union(&self.nested_best_effort)
                .copied()
                .collect(),
            nested_best_effort: self.nested_best_effort.clone(),
        }
    }
}

/// Which processes the program may trace with ptrace(2) (`[process]
/// ptrace`): strace and gdb of its own children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ptrace {
    /// None: `ptrace`, `process_vm_readv` and `process_vm_writev` are
    /// refused.
    #[default]
    None,
    /// The sandbox's own processes: the calls are allowed, and Landlock
    /// (its ptrace scope) refuses any process outside the sandbox.
    Sandbox,
}

impl Ptrace {
    pub fn as_str(self) -> &'static str {
        match self {
            Ptrace::None => "none",
            Ptrace::Sandbox => "sandbox",
        }
    }
}

impl FromStr for Ptrace {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Ptrace::None, Ptrace::Sandbox]
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown ptrace '{s}' (expected none or sandbox)"))
    }
}

/// What `sluice run` does when started inside a sluice sandbox (`nested`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nested {
    /// Apply this policy on top of the outer sandbox: Landlock and seccomp
    /// only ever narrow, so the program gets the intersection of both.
    Stack,
    /// Run the command directly, relying on the outer sandbox.
    Skip,
    /// Like `Skip`, with a one-line notice on stderr.
    Warn,
    /// Refuse to start (exit 125).
    Error,
}

impl Nested {
    pub const ALL: [Nested; 4] = [Nested::Stack, Nested::Skip, Nested::Warn, Nested::Error];

    /// `stack` on Linux, where layers stack; `skip` on macOS, where
    /// Seatbelt cannot apply a profile inside a sandboxed process.
    pub const PLATFORM_DEFAULT: Nested = if cfg!(target_os = "macos") {
        Nested::Skip
    } else {
        Nested::Stack
    };

    pub fn as_str(self) -> &'static str {
        match self {
            Nested::Stack => "stack",
            Nested::Skip => "skip",
            Nested::Warn => "warn",
            Nested::Error => "error",
        }
    }
}

impl fmt::Display for Nested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Nested {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Nested::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| {
                format!("unknown nested mode '{s}' (expected stack, skip, warn or error)")
            })
    }
}
