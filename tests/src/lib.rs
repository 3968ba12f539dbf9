//! Harness for the sluice integration and escape tests.
//!
//! Each test builds a [`Fixture`]: a fresh temporary tree with a workspace (a
//! `.git` with hooks and config, a `.env` holding a secret, ordinary files), a fake
//! home (an SSH key, AWS credentials, a shell history) and a directory outside every
//! policy. It then runs the `sluice-probe` binary once inside `sluice run` (the
//! attack) and once without sluice or on an allowed path (the control), and checks
//! from outside that nothing protected changed.
//!
//! Every command gets `XDG_STATE_HOME` and `XDG_CONFIG_HOME` inside the fixture, so
//! sluice's audit record and configuration never touch the real home and tests run
//! in parallel. [`broker`] adds the files only the broker can hand out and a policy
//! for them; [`audit`] reads the audit record back through `sluice audit`.
//!
//! ```no_run
//! // In an integration test of this crate:
//! const PROBE: &str = "target/debug/sluice-probe"; // env!("CARGO_BIN_EXE_sluice-probe")
//! let fx = sluice_tests::Fixture::new(PROBE);
//! fx.direct(&["read", &fx.home(".ssh/id_rsa")]).assert_ok(); // control
//! fx.sluice(&[], &["read", &fx.home(".ssh/id_rsa")]).assert_blocked(); // attack
//! ```
//!
//! # Compatibility
//!
//! Linux only. The escape tests expect what CI has: root, Landlock ABI 7
//! (`SLUICE_EXPECT_LANDLOCK_ABI` overrides), seccomp user notification,
//! unprivileged user namespaces and util-linux `setpriv`/`unshare`. A missing
//! feature fails the tests; nothing is skipped.
//!
//! # Security
//!
//! The probe is copied into the workspace of each fixture and run from there: the
//! workspace is executable under the built-in `default` policy, so the attacks run
//! under exactly that policy, with no extra `execute` rule that could mask a
//! difference. Every secret written by the fixture contains [`SECRET_MARK`]; an
//! attack's output must never contain it.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;

pub mod audit;
pub mod broker;
mod outcome;
#[cfg(target_os = "linux")]
pub mod pty;

pub use outcome::{execute, Outcome};

/// Every secret in a fixture contains this; no blocked attack may print it.
pub const SECRET_MARK: &str = "SECRET-";
pub const SSH_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-ssh-key\n";
pub const AWS_CREDENTIALS: &str = "[default]\naws_secret_access_key = SECRET-aws\n";
pub const SHELL_HISTORY: &str = "export TOKEN=SECRET-history\n";
pub const DOTENV: &str = "API_TOKEN=SECRET-dotenv\n";
pub const DOTENV_LOCAL: &str = "DB_PASSWORD=SECRET-dotenv-local\n";
pub const OUTSIDE_SECRET: &str = "SECRET-outside-every-policy\n";
pub const HOOK: &str = "#!/bin/sh\n# the original pre-commit hook\nexit 0\n";
pub const GIT_CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tbare = false\n";
pub const README: &str = "hello from the workspace\n";
/// Set in sluice's own environment on every run; must never reach the sandbox.
pub const CANARY_VAR: &str = "SLUICE_TEST_CANARY";
pub const CANARY_VALUE: &str = "SECRET-supervisor-environment";

/// The `sluice` binary: `$SLUICE_BIN` as given, else `target/<profile>/sluice`
/// next to the running test executable (`target/<profile>/deps/<test>`), built
/// first when it is missing, has no dep-info (`cargo test` writes none) or is
/// older than any source it was built from, so `cargo test -p sluice-tests`
/// after a supervisor change never tests a stale binary.
pub fn sluice_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(bin);
    }
    static FRESH: OnceLock<PathBuf> = OnceLock::new();
    FRESH
        .get_or_init(|| {
            let bin = profile_dir().join("sluice");
            if let Some(why) = stale(&bin) {
                // Built as `cargo test --workspace` builds it (the same
                // features, so its dependencies are reused: `-p supervisor`
                // alone would rebuild them), which leaves no `sluice.d`
                // behind: cargo's word that it is fresh is taken instead.
                eprintln!("sluice-tests: {why}: building it");
                cargo_build(&["--workspace", "--tests"]);
                assert!(
                    bin.is_file(),
                    "`cargo build --workspace --tests` did not make {}",
                    bin.display()
                );
            }
            bin
        })
        .clone()
}

