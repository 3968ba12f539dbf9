//! What a record holds. The log adds the envelope (`kind`, `seq`, `time`,
//! `session` first; `prev` and `hash` last); the caller fills in the body.
//! Field order here is the order on disk.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::escape;

/// The first record of a session (seq 0): what ran, under which policy, and
/// what the kernel actually enforced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRecord {
    pub sluice_version: String,
    pub policy: String,
    /// SHA-256 (hex) of the resolved policy's TOML text ([`super::chain::sha256_hex`]).
    pub policy_digest: String,
    /// The enforcement report of the launch, as JSON.
    pub enforcement: serde_json::Value,
    #[serde(with = "escape::os_strings")]
    pub argv: Vec<OsString>,
    #[serde(with = "escape::path")]
    pub workspace: PathBuf,
    pub supervisor_pid: u32,
    pub child_pid: u32,
}

#[cfg(test)]
impl StartRecord {
    /// A session's start as unit tests record it: policy `t`, nothing
    /// enforced, this process as the supervisor.
    pub fn for_test(workspace: PathBuf) -> StartRecord {
        StartRecord {
            sluice_version: "test".into(),
            policy: "t".into(),
            policy_digest: String::new(),
            enforcement: serde_json::Value::Null,
            argv: Vec::new(),
            workspace,
            supervisor_pid: std::process::id(),
            child_pid: 0,
        }
    }
}

/// The enforcement report as the start record holds it:
/// `{"landlock_abi": N, "layers": [{"layer", "status", "required", "detail"}]}`.
pub fn enforcement_json(report: &sandbox_child::EnforcementReport) -> serde_json::Value {
    let layers: Vec<serde_json::Value> = report
        .layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "layer": l.layer.to_string(),
                "status": l.status.as_str(),
                "required": l.required,
                "detail": l.detail,
            })
        })
        .collect();
    serde_json::json!({ "landlock_abi": report.landlock_abi, "layers": layers })
}

/// One brokered decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The requesting process.
    pub pid: u32,
    /// Its executable (`/proc/<pid>/exe`), when it could be read.
    #[serde(with = "escape::opt_path")]
    pub exe: Option<PathBuf>,
    /// The name the client gave itself: untrusted.
    pub client: String,
    pub via: Via,
    /// The id of the request on its connection.
    pub request_id: u64,
    pub op: Op,
    #[serde(with = "escape::path")]
    pub path_asked: PathBuf,
    /// What was actually opened (after resolution), when something was.
    #[serde(with = "escape::opt_path")]
    pub path_opened: Option<PathBuf>,
    pub access: Access,
    #[serde(with = "flag_names")]
    pub flags: proto::OpenFlags,
    pub decision: Decision,
    pub by: By,
    /// The deciding rule's display text, when a rule decided.
    pub rule: Option<String>,
    pub reason: Option<String>,
    /// From the request's arrival to the decision, in microseconds.
    pub latency_us: u64,
}

/// The kind of a connection's record as it opened ([`Record::ConnectionOpen`]),
/// which the end record's counts leave out.
pub const CONNECTION_OPEN: &str = "connection-open";

/// One connection through the hosts mode's proxy (`crate::net`), written
/// when it ends (or when it was refused); an allowed one is also written
/// as it opens (`connection-open`), before anything passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// The host as the program named it (a name or an address literal).
    pub host: String,
    pub port: u16,
    /// How the program asked: `connect` (HTTP CONNECT), `http` (a plain
    /// HTTP request to the proxy), `loopback` (a loopback service).
    pub via: String,
    /// The address connected to, when one was.
    pub address: Option<String>,
    pub decision: Decision,
    pub by: By,
    /// The allowing rule's text, when a rule decided.
    pub rule: Option<String>,
    pub reason: Option<String>,
    /// Bytes from the program to the host, and back.
    pub sent: u64,
    pub received: u64,
    /// From the program's request to the connection's end, in milliseconds.
    pub duration_ms: u64,
}

/// The last record of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndRecord {
    /// How the program ended: `exit 0`, `signal 9`, ...
    pub exit: String,
    /// The decisions recorded in this session (filled in by the log).
    pub counts: Counts,
    /// Read-only paths absent at launch that the program created, and
    /// where the supervisor moved each (`crate::quarantine`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quarantined: Vec<Quarantined>,
    /// The session's refusals grouped by path and access, with counts
    /// (the decision records hold each one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refused>,
}

/// Every refusal of one path for one access, in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// As the program named it (absolute, or relative to its directory).
    #[serde(with = "escape::path")]
    pub path: PathBuf,
    pub op: Op,
    pub access: Access,
    pub count: u64,
    /// Who or what refused it the first time, and by which rule.
    pub by: By,
    pub rule: Option<String>,
}

