//! The program's `connect` calls under transparent brokering: a named unix
//! socket only inside the sandbox's own trees, everything else as Landlock
//! decides, and every connect made by the connector in the program's
//! sandbox (`sandbox_child::connector`), never by the kernel on the
//! program's say-so after the check (`CONTINUE`).
//!
//! Without the policy-built root (which transparent brokering does without,
//! so the host's tree stays nameable) a socket file anywhere the program
//! can name would be connectable: Landlock ABI 7 has no right for it. The
//! rule is the root's: a socket file in a tree the policy lets the program
//! read or write can be connected to, any other cannot (`EACCES`, recorded).
//!
//! What the decision rests on is fixed before it is made: the socket is the
//! supervisor's own copy of the program's (`pidfd_getfd`), so a `dup2` over
//! its number afterwards changes nothing; its family is the socket's, not
//! the address's; the address is read once; and a named socket is judged by
//! the real path of the file it resolves to and reached through an `O_PATH`
//! descriptor of that file, so a swap at the name changes nothing either.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sandbox_child::connector::{self, Kind, MAX_ADDR, REQUEST_SIZE};

use super::caller::{take_descriptor, Target, Unreadable};
use super::context::Context;
use crate::audit::{self, By, Decision, DecisionRecord, Op, Via};
use crate::broker::guard;
use crate::broker::safe_open::{self, Lookup};

/// What to do with one `connect`.
enum Plan {
    /// Answer with this errno; `record` for a named socket.
    Refuse(i32, Option<DecisionRecord>),
    /// Have the connector connect `socket`.
    Connect {
        socket: OwnedFd,
        kind: Kind,
        addr: Vec<u8>,
        file: Option<OwnedFd>,
        record: Option<DecisionRecord>,
    },
}

/// Serves one notified `connect(fd, addr, len)`.
pub fn serve(ctx: &Arc<Context>, target: &Target<'_>, args: [u64; 6]) {
    let started = Instant::now();
    let plan = match plan(ctx, target, args, started) {
        Ok(plan) => plan,
        Err(Unreadable::Gone) => return,
        Err(Unreadable::Kernel) => Plan::Refuse(libc::EFAULT, None),
    };
    let (socket, kind, addr, file, record) = match plan {
        Plan::Refuse(errno, record) => {
            if record.is_some() && !append(ctx, record) {
                return answer(ctx, target.id, libc::EPERM);
            }
            return answer(ctx, target.id, errno);
        }
        Plan::Connect {
            socket,
            kind,
            addr,
            file,
            record,
        } => (socket, kind, addr, file, record),
    };
    if !append(ctx, record) {
        return answer(ctx, target.id, libc::EPERM);
    }
    let Some(to_connector) = &ctx.connector else {
        return answer(ctx, target.id, libc::EPERM);
    };
    let reply = match send(to_connector, &socket, kind, &addr, file.as_ref()) {
        Ok(reply) => reply,
        Err(e) => {
            guard::connector_lost(&format_args!("transparent connect: {e}"));
            return answer(ctx, target.id, libc::EPERM);
        }
    };
    // A connect may take as long as the network does: the wait is a
    // blocking task's, not the reader's.
    let (ctx2, id) = (ctx.clone(), target.id);
    ctx.tracker.spawn_blocking_on(
        move || {
            let errno = wait(&reply).unwrap_or_else(|e| {
                guard::connector_lost(&format_args!("transparent connect: no answer: {e}"));
                libc::EPERM
            });
            answer(&ctx2, id, errno);
        },
        &ctx.runtime,
    );
}

