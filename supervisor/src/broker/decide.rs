//! The decide-and-open core that SDK requests, transparent brokering and a
//! stacked session's forwarding share: resolve, decide on the real path,
//! ask a person where a rule says to, open; and the audit record of what
//! was decided.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use policies::{Verdict, Want};
use proto::{Access, ErrorKind, OpenFlags, ResponseBody};

use super::protect::{judge as judge_path, judge_as_git_directory, judge_name, Act, Naming};
pub use super::safe_open::CallFlags;
use super::safe_open::{self, Kind, Lookup, Mode, Resolved};
use super::Shared;
use crate::approval::Question;
use crate::audit::{self, By, DecisionRecord, Op};

/// How many times an exclusive create is retried when a file appears at
/// the name between the decision and the create.
const CREATE_ATTEMPTS: usize = 3;

/// Who asks, as the approver and the audit record name them.
pub struct Asker<'a> {
    pub pid: libc::pid_t,
    pub exe: Option<&'a Path>,
    /// The client's own name (untrusted), or how the request arrived.
    pub client: &'a str,
    pub via: audit::Via,
}

/// An open or query: the path, the access, and the flags.
pub struct Ask<'a> {
    pub path: &'a [u8],
    pub access: Access,
    /// What every open carries, from the SDK or the program's own call.
    pub flags: OpenFlags,
    /// What only the program's own call says (transparent brokering).
    pub call: CallFlags,
}

impl<'a> Ask<'a> {
    /// `path` with `access` and no flag: a query, or the base of an open.
    pub fn plain(path: &'a [u8], access: Access) -> Ask<'a> {
        Ask {
            path,
            access,
            flags: OpenFlags::default(),
            call: CallFlags::default(),
        }
    }

    pub fn writes(&self) -> bool {
        self.access.wants_write() || self.flags.writes()
    }

    pub(super) fn want(&self) -> Want {
        match (self.access.wants_read(), self.writes()) {
            (true, true) => Want::ReadWrite,
            (false, true) => Want::Write,
            _ => Want::Read,
        }
    }

    fn open_mode(&self) -> Mode {
        Mode {
            read: self.access.wants_read(),
            write: self.access.wants_write(),
            flags: self.flags,
            call: self.call,
        }
    }
}

/// What the broker concluded, before it is turned into a response and a
/// record.
pub struct Outcome {
    pub body: ResponseBody,
    pub fd: Option<OwnedFd>,
    pub opened: Option<PathBuf>,
    pub by: By,
    pub rule: Option<String>,
    pub reason: Option<String>,
    /// For an error from the kernel: its errno (a stacked session's
    /// forwarding reads it; nothing stacks on macOS).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub errno: Option<i32>,
}

impl Outcome {
    pub(super) fn error(kind: ErrorKind, message: String) -> Outcome {
        Outcome {
            reason: Some(message.clone()),
            body: ResponseBody::Error { kind, message },
            fd: None,
            opened: None,
            by: By::Error,
            rule: None,
            errno: None,
        }
    }

    pub(super) fn io(path: &Path, e: &io::Error) -> Outcome {
        let kind = match e.kind() {
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::InvalidInput => ErrorKind::Malformed,
            _ => ErrorKind::Io,
        };
        Outcome {
            errno: e.raw_os_error(),
            ..Outcome::error(kind, format!("{}: {e}", path.display()))
        }
    }

