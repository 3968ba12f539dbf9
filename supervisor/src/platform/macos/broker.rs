//! The broker for a macOS session: the shared socket made before the fork
//! (the program's end kept at its own number, `SLUICE_BROKER_FD`), and
//! after it the same broker as on Linux ([`crate::broker`]) serving our end
//! on the stream wire (a datagram shared socket, stream connections), every
//! decision recorded in the session's audit record before it is answered.
//!
//! What differs from Linux is the broker's per-OS parts (the peer's audit
//! token, the walked safe open, no read-only copy, no directories, no guard
//! or transparent brokering) and who answers `ask` rules: `--approve`
//! alone, since the person's prompts are not built for macOS yet; a session
//! whose policy has `ask` rules says so when it starts.
//!
//! Type-checked for both Apple targets; never linked or run.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use policies::{Policy, Verdict};

use crate::audit::AuditLog;
use crate::broker::{Approvals, Broker, Shared};
use crate::commands::run_args::{Approve, RunArgs};

/// The broker's shared socket, from its making to its hand-over.
pub struct Socket {
    ours: OwnedFd,
    theirs: OwnedFd,
}

impl Socket {
    /// A connected pair of the platform's shared-socket type (datagram on
    /// macOS), both ends close-on-exec until the child keeps its own.
    pub fn new() -> Result<Socket> {
        let (ours, theirs) = proto::socket::Wire::NATIVE
            .shared_pair()
            .context("creating the broker socket")?;
        Ok(Socket { ours, theirs })
    }

    /// The number the program finds its end at (`SLUICE_BROKER_FD`).
    pub fn number(&self) -> String {
        self.theirs.as_raw_fd().to_string()
    }

    /// For `MacLaunch::fds`: the program's end, kept at its own number.
    pub fn kept(&self) -> (RawFd, RawFd) {
        let fd = self.theirs.as_raw_fd();
        (fd, fd)
    }
}

/// What the broker must never serve, with why: sluice's own state.
pub struct Protected {
    pub audit_dir: PathBuf,
    pub config_dir: PathBuf,
    pub records_dir: PathBuf,
    /// The session's private directory.
    pub private: PathBuf,
    /// Where every session's directory is (`$TMPDIR/sluice-UID`), and
    /// this session's `tmp/` in it, the program's own.
    pub sessions: PathBuf,
    pub own_tmp: PathBuf,
    pub policy_files: Vec<PathBuf>,
}

impl Protected {
    fn into_list(self, policy: &mut Policy) -> Vec<(PathBuf, &'static str)> {
        policy.broker.protect_except(
            self.sessions,
            Some(self.own_tmp),
            "another sluice session's directory",
        );
        let mut list = vec![
            (self.audit_dir, "sluice's audit record"),
            (self.config_dir, "sluice's configuration"),
            (self.private, "sluice's session state"),
            (self.records_dir, "sluice's session records"),
            // Devices are never served (only files and directories are),
            // and `/dev/fd/N` would be the supervisor's own descriptor N.
            (
                PathBuf::from("/dev"),
                "devices, and the supervisor's own descriptors",
            ),
        ];
        for file in self.policy_files {
            list.push((file, "the session's policy"));
        }
        list
    }
}

/// Who answers `ask` rules on macOS: `--approve`, the person's prompts not
/// being built there yet. Said once, when the policy has such rules.
fn approvals(args: &RunArgs, policy: &Policy) -> Approvals {
    let allow = args.approve == Approve::Allow;
    let asks = (policy.broker.rules().iter()).any(|r| r.verdict == Verdict::Ask);
    if asks {
        eprintln!(
            "sluice: the policy's `ask` rules are answered by --approve ({}) on macOS: \
             asking on the terminal is not available there yet",
            if allow { "allow" } else { "deny" }
        );
    }
    Approvals::NonInteractive { allow }
}

/// Starts the broker on our end of `socket` (the program's end closes
/// here): after the fork, as its runtime's threads must not exist in the
/// child. The audit record goes with the shared state; the session ends
/// it there ([`Shared::audit`]).
pub fn serve(
    socket: Socket,
    session: &str,
    args: &RunArgs,
    policy: &Policy,
    audit: AuditLog,
    protected: Protected,
) -> Result<(Arc<Shared>, Broker)> {
    let Socket { ours, theirs } = socket;
    drop(theirs);
    let mut policy = policy.clone();
    let protected = protected.into_list(&mut policy);
    let approvals = approvals(args, &policy);
    let mut shared = Shared::new(session.to_owned(), policy, approvals, None, protected);
    shared.audit = Some(audit);
    let shared = Arc::new(shared);
    let broker = Broker::start(ours, shared.clone()).context("starting the broker")?;
    Ok((shared, broker))
}