/// A path the policy keeps read-only, created by the program, moved aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    #[serde(with = "escape::path")]
    pub path: PathBuf,
    /// Where it is now; `None` if it could not be moved (or, with `why`,
    /// was only reported).
    #[serde(with = "escape::opt_path")]
    pub moved_to: Option<PathBuf>,
    /// What it is, where not a read-only path the program created: what
    /// the end-of-session check of the person's repositories found
    /// (`crate::git_state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Decisions per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub allowed: u64,
    pub denied: u64,
    pub error: u64,
    /// Queries answered "a person would be asked" (left out when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub would_ask: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Counts {
    pub fn add(&mut self, d: Decision) {
        match d {
            Decision::Allowed => self.allowed += 1,
            Decision::Denied => self.denied += 1,
            Decision::Error => self.error += 1,
            Decision::WouldAsk => self.would_ask += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.allowed + self.denied + self.error + self.would_ask
    }
}

/// A record as read back: the body of any kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    Start(StartRecord),
    Decision(DecisionRecord),
    Connection(ConnectionRecord),
    /// A connection the proxy opened, written before anything passes
    /// through it (its `connection` record, with the bytes, follows when
    /// it ends): a supervisor killed meanwhile leaves this one.
    #[serde(rename = "connection-open")]
    ConnectionOpen(ConnectionRecord),
    End(EndRecord),
}

/// A record with its envelope, as read back from a file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// RFC 3339, UTC, microseconds.
    pub time: String,
    pub session: String,
    #[serde(flatten)]
    pub record: Record,
    pub prev: String,
    pub hash: String,
}

impl Entry {
    /// The record's time in microseconds since the epoch (`None` if the
    /// text is not a valid time).
    pub fn micros(&self) -> Option<i64> {
        super::time::parse_rfc3339(&self.time).ok()
    }

    pub fn decision(&self) -> Option<&DecisionRecord> {
        match &self.record {
            Record::Decision(d) => Some(d),
            _ => None,
        }
    }

    /// A connection's record, at its end or as it opened.
    pub fn connection(&self) -> Option<&ConnectionRecord> {
        match &self.record {
            Record::Connection(c) | Record::ConnectionOpen(c) => Some(c),
            _ => None,
        }
    }
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let all: Vec<_> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        format!("'{s}' is not one of {}", all.join(", "))
                    })
            }
        }
    };
}

text_enum!(
    /// How the request reached the broker.
    Via {
        /// The client SDK, over the broker socket.
        Sdk = "sdk",
        /// The program's own system call, intercepted by seccomp user
        /// notification (transparent brokering), one value per call.
        SeccompOpen = "seccomp:open",
        SeccompOpenat = "seccomp:openat",
        SeccompOpenat2 = "seccomp:openat2",
        SeccompCreat = "seccomp:creat",
        SeccompConnect = "seccomp:connect",
        SeccompInotifyAddWatch = "seccomp:inotify_add_watch",
        SeccompMkdir = "seccomp:mkdir",
        SeccompMkdirat = "seccomp:mkdirat",
        SeccompRename = "seccomp:rename",
        SeccompRenameat = "seccomp:renameat",
        SeccompRenameat2 = "seccomp:renameat2",
        SeccompUnlink = "seccomp:unlink",
        SeccompUnlinkat = "seccomp:unlinkat",
        SeccompRmdir = "seccomp:rmdir",
        /// An IPv4 or IPv6 `socket()` under `[network] mode = "none"`,
        /// always refused (`broker::transparent::socket`).
        SeccompSocket = "seccomp:socket",
        /// A call the guard judged against `[filesystem] protect`.
        Guard = "guard",
    }
);

text_enum!(
    /// What was asked.
    Op {
        /// Open and pass a descriptor.
        Open = "open",
        /// Would an open be allowed?
        Query = "query",
        /// Connect to a named unix socket (transparent brokering).
        Connect = "connect",
        /// Watch a file or directory with inotify (transparent brokering).
        Watch = "watch",
        /// Make a directory (transparent brokering, the guard).
        Mkdir = "mkdir",
        /// The guard's calls: make a name by rename, link, symlink, mknod;
        /// make a file executable.
        Rename = "rename",
        Link = "link",
        Symlink = "symlink",
        Mknod = "mknod",
        Chmod = "chmod",
        Setxattr = "setxattr",
        /// Remove a name, a directory (transparent brokering).
        Unlink = "unlink",
        Rmdir = "rmdir",
        /// A sluice stacked inside registers its sandbox (the guard makes
        /// its program's writes there; `broker::guard::stacked`). The path
        /// is the registering process's executable.
        RegisterStacked = "register-stacked",
    }
);

text_enum!(
    Access {
        Read = "read",
        Write = "write",
        ReadWrite = "read-write",
    }
);

text_enum!(
    Decision {
        Allowed = "allowed",
        Denied = "denied",
        /// The request could not be carried out (not a policy refusal).
        Error = "error",
        /// A query's answer: an open would be put to a person.
        WouldAsk = "would-ask",
    }
);