/// `target/<profile>`, from the running test executable's place in it.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable is in target/<profile>/deps")
        .to_path_buf()
}

/// Why `bin` cannot be used as it is: missing, or older than one of the sources
/// that cargo's dep-info file (`BIN.d`, written with every build) lists for it.
/// Cargo rebuilds by the same mtime comparison, so a binary this accepts is one
/// `cargo build` would not rebuild.
fn stale(bin: &Path) -> Option<String> {
    let built = match fs::metadata(bin).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) => return Some(format!("{}: {e}", bin.display())),
    };
    let dep_info = bin.with_extension("d");
    let text = match fs::read_to_string(&dep_info) {
        Ok(t) => t,
        Err(e) => return Some(format!("{}: {e}", dep_info.display())),
    };
    // `target: src1 src2 ...`, spaces in names escaped with a backslash.
    let Some((_, deps)) = text.split_once(": ") else {
        return Some(format!("{}: not a dep-info file", dep_info.display()));
    };
    let deps = deps.replace("\\ ", "\0");
    for dep in deps.split_whitespace() {
        let dep = PathBuf::from(dep.replace('\0', " "));
        match fs::metadata(&dep).and_then(|m| m.modified()) {
            Ok(t) if t <= built => {}
            Ok(_) => return Some(format!("{} is older than {}", bin.display(), dep.display())),
            Err(e) => {
                return Some(format!(
                    "{} (a source of {}): {e}",
                    dep.display(),
                    bin.display()
                ))
            }
        }
    }
    None
}

/// `cargo build --quiet ARGS` in this workspace, with the profile the tests
/// run with.
fn cargo_build(args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--quiet")
        .args(args)
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null());
    if profile_dir().file_name() == Some(OsStr::new("release")) {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo build {args:?}: {e}"));
    assert!(status.success(), "cargo build {args:?} failed ({status})");
}

/// An example of the client SDK, `target/<profile>/examples/NAME`. `cargo test
/// --workspace` builds the examples; when this one is missing (the tests crate
/// was built alone), it is built here with the profile the tests run with.
pub fn example_bin(name: &str) -> PathBuf {
    let bin = profile_dir().join("examples").join(name);
    if !bin.is_file() {
        cargo_build(&["-p", "client-sdk", "--example", name]);
        assert!(
            bin.is_file(),
            "building the example {name} did not make {}",
            bin.display()
        );
    }
    bin
}

/// The Landlock ABI the tests expect the kernel (and sluice's report) to have.
pub fn expected_landlock_abi() -> u32 {
    match std::env::var("SLUICE_EXPECT_LANDLOCK_ABI") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("SLUICE_EXPECT_LANDLOCK_ABI={v:?} is not a number")),
        Err(_) => 7,
    }
}

/// `setpriv` running what the caller adds (the program, its arguments) as
/// the unprivileged user `nobody` (uid and gid 65534), with no
/// supplementary groups.
pub fn setpriv_nobody() -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    cmd
}

/// A fresh private (0700) directory `/tmp/sluice-test-TAG-XXXXXX`, removed on
/// drop (kept if `SLUICE_TEST_KEEP` is set).
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("sluice-test-{tag}-"))
        .disable_cleanup(std::env::var_os("SLUICE_TEST_KEEP").is_some())
        .tempdir_in("/tmp")
        .unwrap_or_else(|e| panic!("creating a temporary directory under /tmp: {e}"))
}

/// A fresh workspace, fake home and outside directory, plus a probe copy.
pub struct Fixture {
    root: tempfile::TempDir,
    pub ws_dir: PathBuf,
    pub home_dir: PathBuf,
    pub outside_dir: PathBuf,
    /// The probe, copied into the workspace (`$WS/bin/sluice-probe`).
    pub probe: PathBuf,
}

