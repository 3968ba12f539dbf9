//! A sluice stacked inside the program's: its program's writes, made in
//! its own sandbox.
//!
//! The guard makes every write it allows with the connector, in the
//! program's Landlock domain. A thread of a sandbox stacked inside the
//! program's (more seccomp filters than the program had at exec,
//! `transparent::stacked`) is narrower than that domain, so its writes were
//! refused (`EPERM`): a stacked sluice's program, such as the `bwrap`
//! stand-in's command, could write nothing while the outer session guarded.
//!
//! A stacked sluice registers instead, before it forks its child, over its
//! broker connection (`proto::ClientMessage::Stacked`, bound to the
//! connection's maker by `SO_PEERCRED` and its pidfd): the Landlock ruleset
//! its program restricts itself by (a descriptor, checked to be one) and
//! its resolved `protect` list. The session's connector forks a connector
//! of its own that restricts itself by that ruleset
//! (`sandbox_child::connector::RESTRICTED`): in the outer program's domain
//! narrowed by the ruleset, exactly the stacked program's, its memory a
//! copy of the connector's, shared with nobody. A guarded call from a
//! thread that descends from a live registrant and runs under exactly one
//! filter more than it (the stacked child's deny filter) is judged by both
//! `protect` lists on the name the guard resolved, and made by that
//! connector: the kernel makes the stacked sandbox's check, on the
//! directory the guard resolved, with no second reading of the path.
//! Orphans stay beneath the stacked supervisor (a subreaper). Each
//! registration is recorded in the audit (`register-stacked`). Under a
//! session without a guard, registering is refused ([`NOT_GUARDING`]) and
//! the stacked sluice says its `protect` list is not applied.
//!
//! What a registration gains nobody: only a process under the program's own
//! filters may say `Hello` (`connection.rs`), and such a process's own
//! calls are made in the outer domain already; what it registers decides
//! only for its own descendants, and every call still passes the outer
//! `protect` list and the outer Landlock domain. A thread under more
//! filters (a sandbox inside the stacked one, a sluice three deep) or
//! descending from no live registrant keeps the `EPERM`.
//!
//! Cost: one `/proc/<pid>/status` read and one pidfd per ancestor between
//! a stacked thread and its registrant (one or two), a fork per
//! registration; nothing for threads that are not stacked.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};

use policies::Protect;

use crate::broker::peer::Peer;
use crate::broker::transparent::caller::Status;
use crate::sys;

/// The refusal of a session that has no guard (the stacked sluice, the
/// same binary, tells it from the others).
pub const NOT_GUARDING: &str = "this session does not guard its program's writes: \
                                a stacked sandbox has nothing to register";

/// Ancestors looked through between a thread and its registrant.
const MAX_DEPTH: usize = 64;

/// Stacked sandboxes registered at once (each holds a connector process,
/// counted against the program's process limit too).
const MAX_REGISTRANTS: usize = 256;

/// How long the connector may take to fork the restricted one.
const SPAWN_TIMEOUT_MS: libc::c_int = 10_000;

/// The stacked sandboxes registered with this session.
#[derive(Default)]
pub struct Registry {
    /// The session's connector socket (a copy): `None` without a guard.
    connector: OnceLock<OwnedFd>,
    registrants: Mutex<Vec<Arc<Registrant>>>,
}

/// One stacked sluice: the process that registered, and what it gave.
pub struct Registrant {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    /// Its program's seccomp filters: its own and the stacked deny filter.
    filters: u32,
    pub(super) protect: Protect,
    /// The connector restricted by its ruleset; it exits when this closes.
    pub(super) connector: OwnedFd,
}

impl Registrant {
    fn alive(&self) -> bool {
        sys::process::pidfd_send_signal(self.pidfd.as_fd(), 0).is_ok()
    }
}

impl Registry {
    /// Registrations are taken from now on, made by `connector`'s process.
    pub fn set_connector(&self, connector: OwnedFd) {
        let _ = self.connector.set(connector);
    }

