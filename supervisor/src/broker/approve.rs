//! Who answers a request that falls under an `ask` rule.
//!
//! Until sluice owns the person's terminal (the approvals issue), nobody is
//! asked: `--approve allow|deny` answers every `ask`, and the audit record
//! says the answer was the non-interactive default. The broker awaits the
//! answer in the request's own task, so a slow answer never holds up other
//! requests.

use std::path::Path;

/// Who or what gave an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    /// `--approve`, with no person to ask.
    NonInteractiveDefault,
}

/// The answer to one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub allow: bool,
    pub by: AnsweredBy,
}

/// What a person would be shown.
#[derive(Debug)]
pub struct Question<'a> {
    pub pid: libc::pid_t,
    pub exe: Option<&'a Path>,
    pub path: &'a Path,
    pub write: bool,
    pub rule: Option<String>,
}

/// The answerer for `ask` rules.
#[derive(Debug, Clone)]
pub enum Approvals {
    /// No person to ask: every `ask` gets this answer.
    NonInteractive { allow: bool },
}

impl Approvals {
    pub async fn ask(&self, q: &Question<'_>) -> Answer {
        match self {
            Approvals::NonInteractive { allow } => {
                tracing::info!(
                    pid = q.pid,
                    exe = %q.exe.map_or_else(|| "?".into(), |e| e.display().to_string()),
                    path = %q.path.display(),
                    write = q.write,
                    rule = q.rule.as_deref().unwrap_or("-"),
                    allow,
                    "ask rule answered by --approve (no terminal to ask on)"
                );
                Answer {
                    allow: *allow,
                    by: AnsweredBy::NonInteractiveDefault,
                }
            }
        }
    }
}
