//! What runs between fork and exec: the Linux sandbox of a `sluice run` child.
//!
//! The supervisor resolves a policy, then calls [`prepare`] before forking. That
//! builds everything the child will need (the Landlock ruleset descriptor, the
//! seccomp program, C strings for exec and mounts) and says what the sandbox
//! will enforce on this kernel ([`EnforcementReport`]). After `fork()` the child
//! makes the child with [`clone_child`] (new user, mount and PID namespaces;
//! [`fork_child`] where a PID namespace cannot be made), which makes raw
//! system calls only:
//!
//! 1. keep the handed-over descriptors, close every other inherited one; when
//!    the supervisor owns the person's terminal, a new session whose
//!    controlling terminal (and stdin/stdout) is the program's own pty (under
//!    an init, the program does this, just before exec);
//! 2. parent-death signal; reset signal dispositions and mask;
//! 3. join the session cgroup (process limit);
//! 4. a private user + mount namespace, the PID namespace's own `/proc`, the
//!    protective mounts ([`mounts`]) and a root holding only the policy's
//!    trees ([`root`]); an `O_PATH` descriptor of that root sent to the
//!    supervisor, whose broker serves directories from the sandbox's own view;
//! 5. drop every capability (securebits, bounding, ambient, effective, permitted,
//!    inheritable);
//! 6. no_new_privs; 7. resource limits; 8. Landlock; 9. seccomp; 10. in a PID
//!    namespace, fork: the child execs the program, the parent stays as the
//!    namespace's init (`init.rs`); else exec.
//!
//! A step that fails is written to the launch pipe as a [`StepRecord`]; if the
//! layer it serves is required, the child exits with 125 before exec.
//!
//! ```no_run
//! # fn demo(policy: &policies::Policy, ctx: sandbox_child::LaunchContext) {
//! let (plan, report) = sandbox_child::prepare(policy, ctx).unwrap();
//! assert!(report.blocking().next().is_none(), "{report}");
//! // SAFETY: single-threaded here; the child only runs the prepared plan.
//! let pid = unsafe { sandbox_child::clone_child(&plan) }.unwrap();
//! // read the launch pipe, wait for pid
//! # }
//! ```
//!
//! On macOS the sandbox is a Seatbelt profile generated from the same policy
//! ([`seatbelt`]); that module is portable, except for the `sandbox_init` call.
//! The macOS child ([`macos`]) prepares its plan portably and forks, applies
//! the profile and execs only on macOS.
//!
//! # Compatibility
//! Linux only, but for [`seatbelt`], [`macos`] and [`nesting`]'s macOS probe. Every layer is designed for Landlock ABI 7 (Linux 6.15+): ABI 5 for
//! all file rights, 4 for TCP, 6 for scopes. On older kernels the report says
//! which layers are partial, and a policy that requires them refuses to launch.
//!
//! # Security
//! Protected: files outside the policy (Landlock), deny-within-allow paths even
//! after renames (mount points cannot be renamed or removed), TCP ports, abstract
//! unix sockets and signals out of the sandbox (Landlock scopes), the system calls
//! the seccomp filter denies, privilege gain through setuid or file capabilities.
//! Named unix sockets outside the allowed trees are out of reach because the
//! child's root is built from the policy ([`root`]): they do not exist there.
//! Other processes are invisible: the program runs under an init of its own in
//! a PID namespace with its own `/proc` (`init.rs`).
//! Not protected: connecting to a socket file *inside* a tree the policy lets
//! the program read (Landlock ABI 7 has no right for connect), hard links to
//! denied files made before launch, and anything the policy allows.

#[cfg(target_os = "linux")]
mod child;
#[cfg(target_os = "linux")]
pub mod connector;
#[cfg(target_os = "linux")]
pub mod fsop;
#[cfg(target_os = "linux")]
mod init;
#[cfg(target_os = "linux")]
mod landlock_rules;
mod limits;
#[cfg(target_os = "linux")]
mod listener;
pub mod macos;
pub mod mounts;
pub mod nesting;
#[cfg(target_os = "linux")]
mod netns;
#[cfg(target_os = "linux")]
mod plan;
#[cfg(target_os = "linux")]
mod prepare_error;
#[cfg(target_os = "linux")]
pub mod readonly_root;
pub mod report;
pub mod root;
pub mod seatbelt;
#[cfg(target_os = "linux")]
pub mod seccomp;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(target_os = "linux")]
mod view;

#[cfg(target_os = "linux")]
pub use child::{clone_child, fork_child, EXIT_SETUP_FAILED};
#[cfg(target_os = "linux")]
pub use landlock_rules::kernel_abi as landlock_abi;
#[cfg(target_os = "linux")]
pub use plan::{listen_addresses, prepare, LaunchContext, Prepared};
#[cfg(target_os = "linux")]
pub use prepare_error::PrepareError;
pub use report::{EnforcementReport, LayerReport, Status, Step, StepRecord};
#[cfg(target_os = "linux")]
pub use sys::{clear_effective, EffectiveCleared};
#[cfg(target_os = "linux")]
pub use view::{SessionCopy, SessionDirs, SessionOverlay, StandIn, Veil, LAYERS_UPPER};

/// The slave side of a pseudo-terminal the supervisor made for the program.
/// The child makes it its controlling terminal in a new session and its
/// standard input and output, so it keeps no descriptor of the person's
/// terminal (on macOS through [`macos::MacTerminal`]).
pub struct ChildTerminal {
    pub slave: std::os::fd::OwnedFd,
    /// Standard error too (it was a terminal as well).
    pub stderr: bool,
}

/// The signals the supervisor passes on to the program when another process
/// sends them to sluice (and the sandbox's init passes on in turn).
pub const FORWARDED_SIGNALS: [i32; 5] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGWINCH,
];