    /// Whether registrations are taken (this session guards).
    pub fn guards(&self) -> bool {
        self.connector.get().is_some()
    }

    /// Forgets every registrant (the session ends).
    pub fn clear(&self) {
        self.registrants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Registers the stacked sandbox of `peer`; the reason it is refused.
    pub fn register(
        &self,
        peer: &Peer,
        protect: &[String],
        ruleset: Option<OwnedFd>,
    ) -> Result<(), String> {
        let Some(connector) = self.connector.get() else {
            return Err(NOT_GUARDING.to_owned());
        };
        let ruleset = ruleset.ok_or("no Landlock ruleset came with the registration")?;
        if !is_ruleset(ruleset.as_fd()) {
            return Err("the descriptor sent is not a Landlock ruleset".to_owned());
        }
        let pidfd = peer
            .pidfd()
            .ok_or("the kernel gives no pidfd for the registering process")?
            .try_clone_to_owned()
            .map_err(|e| e.to_string())?;
        let filters = crate::broker::transparent::filters_of(&peer.pid.to_string())
            .map_err(|e| format!("the registering process's seccomp filters: {e}"))?;
        let protect = Protect::from_patterns(protect.iter().map(String::as_str))
            .map_err(|e| format!("the protect list: {e}"))?;
        let mut registrants = self.registrants.lock().unwrap_or_else(|p| p.into_inner());
        registrants.retain(|r| r.alive());
        if registrants.iter().any(|r| r.pid == peer.pid) {
            return Err("this process registered a stacked sandbox already".to_owned());
        }
        if registrants.len() >= MAX_REGISTRANTS {
            return Err(format!(
                "{MAX_REGISTRANTS} stacked sandboxes are registered already: \
                 one more is refused until one of them ends"
            ));
        }
        let restricted = restricted_connector(connector.as_fd(), ruleset.as_fd())
            .map_err(|e| format!("the sandbox's connector could not take the ruleset: {e}"))?;
        let registrant = Registrant {
            pid: peer.pid,
            pidfd,
            filters: filters + 1,
            protect,
            connector: restricted,
        };
        // Checked after the count was read: the pid was the peer's.
        if !registrant.alive() {
            return Err("the registering process has exited".to_owned());
        }
        registrants.push(Arc::new(registrant));
        Ok(())
    }

    /// The registrant whose program the thread with `status` (read from
    /// `/proc/<tid>/status`; the caller checks afterwards that the thread
    /// is still the one notified) belongs to: its nearest live registered
    /// ancestor, if the thread runs under exactly that program's filters.
    pub(super) fn find(&self, tid: libc::pid_t, status: &Status) -> Option<Arc<Registrant>> {
        let registrants: Vec<Arc<Registrant>> = {
            let mut all = self.registrants.lock().unwrap_or_else(|p| p.into_inner());
            all.retain(|r| r.alive());
            all.clone()
        };
        if registrants.is_empty() {
            return None;
        }
        // The child is pinned: the notified thread (checked by the caller),
        // then each ancestor by a pidfd taken before its parent was read.
        let mut child: (libc::pid_t, Option<OwnedFd>) = (tid, None);
        let mut parent = status.ppid;
        for _ in 0..MAX_DEPTH {
            if parent <= 1 {
                return None;
            }
            // The parent's pidfd, then the child's parent read again: had
            // the parent exited before the pidfd was taken, the child would
            // have been given another parent (a subreaper or init, never a
            // process with the same pid), so the pidfd is its parent's.
            let pinned = sys::process::pidfd_open(parent, 0).ok()?;
            if parent_of(child.0, child.1.as_ref().map(AsFd::as_fd))? != parent {
                return None;
            }
            if let Some(r) = registrants.iter().find(|r| r.pid == parent) {
                return (r.alive() && status.filters == r.filters).then(|| r.clone());
            }
            let grandparent = parent_of(parent, Some(pinned.as_fd()))?;
            child = (parent, Some(pinned));
            parent = grandparent;
        }
        None
    }
}

/// The parent of `pid` (`/proc/<pid>/status`), read while `pin` (a pidfd
/// of `pid`) shows the process alive: not another's after a pid reuse.
fn parent_of(pid: libc::pid_t, pin: Option<BorrowedFd<'_>>) -> Option<libc::pid_t> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let status = Status::parse(&text)?;
    if let Some(pin) = pin {
        sys::process::pidfd_send_signal(pin, 0).ok()?;
    }
    Some(status.ppid)
}

/// Whether `fd` is a Landlock ruleset (`anon_inode:[landlock-ruleset]`).
fn is_ruleset(fd: BorrowedFd<'_>) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .is_ok_and(|link| link.as_os_str() == "anon_inode:[landlock-ruleset]")
}

/// Has the session's connector fork a connector restricted by `ruleset`;
/// returns the socket it serves.
fn restricted_connector(connector: BorrowedFd<'_>, ruleset: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let (ours, theirs) = proto::socket::seqpacket_pair()?;
    let (reply, reply_theirs) = proto::socket::seqpacket_pair()?;
    let fds = [
        reply_theirs.as_raw_fd(),
        theirs.as_raw_fd(),
        ruleset.as_raw_fd(),
    ];
    let request = [sandbox_child::connector::RESTRICTED];
    sandbox_child::connector::send(connector.as_raw_fd(), &request, &fds)
        .map_err(io::Error::from_raw_os_error)?;
    drop((theirs, reply_theirs));
    let mut pfd = [libc::pollfd {
        fd: reply.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    sys::io::poll(&mut pfd, SPAWN_TIMEOUT_MS)?;
    if pfd[0].revents & libc::POLLIN == 0 {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no answer from the connector",
        ));
    }
    let mut errno = [0u8; 4];
    let n = nix::unistd::read(&reply, &mut errno)?;
    match (n, i32::from_ne_bytes(errno)) {
        (4, 0) => Ok(ours),
        (4, errno) => Err(io::Error::from_raw_os_error(errno)),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connector is gone",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_landlock_ruleset_is_taken_for_one() {
        use landlock::{AccessFs, Ruleset, RulesetAttr};
        let (a, _b) = proto::socket::seqpacket_pair().unwrap();
        assert!(!is_ruleset(a.as_fd()));
        let created = Ruleset::default()
            .handle_access(AccessFs::WriteFile)
            .and_then(|r| r.create())
            .unwrap();
        let fd = Option::<OwnedFd>::from(created).expect("Landlock (ABI 1+) is enforced here");
        assert!(is_ruleset(fd.as_fd()));
    }

    #[test]
    fn a_thread_is_its_registrants_only_under_its_filters() {
        let registry = Registry::default();
        let me = std::process::id() as libc::pid_t;
        let status = |filters| Status {
            umask: None,
            filters,
            ppid: me,
        };
        // Nobody registered: nothing to find.
        assert!(registry.find(me, &status(1)).is_none());
        let pidfd = sys::process::pidfd_open(me, 0).unwrap();
        let (connector, _other) = proto::socket::seqpacket_pair().unwrap();
        registry
            .registrants
            .lock()
            .unwrap()
            .push(Arc::new(Registrant {
                pid: me,
                pidfd,
                filters: 3,
                protect: Protect::default(),
                connector,
            }));
        // A child of this process (the test's own thread stands in: its
        // status names this process as parent only through `ppid`).
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        assert!(registry.find(pid, &status(3)).is_some());
        // One filter more (a sandbox inside the stacked one) or fewer.
        assert!(registry.find(pid, &status(4)).is_none());
        assert!(registry.find(pid, &status(2)).is_none());
        // A parent it does not have.
        let mut wrong = status(3);
        wrong.ppid = 1;
        assert!(registry.find(pid, &wrong).is_none());
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
