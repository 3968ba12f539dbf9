//! The broker's part of a fixture: a tree outside the workspace that the sandbox
//! cannot open itself (the default policy's `[filesystem]` does not reach the
//! fixture's temporary directory), so only the broker can hand its files out; a
//! policy extending `default` with one `[broker]` rule per list for it; and what
//! the supervisor logs about its descriptors when the broker stops.
//!
//! ```text
//! <root>/broker/allowed/         allow        notes.txt, same.txt
//! <root>/broker/writable/        allow_write  existing.txt
//! <root>/broker/asked/           ask          question.txt
//! <root>/broker/asked-writable/  ask_write    draft.txt
//! <root>/broker/denied/          deny         secret.txt, same.txt (secrets)
//! <root>/broker/unruled/         (the default policy's `ask = ["/"]`)
//! ```
//!
//! `same.txt` exists in both `allowed/` and `denied/`, for races on a symlink to
//! the directory. Everything denied contains [`crate::SECRET_MARK`].

use std::path::{Path, PathBuf};

use crate::{write_file, Fixture, Outcome};

pub const NOTES: &str = "brokered notes, allowed\n";
pub const ALLOWED_SAME: &str = "the allowed same.txt\n";
pub const EXISTING: &str = "old content of a writable file\n";
pub const QUESTION: &str = "asked about, read only\n";
pub const DRAFT: &str = "asked about, writable\n";
pub const UNRULED: &str = "under no rule of the test\n";
pub const DENIED_SECRET: &str = "SECRET-broker-denied\n";
pub const DENIED_SAME: &str = "SECRET-broker-denied-same\n";
/// Written in sluice's configuration directory, which the broker protects.
pub const CONFIG_SECRET: &str = "SECRET-sluice-configuration\n";

/// The lists of a `[broker]` table.
pub const LISTS: [&str; 5] = ["allow", "allow_write", "ask", "ask_write", "deny"];

impl Fixture {
    /// [`Fixture::new`] plus the broker's tree, and a file in sluice's
    /// configuration directory. See also [`fixture`].
    pub fn with_broker(probe_src: &str) -> Fixture {
        let fx = Fixture::new(probe_src);
        for (rel, data) in [
            ("allowed/notes.txt", NOTES),
            ("allowed/same.txt", ALLOWED_SAME),
            ("writable/existing.txt", EXISTING),
            ("asked/question.txt", QUESTION),
            ("asked-writable/draft.txt", DRAFT),
            ("unruled/other.txt", UNRULED),
            ("denied/secret.txt", DENIED_SECRET),
            ("denied/same.txt", DENIED_SAME),
        ] {
            write_file(&fx.broker_dir().join(rel), data, 0o644);
        }
        write_file(
            &fx.config_dir().join("remembered.toml"),
            CONFIG_SECRET,
            0o600,
        );
        fx
    }

    /// `<root>/broker`: outside the workspace and every `[filesystem]` rule.
    pub fn broker_dir(&self) -> PathBuf {
        self.root().join("broker")
    }

    /// A path in the broker's tree, as a string for the probe's arguments.
    pub fn brokered(&self, rel: &str) -> String {
        self.broker_dir().join(rel).to_string_lossy().into_owned()
    }

    /// Writes `broker.toml`: `default` plus one rule per list for the broker's
    /// tree, and `extra` rules as `(list, pattern)`; returns its path.
    pub fn broker_policy(&self, extra: &[(&str, &str)]) -> String {
        let dir = self.broker_dir();
        let mut rules: Vec<(&str, String)> = vec![
            ("allow", pattern(&dir.join("allowed"))),
            ("allow_write", pattern(&dir.join("writable"))),
            ("ask", pattern(&dir.join("asked"))),
            ("ask_write", pattern(&dir.join("asked-writable"))),
            ("deny", pattern(&dir.join("denied"))),
        ];
        rules.extend(extra.iter().map(|(list, p)| (*list, p.to_string())));
        let mut text = String::from("extends = [\"default\"]\n\n[broker]\n");
        for list in LISTS {
            let items: Vec<String> = rules
                .iter()
                .filter(|(l, _)| *l == list)
                .map(|(_, p)| format!("{p:?}"))
                .collect();
            assert!(
                rules.iter().all(|(l, _)| LISTS.contains(l)),
                "unknown [broker] list in {rules:?}"
            );
            text += &format!("{list} = [{}]\n", items.join(", "));
        }
        self.write_policy("broker.toml", &text)
    }

    /// The probe inside `sluice run --policy POLICY SLUICE_ARGS`, with the
    /// broker logging at debug level (for [`descriptors`]).
    pub fn brokered_run(
        &self,
        policy: &str,
        sluice_args: &[&str],
        action: &[&str],
    ) -> crate::Outcome {
        let mut args = vec!["--policy", policy];
        args.extend_from_slice(sluice_args);
        let mut program = vec![self.probe.to_str().unwrap()];
        program.extend_from_slice(action);
        let mut cmd = self.sluice_command(&args, &program);
        cmd.env("SLUICE_LOG", "supervisor::broker=debug");
        crate::execute(cmd)
    }
}

