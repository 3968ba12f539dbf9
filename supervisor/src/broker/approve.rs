//! Who answers a request that falls under an `ask` rule (or a connection
//! under `ask_hosts`).
//!
//! In order: the person's remembered "always" answers (the overlay file,
//! [`crate::prompt::overlay`]); then the person at the terminal when sluice
//! owns one ([`crate::prompt::Prompter`]: session memory, queue, rate
//! limit, timeout); else `--approve allow|deny`, which the audit record
//! calls the non-interactive default. The broker awaits the answer in the
//! request's own task, so a slow answer never holds up other requests.
//! The same on macOS, where the launcher keeps no overlay file yet (no
//! "always" answers there).

use std::sync::Arc;

use crate::approval::{Answer, HostQuestion, Question};
use crate::audit::By;
use crate::prompt::overlay::{Overlay, Remembered};
use crate::prompt::Prompter;

/// The answerer for `ask` rules.
pub enum Approvals {
    /// No person to ask and nothing remembered: every `ask` gets this answer.
    NonInteractive { allow: bool },
    /// The overlay's answers first; then the person if there is one, else
    /// `allow`.
    Layered {
        overlay: Box<Overlay>,
        person: Option<Arc<Prompter>>,
        allow: bool,
    },
}

impl Approvals {
    /// The overlay's answer (`Err`), else who answers next: the person if
    /// there is one, and `--approve`.
    fn after_overlay(
        &self,
        decide: impl FnOnce(&Overlay) -> Option<Remembered>,
    ) -> Result<(Option<&Arc<Prompter>>, bool), Answer> {
        match self {
            Approvals::NonInteractive { allow } => Ok((None, *allow)),
            Approvals::Layered {
                overlay,
                person,
                allow,
            } => match decide(overlay) {
                Some(r) => {
                    let mut answer = Answer::new(r.allow, By::Overlay);
                    answer.rule = Some(r.rule);
                    Err(answer)
                }
                None => Ok((person.as_ref(), *allow)),
            },
        }
    }

    pub async fn ask(&self, q: &Question<'_>) -> Answer {
        let (person, allow) = match self.after_overlay(|o| o.decide(q.path, q.write)) {
            Ok(next) => next,
            Err(answer) => return answer,
        };
        if let Some(person) = person {
            return person.ask(q).await;
        }
        tracing::info!(
            pid = q.pid,
            exe = %q.exe.map_or_else(|| "?".into(), |e| e.display().to_string()),
            path = %q.path.display(),
            write = q.write,
            rule = q.rule.as_deref().unwrap_or("-"),
            allow,
            "ask rule answered by --approve (no terminal to ask on)"
        );
        Answer::new(allow, By::NonInteractiveDefault)
    }

    /// The same order for a connection `ask_hosts` puts to the person:
    /// the overlay's `[network]` answers, the person, `--approve`.
    pub async fn ask_host(&self, q: &HostQuestion<'_>) -> Answer {
        let (person, allow) = match self.after_overlay(|o| o.decide_host(q.host, q.port)) {
            Ok(next) => next,
            Err(answer) => return answer,
        };
        if let Some(person) = person {
            return person.ask_host(q).await;
        }
        tracing::info!(
            host = %q.host,
            port = q.port,
            allow,
            "ask_hosts answered by --approve (no terminal to ask on)"
        );
        Answer::new(allow, By::NonInteractiveDefault)
    }
}
