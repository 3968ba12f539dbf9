//! Processes of a sandbox stacked inside the program's: a `sluice run`
//! (`nested = "stack"`) or any other sandbox the program starts. They
//! inherit the program's notification filter, so their `open`, `mkdir`
//! and `connect` calls come here too; but the broker decides by the outer
//! policy only, and a descriptor it placed in such a process would carry
//! past the inner sandbox's Landlock rules (which check opens, not
//! descriptors): `sluice run --policy readonly` inside a `--transparent`
//! session could write wherever the outer session's rules allowed.
//!
//! Who is stacked is the kernel's word, not a registration: every sandbox
//! of this kind installs a seccomp filter of its own (sluice's inner
//! session does: its deny filter), a filter can never be removed, and
//! `/proc/<tid>/status` counts them (`Seccomp_filters`, Linux 5.9). The
//! program starts with exactly [`filters_at_exec`] of them; a thread under
//! more is inside a sandbox of its own. Nothing it does (leaving the inner
//! sluice's subtree as an orphan, killing its supervisor, lying to the
//! outer one) brings the count back down, and a program that installs a
//! filter itself only narrows what it is served.
//!
//! Such a thread is served nothing the kernel would not give it: its opens
//! and `mkdir` calls go back to the kernel (`CONTINUE`), where both
//! sandboxes decide, and its `connect` calls are made by the connector only
//! for a named unix socket (which Landlock ABI 7 does not check, so the
//! connector's domain gives nothing more); TCP, abstract and unnamed
//! addresses would be connected in the outer program's Landlock domain,
//! past the inner sandbox's network rules and scope, so they are refused
//! (`EACCES`, recorded).
//!
//! The cost: none until a filter is added. The program's filter notifies
//! every call that may add one (`seccomp` but for its two questions,
//! `prctl(PR_SET_SECCOMP)`; a filter can be added no other way, and from
//! the program's first instruction on, since its own filter is the last
//! the child installs). Until one such call has been seen ([`Stacking`]),
//! no thread runs under more filters than at exec, and nothing is read;
//! after, one read of `/proc/<tid>/status` per call the broker would serve
//! (as for every such call before: +12 µs a call in a C harness under
//! load, more than the kernel's own round trip). A creating call reads it
//! for its umask anyway. The calls are taken one
//! at a time by the reader thread, so a filter-adding call notified while
//! another call is being served is not answered, and its filter not added,
//! before that call is answered. A call a person must answer is judged by
//! what was seen before the question (as the count was read before it):
//! another thread adding a filter with `TSYNC` while the person decides is
//! not seen. A program that installs a seccomp filter for its own reasons
//! (a sandbox, or a hardened runtime) gets no transparent brokering in that
//! process; it still gets the SDK's.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use super::caller::Status;

/// How many seccomp filters the program runs under right after exec: the
/// supervisor's own (`own`: inherited from whatever started sluice, counted
/// by [`filters_of`] before the fork), and the program's one filter: the
/// notification filter under transparent brokering or the guard, which
/// holds the deny filter too, or else the deny filter unless the child
/// reported that it could not install it. A count taken from the running
/// program instead could be raised by the program before it is read.
pub fn filters_at_exec(own: u32, notify_filter: bool, deny_filter_installed: bool) -> u32 {
    own + u32::from(notify_filter || deny_filter_installed)
}

/// Whether a thread of the program may be in a stacked sandbox: the
/// count at exec, and whether a call that may add a filter has been
/// notified since.
#[derive(Debug)]
pub struct Stacking {
    at_exec: u32,
    added: AtomicBool,
}

impl Stacking {
    pub fn new(at_exec: u32) -> Stacking {
        Stacking {
            at_exec,
            added: AtomicBool::new(false),
        }
    }

    /// A call that may add a filter was notified: from before it is
    /// answered on, counts are read.
    pub fn filter_may_be_added(&self) {
        self.added.store(true, Ordering::SeqCst);
    }

    /// Whether any thread may run under more filters than at exec (if not,
    /// none is stacked, and no count need be read).
    pub fn may_be_stacked(&self) -> bool {
        self.added.load(Ordering::SeqCst)
    }

    /// Whether a thread under `filters` filters is stacked.
    pub fn is_stacked(&self, filters: u32) -> bool {
        is_stacked(filters, self.at_exec)
    }
}

/// The seccomp filters `/proc/<which>/status` counts (`which`: a pid, a
/// tid or `thread-self`). Not checked against pid reuse: the caller does.
pub fn filters_of(which: &str) -> io::Result<u32> {
    let status = std::fs::read_to_string(format!("/proc/{which}/status"))?;
    let status = Status::parse(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("/proc/{which}/status does not count seccomp filters (Linux 5.9+ does)"),
        )
    })?;
    Ok(status.filters)
}

/// Whether a thread under `filters` seccomp filters is inside a sandbox of
/// its own, in a program that started under `at_exec`.
pub fn is_stacked(filters: u32, at_exec: u32) -> bool {
    filters > at_exec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_more_filters_than_at_exec_is_stacked() {
        assert!(!is_stacked(2, 2));
        assert!(is_stacked(3, 2));
        // Fewer cannot happen (filters are never removed); it is not
        // stacked, and the kernel decides anyway for a foreign process.
        assert!(!is_stacked(1, 2));
    }

    #[test]
    fn at_exec_counts_the_supervisors_filters_and_the_programs_one() {
        let own = Status::parse(&std::fs::read_to_string("/proc/thread-self/status").unwrap())
            .unwrap()
            .filters;
        assert_eq!(filters_of("self").unwrap(), own);
        assert_eq!(filters_at_exec(own, true, true), own + 1);
        assert_eq!(filters_at_exec(own, true, false), own + 1);
        assert_eq!(filters_at_exec(own, false, true), own + 1);
        assert_eq!(filters_at_exec(own, false, false), own);
    }

    #[test]
    fn nothing_is_stacked_until_a_filter_may_have_been_added() {
        let stacking = Stacking::new(2);
        assert!(!stacking.may_be_stacked());
        stacking.filter_may_be_added();
        assert!(stacking.may_be_stacked());
        assert!(!stacking.is_stacked(2));
        assert!(stacking.is_stacked(3));
    }
}