fn write_file(path: &Path, data: &str, mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

impl Fixture {
    pub fn new(probe_src: &str) -> Fixture {
        let root = temp_dir("fx");
        let ws_dir = root.path().join("ws");
        let home_dir = root.path().join("home");
        let outside_dir = root.path().join("outside");

        write_file(&ws_dir.join("README.md"), README, 0o644);
        write_file(&ws_dir.join("src/main.rs"), "fn main() {}\n", 0o644);
        write_file(&ws_dir.join(".env"), DOTENV, 0o644);
        write_file(&ws_dir.join(".env.local"), DOTENV_LOCAL, 0o644);
        write_file(&ws_dir.join(".git/HEAD"), "ref: refs/heads/main\n", 0o644);
        write_file(&ws_dir.join(".git/config"), GIT_CONFIG, 0o644);
        write_file(&ws_dir.join(".git/hooks/pre-commit"), HOOK, 0o755);

        write_file(&home_dir.join(".ssh/id_rsa"), SSH_KEY, 0o600);
        write_file(&home_dir.join(".aws/credentials"), AWS_CREDENTIALS, 0o600);
        write_file(&home_dir.join(".bash_history"), SHELL_HISTORY, 0o600);
        write_file(
            &home_dir.join(".gnupg/private-keys-v1.d/key"),
            "SECRET-gpg\n",
            0o600,
        );
        write_file(&home_dir.join("notes.txt"), "SECRET-home-notes\n", 0o644);

        write_file(&outside_dir.join("secret.txt"), OUTSIDE_SECRET, 0o644);

        let probe = ws_dir.join("bin/sluice-probe");
        install_executable(Path::new(probe_src), &probe);
        Fixture {
            root,
            ws_dir,
            home_dir,
            outside_dir,
            probe,
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A path inside the workspace, as a string for the probe's arguments.
    pub fn ws(&self, rel: &str) -> String {
        join(&self.ws_dir, rel)
    }

    pub fn home(&self, rel: &str) -> String {
        join(&self.home_dir, rel)
    }

    pub fn outside(&self, rel: &str) -> String {
        join(&self.outside_dir, rel)
    }

    /// `git ARGS` in `dir` as the person runs it: outside sluice, with the
    /// fixture's home, no system configuration, an identity of its own and
    /// no input.
    pub fn git_outside(&self, dir: &Path, args: &[&str]) -> Outcome {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .current_dir(dir)
            .env("HOME", &self.home_dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "p")
            .env("GIT_AUTHOR_EMAIL", "p@example.com")
            .env("GIT_COMMITTER_NAME", "p")
            .env("GIT_COMMITTER_EMAIL", "p@example.com")
            .stdin(Stdio::null());
        execute(cmd)
    }

    pub fn probe_path(&self) -> String {
        self.probe.to_string_lossy().into_owned()
    }

    /// Writes a policy file next to (not inside) the workspace; returns its path.
    pub fn write_policy(&self, name: &str, body: &str) -> String {
        let path = self.root().join(name);
        fs::write(&path, body).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// `sluice run --workspace WS SLUICE_ARGS -- PROGRAM...`, from the workspace,
    /// with HOME the fake home, the canary variable set and stdin from /dev/null.
    pub fn sluice_command(&self, sluice_args: &[&str], program: &[&str]) -> Command {
        let mut cmd = Command::new(sluice_bin());
        cmd.arg("run")
            .arg("--workspace")
            .arg(&self.ws_dir)
            .args(sluice_args)
            .arg("--")
            .args(program);
        self.environment(&mut cmd);
        cmd
    }

    /// The probe inside sluice.
    pub fn sluice(&self, sluice_args: &[&str], action: &[&str]) -> Outcome {
        let mut program = vec![self.probe.to_str().unwrap()];
        program.extend_from_slice(action);
        execute(self.sluice_command(sluice_args, &program))
    }

    /// The probe without sluice, same environment and working directory.
    pub fn direct_command(&self, action: &[&str]) -> Command {
        let mut cmd = Command::new(&self.probe);
        cmd.args(action);
        self.environment(&mut cmd);
        cmd
    }

    pub fn direct(&self, action: &[&str]) -> Outcome {
        execute(self.direct_command(action))
    }

    fn environment(&self, cmd: &mut Command) {
        cmd.current_dir(&self.ws_dir)
            .env("HOME", &self.home_dir)
            .env("XDG_STATE_HOME", self.state_dir())
            .env("XDG_CONFIG_HOME", self.config_home())
            // Plain log lines, for the tests that parse sluice's debug output.
            .env("NO_COLOR", "1")
            .env(CANARY_VAR, CANARY_VALUE)
            .stdin(Stdio::null());
    }

    /// `XDG_STATE_HOME` of every command: sluice's audit record goes beneath it.
    pub fn state_dir(&self) -> PathBuf {
        self.root().join("state")
    }

    /// `XDG_CONFIG_HOME` of every command.
    pub fn config_home(&self) -> PathBuf {
        self.root().join("config")
    }

    /// sluice's default audit directory for this fixture's commands.
    pub fn audit_dir(&self) -> PathBuf {
        self.state_dir().join("sluice/audit")
    }

    /// sluice's configuration directory for this fixture's commands.
    pub fn config_dir(&self) -> PathBuf {
        self.config_home().join("sluice")
    }

    /// A `sluice ARGS...` command (not `run`) with the fixture's environment.
    pub fn sluice_cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(sluice_bin());
        cmd.args(args);
        self.environment(&mut cmd);
        cmd
    }

    /// Everything the default policy protects, read from outside: `.git`, `.env*`
    /// and the home secrets, with contents and modes.
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::new();
        for rel in [".git", ".env", ".env.local"] {
            walk(&self.ws_dir.join(rel), &mut snap);
        }
        for rel in [".ssh", ".aws", ".gnupg", ".bash_history"] {
            walk(&self.home_dir.join(rel), &mut snap);
        }
        snap
    }

    /// Panics, naming every difference, if anything protected changed.
    #[track_caller]
    pub fn assert_unchanged(&self, before: &Snapshot) {
        let after = self.snapshot();
        let diff = diff(before, &after);
        assert!(
            diff.is_empty(),
            "protected files changed behind the sandbox:\n{}",
            diff.join("\n")
        );
    }

    /// Panics if nothing protected changed: the control attack did take effect.
    #[track_caller]
    pub fn assert_changed(&self, before: &Snapshot) {
        assert!(
            !diff(before, &self.snapshot()).is_empty(),
            "the control attack left the protected files unchanged: the check proves nothing"
        );
    }

    /// Makes the whole tree usable by another uid (the setuid test drops to 65534).
    pub fn give_to(&self, uid: u32, gid: u32) {
        fs::set_permissions(self.root(), fs::Permissions::from_mode(0o755)).unwrap();
        for dir in [&self.ws_dir, &self.home_dir] {
            chown_tree(dir, uid, gid);
        }
    }
}

/// A multi-step attack on the protected workspace files, built for a fixture: one
/// probe invocation whose steps run in order (joined with `+`).
pub type Attack = dyn Fn(&Fixture) -> Vec<Vec<String>>;

/// Joins probe steps into one invocation: `a x + b y`.
pub fn chain(steps: Vec<Vec<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for step in steps {
        if !out.is_empty() {
            out.push("+".to_owned());
        }
        out.extend(step);
    }
    out
}

/// Deny-within-allow must survive `attack`: without sluice (on a fixture of its
/// own) the attack succeeds and changes the protected files, which proves the
/// check; inside sluice it is BLOCKED, nothing protected changed, and a later
/// session still finds `.env` unreadable and the hooks and config unwritable.
#[track_caller]
pub fn assert_held(probe_src: &str, attack: &Attack) {
    let control = Fixture::new(probe_src);
    let before = control.snapshot();
    control.direct(&strs(&chain(attack(&control)))).assert_ok();
    control.assert_changed(&before);

    let fx = Fixture::new(probe_src);
    let before = fx.snapshot();
    fx.sluice(&[], &strs(&chain(attack(&fx)))).assert_blocked();
    fx.assert_unchanged(&before);
    fx.sluice(&[], &["read", &fx.ws(".env")]).assert_blocked();
    fx.sluice(&[], &["append", &fx.ws(".git/hooks/pre-commit")])
        .assert_blocked();
    fx.sluice(&[], &["write", &fx.ws(".git/hooks/post-checkout")])
        .assert_blocked();
    fx.sluice(&[], &["append", &fx.ws(".git/config")])
        .assert_blocked();
    fx.assert_unchanged(&before);
}

/// `argv!["rename", fx.ws(".env"), "x"]`: a `Vec<String>` from strings of
/// either kind.
#[macro_export]
macro_rules! argv {
    ($($arg:expr),* $(,)?) => {
        vec![$(::std::string::ToString::to_string(&$arg)),*]
    };
}

/// The cgroup directories of `session` that exist (sluice makes
/// `sluice-<session>` beside itself in the pids hierarchy: cgroup v1's
/// `pids`, or v2's unified tree, wherever that is mounted).
pub fn session_cgroups(session: &str) -> Vec<PathBuf> {
    let ours = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut candidates = Vec::new();
    for line in ours.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (
            fields.next(),
            fields.next().unwrap_or(""),
            fields.next().unwrap_or(""),
        );
        let mounts: &[&str] = if controllers.split(',').any(|c| c == "pids") {
            &["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
        } else if controllers.is_empty() {
            &["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        } else {
            continue;
        };
        for mount in mounts {
            candidates.push(
                Path::new(mount)
                    .join(path.trim_start_matches('/'))
                    .join(format!("sluice-{session}")),
            );
        }
    }
    candidates.retain(|d| d.is_dir());
    candidates
}

/// Runs `check` on every item, `workers` at a time, each on a thread of its
/// own, for a test whose cases are independent and spend their time waiting
/// (a sandbox launch waits far longer than it computes). The first panic is
/// raised again, with its message, once every case has finished.
pub fn for_each_concurrently<T: Sync>(items: &[T], workers: usize, check: impl Fn(&T) + Sync) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let panics = thread::scope(|scope| {
        let workers: Vec<_> = (0..workers.clamp(1, items.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                        check(item);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| w.join().err())
            .collect::<Vec<_>>()
    });
    if let Some(first) = panics.into_iter().next() {
        std::panic::resume_unwind(first);
    }
}

/// Borrows a `Vec<String>` as the `&[&str]` the runners take.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Copies an executable to `dst` (mode 0755) without this process ever holding a
/// writable descriptor to it. Test threads fork concurrently, and a child that
/// inherited such a descriptor between fork and exec makes executing the copy
/// fail with ETXTBSY; so the copy is written by a `cp` child process.
pub fn install_executable(src: &Path, dst: &Path) {
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let status = Command::new("cp")
        .arg("--")
        .arg(src)
        .arg(dst)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run cp: {e}"));
    assert!(
        status.success(),
        "cp {} {}: {status}",
        src.display(),
        dst.display()
    );
    fs::set_permissions(dst, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Writes a script to `path` (mode 0755) the same ETXTBSY-safe way.
pub fn install_script(path: &Path, contents: &str) {
    let status = Command::new("/bin/sh")
        .args(["-c", "printf '%s' \"$1\" > \"$2\"", "sh", contents])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run sh: {e}"));
    assert!(status.success(), "writing {}: {status}", path.display());
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn join(base: &Path, rel: &str) -> String {
    if rel.is_empty() {
        base.to_string_lossy().into_owned()
    } else {
        base.join(rel).to_string_lossy().into_owned()
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}

/// One file-system object as seen from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Missing,
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Symlink(PathBuf),
    Other,
}

pub type Snapshot = BTreeMap<PathBuf, Node>;

fn walk(path: &Path, snap: &mut Snapshot) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        snap.insert(path.to_owned(), Node::Missing);
        return;
    };
    let mode = meta.mode() & 0o7777;
    let node = if meta.is_dir() {
        let mut children: Vec<PathBuf> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        children.sort();
        for child in children {
            walk(&child, snap);
        }
        Node::Dir { mode }
    } else if meta.is_file() {
        Node::File {
            mode,
            data: fs::read(path).unwrap(),
        }
    } else if meta.is_symlink() {
        Node::Symlink(fs::read_link(path).unwrap())
    } else {
        Node::Other
    };
    snap.insert(path.to_owned(), node);
}

fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (path, old) in before {
        match after.get(path) {
            Some(new) if new == old => {}
            Some(new) => out.push(format!("  changed {}: {old:?} -> {new:?}", path.display())),
            None => out.push(format!("  gone    {}", path.display())),
        }
    }
    for (path, new) in after {
        if !before.contains_key(path) {
            out.push(format!("  new     {}: {new:?}", path.display()));
        }
    }
    out
}
