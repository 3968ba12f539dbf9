//! Red team, round 11: the guard's carry path (`openat2` as asked, unnamed
//! files, the shapes of a path), the stacked registration, the proxy's
//! request line, and what the person's own tools run later beyond the
//! guard's list. Each attack with its control (the same action where it is
//! allowed, or outside sluice); `#[ignore = "escape: ..."]` marks one that
//! still works, its reason says how.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use sluice_tests::{execute, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// What the person keeps in files the guard protects (`default`'s list):
/// an editor's settings, an agent's settings with its deny rules, a nested
/// repository's configuration.
const KEPT: &str = "{ \"kept\": \"by the person\" }\n";

/// A workspace holding protected files with content, beside a plain one.
fn protected_workspace() -> Fixture {
    let fx = Fixture::new(PROBE);
    for rel in [
        ".vscode/settings.json",
        ".claude/settings.json",
        "sub/.git/config",
    ] {
        let path = fx.ws(rel);
        fs::create_dir_all(Path::new(&path).parent().unwrap()).unwrap();
        fs::write(&path, KEPT).unwrap();
    }
    fs::create_dir_all(fx.ws("sub/.git/hooks")).unwrap();
    fs::write(fx.ws("notes.txt"), "the program's own notes\n").unwrap();
    fx
}

// ---------------------------------------------------------------------------
// The guard's carry path: `openat2` with `resolve` restrictions.
// ---------------------------------------------------------------------------

/// `openat2` with `RESOLVE_*` flags is carried out as asked by the
/// connector and the file it opened judged afterwards: what the open did
/// on its way (`O_TRUNC` emptying a protected file, `O_CREAT` making a
/// protected name) must not have happened when the answer is a refusal.
/// Controls: outside sluice each call succeeds (and truncates or creates);
/// inside, the same calls on the program's own files do.
#[test]
fn openat2_with_resolve_flags_neither_empties_nor_makes_a_protected_file() {
    let fx = protected_workspace();
    let protected = [
        ".vscode/settings.json",
        ".claude/settings.json",
        "sub/.git/config",
    ];
    let resolves = ["beneath", "no-magiclinks", "no-symlinks,no-xdev"];
    let truncating = ["wronly,trunc", "rdonly,trunc", "rdwr,creat,trunc"];
    for rel in protected {
        for resolve in resolves {
            for flags in truncating {
                // `openat2` takes a mode only with `O_CREAT`.
                let mode = if flags.contains("creat") { "644" } else { "0" };
                let out = fx.sluice(&[], &["openat2", rel, flags, resolve, mode]);
                out.assert_blocked();
                assert_eq!(
                    fs::read_to_string(fx.ws(rel)).unwrap(),
                    KEPT,
                    "openat2({rel}, {flags}, {resolve}) changed a protected file\n{out}"
                );
            }
        }
    }
    for (rel, flags) in [
        (".envrc", "wronly,creat"),
        (".envrc", "rdonly,creat,excl"),
        ("sub/.git/hooks/post-checkout", "wronly,creat,excl"),
        ("deeper/.git", "wronly,creat"),
        (".vscode/tasks.json", "rdwr,creat"),
    ] {
        if let Some(parent) = Path::new(&fx.ws(rel)).parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let out = fx.sluice(&[], &["openat2", rel, flags, "beneath", "755"]);
        out.assert_blocked();
        assert!(
            fs::symlink_metadata(fx.ws(rel)).is_err(),
            "openat2({rel}, {flags}) made a protected name\n{out}"
        );
    }

    // Controls inside: the program's own file truncated, a new one made.
    fx.sluice(
        &[],
        &["openat2", "notes.txt", "wronly,trunc", "beneath", "0"],
    )
    .assert_ok();
    assert_eq!(fs::metadata(fx.ws("notes.txt")).unwrap().len(), 0);
    fx.sluice(
        &[],
        &["openat2", "new.txt", "wronly,creat,excl", "beneath", "644"],
    )
    .assert_ok();
    assert!(Path::new(&fx.ws("new.txt")).exists());
    // And outside sluice the attacks do what they say.
    fx.direct(&[
        "openat2",
        ".vscode/settings.json",
        "wronly,trunc",
        "beneath",
        "0",
    ])
    .assert_ok();
    assert_eq!(
        fs::metadata(fx.ws(".vscode/settings.json")).unwrap().len(),
        0
    );
    fx.direct(&["openat2", ".envrc", "wronly,creat", "beneath", "755"])
        .assert_ok();
    assert!(Path::new(&fx.ws(".envrc")).exists());
}

