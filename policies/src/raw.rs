//! The policy file as serde sees it: one struct per table, unknown keys
//! rejected, and spans kept on every value a later step may complain about.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::model::{Layer, Limits, Nested, NetPolicy, Ptrace};
use crate::net::{AskHosts, HostPolicy, HostRule};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    #[serde(default)]
    pub extends: Vec<Spanned<String>>,
    pub nested: Option<NestedMode>,
    #[serde(default)]
    pub filesystem: RawFilesystem,
    pub network: Option<RawNetwork>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub environment: RawEnvironment,
    #[serde(default)]
    pub layers: RawLayers,
    #[serde(default)]
    pub broker: RawBroker,
    #[serde(default)]
    pub process: RawProcess,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcess {
    /// Which processes the program may trace (`none`, `sandbox`).
    pub ptrace: Option<PtraceMode>,
}

#[derive(Debug)]
pub(crate) struct PtraceMode(pub Ptrace);

impl<'de> Deserialize<'de> for PtraceMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_string(deserializer, |mode| mode.parse().map(PtraceMode))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFilesystem {
    #[serde(default)]
    pub read: Vec<Spanned<RawPath>>,
    #[serde(default)]
    pub write: Vec<Spanned<RawPath>>,
    #[serde(default)]
    pub execute: Vec<Spanned<RawPath>>,
    #[serde(default)]
    pub read_only: Vec<Spanned<RawPath>>,
    #[serde(default)]
    pub deny: Vec<Spanned<RawPath>>,
    /// Paths that run code later: never written by the program (`protect.rs`).
    #[serde(default)]
    pub protect: Vec<Spanned<ProtectPattern>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBroker {
    #[serde(default)]
    pub allow: Vec<Spanned<BrokerPattern>>,
    #[serde(default)]
    pub allow_write: Vec<Spanned<BrokerPattern>>,
    #[serde(default)]
    pub ask: Vec<Spanned<BrokerPattern>>,
    #[serde(default)]
    pub ask_write: Vec<Spanned<BrokerPattern>>,
    #[serde(default)]
    pub deny: Vec<Spanned<BrokerPattern>>,
    /// Broker the program's own `open` calls too (seccomp user notification).
    pub transparent: Option<bool>,
}

/// A `[broker]` pattern, checked as far as it can be before its variables
/// are known (see [`crate::broker::check_written`]).
#[derive(Debug)]
pub(crate) struct BrokerPattern(pub String);

/// A `[filesystem] protect` pattern, or an exception `!PATTERN`.
#[derive(Debug)]
pub(crate) struct ProtectPattern(pub String);

/// `"PATH"` or `{ path = "PATH", optional = true, create = true }`.
#[derive(Debug)]
pub(crate) struct RawPath {
    pub path: String,
    pub optional: bool,
    pub create: bool,
}

/// `[network]`, checked as a whole: ports only make sense with `mode = "tcp"`,
/// hosts with `mode = "hosts"` (which they imply when `mode` is left out).
#[derive(Debug, Deserialize)]
#[serde(try_from = "NetworkFields")]
pub(crate) struct RawNetwork(pub NetPolicy);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkFields {
    mode: Option<NetMode>,
    #[serde(default)]
    connect: Vec<u16>,
    #[serde(default)]
    bind: Vec<u16>,
    #[serde(default)]
    hosts: Vec<HostEntry>,
    ask_hosts: Option<AskHostsEntry>,
}

#[derive(Debug)]
enum NetMode {
    None,
    All,
    Tcp,
    Hosts,
}

/// A `hosts` or `ask_hosts` entry, checked where it is written.
#[derive(Debug)]
struct HostEntry(HostRule);

/// `ask_hosts = true`, `false`, or a list of host rules.
#[derive(Debug)]
struct AskHostsEntry(AskHosts);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub address_space: Option<Size>,
    pub open_files: Option<u64>,
    pub processes: Option<u64>,
    pub cpu_seconds: Option<u64>,
    pub file_size: Option<Size>,
}