fn plan(
    ctx: &Context,
    target: &Target<'_>,
    args: [u64; 6],
    started: Instant,
) -> Result<Plan, Unreadable> {
    let (fd, addr_at, len) = (args[0] as u32 as i32, args[1], args[2] as u32 as usize);
    let socket = match take_descriptor(target.tid, fd) {
        Ok(socket) => socket,
        Err(e) => {
            target.valid()?;
            return Ok(Plan::Refuse(e.raw_os_error().unwrap_or(libc::EBADF), None));
        }
    };
    if len > MAX_ADDR {
        return Ok(Plan::Refuse(libc::EINVAL, None));
    }
    let addr = target.read_struct(addr_at, len)?;
    // `ENOTSOCK` for a descriptor that is not a socket.
    let family = match proto::socket::int_sockopt(socket.as_fd(), libc::SO_DOMAIN) {
        Ok(family) => family,
        Err(e) => {
            return Ok(Plan::Refuse(
                e.raw_os_error().unwrap_or(libc::ENOTSOCK),
                None,
            ))
        }
    };
    // A thread in a sandbox stacked inside the program's: the connector
    // works in the program's Landlock domain, past that sandbox's network
    // rules and abstract-socket scope. Only a named socket (which Landlock
    // does not check) is made for it.
    let stacked =
        ctx.stacking.may_be_stacked() && ctx.stacking.is_stacked(target.status()?.filters);
    if stacked && named(family, &addr).is_none() {
        let exe = target.exe();
        target.valid()?;
        let refused = DecisionRecord {
            pid: target.tid as u32,
            exe,
            client: "transparent".to_owned(),
            via: Via::SeccompConnect,
            request_id: target.id,
            op: Op::Connect,
            path_asked: PathBuf::from(describe(family, &addr)),
            path_opened: None,
            access: audit::Access::Write,
            flags: proto::OpenFlags::default(),
            decision: Decision::Denied,
            by: By::Rule,
            rule: None,
            reason: Some(STACKED.to_owned()),
            latency_us: started.elapsed().as_micros() as u64,
        };
        return Ok(Plan::Refuse(libc::EACCES, Some(refused)));
    }
    let Some(name) = named(family, &addr) else {
        target.valid()?;
        return Ok(Plan::Connect {
            socket,
            kind: Kind::AsGiven,
            addr,
            file: None,
            record: None,
        });
    };
    let asked = PathBuf::from(OsStr::from_bytes(name));
    let absolute = if name.starts_with(b"/") {
        asked.clone()
    } else {
        match target.directory("cwd") {
            Ok(cwd) => Path::new(OsStr::from_bytes(&cwd)).join(&asked),
            // A working directory that was removed: nothing to find there.
            Err(Unreadable::Kernel) => return Ok(Plan::Refuse(libc::ENOENT, None)),
            Err(gone) => return Err(gone),
        }
    };
    let exe = target.exe();
    target.valid()?;
    let record = |decision, opened: Option<PathBuf>, reason: Option<String>| DecisionRecord {
        pid: target.tid as u32,
        exe: exe.clone(),
        client: "transparent".to_owned(),
        via: Via::SeccompConnect,
        request_id: target.id,
        op: Op::Connect,
        path_asked: asked.clone(),
        path_opened: opened,
        access: audit::Access::Write,
        flags: proto::OpenFlags::default(),
        decision,
        by: By::Rule,
        rule: None,
        reason,
        latency_us: started.elapsed().as_micros() as u64,
    };
    let found = match safe_open::lookup(&absolute) {
        Ok(Lookup::Found(found)) => found,
        Ok(Lookup::Missing(_)) => return Ok(Plan::Refuse(libc::ENOENT, None)),
        Err(e) => return Ok(Plan::Refuse(e.raw_os_error().unwrap_or(libc::EACCES), None)),
    };
    if !ctx.view.allows(&found.real, false) {
        let why = "a named socket outside the sandbox's trees".to_owned();
        let refused = record(Decision::Denied, Some(found.real), Some(why));
        return Ok(Plan::Refuse(libc::EACCES, Some(refused)));
    }
    let allowed = record(Decision::Allowed, Some(found.real.clone()), None);
    Ok(Plan::Connect {
        socket,
        kind: Kind::Resolved,
        addr: Vec::new(),
        file: Some(found.fd),
        record: Some(allowed),
    })
}

/// Why a stacked sandbox's connection is refused, for the record.
const STACKED: &str = "a connection from a sandbox stacked inside the program's: \
    the connector would make it past that sandbox's own network rules";

/// An address that names no file, for the record: `tcp 127.0.0.1:80`,
/// `tcp [::1]:80`, `unix @name` (abstract), `unix (unnamed)`, `family N`.
fn describe(family: i32, addr: &[u8]) -> String {
    let port = |a: &[u8]| u16::from_be_bytes([a[2], a[3]]);
    match family {
        libc::AF_INET if addr.len() >= 8 => {
            let ip = std::net::Ipv4Addr::new(addr[4], addr[5], addr[6], addr[7]);
            format!("tcp {ip}:{}", port(addr))
        }
        libc::AF_INET6 if addr.len() >= 24 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&addr[8..24]);
            let ip = std::net::Ipv6Addr::from(octets);
            format!("tcp [{ip}]:{}", port(addr))
        }
        libc::AF_UNIX if addr.len() > 2 && addr[2] == 0 => {
            format!("unix @{}", String::from_utf8_lossy(&addr[3..]))
        }
        libc::AF_UNIX => "unix (unnamed)".to_owned(),
        other => format!("family {other}"),
    }
}

