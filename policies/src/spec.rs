//! [`PolicySpec`]: a policy merged over its `extends`, before variables are
//! substituted and paths checked.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Location;
use crate::model::{Layer, Limits, Nested, NetPolicy, Ptrace};
use crate::rule::BrokerList;

/// One of the lists of `[filesystem]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FsList {
    Read,
    Write,
    Execute,
    ReadOnly,
    Deny,
}

impl FsList {
    pub(crate) const ALL: [FsList; 5] = [
        FsList::Read,
        FsList::Write,
        FsList::Execute,
        FsList::ReadOnly,
        FsList::Deny,
    ];

    /// The key in a policy file, within `[filesystem]`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FsList::Read => "read",
            FsList::Write => "write",
            FsList::Execute => "execute",
            FsList::ReadOnly => "read_only",
            FsList::Deny => "deny",
        }
    }

    /// The dotted key named in error messages.
    pub(crate) fn key(self) -> String {
        format!("filesystem.{}", self.name())
    }

    /// Whether an entry of this list is "deny-within-allow": it may be
    /// missing, and its last component may be a glob.
    pub(crate) fn narrows(self) -> bool {
        matches!(self, FsList::ReadOnly | FsList::Deny)
    }
}

/// A `[broker]` pattern as written, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PatternEntry {
    pub written: String,
    pub location: Location,
}

/// A path as written, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathEntry {
    pub written: String,
    pub optional: bool,
    /// `create = true`: a missing directory is made before launch
    /// ([`PolicySpec::dirs_to_create`]).
    pub create: bool,
    pub location: Location,
}

/// An `[environment] set` value as written, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvValue {
    pub written: String,
    pub location: Location,
}

/// The merged, unresolved policy: paths still hold variables and have not
/// been checked. Make one with [`crate::load`] or [`crate::load_str`], adjust
/// it with the command-line overrides, then [`resolve`](PolicySpec::resolve) it.
#[derive(Debug, Clone)]
pub struct PolicySpec {
    pub(crate) name: String,
    /// Indexed by `FsList as usize`.
    pub(crate) filesystem: [Vec<PathEntry>; 5],
    /// `None`: no policy in the chain has a `[network]` table.
    pub(crate) network: Option<NetPolicy>,
    pub(crate) limits: Limits,
    pub(crate) env_pass: Vec<String>,
    pub(crate) env_set: BTreeMap<String, EnvValue>,
    pub(crate) best_effort: BTreeSet<Layer>,
    /// `None`: no policy in the chain sets it (the default applies).
    pub(crate) nested_best_effort: Option<BTreeSet<Layer>>,
    pub(crate) nested: Option<Nested>,
    /// Indexed by `BrokerList as usize`.
    pub(crate) broker: [Vec<PatternEntry>; 5],
    /// `[broker] transparent`; `None`: no policy in the chain says.
    pub(crate) transparent: Option<bool>,
    /// `[process] ptrace`; `None`: no policy in the chain says.
    pub(crate) ptrace: Option<Ptrace>,
    /// The files [`crate::load`] read, as opened (absolute, symlinks not
    /// resolved): the policy's own and every file it extends. Built-in
    /// policies have none.
    pub(crate) files: Vec<std::path::PathBuf>,
    /// `[filesystem] protect`, parent first.
    pub(crate) protect: Vec<PatternEntry>,
}

impl PolicySpec {
    /// An empty policy: nothing allowed.
    pub(crate) fn new(name: &str) -> Self {
        PolicySpec {
            name: name.to_string(),
            filesystem: Default::default(),
            network: None,
            limits: Limits::default(),
            env_pass: Vec::new(),
            env_set: BTreeMap::new(),
            best_effort: BTreeSet::new(),
            nested_best_effort: None,
            nested: None,
            broker: Default::default(),
            transparent: None,
            ptrace: None,
            files: Vec::new(),
            protect: Vec::new(),
        }
    }

    /// The files this policy was read from, as opened (absolute, symlinks
    /// not resolved, so a link that was followed is named, not its target):
    /// the policy file and every file it extends, directly or not; empty
    /// for a built-in.
    pub fn files(&self) -> &[std::path::PathBuf] {
        &self.files
    }

    /// The built-in name or file path the policy was loaded from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a tree that may be read (same syntax as a policy path; a missing
    /// path is an error at [`resolve`](PolicySpec::resolve)).
    pub fn allow_read(&mut self, path: &str) {
        self.push_override(FsList::Read, path);
    }

    /// Adds a tree that may be read and written.
    pub fn allow_write(&mut self, path: &str) {
        self.push_override(FsList::Write, path);
    }

