//! Nothing the sandbox leaves behind gains privileges: no set-user-ID or
//! set-group-ID file and no file capabilities from inside, and no program
//! run (by the dynamic loader) from a writable tree the policy does not make
//! executable.
//!
//! The harm is checked where it would happen: outside, a file left in the
//! workspace is run by another user (`setpriv --reuid 65534`). Every attack
//! has its control: the same action outside sluice succeeds and the copy of
//! `id` it makes prints `euid=0`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use sluice_tests::{execute, sluice_bin, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
const NOBODY: u32 = 65534;
/// The program every set-ID copy is made of: it prints the effective uid.
const ID: &str = "/usr/bin/id";

/// Every way the probe knows to give a file a mode (see `sluice-probe set-id`).
const WAYS: &[&str] = &[
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    #[cfg(target_arch = "x86_64")]
    "open",
    "openat",
    #[cfg(target_arch = "x86_64")]
    "creat",
    "mknod",
    "tmpfile",
    "openat2",
];
/// The ways that set the mode of a file that already has its content: those
/// the kernel does not undo when an unprivileged writer writes afterwards.
const CHMOD_WAYS: &[&str] = &["chmod", "fchmod", "fchmodat", "fchmodat2"];

#[cfg(target_arch = "x86_64")]
const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";
#[cfg(target_arch = "aarch64")]
const LOADER: &str = "/lib/ld-linux-aarch64.so.1";

#[track_caller]
fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test checks what a root-run session leaves");
}

/// `PROGRAM` run as uid/gid 65534 with the fixture's home, from the workspace.
fn as_nobody(fx: &Fixture, program: &[&str]) -> Outcome {
    let mut cmd = sluice_tests::setpriv_nobody();
    cmd.args(program)
        .current_dir(&fx.ws_dir)
        .env("HOME", &fx.home_dir)
        .env("TMPDIR", fx.home("tmp"))
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    execute(cmd)
}

/// A fixture whose workspace and home belong to 65534, with a temporary
/// directory of its own in the home.
fn fixture_for_nobody() -> Fixture {
    let fx = Fixture::new(PROBE);
    fs::create_dir_all(fx.home("tmp")).unwrap();
    fs::create_dir_all(fx.outside("")).unwrap();
    fx.give_to(NOBODY, NOBODY);
    fs::set_permissions(&fx.outside_dir, fs::Permissions::from_mode(0o777)).unwrap();
    fx
}

/// A fixture of root's whose files 65534 can reach and run (the workspace
/// stays root's: a root-run program holds no capability to write elsewhere).
fn fixture_nobody_can_enter() -> Fixture {
    let fx = Fixture::new(PROBE);
    fs::create_dir_all(fx.outside("")).unwrap();
    for dir in [fx.root(), &fx.ws_dir, &fx.outside_dir] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fx
}

/// What `id`, run by 65534 from `path`, says; None if `path` does not exist.
fn id_run_by_nobody(fx: &Fixture, path: &str) -> Option<String> {
    Path::new(path).exists().then(|| {
        let out = as_nobody(fx, &[path]);
        format!("{}{}", out.stdout, out.stderr)
    })
}

fn set_id_bits(path: &str) -> u32 {
    fs::metadata(path).map_or(0, |m| m.mode() & 0o6000)
}

/// The reproduction, in a shell: `cp /usr/bin/id x; chmod 4755 x` in
/// the workspace of a root-run session, then `./x` run by another user.
#[test]
fn a_root_session_cannot_leave_a_set_uid_copy_of_id_in_the_workspace() {
    require_root();
    let fx = fixture_nobody_can_enter();
    let script = format!("cp {ID} \"$1\" && chmod 4755 \"$1\"");

    let control = fx.outside("x");
    let mut sh = Command::new("sh");
    sh.args(["-c", &script, "sh", &control])
        .current_dir(&fx.ws_dir)
        .stdin(Stdio::null());
    let out = execute(sh);
    assert!(out.status.success(), "the control could not run\n{out}");
    let said = id_run_by_nobody(&fx, &control).unwrap();
    assert!(said.contains("euid=0"), "control: {said}");

    let attack = fx.ws("x");
    let out = execute(fx.sluice_command(&[], &["sh", "-c", &script, "sh", &attack]));
    assert_ne!(out.code(), 0, "chmod 4755 succeeded inside\n{out}");
    assert!(out.stderr.contains("chmod"), "{out}");
    assert_eq!(set_id_bits(&attack), 0);
    let said = id_run_by_nobody(&fx, &attack).unwrap_or_default();
    assert!(!said.contains("euid=0"), "{said}");
}

