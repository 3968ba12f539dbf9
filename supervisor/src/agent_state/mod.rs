//! Agents' state that the sandbox may write and that names what runs
//! later: nothing the program writes there runs outside the session.
//!
//! An agent's policy leaves its state writable, since the agent rewrites it
//! as it runs; some of that state starts programs later, outside sluice
//! too. Two kinds, each bound over the host's path in the sandbox's view
//! (`sandbox_child::SessionCopy`, a fatal step of the launch):
//!
//! - **A state file the agent must rewrite** (Claude Code's `.claude.json`:
//!   MCP servers, `env`, `apiKeyHelper`, per project trust and MCP
//!   servers): the program gets a copy made at launch. At the end the copy
//!   is written back with every key that may start or allow something
//!   restored to its launch value ([`claude`]), merged with what changed
//!   in the real file meanwhile ([`merge`]; where both changed the same
//!   key the outside's value stays), and the person is told what was kept
//!   back, with the program's own copy kept aside in the audit directory.
//!   A copy that does not parse changes nothing (kept aside, said).
//! - **A directory of scripts other sessions source or run** (Claude
//!   Code's `shell-snapshots/` and `session-env/`, sourced before each
//!   command of the session that made them; Codex's `tmp/`, whose
//!   per-launch directories are on that Codex's `PATH` and hold the helper
//!   it runs for every command, `shell_snapshots/`, `.tmp/`, its clone of
//!   the plugin marketplaces, and `skills/.system`, the skills it installs
//!   once and whose scripts the model runs): an empty directory of the
//!   session's own, dropped at the end, so the program reaches no entry of
//!   a session running outside, and leaves none for a later one. What the
//!   agent keeps there is remade each session (a snapshot, Codex's skills).
//!
//! Applied wherever the sandbox could write the path (a `write` tree, not
//! denied, read-only or protected), whichever policy says so.

mod claude;
mod merge;

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use policies::FsPolicy;
use serde_json::{Map, Value};

/// What a path holds, and so how its copy is made and ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Claude Code's state file.
    ClaudeJson,
    /// A directory private to the session.
    Private,
}

/// The largest state file read (Claude Code's is tens of kilobytes; it
/// keeps no transcripts there since 1.0).
const MAX_FILE: u64 = 64 << 20;

#[derive(Debug)]
struct Item {
    real: PathBuf,
    copy: PathBuf,
    kind: Kind,
    /// The file's content at launch (a state file), and its mode.
    launch: Vec<u8>,
    mode: u32,
}

/// The session's copies, from the launch to the end of the session.
pub(crate) struct AgentState {
    /// `<session directory>/agent-state`, holding the copies.
    root: PathBuf,
    items: Vec<Item>,
}

/// The paths this module knows, for the program's environment (its
/// `HOME`, else `home`; `CLAUDE_CONFIG_DIR` and `CODEX_HOME` move the
/// agents' state).
fn known(home: &Path, env: &[(OsString, OsString)]) -> Vec<(PathBuf, Kind)> {
    let var = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| PathBuf::from(v))
            .filter(|v| v.is_absolute())
    };
    let home = var("HOME").unwrap_or_else(|| home.to_path_buf());
    let dir = |name: &str, default: &str| {
        let mut dirs = vec![home.join(default)];
        dirs.extend(var(name));
        dirs
    };
    let mut out = vec![(home.join(".claude.json"), Kind::ClaudeJson)];
    for d in dir("CLAUDE_CONFIG_DIR", ".claude") {
        out.push((d.join(".claude.json"), Kind::ClaudeJson));
        out.push((d.join("shell-snapshots"), Kind::Private));
        out.push((d.join("session-env"), Kind::Private));
    }
    for d in dir("CODEX_HOME", ".codex") {
        out.push((d.join("tmp"), Kind::Private));
        out.push((d.join("shell_snapshots"), Kind::Private));
        out.push((d.join(".tmp"), Kind::Private));
        out.push((d.join("skills/.system"), Kind::Private));
    }
    out
}

/// `path` with its parent canonical, if the parent exists.
fn canonical(path: &Path) -> Option<PathBuf> {
    let parent = path.parent()?.canonicalize().ok()?;
    Some(parent.join(path.file_name()?))
}

/// Whether the sandbox could write at `path` (for a directory, inside it).
fn writable(fs: &FsPolicy, path: &Path, kind: Kind) -> bool {
    let within = |trees: &[PathBuf]| trees.iter().any(|t| path.starts_with(t));
    let judged = match kind {
        Kind::ClaudeJson => path.to_path_buf(),
        Kind::Private => path.join("x"),
    };
    within(&fs.write)
        && !within(&fs.deny)
        && !within(&fs.read_only)
        && fs.protect.protects(&judged).is_none()
}

impl AgentState {
    /// Nothing copied (a session stacked inside another: no namespace of
    /// its own to bind in; the enclosing session's copies hold).
    pub(crate) fn none() -> AgentState {
        AgentState {
            root: PathBuf::new(),
            items: Vec::new(),
        }
    }

