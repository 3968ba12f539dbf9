//! The decide-and-open core on an in-process broker: a `Shared` as
//! `sluice run` builds it, files in a temporary directory, no sandbox and
//! no socket but the one a `Peer` is read from.

use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::{Access, ErrorKind, OpenFlags, Request, RequestBody, ResponseBody};

use super::decide::{self, ask_person, decide_and_open, Ask, Asker, Outcome, Settled, Step};
use super::handler::{self, Requester};
use super::peer::Peer;
use super::{Approvals, Shared};
use crate::audit::{self, AuditLog, By, StartRecord};

mod stream;

/// A directory with `allowed`, `asked`, `other` (also asked), `denied`,
/// `kept` (denied by `[filesystem] deny`, protected by the policy), and
/// `state/` (handed to [`Shared::new`] as sluice's own).
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        for name in ["allowed", "asked", "other", "denied", "kept"] {
            fs::write(dir.join(name), name).unwrap();
        }
        fs::create_dir(dir.join("state")).unwrap();
        fs::write(dir.join("state/audit"), "").unwrap();
        Fixture { _tmp: tmp, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The broker's state; `ask` rules answered `allow`, without a person.
    fn shared(&self, allow: bool, audit: Option<AuditLog>) -> Shared {
        let text = "[broker]\n\
            allow = [\"$WORKSPACE/allowed\", \"$WORKSPACE/state\", \"$WORKSPACE/kept\"]\n\
            ask = [\"$WORKSPACE/asked\", \"$WORKSPACE/other\"]\n\
            deny = [\"$WORKSPACE/denied\"]\n";
        let spec = policies::load_str("t.toml", text, &self.dir).unwrap();
        let mut policy = spec
            .resolve(&policies::Vars {
                home: self.dir.clone(),
                workspace: self.dir.clone(),
                tmpdir: self.dir.clone(),
            })
            .unwrap();
        // As `sluice run` protects what `[filesystem] deny` hides.
        policy
            .broker
            .protect(self.path("kept"), "deny (the policy's)");
        let state = vec![(self.path("state"), "sluice's state")];
        let approvals = Approvals::NonInteractive { allow };
        Shared::new("t".into(), policy, approvals, audit, state)
    }

    fn audit(&self) -> AuditLog {
        let start = StartRecord::for_test(self.dir.clone());
        AuditLog::open(&self.path("audit"), "t", &start).unwrap()
    }
}

fn asker() -> Asker<'static> {
    Asker {
        pid: 1,
        exe: None,
        client: "test",
        via: audit::Via::Sdk,
    }
}

fn nothing(_: &Path, _: bool) -> bool {
    false
}