/// Every call that sets a mode: outside (as root) each makes a set-user-ID
/// root copy of `id`; inside each is refused, or (openat2, whose mode the
/// filter cannot read) the kernel clears the bit when the file is written.
#[test]
fn no_call_that_sets_a_mode_makes_a_set_id_file_in_a_root_session() {
    require_root();
    let fx = fixture_nobody_can_enter();
    for way in WAYS {
        let control = fx.outside(way);
        fx.direct(&["set-id", way, ID, &control]).assert_ok();
        let said = id_run_by_nobody(&fx, &control).unwrap();
        assert!(said.contains("euid=0"), "control {way}: {said}");
    }
    for way in WAYS {
        let attack = fx.ws(way);
        fx.sluice(&[], &["set-id", way, ID, &attack])
            .assert_blocked();
        assert_eq!(set_id_bits(&attack), 0, "{way}");
        if let Some(said) = id_run_by_nobody(&fx, &attack) {
            assert!(!said.contains("euid=0"), "{way}: {said}");
        }
    }
    // Modes without set-ID bits are still set: `chmod +x` works.
    let plain = fx.ws("plain");
    fx.sluice(&[], &["write", &plain]).assert_ok();
    let out = execute(fx.sluice_command(&[], &["chmod", "1755", &plain]));
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(fs::metadata(&plain).unwrap().mode() & 0o7777, 0o1755);
}

/// File capabilities are an extended attribute only `CAP_SETFCAP` may set;
/// the program holds no capability, even in a session run by root.
#[test]
fn file_capabilities_cannot_be_set_from_inside() {
    require_root();
    let fx = Fixture::new(PROBE);
    fx.direct(&["set-cap", ID, &fx.outside("capped")])
        .assert_ok();
    fx.sluice(&[], &["set-cap", ID, &fx.ws("capped")])
        .assert_blocked()
        .assert_says("EPERM");
}

/// Run by an unprivileged user, a set-user-ID file would carry that user's
/// identity to whoever runs it: refused the same way. (Creating with a
/// set-ID mode and then writing already loses the bit for such a user.)
#[test]
fn an_unprivileged_session_cannot_set_set_id_bits_either() {
    let fx = fixture_for_nobody();
    let probe = fx.probe_path();
    let sluice = sluice_bin();
    let ws = fx.ws("");
    for way in CHMOD_WAYS {
        let control = fx.outside(way);
        as_nobody(&fx, &[&probe, "set-id", way, ID, &control]).assert_ok();

        let attack = fx.ws(way);
        let argv = [
            sluice.to_str().unwrap(),
            "run",
            "--workspace",
            &ws,
            "--",
            &probe,
            "set-id",
            way,
            ID,
            &attack,
        ];
        as_nobody(&fx, &argv).assert_blocked();
        assert_eq!(set_id_bits(&attack), 0, "{way}");
    }
}

