//! What differs between Linux and macOS, behind one interface.
//!
//! The supervisor's shared code (policies, broker decisions, approvals,
//! prompts, the terminal relay, the audit record) is the same on both; what
//! only one kernel can do sits in one module per OS, each giving the same
//! few things:
//!
//! | what | Linux | macOS |
//! |---|---|---|
//! | `sluice run`: launch the child with a prepared sandbox, supervise it to its end | `commands::run` (`launch.rs`, `supervise.rs`: clone, namespaces, signalfd, pidfd, subreaper) | `macos::run` (`sandbox_child::macos`: fork, `sandbox_init`, exec; `macos/supervise.rs`: kqueue) |
//! | who is at the other end of a broker connection | `SO_PEERCRED` + `SO_PEERPIDFD` (`broker/peer.rs`) | `LOCAL_PEERTOKEN` + `LOCAL_PEERPID` (`macos::peer`, as `broker/peer_macos.rs`) |
//! | open beneath a directory, following no symlink | `openat2(RESOLVE_BENEATH \| RESOLVE_NO_SYMLINKS)` (`broker/safe_open/linux.rs`) | a component walk ([`walk::open_beneath_fd`], `openat` with `O_NOFOLLOW` per component; the broker's `safe_open/walked.rs` on it) |
//! | the broker's wire | `SOCK_SEQPACKET` (`proto::socket::Wire::Records`) | a datagram shared socket and stream connections (`Wire::Stream`); the broker serves either, by the shared socket's type (tested on Linux: `broker::tests::stream`) |
//! | is a session running (`sluice audit`) | [`liveness`]: a record `flock`ed by its supervisor | the same ([`liveness::Record`], held by the macOS launcher) |
//! | the person's terminal: the program's pty, the relay's waits (`tty`, `prompt`: shared) | `sys::pty`: slave by `TIOCGPTPEER`, session by `TIOCGSID`, SIGWINCH by signalfd; `sys::io::poll_terminals` is `poll(2)` | `sys::pty`: slave by its name (`TIOCPTYGNAME`), session by `getsid`, SIGWINCH by a kqueue; `sys::io::poll_terminals` over `select(2)` (tested on Linux against `poll`, and the relay with the `select-poll` feature) |
//! | am I inside sluice's sandbox | the seccomp marker (`sandbox_child::nesting`) | a Mach service name only sluice's profile allows ([`sandbox_child::nesting::SeatbeltProbe`]) |
//!
//! The logic of the macOS side that needs no macOS kernel is portable and
//! tested on Linux: the kqueue events' meaning ([`kevents`]), the safe-open
//! walk against a trait ([`walk`]), the `sandbox-exec` stand-in's
//! arguments (`commands::sandbox_exec`). The macOS modules themselves are
//! type-checked and linted for both Apple targets (`.ci/apple-check`),
//! never linked or run.
//!
//! The broker builds on both: its core is shared, and what differs is
//! behind one interface each (`broker::peer`, `broker::safe_open`: `linux`
//! or `walked`, the latter tested on Linux too); its read-only and sandbox
//! views, guard and transparent brokering stay Linux's. The macOS launcher
//! serves it ([`broker`], portable and tested on Linux), and its `ask`
//! rules go to the person through the shared prompts and terminal relay.

// Used by the macOS launcher; compiled and tested on Linux too.
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub mod broker;
pub mod kevents;
pub mod liveness;
pub mod nested;
pub mod walk;

#[cfg(target_os = "macos")]
#[allow(unsafe_code)] // fork, sandbox_init, exec, kqueue: the macOS syscall layer
pub mod macos;

/// Whether session `id` is running (its supervisor holds its record's
/// lock), the same on both ([`liveness`]).
pub fn session_is_live(id: &str) -> bool {
    liveness::is_live(id)
}

/// The session a kept stacked record came from (`nesting`). Nothing stacks
/// on macOS, so a record made there never has one.
pub fn stacked_inside(audit_dir: &std::path::Path, id: &str) -> Option<String> {
    #[cfg(target_os = "linux")]
    return crate::nesting::stacked_inside(audit_dir, id);
    #[cfg(target_os = "macos")]
    {
        let _ = (audit_dir, id);
        None
    }
}
