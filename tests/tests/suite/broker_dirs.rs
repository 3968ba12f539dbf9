//! Directories the broker serves (issue 13, section 1): a served directory
//! descriptor reaches beneath it, and above it, only what the sandbox itself
//! sees there, by `openat`, an `O_PATH` descriptor reopened, `execveat` or
//! `fchdir` and `..`; as root, as an unprivileged user and stacked. The
//! broker's fixture and controls are those of `broker.rs`.

use std::fs;

use sluice_tests::{execute, Fixture};

use super::broker::fixture;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

#[test]
fn a_served_directory_gives_no_access_beneath_it() {
    let (fx, policy) = fixture();
    // Control: the probe's own workspace, served as a directory, opens
    // beneath it (the sandbox may read it anyway).
    fx.brokered_run(&policy, &[], &["broker-openat", &fx.ws(""), "README.md"])
        .assert_ok();
    // The allowed directory is outside the sandbox's view (the policy-built
    // root holds only the policy's trees): it is not served as a directory,
    // and the reason says how to get its files. Its files are served.
    fx.brokered_run(
        &policy,
        &[],
        &["broker-openat", &fx.brokered("allowed"), "notes.txt"],
    )
    .assert_blocked()
    .assert_says("ask for each file beneath it");
    fx.brokered_run(
        &policy,
        &[],
        &["broker-read", &fx.brokered("allowed/notes.txt")],
    )
    .assert_ok();
    // Under --transparent the host's tree is in view: the directory is
    // served, but what is under it is still the sandbox's own open (or a
    // brokered one, judged file by file).
    let transparent = ["--transparent"];
    fx.brokered_run(
        &policy,
        &transparent,
        &["broker-openat", &fx.brokered("allowed"), "notes.txt"],
    )
    .assert_ok();
    for (dir, rel) in [
        ("allowed", "../denied/secret.txt"),
        ("denied", "secret.txt"),
    ] {
        for args in [&[][..], &transparent] {
            fx.brokered_run(&policy, args, &["broker-openat", &fx.brokered(dir), rel])
                .assert_blocked();
        }
    }
}

/// The ways of running the program: plain, and with its own open calls
/// brokered.
const MODES: [&[&str]; 2] = [&[], &["--transparent"]];

/// `dir-beneath VIA DIR REST...`: a descriptor of DIR (from the broker, or
/// by `open`), then used as `REST` says (see the probe's `beneath.rs`).
fn dir_beneath<'a>(via: &'a str, dir: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut action = vec!["dir-beneath", via, dir];
    action.extend_from_slice(rest);
    action
}

/// Issue 13, section 1: a served directory reaches beneath it only what the
/// sandbox itself sees there. The workspace (served without a question)
/// holds `.env` files that the sandbox sees as deny placeholders; opened
/// beneath the served descriptor, by `openat`, by an `O_PATH` descriptor
/// reopened, or run by `execveat`, they stay placeholders.
#[test]
fn a_served_directory_reaches_beneath_it_only_what_the_sandbox_sees() {
    let fx = Fixture::new(PROBE);
    sluice_tests::install_script(
        &fx.ws_dir.join(".env.run"),
        "#!/bin/sh\necho OK ran SECRET-env-run\n",
    );
    let ws = fx.ws("");
    // Controls outside sluice: the same calls on a descriptor of the same
    // directory reach the secrets, so the attacks below would leak them.
    for rest in [&["openat", ".env"][..], &["opath", ".env.local"]] {
        let out = fx.direct(&dir_beneath("open", &ws, rest));
        out.assert_ok();
        assert!(out.stdout.contains("SECRET-dotenv"), "{out}");
    }
    fx.direct(&dir_beneath("open", &ws, &["execveat", ".env.run"]))
        .assert_ok()
        .assert_says("ran SECRET-env-run");
    for mode in MODES {
        // Controls: what the sandbox sees beneath the served workspace is
        // reached every way.
        fx.sluice(mode, &dir_beneath("broker", &ws, &["openat", "README.md"]))
            .assert_ok()
            .assert_says("hello from the workspace");
        fx.sluice(mode, &dir_beneath("broker", &ws, &["opath", "src/main.rs"]))
            .assert_ok()
            .assert_says("fn main");
        let exec = ["execveat", "bin/sluice-probe", "marker", "beneath"];
        fx.sluice(mode, &dir_beneath("broker", &ws, &exec))
            .assert_ok()
            .assert_says("marker beneath");
        for rest in [
            &["openat", ".env"][..],
            &["openat", ".env.local"],
            &["opath", ".env"],
            &["opath", ".env.local"],
            &["execveat", ".env.run"],
            &["opath", ".env.run"],
        ] {
            fx.sluice(mode, &dir_beneath("broker", &ws, rest))
                .assert_blocked();
        }
    }
}

