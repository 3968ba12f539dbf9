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
//! On macOS, `sandbox_check` on the process's own pid with no operation
//! says whether it is sandboxed at all; but "some sandbox" is not
//! "sluice's" (an IDE's, `sandbox-exec`'s, another agent's). Every profile
//! sluice generates allows looking up one Mach service name,
//! [`SEATBELT_MARKER`], that no program publishes, and never its
//! [`SEATBELT_DECOY`]; `sandbox_check(pid, "mach-lookup", GLOBAL_NAME,
//! name)` asks the kernel what this process's profile says for both. A
//! profile denies both by default; one that allows everything allows both;
//! only a profile written to answer exactly like sluice's looks like one,
//! and a program able to apply its own profile fools only a sluice run
//! under that very profile: nothing it could not run directly
//! ([`SeatbeltProbe::outer`], portable and tested on Linux).

#[cfg(target_os = "linux")]
pub use linux::SandboxState;

/// The Mach service name every sluice Seatbelt profile allows looking up.
pub const SEATBELT_MARKER: &str = "dev.sluice.sandbox.marker";

/// A name of the same form that no sluice profile allows: a profile that
/// allows it allows more than sluice's do (such as `(allow default)`).
pub const SEATBELT_DECOY: &str = "dev.sluice.sandbox.decoy";

/// The sandbox around this process, as the kernel answers on macOS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OuterSandbox {
    /// Not sandboxed.
    None,
    /// A sluice profile: the marker is allowed and the decoy is not.
    Sluice,
    /// Sandboxed by something else (or by a profile sluice cannot tell).
    Foreign,
}

/// What `sandbox_check` answered: whether this process is sandboxed, and
/// whether its profile lets it look up the marker and the decoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatbeltProbe {
    pub sandboxed: bool,
    pub marker_allowed: bool,
    pub decoy_allowed: bool,
}

impl SeatbeltProbe {
    /// Whose sandbox this is.
    pub fn outer(&self) -> OuterSandbox {
        match (self.sandboxed, self.marker_allowed, self.decoy_allowed) {
            (false, _, _) => OuterSandbox::None,
            (true, true, false) => OuterSandbox::Sluice,
            _ => OuterSandbox::Foreign,
        }
    }

    /// Asks the kernel about this process.
    #[cfg(target_os = "macos")]
    pub fn probe() -> SeatbeltProbe {
        let sandboxed = inside_seatbelt();
        SeatbeltProbe {
            sandboxed,
            marker_allowed: sandboxed && mach_lookup_allowed(SEATBELT_MARKER),
            decoy_allowed: sandboxed && mach_lookup_allowed(SEATBELT_DECOY),
        }
    }
}

#[cfg(target_os = "macos")]
mod libsandbox {
    extern "C" {
        // libsandbox (in libSystem): 0 when `pid`'s profile allows
        // `operation` (or, with no operation, when `pid` is not
        // sandboxed), non-zero when it denies it. The variadic arguments
        // are the filter's value: none for SANDBOX_FILTER_NONE, a C string
        // for SANDBOX_FILTER_GLOBAL_NAME.
        pub fn sandbox_check(
            pid: libc::pid_t,
            operation: *const libc::c_char,
            filter_type: libc::c_int,
            ...
        ) -> libc::c_int;
        // Or-ed into the filter type: the check is not logged as a
        // violation.
        pub static SANDBOX_CHECK_NO_REPORT: libc::c_int;
    }
    /// `SANDBOX_FILTER_NONE` in `enum sandbox_filter_type`.
    pub const FILTER_NONE: libc::c_int = 0;
    /// `SANDBOX_FILTER_GLOBAL_NAME`.
    pub const FILTER_GLOBAL_NAME: libc::c_int = 2;
}

/// Whether this process already runs under a Seatbelt profile.
#[cfg(target_os = "macos")]
pub fn inside_seatbelt() -> bool {
    // SAFETY: getpid cannot fail; a null operation with filter type NONE
    // takes no further arguments.
    unsafe {
        libsandbox::sandbox_check(libc::getpid(), std::ptr::null(), libsandbox::FILTER_NONE) != 0
    }
}

/// Whether this process's profile allows `mach-lookup` of `name`.
#[cfg(target_os = "macos")]
fn mach_lookup_allowed(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated and outlive the call; the
    // GLOBAL_NAME filter takes exactly one C string argument; reading the
    // extern constant is a plain load of an int libsandbox defines.
    unsafe {
        let filter = libsandbox::FILTER_GLOBAL_NAME | libsandbox::SANDBOX_CHECK_NO_REPORT;
        libsandbox::sandbox_check(
            libc::getpid(),
            c"mach-lookup".as_ptr(),
            filter,
            name.as_ptr(),
        ) == 0
    }
}

#[cfg(test)]
mod seatbelt_tests {
    use super::*;

    #[test]
    fn only_a_profile_that_allows_the_marker_and_not_the_decoy_is_sluices() {
        let probe = |sandboxed, marker_allowed, decoy_allowed| SeatbeltProbe {
            sandboxed,
            marker_allowed,
            decoy_allowed,
        };
        assert_eq!(probe(true, true, false).outer(), OuterSandbox::Sluice);
        // (deny default) without the marker: another tool's sandbox.
        assert_eq!(probe(true, false, false).outer(), OuterSandbox::Foreign);
        // (allow default): allows the decoy too.
        assert_eq!(probe(true, true, true).outer(), OuterSandbox::Foreign);
        assert_eq!(probe(true, false, true).outer(), OuterSandbox::Foreign);
        // Unsandboxed, every check is allowed: not inside anything.
        assert_eq!(probe(false, true, true).outer(), OuterSandbox::None);
        assert_eq!(probe(false, false, false).outer(), OuterSandbox::None);
    }

    #[test]
    fn every_sluice_profile_allows_the_marker_and_never_the_decoy() {
        let policy = policies::load_str("p.toml", "", std::path::Path::new("/"))
            .unwrap()
            .resolve(&policies::Vars {
                home: "/".into(),
                workspace: "/".into(),
                tmpdir: "/".into(),
            })
            .unwrap();
        let state = crate::seatbelt::SupervisorState {
            audit_dir: "/a".into(),
            config_dir: "/c".into(),
            session_dir: None,
            records_dir: None,
            policy_files: vec![],
            broker_socket: None,
            terminal: None,
            user_dirs: vec![],
        };
        let text = crate::seatbelt::generate(&policy, &state)
            .unwrap()
            .text()
            .to_owned();
        assert!(text.contains(&format!("(global-name \"{SEATBELT_MARKER}\")")));
        assert!(!text.contains(SEATBELT_DECOY));
        assert_ne!(SEATBELT_MARKER, SEATBELT_DECOY);
    }
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
