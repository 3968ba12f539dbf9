//! The `sluice` binary: launcher, broker, prompts, audit.
//!
//! `sluice run` resolves a policy ([`policies`]), prepares and forks the
//! sandboxed child ([`sandbox_child`]), then stays outside the sandbox to
//! supervise it: it forwards signals, reaps the whole process tree and exits
//! with the program's status. See ARCHITECTURE.md for the launch sequence.
//!
//! Exit codes follow env(1): the program's own status, 128+N when it was
//! killed by signal N, and for sluice's own failures [`exit::ERROR`] (125),
//! [`exit::CANNOT_EXECUTE`] (126) and [`exit::NOT_FOUND`] (127).
//!
//! `unsafe` is denied outside the syscall layer ([`sys`], and
//! `platform::macos` on macOS) and the transparent notifier
//! (`broker::transparent`), tests included; each place allowed is marked
//! `allow(unsafe_code)`.
#![deny(unsafe_code, clippy::undocumented_unsafe_blocks)]

/// `eprintln!` for sluice's own notices to the person: the text is made
/// harmless for the terminal first (`audit::escape::say`), since a notice
/// may quote what the program chose and reaches the terminal past the
/// relay's filter.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::audit::escape::say(format_args!($($arg)*))
    };
}

#[cfg(target_os = "linux")]
mod agent_state;
pub mod approval;
pub mod audit;
pub mod broker;
#[cfg(target_os = "linux")]
mod cgroup;
pub mod cli;
mod commands;
#[cfg(target_os = "linux")]
mod enforced;
pub mod exit;
#[cfg(target_os = "linux")]
mod git_state;
#[cfg(target_os = "linux")]
mod launch;
#[cfg(target_os = "linux")]
mod nesting;
#[cfg(target_os = "linux")]
pub mod net;
mod phase;
pub mod platform;
#[cfg(target_os = "linux")]
mod policy_files;
mod program;
pub mod prompt;
#[cfg(target_os = "linux")]
mod pycache;
#[cfg(target_os = "linux")]
mod quarantine;
#[cfg(target_os = "linux")]
mod session_dir;
#[cfg(target_os = "linux")]
mod supervise;
#[allow(unsafe_code)] // the syscall layer
mod sys;
pub mod tty;
mod xdg;