    pub(super) fn denied(by: By, rule: Option<String>, reason: String) -> Outcome {
        Outcome {
            body: ResponseBody::Denied {
                reason: reason.clone(),
                rule: rule.clone(),
            },
            fd: None,
            opened: None,
            by,
            rule,
            reason: Some(reason),
            errno: None,
        }
    }
}

/// The audit record of a decision (taking the outcome's path, rule and
/// reason; the body and descriptor stay).
pub fn record(
    asker: &Asker<'_>,
    request_id: u64,
    op: Op,
    ask: &Ask<'_>,
    outcome: &mut Outcome,
    started: Instant,
) -> DecisionRecord {
    let decision = match &outcome.body {
        ResponseBody::Opened | ResponseBody::Allowed { .. } => audit::Decision::Allowed,
        ResponseBody::Error { .. } => audit::Decision::Error,
        ResponseBody::WouldAsk { .. } => audit::Decision::WouldAsk,
        _ => audit::Decision::Denied,
    };
    DecisionRecord {
        pid: asker.pid as u32,
        exe: asker.exe.map(Path::to_path_buf),
        client: asker.client.to_owned(),
        via: asker.via,
        request_id,
        op,
        path_asked: PathBuf::from(OsStr::from_bytes(ask.path)),
        path_opened: outcome.opened.take(),
        access: ask.access.into(),
        flags: ask.flags,
        decision,
        by: outcome.by,
        rule: outcome.rule.take(),
        reason: outcome.reason.take(),
        latency_us: started.elapsed().as_micros() as u64,
    }
}

/// What decided a request about one path, and how.
pub struct Decision {
    pub verdict: Verdict,
    /// Who decided: the rules ([`By::Rule`]) or sluice's own protection
    /// ([`By::Protected`]).
    pub by: By,
    /// The deciding rule, as displayed.
    pub rule: Option<String>,
    /// A short sentence for the person and the record.
    pub reason: String,
}

impl Decision {
    pub(super) fn denied(self) -> Outcome {
        Outcome::denied(self.by, self.rule, self.reason)
    }
}

/// The rules' decision for `path`, with sluice's protected paths applied
/// first by the policy.
pub(super) fn judge(shared: &Shared, path: &Path, want: Want) -> Decision {
    // `[filesystem] protect` holds for the broker's writes too (`guard`).
    let protect = &shared.policy.filesystem.protect;
    if want.writes() {
        // A name holding a control character is not made (the guard's
        // `check_name`); a file the person named so is written as before.
        let name = path.file_name().map_or(&[][..], |n| n.as_bytes());
        if let Some(refusal) = judge_name(name, Naming::File) {
            if std::fs::symlink_metadata(path).is_err() {
                return Decision {
                    verdict: Verdict::Deny,
                    by: By::Protected,
                    reason: format!("{}: {}", refusal.rule, refusal.why),
                    rule: Some(refusal.rule),
                };
            }
        }
        // The guard's judgement, a directory holding `HEAD` judged as a
        // `.git` too (a bare repository made or written through the broker).
        let by_list = |path: &Path, act| judge_path(protect, path, act);
        let holds = |dir: &Path, name: &[u8]| match std::fs::symlink_metadata(
            dir.join(OsStr::from_bytes(name)),
        ) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(false),
            Err(e) => Err(e),
        };
        let refused = match by_list(path, Act::Write) {
            Some(refusal) => Ok(Some(refusal)),
            None => {
                let keeps_head = |head: &Path| protect.excepted(head);
                judge_as_git_directory(path, Act::Write, by_list, keeps_head, holds)
            }
        };
        let (rule, reason) = match refused {
            Ok(None) => (None, String::new()),
            Ok(Some(refusal)) => {
                let reason = format!("{}: {}", refusal.rule, refusal.why);
                (Some(refusal.rule), reason)
            }
            // Fail closed: what cannot be judged is not written.
            Err(e) => (
                Some("a git repository's files".to_owned()),
                format!("cannot tell whether a directory on the way holds HEAD: {e}"),
            ),
        };
        if let Some(rule) = rule {
            return Decision {
                verdict: Verdict::Deny,
                by: By::Rule,
                reason,
                rule: Some(rule),
            };
        }
    }
    let d = shared.policy.broker.decide(path, want);
    Decision {
        verdict: d.verdict,
        by: if d.protected { By::Protected } else { By::Rule },
        rule: d.rule.map(|r| r.to_string()),
        reason: d.reason,
    }
}

/// Whether the sandbox itself lets the program reach a real path (for
/// writing, if `true`): then the request is the sandbox's to decide, not
/// the broker's ([`Step::Sandbox`]).
pub type SandboxAllows<'a> = &'a (dyn Fn(&Path, bool) -> bool + Sync);

/// For a request that came without a sandbox to leave it to (the SDK's).
fn no_sandbox(_: &Path, _: bool) -> bool {
    false
}