/// Bytes: an integer, or a string that [`Limits::parse_size`] accepts.
#[derive(Debug)]
pub(crate) struct Size(pub u64);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnvironment {
    #[serde(default)]
    pub pass: Vec<EnvPattern>,
    #[serde(default)]
    pub set: BTreeMap<EnvName, Spanned<String>>,
}

/// A variable name or a glob over names (`LC_*`).
#[derive(Debug)]
pub(crate) struct EnvPattern(pub String);

/// A name that can be put in an environment: not empty, no `=`, no NUL.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EnvName(pub String);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLayers {
    #[serde(default)]
    pub best_effort: Vec<LayerName>,
    pub nested_best_effort: Option<Vec<LayerName>>,
}

#[derive(Debug)]
pub(crate) struct LayerName(pub Layer);

#[derive(Debug)]
pub(crate) struct NestedMode(pub Nested);

impl TryFrom<NetworkFields> for RawNetwork {
    type Error = String;

    fn try_from(fields: NetworkFields) -> Result<Self, String> {
        let has_ports = !fields.connect.is_empty() || !fields.bind.is_empty();
        let has_hosts = !fields.hosts.is_empty() || fields.ask_hosts.is_some();
        let mode = match fields.mode {
            Some(mode) => mode,
            None if has_hosts => NetMode::Hosts,
            None => {
                return Err(
                    "missing 'mode' (none, all, tcp or hosts), or 'hosts' to name the hosts"
                        .to_string(),
                )
            }
        };
        Ok(RawNetwork(match mode {
            NetMode::None | NetMode::All | NetMode::Hosts if has_ports => {
                return Err("'connect' and 'bind' need mode = \"tcp\"".to_string())
            }
            NetMode::None | NetMode::All | NetMode::Tcp if has_hosts => {
                return Err("'hosts' and 'ask_hosts' need mode = \"hosts\" (or no mode)".to_string())
            }
            NetMode::None => NetPolicy::None,
            NetMode::All => NetPolicy::All,
            NetMode::Tcp => NetPolicy::Tcp {
                connect: fields.connect.into_iter().collect(),
                bind: fields.bind.into_iter().collect(),
            },
            NetMode::Hosts => NetPolicy::Hosts(HostPolicy {
                allow: fields.hosts.into_iter().map(|h| h.0).collect(),
                ask: fields.ask_hosts.map(|a| a.0).unwrap_or_default(),
            }),
        }))
    }
}

/// Deserialises a string and checks or converts it with `parse`. The check
/// runs inside the visitor so that the error carries the string's own span.
fn parse_string<'de, D, T>(
    deserializer: D,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct ParseVisitor<F>(F);
    impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for ParseVisitor<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            (self.0)(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(ParseVisitor(parse))
}

impl<'de> Deserialize<'de> for NetMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_string(deserializer, |mode| match mode {
            "none" => Ok(NetMode::None),
            "all" => Ok(NetMode::All),
            "tcp" => Ok(NetMode::Tcp),
            "hosts" => Ok(NetMode::Hosts),
            _ => Err(format!(
                "unknown network mode '{mode}' (expected none, all, tcp or hosts)"
            )),
        })
    }
}

impl<'de> Deserialize<'de> for EnvPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_string(deserializer, |pattern| {
            globset::Glob::new(pattern)
                .map_err(|e| format!("invalid pattern '{pattern}': {}", e.kind()))?;
            Ok(EnvPattern(pattern.to_string()))
        })
    }
}

impl<'de> Deserialize<'de> for HostEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_string(deserializer, |text| text.parse().map(HostEntry))
    }
}