/// `ld.so FILE` maps FILE's code with `mmap(PROT_EXEC)`, which Landlock does
/// not check: a writable tree the policy does not make executable is
/// mounted noexec in the sandbox's view, so the mapping fails.
#[test]
fn the_loader_runs_nothing_from_a_writable_tree_that_is_not_executable() {
    let fx = Fixture::new(PROBE);
    let probe = fx.probe_path();
    let trick = format!("cp \"$1\" \"$TMPDIR/x\" && exec {LOADER} \"$TMPDIR/x\" marker ran");
    let loader_runs = |policy: &str| {
        let out =
            execute(fx.sluice_command(&["--policy", policy], &["sh", "-c", &trick, "sh", &probe]));
        (out.stdout.contains("OK marker ran"), out)
    };
    // Control: default makes $TMPDIR executable, and the loader runs the copy.
    let (ran, out) = loader_runs("default");
    assert!(ran, "control: the loader did not run the copy\n{out}");
    // readonly: $TMPDIR is writable but not executable.
    let (ran, out) = loader_runs("readonly");
    assert!(!ran, "the loader ran a file from a noexec tree\n{out}");
    assert_ne!(out.code(), 0, "{out}");

    let copy_then_map = |policy: &str| {
        let script = "cp \"$1\" \"$TMPDIR/x\" && exec \"$1\" mmap-exec \"$TMPDIR/x\"";
        execute(fx.sluice_command(&["--policy", policy], &["sh", "-c", script, "sh", &probe]))
    };
    copy_then_map("default").assert_ok();
    copy_then_map("readonly")
        .assert_blocked()
        .assert_says("EPERM");
    // The executable workspace is mapped as before.
    fx.sluice(&["--policy", "readonly"], &["mmap-exec", &probe])
        .assert_ok();
}

/// An `execute` tree inside a writable tree that is not executable stays
/// executable (the probe itself runs from it); the rest of the writable
/// tree maps nothing executable.
#[test]
fn an_executable_tree_inside_a_noexec_writable_tree_stays_executable() {
    let fx = Fixture::new(PROBE);
    let policy = fx.write_policy(
        "bin-only.toml",
        "[filesystem]\n\
         execute = [\"/usr\", \"/bin\", { path = \"/lib\", optional = true },\n\
         { path = \"/lib64\", optional = true }, \"$WORKSPACE/bin\"]\n\
         write = [\"$WORKSPACE\", \"/dev/null\"]\n",
    );
    let readme = fx.ws("README.md");
    fx.direct(&["mmap-exec", &readme]).assert_ok();
    fx.sluice(&["--policy", &policy], &["mmap-exec", &readme])
        .assert_blocked()
        .assert_says("EPERM");
    fx.sluice(&["--policy", &policy], &["mmap-exec", &fx.probe_path()])
        .assert_ok();
    fx.sluice(&["--policy", &policy], &["write", &fx.ws("new.txt")])
        .assert_ok();
}

/// The README's own example: `--policy ./agent.toml` with the policy in the
/// workspace, extending a file beside it. Inside, neither can be written,
/// replaced, renamed away (nor the directory holding them), or written
/// through the broker, which serves the workspace for writing.
#[test]
fn the_policy_files_of_a_session_are_read_only_from_inside() {
    let fx = Fixture::new(PROBE);
    fs::create_dir_all(fx.ws("conf")).unwrap();
    fs::write(fx.ws("conf/base.toml"), "extends = [\"default\"]\n").unwrap();
    fs::write(fx.ws("conf/agent.toml"), "extends = [\"base.toml\"]\n").unwrap();
    let policy = fx.ws("conf/agent.toml");
    let args = ["--policy", policy.as_str()];

    // Control: a file beside them is written, directly and through the broker.
    fx.sluice(&args, &["write", &fx.ws("conf/other.toml")])
        .assert_ok();
    fx.sluice(&args, &["broker-write", &fx.ws("conf/other.toml"), "x"])
        .assert_ok();
    for file in ["conf/agent.toml", "conf/base.toml"] {
        let path = fx.ws(file);
        fx.sluice(&args, &["append", &path]).assert_blocked();
        fx.sluice(&args, &["write", &path]).assert_blocked();
        fx.sluice(&args, &["unlink", &path]).assert_blocked();
        fx.sluice(&args, &["rename", &fx.ws("conf/other.toml"), &path])
            .assert_blocked();
        fx.sluice(&args, &["broker-write", &path, "x"])
            .assert_blocked();
    }
    fx.sluice(&args, &["rename", &fx.ws("conf"), &fx.ws("moved")])
        .assert_blocked();
    assert_eq!(
        fs::read_to_string(fx.ws("conf/agent.toml")).unwrap(),
        "extends = [\"base.toml\"]\n"
    );
    assert_eq!(
        fs::read_to_string(fx.ws("conf/base.toml")).unwrap(),
        "extends = [\"default\"]\n"
    );
}