/// Where [`decide_and_open`] stopped.
pub enum Step {
    /// Decided, and carried out or refused: the answer is ready.
    Done(Outcome),
    /// An `ask` rule covers the file: a person must answer first.
    Person(Pending),
    /// The file resolved to one the sandbox allows: not the broker's call.
    Sandbox,
}

/// The question a [`Step::Person`] waits on.
pub struct Pending {
    /// The real path of the file asked about.
    real: PathBuf,
    decision: Decision,
}

// Both for a stacked session's forwarding (`outer`): Linux only.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl Pending {
    pub(super) fn new(real: PathBuf, decision: Decision) -> Pending {
        Pending { real, decision }
    }
}

/// A person's yes (or the overlay's, or `--approve`'s) to the question
/// about one real path: it opens that file and no other.
pub struct Answered {
    real: PathBuf,
    by: By,
    rule: Option<String>,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl Answered {
    /// Who answered, and the rule to name in the record.
    pub(super) fn by_and_rule(self) -> (By, Option<String>) {
        (self.by, self.rule)
    }
}

/// How a request ended, once every person it needed has answered.
pub enum Settled {
    Done(Outcome),
    Sandbox,
}

/// The decide-and-open core that SDK requests and transparent brokering
/// share, on the caller's thread and without waiting: resolves `path`
/// (absolute) for `ask`, decides on the real path, and opens (or creates)
/// the file. Stops where a person must answer; taken again with that
/// answer (`answered`), it opens the file only if `path` still resolves to
/// the one asked about, and asks again otherwise.
pub fn decide_and_open(
    shared: &Shared,
    path: &Path,
    ask: &Ask<'_>,
    sandbox: SandboxAllows<'_>,
    answered: Option<&Answered>,
) -> Step {
    // The sandbox was asked about this path already (it is why the broker
    // is): with no symlink on the way, it is the real one. Tried once: an
    // answer is about a file the short way did not open.
    if answered.is_none() {
        if let Some(done) = open_plain(shared, path, ask) {
            return Step::Done(done);
        }
    }
    for _ in 0..CREATE_ATTEMPTS {
        let (lookup, decision) = match judge_lookup(shared, path, ask) {
            Ok(both) => both,
            Err(done) => return Step::Done(*done),
        };
        if sandbox(lookup.real(), ask.writes()) {
            return Step::Sandbox;
        }
        let (by, rule) = match decision.verdict {
            Verdict::Deny => return Step::Done(decision.denied()),
            Verdict::Allow => (decision.by, decision.rule),
            Verdict::Ask => match answered.filter(|a| a.real == lookup.real()) {
                Some(a) => (a.by, a.rule.clone().or(decision.rule)),
                None => {
                    // A directory that cannot be served is refused before
                    // a person is asked about it.
                    if let Some(refused) = unservable(shared, &lookup, ask, &decision.rule) {
                        return Step::Done(refused);
                    }
                    let real = lookup.real().to_path_buf();
                    return Step::Person(Pending { real, decision });
                }
            },
        };
        if let Some(done) = open_judged(shared, &lookup, ask, by, rule) {
            return Step::Done(done);
        }
    }
    Step::Done(kept_changing(path))
}

/// The async driver of [`decide_and_open`]: awaits each answer a step
/// needs (in the request's own task: a slow answer holds up nothing
/// else), then takes the step again with it.
pub async fn settle(
    shared: &Shared,
    asker: &Asker<'_>,
    path: &Path,
    ask: &Ask<'_>,
    sandbox: SandboxAllows<'_>,
    mut step: Step,
) -> Settled {
    // Each question is about the file `path` resolves to then: one that
    // keeps changing under the answers is given up on, as a create is.
    for _ in 0..CREATE_ATTEMPTS {
        let pending = match step {
            Step::Done(outcome) => return Settled::Done(outcome),
            Step::Sandbox => return Settled::Sandbox,
            Step::Person(pending) => pending,
        };
        let answered = ask_person(shared, asker, pending, ask.writes()).await;
        let answered = match answered {
            Ok(answered) => answered,
            Err(refused) => return Settled::Done(*refused),
        };
        step = decide_and_open(shared, path, ask, sandbox, Some(&answered));
    }
    match step {
        Step::Done(outcome) => Settled::Done(outcome),
        Step::Sandbox => Settled::Sandbox,
        Step::Person(_) => Settled::Done(kept_changing(path)),
    }
}

/// Resolves, decides and opens `path` (absolute) for `ask`, asking a
/// person where a rule says to: a request with no sandbox to leave it to.
pub async fn open_path(shared: &Shared, asker: &Asker<'_>, path: &Path, ask: &Ask<'_>) -> Outcome {
    let first = decide_and_open(shared, path, ask, &no_sandbox, None);
    match settle(shared, asker, path, ask, &no_sandbox, first).await {
        Settled::Done(outcome) => outcome,
        // `no_sandbox` allows nothing: never reached.
        Settled::Sandbox => Outcome::error(
            ErrorKind::Internal,
            format!("{}: no sandbox to leave the request to", path.display()),
        ),
    }
}

/// Puts `pending` to whoever answers `ask` rules ([`super::Approvals`]):
/// the yes, or the refusal to answer the request with.
pub(super) async fn ask_person(
    shared: &Shared,
    asker: &Asker<'_>,
    pending: Pending,
    write: bool,
) -> Result<Answered, Box<Outcome>> {
    let Pending { real, decision } = pending;
    let question = Question {
        pid: asker.pid,
        exe: asker.exe,
        path: &real,
        write,
        rule: decision.rule.clone(),
    };
    let answer = shared.approvals.ask(&question).await;
    let by = answer.by;
    let rule = answer.rule.or(decision.rule);
    if !answer.allow {
        let mut reason = format!("{}; the answer was deny ({})", decision.reason, by.as_str());
        if let Some(note) = answer.note {
            reason = format!("{reason}: {note}");
        }
        return Err(Box::new(Outcome::denied(by, rule, reason)));
    }
    Ok(Answered { real, by, rule })
}

/// The short way, for the common case: an existing file a rule allows,
/// named without symlinks or `..`, opened in one step on its name
/// ([`safe_open::open_plain`]). `None` for anything else, which takes the long
/// way: resolve, judge the real path, reopen.
fn open_plain(shared: &Shared, path: &Path, ask: &Ask<'_>) -> Option<Outcome> {
    if ask.flags.create {
        return None;
    }
    let lexical = safe_open::normalize(path);
    let decision = judge(shared, &lexical, ask.want());
    if decision.verdict != Verdict::Allow {
        return None;
    }
    let within = read_only_root(shared, ask).ok()?;
    let within = within.as_deref().map(|fd| fd.as_fd());
    let outcome = match safe_open::open_plain(path, ask.open_mode(), within) {
        Ok(Some(fd)) => Outcome {
            body: ResponseBody::Opened,
            fd: Some(fd),
            opened: Some(lexical),
            by: decision.by,
            rule: decision.rule,
            reason: None,
            errno: None,
        },
        Err(e) if e.kind() == io::ErrorKind::Unsupported => Outcome::io(&lexical, &e),
        Ok(None) | Err(_) => return None,
    };
    Some(outcome)
}

/// The root of the read-only copy of the mount tree to open in, for an ask
/// that writes nothing (`None` for one that does, or where there is no
/// copy: always on macOS).
fn read_only_root(shared: &Shared, ask: &Ask<'_>) -> io::Result<Option<Arc<OwnedFd>>> {
    #[cfg(target_os = "linux")]
    if let (Some(view), false) = (&shared.readonly, ask.writes()) {
        return view.root();
    }
    let _ = (shared, ask);
    Ok(None)
}

/// Resolves `path` and judges the file it names; `Err` when that already
/// settles the request (it cannot be resolved, or is missing and not to be
/// created).
fn judge_lookup(
    shared: &Shared,
    path: &Path,
    ask: &Ask<'_>,
) -> Result<(Lookup, Decision), Box<Outcome>> {
    let want = ask.want();
    let lookup = match safe_open::lookup_with(path, ask.call.nofollow) {
        Ok(l) => l,
        Err(e) => return Err(Box::new(refuse_or_error(shared, path, want, &e))),
    };
    let decision = judge(shared, lookup.real(), want);
    if let (Lookup::Missing(_), false) = (&lookup, ask.flags.create) {
        // Say "denied" where the policy denies, so a missing file there
        // is indistinguishable from a present one; else "not found".
        if decision.verdict == Verdict::Deny {
            return Err(Box::new(decision.denied()));
        }
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        return Err(Box::new(Outcome::io(path, &e)));
    }
    Ok((lookup, decision))
}

/// Opens (or creates) the file judged and allowed; `None` when a file
/// appeared at the name of one to be created, and the lookup must be done
/// again.
fn open_judged(
    shared: &Shared,
    lookup: &Lookup,
    ask: &Ask<'_>,
    by: By,
    rule: Option<String>,
) -> Option<Outcome> {
    let real = lookup.real().to_path_buf();
    let opened = match lookup {
        Lookup::Found(_) if ask.call.exclusive => Err(io::Error::from_raw_os_error(libc::EEXIST)),
        Lookup::Found(found) if found.kind == Kind::Directory && !ask.writes() => {
            match open_directory(shared, found, ask) {
                Ok(fd) => Ok(fd),
                Err(NotServed::Io(e)) => Err(e),
                Err(NotServed::NotInView(why)) => {
                    return Some(Outcome::denied(By::Protected, rule, why))
                }
            }
        }
        Lookup::Found(found) => read_only_root(shared, ask).and_then(|within| {
            safe_open::reopen(
                found,
                ask.open_mode(),
                within.as_deref().map(|fd| fd.as_fd()),
            )
        }),
        Lookup::Missing(missing) => {
            match safe_open::create(missing, ask.open_mode(), ask.flags.mode) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => return None,
                other => other,
            }
        }
    };
    Some(match opened {
        Ok(fd) => Outcome {
            body: ResponseBody::Opened,
            fd: Some(fd),
            opened: Some(real),
            by,
            rule,
            reason: None,
            errno: None,
        },
        Err(e) => Outcome::io(&real, &e),
    })
}

