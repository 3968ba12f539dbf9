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
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use policies::Nested;
use sandbox_child::nesting::SandboxState;

use crate::broker::safe_open;
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
            Err(exit::exec(command))
        }
    }
}

/// Where a stacked sluice keeps its audit record and configuration: under
/// the outer session's TMPDIR, the only tree it can write. They are as
/// trustworthy as the outer program, which could write there too.
pub fn state_dir() -> PathBuf {
    std::env::temp_dir().join(STATE_DIR)
}

/// [`state_dir`]'s name under the outer session's TMPDIR.
const STATE_DIR: &str = "sluice-nested-state";

/// The label file beside a stacked session's record kept by the outer
/// session (`<id>.stacked`): which session it was stacked in.
pub const STACKED_LABEL: &str = "stacked";

/// Most stacked sessions' records one session keeps, and the largest
/// record kept: beyond these the program was writing its own.
const MAX_STACKED: usize = 64;
const MAX_STACKED_BYTES: u64 = 16 << 20;

/// Keeps the records of the sessions stacked inside this one where the
/// person finds them: a stacked sluice can write only inside the outer
/// sandbox, so its record is under this session's TMPDIR ([`state_dir`]),
/// which is removed when this session ends. Called once the program and
/// all it left are gone: each `<id>.jsonl` there is copied into `audit_dir`
/// (never over an existing file), with `<id>.stacked` naming this session,
/// so `sluice audit show <id>` says where it came from. They are the
/// stacked session's claims: written where this session's program could
/// write too. Read beneath `session_tmp` without following any symlink;
/// only regular files with one link, named as sessions are, of bounded
/// size and number. Returns the ids kept.
pub fn keep_stacked_records(session_tmp: &Path, audit_dir: &Path, outer_id: &str) -> Vec<String> {
    match copy_stacked_records(session_tmp, audit_dir, outer_id) {
        Ok(kept) => kept,
        Err(e) => {
            tracing::warn!("stacked sessions' audit records were not kept: {e}");
            Vec::new()
        }
    }
}

fn copy_stacked_records(
    session_tmp: &Path,
    audit_dir: &Path,
    outer_id: &str,
) -> std::io::Result<Vec<String>> {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    let beneath = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let dir_flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let open_dir = |path: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(path)
    };
    let tmp = open_dir(session_tmp)?;
    let nested = STATE_DIR.as_bytes().iter().chain(b"/audit").copied();
    let source = match safe_open::openat2(
        tmp.as_raw_fd(),
        &nested.collect::<Vec<u8>>(),
        dir_flags,
        0,
        beneath,
    ) {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let target = open_dir(audit_dir)?;
    let mut names: Vec<String> =
        std::fs::read_dir(format!("/proc/self/fd/{}", source.as_raw_fd()))?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.strip_suffix(".jsonl").is_some_and(is_session_id))
            .collect();
    names.sort();
    if names.len() > MAX_STACKED {
        tracing::warn!(
            "{} stacked sessions' records: keeping the first {MAX_STACKED}",
            names.len()
        );
        names.truncate(MAX_STACKED);
    }
    let mut kept = Vec::new();
    for name in names {
        let id = name.trim_end_matches(".jsonl").to_owned();
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        let file = match safe_open::openat2(source.as_raw_fd(), name.as_bytes(), flags, 0, beneath)
        {
            Ok(fd) => std::fs::File::from(fd),
            Err(e) => {
                tracing::warn!(session = %id, "a stacked session's record: {e}");
                continue;
            }
        };
        let meta = file.metadata()?;
        if !meta.is_file() || meta.nlink() != 1 || meta.len() > MAX_STACKED_BYTES {
            tracing::warn!(
                session = %id,
                "a stacked session's record that is not a plain file of at most 16 MiB: not kept"
            );
            continue;
        }
        let create = |name: &str| {
            let flags =
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            safe_open::openat2(target.as_raw_fd(), name.as_bytes(), flags, 0o600, beneath)
                .map(std::fs::File::from)
        };
        let copied = create(&name).and_then(|mut out| {
            std::io::copy(&mut (&file).take(MAX_STACKED_BYTES), &mut out)?;
            let mut label = create(&format!("{id}.{STACKED_LABEL}"))?;
            label.write_all(format!("{outer_id}\n").as_bytes())
        });
        match copied {
            Ok(()) => kept.push(id),
            Err(e) => tracing::warn!(session = %id, "a stacked session's record was not kept: {e}"),
        }
    }
    Ok(kept)
}

/// 16 lowercase hex digits, as sluice names sessions.
fn is_session_id(name: &str) -> bool {
    name.len() == 16
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The session a kept stacked record came from, if `audit_dir` holds one
/// for `id` (`None` for every session of this user's own).
pub fn stacked_inside(audit_dir: &Path, id: &str) -> Option<String> {
    let label = audit_dir.join(format!("{id}.{STACKED_LABEL}"));
    let text = std::fs::read_to_string(label).ok()?;
    let outer = text.trim();
    is_session_id(outer).then(|| outer.to_owned())
}
