//! A stacked session's way to the outer session's broker.
//!
//! A sluice stacked inside another runs its broker inside the outer
//! sandbox: a file outside that sandbox does not exist there (`ENOENT`), or
//! is refused by its Landlock rules (`EACCES`) or read-only mounts
//! (`EROFS`), whatever the inner policy says. Its program could ask the
//! outer broker itself only under `nested = "skip"`, without the inner
//! sandbox. So the inner broker asks for it: when its own policy allows a
//! file its own sandbox cannot open, it forwards the request to the outer
//! broker as an SDK client (over the `SLUICE_BROKER_FD` the inner sluice
//! inherited, which its program never holds). The answer is then within
//! both policies:
//!
//! - only a request this policy allows (by rule, or answered yes by
//!   `--approve` or the approvals overlay) is forwarded, judged on its
//!   lexical path, since the file is not in this sandbox's view to resolve;
//! - the outer broker decides by its own policy (and person) on the file it
//!   resolves;
//! - the descriptor it sends back is judged again on the path the kernel
//!   gives for it: a symlink that led the outer broker to a file this
//!   policy denies, or to another file this policy only asks about, is
//!   refused and the descriptor closed;
//! - only regular files are forwarded: a directory would let the program
//!   open what lies beneath it relative to the descriptor.
//!
//! Both sessions record the decision: the outer one as a request of the
//! inner sluice (client `sluice stacked <session>`), this one with the
//! reason `served by the outer session's broker`.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use client_sdk::{Client, Error, OpenOptions};
use policies::{Protect, Verdict};
use proto::{ErrorKind, ResponseBody};

use super::decide::{ask_person, judge, Ask, Asker, Outcome, Pending};
use super::guard::stacked::NOT_GUARDING;
use super::safe_open;
use super::Shared;
use crate::audit::By;

/// Why a forwarded request was served, for the record.
const SERVED: &str = "served by the outer session's broker";

/// The outer session's broker, for a stacked session.
pub struct OuterBroker {
    /// A connection made at start: each forwarded request gets a new one
    /// from it (a request waiting for the outer person holds only its own).
    base: Mutex<Client>,
}

impl OuterBroker {
    /// Connects to the broker whose socket this process inherited; `None`
    /// (and a warning) without one: the stacked program then gets only what
    /// both sandboxes let this broker open itself.
    pub fn from_env(session: &str) -> Option<OuterBroker> {
        match Client::from_env_named(&format!("sluice stacked {session}")) {
            Ok(client) => Some(OuterBroker {
                base: Mutex::new(client),
            }),
            Err(e) => {
                tracing::warn!(
                    "stacked: no way to the outer session's broker ({e}): the program's \
                     requests are served only from what this sandbox can open"
                );
                None
            }
        }
    }

    fn connection(&self) -> Result<Client, Error> {
        let base = self.base.lock().unwrap_or_else(|p| p.into_inner());
        base.try_clone()
    }

    /// What registers this session's sandbox with the outer session before
    /// the child is forked (`guard/stacked.rs` there), so that an outer
    /// guard makes its program's writes in it; `None` (and a warning)
    /// without a connection.
    pub fn registrar(&self, protect: &Protect) -> Option<Registrar> {
        // As written, so a subtree exception keeps its `/**`.
        let protect = (protect.rules().iter())
            .map(|r| r.as_written_resolved())
            .collect();
        match self.connection() {
            Ok(client) => Some(Registrar { client, protect }),
            Err(e) => {
                tracing::warn!("stacked: the outer session's broker is out of reach: {e}");
                None
            }
        }
    }
}

/// A registration of this session's sandbox, ready to send.
pub struct Registrar {
    client: Client,
    protect: Vec<String>,
}

impl Registrar {
    /// Registers `ruleset` (the program's, `None` without Landlock) and
    /// the `protect` list. A refusal is not fatal: the outer session then
    /// refuses the program's writes if it guards, as without registering.
    /// The bwrap stand-in's masks need the registration: without it the
    /// launch is refused ([`crate::commands::bwrap::stand_in::require_guard`]).
    pub fn register(mut self, ruleset: Option<BorrowedFd<'_>>) -> anyhow::Result<()> {
        let Some(ruleset) = ruleset else {
            crate::commands::bwrap::stand_in::require_guard(
                "this sandbox has no Landlock ruleset",
            )?;
            tracing::warn!(
                "stacked: no Landlock ruleset to register with the outer session: \
                 if it guards, the program cannot write"
            );
            return Ok(());
        };
        let protects = self.protect.iter().any(|p| !p.starts_with('!'));
        let registered = self.client.register_stacked(ruleset, self.protect);
        if let Err(e) = &registered {
            let why = match e {
                Error::Denied { reason, .. } if reason == NOT_GUARDING => {
                    "the enclosing sluice session does not guard writes (its policy has no \
                     protect list)"
                        .to_owned()
                }
                e => format!("the enclosing session did not take it ({e})"),
            };
            crate::commands::bwrap::stand_in::require_guard(&why)?;
        }
        match registered {
            Ok(()) => tracing::debug!("stacked: registered with the outer session"),
            // No guard outside, and none can be installed here (the outer
            // sandbox refuses listeners): nothing judges this list.
            Err(Error::Denied { reason, .. })
                if reason == NOT_GUARDING
                    && protects
                    && !crate::commands::bwrap::stand_in::quiet() =>
            {
                eprintln!(
                    "sluice: warning: [filesystem] protect is not applied: the enclosing \
                     sluice session does not guard writes (its policy has no protect list), \
                     and a stacked session cannot guard its own; the program can write what \
                     the list names wherever both sandboxes allow"
                );
            }
            Err(e) => tracing::debug!("stacked: not registered with the outer session: {e}"),
        }
        Ok(())
    }
}