text_enum!(
    /// Who or what decided.
    By {
        Rule = "rule",
        /// A person, asked at the prompt.
        Person = "person",
        /// Nobody answered the prompt in time.
        Timeout = "timeout",
        /// No one could be asked; the session's default applied.
        NonInteractiveDefault = "non-interactive-default",
        /// An "always" answer the person gave in an earlier session (the
        /// approvals overlay).
        Overlay = "overlay",
        /// An answer the person gave earlier in this session.
        Session = "session",
        /// Too many questions for the person: denied without asking.
        RateLimit = "rate-limit",
        /// A path sluice never lets through, whatever the policy says.
        Protected = "protected",
        Error = "error",
    }
);

impl From<proto::messages::Access> for Access {
    fn from(a: proto::messages::Access) -> Access {
        match a {
            proto::messages::Access::Read => Access::Read,
            proto::messages::Access::Write => Access::Write,
            proto::messages::Access::ReadWrite => Access::ReadWrite,
        }
    }
}

/// A request's [`proto::OpenFlags`] as the record stores them: the list of
/// the names of those set (`["create","truncate"]`). The mode of a created
/// file is not recorded (read back, it is 0).
pub(crate) mod flag_names {
    use std::fmt;

    use proto::OpenFlags;
    use serde::de::{self, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(flags: &OpenFlags, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for name in flags.names() {
            seq.serialize_element(name)?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OpenFlags, D::Error> {
        struct FlagsVisitor;

        impl<'de> Visitor<'de> for FlagsVisitor {
            type Value = OpenFlags;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of open flags")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OpenFlags, A::Error> {
                let mut flags = OpenFlags::default();
                while let Some(name) = seq.next_element::<std::borrow::Cow<str>>()? {
                    if !flags.set_named(&name) {
                        return Err(de::Error::unknown_variant(&name, &OpenFlags::NAMES));
                    }
                }
                Ok(flags)
            }
        }

        d.deserialize_seq(FlagsVisitor)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_enforcement_report_is_json_with_details_escaped() {
        use sandbox_child::{EnforcementReport, LayerReport, Status};
        let r = EnforcementReport {
            landlock_abi: 7,
            layers: vec![LayerReport {
                layer: policies::Layer::Limits,
                status: Status::Enforced,
                required: true,
                detail: "a \"b\"\n\\".into(),
            }],
        };
        let expected: serde_json::Value = serde_json::from_str(
            r#"{"landlock_abi":7,"layers":[{"layer":"limits","status":"enforced","required":true,"detail":"a \"b\"\u000a\\"}]}"#,
        )
        .unwrap();
        assert_eq!(super::enforcement_json(&r), expected);
    }

    use super::*;

    #[test]
    fn enums_read_and_print_as_their_record_text() {
        assert_eq!("read-write".parse::<Access>(), Ok(Access::ReadWrite));
        assert_eq!(
            By::NonInteractiveDefault.to_string(),
            "non-interactive-default"
        );
        assert_eq!(
            serde_json::to_string(&Via::SeccompOpenat).unwrap(),
            "\"seccomp:openat\""
        );
        let err = "maybe".parse::<Decision>().unwrap_err();
        assert_eq!(
            err,
            "'maybe' is not one of allowed, denied, error, would-ask"
        );
    }

    #[test]
    fn flags_are_a_list_of_names() {
        use proto::OpenFlags;
        let to_string = |f: &OpenFlags| {
            let mut out = Vec::new();
            flag_names::serialize(f, &mut serde_json::Serializer::new(&mut out)).unwrap();
            String::from_utf8(out).unwrap()
        };
        let from_str =
            |text: &str| flag_names::deserialize(&mut serde_json::Deserializer::from_str(text));
        let f = OpenFlags {
            create: true,
            directory: true,
            ..OpenFlags::default()
        };
        let text = to_string(&f);
        assert_eq!(text, r#"["create","directory"]"#);
        assert_eq!(from_str(&text).unwrap(), f);
        assert_eq!(to_string(&OpenFlags::default()), "[]");
        assert!(from_str(r#"["sideways"]"#).is_err());
    }

    /// The body of a decision as the log writes it (`serde_json::to_writer`
    /// in `log.rs`), to the byte: the flags a list of names, without the mode.
    #[test]
    fn a_decision_record_is_pinned() {
        let record = DecisionRecord {
            pid: 42,
            exe: Some(PathBuf::from("/usr/bin/cat")),
            client: "sdk".into(),
            via: Via::Sdk,
            request_id: 7,
            op: Op::Open,
            path_asked: PathBuf::from("/work/a file"),
            path_opened: Some(PathBuf::from("/work/a file")),
            access: Access::ReadWrite,
            flags: proto::OpenFlags {
                create: true,
                truncate: true,
                append: false,
                directory: false,
                mode: 0o600,
            },
            decision: Decision::Allowed,
            by: By::Rule,
            rule: Some("write /work".into()),
            reason: None,
            latency_us: 12,
        };
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            concat!(
                r#"{"pid":42,"exe":"/usr/bin/cat","client":"sdk","via":"sdk","request_id":7,"#,
                r#""op":"open","path_asked":"/work/a file","path_opened":"/work/a file","#,
                r#""access":"read-write","flags":["create","truncate"],"decision":"allowed","#,
                r#""by":"rule","rule":"write /work","reason":null,"latency_us":12}"#
            )
        );
    }
}