    /// Makes the copies under `session_dir/agent-state` for every known
    /// path the sandbox could write (`env`: the program's environment); a missing state file is made (`{}`),
    /// a missing directory too where its parent is there. A symlink or a
    /// file of another kind at one of those paths refuses the launch.
    pub(crate) fn prepare(
        fs: &FsPolicy,
        env: &[(OsString, OsString)],
        home: &Path,
        session_dir: &Path,
    ) -> Result<AgentState> {
        let root = session_dir.join("agent-state");
        let mut state = AgentState {
            root,
            items: Vec::new(),
        };
        for (path, kind) in known(home, env) {
            let Some(real) = canonical(&path) else {
                continue;
            };
            if !writable(fs, &real, kind) || state.items.iter().any(|i| i.real == real) {
                continue;
            }
            if state.items.is_empty() {
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&state.root)
                    .with_context(|| format!("making {}", state.root.display()))?;
            }
            let copy = state.root.join(state.items.len().to_string());
            let item = match kind {
                Kind::ClaudeJson => copy_file(real, copy)?,
                Kind::Private => private_dir(real, copy)?,
            };
            state.items.push(item);
        }
        Ok(state)
    }

    /// The binds the child makes, one per copy.
    pub(crate) fn session_copies(&self) -> Vec<sandbox_child::SessionCopy> {
        self.items
            .iter()
            .map(|i| sandbox_child::SessionCopy {
                path: i.real.clone(),
                source: i.copy.clone(),
            })
            .collect()
    }

    /// Once the program and everything it started are gone: each state
    /// file written back without what it may not carry, the person told
    /// what was kept back, the program's copy kept aside under `kept`
    /// when anything was; then the copies removed.
    pub(crate) fn end(self, kept: &Path, session: &str) {
        for item in self.items.iter().filter(|i| i.kind == Kind::ClaudeJson) {
            match write_back(item, kept, session) {
                Ok(Some(said)) => crate::say!("sluice: {said}"),
                Ok(None) => {}
                Err(e) => crate::say!(
                    "sluice: {}: the program's changes were not written back: {e:#}",
                    item.real.display()
                ),
            }
        }
        if !self.items.is_empty() {
            if let Err(e) = fs::remove_dir_all(&self.root) {
                tracing::warn!("removing {}: {e}", self.root.display());
            }
        }
    }
}

/// Opens `path` without following a symlink at its end, refusing anything
/// but a regular file, and reads it whole (at most [`MAX_FILE`]).
fn read_file(path: &Path) -> io::Result<(Vec<u8>, u32)> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(io::Error::other(format!("larger than {MAX_FILE} bytes")));
    }
    let mut bytes = Vec::new();
    (&mut f).take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(io::Error::other(format!("larger than {MAX_FILE} bytes")));
    }
    Ok((bytes, meta.mode() & 0o7777))
}

/// A new file at `path` (never through a symlink, never over a file),
/// holding `bytes`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn symlink_refused(real: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is a symlink: sluice gives the sandbox a copy of it (what it names runs \
         later) and cannot bind one over a link; put the file it names in its place, \
         or run with a policy that does not let the program write it",
        real.display()
    )
}

fn copy_file(real: PathBuf, copy: PathBuf) -> Result<Item> {
    let (launch, mode) = match read_file(&real) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A mount needs something to sit on; Claude Code reads `{}`
            // as it reads a missing file.
            let empty = b"{}\n".to_vec();
            write_new(&real, &empty, 0o600)
                .with_context(|| format!("making {}", real.display()))?;
            (empty, 0o600)
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(symlink_refused(&real)),
        Err(e) => return Err(e).with_context(|| format!("reading {}", real.display())),
    };
    write_new(&copy, &launch, 0o600).with_context(|| format!("writing {}", copy.display()))?;
    Ok(Item {
        real,
        copy,
        kind: Kind::ClaudeJson,
        launch,
        mode,
    })
}

