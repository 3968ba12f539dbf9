//! Red team, code the person's own tools run later: a bare repository made in
//! the workspace, the home directory's toolchains and package caches through
//! the broker, start-up files of Python and the session, and git
//! configurations the guard's check reads one way and git another. Each
//! attack with its control; `#[ignore = "escape: ..."]` marks one that still
//! works, its reason says how.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use sluice_tests::{execute, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

// ---------------------------------------------------------------------------
// Code that runs later: a bare repository made in the workspace.
// ---------------------------------------------------------------------------

/// Makes `sub` a bare git repository whose configuration gives it a work
/// tree and an fsmonitor command (touching `$1`): no `.git` anywhere, so
/// no `**/.git/...` pattern names any of it. git's discovery checks each
/// directory on the way up for being a git directory itself, so the
/// person's `git status` in `sub` (or below it; a shell prompt that shows
/// git status does it on `cd`) runs the command.
const BARE_REPOSITORY: &str = r#"set -e
mkdir -p sub/objects sub/refs/heads
echo 'ref: refs/heads/main' > sub/HEAD
printf '[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = .\n\tfsmonitor = "touch %s; false"\n' "$1" > sub/config
"#;

/// `git status` in `dir` as the person runs it: outside sluice, with the
/// fixture's home and no system configuration.
fn git_status_outside(fx: &Fixture, dir: &Path) -> Outcome {
    let mut cmd = Command::new("git");
    cmd.arg("status")
        .current_dir(dir)
        .env("HOME", &fx.home_dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null());
    execute(cmd)
}

/// No `HEAD` is made outside a `.git` (`default`'s `**/HEAD`), so the
/// directory is no repository to git; every other way to one is in
/// `escape_later_bare.rs`.
#[test]
fn a_bare_repository_the_program_makes_runs_nothing_on_the_persons_git_status() {
    let fx = Fixture::new(PROBE);
    let marker = fx.outside("ran");

    // Control: made outside sluice, the person's `git status` runs it.
    let control = fx.outside("control");
    fs::create_dir_all(&control).unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", BARE_REPOSITORY, "sh", &marker])
        .current_dir(&control)
        .stdin(Stdio::null());
    execute(cmd).assert_code(0);
    git_status_outside(&fx, &Path::new(&control).join("sub"));
    assert!(
        Path::new(&marker).exists(),
        "the control did not run git's fsmonitor"
    );
    fs::remove_file(&marker).unwrap();

    // Attack: the same files made by the program under `default`.
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", BARE_REPOSITORY, "sh", &marker]));
    let made = fx.ws_dir.join("sub/HEAD").exists();
    assert!(out.stderr.contains("sluice: refused writing"), "{out}");
    git_status_outside(&fx, &fx.ws_dir.join("sub"));
    assert!(
        !Path::new(&marker).exists(),
        "the person's git status ran the program's command (made: {made})\n{out}"
    );
}

// ---------------------------------------------------------------------------
// Toolchains and package caches: readable, never written through the broker.
// ---------------------------------------------------------------------------

/// Files in the home directory's toolchains and package caches that run on
/// the person's next build or command, outside the sandbox: a crate's build
/// script in cargo's extracted sources, a toolchain's binary, a shim, a
/// cached package.
const RUNS_LATER: [&str; 7] = [
    ".cargo/registry/src/index.crates.io-0/serde-1.0.0/build.rs",
    ".cargo/git/checkouts/dep-0/abc/build.rs",
    ".rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/rustc",
    ".pyenv/shims/python3",
    ".nvm/versions/node/v20.0.0/bin/node",
    ".npm/_npx/0/node_modules/x/index.js",
    ".cache/pip/wheels/00/x-1.0-py3-none-any.whl",
];