/// The path of a named unix socket address on a unix socket; `None` for
/// any other family, an abstract or an unnamed address.
fn named(family: i32, addr: &[u8]) -> Option<&[u8]> {
    if family != libc::AF_UNIX || addr.len() < 2 {
        return None;
    }
    // Another family's address on a unix socket: the kernel's EINVAL.
    if i32::from(u16::from_ne_bytes([addr[0], addr[1]])) != libc::AF_UNIX {
        return None;
    }
    let path = &addr[2..];
    let path = &path[..path.iter().position(|&b| b == 0).unwrap_or(path.len())];
    match path.first() {
        // Abstract (a leading NUL, so empty here) or unnamed.
        None => None,
        Some(_) => Some(path),
    }
}

/// Sends the connector a request; returns the socket its answer comes on.
fn send(
    connector: &OwnedFd,
    socket: &OwnedFd,
    kind: Kind,
    addr: &[u8],
    file: Option<&OwnedFd>,
) -> io::Result<OwnedFd> {
    let (ours, theirs) = proto::socket::seqpacket_pair()?;
    let mut buf = [0u8; REQUEST_SIZE];
    let n = connector::encode(kind, addr, &mut buf)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut fds = vec![theirs.as_raw_fd(), socket.as_raw_fd()];
    fds.extend(file.map(|f| f.as_raw_fd()));
    connector::send(connector.as_raw_fd(), &buf[..n], &fds)
        .map_err(io::Error::from_raw_os_error)?;
    Ok(ours)
}

/// The connector's answer: the connect's errno, or 0.
fn wait(reply: &OwnedFd) -> io::Result<i32> {
    let mut errno = [0u8; 4];
    loop {
        // SAFETY: reading at most 4 bytes into `errno`.
        let n = unsafe { libc::read(reply.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
        match n {
            4 => return Ok(i32::from_ne_bytes(errno)),
            n if n >= 0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Appends `record` if there is one; false if it could not be (no record,
/// no connection).
fn append(ctx: &Context, record: Option<DecisionRecord>) -> bool {
    record.is_none_or(|record| ctx.shared.record(&record).is_ok())
}

fn answer(ctx: &Context, id: u64, errno: i32) {
    let result = match errno {
        0 => ctx.listener.succeed(id),
        errno => ctx.listener.fail(id, errno),
    };
    if let Err(e) = result {
        tracing::debug!(id, "transparent: connect not answered: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(path: &[u8]) -> Vec<u8> {
        let mut addr = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        addr.extend_from_slice(path);
        addr
    }

    #[test]
    fn addresses_without_a_name_are_described_for_the_record() {
        let mut inet = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        inet.extend_from_slice(&443u16.to_be_bytes());
        inet.extend_from_slice(&[127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(describe(libc::AF_INET, &inet), "tcp 127.0.0.1:443");
        let mut inet6 = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
        inet6.extend_from_slice(&80u16.to_be_bytes());
        inet6.extend_from_slice(&[0; 4]);
        inet6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        assert_eq!(describe(libc::AF_INET6, &inet6), "tcp [::1]:80");
        assert_eq!(describe(libc::AF_UNIX, &unix(b"\0agent")), "unix @agent");
        assert_eq!(describe(libc::AF_UNIX, &unix(b"")), "unix (unnamed)");
        // Too short for its family: said so, never read past the end.
        assert_eq!(describe(libc::AF_INET, &[2, 0]), "family 2");
    }

    #[test]
    fn only_named_addresses_on_unix_sockets_are_judged_by_name() {
        assert_eq!(
            named(libc::AF_UNIX, &unix(b"/run/x.sock\0")),
            Some(&b"/run/x.sock"[..])
        );
        // Without a NUL, to the end of the address (as the kernel reads it).
        assert_eq!(
            named(libc::AF_UNIX, &unix(b"rel.sock")),
            Some(&b"rel.sock"[..])
        );
        // Abstract and unnamed addresses: Landlock's scope decides.
        assert_eq!(named(libc::AF_UNIX, &unix(b"\0abstract")), None);
        assert_eq!(named(libc::AF_UNIX, &unix(b"")), None);
        assert_eq!(named(libc::AF_UNIX, &[1]), None);
        // The socket's family counts, not the address's: a unix address on
        // a TCP socket is the kernel's error, not a name to judge.
        assert_eq!(named(libc::AF_INET, &unix(b"/run/x.sock\0")), None);
        let mut inet = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        inet.extend_from_slice(b"/run/x.sock\0");
        assert_eq!(named(libc::AF_UNIX, &inet), None);
    }
}
