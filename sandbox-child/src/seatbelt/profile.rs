//! Assembling a profile: the order of its sections is its meaning.
//!
//! Seatbelt applies the *last* rule that matches an operation, so the
//! profile is written from the broadest to the most specific:
//!
//! 1. `(deny default)`, then the baseline every program needs (which first
//!    takes back what Seatbelt's prelude allows);
//! 2. network;
//! 3. the session's terminal and per-user directories;
//! 4. the policy's allows: metadata of the ancestors, then read, write and
//!    execute per tree;
//! 5. deny-within-allow: `read_only` (no writes), then `deny` and the paths
//!    absent at resolution (nothing at all);
//! 6. move-blocking: no directory above a guarded path (5, 7) can be
//!    renamed or removed where it lies in a writable tree, since Seatbelt
//!    matches paths, not files: `mv .git x` would otherwise move `.git`
//!    out from under its rule;
//! 7. sluice's own state, last, so that no allow above can reach it.

use std::collections::BTreeSet;
use std::ffi::CString;

use policies::Policy;

use super::path::{convert, minimise, PathError, SbplPath};
use super::sbpl::{self, literal, subpath, Rule, Section};
use super::{baseline, network, Guard, SeatbeltError, SupervisorState};

/// Everything a denied path must not be used for: read, written, executed,
/// mapped, connected to or bound as a unix socket.
pub const DENY_ALL: &[&str] = &[
    "file-read*",
    "file-write*",
    "file-ioctl",
    "process-exec*",
    "file-map-executable",
    "network-outbound",
    "network-bind",
];

/// What an unwritable path must not be used for: changed, created,
/// removed, renamed, or bound as a socket.
pub const DENY_WRITE: &[&str] = &["file-write*", "network-bind"];

/// What the directories above a guarded path must not be: removed or
/// renamed (Seatbelt checks a rename's source as `file-write-unlink`).
pub const DENY_MOVE: &[&str] = &["file-write-unlink"];

/// A generated profile: SBPL text, sealed (no `(extension ...)` rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    text: String,
}

impl Profile {
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text for `sandbox_init`. Comments are stripped of control
    /// characters and paths are refused if they hold any, so the text has
    /// no NUL byte.
    pub fn to_cstring(&self) -> CString {
        CString::new(self.text.as_bytes()).expect("a profile has no NUL byte")
    }
}

/// The paths of one `[filesystem]` list, checked and mapped.
fn list(name: &'static str, paths: &[std::path::PathBuf]) -> Result<Vec<SbplPath>, SeatbeltError> {
    convert(paths).map_err(|source| SeatbeltError::Path { list: name, source })
}

/// Generates the profile for `policy`, with `state` kept out of reach.
pub fn generate(policy: &Policy, state: &SupervisorState) -> Result<Profile, SeatbeltError> {
    let fs = &policy.filesystem;
    let read = list("filesystem.read", &fs.read)?;
    let write = minimise(list("filesystem.write", &fs.write)?);
    let execute = minimise(list("filesystem.execute", &fs.execute)?);
    let read_only = minimise(list("filesystem.read_only", &fs.read_only)?);
    let mut denied = list("filesystem.deny", &fs.deny)?;
    denied.extend(list("filesystem (absent paths)", &fs.absent)?);
    let denied = minimise(denied);
    let readable = minimise(read.into_iter().chain(write.clone()).chain(execute.clone()));

    let mut sections = baseline::sections();
    sections.extend(network::sections(&policy.network, &write));
    sections.extend(surroundings(state)?);
    sections.push(ancestors(&readable));
    sections.push(Section::new(
        &["[filesystem] read, write and execute: every tree is readable."],
        allow_each(&["file-read*"], &readable),
    ));
    sections.push(Section::new(
        &["[filesystem] write: create, change, remove and rename; device ioctls."],
        allow_each(&["file-write*", "file-ioctl"], &write),
    ));
    sections.push(Section::new(
        &["[filesystem] execute: run programs and map libraries executable."],
        allow_each(&["process-exec*", "file-map-executable"], &execute),
    ));
    sections.push(Section::new(
        &[
            "[filesystem] read_only: never writable, even inside a writable tree",
            "(after the allows: Seatbelt applies the last matching rule).",
        ],
        deny_each(DENY_WRITE, &read_only),
    ));
    sections.push(Section::new(
        &[
            "[filesystem] deny, and paths absent at resolution (optional entries and",
            "missing deny or read_only targets): nothing at all, even inside an allowed",
            "tree; the program cannot create them either.",
        ],
        deny_each(DENY_ALL, &denied),
    ));
    let state_paths = state_paths(state)?;
    let guarded = read_only.iter().chain(&denied).chain(&state_paths);
    sections.push(move_blocking(&write, guarded));
    sections.extend(protected(state)?);

    let mut text = String::new();
    text.push_str("(version 1)\n");
    text.push_str(&header(policy));
    text.push_str("(deny default)\n");
    sbpl::render(&mut text, &sections);
    Ok(Profile { text })
}