/// `default`'s `[broker]` asks before writing anything in the home
/// directory (`ask_write = ["~"]`); the toolchains and caches it lets the
/// program read are where a write runs later, so no answer (a person's
/// hurried yes, `--approve allow`) may write them, by a plain open under
/// `--transparent` or through the SDK. Control: the same answer writes an
/// ordinary file of the home directory, and the caches are read.
#[test]
fn toolchains_and_package_caches_are_never_written_through_the_broker() {
    let fx = Fixture::new(PROBE);
    for rel in RUNS_LATER {
        let path = fx.home_dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "ORIGINAL\n").unwrap();
    }
    let ways: [(&str, &[&str]); 2] = [
        ("transparent", &["--transparent", "--approve", "allow"]),
        ("sdk", &["--approve", "allow"]),
    ];
    for (way, args) in ways {
        let write = |path: &str| -> Vec<String> {
            let action = if way == "sdk" {
                vec!["broker-write", path, "PLANTED", "--truncate"]
            } else {
                vec!["set", path, "PLANTED"]
            };
            action.into_iter().map(String::from).collect()
        };
        // Control: an ordinary file of the home directory is written on
        // the same answer, and a cache is read.
        let notes = fx.home("notes.txt");
        let action = write(&notes);
        let action: Vec<&str> = action.iter().map(String::as_str).collect();
        fx.sluice(args, &action).assert_ok();
        assert!(
            fs::read_to_string(&notes).unwrap().starts_with("PLANTED"),
            "{way}"
        );
        fs::write(&notes, "SECRET-home-notes\n").unwrap();
        fx.sluice(args, &["read", &fx.home(RUNS_LATER[0])])
            .assert_ok();
        // Attack: each file that runs later.
        for rel in RUNS_LATER {
            let target = fx.home(rel);
            let action = write(&target);
            let action: Vec<&str> = action.iter().map(String::as_str).collect();
            let out = fx.sluice(args, &action);
            assert_eq!(
                fs::read_to_string(&target).unwrap(),
                "ORIGINAL\n",
                "{way}: {rel} was written\n{out}"
            );
            out.assert_blocked();
        }
    }
}

// ---------------------------------------------------------------------------
// A git configuration read one way by the guard's check, another by git.
// ---------------------------------------------------------------------------

/// `git init -q sub`, then `$1` as `sub/.git/config`, written as git writes
/// it (`config.lock`, renamed into place, where the guard checks it).
const PUT_CONFIG: &str = r#"git init -q sub && printf '%s' "$1" > sub/.git/config.lock && mv sub/.git/config.lock sub/.git/config"#;

/// A repository's configuration whose `user.name` runs on to the next line
/// inside quotes; after its closing quote a `;` starts a comment that
/// ends the value, so git reads the line after as `core.fsmonitor`. A
/// check that restarts its quote count on the continued line sees the `;`
/// quoted, the value running on, and the fsmonitor line as more of it.
fn smuggling_config(marker: &str) -> String {
    format!(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\
         \tlogallrefupdates = true\n[user]\n\tname = \"a\\\nb\" ; \\\n\
         [core] fsmonitor = \"touch {marker}; false\"\n"
    )
}