fn bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// The content of the file an outcome opened; panics on anything else.
fn opened(outcome: &Outcome) -> String {
    assert!(
        matches!(outcome.body, ResponseBody::Opened),
        "not opened: {:?}",
        outcome.body
    );
    let fd = outcome.fd.as_ref().expect("a descriptor");
    fs::read_to_string(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
}

fn done(step: Step) -> Outcome {
    match step {
        Step::Done(outcome) => outcome,
        Step::Person(_) => panic!("waits for a person"),
        Step::Sandbox => panic!("left to the sandbox"),
    }
}

#[test]
fn what_the_rules_decide_is_done_on_the_callers_thread() {
    let fx = Fixture::new();
    let shared = fx.shared(false, None);
    let read = |name: &str| {
        let path = fx.path(name);
        let ask = Ask::plain(bytes(&path), Access::Read);
        done(decide_and_open(&shared, &path, &ask, &nothing, None))
    };
    let allowed = read("allowed");
    assert_eq!(opened(&allowed), "allowed");
    assert_eq!(allowed.by, By::Rule);
    assert!(allowed.rule.as_deref().unwrap().starts_with("allow "));
    let denied = read("denied");
    assert!(matches!(denied.body, ResponseBody::Denied { .. }));
    assert!(denied.fd.is_none());
    assert_eq!(denied.by, By::Rule);
    assert!(denied.rule.as_deref().unwrap().starts_with("deny "));
}

#[test]
fn protected_paths_are_said_to_be_whoever_protected_them() {
    let fx = Fixture::new();
    let shared = fx.shared(true, None);
    // Sluice's own state (given to the broker) and a path the policy was
    // told to protect: the decision says which, no list of the broker's.
    for name in ["state/audit", "kept"] {
        let path = fx.path(name);
        let ask = Ask::plain(bytes(&path), Access::Read);
        let refused = done(decide_and_open(&shared, &path, &ask, &nothing, None));
        assert!(
            matches!(refused.body, ResponseBody::Denied { .. }),
            "{name}"
        );
        assert_eq!(refused.by, By::Protected, "{name}");
        assert_eq!(refused.rule, None, "{name}");
    }
    // Control: a rule's refusal is the rule's.
    let path = fx.path("denied");
    let ask = Ask::plain(bytes(&path), Access::Read);
    let refused = done(decide_and_open(&shared, &path, &ask, &nothing, None));
    assert_eq!(refused.by, By::Rule);
}

#[test]
fn an_answer_opens_the_file_asked_about_and_no_other() {
    let fx = Fixture::new();
    let shared = fx.shared(true, None);
    let name = fx.path("name");
    symlink(fx.path("asked"), &name).unwrap();
    let ask = Ask::plain(bytes(&name), Access::Read);
    let Step::Person(pending) = decide_and_open(&shared, &name, &ask, &nothing, None) else {
        panic!("an ask rule must wait for a person");
    };
    let answered = block_on(ask_person(&shared, &asker(), pending, false))
        .unwrap_or_else(|_| panic!("--approve allow answers yes"));
    // The name now leads to another file the policy also asks about: the
    // yes was not about it.
    fs::remove_file(&name).unwrap();
    symlink(fx.path("other"), &name).unwrap();
    match decide_and_open(&shared, &name, &ask, &nothing, Some(&answered)) {
        Step::Person(_) => {}
        Step::Done(outcome) => panic!("served without a question: {:?}", outcome.body),
        Step::Sandbox => panic!("left to the sandbox"),
    }
    // Control: back at the file asked about, the answer opens it.
    fs::remove_file(&name).unwrap();
    symlink(fx.path("asked"), &name).unwrap();
    let step = decide_and_open(&shared, &name, &ask, &nothing, Some(&answered));
    let outcome = done(step);
    assert_eq!(opened(&outcome), "asked");
    assert_eq!(outcome.by, By::NonInteractiveDefault);
}

#[test]
fn the_driver_awaits_the_answer_then_opens_or_refuses() {
    let fx = Fixture::new();
    let path = fx.path("asked");
    let ask = Ask::plain(bytes(&path), Access::Read);
    for allow in [true, false] {
        let shared = fx.shared(allow, None);
        let first = decide_and_open(&shared, &path, &ask, &nothing, None);
        assert!(matches!(first, Step::Person(_)));
        let settled = block_on(decide::settle(
            &shared,
            &asker(),
            &path,
            &ask,
            &nothing,
            first,
        ));
        let Settled::Done(outcome) = settled else {
            panic!("left to the sandbox");
        };
        assert_eq!(outcome.by, By::NonInteractiveDefault);
        assert!(outcome.rule.as_deref().unwrap().starts_with("ask "));
        if allow {
            assert_eq!(opened(&outcome), "asked");
        } else {
            assert!(outcome.fd.is_none());
            let reason = outcome.reason.unwrap();
            assert!(
                reason.ends_with("the answer was deny (non-interactive-default)"),
                "{reason}"
            );
        }
    }
}

#[test]
fn a_file_the_sandbox_allows_is_left_to_it() {
    let fx = Fixture::new();
    let shared = fx.shared(false, None);
    // Through a symlink the sandbox does not allow, a file it does.
    let name = fx.path("name");
    symlink(fx.path("denied"), &name).unwrap();
    let ask = Ask::plain(bytes(&name), Access::Read);
    let sandbox = |real: &Path, write: bool| !write && real.ends_with("denied");
    let step = decide_and_open(&shared, &name, &ask, &sandbox, None);
    assert!(matches!(step, Step::Sandbox));
    // Control: the same request, with a sandbox that allows only the
    // name, is the broker's (and its rules deny it).
    let name_only = |real: &Path, _: bool| real.ends_with("name");
    let refused = done(decide_and_open(&shared, &name, &ask, &name_only, None));
    assert!(matches!(refused.body, ResponseBody::Denied { .. }));
}

/// The process itself, as a connection's peer.
fn own_peer() -> Peer {
    let (ours, _theirs) = proto::socket::seqpacket_pair().unwrap();
    Peer::of(ours.as_fd()).unwrap()
}

/// An SDK request to read `path`.
fn read_request(path: &Path) -> Request {
    Request {
        id: 7,
        body: RequestBody::Open {
            path: bytes(path).to_vec(),
            access: Access::Read,
            flags: OpenFlags::default(),
        },
    }
}

#[test]
fn the_refusal_summary_names_what_protects_a_path() {
    let fx = Fixture::new();
    let shared = fx.shared(false, Some(fx.audit()));
    let peer = own_peer();
    let who = Requester {
        peer: &peer,
        client: "test",
    };
    for name in ["kept", "denied"] {
        let handled = block_on(handler::handle(
            &shared,
            &who,
            &read_request(&fx.path(name)),
        ));
        assert!(
            matches!(handled.body, ResponseBody::Denied { .. }),
            "{name}"
        );
    }
    let refused = shared.audit.as_ref().unwrap().refused();
    assert_eq!(refused.len(), 2);
    // Protected: no rule of the policy's, so its reason (which no flag lifts).
    assert_eq!(refused[0].by, By::Protected);
    assert_eq!(refused[0].rule.as_deref(), Some("deny (the policy's)"));
    // Control: a rule's refusal names the rule.
    assert_eq!(refused[1].by, By::Rule);
    assert!(refused[1].rule.as_deref().unwrap().starts_with("deny "));
}

#[test]
fn a_decision_that_cannot_be_recorded_opens_nothing() {
    let fx = Fixture::new();
    let peer = own_peer();
    let who = Requester {
        peer: &peer,
        client: "test",
    };
    let request = read_request(&fx.path("allowed"));
    let shared = Arc::new(fx.shared(false, Some(fx.audit())));
    // Control: recorded, and served.
    let handled = block_on(handler::handle(&shared, &who, &request));
    assert!(matches!(handled.body, ResponseBody::Opened));
    assert!(handled.fd.is_some());
    // The log takes no more records: the same request gets no descriptor.
    shared.audit.as_ref().unwrap().finish("test").unwrap();
    let handled = block_on(handler::handle(&shared, &who, &request));
    match handled.body {
        ResponseBody::Error { kind, message } => {
            assert_eq!(kind, ErrorKind::Internal);
            assert!(message.contains("nothing was opened"), "{message}");
        }
        other => panic!("answered {other:?}"),
    }
    assert!(handled.fd.is_none());
}

/// The broker makes no name holding a control character either (the
/// guard's rule, `protect::judge_name`): a file created through the SDK
/// or transparent brokering in a tree the rules allow. Controls: a clean
/// name (UTF-8, spaces, a leading dash) is made; a file the person named
/// so before is written as before.
#[test]
fn the_broker_makes_no_name_a_terminal_acts_on() {
    let fx = Fixture::new();
    fs::create_dir(fx.path("made")).unwrap();
    fs::write(fx.path("made/old\x1b[2J"), "old").unwrap();
    let spec = policies::load_str(
        "t.toml",
        "[broker]\nallow_write = [\"$WORKSPACE/made\"]\n",
        &fx.dir,
    )
    .unwrap();
    let policy = spec
        .resolve(&policies::Vars {
            home: fx.dir.clone(),
            workspace: fx.dir.clone(),
            tmpdir: fx.dir.clone(),
        })
        .unwrap();
    let approvals = Approvals::NonInteractive { allow: false };
    let shared = Shared::new("t".into(), policy, approvals, None, Vec::new());
    let create = |name: &[u8]| {
        let mut path = fx.path("made").into_os_string().into_vec();
        path.push(b'/');
        path.extend_from_slice(name);
        let path = PathBuf::from(std::ffi::OsString::from_vec(path));
        let mut ask = Ask::plain(bytes(&path), Access::Write);
        ask.flags.create = true;
        ask.flags.mode = 0o644;
        let outcome = done(decide_and_open(&shared, &path, &ask, &nothing, None));
        (path, outcome)
    };
    for bad in [
        &b"a\x1b]52;c;ZWNobyBoaQ==\x07b"[..],
        b"new\nline",
        b"c1 \xc2\x9b2J",
        b"lone \x9b2J",
    ] {
        let (path, refused) = create(bad);
        assert!(
            matches!(refused.body, ResponseBody::Denied { .. }),
            "{bad:?}: {:?}",
            refused.body
        );
        assert_eq!(refused.by, By::Protected, "{bad:?}");
        let rule = refused.rule.unwrap_or_default();
        assert!(rule.contains("control character"), "{rule}");
        assert!(fs::symlink_metadata(&path).is_err(), "{bad:?} was made");
    }
    for good in ["café – ünï ✓.txt", "with spaces", "-leading-dash"] {
        let (path, made) = create(good.as_bytes());
        assert!(
            matches!(made.body, ResponseBody::Opened),
            "{good}: {:?}",
            made.body
        );
        assert!(path.exists(), "{good}");
    }
    let (_, old) = create(b"old\x1b[2J");
    assert_eq!(opened(&old), "old");
}
