//! `sluice run` inside a sluice sandbox: stack, skip, warn or refuse.
//!
//! Whether this process is inside a sluice sandbox is the kernel's answer
//! ([`sandbox_child::nesting`]), not the environment's: the program may
//! have removed `SLUICE_SESSION`, or set it. With the marker absent, sluice
//! sandboxes as usual whatever the environment says, so a stale or forged
//! variable can never make it skip its sandbox.
//!
//! - `stack`: the policy is applied on top. Landlock and seccomp only ever
//!   narrow, so the program gets the intersection of both sandboxes. What
//!   the outer sandbox forbids (mounts, so the namespaces layer; the
//!   session cgroup, so the process limit) becomes best effort when the
//!   policy lists it under `nested_best_effort`; the outer sandbox's own
//!   version of those layers still holds over the whole tree. sluice's
//!   state moves under the outer session's TMPDIR, the only place it can
//!   write.
//! - `skip`: the command is executed directly, with the environment as it
//!   is, so the outer broker (`SLUICE_BROKER_FD`) still serves it.
//! - `warn`: `skip` with a one-line notice on stderr.
//! - `error`: sluice refuses to start (exit 125).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::Result;
use policies::Nested;
use sandbox_child::nesting::SandboxState;

use crate::exit;

/// The enclosing sluice sandbox.
#[derive(Debug, Clone)]
pub struct Outer {
    /// `SLUICE_SESSION` as the environment has it (informative only).
    pub session: Option<String>,
}

impl Outer {
    /// The outer session's name for messages.
    pub fn describe(&self) -> String {
        match &self.session {
            Some(id) => format!("sluice session {id}"),
            None => "a sluice sandbox (SLUICE_SESSION was removed)".to_owned(),
        }
    }
}

/// The enclosing sluice sandbox, if the kernel says there is one.
pub fn detect() -> Option<Outer> {
    let state = SandboxState::probe();
    let session = std::env::var("SLUICE_SESSION")
        .ok()
        .filter(|s| !s.is_empty());
    if !state.inside_sluice() {
        if let Some(id) = &session {
            tracing::warn!(
                session = %id,
                "SLUICE_SESSION is set but this process is not inside a sluice sandbox: \
                 sandboxing as usual"
            );
        }
        return None;
    }
    Some(Outer { session })
}

/// What `run` does next.
pub enum Decision {
    /// Not nested: launch as usual.
    Launch,
    /// Nested, `stack`: launch with the nested layer rules.
    Stack(Outer),
}

/// Applies `mode` when nested: returns for `Launch`/`Stack`; executes the
/// command for `skip`/`warn` (returning only if that fails); refuses for
/// `error`.
pub fn decide(mode: Nested, command: &[OsString]) -> Result<Decision> {
    let Some(outer) = detect() else {
        return Ok(Decision::Launch);
    };
    match mode {
        Nested::Stack => Ok(Decision::Stack(outer)),
        Nested::Error => Err(exit::with_code(
            exit::ERROR,
            format!(
                "refusing to start: already inside {} and the policy says nested = \"error\"",
                outer.describe()
            ),
        )),
        Nested::Skip | Nested::Warn => {
            if mode == Nested::Warn {
                eprintln!(
                    "sluice: inside {}: running '{}' under the outer sandbox only (nested = \"warn\")",
                    outer.describe(),
                    command[0].to_string_lossy()
                );
            }
            Err(exec_directly(command))
        }
    }
}

/// execvp(command): the environment and descriptors pass through.
fn exec_directly(command: &[OsString]) -> anyhow::Error {
    let e = std::process::Command::new(&command[0])
        .args(&command[1..])
        .exec();
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => exit::NOT_FOUND,
        _ => exit::CANNOT_EXECUTE,
    };
    exit::with_code(code, format!("{}: {e}", command[0].to_string_lossy()))
}

/// Where a stacked sluice keeps its audit record and configuration: under
/// the outer session's TMPDIR, the only tree it can write. They are as
/// trustworthy as the outer program, which could write there too.
pub fn state_dir() -> PathBuf {
    std::env::temp_dir().join("sluice-nested-state")
}