fn header(policy: &Policy) -> String {
    let name: String = policy
        .name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        ";; Generated by sluice from policy '{name}'. Sealed: no (extension ...)\n\
         ;; rule, so nothing can widen it once applied; files outside it are\n\
         ;; reached through the broker. Everything not allowed below is denied.\n"
    )
}

/// Path lookups and `getcwd(3)` stat every directory above an allowed
/// tree: their metadata (not their contents) is readable.
fn ancestors(roots: &[SbplPath]) -> Section {
    let above: BTreeSet<SbplPath> = roots.iter().flat_map(SbplPath::ancestors).collect();
    let filters: Vec<String> = above.iter().map(literal).collect();
    Section::new(
        &[
            "The directories above each allowed tree: metadata only (stat, for path",
            "lookups, getcwd(3) and realpath(3)), not their listings or files.",
        ],
        if filters.is_empty() {
            vec![]
        } else {
            vec![Rule::allow(&["file-read-metadata"], filters)]
        },
    )
}

fn allow_each(operations: &'static [&'static str], paths: &[SbplPath]) -> Vec<Rule> {
    if paths.is_empty() {
        return vec![];
    }
    vec![Rule::allow(operations, paths.iter().map(subpath).collect())]
}

fn deny_each(operations: &'static [&'static str], paths: &[SbplPath]) -> Vec<Rule> {
    if paths.is_empty() {
        return vec![];
    }
    vec![Rule::deny(operations, paths.iter().map(subpath).collect())]
}

/// The session's terminal and per-user directories ([`SupervisorState`]).
fn surroundings(state: &SupervisorState) -> Result<Vec<Section>, SeatbeltError> {
    let mut sections = Vec::new();
    let tty = SbplPath::new(std::path::Path::new("/dev/tty")).expect("fixed path");
    let mut terminals = vec![literal(&tty)];
    if let Some(terminal) = &state.terminal {
        let path = SbplPath::new(terminal).map_err(|source| SeatbeltError::Path {
            list: "the program's terminal",
            source,
        })?;
        terminals.push(literal(&path));
    }
    sections.push(Section::new(
        &[
            "The program's terminal, by its name and as /dev/tty: read, write and",
            "terminal ioctls (line discipline, window size). No other terminal.",
        ],
        vec![Rule::allow(
            &["file-read*", "file-write*", "file-ioctl"],
            terminals,
        )],
    ));
    let dirs = minimise(list("the per-user directories", &state.user_dirs)?);
    sections.push(Section::new(
        &[
            "The per-user temporary and cache directories (confstr(3), under",
            "/var/folders): compilers, xcrun and mktemp(3) write there.",
        ],
        allow_each(&["file-read*", "file-write*"], &dirs),
    ));
    Ok(sections)
}

/// Every directory above a guarded path that lies in a writable tree: not
/// removable or renamable, so the guarded path stays where its rule is.
fn move_blocking<'a>(write: &[SbplPath], guarded: impl Iterator<Item = &'a SbplPath>) -> Section {
    let above: BTreeSet<SbplPath> = guarded
        .flat_map(SbplPath::ancestors)
        .filter(|dir| write.iter().any(|tree| dir.is_within(tree)))
        .collect();
    Section::new(
        &[
            "Move-blocking: the directories above each guarded path (read_only, deny,",
            "sluice's state) inside a writable tree cannot be renamed or removed;",
            "Seatbelt matches paths, so a renamed ancestor would carry the guarded",
            "path out from under its rule.",
        ],
        if above.is_empty() {
            vec![]
        } else {
            vec![Rule::deny(DENY_MOVE, above.iter().map(literal).collect())]
        },
    )
}

/// sluice's own state paths, checked and mapped.
fn state_paths(state: &SupervisorState) -> Result<Vec<SbplPath>, SeatbeltError> {
    state
        .entries()
        .into_iter()
        .map(|(path, _, what)| {
            SbplPath::new(path).map_err(|source| SeatbeltError::Path { list: what, source })
        })
        .collect()
}

/// sluice's own state, denied last: whatever the policy allows, the program
/// cannot change (or, where hidden, read) the audit record, the approvals,
/// the session's private directory, the policy files or the broker socket.
fn protected(state: &SupervisorState) -> Result<Vec<Section>, SeatbeltError> {
    let mut sections = Vec::new();
    for (path, guard, what) in state.entries() {
        let path = SbplPath::new(path)
            .map_err(|source: PathError| SeatbeltError::Path { list: what, source })?;
        let (operations, effect) = match guard {
            Guard::Hidden => (DENY_ALL, "neither readable nor writable"),
            Guard::Unwritable => (DENY_WRITE, "readable, never writable"),
        };
        sections.push(Section {
            why: vec![format!("sluice's own state: {what}; {effect}.")],
            rules: vec![Rule::deny(operations, vec![subpath(&path)])],
        });
    }
    Ok(sections)
}
