//! One request, start to finish: resolve, decide, open, and say what
//! happened for the audit record.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use policies::{Verdict, Want};
use proto::{Access, ErrorKind, Request, RequestBody, ResponseBody};

use super::approve::Question;
use super::fsops::{self, Kind, Lookup, Mode, Resolved};
use super::peer::Peer;
use super::sandbox_view::NotServed;
use super::Shared;
use crate::audit::{self, By, DecisionRecord, Op};

/// How many times an exclusive create is retried when a file appears at
/// the name between the decision and the create.
const CREATE_ATTEMPTS: usize = 3;

/// The answer to a request, its descriptor, and the audit record's body
/// (`None` for requests that decide nothing, such as `Ping`).
pub struct Handled {
    pub body: ResponseBody,
    pub fd: Option<OwnedFd>,
    pub audit: Option<DecisionRecord>,
}

/// Who is asking, as the connection knows it.
pub struct Requester<'a> {
    pub peer: &'a Peer,
    pub client: &'a str,
}

/// Who asks, as the approver and the audit record name them.
pub struct Asker<'a> {
    pub pid: libc::pid_t,
    pub exe: Option<&'a Path>,
    /// The client's own name (untrusted), or how the request arrived.
    pub client: &'a str,
    pub via: audit::Via,
}

/// An open or query, flattened.
pub struct Ask<'a> {
    pub path: &'a [u8],
    pub access: Access,
    pub create: bool,
    pub truncate: bool,
    pub append: bool,
    pub directory: bool,
    pub mode: u32,
    /// `O_CREAT|O_EXCL`: an existing file is `EEXIST`, not opened.
    pub exclusive: bool,
    /// `O_NOFOLLOW`: a symlink as the last component is not followed.
    pub nofollow: bool,
    /// `O_SYNC` / `O_DSYNC`, as asked.
    pub sync: i32,
    /// `mode` is final (the requester's umask applied): see
    /// [`Mode::exact_perm`].
    pub exact_perm: bool,
    /// Make a directory rather than a file (transparent `mkdir`).
    pub mkdir: bool,
}

