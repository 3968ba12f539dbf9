//! File-system escapes under the built-in `default` policy: reads and writes
//! outside the policy, the home directory's secrets, and deny-within-allow
//! (`.env` denied, `.git/hooks` and `.git/config` read-only inside the writable
//! workspace) against symlink, hardlink, rename and recreate tricks.
//!
//! Each test runs its control first (the same action without sluice, or on an
//! allowed path inside sluice), then the attack, then checks from outside that
//! nothing protected changed.

use std::fs;
use std::path::Path;

use sluice_tests::{argv, assert_held, install_executable, strs, Fixture, DOTENV, OUTSIDE_SECRET};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

#[test]
fn reading_outside_the_policy_is_blocked() {
    let fx = Fixture::new(PROBE);
    fx.direct(&["read", &fx.outside("secret.txt")]).assert_ok();
    fx.direct(&["ls", &fx.outside("")]).assert_ok();
    fx.sluice(&[], &["read", &fx.ws("README.md")]).assert_ok();

    fx.sluice(&[], &["read", &fx.outside("secret.txt")])
        .assert_blocked();
    fx.sluice(&[], &["ls", &fx.outside("")]).assert_blocked();
    fx.sluice(&[], &["read-via-opath", &fx.outside("secret.txt")])
        .assert_blocked();
}

#[test]
fn writing_outside_the_policy_is_blocked() {
    let fx = Fixture::new(PROBE);
    fx.direct(&["write", &fx.outside("control.txt")])
        .assert_ok();
    fx.sluice(&[], &["write", &fx.ws("new.txt")]).assert_ok();
    fx.sluice(&[], &["write", "{tmpdir}/scratch"]).assert_ok();

    fx.sluice(&[], &["write", &fx.outside("pwned")])
        .assert_blocked();
    fx.sluice(&[], &["append", &fx.outside("secret.txt")])
        .assert_blocked();
    fx.sluice(&[], &["mkdir", &fx.outside("pwned-dir")])
        .assert_blocked();
    fx.sluice(&[], &["unlink", &fx.outside("secret.txt")])
        .assert_blocked();
    fx.sluice(&[], &["write", &fx.home(".bashrc")])
        .assert_blocked();

    assert!(!Path::new(&fx.outside("pwned")).exists());
    assert!(!Path::new(&fx.outside("pwned-dir")).exists());
    assert!(!Path::new(&fx.home(".bashrc")).exists());
    assert_eq!(
        fs::read_to_string(fx.outside("secret.txt")).unwrap(),
        OUTSIDE_SECRET
    );
}

#[test]
fn system_directories_are_read_only() {
    let fx = Fixture::new(PROBE);
    // Control: the probe can write (see above) and the system is readable.
    fx.sluice(&[], &["read", "/etc/passwd"]).assert_ok();
    fx.sluice(&[], &["ls", "/usr"]).assert_ok();

    let name = format!("sluice-test-pwned-{}", std::process::id());
    for dir in ["/etc", "/usr", "/usr/bin"] {
        let target = format!("{dir}/{name}");
        fx.sluice(&[], &["write", &target]).assert_blocked();
        assert!(!Path::new(&target).exists(), "{target} was created");
    }
    fx.sluice(&[], &["append", "/etc/passwd"]).assert_blocked();
}

#[test]
fn home_directory_secrets_are_unreadable() {
    let fx = Fixture::new(PROBE);
    let secrets = [
        ".ssh/id_rsa",
        ".aws/credentials",
        ".bash_history",
        ".gnupg/private-keys-v1.d/key",
        "notes.txt",
    ];
    for rel in secrets {
        fx.direct(&["read", &fx.home(rel)]).assert_ok();
    }
    fx.direct(&["ls", &fx.home(".ssh")]).assert_ok();

    for rel in secrets {
        fx.sluice(&[], &["read", &fx.home(rel)]).assert_blocked();
    }
    fx.sluice(&[], &["read-via-opath", &fx.home(".ssh/id_rsa")])
        .assert_blocked();
    fx.sluice(&[], &["ls", &fx.home("")]).assert_blocked();
    fx.sluice(&[], &["ls", &fx.home(".ssh")]).assert_blocked();
}

