//! What is put to whoever answers `ask` rules, and what comes back: the
//! broker and the hosts mode's proxy ask ([`crate::broker::Approvals`]), the
//! overlay, the session's memory and the person at the prompt
//! ([`crate::prompt`]) answer. A leaf: it names who answered as the audit
//! record does ([`By`]), and depends on nothing else of sluice's.

use std::path::Path;

use crate::audit::By;

/// A file question: what a person would be shown.
#[derive(Debug)]
pub struct Question<'a> {
    pub pid: libc::pid_t,
    pub exe: Option<&'a Path>,
    pub path: &'a Path,
    pub write: bool,
    pub rule: Option<String>,
}

/// A connection the hosts mode's proxy puts to the person (`ask_hosts`).
#[derive(Debug)]
pub struct HostQuestion<'a> {
    pub host: &'a policies::Host,
    pub port: u16,
    /// The `ask_hosts` entry that matched.
    pub rule: Option<String>,
}

/// The answer to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub allow: bool,
    /// Who answered: the person ([`By::Person`]), the prompt's timeout, the
    /// overlay, the session's memory, the rate limit, or `--approve`
    /// ([`By::NonInteractiveDefault`]).
    pub by: By,
    /// The rule that answered, when it is not the `ask` rule (an overlay
    /// entry).
    pub rule: Option<String>,
    /// Why, when there is more to say (the rate limit).
    pub note: Option<String>,
}

impl Answer {
    pub fn new(allow: bool, by: By) -> Answer {
        Answer {
            allow,
            by,
            rule: None,
            note: None,
        }
    }
}