/// The same under `--transparent`, whose filter hands every `openat2` to
/// the guard too. Control: the program's own file is truncated there.
#[test]
fn under_transparent_openat2_with_resolve_flags_neither_empties_nor_makes_a_protected_file() {
    let fx = protected_workspace();
    let t = ["--transparent"];
    fx.sluice(
        &t,
        &[
            "openat2",
            ".vscode/settings.json",
            "wronly,trunc",
            "beneath",
            "0",
        ],
    )
    .assert_blocked();
    assert_eq!(
        fs::read_to_string(fx.ws(".vscode/settings.json")).unwrap(),
        KEPT
    );
    fx.sluice(
        &t,
        &["openat2", ".envrc", "wronly,creat", "no-magiclinks", "644"],
    )
    .assert_blocked();
    assert!(fs::symlink_metadata(fx.ws(".envrc")).is_err());
    fx.sluice(
        &t,
        &["openat2", "notes.txt", "wronly,trunc", "beneath", "0"],
    )
    .assert_ok();
    assert_eq!(fs::metadata(fx.ws("notes.txt")).unwrap().len(), 0);
}

/// The mode of a file `openat2` creates is in memory the deny filter
/// cannot read, but the guard reads it for every `openat2`: no set-user-ID
/// or set-group-ID file is made through it, with `resolve` restrictions
/// (carried out as asked) or without. Control: outside sluice the same
/// call makes a set-user-ID file; inside, a plain mode is kept.
#[test]
fn openat2_through_the_guard_makes_no_set_id_file() {
    let fx = protected_workspace();
    for (name, resolve) in [("a", "beneath"), ("b", "no-magiclinks"), ("c", "none")] {
        let out = fx.sluice(
            &[],
            &["openat2", name, "wronly,creat,excl", resolve, "6755"],
        );
        let mode = fs::metadata(fx.ws(name)).map_or(0, |m| m.mode());
        assert_eq!(
            mode & 0o6000,
            0,
            "openat2 with resolve {resolve} made a set-ID file (mode {mode:o})\n{out}"
        );
        out.assert_blocked();
    }
    let out = fx.sluice(
        &[],
        &["openat2", "plain", "wronly,creat,excl", "beneath", "1755"],
    );
    out.assert_ok();
    assert_eq!(
        fs::metadata(fx.ws("plain")).unwrap().mode() & 0o7777,
        0o1755
    );
    fx.direct(&[
        "openat2",
        "outside-made",
        "wronly,creat,excl",
        "beneath",
        "4755",
    ])
    .assert_ok();
    assert_eq!(
        fs::metadata(fx.ws("outside-made")).unwrap().mode() & 0o4000,
        0o4000
    );
}