impl<'a> Ask<'a> {
    /// `path` with `access` and no flag: a query, or the base of an open.
    pub fn plain(path: &'a [u8], access: Access) -> Ask<'a> {
        Ask {
            path,
            access,
            create: false,
            truncate: false,
            append: false,
            directory: false,
            mode: 0,
            exclusive: false,
            nofollow: false,
            sync: 0,
            exact_perm: false,
            mkdir: false,
        }
    }

    pub fn writes(&self) -> bool {
        self.access.wants_write() || self.create || self.truncate || self.append
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
            append: self.append,
            truncate: self.truncate,
            directory: self.directory,
            sync: self.sync,
            exact_perm: self.exact_perm,
            mkdir: self.mkdir,
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
    /// For an error from the kernel: its errno.
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

    fn io(path: &Path, e: &io::Error) -> Outcome {
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

/// Serves one request.
pub async fn handle(shared: &Shared, who: &Requester<'_>, request: &Request) -> Handled {
    let body = &request.body;
    let started = Instant::now();
    let (op, ask) = match body {
        RequestBody::Ping => {
            return Handled {
                body: ResponseBody::Pong,
                fd: None,
                audit: None,
            }
        }
        RequestBody::Open {
            path,
            access,
            create,
            truncate,
            append,
            directory,
            mode,
        } => (
            Op::Open,
            Ask {
                create: *create,
                truncate: *truncate,
                append: *append,
                directory: *directory,
                mode: *mode,
                ..Ask::plain(path, *access)
            },
        ),
        RequestBody::Query { path, access } => (Op::Query, Ask::plain(path, *access)),
    };
    let asker = Asker {
        pid: who.peer.pid,
        exe: who.peer.exe.as_deref(),
        client: who.client,
        via: audit::Via::Sdk,
    };
    let mut outcome = match op {
        Op::Open => open(shared, who, &asker, &ask).await,
        _ => query(shared, who, &ask),
    };
    let record = record(&asker, request.id, op, &ask, &mut outcome, started);
    Handled {
        body: outcome.body,
        fd: outcome.fd,
        audit: Some(record),
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
        flags: audit::Flags {
            create: ask.create,
            truncate: ask.truncate,
            append: ask.append,
            directory: ask.directory,
        },
        decision,
        by: outcome.by,
        rule: outcome.rule.take(),
        reason: outcome.reason.take(),
        latency_us: started.elapsed().as_micros() as u64,
    }
}

/// Checks the flags make sense together, as open(2) would.
fn malformed(ask: &Ask<'_>) -> Option<String> {
    if (ask.truncate || ask.append) && !ask.access.wants_write() {
        return Some("truncate and append need write access".into());
    }
    if ask.directory && (ask.create || ask.access.wants_write()) {
        return Some("a directory can only be opened for reading".into());
    }
    None
}

fn absolute(who: &Requester<'_>, ask: &Ask<'_>) -> Result<PathBuf, Box<Outcome>> {
    fsops::absolute(ask.path, || who.peer.cwd())
        .map_err(|e| Box::new(Outcome::io(Path::new(OsStr::from_bytes(ask.path)), &e)))
}

/// The rule's verdict (and display) for `path`, with sluice's protected
/// paths applied first by the policy.
pub(super) fn judge(
    shared: &Shared,
    path: &Path,
    want: Want,
) -> (Verdict, Option<String>, String, By) {
    // `[filesystem] protect` holds for the broker's writes too (`guard`).
    let protect = &shared.policy.filesystem.protect;
    if want.writes() {
        if let Some(rule) = protect.protects(path).or_else(|| protect.leads_to(path)) {
            let reason = format!("{rule}: it runs code outside the sandbox later");
            return (Verdict::Deny, Some(rule.to_string()), reason, By::Rule);
        }
    }
    let d = shared.policy.broker.decide(path, want);
    let by = if d.rule.is_none() && d.verdict == Verdict::Deny && shared.is_protected(path) {
        By::Protected
    } else {
        By::Rule
    };
    (d.verdict, d.rule.map(|r| r.to_string()), d.reason, by)
}

async fn open(shared: &Shared, who: &Requester<'_>, asker: &Asker<'_>, ask: &Ask<'_>) -> Outcome {
    if let Some(why) = malformed(ask) {
        return Outcome::error(ErrorKind::Malformed, why);
    }
    let path = match absolute(who, ask) {
        Ok(p) => p,
        Err(o) => return *o,
    };
    let own = open_path(shared, asker, &path, ask).await;
    // Stacked: what this sandbox cannot reach, the outer broker may serve.
    super::outer::forward(shared, asker, &path, ask, own).await
}

/// Resolves, decides and opens `path` (absolute) for `ask`: the core that
/// SDK requests and transparent brokering share.
pub async fn open_path(shared: &Shared, asker: &Asker<'_>, path: &Path, ask: &Ask<'_>) -> Outcome {
    if let Some(done) = open_plain(shared, path, ask) {
        return done;
    }
    for _ in 0..CREATE_ATTEMPTS {
        let (lookup, judged) = match judge_lookup(shared, path, ask) {
            Ok(both) => both,
            Err(done) => return *done,
        };
        let (by, rule) = match judged.verdict {
            Verdict::Deny => return judged.denied(),
            Verdict::Allow => (By::Rule, judged.rule),
            Verdict::Ask => {
                // A directory that cannot be served is refused before a
                // person is asked about it.
                if let Some(refused) = unservable(shared, &lookup, ask, &judged.rule) {
                    return refused;
                }
                let question = Question {
                    pid: asker.pid,
                    exe: asker.exe,
                    path: lookup.real(),
                    write: ask.writes(),
                    rule: judged.rule.clone(),
                };
                let answer = shared.approvals.ask(&question).await;
                let by = By::from(answer.by);
                let rule = answer.rule.or(judged.rule);
                if !answer.allow {
                    let mut reason =
                        format!("{}; the answer was deny ({})", judged.reason, by.as_str());
                    if let Some(note) = answer.note {
                        reason = format!("{reason}: {note}");
                    }
                    return Outcome::denied(by, rule, reason);
                }
                (by, rule)
            }
        };
        if let Some(done) = open_judged(shared, &lookup, ask, by, rule) {
            return done;
        }
    }
    kept_changing(path)
}

/// What [`open_path_now`] did.
pub enum Now {
    Done(Outcome),
    /// The file resolved to one `sandbox_allows`: not the broker's call.
    Sandbox,
    /// A person must answer: the caller runs [`open_path`], which asks.
    Person,
}

/// [`open_path`] without waiting, on the caller's thread: what the rules
/// decide is done here. A file that resolves to one `sandbox_allows` (for
/// the access asked) is left alone.
pub fn open_path_now(
    shared: &Shared,
    path: &Path,
    ask: &Ask<'_>,
    sandbox_allows: impl Fn(&Path, bool) -> bool,
) -> Now {
    // The sandbox was asked about this path already (it is why the broker
    // is): with no symlink on the way, it is the real one.
    if let Some(done) = open_plain(shared, path, ask) {
        return Now::Done(done);
    }
    for _ in 0..CREATE_ATTEMPTS {
        let (lookup, judged) = match judge_lookup(shared, path, ask) {
            Ok(both) => both,
            Err(done) => return Now::Done(*done),
        };
        if sandbox_allows(lookup.real(), ask.writes()) {
            return Now::Sandbox;
        }
        match judged.verdict {
            Verdict::Deny => return Now::Done(judged.denied()),
            Verdict::Ask => return Now::Person,
            Verdict::Allow => {}
        }
        if let Some(done) = open_judged(shared, &lookup, ask, By::Rule, judged.rule) {
            return Now::Done(done);
        }
    }
    Now::Done(kept_changing(path))
}

/// The short way, for the common case: an existing file a rule allows,
/// named without symlinks or `..`, opened in one step on its name
/// ([`fsops::open_plain`]). `None` for anything else, which takes the long
/// way: resolve, judge the real path, reopen.
fn open_plain(shared: &Shared, path: &Path, ask: &Ask<'_>) -> Option<Outcome> {
    if ask.create {
        return None;
    }
    let lexical = fsops::normalize(path);
    let (verdict, rule, _, by) = judge(shared, &lexical, ask.want());
    if verdict != Verdict::Allow {
        return None;
    }
    let within = read_only_root(shared, ask).ok()?;
    let within = within.as_deref().map(|fd| fd.as_fd());
    let outcome = match fsops::open_plain(path, ask.open_mode(), within) {
        Ok(Some(fd)) => Outcome {
            body: ResponseBody::Opened,
            fd: Some(fd),
            opened: Some(lexical),
            by,
            rule,
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
/// copy).
fn read_only_root(shared: &Shared, ask: &Ask<'_>) -> io::Result<Option<Arc<OwnedFd>>> {
    match &shared.readonly {
        Some(view) if !ask.writes() => view.root(),
        _ => Ok(None),
    }
}

/// A rule's verdict on a resolved path.
struct Judged {
    verdict: Verdict,
    rule: Option<String>,
    reason: String,
    by: By,
}

impl Judged {
    fn denied(self) -> Outcome {
        Outcome::denied(self.by, self.rule, self.reason)
    }
}

/// Resolves `path` and judges the file it names; `Err` when that already
/// settles the request (it cannot be resolved, or is missing and not to be
/// created).
fn judge_lookup(
    shared: &Shared,
    path: &Path,
    ask: &Ask<'_>,
) -> Result<(Lookup, Judged), Box<Outcome>> {
    let want = ask.want();
    let lookup = match fsops::lookup_with(path, ask.nofollow) {
        Ok(l) => l,
        Err(e) => return Err(Box::new(refuse_or_error(shared, path, want, &e))),
    };
    let (verdict, rule, reason, by) = judge(shared, lookup.real(), want);
    let judged = Judged {
        verdict,
        rule,
        reason,
        by,
    };
    if let (Lookup::Missing(_), false) = (&lookup, ask.create) {
        // Say "denied" where the policy denies, so a missing file there
        // is indistinguishable from a present one; else "not found".
        if judged.verdict == Verdict::Deny {
            return Err(Box::new(judged.denied()));
        }
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        return Err(Box::new(Outcome::io(path, &e)));
    }
    Ok((lookup, judged))
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
        Lookup::Found(_) if ask.exclusive => Err(io::Error::from_raw_os_error(libc::EEXIST)),
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
            fsops::reopen(
                found,
                ask.open_mode(),
                within.as_deref().map(|fd| fd.as_fd()),
            )
        }),
        Lookup::Missing(missing) => match fsops::create(missing, ask.open_mode(), ask.mode) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => return None,
            other => other,
        },
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

/// A directory is opened in the sandbox's own view, never in the
/// supervisor's tree: its descriptor reaches what lies beneath it and, after
/// `fchdir`, above it ([`super::SandboxView`]).
fn open_directory(shared: &Shared, found: &Resolved, ask: &Ask<'_>) -> Result<OwnedFd, NotServed> {
    match &shared.sandbox {
        Some(view) => view.open_directory(found, ask.open_mode()),
        None => Err(NotServed::NotInView(format!(
            "'{}' is a directory, and this broker has no view of a sandbox to serve it from",
            found.real.display()
        ))),
    }
}

/// The refusal of a directory that would not be served (see
/// [`open_directory`]), if `lookup` is one.
fn unservable(
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
    let lexical = fsops::normalize(path);
    let (verdict, rule, reason, by) = judge(shared, &lexical, want);
    if verdict == Verdict::Deny {
        return Outcome::denied(by, rule, reason);
    }
    Outcome::io(path, e)
}

fn query(shared: &Shared, who: &Requester<'_>, ask: &Ask<'_>) -> Outcome {
    let path = match absolute(who, ask) {
        Ok(p) => p,
        Err(o) => return *o,
    };
    let want = ask.want();
    let lookup = fsops::lookup(&path).ok();
    let real = match &lookup {
        Some(lookup) => lookup.real().to_path_buf(),
        None => fsops::normalize(&path),
    };
    let (verdict, rule, reason, by) = judge(shared, &real, want);
    // The answer an open would get: a directory that would not be served
    // is refused whatever the rule says.
    if let (Some(lookup), Verdict::Allow | Verdict::Ask) = (&lookup, verdict) {
        if let Some(refused) = unservable(shared, lookup, ask, &rule) {
            return refused;
        }
    }
    let body = match verdict {
        Verdict::Allow => ResponseBody::Allowed { rule: rule.clone() },
        Verdict::Ask => ResponseBody::WouldAsk { rule: rule.clone() },
        Verdict::Deny => ResponseBody::Denied {
            reason: reason.clone(),
            rule: rule.clone(),
        },
    };
    Outcome {
        body,
        fd: None,
        opened: None,
        by,
        rule,
        reason: (verdict != Verdict::Allow).then_some(reason),
        errno: None,
    }
}
