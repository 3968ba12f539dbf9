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
//! The cost: one read of `/proc/<tid>/status` per call the broker would
//! serve (it was read for a creating call's umask before), none for calls
//! the kernel answers. A program that installs a seccomp filter for its
//! own reasons (a sandbox, or a hardened runtime) gets no transparent
//! brokering in that process; it still gets the SDK's.

use std::io;

use super::caller::Status;

/// How many seccomp filters the program runs under right after exec: the
/// supervisor's own (`own`: inherited from whatever started sluice, counted
/// by [`filters_of`] before the fork), the notification filter under
/// transparent brokering, and the deny filter unless the child reported
/// that it could not install it. A count taken from the running program
/// instead could be raised by the program before it is read.
pub fn filters_at_exec(own: u32, notify_filter: bool, deny_filter_installed: bool) -> u32 {
    own + u32::from(notify_filter) + u32::from(deny_filter_installed)
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
    fn at_exec_counts_the_supervisors_filters_and_the_programs_two() {
        let own = Status::parse(&std::fs::read_to_string("/proc/thread-self/status").unwrap())
            .unwrap()
            .filters;
        assert_eq!(filters_of("self").unwrap(), own);
        assert_eq!(filters_at_exec(own, true, true), own + 2);
        assert_eq!(filters_at_exec(own, true, false), own + 1);
        assert_eq!(filters_at_exec(own, false, true), own + 1);
    }
}