/// What the view cannot hold: another session, whose policy makes the
/// workspace writable, rewrites the policy file. The next session that uses
/// it refuses to start until the person accepts the change; a policy file
/// no sandbox could write (outside every writable tree) is not pinned.
#[test]
fn a_policy_file_a_sandbox_could_write_is_refused_when_changed_until_accepted() {
    let fx = Fixture::new(PROBE);
    let policy = fx.ws("agent.toml");
    fs::write(&policy, "extends = [\"default\"]\n").unwrap();
    let bashrc = fx.home(".bashrc");
    let args = ["--policy", policy.as_str()];
    // The first session pins the file; its program cannot write the home.
    fx.sluice(&args, &["write", &bashrc]).assert_blocked();

    // A session under another policy rewrites it: the home becomes writable.
    let widen = format!("printf '[filesystem]\\nwrite = [\"%s\"]\\n' \"$HOME\" >> {policy}");
    let out = execute(fx.sluice_command(&[], &["sh", "-c", &widen]));
    assert_eq!(out.code(), 0, "{out}");
    assert!(fs::read_to_string(&policy).unwrap().contains("write"));

    let out = fx.sluice(&args, &["write", &bashrc]);
    assert_eq!(out.code(), 125, "the changed policy was used\n{out}");
    assert!(out.stderr.contains("--accept-policy-change"), "{out}");
    assert!(out.stderr.contains(&policy), "{out}");
    assert!(!Path::new(&bashrc).exists());

    // The person reads it and accepts: it runs, and is pinned anew.
    let accepted = ["--policy", policy.as_str(), "--accept-policy-change"];
    fx.sluice(&accepted, &["read", &fx.ws("README.md")])
        .assert_ok();
    fx.sluice(&args, &["read", &fx.ws("README.md")]).assert_ok();

    // Control: a policy outside every writable tree may change freely.
    let outside = fx.write_policy("outside.toml", "extends = [\"default\"]\n");
    let args = ["--policy", outside.as_str()];
    fx.sluice(&args, &["read", &fx.ws("README.md")]).assert_ok();
    fs::write(&outside, "extends = [\"readonly\"]\n").unwrap();
    fx.sluice(&args, &["read", &fx.ws("README.md")]).assert_ok();
}

