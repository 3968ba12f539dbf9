//! Is this process already inside a sluice sandbox?
//!
//! The environment cannot be trusted for this: a program clears or sets
//! `SLUICE_SESSION` at will. The kernel's answer can: sluice's seccomp
//! filter answers `prctl(NESTING_MARKER_OPTION)` with
//! `NESTING_MARKER_ERRNO`, where the kernel itself says EINVAL, and a
//! process can never remove a filter it inherited. So the marker is the
//! test; `no_new_privs` and the seccomp mode (which every sluice sandbox
//! sets, and other sandboxes such as container runtimes set too) are
//! reported beside it.
//!
//! The marker can be faked only by a process that installs a seccomp filter
//! of its own. Doing so can only make an inner `sluice run` skip its
//! sandbox on the faker's own command: nothing it could not run directly.
//!
//! On macOS the question is simpler and asked of the kernel directly:
//! Seatbelt cannot apply a profile inside a sandboxed process at all, so
//! [`inside_seatbelt`] (`sandbox_check` on the process's own pid, with no
//! operation: "is this process sandboxed?") is what matters, whoever made
//! the sandbox.

#[cfg(target_os = "linux")]
pub use linux::SandboxState;

/// Whether this process already runs under a Seatbelt profile.
#[cfg(target_os = "macos")]
pub fn inside_seatbelt() -> bool {
    extern "C" {
        // libsandbox (in libSystem): non-zero when `pid` is sandboxed and,
        // with no operation (filter type 0, SANDBOX_FILTER_NONE), nothing
        // more is asked.
        fn sandbox_check(
            pid: libc::pid_t,
            operation: *const libc::c_char,
            filter_type: libc::c_int,
            ...
        ) -> libc::c_int;
    }
    // SAFETY: getpid cannot fail; a null operation with filter type 0
    // takes no further arguments.
    unsafe { sandbox_check(libc::getpid(), std::ptr::null(), 0) != 0 }
}

#[cfg(target_os = "linux")]
mod linux {
    use crate::seccomp::{NESTING_MARKER_ERRNO, NESTING_MARKER_OPTION};

    /// What the kernel says about the calling process.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SandboxState {
        /// sluice's seccomp filter is installed on this process.
        pub sluice_filter: bool,
        /// `PR_GET_NO_NEW_PRIVS`.
        pub no_new_privs: bool,
        /// `PR_GET_SECCOMP`: 0 none, 1 strict, 2 filter.
        pub seccomp_mode: i32,
    }

    impl SandboxState {
        /// Asks the kernel.
        pub fn probe() -> SandboxState {
            // SAFETY: prctl with integer arguments only; an unknown option is
            // refused with EINVAL and has no effect.
            let marker = unsafe { libc::prctl(NESTING_MARKER_OPTION as libc::c_int, 0, 0, 0, 0) };
            let errno = std::io::Error::last_os_error().raw_os_error();
            let sluice_filter = marker == -1 && errno == Some(i32::from(NESTING_MARKER_ERRNO));
            // SAFETY: integer arguments only.
            let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
            // SAFETY: integer arguments only.
            let seccomp_mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
            SandboxState {
                sluice_filter,
                no_new_privs: nnp == 1,
                seccomp_mode: seccomp_mode.max(0),
            }
        }

        /// Inside a sluice sandbox: the marker answers, and the state every
        /// sluice sandbox has is there.
        pub fn inside_sluice(&self) -> bool {
            self.sluice_filter && self.no_new_privs && self.seccomp_mode == 2
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn this_test_process_is_not_inside_sluice() {
            // The test suite itself runs outside any sluice sandbox (the
            // end-to-end tests in tests/ check the inside).
            let state = SandboxState::probe();
            assert!(!state.sluice_filter, "{state:?}");
            assert!(!state.inside_sluice());
        }
    }
}
