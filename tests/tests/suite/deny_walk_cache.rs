//! The cache of the `[filesystem] deny` walk (issue 19, "nothing in the
//! launch path grows with the workspace"): a directory unchanged since an
//! earlier launch is not listed again, and nothing the program of an
//! earlier session does can make a later launch miss a match: a secret
//! made in a cached directory whose mtime is then put back, one renamed in,
//! a hard link under a matching name, one in a new directory; nor can a
//! damaged cache, and no sandbox can reach the cache itself.
//!
//! The walk keeps only directories whose ctime is a couple of seconds old
//! (a change in the same clock tick would go unseen otherwise), so each
//! test waits [`SETTLE`] after changing the workspace: without the wait a
//! changed directory is listed anyway and the cache would not be tested.
//!
//! Each attack has its control: the same read outside sluice prints the
//! secret, and `--verbose` shows directories came from the cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sluice_tests::{execute, sluice_bin, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// Longer than the walk's settling time (two seconds).
const SETTLE: Duration = Duration::from_millis(2600);

/// The attacks of an earlier session's program, then the reads of the next.
const PLANT: &str = "set -e; m=$(stat -c %y sub); echo SECRET-planted-key > sub/planted.key; \
                     touch -d \"$m\" sub; test \"$(stat -c %y sub)\" = \"$m\"; \
                     ln deep/a/b/plain deep/a/b/k.pem; \
                     mv moved deep/moved.key; \
                     mkdir -p other/new; echo SECRET-new-dir > other/new/new.key; echo planted";
const READS: &str =
    "cat sub/planted.key; cat deep/a/b/k.pem; cat deep/moved.key; cat other/new/new.key; \
                     cat sub/plain";

/// A workspace whose directories are settled, the cache filled by one
/// launch; as the user `nobody` where `nobody`.
struct Setup {
    fx: Fixture,
    nobody: bool,
    tmp: PathBuf,
}

