//! The macOS sandbox: a sealed Seatbelt (SBPL) profile generated from the
//! same resolved [`Policy`] as the Linux sandbox.
//!
//! Everything here but [`apply`] is portable: the profile is generated,
//! printed (`sluice policy show NAME --seatbelt`) and tested on Linux. Only
//! the final `sandbox_init` call, made in the child after fork and before
//! exec, is behind `cfg(target_os = "macos")`.
//!
//! ```
//! use std::path::PathBuf;
//! use sandbox_child::seatbelt::{self, SupervisorState};
//!
//! let mut policy = policies::load_str("p.toml", "", std::path::Path::new("/"))?
//!     .resolve(&policies::Vars {
//!         home: "/".into(), workspace: "/".into(), tmpdir: "/".into(),
//!     })?;
//! policy.filesystem.write.push(PathBuf::from("/tmp/work"));
//! let state = SupervisorState {
//!     audit_dir: "/Users/a/.local/state/sluice/audit".into(),
//!     config_dir: "/Users/a/.config/sluice".into(),
//!     session_dir: None,
//!     records_dir: None,
//!     policy_files: vec![],
//!     broker_socket: None,
//!     terminal: None,
//!     user_dirs: vec![],
//! };
//! let profile = seatbelt::generate(&policy, &state)?;
//! assert!(profile.text().starts_with("(version 1)\n"));
//! assert!(profile.text().contains("(subpath \"/private/tmp/work\")"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What a profile says
//!
//! `(deny default)`; a commented baseline of what every program needs
//! ([`baseline`]: fork, signals within the sandbox, dyld, some sysctls and
//! Mach services); network per policy ([`network`]); per policy path,
//! `file-read*`, `file-write*` and `process-exec*` rules (`subpath`
//! filters); deny-within-allow as deny rules *after* the allows, since
//! Seatbelt applies the last rule that matches; and, last of all, deny rules
//! for sluice's own state ([`SupervisorState`]). There is no `(extension
//! ...)` rule: a sealed profile cannot be widened by a token, so files
//! outside it are reached through the broker (on macOS, extensions consumed
//! before exec are reset by it and those consumed after are not honoured).
//!
//! Paths that did not exist when the policy was resolved are denied too:
//! unlike the Linux mounts, a Seatbelt rule holds for a path created later,
//! so the program cannot create `.git/hooks` in a workspace that had none
//! (which also means `git init` in such a workspace fails in the sandbox).
//!
//! # Compatibility
//!
//! Profile text only, for macOS 11 and later (dyld's shared cache moved in
//! 11 and again in 13; both places are allowed). Nothing of it has run on
//! macOS in this repository's CI: see the README's platform section.
//!
//! # Security
//!
//! No path can inject SBPL: each is one string literal with `"` and `\`
//! escaped, and a path that is not UTF-8, holds a control character or is
//! longer than MAXPATHLEN is refused with an error ([`path`]). Paths are
//! mapped through `/private` for `/tmp`, `/var` and `/etc`, as Seatbelt
//! matches the resolved path. Every string stays under 1 KiB, far from the
//! 64 KiB Seatbelt accepts; paths within another path of the same rule are
//! merged into it, so a profile grows with the number of separate trees,
//! not with the number of entries.

pub mod baseline;
pub mod failure;
pub mod network;
pub mod path;
mod profile;
mod sbpl;

#[cfg(target_os = "macos")]
mod apply;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

#[cfg(target_os = "macos")]
pub use apply::apply_in_child;
pub use path::{PathError, SbplPath, MAX_PATH_BYTES};
pub use profile::{generate, Profile, DENY_ALL, DENY_MOVE, DENY_WRITE};

/// Why no profile could be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatbeltError {
    #[error("{list}: {source}; no Seatbelt profile can name it")]
    Path {
        /// The policy list (`filesystem.write`) or the piece of sluice's
        /// state the path came from.
        list: &'static str,
        #[source]
        source: PathError,
    },
}

/// How a piece of sluice's state is kept from the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Neither readable nor writable (the audit record, approvals).
    Hidden,
    /// Readable but never changed, created, removed or renamed.
    Unwritable,
}

/// sluice's own state, denied in every profile after everything else:
/// no policy can make it writable (or, where hidden, readable); and the
/// session's own surroundings the launcher knows of (its terminal, the
/// per-user directories), allowed before the policy's denies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorState {
    /// The audit directory: hidden.
    pub audit_dir: PathBuf,
    /// The configuration directory (remembered approvals): hidden.
    pub config_dir: PathBuf,
    /// The session's private directory (deny placeholders, state): hidden.
    pub session_dir: Option<PathBuf>,
    /// The sessions' liveness records (whose locks say which session is
    /// running): hidden, so no program can replace one or hold its lock.
    pub records_dir: Option<PathBuf>,
    /// The policy file and the files it extends: unwritable, so the program
    /// cannot widen its next session.
    pub policy_files: Vec<PathBuf>,
    /// A broker socket with a path, if any: unwritable, so it cannot be
    /// replaced by an impostor (connecting to it stays allowed).
    pub broker_socket: Option<PathBuf>,
    /// The program's terminal (`/dev/ttysNNN`), if it has one: readable,
    /// writable and `file-ioctl` (as `/dev/tty` is), and no other terminal.
    pub terminal: Option<PathBuf>,
    /// The per-user temporary and cache directories (`confstr(3)`'s
    /// `_CS_DARWIN_USER_TEMP_DIR` and `_CS_DARWIN_USER_CACHE_DIR`, under
    /// `/var/folders`): readable and writable, as compilers, `xcrun` and
    /// `mktemp(3)` use them. A policy deny or `read_only` inside them still
    /// wins.
    pub user_dirs: Vec<PathBuf>,
}

impl SupervisorState {
    /// Each path, how it is guarded, and what it is (for comments and errors).
    pub fn entries(&self) -> Vec<(&Path, Guard, &'static str)> {
        let mut out = vec![
            (self.audit_dir.as_path(), Guard::Hidden, "the audit record"),
            (
                self.config_dir.as_path(),
                Guard::Hidden,
                "the configuration and approvals",
            ),
        ];
        if let Some(dir) = &self.records_dir {
            out.push((dir.as_path(), Guard::Hidden, "the session records"));
        }
        if let Some(dir) = &self.session_dir {
            out.push((
                dir.as_path(),
                Guard::Hidden,
                "the session's private directory",
            ));
        }
        for file in &self.policy_files {
            out.push((file.as_path(), Guard::Unwritable, "a policy file"));
        }
        if let Some(socket) = &self.broker_socket {
            out.push((socket.as_path(), Guard::Unwritable, "the broker socket"));
        }
        out
    }
}