#[test]
fn dotenv_files_are_unreadable_and_unwritable() {
    let fx = Fixture::new(PROBE);
    fx.direct(&["read", &fx.ws(".env")]).assert_ok();
    fx.direct(&["read", &fx.ws(".env.local")]).assert_ok();
    fx.sluice(&[], &["ls", &fx.ws("")]).assert_ok();

    let before = fx.snapshot();
    for rel in [".env", ".env.local"] {
        fx.sluice(&[], &["read", &fx.ws(rel)]).assert_blocked();
        fx.sluice(&[], &["read-via-opath", &fx.ws(rel)])
            .assert_blocked();
        fx.sluice(&[], &["write", &fx.ws(rel)]).assert_blocked();
        fx.sluice(&[], &["append", &fx.ws(rel)]).assert_blocked();
    }
    fx.assert_unchanged(&before);
}

#[test]
fn git_hooks_and_config_are_read_only() {
    let fx = Fixture::new(PROBE);
    fx.sluice(&[], &["read", &fx.ws(".git/config")]).assert_ok();
    fx.sluice(&[], &["read", &fx.ws(".git/hooks/pre-commit")])
        .assert_ok();
    fx.sluice(&[], &["ls", &fx.ws(".git/hooks")]).assert_ok();
    // The rest of .git stays writable.
    fx.sluice(&[], &["write", &fx.ws(".git/HEAD")]).assert_ok();

    let before = fx.snapshot();
    let attacks = [
        argv!["write", fx.ws(".git/hooks/pre-commit")],
        argv!["append", fx.ws(".git/hooks/pre-commit")],
        argv!["write", fx.ws(".git/hooks/post-checkout")],
        argv!["mkdir", fx.ws(".git/hooks/sub")],
        argv!["unlink", fx.ws(".git/hooks/pre-commit")],
        argv![
            "symlink",
            fx.ws("README.md"),
            fx.ws(".git/hooks/post-merge")
        ],
        argv!["write", fx.ws(".git/config")],
        argv!["append", fx.ws(".git/config")],
        argv!["unlink", fx.ws(".git/config")],
    ];
    for attack in &attacks {
        // Control on a fresh fixture: each attack works without sluice.
        let control = Fixture::new(PROBE);
        let control_attack: Vec<String> =
            attack.iter().map(|a| retarget(a, &fx, &control)).collect();
        let control_before = control.snapshot();
        control.direct(&strs(&control_attack)).assert_ok();
        control.assert_changed(&control_before);

        fx.sluice(&[], &strs(attack)).assert_blocked();
        fx.assert_unchanged(&before);
    }
}