/// An unnamed file (`O_TMPFILE`, written, executable) given a protected
/// name by `linkat`, through its `/proc/self/fd` link or `AT_EMPTY_PATH`.
/// Control: outside sluice both give the name.
#[test]
fn an_unnamed_file_gets_no_protected_name() {
    let fx = protected_workspace();
    for (dst, via) in [
        (".vscode/tasks.json", "proc"),
        ("sub/.git/hooks/pre-commit", "proc"),
        (".vscode/tasks.json", "empty-path"),
        ("sub/.git/hooks/pre-commit", "empty-path"),
    ] {
        let dir = Path::new(dst).parent().unwrap().to_str().unwrap();
        fx.sluice(&[], &["tmpfile-link", dir, dst, via])
            .assert_blocked();
        assert!(
            fs::symlink_metadata(fx.ws(dst)).is_err(),
            "{dst} made by {via}"
        );
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    for via in ["proc", "empty-path"] {
        if via == "empty-path" && !root {
            continue; // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH
        }
        let dst = format!(".vscode/by-{via}");
        fx.direct(&["tmpfile-link", ".vscode", &dst, via])
            .assert_ok();
        assert!(Path::new(&fx.ws(&dst)).exists());
    }
}

/// `fchmod` of a descriptor number another thread points at a protected
/// file and at the program's own in turn (`dup2`), 2,000 times: the guard
/// judges the file the number names when it takes its own copy, and the
/// change is made on that copy, never through the number again. Control:
/// outside sluice the race makes the protected file executable; inside,
/// the program's own file changes.
#[test]
fn fchmod_on_a_descriptor_swapped_during_the_check_changes_no_protected_file() {
    let fx = protected_workspace();
    let (hook, own) = (fx.ws(".vscode/run.sh"), fx.ws("run.sh"));
    let plain = |path: &str| {
        fs::write(path, "#!/bin/sh\necho ran\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    };
    plain(&hook);
    plain(&own);
    let out = fx.sluice(&[], &["fchmod-race", &hook, &own, "2000"]);
    out.assert_blocked();
    assert_eq!(fs::metadata(&hook).unwrap().mode() & 0o111, 0, "{out}");
    assert_ne!(fs::metadata(&own).unwrap().mode() & 0o111, 0, "{out}");

    plain(&hook);
    fx.direct(&["fchmod-race", &hook, &own, "1000000"])
        .assert_ok();
}

/// Whether `path` carries the `user.sluice` attribute the probe's
/// `fd-meta` sets.
fn has_planted_attribute(path: &str) -> bool {
    let c = std::ffi::CString::new(path).unwrap();
    // SAFETY: a NUL-terminated path and name; a zero-length query.
    let n =
        unsafe { libc::lgetxattr(c.as_ptr(), c"user.sluice".as_ptr(), std::ptr::null_mut(), 0) };
    n >= 0
}

/// An attribute and a mode set through a descriptor of a protected
/// directory (`fsetxattr`, `fchmod` on `.vscode` opened for reading) or of
/// a file in it: the guard judges the file the descriptor names, directory
/// or not. Controls: inside, the program's own directory takes both;
/// outside sluice, the protected one does.
#[test]
fn attributes_set_through_a_directory_descriptor_reach_no_protected_directory() {
    let fx = protected_workspace();
    let mode = |path: &str| fs::metadata(path).unwrap().mode() & 0o7777;
    let dir = fx.ws(".vscode");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    for path in [dir.clone(), fx.ws(".vscode/settings.json")] {
        let before = mode(&path);
        let out = fx.sluice(&[], &["fd-meta", &path]);
        assert!(!has_planted_attribute(&path), "{path}\n{out}");
        assert_eq!(mode(&path), before, "{path}\n{out}");
    }
    let own = fx.ws("src");
    fx.sluice(&[], &["fd-meta", &own]).assert_ok();
    assert!(has_planted_attribute(&own));
    assert_eq!(mode(&own), 0o777);
    fx.direct(&["fd-meta", &dir]).assert_ok();
    assert!(has_planted_attribute(&dir));
}

/// One shell inside the session tries every shape of a path to protected
/// names (`..` after a symlink, `.` and `..` components, doubled slashes,
/// a name through a symlinked directory, a relative path from a working
/// directory removed or renamed meanwhile, a path near `PATH_MAX`, the
/// `/proc/<pid>/fd` link of a descriptor opened for reading, a working
/// directory inside the protected one, a chain of 39 symlinks); it
/// prints `ESCAPED` for any that writes. Control: outside sluice the same
/// script writes each.
#[test]
fn every_shape_of_a_path_to_a_protected_name_is_refused() {
    let workspace = || {
        let fx = protected_workspace();
        fs::create_dir_all(fx.ws("a/b/c")).unwrap();
        std::os::unix::fs::symlink(fx.ws("a/b/c"), fx.ws("deep")).unwrap();
        std::os::unix::fs::symlink(fx.ws(".vscode"), fx.ws("editor")).unwrap();
        std::os::unix::fs::symlink("sub/.git/hooks", fx.ws("hooks")).unwrap();
        // 39 symlinks, one to the next, the last to a protected name: within
        // the kernel's 40.
        for i in 0..39 {
            let to = match i {
                38 => ".vscode/chain.json".to_owned(),
                i => format!("l{:02}", i + 1),
            };
            std::os::unix::fs::symlink(to, fx.ws(&format!("l{i:02}"))).unwrap();
        }
        fx
    };
    // `a/b/c/../../../` again and again: a path of about 4,000 bytes.
    let long = format!("{}.vscode/long.json", "a/b/c/../../../".repeat(260));
    let script = format!(
        r#"p="$PWD/bin/sluice-probe"
try() {{ "$p" write "$1" >/dev/null 2>&1 && echo "ESCAPED ${{1%%/*}}.../${{1##*/}}"; }}
try deep/../../../.vscode/x.json
try ./.vscode/./y.json
try .vscode//z.json
try a/../.vscode/../.vscode/w.json
try editor/v.json
try hooks/post-merge
try deep/../../../sub/.git/hooks/pre-push
try '{long}'
mkdir gone && cd gone && rmdir ../gone && try ../.vscode/gone.json; cd "$OLDPWD"
mkdir moved && cd moved && mv ../moved ../moved2 && try ../.vscode/moved.json; cd "$OLDPWD"
exec 3<.vscode/settings.json; try /proc/self/fd/3; try /proc/$$/fd/3; exec 3<&-
cd .vscode && try from-inside.json; cd "$OLDPWD"
try l00
echo done
"#
    );
    let run = |fx: &Fixture, inside: bool| -> Outcome {
        let program = ["/bin/sh", "-c", script.as_str()];
        if inside {
            execute(fx.sluice_command(&[], &program))
        } else {
            let mut cmd = Command::new(program[0]);
            cmd.args(&program[1..])
                .current_dir(&fx.ws_dir)
                .stdin(Stdio::null());
            execute(cmd)
        }
    };
    let fx = workspace();
    let out = run(&fx, true);
    assert!(out.stdout.contains("done"), "{out}");
    assert!(!out.stdout.contains("ESCAPED"), "{out}");
    for name in [
        "x.json",
        "y.json",
        "z.json",
        "w.json",
        "v.json",
        "long.json",
        "from-inside.json",
        "chain.json",
    ] {
        assert!(
            !Path::new(&fx.ws(&format!(".vscode/{name}"))).exists(),
            "{name}"
        );
    }
    // Control: outside sluice every shape writes (the removed working
    // directory's `..` included: the kernel keeps its parent).
    let out = run(&workspace(), false);
    let escaped = out.stdout.matches("ESCAPED").count();
    assert_eq!(escaped, 14, "the control wrote {escaped} of 14\n{out}");
}

// ---------------------------------------------------------------------------
// The stacked registration.
// ---------------------------------------------------------------------------

/// A registration decides for the registrant's descendants only while it
/// lives: a stacked process whose registrant has exited (an inner sluice
/// killed, its program reparented away) writes nothing, whatever ruleset
/// was registered. Control: the same steps with the registrant alive write.
#[test]
fn a_stacked_process_whose_registrant_died_writes_nothing() {
    let fx = Fixture::new(PROBE);
    let steps = |how: &str, name: &str| {
        let file = fx.ws(name);
        let out = fx.sluice(
            &[],
            &[
                "register-stacked",
                how,
                "+",
                "own-filter",
                "+",
                "write",
                &file,
            ],
        );
        (out, Path::new(&file).exists())
    };
    let (out, made) = steps("weak", "alive.txt");
    out.assert_ok();
    assert!(made, "{out}");
    let (out, made) = steps("orphan", "orphan.txt");
    assert!(!made, "an orphan of a dead registrant wrote\n{out}");
    assert!(out.stdout.contains("the registrant is gone"), "{out}");
    assert!(out.stdout.contains("BLOCKED"), "{out}");
}

// ---------------------------------------------------------------------------
// The proxy: where a name may lead.
// ---------------------------------------------------------------------------

/// An IPv4 address of this machine's that is not loopback (the interface
/// a route out would use), if it has one.
fn own_address() -> Option<String> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect("192.0.2.1:9").ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

/// DNS rebinding into this machine by another of its addresses: a `*.`
/// rule never reaches loopback through a name, but a service listening on
/// every interface (a development server, a database, Docker's bridge) is
/// this machine's too, and a name resolving to the machine's own interface
/// address reaches it. Controls: the same name resolving to 127.0.0.1 is
/// refused (the loopback rule), and outside sluice the service answers on
/// that address.
#[test]
fn a_wildcard_rule_never_reaches_this_machine_by_its_other_addresses() {
    use super::net_hosts::{curl, Net, Server, BODY};
    let Some(ip) = own_address() else {
        eprintln!("no address but loopback: nothing to test");
        return;
    };
    let net = Net::new();
    let everywhere = Server::start("0.0.0.0", &net.served);
    let mut hosts = fs::read_to_string(&net.hosts).unwrap();
    hosts.push_str(&format!("{ip} own.wild.test\n"));
    fs::write(&net.hosts, hosts).unwrap();
    let url = |name: &str| format!("http://{name}:{}/index.html", everywhere.port);
    let wild = format!("--allow-host=*.wild.test:{}", everywhere.port);

    // Control: outside sluice the service answers on that address.
    let mut direct = Command::new("curl");
    direct.args(["-sS", "--noproxy", "*", "--max-time", "30", &url(&ip)]);
    assert_eq!(execute(direct).stdout, BODY);
    // Control: through loopback, the wildcard is refused.
    let out = net.run(&[&wild], &curl(&url("api.wild.test")));
    assert!(out.stdout.contains("name the host exactly"), "{out}");

    let before = everywhere.hits();
    let out = net.run(&[&wild], &curl(&url("own.wild.test")));
    assert_ne!(
        out.stdout, BODY,
        "a *. rule reached this machine at {ip}\n{out}"
    );
    assert_eq!(everywhere.hits(), before, "{out}");
}

// ---------------------------------------------------------------------------
// What the person's own tools run later, beyond the guard's list.
// ---------------------------------------------------------------------------

/// `ws/DIR` (`""`: the workspace itself), a repository whose
/// configuration says `core.hooksPath = .githooks`, and where its hook
/// would leave a marker.
fn hooks_path_repository(fx: &Fixture, dir: &str) -> (std::path::PathBuf, String) {
    let repo = fx.ws_dir.join(dir);
    fs::create_dir_all(repo.join(".githooks")).unwrap();
    fx.git_outside(&repo, &["init", "-q"]).assert_code(0);
    fx.git_outside(&repo, &["config", "core.hooksPath", ".githooks"])
        .assert_code(0);
    (repo, fx.outside("hook-ran"))
}

/// The person's next commit in `repo`.
fn commit_outside(fx: &Fixture, repo: &Path) -> Outcome {
    fs::write(repo.join("f"), "x").unwrap();
    fx.git_outside(repo, &["add", "f"]).assert_code(0);
    fx.git_outside(repo, &["commit", "-q", "-m", "x"])
}

/// A repository whose configuration (set before the session) names a
/// hooks directory in its work tree (`core.hooksPath = .githooks`: projects
/// commit their hooks so): the workspace's repository has it read at
/// launch and protected as `.git/hooks` is, so the hook the program writes
/// there is refused and the person's next commit runs nothing. Control:
/// `a_hook_where_core_hooks_path_points_runs_on_the_persons_commit`.
#[test]
fn hooks_where_the_workspaces_repository_configuration_points_are_protected() {
    let fx = Fixture::new(PROBE);
    let (repo, marker) = hooks_path_repository(&fx, "");
    let script = format!(
        "printf '#!/bin/sh\\ntouch {marker}\\n' > .githooks/pre-commit; \
         chmod +x .githooks/pre-commit; mv .githooks gh; mkdir -p gh; \
         printf '#!/bin/sh\\ntouch {marker}\\n' > gh/pre-commit; chmod +x gh/pre-commit; \
         mv gh .githooks; ln -s gh .githooks; echo done"
    );
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", &script]));
    assert!(out.stdout.contains("done"), "{out}");
    assert!(out.stderr.contains("refused writing"), "{out}");
    commit_outside(&fx, &repo);
    assert!(
        !Path::new(&marker).exists(),
        "the person's commit ran the program's hook\n{out}"
    );
    // The program's own files beside it are written as before.
    fx.sluice(&[], &["write", &fx.ws("src/lib.rs")]).assert_ok();
}

/// A repository whose configuration names a hooks directory of its own in
/// the work tree (`core.hooksPath = .githooks`: projects commit their hooks
/// so, and husky's `.husky/_` is the same shape): a hook written there runs
/// on the person's next commit, as one in `.git/hooks` would. `default`
/// protects `.git/hooks` and `.husky` by name, not the directory the
/// repository's own configuration names.
#[test]
fn hooks_where_a_nested_repositorys_configuration_points_are_protected() {
    let fx = Fixture::new(PROBE);
    let (repo, marker) = hooks_path_repository(&fx, "proj");
    let script = format!(
        "printf '#!/bin/sh\\ntouch {marker}\\n' > proj/.githooks/pre-commit && \
         chmod +x proj/.githooks/pre-commit"
    );
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", &script]));
    commit_outside(&fx, &repo);
    assert!(
        !Path::new(&marker).exists(),
        "the person's commit ran the program's hook\n{out}"
    );
}

/// Control for the test above: the same hook written outside sluice runs on
/// the person's commit (so the attack is real where it is not refused).
#[test]
fn a_hook_where_core_hooks_path_points_runs_on_the_persons_commit() {
    let fx = Fixture::new(PROBE);
    let (repo, marker) = hooks_path_repository(&fx, "proj");
    let hook = repo.join(".githooks/pre-commit");
    fs::write(&hook, format!("#!/bin/sh\ntouch {marker}\n")).unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    commit_outside(&fx, &repo).assert_code(0);
    assert!(Path::new(&marker).exists());
}