/// A root-run session with `/etc` approved as a directory: `/etc/shadow`
/// beneath it is the sandbox's deny placeholder, as when the sandbox opens
/// it itself. (Run by another user, shadow is unreadable either way.)
#[test]
fn a_served_etc_keeps_its_secrets_from_a_root_session() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test checks what a session run by root reads"
    );
    let fx = Fixture::new(PROBE);
    // Control outside sluice: root reads shadow through a descriptor of /etc.
    fx.direct(&dir_beneath("open", "/etc", &["openat", "shadow"]))
        .assert_ok();
    for mode in MODES {
        let mut args = vec!["--approve", "allow"];
        args.extend_from_slice(mode);
        fx.sluice(&args, &dir_beneath("broker", "/etc", &["openat", "passwd"]))
            .assert_ok()
            .assert_says("root:");
        for rest in [
            &["openat", "shadow"][..],
            &["opath", "shadow"],
            &["openat", "gshadow"],
        ] {
            let out = fx.sluice(&args, &dir_beneath("broker", "/etc", rest));
            out.assert_blocked();
            assert!(!out.stdout.contains("root:"), "{out}");
        }
    }
}

/// A served home directory. Where the policy lets the sandbox read the home
/// (`--allow-read ~`), the sandbox sees `~/.ssh` and sluice's audit
/// directory (in its default place under the home) as deny placeholders,
/// and so does a descriptor of the home from the broker. Where it does not,
/// the home is not in the policy-built root: it is refused, with a reason
/// saying how to get its files; under `--transparent` (the host's tree in
/// view) it is served, and Landlock keeps what is beneath it.
#[test]
fn a_served_home_reaches_neither_the_keys_nor_the_audit_record() {
    let fx = Fixture::new(PROBE);
    let state = fx.home_dir.join(".local/state");
    let home = fx.home("");
    let run = |args: &[&str], action: &[&str]| {
        let mut program = vec![fx.probe.to_str().unwrap()];
        program.extend_from_slice(action);
        let mut cmd = fx.sluice_command(args, &program);
        cmd.env("XDG_STATE_HOME", &state);
        execute(cmd)
    };
    let audit = ".local/state/sluice/audit/{session}.jsonl";
    run(
        &["--approve", "allow"],
        &dir_beneath("broker", &home, &["openat", "notes.txt"]),
    )
    .assert_blocked()
    .assert_says("ask for each file beneath it");
    // A query gets the answer an open would.
    run(&[], &["broker-query", &home, "read"])
        .assert_blocked()
        .assert_says("ask for each file beneath it");
    run(&[], &["broker-query", &fx.home("notes.txt"), "read"])
        .assert_ok()
        .assert_says("would-ask");
    // Control outside sluice: the same descriptor reaches the key and an
    // audit record.
    // A session's record, not the ledger beside it (directory order is
    // the file system's).
    let record = fs::read_dir(state.join("sluice/audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().is_some_and(|n| n != "sessions.ledger"))
        .expect("an audit record");
    let record = record.strip_prefix(&fx.home_dir).unwrap().to_str().unwrap();
    fx.direct(&dir_beneath("open", &home, &["opath", ".ssh/id_rsa"]))
        .assert_ok();
    fx.direct(&dir_beneath("open", &home, &["openat", record]))
        .assert_ok()
        .assert_says("policy_digest");
    let allow_home = ["--approve", "allow", "--allow-read", &home];
    let transparent = ["--approve", "allow", "--transparent"];
    let allow_home_transparent = ["--approve", "allow", "--allow-read", &home, "--transparent"];
    for args in [&allow_home[..], &transparent, &allow_home_transparent] {
        // Control: the home served, a file beneath it is read (the
        // sandbox's own, or brokered).
        run(
            args,
            &dir_beneath("broker", &home, &["openat", "notes.txt"]),
        )
        .assert_ok()
        .assert_says("home-notes");
        for rest in [
            &["openat", ".ssh/id_rsa"][..],
            &["opath", ".ssh/id_rsa"],
            &["openat", audit],
            &["opath", audit],
            &["opath", record],
        ] {
            let out = run(args, &dir_beneath("broker", &home, rest));
            out.assert_blocked();
            assert!(!out.stdout.contains("policy_digest"), "{args:?}\n{out}");
        }
    }
}

/// `fchdir` to a served directory, then `..`: the climb stops at the
/// program's own root, so a relative `connect` reaches no socket outside
/// the policy (a `docker.sock` of the host would be root).
#[test]
fn a_served_directory_cannot_be_climbed_out_of() {
    let fx = Fixture::new(PROBE);
    let outside = fx.outside_dir.join("docker.sock");
    let _outside = std::os::unix::net::UnixListener::bind(&outside).unwrap();
    let inside = fx.ws_dir.join("inside.sock");
    let _inside = std::os::unix::net::UnixListener::bind(&inside).unwrap();
    let from_root = outside.to_str().unwrap().trim_start_matches('/');
    let secret = fx.outside("secret.txt");
    let secret_from_root = secret.trim_start_matches('/');
    let ws = fx.ws("");
    // Controls outside sluice: the climb reaches the socket and the file.
    for rest in [
        &["climb-connect", "1", "outside/docker.sock"][..],
        &["climb-connect", "64", from_root],
        &["climb-read", "64", secret_from_root],
    ] {
        fx.direct(&dir_beneath("open", &ws, rest)).assert_ok();
    }
    for mode in MODES {
        // Control: a socket the sandbox reaches, relative to the served
        // directory.
        fx.sluice(
            mode,
            &dir_beneath("broker", &ws, &["climb-connect", "0", "inside.sock"]),
        )
        .assert_ok();
        for rest in [
            &["climb-connect", "1", "outside/docker.sock"][..],
            &["climb-connect", "64", from_root],
            &["climb-read", "64", secret_from_root],
        ] {
            fx.sluice(mode, &dir_beneath("broker", &ws, rest))
                .assert_blocked();
        }
    }
}

/// The served-directory attacks above, run by an unprivileged user
/// (nobody): the view is built and handed over without privileges, in a
/// user namespace of the session's own, and holds the same way.
#[test]
fn a_served_directory_reaches_only_what_the_sandbox_sees_for_an_unprivileged_user() {
    use std::os::unix::fs::PermissionsExt;
    const NOBODY: u32 = 65534;
    let fx = Fixture::new(PROBE);
    let tmp = fx.root().join("tmp");
    fs::create_dir(&tmp).unwrap();
    std::os::unix::fs::chown(&tmp, Some(NOBODY), Some(NOBODY)).unwrap();
    fx.give_to(NOBODY, NOBODY);
    let outside = fx.outside_dir.join("docker.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&outside).unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o777)).unwrap();
    let sluice = sluice_tests::sluice_bin();
    let (ws, home) = (fx.ws(""), fx.home(""));
    let as_nobody = |sluice_args: Option<&[&str]>, action: &[&str]| {
        let mut cmd = sluice_tests::setpriv_nobody();
        if let Some(args) = sluice_args {
            cmd.arg(&sluice)
                .args(["run", "--workspace", &ws])
                .args(args)
                .arg("--");
        }
        cmd.arg(&fx.probe)
            .args(action)
            .current_dir(&fx.ws_dir)
            .env("HOME", &fx.home_dir)
            .env("TMPDIR", &tmp)
            .env("XDG_STATE_HOME", fx.home_dir.join(".local/state"))
            .env("XDG_CONFIG_HOME", fx.home_dir.join(".config"))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        execute(cmd)
    };
    let attacks: [(&str, &[&str]); 4] = [
        (&ws, &["openat", ".env"]),
        (&ws, &["opath", ".env.local"]),
        (&ws, &["climb-connect", "1", "outside/docker.sock"]),
        (&home, &["opath", ".ssh/id_rsa"]),
    ];
    // Controls outside sluice, as nobody.
    for (dir, rest) in attacks {
        as_nobody(None, &dir_beneath("open", dir, rest)).assert_ok();
    }
    let allow_home = ["--approve", "allow", "--allow-read", home.as_str()];
    for mode in MODES {
        let mut args = allow_home.to_vec();
        args.extend_from_slice(mode);
        // Controls: what the sandbox sees beneath the served directories.
        as_nobody(
            Some(&args),
            &dir_beneath("broker", &ws, &["openat", "README.md"]),
        )
        .assert_ok();
        as_nobody(
            Some(&args),
            &dir_beneath("broker", &home, &["openat", "notes.txt"]),
        )
        .assert_ok();
        for (dir, rest) in attacks {
            as_nobody(Some(&args), &dir_beneath("broker", dir, rest)).assert_blocked();
        }
    }
}

/// Stacked: the inner sluice can build no view of its own (the outer
/// sandbox refuses mounts), so its child's root is the outer sandbox's
/// view, and a directory the inner broker serves reaches beneath and above
/// it only what the outer sandbox sees. (Before directories were served
/// from the child's root this held too: the inner supervisor has no other
/// view; the test keeps it so.)
#[test]
fn a_directory_served_by_a_stacked_sluice_reaches_only_the_outer_view() {
    let fx = Fixture::new(PROBE);
    let outside = fx.outside_dir.join("docker.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&outside).unwrap();
    let (ws, probe) = (fx.ws(""), fx.probe_path());
    let stacked = |rest: &str| {
        let script = format!(
            "\"$SLUICE_BIN\" run --workspace {ws} -- {probe} dir-beneath broker {ws} {rest}"
        );
        execute(fx.sluice_command(&[], &["/bin/sh", "-c", &script]))
    };
    stacked("openat README.md").assert_ok();
    stacked("opath .env").assert_blocked();
    stacked("climb-connect 1 outside/docker.sock").assert_blocked();
}