/// Attack: that configuration put in place by the program under `default`;
/// the person's `git status` must not run it. Control: put in place outside
/// sluice, git runs it; and a value continued inside quotes with a `;` in
/// them (all of it `user.name` to git) is still accepted inside.
#[test]
fn a_git_configuration_hides_no_key_in_a_continued_value() {
    let fx = Fixture::new(PROBE);
    let marker = fx.outside("ran");
    let evil = smuggling_config(&marker);
    let put = |dir: &Path, sluice: bool, config: &str| -> Outcome {
        if sluice {
            return execute(fx.sluice_command(&[], &["/bin/sh", "-c", PUT_CONFIG, "sh", config]));
        }
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", PUT_CONFIG, "sh", config])
            .current_dir(dir)
            .env("HOME", &fx.home_dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null());
        execute(cmd)
    };

    let control = Path::new(&fx.outside("")).to_path_buf();
    fs::create_dir_all(&control).unwrap();
    put(&control, false, &evil).assert_code(0);
    git_status_outside(&fx, &control.join("sub"));
    assert!(
        Path::new(&marker).exists(),
        "the control did not run git's fsmonitor"
    );
    fs::remove_file(&marker).unwrap();

    let out = put(&fx.ws_dir, true, &evil);
    git_status_outside(&fx, &fx.ws_dir.join("sub"));
    assert!(
        !Path::new(&marker).exists(),
        "the person's git status ran the program's command\n{out}"
    );

    // Control: quoted, the `;` is the value's, and nothing is hidden.
    fs::remove_dir_all(fx.ws_dir.join("sub")).unwrap();
    let fine = "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\
                [user]\n\tname = \"a\\\nb ; \\\nc\"\n";
    put(&fx.ws_dir, true, fine).assert_code(0);
    let mut cmd = Command::new("git");
    cmd.args(["config", "user.name"])
        .current_dir(fx.ws_dir.join("sub"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", &fx.home_dir);
    let name = execute(cmd);
    assert_eq!(name.stdout.trim(), "ab ; c", "{name}");
}

/// git-lfs runs the program a repository's configuration names as its
/// transfer agent (`lfs.standalonetransferagent`,
/// `lfs.customtransfer.NAME.path`) or extension (`lfs.extension.NAME.smudge`)
/// on the person's next checkout or `git lfs pull`; the guard's allow-list
/// took every `lfs.*` key. Attack: such a configuration put in place by the
/// program under `default`: git (asked outside, after the session) finds
/// none of its keys. Control: what git-lfs itself writes is accepted. (git-lfs
/// is not installed here: the keys are read back with git.)
#[test]
fn a_git_configuration_names_no_git_lfs_program() {
    let fx = Fixture::new(PROBE);
    let git_get = |key: &str| -> String {
        let mut cmd = Command::new("git");
        cmd.args(["config", "--get", key])
            .current_dir(fx.ws_dir.join("sub"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &fx.home_dir);
        execute(cmd).stdout.trim().to_owned()
    };
    let base = "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\
                [lfs]\n\trepositoryformatversion = 0\n\
                [lfs \"https://h/r.git/info/lfs\"]\n\taccess = basic\n";
    for (key, extra) in [
        (
            "lfs.customtransfer.x.path",
            "[lfs]\n\tstandalonetransferagent = x\n[lfs \"customtransfer.x\"]\n\tpath = sh\n",
        ),
        (
            "lfs.extension.x.smudge",
            "[lfs \"extension.x\"]\n\tsmudge = sh\n\tpriority = 0\n",
        ),
    ] {
        let config = format!("{base}{extra}");
        let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", PUT_CONFIG, "sh", &config]));
        assert_eq!(git_get(key), "", "{key} was put in place\n{out}");
        fs::remove_dir_all(fx.ws_dir.join("sub")).unwrap();
    }
    // Control: git-lfs's own keys.
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", PUT_CONFIG, "sh", base]));
    out.assert_code(0);
    assert_eq!(
        git_get("lfs.https://h/r.git/info/lfs.access"),
        "basic",
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// Python's start-up files in the home directory.
// ---------------------------------------------------------------------------

/// `~/.local/lib/pythonX.Y/site-packages/sitecustomize.py` is imported by
/// every start of that Python (where the system has no `sitecustomize` of
/// its own, as here), like the `usercustomize.py` and `*.pth` beside it
/// that `default` already protects. Attack: written by the program with
/// the home directory as the workspace, and through the broker on
/// `--approve allow` (the answer to `ask_write "~"`), by a plain open under
/// `--transparent` and through the SDK. Control: written outside sluice,
/// the person's next `python3` runs it; the same answers write another file
/// of the home directory.
#[test]
fn pythons_sitecustomize_in_the_home_directory_is_never_written() {
    let fx = Fixture::new(PROBE);
    let marker = fx.outside("ran");
    let python = |home: &Path| -> String {
        let mut cmd = Command::new("python3");
        cmd.args(["-c", "import site; print(site.getusersitepackages())"])
            .env("HOME", home)
            .stdin(Stdio::null());
        execute(cmd).stdout.trim().to_owned()
    };
    let site = python(&fx.home_dir);
    let target = format!("{site}/sitecustomize.py");
    fs::create_dir_all(&site).unwrap();
    let code = format!("open({marker:?}, 'w').write('ran')\n");

    // Control: the person's next python3 runs it.
    fs::write(&target, &code).unwrap();
    python(&fx.home_dir);
    assert!(
        Path::new(&marker).exists(),
        "the control did not run sitecustomize"
    );
    fs::remove_file(&marker).unwrap();
    fs::remove_file(&target).unwrap();

    // The home directory as the workspace.
    let home = fx.home("");
    let script = format!(
        "printf '%s' \"$1\" > {target} 2>/dev/null && echo wrote; echo x > {home}/notes2.txt && echo control"
    );
    let cmd =
        super::escape_later::home_workspace(&fx, &[], &["/bin/sh", "-c", &script, "sh", &code]);
    let out = execute(cmd);
    assert_eq!(out.stdout, "control\n", "{out}");
    assert!(!Path::new(&target).exists(), "{out}");

    // Through the broker, on the answer that writes elsewhere in `~`.
    for (args, action) in [
        (
            &["--transparent", "--approve", "allow"][..],
            vec!["write", &target],
        ),
        (
            &["--approve", "allow"][..],
            vec!["broker-write", &target, "x", "--create"],
        ),
    ] {
        fx.sluice(args, &action).assert_blocked();
        assert!(!Path::new(&target).exists(), "{args:?}");
        let other = fx.home("other.txt");
        let control: Vec<&str> = action
            .iter()
            .map(|a| if *a == target { other.as_str() } else { a })
            .collect();
        fx.sluice(args, &control).assert_ok();
        fs::remove_file(&other).unwrap();
    }
    python(&fx.home_dir);
    assert!(!Path::new(&marker).exists());
}

/// Files of `~/.local/share` that run on an unrelated action: a systemd
/// user unit there overrides the system's one of the same name (an enabled
/// `pipewire.service` runs it at the next login), a D-Bus session service
/// file starts its `Exec` on the first call for its name, a desktop entry
/// stands in for the system's launcher of the same name. Attack: each
/// written with the home directory as the workspace, and through the broker
/// on `--approve allow`. Control: another file of `~/.local/share` is
/// written both ways. (No systemd or D-Bus session runs here: the files
/// are checked, as for the other start-up files.)
#[test]
fn units_session_services_and_desktop_entries_are_never_written() {
    let fx = Fixture::new(PROBE);
    let refused = [
        ".local/share/systemd/user/pipewire.service",
        ".local/share/dbus-1/services/org.freedesktop.Notifications.service",
        ".local/share/applications/firefox.desktop",
    ];
    for rel in refused {
        fs::create_dir_all(Path::new(&fx.home(rel)).parent().unwrap()).unwrap();
    }
    let control = ".local/share/notes.txt";
    let mut script = String::new();
    for rel in refused {
        script.push_str(&format!("echo x > {rel} 2>/dev/null && echo wrote {rel}; "));
    }
    script.push_str(&format!("echo x > {control} && echo control"));
    let cmd = super::escape_later::home_workspace(&fx, &[], &["/bin/sh", "-c", &script]);
    let out = execute(cmd);
    assert_eq!(out.stdout, "control\n", "{out}");
    fs::remove_file(fx.home(control)).unwrap();
    for rel in refused.into_iter().chain([control]) {
        let path = fx.home(rel);
        let out = fx.sluice(&["--transparent", "--approve", "allow"], &["write", &path]);
        if rel == control {
            out.assert_ok();
        } else {
            out.assert_blocked();
            assert!(!Path::new(&path).exists(), "{rel}\n{out}");
        }
    }
}

/// An HTTP server on loopback answering every request `200`, empty, with
/// the cookie `set_cookie`; its port.
fn cookie_server(set_cookie: String) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\
                 Set-Cookie: {set_cookie}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

/// `http.cookieFile` with `http.saveCookies` in a repository's configuration
/// has git's curl write its cookie jar, with what the server sent, over the
/// file named: `~/.bashrc`, whose next reading runs a `$(...)` in a cookie's
/// value. Attack: the program sets both (and a remote) with `git config`
/// under `default`; the person's `git ls-remote` outside must write nothing
/// there. Control: set outside sluice, the same `git ls-remote` writes the
/// jar and sourcing it runs the command; inside, an `http` key that writes
/// nothing (`http.sslVerify`) is still set.
#[test]
fn a_git_configuration_names_no_file_for_git_to_write() {
    let fx = Fixture::new(PROBE);
    let marker = fx.outside("ran");
    let port = cookie_server(format!("a=$(touch${{IFS}}{marker})"));
    let url = format!("http://127.0.0.1:{port}/r.git");
    let jar = fx.home(".bashrc");
    fs::write(&jar, "# the person's\n").unwrap();
    let set_up = format!(
        "git init -q sub && cd sub && git config http.cookieFile {jar} && \
         git config http.saveCookies true && git remote add origin {url}"
    );
    let git_outside = |dir: &Path, args: &[&str]| -> Outcome {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .current_dir(dir)
            .env("HOME", &fx.home_dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null());
        execute(cmd)
    };
    let source_jar = || {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &format!(". {jar}")]).stdin(Stdio::null());
        execute(cmd);
    };

    // Control: outside sluice.
    let control = fx.outside_dir.clone();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", &set_up])
        .current_dir(&control)
        .env("HOME", &fx.home_dir)
        .env("GIT_CONFIG_NOSYSTEM", "1");
    execute(cmd).assert_code(0);
    git_outside(&control.join("sub"), &["ls-remote", "origin"]);
    source_jar();
    assert!(Path::new(&marker).exists(), "the control's jar ran nothing");
    fs::remove_file(&marker).unwrap();
    fs::write(&jar, "# the person's\n").unwrap();

    // Attack: the same configuration made by the program.
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", &set_up]));
    git_outside(&fx.ws_dir.join("sub"), &["ls-remote", "origin"]);
    assert_eq!(
        fs::read_to_string(&jar).unwrap(),
        "# the person's\n",
        "{out}"
    );
    source_jar();
    assert!(!Path::new(&marker).exists(), "{out}");

    // Control: an http key that writes nothing is set inside.
    let out = execute(fx.sluice_command(
        &[],
        &["git", "-C", "sub", "config", "http.sslVerify", "false"],
    ));
    out.assert_code(0);
    let got = git_outside(&fx.ws_dir.join("sub"), &["config", "http.sslVerify"]);
    assert_eq!(got.stdout.trim(), "false", "{got}");
}

/// `gc.recentObjectsHook` is a shell command git runs when `git gc`, writing
/// cruft packs (`gc.cruftPacks`), decides which unreachable objects are
/// recent (by hand: `git gc --cruft` ran it once; which state of the
/// repository makes it run was not pinned down, so this test checks the
/// key, read back with git). Attack: the program sets it in a repository
/// it makes under `default`: git outside finds none. Control: set outside
/// sluice, git reads it; inside, `gc.cruftPacks` alone is set.
#[test]
fn a_git_configuration_names_no_gc_hook() {
    let fx = Fixture::new(PROBE);
    let set_up = "git init -q sub && cd sub && git config gc.cruftPacks true; \
                  git config gc.recentObjectsHook 'touch /tmp/x'";
    let git_get = |dir: &Path, key: &str| -> String {
        let mut cmd = Command::new("git");
        cmd.args(["config", "--get", key])
            .current_dir(dir)
            .env("HOME", &fx.home_dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null());
        execute(cmd).stdout.trim().to_owned()
    };

    let control = fx.outside_dir.clone();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", set_up])
        .current_dir(&control)
        .env("HOME", &fx.home_dir)
        .env("GIT_CONFIG_NOSYSTEM", "1");
    execute(cmd).assert_code(0);
    let sub = control.join("sub");
    assert_eq!(git_get(&sub, "gc.recentObjectsHook"), "touch /tmp/x");

    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", set_up]));
    let sub = fx.ws_dir.join("sub");
    assert_eq!(git_get(&sub, "gc.cruftPacks"), "true", "{out}");
    assert_eq!(git_get(&sub, "gc.recentObjectsHook"), "", "{out}");
}