impl Setup {
    fn new(nobody: bool) -> Setup {
        let fx = Fixture::new(PROBE);
        for (rel, text) in [
            ("sub/plain", "PLAIN-sub\n"),
            ("deep/a/b/plain", "SECRET-linked-pem\n"),
            ("moved", "SECRET-moved-key\n"),
            ("other/x", "PLAIN-other\n"),
        ] {
            let path = fx.ws_dir.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let tmp = fx.root().join("tmp");
        fs::create_dir_all(&tmp).unwrap();
        fs::create_dir_all(fx.state_dir()).unwrap();
        fs::create_dir_all(fx.config_home()).unwrap();
        if nobody {
            fx.give_to(65534, 65534);
            for dir in [&tmp, &fx.state_dir(), &fx.config_home()] {
                std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
            }
        }
        let setup = Setup { fx, nobody, tmp };
        std::thread::sleep(SETTLE);
        let out = setup.inside("true");
        assert_eq!(out.code(), 0, "{out}");
        setup
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = match self.nobody {
            true => {
                let mut cmd = sluice_tests::setpriv_nobody();
                cmd.arg(program);
                cmd
            }
            false => Command::new(program),
        };
        cmd.args(args)
            .current_dir(&self.fx.ws_dir)
            .env("HOME", &self.fx.home_dir)
            .env("TMPDIR", &self.tmp)
            .env("XDG_STATE_HOME", self.fx.state_dir())
            .env("XDG_CONFIG_HOME", self.fx.config_home())
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// `sh -c SCRIPT` inside sluice (`default`, `--verbose`).
    fn inside(&self, script: &str) -> Outcome {
        let sluice = sluice_bin();
        let ws = self.fx.ws("");
        let args = [
            "run",
            "--verbose",
            "--workspace",
            &ws,
            "--",
            "/bin/sh",
            "-c",
            script,
        ];
        execute(self.command(sluice.to_str().unwrap(), &args))
    }

    fn outside(&self, script: &str) -> Outcome {
        execute(self.command("/bin/sh", &["-c", script]))
    }

    fn cache_files(&self) -> Vec<PathBuf> {
        let dir = self.fx.state_dir().join("sluice/deny-walk");
        let mut files: Vec<PathBuf> = (fs::read_dir(&dir).unwrap())
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }
}

/// The directories the launch listed and took from the cache, from its
/// `--verbose` line.
fn walked(out: &Outcome) -> (usize, usize) {
    let line = (out.stderr.lines())
        .find(|l| l.contains("directories listed"))
        .unwrap_or_else(|| panic!("no walk reported\n{out}"));
    let numbers: Vec<usize> = (line.split(|c: char| !c.is_ascii_digit()))
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[2], numbers[3])
}

fn secrets_hidden_after_an_earlier_session_planted_them(nobody: bool) {
    let setup = Setup::new(nobody);
    // Control: the cache is used (nothing changed since the first launch).
    let out = setup.inside("true");
    let (_, cached) = walked(&out);
    assert!(cached >= 6, "{out}");
    // The earlier session's program plants secrets where the cache said
    // there were none; then long enough for every change to settle.
    let out = setup.inside(PLANT);
    assert!(out.stdout.contains("planted"), "{out}");
    std::thread::sleep(SETTLE);
    let out = setup.inside(READS);
    assert!(!out.stdout.contains("SECRET"), "{out}");
    assert_eq!(out.stderr.matches("Permission denied").count(), 4, "{out}");
    assert!(out.stdout.contains("PLAIN-sub"), "{out}");
    // The directories not touched came from the cache.
    let (_, cached) = walked(&out);
    assert!(cached >= 2, "{out}");
    // Control: outside sluice the same reads print every secret.
    let out = setup.outside(READS);
    for secret in [
        "SECRET-planted-key",
        "SECRET-linked-pem",
        "SECRET-moved-key",
        "SECRET-new-dir",
    ] {
        assert!(out.stdout.contains(secret), "{secret}\n{out}");
    }
}

#[test]
fn a_secret_planted_where_the_cache_saw_none_is_denied() {
    secrets_hidden_after_an_earlier_session_planted_them(false);
}

#[test]
fn as_an_unprivileged_user_a_secret_planted_where_the_cache_saw_none_is_denied() {
    secrets_hidden_after_an_earlier_session_planted_them(true);
}

/// A renamed directory: the cached listing of the path it had is not used
/// for what now stands there, and its own is not used at its new path.
#[test]
fn a_directory_renamed_over_a_cached_one_is_listed() {
    let setup = Setup::new(false);
    let out = setup.inside(
        "mkdir -p spare && echo SECRET-swapped > spare/swapped.key && mv sub sub.old && mv spare sub \
         && echo swapped",
    );
    assert!(out.stdout.contains("swapped"), "{out}");
    std::thread::sleep(SETTLE);
    let out = setup.inside("cat sub/swapped.key; cat sub.old/plain");
    assert!(!out.stdout.contains("SECRET"), "{out}");
    assert!(out.stderr.contains("Permission denied"), "{out}");
    assert!(out.stdout.contains("PLAIN-sub"), "{out}");
    let out = setup.outside("cat sub/swapped.key");
    assert!(out.stdout.contains("SECRET-swapped"), "{out}");
}

/// A damaged cache (bytes changed, cut short, a symlink in its place, one
/// that others may write) is ignored whole: everything is listed again.
#[test]
fn a_damaged_cache_is_ignored_and_the_secret_still_denied() {
    let setup = Setup::new(false);
    fs::write(setup.fx.ws_dir.join("sub/.env"), "SECRET-env\n").unwrap();
    std::thread::sleep(SETTLE);
    let out = setup.inside("true");
    assert_eq!(out.code(), 0, "{out}");
    let files = setup.cache_files();
    assert!(!files.is_empty());
    let elsewhere = setup.fx.root().join("elsewhere");
    type Damage = fn(&Path, &Path);
    let damages: [(&str, Damage); 4] = [
        ("a changed byte", |file, _| {
            let mut bytes = fs::read(file).unwrap();
            let at = bytes.len() / 2;
            bytes[at] ^= 0x20;
            fs::write(file, bytes).unwrap();
        }),
        ("cut short", |file, _| {
            let bytes = fs::read(file).unwrap();
            fs::write(file, &bytes[..bytes.len() - 5]).unwrap();
        }),
        ("a symlink", |file, elsewhere| {
            fs::copy(file, elsewhere).unwrap();
            fs::remove_file(file).unwrap();
            std::os::unix::fs::symlink(elsewhere, file).unwrap();
        }),
        ("writable by others", |file, _| {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(file, fs::Permissions::from_mode(0o666)).unwrap();
        }),
    ];
    for (what, damage) in damages {
        for file in setup.cache_files() {
            damage(&file, &elsewhere);
            let _ = fs::remove_file(&elsewhere);
        }
        let out = setup.inside("cat sub/.env; cat sub/plain");
        assert!(!out.stdout.contains("SECRET"), "{what}\n{out}");
        assert!(out.stdout.contains("PLAIN-sub"), "{what}\n{out}");
        let (_, cached) = walked(&out);
        assert_eq!(cached, 0, "{what}: the damaged cache was used\n{out}");
        // Rewritten whole: the next launch uses it again.
        let out = setup.inside("true");
        assert!(walked(&out).1 > 0, "{what}: not rewritten\n{out}");
    }
}

/// No sandbox can read or write the cache, even under a policy that lets
/// it write the tree holding sluice's state (`--allow-write`); control:
/// the same writes outside sluice succeed.
#[test]
fn the_cache_is_out_of_every_sandboxs_reach() {
    let setup = Setup::new(false);
    let state = setup.fx.state_dir();
    let cache = state.join("sluice/deny-walk");
    assert!(!setup.cache_files().is_empty());
    let script = format!(
        "ls {c}; echo forged > {c}/forged; mv {c} {s}/moved; touch {s}/other && \
         echo wrote-beside",
        c = cache.display(),
        s = state.join("sluice").display()
    );
    let sluice = sluice_bin();
    let ws = setup.fx.ws("");
    let allow = state.display().to_string();
    let args = [
        "run",
        "--allow-write",
        &allow,
        "--workspace",
        &ws,
        "--",
        "/bin/sh",
        "-c",
        &script,
    ];
    let out = execute(setup.command(sluice.to_str().unwrap(), &args));
    // Control inside: the tree beside the cache is writable.
    assert!(out.stdout.contains("wrote-beside"), "{out}");
    assert!(!cache.join("forged").exists(), "{out}");
    assert!(
        cache.is_dir() && !state.join("sluice/moved").exists(),
        "{out}"
    );
    // Control outside: the same writes succeed.
    let script = format!("echo forged > {}/forged && echo wrote", cache.display());
    let out = setup.outside(&script);
    assert!(out.stdout.contains("wrote"), "{out}");
}

/// A sluice stacked inside another keeps no cache (its state is the outer
/// program's to write): each of its launches lists every directory. Control:
/// the outer sluice's own second launch takes them from its cache.
#[test]
fn a_stacked_sluice_keeps_no_cache() {
    let setup = Setup::new(false);
    let out = setup.inside("true");
    assert!(walked(&out).1 > 0, "{out}");
    let sluice = sluice_bin();
    let inner = format!("{} run -v --nested stack -- /bin/true", sluice.display());
    let out = setup.inside(&format!("{inner} && {inner}"));
    assert_eq!(out.code(), 0, "{out}");
    let inner_walks: Vec<&str> = (out.stderr.lines())
        .filter(|l| l.contains("directories listed"))
        .skip(1)
        .collect();
    assert_eq!(inner_walks.len(), 2, "{out}");
    for line in inner_walks {
        assert!(
            line.ends_with(" 0 unchanged since the last launch"),
            "{out}"
        );
    }
}