fn private_dir(real: PathBuf, copy: PathBuf) -> Result<Item> {
    match fs::symlink_metadata(&real) {
        Ok(m) if m.file_type().is_symlink() => return Err(symlink_refused(&real)),
        Ok(m) if !m.is_dir() => bail!("{} is not a directory", real.display()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&real)
                .with_context(|| format!("making {}", real.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", real.display())),
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&copy)
        .with_context(|| format!("making {}", copy.display()))?;
    Ok(Item {
        real,
        copy,
        kind: Kind::Private,
        launch: Vec::new(),
        mode: 0o700,
    })
}

fn object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

/// The program's copy under `kept` (the audit directory's `kept/`, which no
/// sandbox reaches), for the person to look at.
fn keep_aside(item: &Item, program: &[u8], kept: &Path, session: &str) -> Result<PathBuf> {
    crate::audit::ensure_private_dir(kept)?;
    let name = item.real.file_name().unwrap_or_default().to_string_lossy();
    let aside = kept.join(format!("{session}-{}", name.trim_start_matches('.')));
    write_new(&aside, program, 0o600).with_context(|| format!("writing {}", aside.display()))?;
    Ok(aside)
}

/// The state file written back, and what to tell the person.
fn write_back(item: &Item, kept: &Path, session: &str) -> Result<Option<String>> {
    let real = item.real.display();
    let (program, _) = read_file(&item.copy).with_context(|| "reading the session's copy")?;
    if program == item.launch {
        return Ok(None);
    }
    let aside = || keep_aside(item, &program, kept, session);
    let Some(launch) = object(&item.launch) else {
        let at = aside()?;
        return Ok(Some(format!(
            "{real} was not a JSON object at launch, so nothing of the program's copy \
             (kept at {}) was written back",
            at.display()
        )));
    };
    let Some(theirs) = object(&program) else {
        let at = aside()?;
        return Ok(Some(format!(
            "{real}: the program left its copy unreadable as JSON; the file is as it \
             was, the copy is kept at {}",
            at.display()
        )));
    };
    let sanitized = claude::sanitize(&launch, &theirs);
    let program_value = Value::Object(sanitized.value);
    // The real file may change outside during the session (or now): merge
    // against what it holds when it is replaced, at most a few times.
    for _ in 0..5 {
        let mut conflicts = Vec::new();
        let (now, merged) = match read_file(&item.real) {
            Ok((bytes, _)) if bytes == item.launch => (bytes, program_value.clone()),
            Ok((bytes, _)) => {
                let Some(outside) = object(&bytes) else {
                    let at = aside()?;
                    return Ok(Some(format!(
                        "{real} changed outside sluice during the session and is not a \
                         JSON object now: left as it is; the program's copy is kept at {}",
                        at.display()
                    )));
                };
                let merged = merge::merge3(
                    Some(&Value::Object(launch.clone())),
                    Some(&Value::Object(outside)),
                    Some(&program_value),
                    "",
                    &mut conflicts,
                );
                (bytes, merged.unwrap_or_else(|| Value::Object(Map::new())))
            }
            // Removed meanwhile: the program's, as the only side.
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), program_value.clone()),
            Err(e) => return Err(e).with_context(|| format!("reading {real}")),
        };
        if replace(item, &now, &merged, session)? {
            let told = tell(item, &sanitized.held, &conflicts, &program, kept, session);
            return Ok(told);
        }
    }
    let at = aside()?;
    Ok(Some(format!(
        "{real} kept changing outside sluice: left as it is; the program's copy is kept at {}",
        at.display()
    )))
}

/// Writes `value` over the real file if it still holds `expected` (empty:
/// missing), through a new file beside it renamed over it; `false` if it
/// changed meanwhile.
fn replace(item: &Item, expected: &[u8], value: &Value, session: &str) -> Result<bool> {
    let mut text = serde_json::to_string_pretty(value).context("writing JSON")?;
    text.push('\n');
    let dir = item.real.parent().context("the state file's directory")?;
    let name = item.real.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!("{name}.sluice-{session}"));
    let _ = fs::remove_file(&temp);
    write_new(&temp, text.as_bytes(), item.mode & 0o777)
        .with_context(|| format!("writing {}", temp.display()))?;
    // Root writing a user's file (`sudo -E`) leaves it the user's, as the
    // program's own write in place would have; anyone else owns it already.
    if let Ok(meta) = fs::symlink_metadata(&item.real) {
        let _ = std::os::unix::fs::lchown(&temp, Some(meta.uid()), Some(meta.gid()));
    }
    let now = match read_file(&item.real) {
        Ok((bytes, _)) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            return Err(e).with_context(|| format!("reading {}", item.real.display()));
        }
    };
    if now != expected {
        let _ = fs::remove_file(&temp);
        return Ok(false);
    }
    fs::rename(&temp, &item.real).with_context(|| format!("replacing {}", item.real.display()))?;
    let _ = File::open(dir).and_then(|d| d.sync_all());
    Ok(true)
}

/// What the person is told once the file was written back.
fn tell(
    item: &Item,
    held: &[String],
    conflicts: &[String],
    program: &[u8],
    kept: &Path,
    session: &str,
) -> Option<String> {
    if held.is_empty() && conflicts.is_empty() {
        return None;
    }
    let real = item.real.display();
    let aside = match keep_aside(item, program, kept, session) {
        Ok(at) => format!("the program's own copy is kept at {}", at.display()),
        Err(e) => format!("its own copy could not be kept: {e:#}"),
    };
    let mut said = Vec::new();
    if !held.is_empty() {
        said.push(format!(
            "kept back the program's changes to {} (what Claude Code starts or lets run \
             without asking); its other changes are written",
            held.join(", ")
        ));
    }
    if !conflicts.is_empty() {
        said.push(format!(
            "changed outside sluice during the session too: kept the outside's {}",
            conflicts.join(", ")
        ));
    }
    Some(format!("{real}: {}; {aside}", said.join("; ")))
}

#[cfg(test)]
mod tests;
