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
//! Portable, and tested on Linux in macOS's configuration (the stream
//! wire); on macOS type-checked for both Apple targets, never linked or run.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use policies::{Policy, Verdict};

use proto::socket::Wire;

use crate::audit::AuditLog;
use crate::broker::{Approvals, Broker, Shared};
use crate::commands::run_args::Approve;
use crate::prompt::overlay::Overlay;
use crate::prompt::Prompter;

/// The broker's shared socket, from its making to its hand-over.
pub struct Socket {
    ours: OwnedFd,
    theirs: OwnedFd,
}

impl Socket {
    /// A connected pair of the platform's shared-socket type (datagram on
    /// macOS), both ends close-on-exec until the child keeps its own.
    pub fn new() -> Result<Socket> {
        Socket::of(Wire::NATIVE)
    }

    fn of(wire: Wire) -> Result<Socket> {
        let (ours, theirs) = wire.shared_pair().context("creating the broker socket")?;
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
/// Who answers `ask` rules: the person's remembered answers (`overlay`),
/// then the person at the terminal where the launcher relays one (the
/// shared [`Prompter`]), else `--approve`, said once when the policy has
/// `ask` rules and there is nobody to ask.
pub fn approvals(
    approve: Approve,
    overlay: Overlay,
    person: Option<Arc<Prompter>>,
    policy: &Policy,
) -> Approvals {
    let allow = approve == Approve::Allow;
    let asks = (policy.broker.rules().iter()).any(|r| r.verdict == Verdict::Ask);
    if asks && person.is_none() {
        eprintln!(
            "sluice: the policy's `ask` rules are answered by --approve ({}), or by \
             your remembered answers: sluice has no terminal to ask on",
            if allow { "allow" } else { "deny" }
        );
    }
    Approvals::Layered {
        overlay: Box::new(overlay),
        person,
        allow,
    }
}

/// Starts the broker on our end of `socket` (the program's end closes
/// here): after the fork, as its runtime's threads must not exist in the
/// child. The audit record goes with the shared state; the session ends
/// it there ([`Shared::audit`]).
pub fn serve(
    socket: Socket,
    session: &str,
    approvals: Approvals,
    policy: &Policy,
    audit: AuditLog,
    protected: Protected,
) -> Result<(Arc<Shared>, Broker)> {
    let Socket { ours, theirs } = socket;
    drop(theirs);
    let mut policy = policy.clone();
    let protected = protected.into_list(&mut policy);
    let mut shared = Shared::new(session.to_owned(), policy, approvals, None, protected);
    shared.audit = Some(audit);
    let shared = Arc::new(shared);
    let broker = Broker::start(ours, shared.clone()).context("starting the broker")?;
    Ok((shared, broker))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::{ErrorKind, Read};
    use std::os::fd::{AsFd, AsRawFd};
    use std::path::Path;

    use client_sdk::{Client, OpenOptions};

    use super::*;
    use crate::audit::StartRecord;

    /// sluice's state, another session's directory and this session's
    /// own `tmp/` laid out as the macOS launcher has them, all beneath a
    /// workspace the policy allows whole (and `/dev` too): only the
    /// protection keeps them out.
    struct Session {
        _tmp: tempfile::TempDir,
        root: PathBuf,
    }

    impl Session {
        fn new() -> Session {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().canonicalize().unwrap();
            for dir in [
                "config",
                "records",
                "sluice-0/mine/tmp",
                "sluice-0/mine/private",
                "sluice-0/other/tmp",
                "ws",
            ] {
                fs::create_dir_all(root.join(dir)).unwrap();
            }
            for (file, text) in [
                ("config/approvals.toml", "approvals"),
                ("records/mine", "record"),
                ("sluice-0/mine/private/state", "state"),
                ("sluice-0/mine/tmp/scratch", "scratch"),
                ("sluice-0/other/tmp/secret", "secret"),
                ("ws/allowed", "allowed"),
                ("ws/asked", "asked"),
                ("policy.toml", "policy"),
            ] {
                fs::write(root.join(file), text).unwrap();
            }
            Session { _tmp: tmp, root }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.root.join(name)
        }

        /// The broker as the macOS launcher starts it, on the stream wire;
        /// the program's end of its socket.
        fn serve(&self, approve: Approve) -> (Arc<Shared>, Broker, OwnedFd) {
            self.serve_with(approve, Overlay::default())
        }

        /// The same, with the person's remembered answers.
        fn serve_with(&self, approve: Approve, overlay: Overlay) -> (Arc<Shared>, Broker, OwnedFd) {
            let text = "[broker]\nallow = [\"$WORKSPACE\", \"/dev\"]\n\
                ask = [\"$WORKSPACE/ws/asked\"]\n";
            let spec = policies::load_str("t.toml", text, &self.root).unwrap();
            let policy = spec
                .resolve(&policies::Vars {
                    home: self.root.clone(),
                    workspace: self.root.clone(),
                    tmpdir: self.path("sluice-0/mine/tmp"),
                })
                .unwrap();
            let start = StartRecord::for_test(self.root.clone());
            let audit = AuditLog::open(&self.path("audit"), "mine", &start).unwrap();
            let protected = Protected {
                audit_dir: self.path("audit"),
                config_dir: self.path("config"),
                records_dir: self.path("records"),
                private: self.path("sluice-0/mine/private"),
                sessions: self.path("sluice-0"),
                own_tmp: self.path("sluice-0/mine/tmp"),
                policy_files: vec![self.path("policy.toml")],
            };
            let socket = Socket::of(Wire::Stream).unwrap();
            let program = socket.theirs.try_clone().unwrap();
            let (shared, broker) = serve(
                socket,
                "mine",
                approvals(approve, overlay, None, &policy),
                &policy,
                audit,
                protected,
            )
            .unwrap();
            (shared, broker, program)
        }
    }

    fn read(client: &mut Client, path: &Path) -> std::io::Result<String> {
        let mut text = String::new();
        client
            .open(path, OpenOptions::new().read(true))?
            .read_to_string(&mut text)?;
        Ok(text)
    }

    /// What the policy allows but is sluice's own, another session's, a
    /// device or the supervisor's own descriptor is refused, as a
    /// refusal (not an error); the workspace and the session's own
    /// `tmp/` (the controls) are served; every decision is in the audit
    /// record.
    #[test]
    fn sluices_state_other_sessions_and_devices_are_never_served() {
        let s = Session::new();
        let (shared, broker, program) = s.serve(Approve::Deny);
        let mut client = Client::connect(program.as_fd(), "test").unwrap();
        assert_eq!(read(&mut client, &s.path("ws/allowed")).unwrap(), "allowed");
        let own = s.path("sluice-0/mine/tmp/scratch");
        assert_eq!(read(&mut client, &own).unwrap(), "scratch");
        let audit_file = shared.audit.as_ref().unwrap().path().to_path_buf();
        let held = fs::File::open(&audit_file).unwrap();
        let refused = [
            audit_file.clone(),
            s.path("config/approvals.toml"),
            s.path("records/mine"),
            s.path("sluice-0/mine/private/state"),
            s.path("sluice-0/other/tmp/secret"),
            s.path("policy.toml"),
            PathBuf::from("/dev/null"),
            PathBuf::from(format!("/dev/fd/{}", held.as_raw_fd())),
        ];
        for path in &refused {
            let e = read(&mut client, path).unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::PermissionDenied,
                "{}: {e}",
                path.display()
            );
        }
        // An `ask` rule with no person: --approve's deny.
        let e = read(&mut client, &s.path("ws/asked")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        drop(client);
        broker.stop();
        let record = fs::read_to_string(&audit_file).unwrap();
        for path in [s.path("ws/allowed"), s.path("sluice-0/other/tmp/secret")] {
            let name = path.to_str().unwrap();
            assert!(record.contains(name), "{name} not in the record:\n{record}");
        }
    }

    /// `--approve allow` answers an `ask` rule yes (the control of the
    /// refusal above).
    #[test]
    fn approve_allow_answers_ask_rules() {
        let s = Session::new();
        let (_shared, broker, program) = s.serve(Approve::Allow);
        let mut client = Client::connect(program.as_fd(), "test").unwrap();
        assert_eq!(read(&mut client, &s.path("ws/asked")).unwrap(), "asked");
        drop(client);
        broker.stop();
    }

    /// A remembered "always" answer answers an `ask` rule before
    /// `--approve` (here deny) does, as on Linux.
    #[test]
    fn a_remembered_answer_answers_an_ask_rule() {
        let s = Session::new();
        let file = s.path("config/approvals.toml");
        let _ = fs::remove_file(&file);
        crate::prompt::overlay::remember(&file, &s.path("ws/asked"), false, true).unwrap();
        let vars = policies::Vars {
            home: s.root.clone(),
            workspace: s.root.clone(),
            tmpdir: s.path("sluice-0/mine/tmp"),
        };
        let overlay = Overlay::load(&file, &vars).unwrap();
        let (_shared, broker, program) = s.serve_with(Approve::Deny, overlay);
        let mut client = Client::connect(program.as_fd(), "test").unwrap();
        assert_eq!(read(&mut client, &s.path("ws/asked")).unwrap(), "asked");
        drop(client);
        broker.stop();
    }
}