/// [`Fixture::with_broker`] and its [`Fixture::broker_policy`] without extra rules.
pub fn fixture(probe_src: &str) -> (Fixture, String) {
    let fx = Fixture::with_broker(probe_src);
    let policy = fx.broker_policy(&[]);
    (fx, policy)
}

/// A path as a `[broker]` pattern that matches only itself.
fn pattern(path: &Path) -> String {
    let text = path.to_str().expect("fixture paths are UTF-8");
    assert!(
        !text.contains(['*', '?', '[', ']', '{', '}', '\\']),
        "{text} would be a glob"
    );
    text.to_owned()
}

/// What the broker logs when it stops (`Broker::stop`, target
/// `supervisor::broker`, debug): the supervisor's descriptor count when the
/// broker started and after it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptors {
    pub at_start: usize,
    pub at_end: usize,
    /// The broker's own verdict: descriptors open at the end beyond those
    /// open at start, less the listener it closed.
    pub leaked: usize,
}

/// The descriptor counts in sluice's stderr (run with
/// `SLUICE_LOG=supervisor::broker=debug`), if the line is there.
pub fn descriptors(stderr: &str) -> Option<Descriptors> {
    let line = stderr
        .lines()
        .map(strip_ansi)
        .find(|l| l.contains("broker: supervisor descriptors"))?;
    let value = |key: &str| -> Option<usize> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    Some(Descriptors {
        at_start: value("at_start")?,
        at_end: value("at_end")?,
        leaked: value("leaked")?,
    })
}

/// The counts a session logged; panics, showing the outcome, when the line
/// is missing (the session was not run with the broker at debug level).
#[track_caller]
pub fn logged_descriptors(out: &Outcome) -> Descriptors {
    descriptors(&out.stderr).unwrap_or_else(|| {
        panic!("no 'broker: supervisor descriptors' line in sluice's debug output\n{out}")
    })
}

/// The descriptor counts of a session that made one ordinary request (an
/// allowed read): what a session without leaks logs.
#[track_caller]
pub fn reference_descriptors(fx: &Fixture, policy: &str) -> Descriptors {
    let out = fx.brokered_run(
        policy,
        &[],
        &["broker-read", &fx.brokered("allowed/notes.txt")],
    );
    out.assert_ok();
    logged_descriptors(&out)
}

/// The session closed every descriptor it opened for its requests.
///
/// `Broker::stop` logs the count before the broker's runtime existed and
/// after it is gone, and `leaked`: the end count beyond the start count
/// less the listener it closed; that must be 0. A session that made one
/// request is also a reference ([`reference_descriptors`]): a leak shows as
/// an end count above its end count.
///
/// Requests still running when the broker gave up waiting (it warns, then
/// drops them, which closes their descriptors) would hide from the count, so
/// that warning fails the check too.
#[track_caller]
pub fn assert_no_leak(out: &Outcome, reference: Descriptors) {
    assert!(
        !out.stderr.contains("still in progress"),
        "the broker dropped requests it could not finish\n{out}"
    );
    let got = logged_descriptors(out);
    assert_eq!(got.leaked, 0, "the broker left descriptors open\n{out}");
    assert!(
        got.at_end <= got.at_start,
        "sluice itself sees more descriptors at the end: {got:?}\n{out}"
    );
    assert_eq!(
        got, reference,
        "the supervisor's descriptor counts differ from those of a one-request session \
         {reference:?}: descriptors leaked (or were closed that should not have been)\n{out}"
    );
}

/// Panics unless the file at `path` holds exactly `expected`.
#[track_caller]
pub fn assert_file(path: &str, expected: &str) {
    let got = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    assert_eq!(got, expected, "content of {path}");
}

/// `line` without terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_counts_are_read_with_or_without_colour() {
        let plain = "2026-11-23T05:17:30Z DEBUG supervisor::broker: broker: supervisor \
                     descriptors at_start=8 at_end=7 leaked=0\n";
        let coloured = "\u{1b}[2m2026\u{1b}[0m \u{1b}[34mDEBUG\u{1b}[0m broker: supervisor \
                        descriptors \u{1b}[3mat_start\u{1b}[0m\u{1b}[2m=\u{1b}[0m8 \
                        \u{1b}[3mat_end\u{1b}[0m\u{1b}[2m=\u{1b}[0m7 \
                        \u{1b}[3mleaked\u{1b}[0m\u{1b}[2m=\u{1b}[0m0";
        for text in [plain, coloured] {
            assert_eq!(
                descriptors(text),
                Some(Descriptors {
                    at_start: 8,
                    at_end: 7,
                    leaked: 0,
                })
            );
        }
        assert_eq!(descriptors("nothing here"), None);
    }
}