/// A read-only path absent at launch has no mount to guard it: the program
/// can create it (`.git/hooks` where the workspace is not yet a repository).
/// When the session ends sluice moves it aside, says so and records it, so
/// the person's next git command outside never runs those hooks. Controls:
/// the program did create them (the gap is real while it runs), and the
/// rest of what it made in `.git` stays.
#[test]
fn read_only_paths_absent_at_launch_that_the_program_creates_are_moved_aside() {
    use sluice_tests::audit::{only_session, records};
    let fx = Fixture::new(PROBE);
    fs::remove_dir_all(fx.ws(".git")).unwrap();
    // Under `default` the guard refuses these writes as they happen
    // (`escape_later`); this is the second layer, so a policy without
    // `[filesystem] protect`.
    let policy = fx.write_policy(
        "no-protect.toml",
        "[filesystem]\n\
         execute = [\"/usr\", \"/bin\", { path = \"/lib\", optional = true }, \
                    { path = \"/lib64\", optional = true }, \"$WORKSPACE\"]\n\
         read = [\"/etc\", \"/proc\"]\n\
         write = [\"$WORKSPACE\", \"$TMPDIR\", \"/dev/null\"]\n\
         read_only = [\"$WORKSPACE/.git/hooks\", \"$WORKSPACE/.git/config\"]\n",
    );
    let script = "mkdir -p .git/hooks .git/info && echo evil > .git/hooks/pre-commit \
                  && echo '[core]' > .git/config && echo x > .git/info/exclude \
                  && test -f .git/hooks/pre-commit && echo made";
    let out = sluice_tests::execute(
        fx.sluice_command(&["--policy", &policy], &["/bin/sh", "-c", script]),
    );
    assert_eq!((out.code(), out.stdout.as_str()), (0, "made\n"), "{out}");
    let session = only_session(&fx);
    let aside = |rel: &str| fx.ws(&format!("{rel}.sluice-quarantine-{session}"));
    for rel in [".git/hooks", ".git/config"] {
        assert!(!Path::new(&fx.ws(rel)).exists(), "{rel} stayed\n{out}");
        assert!(Path::new(&aside(rel)).exists(), "{rel} is not aside\n{out}");
        assert!(
            out.stderr.contains(&format!("moved to {}", aside(rel))),
            "{out}"
        );
    }
    let hook = fs::read_to_string(format!("{}/pre-commit", aside(".git/hooks"))).unwrap();
    assert_eq!(hook, "evil\n");
    assert_eq!(
        fs::read_to_string(fx.ws(".git/info/exclude")).unwrap(),
        "x\n"
    );
    let all = records(&fx, &session);
    let end = all.last().unwrap();
    assert_eq!(end["kind"], "end", "{end}");
    let listed: Vec<&str> = end["quarantined"]
        .as_array()
        .unwrap_or_else(|| panic!("{end}"))
        .iter()
        .map(|q| q["path"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [fx.ws(".git/hooks"), fx.ws(".git/config")], "{end}");
    let shown = sluice_tests::audit::audit(&fx, &["show", &session]);
    let line = format!(
        "quarantined {} -> {}",
        fx.ws(".git/hooks"),
        aside(".git/hooks")
    );
    assert!(shown.stdout.contains(&line), "{shown}");
}

/// Rewrites a path of fixture `from` into the same path of fixture `to`.
fn retarget(arg: &str, from: &Fixture, to: &Fixture) -> String {
    arg.replace(
        &*from.root().to_string_lossy(),
        &to.root().to_string_lossy(),
    )
}

#[test]
fn symlinks_into_denied_paths_are_blocked() {
    let fx = Fixture::new(PROBE);
    let control = Fixture::new(PROBE);
    control
        .direct(&[
            "read-via-symlink",
            &control.home(".ssh/id_rsa"),
            &control.ws("key-link"),
        ])
        .assert_ok();
    control
        .direct(&[
            "read-via-symlink",
            &control.ws(".env"),
            &control.ws("env-link"),
        ])
        .assert_ok();
    fx.sluice(
        &[],
        &[
            "read-via-symlink",
            &fx.ws("README.md"),
            &fx.ws("readme-link"),
        ],
    )
    .assert_ok();

    let before = fx.snapshot();
    fx.sluice(
        &[],
        &[
            "read-via-symlink",
            &fx.home(".ssh/id_rsa"),
            &fx.ws("key-link"),
        ],
    )
    .assert_blocked();
    fx.sluice(
        &[],
        &["read-via-symlink", &fx.ws(".env"), &fx.ws("env-link")],
    )
    .assert_blocked();
    fx.sluice(
        &[],
        &[
            "read-via-symlink",
            &fx.outside("secret.txt"),
            &fx.ws("out-link"),
        ],
    )
    .assert_blocked();
    fx.sluice(
        &[],
        &[
            "write-via-symlink",
            &fx.ws(".git/hooks/pre-commit"),
            &fx.ws("hook-link"),
        ],
    )
    .assert_blocked();
    fx.sluice(
        &[],
        &["write-via-symlink", &fx.home(".bashrc"), &fx.ws("rc-link")],
    )
    .assert_blocked();
    fx.assert_unchanged(&before);
    assert!(!Path::new(&fx.home(".bashrc")).exists());
}

#[test]
fn hardlinks_to_denied_paths_are_blocked() {
    let fx = Fixture::new(PROBE);
    // Home and workspace share a file system, so EXDEV is the sandbox's doing.
    let control = Fixture::new(PROBE);
    control
        .direct(&[
            "read-via-hardlink",
            &control.home(".ssh/id_rsa"),
            &control.ws("key-hl"),
        ])
        .assert_ok();
    fx.sluice(
        &[],
        &[
            "read-via-hardlink",
            &fx.ws("README.md"),
            &fx.ws("readme-hl"),
        ],
    )
    .assert_ok();

    let before = fx.snapshot();
    fx.sluice(
        &[],
        &[
            "read-via-hardlink",
            &fx.home(".ssh/id_rsa"),
            &fx.ws("key-hl"),
        ],
    )
    .assert_blocked();
    fx.sluice(
        &[],
        &[
            "read-via-hardlink",
            &fx.outside("secret.txt"),
            &fx.ws("out-hl"),
        ],
    )
    .assert_blocked();
    fx.assert_unchanged(&before);
    assert!(!Path::new(&fx.ws("key-hl")).exists());
    assert!(!Path::new(&fx.ws("out-hl")).exists());
}

#[test]
fn renaming_secrets_into_the_workspace_is_blocked() {
    let fx = Fixture::new(PROBE);
    let control = Fixture::new(PROBE);
    control
        .direct(&[
            "rename",
            &control.home(".ssh/id_rsa"),
            &control.ws("key"),
            "+",
            "read",
            &control.ws("key"),
        ])
        .assert_ok();
    fx.sluice(&[], &["rename", &fx.ws("README.md"), &fx.ws("README.txt")])
        .assert_ok();

    let before = fx.snapshot();
    fx.sluice(
        &[],
        &[
            "rename",
            &fx.home(".ssh/id_rsa"),
            &fx.ws("key"),
            "+",
            "read",
            &fx.ws("key"),
        ],
    )
    .assert_blocked();
    fx.sluice(
        &[],
        &[
            "rename",
            &fx.outside("secret.txt"),
            &fx.ws("s"),
            "+",
            "read",
            &fx.ws("s"),
        ],
    )
    .assert_blocked();
    fx.assert_unchanged(&before);
    assert!(Path::new(&fx.outside("secret.txt")).exists());
}

// Deny-within-allow against rename and recreate: each protected name must end up
// unchanged, and stay unreadable or unwritable for the next session.

#[test]
fn hooks_dir_renamed_away_and_recreated() {
    assert_held(PROBE, &|fx| {
        vec![
            argv!["rename", fx.ws(".git/hooks"), fx.ws("old-hooks")],
            argv!["mkdir", fx.ws(".git/hooks")],
            argv!["write", fx.ws(".git/hooks/pre-commit")],
        ]
    });
}

#[test]
fn git_dir_renamed_away_and_recreated() {
    assert_held(PROBE, &|fx| {
        vec![
            argv!["rename", fx.ws(".git"), fx.ws("old-git")],
            argv!["mkdir", fx.ws(".git")],
            argv!["mkdir", fx.ws(".git/hooks")],
            argv!["write", fx.ws(".git/hooks/pre-commit")],
        ]
    });
}

#[test]
fn hook_replaced_by_rename() {
    assert_held(PROBE, &|fx| {
        vec![
            argv!["write", fx.ws("evil-hook")],
            argv!["rename", fx.ws("evil-hook"), fx.ws(".git/hooks/pre-commit")],
        ]
    });
}

#[test]
fn hook_unlinked_and_recreated() {
    assert_held(PROBE, &|fx| {
        vec![
            argv!["unlink", fx.ws(".git/hooks/pre-commit")],
            argv!["write", fx.ws(".git/hooks/pre-commit")],
        ]
    });
}

#[test]
fn hook_modified_through_a_hardlink() {
    assert_held(PROBE, &|fx| {
        vec![
            argv!["hardlink", fx.ws(".git/hooks/pre-commit"), fx.ws("hook-hl")],
            argv!["append", fx.ws("hook-hl")],
        ]
    });
}

#[test]
fn git_config_renamed_away_and_recreated() {
    assert_held(PROBE, &|fx| {
        vec![
            argv!["rename", fx.ws(".git/config"), fx.ws("old-config")],
            argv!["write", fx.ws(".git/config")],
        ]
    });
}

#[test]
fn dotenv_unlinked_and_recreated() {
    assert_held(PROBE, &|fx| {
        vec![
            argv!["unlink", fx.ws(".env")],
            argv!["write", fx.ws(".env")],
        ]
    });
}

#[test]
fn dotenv_renamed_then_read() {
    assert_held(PROBE, &|fx| {
        vec![
            argv!["rename", fx.ws(".env"), fx.ws("env.txt")],
            argv!["read", fx.ws("env.txt")],
        ]
    });
}

#[test]
fn dotenv_glob_match_renamed_then_read() {
    assert_held(PROBE, &|fx| {
        vec![
            argv!["rename", fx.ws(".env.local"), fx.ws("local.txt")],
            argv!["read", fx.ws("local.txt")],
        ]
    });
}

#[test]
fn dotenv_replaced_by_rename() {
    assert_held(PROBE, &|fx| {
        vec![
            argv!["write", fx.ws("fake-env")],
            argv!["rename", fx.ws("fake-env"), fx.ws(".env")],
        ]
    });
}

#[test]
fn dotenv_hardlinked_elsewhere_then_read() {
    // The link itself changes nothing protected, so the control's proof is the
    // secret it reads; the sandboxed run must create no link at all.
    let control = Fixture::new(PROBE);
    let out = control.direct(&[
        "read-via-hardlink",
        &control.ws(".env"),
        &control.ws("env-hl"),
    ]);
    out.assert_ok();
    assert!(out.stdout.contains("SECRET-dotenv"), "{out}");

    let fx = Fixture::new(PROBE);
    let before = fx.snapshot();
    fx.sluice(
        &[],
        &["read-via-hardlink", &fx.ws(".env"), &fx.ws("env-hl")],
    )
    .assert_blocked();
    fx.assert_unchanged(&before);
    assert!(!Path::new(&fx.ws("env-hl")).exists());
}

#[test]
fn dotenv_read_through_proc_self_root() {
    let fx = Fixture::new(PROBE);
    let via_root = format!("/proc/self/root{}", fx.ws(".env"));
    let via_cwd = "/proc/self/cwd/.env";
    fx.direct(&["read", &via_root]).assert_ok();
    fx.direct(&["read", via_cwd]).assert_ok();

    fx.sluice(&[], &["read", &via_root]).assert_blocked();
    fx.sluice(&[], &["read", via_cwd]).assert_blocked();
    assert_eq!(fs::read_to_string(fx.ws(".env")).unwrap(), DOTENV);
}

#[test]
fn executing_outside_the_policy_is_blocked() {
    let fx = Fixture::new(PROBE);
    let outside_bin = fx.outside("probe");
    let home_bin = fx.home("bin/probe");
    install_executable(Path::new(PROBE), Path::new(&outside_bin));
    install_executable(Path::new(PROBE), Path::new(&home_bin));

    fx.direct(&["exec", &outside_bin, "marker", "ran"])
        .assert_ok();
    fx.direct(&["exec", &home_bin, "marker", "ran"]).assert_ok();
    fx.sluice(&[], &["exec", &fx.probe_path(), "marker", "ran"])
        .assert_ok();
    fx.sluice(&[], &["exec", "/usr/bin/true"]).assert_code(0);

    fx.sluice(&[], &["exec", &outside_bin, "marker", "ran"])
        .assert_blocked();
    fx.sluice(&[], &["exec", &home_bin, "marker", "ran"])
        .assert_blocked();
}

/// The sandbox's root is built from the policy: outside the allowed trees
/// nothing exists, not even to `lstat` (so nothing there can be named,
/// connected to or probed for). The way to an allowed tree and the host's
/// top-level symlinks (`/bin -> usr/bin`) are there.
#[test]
fn outside_the_allowed_trees_nothing_exists() {
    let fx = Fixture::new(PROBE);
    let hidden = [
        fx.outside("secret.txt"),
        fx.outside(""),
        fx.home("notes.txt"),
        fx.home(".ssh"),
        "/var".to_owned(),
        "/boot".to_owned(),
    ];
    for path in &hidden {
        if Path::new(path).exists() {
            fx.direct(&["exists", path]).assert_ok();
            fx.sluice(&[], &["exists", path]).assert_not_found();
        }
    }
    assert!(Path::new("/var").exists(), "the host has /var");
    for path in [
        fx.ws("README.md"),
        "/usr/bin".to_owned(),
        "/bin/sh".to_owned(),
        fx.root().display().to_string(),
    ] {
        fx.sluice(&[], &["exists", &path]).assert_ok();
    }
}