/// Whether `own` (this broker's outcome) failed only because this sandbox
/// could not reach the file.
fn out_of_reach(own: &Outcome) -> bool {
    matches!(own.body, ResponseBody::Error { .. })
        && matches!(
            own.errno,
            Some(libc::ENOENT | libc::EACCES | libc::EROFS | libc::EPERM)
        )
}

/// After this broker failed to open `path` for `ask` (`own`): the outer
/// broker's answer when this policy allows the file, else `own`.
pub async fn forward(
    shared: &Shared,
    asker: &Asker<'_>,
    path: &Path,
    ask: &Ask<'_>,
    own: Outcome,
) -> Outcome {
    let Some(outer) = &shared.outer else {
        return own;
    };
    if !out_of_reach(&own) || ask.flags.directory || ask.call.mkdir {
        return own;
    }
    let lexical = safe_open::normalize(path);
    let decision = judge(shared, &lexical, ask.want());
    let (by, rule) = match decision.verdict {
        Verdict::Deny => return decision.denied(),
        Verdict::Allow => (decision.by, decision.rule),
        Verdict::Ask => {
            let pending = Pending::new(lexical.clone(), decision);
            match ask_person(shared, asker, pending, ask.writes()).await {
                Ok(answered) => answered.by_and_rule(),
                Err(refused) => return *refused,
            }
        }
    };
    let options = options(ask);
    let asked = lexical.clone();
    let client = match outer.connection() {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!("stacked: the outer session's broker is out of reach: {e}");
            return own;
        }
    };
    let answered = tokio::task::spawn_blocking(move || {
        let mut client = client;
        client.open(&asked, &options).map(OwnedFd::from)
    })
    .await;
    let fd = match answered {
        Ok(Ok(fd)) => fd,
        Ok(Err(e)) => return refused_outside(&lexical, &e),
        Err(e) => {
            tracing::error!("stacked: forwarding a request failed: {e}");
            return own;
        }
    };
    // What the outer broker opened, as the kernel names it.
    let real = match opened_file(&fd) {
        Ok(real) => real,
        Err(e) => {
            let why = format!("the outer broker's file cannot be identified ({e})");
            return Outcome::denied(By::Rule, None, why);
        }
    };
    if real != lexical && judge(shared, &real, ask.want()).verdict != Verdict::Allow {
        let why = format!(
            "the outer session's broker reached {}, which this policy does not allow as {}",
            real.display(),
            lexical.display()
        );
        return Outcome::denied(By::Rule, None, why);
    }
    Outcome {
        body: ResponseBody::Opened,
        fd: Some(fd),
        opened: Some(real),
        by,
        rule,
        reason: Some(SERVED.to_owned()),
        errno: None,
    }
}

/// The SDK's options for `ask` (the SDK path asks for nothing more).
fn options(ask: &Ask<'_>) -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .read(ask.access.wants_read())
        .write(ask.access.wants_write())
        .append(ask.flags.append)
        .truncate(ask.flags.truncate)
        .create(ask.flags.create)
        .mode(ask.flags.mode);
    options
}

/// The outer broker's refusal or error as this broker's outcome.
fn refused_outside(path: &Path, e: &io::Error) -> Outcome {
    match Error::from_io(e) {
        Some(Error::Denied { reason, .. }) => Outcome::denied(
            By::Rule,
            None,
            format!("the outer session's broker: {reason}"),
        ),
        Some(Error::Broker { kind, message }) => Outcome {
            errno: e.raw_os_error(),
            ..Outcome::error(*kind, format!("the outer session's broker: {message}"))
        },
        _ => Outcome {
            errno: e.raw_os_error(),
            ..Outcome::error(
                ErrorKind::Io,
                format!("{}: the outer session's broker: {e}", path.display()),
            )
        },
    }
}

/// The path the kernel gives for `fd` ([`safe_open::real_path`]), which must
/// be a regular file.
fn opened_file(fd: &OwnedFd) -> io::Result<PathBuf> {
    let file = std::fs::File::from(fd.try_clone()?);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    safe_open::real_path(fd)
}