impl<'de> Deserialize<'de> for AskHostsEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AskVisitor;
        impl<'de> Visitor<'de> for AskVisitor {
            type Value = AskHostsEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or a list of hosts")
            }
            fn visit_bool<E: de::Error>(self, ask: bool) -> Result<AskHostsEntry, E> {
                Ok(AskHostsEntry(match ask {
                    true => AskHosts::Any,
                    false => AskHosts::No,
                }))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AskHostsEntry, A::Error> {
                let mut rules = Vec::new();
                while let Some(HostEntry(rule)) = seq.next_element()? {
                    rules.push(rule);
                }
                Ok(AskHostsEntry(AskHosts::Listed(rules)))
            }
        }
        deserializer.deserialize_any(AskVisitor)
    }
}

thread_local! {
    /// Set while a built-in policy's text is deserialised ([`built_in`]):
    /// its patterns are not checked with stand-in variables.
    static BUILT_IN: Cell<bool> = const { Cell::new(false) };
}

/// Runs `parse` (a deserialisation of a built-in policy's text) without
/// the stand-in check of its `[broker]` and `protect` patterns: a third of
/// a launch's load of `default` (~0.13 ms of ~0.48). Nothing is lost: the
/// built-ins are compiled in, `every_builtin_pattern_passes_the_load_time_check`
/// makes that check of each of their patterns, and resolution checks every
/// pattern again with the real values. A policy file is always checked.
pub(crate) fn built_in<T>(parse: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            BUILT_IN.with(|flag| flag.set(self.0));
        }
    }
    let _reset = Reset(BUILT_IN.with(|flag| flag.replace(true)));
    parse()
}

/// `check(pattern)`, unless a built-in policy is being read.
fn checked(pattern: &str, check: fn(&str) -> Result<(), String>) -> Result<String, String> {
    if !BUILT_IN.with(Cell::get) {
        check(pattern)?;
    }
    Ok(pattern.to_string())
}

impl<'de> Deserialize<'de> for BrokerPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_string(deserializer, |pattern| {
            checked(pattern, crate::broker::check_written).map(BrokerPattern)
        })
    }
}

impl<'de> Deserialize<'de> for ProtectPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_string(deserializer, |pattern| {
            checked(pattern, crate::protect::check_written).map(ProtectPattern)
        })
    }
}

impl<'de> Deserialize<'de> for EnvName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_string(deserializer, |name| {
            if name.is_empty() || name.contains(['=', '\0']) {
                Err(format!(
                    "invalid environment variable name '{}'",
                    name.escape_debug()
                ))
            } else {
                Ok(EnvName(name.to_string()))
            }
        })
    }
}

impl<'de> Deserialize<'de> for LayerName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_string(deserializer, |name| name.parse().map(LayerName))
    }
}

impl<'de> Deserialize<'de> for NestedMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_string(deserializer, |mode| mode.parse().map(NestedMode))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: an integer, or a string such as \"8GiB\"")
            }
            fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<Size, E> {
                Ok(Size(bytes))
            }
            fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<Size, E> {
                u64::try_from(bytes)
                    .map(Size)
                    .map_err(|_| E::custom(format!("size {bytes} is negative")))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Size, E> {
                Limits::parse_size(text).map(Size).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// Accepts the short form `"PATH"` as well as the table.
impl<'de> Deserialize<'de> for RawPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct PathTable {
            path: String,
            #[serde(default)]
            optional: bool,
            #[serde(default)]
            create: bool,
        }
        struct PathVisitor;
        impl<'de> Visitor<'de> for PathVisitor {
            type Value = RawPath;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path, or a table { path = \"...\", optional = true }")
            }
            fn visit_str<E: de::Error>(self, path: &str) -> Result<RawPath, E> {
                Ok(RawPath {
                    path: path.to_string(),
                    optional: false,
                    create: false,
                })
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<RawPath, M::Error> {
                let table = PathTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawPath {
                    path: table.path,
                    optional: table.optional,
                    create: table.create,
                })
            }
        }
        deserializer.deserialize_any(PathVisitor)
    }
}