/// An `approvals.toml` planted by a sandbox in a directory a later run's
/// `XDG_CONFIG_HOME` points to answers no question: it is ignored with a
/// warning naming why. Control: the same answers in sluice's own
/// configuration directory are used.
#[test]
fn a_planted_approvals_overlay_answers_nothing() {
    let fx = Fixture::new(PROBE);
    let secret = fx.outside("secret.txt");
    let overlay = format!("[broker]\nallow = [\"{secret}\"]\n");

    // Without an overlay the question is refused (no terminal, --approve deny).
    fx.sluice(&[], &["broker-read", &secret]).assert_blocked();

    // A session plants one in its workspace.
    let planted_home = fx.ws(".config");
    let plant = format!(
        "mkdir -p {planted_home}/sluice && printf '%s' '{overlay}' > {planted_home}/sluice/approvals.toml"
    );
    let out = execute(fx.sluice_command(&[], &["sh", "-c", &plant]));
    assert_eq!(out.code(), 0, "{out}");

    for policy in ["default", "readonly"] {
        let mut cmd = fx.sluice_command(
            &["--policy", policy],
            &[&fx.probe_path(), "broker-read", &secret],
        );
        cmd.env("XDG_CONFIG_HOME", &planted_home);
        let out = execute(cmd);
        out.assert_blocked();
        assert!(
            out.stderr.contains("ignoring the approvals overlay"),
            "{policy}: {out}"
        );
    }

    // Control: the person's own overlay answers.
    fs::create_dir_all(fx.config_dir()).unwrap();
    fs::set_permissions(fx.config_dir(), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(fx.config_dir().join("approvals.toml"), &overlay).unwrap();
    fs::set_permissions(
        fx.config_dir().join("approvals.toml"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = fx.sluice(&[], &["broker-read", &secret]);
    out.assert_ok();
    assert!(
        !out.stderr.contains("ignoring the approvals overlay"),
        "{out}"
    );
}

/// The same loader trick in a session run by an unprivileged user (the
/// mounts are made in a user namespace it owns): held, and the control runs.
#[test]
fn the_loader_runs_nothing_from_a_noexec_tree_in_an_unprivileged_session() {
    let fx = fixture_for_nobody();
    let probe = fx.probe_path();
    let sluice = sluice_bin();
    let ws = fx.ws("");
    let trick = format!("cp \"$1\" \"$TMPDIR/x\" && exec {LOADER} \"$TMPDIR/x\" marker ran");
    let run = |policy: &str| {
        as_nobody(
            &fx,
            &[
                sluice.to_str().unwrap(),
                "run",
                "--workspace",
                &ws,
                "--policy",
                policy,
                "--",
                "sh",
                "-c",
                &trick,
                "sh",
                &probe,
            ],
        )
    };
    let out = run("default");
    assert!(out.stdout.contains("OK marker ran"), "control\n{out}");
    let out = run("readonly");
    assert!(!out.stdout.contains("OK marker ran"), "{out}");
    assert_ne!(out.code(), 0, "{out}");
}

/// The same file asked of the broker: what it serves for reading comes from
/// its read-only copy of the mount tree, which is noexec too, so
/// `ld.so /proc/self/fd/N` runs nothing from a noexec tree either.
#[test]
fn a_descriptor_the_broker_serves_maps_nothing_executable() {
    let fx = Fixture::new(PROBE);
    let probe = fx.probe_path();
    let ask = |action: &str| {
        let script = format!("cp \"$1\" \"$TMPDIR/x\" && exec \"$1\" {action} \"$TMPDIR/x\"");
        execute(fx.sluice_command(
            &["--policy", "readonly"],
            &["sh", "-c", &script, "sh", &probe],
        ))
    };
    // Controls: the broker serves the copy, and mapping a file of an
    // executable tree works.
    ask("broker-read").assert_ok();
    fx.sluice(&["--policy", "readonly"], &["mmap-exec", &probe])
        .assert_ok();
    ask("broker-mmap-exec")
        .assert_blocked()
        .assert_says("EPERM");
}

/// A symlink in the workspace naming a policy kept outside it: no mount can
/// stop the link being pointed elsewhere, so the pin is keyed by the path the
/// person named and holds what was read through it. Another session points
/// the link at a policy of its own; the next run refuses it.
#[test]
fn a_policy_symlink_pointed_elsewhere_is_refused() {
    let fx = Fixture::new(PROBE);
    let real = fx.write_policy("real.toml", "extends = [\"default\"]\n");
    let link = fx.ws("agent.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    fs::write(
        fx.ws("evil.toml"),
        format!(
            "extends = [\"default\"]\n[filesystem]\nwrite = [\"{}\"]\n",
            fx.home("")
        ),
    )
    .unwrap();
    let bashrc = fx.home(".bashrc");
    let args = ["--policy", link.as_str()];
    fx.sluice(&args, &["write", &bashrc]).assert_blocked();

    let retarget = format!("ln -sfn {} {link}", fx.ws("evil.toml"));
    let out = execute(fx.sluice_command(&[], &["sh", "-c", &retarget]));
    assert_eq!(out.code(), 0, "{out}");

    let out = fx.sluice(&args, &["write", &bashrc]);
    assert_eq!(out.code(), 125, "the retargeted policy was used\n{out}");
    assert!(out.stderr.contains("--accept-policy-change"), "{out}");
    assert!(!Path::new(&bashrc).exists());
}