    /// Adds a `[filesystem] protect` pattern (same syntax as in a policy),
    /// given by sluice itself (a hooks directory git's configuration
    /// names), to a policy that has a `protect` list: one without guards
    /// nothing, and gets no guard from this. Whether it was added.
    pub fn protect_too(&mut self, pattern: &str) -> bool {
        let guards = self.protect.iter().any(|p| !p.written.starts_with('!'));
        if guards {
            self.protect.push(PatternEntry {
                written: pattern.to_string(),
                location: Location::CommandLine,
            });
        }
        guards
    }

    /// What happens inside another sluice sandbox: the policy's `nested`,
    /// or the platform's default.
    pub fn nested(&self) -> Nested {
        self.nested.unwrap_or(Nested::PLATFORM_DEFAULT)
    }

    /// Sets what happens inside another sluice sandbox (`--nested`).
    pub fn set_nested(&mut self, nested: Nested) {
        self.nested = Some(nested);
    }

    /// Turns transparent brokering on (`sluice run --transparent`).
    pub fn set_transparent(&mut self) {
        self.transparent = Some(true);
    }

    /// Replaces the network policy.
    pub fn set_network(&mut self, net: NetPolicy) {
        self.network = Some(net);
    }

    /// Allows one more host (`--allow-host`): the network becomes the hosts
    /// mode, keeping the hosts the policy named; a policy of another mode
    /// (none, all, tcp) is replaced by this host alone.
    pub fn allow_host(&mut self, rule: crate::HostRule) {
        match &mut self.network {
            Some(NetPolicy::Hosts(hosts)) => hosts.allow.push(rule),
            other => {
                *other = Some(NetPolicy::Hosts(crate::HostPolicy {
                    allow: vec![rule],
                    ask: crate::AskHosts::No,
                }))
            }
        }
    }

    /// Asks the person about one more host (`--ask-host`): the network
    /// becomes the hosts mode as with [`PolicySpec::allow_host`], and the
    /// rule joins `ask_hosts` (which `ask_hosts = true` already covers).
    pub fn ask_host(&mut self, rule: crate::HostRule) {
        if !matches!(self.network, Some(NetPolicy::Hosts(_))) {
            self.network = Some(NetPolicy::Hosts(crate::HostPolicy::default()));
        }
        let Some(NetPolicy::Hosts(hosts)) = &mut self.network else {
            unreachable!("set above");
        };
        match &mut hosts.ask {
            crate::AskHosts::Listed(rules) => rules.push(rule),
            crate::AskHosts::Any => {}
            no => *no = crate::AskHosts::Listed(vec![rule]),
        }
    }

    fn push_override(&mut self, list: FsList, path: &str) {
        self.list_mut(list).push(PathEntry {
            written: path.to_string(),
            optional: false,
            create: false,
            location: Location::CommandLine,
        });
    }

    pub(crate) fn list(&self, list: FsList) -> &[PathEntry] {
        &self.filesystem[list as usize]
    }

    pub(crate) fn list_mut(&mut self, list: FsList) -> &mut Vec<PathEntry> {
        &mut self.filesystem[list as usize]
    }

    pub(crate) fn broker_list(&self, list: BrokerList) -> &[PatternEntry] {
        &self.broker[list as usize]
    }

    pub(crate) fn broker_list_mut(&mut self, list: BrokerList) -> &mut Vec<PatternEntry> {
        &mut self.broker[list as usize]
    }

    /// Layers `child` over `self` (the parent): lists (`[filesystem]` and
    /// `[broker]`) concatenate, parent first; `[network]` replaces as a whole; each limit and each `set`
    /// variable overrides; best-effort layers union; `nested` and
    /// `nested_best_effort` replace. The name stays `self`'s.
    pub(crate) fn merge(&mut self, child: PolicySpec) {
        for (mine, theirs) in self.filesystem.iter_mut().zip(child.filesystem) {
            mine.extend(theirs);
        }
        for (mine, theirs) in self.broker.iter_mut().zip(child.broker) {
            mine.extend(theirs);
        }
        self.protect.extend(child.protect);
        self.transparent = child.transparent.or(self.transparent);
        self.ptrace = child.ptrace.or(self.ptrace);
        if child.network.is_some() {
            self.network = child.network;
        }
        let (limits, theirs) = (&mut self.limits, child.limits);
        limits.address_space = theirs.address_space.or(limits.address_space);
        limits.open_files = theirs.open_files.or(limits.open_files);
        limits.processes = theirs.processes.or(limits.processes);
        limits.cpu_seconds = theirs.cpu_seconds.or(limits.cpu_seconds);
        limits.file_size = theirs.file_size.or(limits.file_size);
        self.env_pass.extend(child.env_pass);
        self.env_set.extend(child.env_set);
        self.best_effort.extend(child.best_effort);
        if child.nested_best_effort.is_some() {
            self.nested_best_effort = child.nested_best_effort;
        }
        self.nested = child.nested.or(self.nested);
    }
}