/// Why a directory is not served.
#[derive(Debug)]
pub enum NotServed {
    /// The sandbox does not see this directory at this path.
    NotInView(String),
    /// The kernel refused the open in the view (there is a view on
    /// Linux only).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Io(io::Error),
}

/// A directory is opened in the sandbox's own view, never in the
/// supervisor's tree: its descriptor reaches what lies beneath it and, after
/// `fchdir`, above it (`SandboxView`). macOS has no such view: no
/// directory is served there.
fn open_directory(shared: &Shared, found: &Resolved, ask: &Ask<'_>) -> Result<OwnedFd, NotServed> {
    #[cfg(target_os = "linux")]
    if let Some(view) = &shared.sandbox {
        return view.open_directory(found, ask.open_mode());
    }
    let _ = (shared, ask);
    Err(NotServed::NotInView(format!(
        "'{}' is a directory, and this broker has no view of a sandbox to serve it from{}",
        found.real.display(),
        if cfg!(target_os = "linux") {
            ""
        } else {
            " (directories are not served on macOS)"
        }
    )))
}

/// The refusal of a directory that would not be served (see
/// [`open_directory`]), if `lookup` is one.
pub(super) fn unservable(
    shared: &Shared,
    lookup: &Lookup,
    ask: &Ask<'_>,
    rule: &Option<String>,
) -> Option<Outcome> {
    match lookup {
        Lookup::Found(found) if found.kind == Kind::Directory && !ask.writes() => {
            match open_directory(shared, found, ask) {
                Err(NotServed::NotInView(why)) => {
                    Some(Outcome::denied(By::Protected, rule.clone(), why))
                }
                Ok(_) | Err(NotServed::Io(_)) => None,
            }
        }
        _ => None,
    }
}

fn kept_changing(path: &Path) -> Outcome {
    Outcome::error(
        ErrorKind::Io,
        format!(
            "{}: the file kept changing while it was being created",
            path.display()
        ),
    )
}

/// A path that cannot be resolved (a magic link, a loop, a permission
/// error): denied if the policy denies its lexical form, else the error.
fn refuse_or_error(shared: &Shared, path: &Path, want: Want, e: &io::Error) -> Outcome {
    let decision = judge(shared, &safe_open::normalize(path), want);
    if decision.verdict == Verdict::Deny {
        return decision.denied();
    }
    Outcome::io(path, e)
}
