//! The vocabulary of `[broker]` rules, which the policy file's reader, the
//! variables, the printer and the compiled rules all speak: what a rule
//! says ([`Verdict`]), what a request wants ([`Want`]), the lists rules are
//! written in, and how a literal path is written as a pattern. A leaf: it
//! depends on nothing else of the crate.

use std::fmt;

/// What a rule says about the paths it covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Verdict {
    /// Served without asking.
    Allow,
    /// A person decides.
    Ask,
    /// Never served, and nobody is asked.
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Ask => "ask",
            Verdict::Deny => "deny",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The access a request wants.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Want {
    /// Read only.
    Read,
    /// Write only. Creating, truncating and appending are writes.
    Write,
    /// Read and write.
    ReadWrite,
}

impl Want {
    /// Whether the request writes (and so needs a rule that grants writing).
    pub fn writes(self) -> bool {
        matches!(self, Want::Write | Want::ReadWrite)
    }
}

/// One of the lists of `[broker]`, in the order rules are kept and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BrokerList {
    Allow,
    AllowWrite,
    Ask,
    AskWrite,
    Deny,
}

impl BrokerList {
    pub(crate) const ALL: [BrokerList; 5] = [
        BrokerList::Allow,
        BrokerList::AllowWrite,
        BrokerList::Ask,
        BrokerList::AskWrite,
        BrokerList::Deny,
    ];

    /// The key in a policy file, within `[broker]`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BrokerList::Allow => "allow",
            BrokerList::AllowWrite => "allow_write",
            BrokerList::Ask => "ask",
            BrokerList::AskWrite => "ask_write",
            BrokerList::Deny => "deny",
        }
    }

    /// The dotted key named in error messages.
    pub(crate) fn key(self) -> String {
        format!("broker.{}", self.name())
    }

    pub(crate) fn verdict(self) -> Verdict {
        match self {
            BrokerList::Allow | BrokerList::AllowWrite => Verdict::Allow,
            BrokerList::Ask | BrokerList::AskWrite => Verdict::Ask,
            BrokerList::Deny => Verdict::Deny,
        }
    }

    /// Whether a request that writes may be served (or asked) under this list.
    pub(crate) fn grants_write(self) -> bool {
        matches!(self, BrokerList::AllowWrite | BrokerList::AskWrite)
    }

    /// The list a rule came from.
    pub(crate) fn of(verdict: Verdict, grants_write: bool) -> BrokerList {
        match (verdict, grants_write) {
            (Verdict::Allow, false) => BrokerList::Allow,
            (Verdict::Allow, true) => BrokerList::AllowWrite,
            (Verdict::Ask, false) => BrokerList::Ask,
            (Verdict::Ask, true) => BrokerList::AskWrite,
            (Verdict::Deny, _) => BrokerList::Deny,
        }
    }
}

/// `text` escaped so that, as a glob, it matches only itself: globset's own
/// escaping (glob characters in brackets, `[*]`), with backslashes doubled
/// first, since globset reads a backslash as an escape and its `escape`
/// leaves it alone.
pub(crate) fn escape(text: &str) -> String {
    globset::escape(&text.replace('\\', "\\\\"))
}

/// A path written as a `[broker]` pattern that matches only that path: glob
/// characters in classes, backslashes doubled, `$` written `$$` so no
/// variable is substituted. For files sluice writes itself (the approvals
/// overlay).
pub fn literal_pattern(path: &str) -> String {
    escape(path).replace('$', "$$")
}
