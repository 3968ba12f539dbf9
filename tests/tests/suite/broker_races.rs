//! Races against the broker's resolve-decide-open: a thread in the sandbox
//! swaps a symlink in the workspace between an allowed and a denied target as
//! fast as it can while the probe asks the broker, thousands of times, to open
//! through it (for reading, creating, truncating). The file judged must be the
//! file opened: nothing of the denied side is ever served or changed. The
//! control in each: both outcomes were seen, so the race really ran.
//!
//! The flipping thread spins for the whole race, so each costs a CPU for its
//! length: 2,000 rounds here (1,500 for writes), and ten times that in the
//! stress tests that `.ci/run` runs in a release build
//! (`cargo test --release -p sluice-tests --test suite -- --ignored stress_`).

use std::fs;

use sluice_tests::broker::{assert_file, DENIED_SAME};
use sluice_tests::{Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// A fixture with the broker's tree and its policy.
fn fixture() -> (Fixture, String) {
    sluice_tests::broker::fixture(PROBE)
}

/// Rounds of a read race, and of a write race, in the suite.
const READ_ROUNDS: u64 = 2000;
const WRITE_ROUNDS: u64 = 1500;
/// The same in the stress tests.
const STRESS: u64 = 10;

/// Runs the race for `rounds` requests and checks its control: both
/// outcomes were seen, so the flipping thread really raced the requests.
fn race(link: &str, good: &str, bad: &str, request: &str, rounds: u64) {
    let (fx, policy) = fixture();
    let (link, good, bad, request) = (
        fx.ws(link),
        fx.brokered(good),
        fx.brokered(bad),
        fx.ws(request),
    );
    let out = fx.brokered_run(
        &policy,
        &[],
        &[
            "broker-race",
            &link,
            &good,
            &bad,
            &rounds.to_string(),
            &request,
        ],
    );
    out.assert_ok().assert_no_secret();
    assert_eq!(out.count("leaked"), 0, "{out}");
    assert_eq!(
        out.count("other"),
        0,
        "requests neither served nor denied\n{out}"
    );
    assert_eq!(
        out.count("served_good") + out.count("denied"),
        rounds,
        "{out}"
    );
    // The control: the link did flip under the requests.
    assert!(
        out.count("served_good") > 0 && out.count("denied") > 0,
        "only one outcome was seen: the race did not happen\n{out}"
    );
    assert!(out.count("flips") > 0, "{out}");
}

fn symlink_rename_race(rounds: u64) {
    race(
        "link",
        "allowed/notes.txt",
        "denied/secret.txt",
        "link",
        rounds,
    );
}

fn directory_symlink_race(rounds: u64) {
    race("dir-link", "allowed", "denied", "dir-link/same.txt", rounds);
}

#[test]
fn the_symlink_rename_race_never_serves_the_denied_file() {
    symlink_rename_race(READ_ROUNDS);
}

#[test]
fn the_directory_symlink_race_never_serves_the_denied_file() {
    directory_symlink_race(READ_ROUNDS);
}

/// Names, modes and contents of the files in `dir`.
fn dir_snapshot(dir: &str) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            let data = if meta.is_file() {
                fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (
                e.file_name().to_string_lossy().into_owned(),
                meta.mode(),
                data,
            )
        })
        .collect();
    files.sort();
    files
}

/// The write race: a directory link swapped between `writable/` and
/// `denied/` under `rounds` requests to create or truncate through it.
fn race_write(mode: &str, name: &str, rounds: u64) -> (Fixture, Outcome) {
    let (fx, policy) = fixture();
    fs::write(fx.brokered("writable/same.txt"), "writable same\n").unwrap();
    let denied_before = dir_snapshot(&fx.brokered("denied"));
    let out = fx.brokered_run(
        &policy,
        &[],
        &[
            "broker-race-write",
            &fx.ws("write-link"),
            &fx.brokered("writable"),
            &fx.brokered("denied"),
            &rounds.to_string(),
            &fx.ws(&format!("write-link/{name}")),
            mode,
        ],
    );
    out.assert_ok();
    assert_eq!(out.count("other"), 0, "{out}");
    assert!(
        out.count("served") > 0 && out.count("denied") > 0,
        "only one outcome was seen: the race did not happen\n{out}"
    );
    assert_eq!(
        dir_snapshot(&fx.brokered("denied")),
        denied_before,
        "the denied directory changed under the race\n{out}"
    );
    (fx, out)
}

fn create_race(rounds: u64) {
    let (fx, out) = race_write("create", "new", rounds);
    let created = fs::read_dir(fx.brokered("writable"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("new-")
        })
        .count() as u64;
    assert_eq!(created, out.count("served"), "{out}");
}

fn truncate_race(rounds: u64) {
    let (fx, _) = race_write("truncate", "same.txt", rounds);
    assert_file(&fx.brokered("denied/same.txt"), DENIED_SAME);
}

#[test]
fn the_create_race_never_creates_in_the_denied_directory() {
    create_race(WRITE_ROUNDS);
}

#[test]
fn the_truncate_race_never_truncates_in_the_denied_directory() {
    truncate_race(WRITE_ROUNDS);
}

/// Every race above with ten times the rounds, one after the other.
#[test]
#[ignore = "stress test: run in release by .ci/run"]
fn stress_every_race_with_ten_times_the_rounds() {
    symlink_rename_race(STRESS * READ_ROUNDS);
    directory_symlink_race(STRESS * READ_ROUNDS);
    create_race(STRESS * WRITE_ROUNDS);
    truncate_race(STRESS * WRITE_ROUNDS);
}
