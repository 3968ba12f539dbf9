//! One SDK request, start to finish: the request read, its path made
//! absolute, the decide-and-open core ([`super::decide`]) or a query, and
//! the record.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use policies::Verdict;
use proto::{ErrorKind, Request, RequestBody, ResponseBody};

use super::decide::{judge, open_path, record, unservable, Ask, Asker, Decision, Outcome};
use super::peer::Peer;
use super::safe_open;
use super::Shared;
use crate::audit::{self, Op};

/// The answer to a request, and its descriptor.
pub struct Handled {
    pub body: ResponseBody,
    pub fd: Option<OwnedFd>,
}

/// Who is asking, as the connection knows it.
pub struct Requester<'a> {
    pub peer: &'a Peer,
    pub client: &'a str,
}

/// Serves one request, and records what it decided ([`Shared::record`]):
/// a decision that cannot be recorded is answered with an error and no
/// descriptor.
pub async fn handle(shared: &Shared, who: &Requester<'_>, request: &Request) -> Handled {
    let body = &request.body;
    let started = Instant::now();
    let (op, ask) = match body {
        RequestBody::Ping => {
            return Handled {
                body: ResponseBody::Pong,
                fd: None,
            }
        }
        RequestBody::Open {
            path,
            access,
            flags,
        } => (
            Op::Open,
            Ask {
                flags: *flags,
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
    if let Err(e) = shared.record(&record) {
        return Handled {
            body: ResponseBody::Error {
                kind: ErrorKind::Internal,
                message: format!("the audit record cannot be written ({e}); nothing was opened"),
            },
            // Our copy of the descriptor (if any) closes here.
            fd: None,
        };
    }
    Handled {
        body: outcome.body,
        fd: outcome.fd,
    }
}

/// Checks the flags make sense together, as open(2) would.
fn malformed(ask: &Ask<'_>) -> Option<String> {
    let flags = &ask.flags;
    if (flags.truncate || flags.append) && !ask.access.wants_write() {
        return Some("truncate and append need write access".into());
    }
    if flags.directory && (flags.create || ask.access.wants_write()) {
        return Some("a directory can only be opened for reading".into());
    }
    None
}

fn absolute(who: &Requester<'_>, ask: &Ask<'_>) -> Result<PathBuf, Box<Outcome>> {
    safe_open::absolute(ask.path, || who.peer.cwd())
        .map_err(|e| Box::new(Outcome::io(Path::new(OsStr::from_bytes(ask.path)), &e)))
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
    // Stacked: what this sandbox cannot reach, the outer broker may serve
    // (nothing stacks on macOS).
    #[cfg(target_os = "linux")]
    return super::outer::forward(shared, asker, &path, ask, own).await;
    #[cfg(not(target_os = "linux"))]
    own
}

fn query(shared: &Shared, who: &Requester<'_>, ask: &Ask<'_>) -> Outcome {
    let path = match absolute(who, ask) {
        Ok(p) => p,
        Err(o) => return *o,
    };
    let want = ask.want();
    let lookup = safe_open::lookup(&path).ok();
    let real = match &lookup {
        Some(lookup) => lookup.real().to_path_buf(),
        None => safe_open::normalize(&path),
    };
    let Decision {
        verdict,
        by,
        rule,
        reason,
    } = judge(shared, &real, want);
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
