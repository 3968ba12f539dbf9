//! What broke for a new user (issue 16), the developer tools: Python's
//! multiprocessing on a `/dev/shm` of the session's own, `cargo build
//! --offline` from the package caches, git below the repository's root,
//! debuggers on the program's own children.

use std::fs;
use std::path::Path;

use sluice_tests::{execute, Fixture};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

const MULTIPROCESSING: &str = "import multiprocessing as m, concurrent.futures as f
l = m.Lock(); l.acquire(); l.release()
with f.ProcessPoolExecutor(2) as ex: print(list(ex.map(abs, [-1, -2])))
";

#[test]
fn each_session_has_its_own_dev_shm() {
    let fx = Fixture::new(PROBE);
    // Control: Python's multiprocessing works outside sluice.
    let mut direct = std::process::Command::new("/usr/bin/python3");
    direct.args(["-c", MULTIPROCESSING]);
    let out = execute(direct);
    out.assert_code(0);
    // ... and inside (it failed: no /dev/shm).
    let run = |args: &[&str], program: &[&str]| execute(fx.sluice_command(args, program));
    let out = run(&[], &["/usr/bin/python3", "-c", MULTIPROCESSING]);
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), "[1, 2]", "{out}");

    // Attack: the host's /dev/shm (other programs' shared memory) is not
    // the session's, even where the policy lets it read /dev.
    let host = format!("/dev/shm/sluice-test-newuser-{}", std::process::id());
    fs::write(&host, "host").unwrap();
    let dev = fx.write_policy(
        "dev.toml",
        "extends = [\"default\"]\n[filesystem]\nread = [\"/dev\"]\n",
    );
    for args in [&[][..], &["--policy", &dev], &["--transparent"]] {
        let out = run(args, &["/bin/ls", "-A", "/dev/shm"]);
        out.assert_code(0);
        assert_eq!(out.stdout, "", "{args:?}\n{out}");
    }
    // What a session leaves there is gone with it: neither on the host nor
    // in the next session.
    let out = run(
        &[],
        &[
            "/bin/sh",
            "-c",
            "echo s > /dev/shm/left && cat /dev/shm/left",
        ],
    );
    out.assert_code(0);
    assert_eq!(out.stdout, "s\n", "{out}");
    assert!(!Path::new("/dev/shm/left").exists());
    let out = run(&[], &["/bin/ls", "-A", "/dev/shm"]);
    assert_eq!(out.stdout, "", "{out}");
    // Nothing placed there can be executed.
    let out = run(
        &[],
        &[
            "/bin/sh",
            "-c",
            "cp /bin/true /dev/shm/t && exec /dev/shm/t",
        ],
    );
    out.assert_code(126);
    fs::remove_file(&host).unwrap();
}

#[test]
fn dev_shm_works_for_an_unprivileged_user() {
    let fx = Fixture::new(PROBE);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(fx.root(), fs::Permissions::from_mode(0o755)).unwrap();
    let nobody = fx.root().join("nobody");
    fs::create_dir(&nobody).unwrap();
    std::os::unix::fs::chown(&nobody, Some(65534), Some(65534)).unwrap();
    let mut cmd = sluice_tests::setpriv_nobody();
    cmd.arg(sluice_tests::sluice_bin())
        .args(["run", "--", "/usr/bin/python3", "-c", MULTIPROCESSING])
        .current_dir(&nobody)
        .env("HOME", &nobody)
        .env("TMPDIR", &nobody)
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .stdin(std::process::Stdio::null());
    let out = execute(cmd);
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), "[1, 2]", "{out}");
}

/// The cargo home of the person running the tests (`CARGO_HOME`, else
/// `~/.cargo`), whose registry holds the workspace's own dependencies.
fn real_cargo_home() -> std::path::PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".cargo"))
}

/// `default` reads the person's package caches (`~/.cargo/registry`, also
/// `~/.cargo/git`, `~/.npm`, `~/.cache/pip`): `cargo build --offline` of a
/// crate with a dependency that was downloaded before works. It never
/// writes them (what a build takes from them runs outside the sandbox
/// later), unless the person says so (`--allow-write`).
#[test]
fn default_builds_offline_from_the_package_caches_and_never_writes_them() {
    use std::os::unix::fs::symlink;
    let fx = Fixture::new(PROBE);
    let real = real_cargo_home();
    let rustup = std::env::var_os("RUSTUP_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| real.parent().unwrap().join(".rustup"));
    // The person's cargo and toolchains, and a registry holding cfg-if
    // (the index entry, the .crate and its extracted source), copied from
    // the tests' own registry.
    let cargo = fx.home_dir.join(".cargo");
    fs::create_dir_all(&cargo).unwrap();
    symlink(real.join("bin"), cargo.join("bin")).unwrap();
    symlink(&rustup, fx.home_dir.join(".rustup")).unwrap();
    let index = fs::read_dir(real.join("registry/src"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .find(|n| n.to_string_lossy().starts_with("index.crates.io-"))
        .expect("a crates.io registry in the tests' cargo home");
    let index = index.to_str().unwrap();
    let version = fs::read_dir(real.join("registry/src").join(index))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.starts_with("cfg-if-1."))
        .max()
        .expect("cfg-if in the tests' registry");
    for rel in [
        format!("index/{index}/config.json"),
        format!("index/{index}/.cache/cf/g-/cfg-if"),
        format!("cache/{index}/{version}.crate"),
        format!("src/{index}/{version}"),
    ] {
        let to = cargo.join("registry").join(&rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        let status = std::process::Command::new("cp")
            .args(["-a", real.join("registry").join(&rel).to_str().unwrap()])
            .arg(&to)
            .status()
            .unwrap();
        assert!(status.success(), "cp {rel}");
    }
    fs::write(
        fx.ws("Cargo.toml"),
        "[package]\nname = \"offline\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\ncfg-if = \"1\"\n",
    )
    .unwrap();
    fs::create_dir_all(fx.ws("src")).unwrap();
    fs::write(
        fx.ws("src/main.rs"),
        "cfg_if::cfg_if! { if #[cfg(unix)] { fn os() -> &'static str { \"unix\" } } \
         else { fn os() -> &'static str { \"other\" } } }\n\
         fn main() { println!(\"built offline on {}\", os()); }\n",
    )
    .unwrap();
    let path = format!("{}:/usr/bin:/bin", cargo.join("bin").display());
    let run = |sluice_args: &[&str], program: &[&str]| {
        let mut cmd = fx.sluice_command(sluice_args, program);
        // `cargo test` sets CARGO_HOME (and the toolchain): the person's
        // are those of the fixture's home.
        cmd.env("PATH", &path)
            .env_remove("CARGO_HOME")
            .env_remove("RUSTUP_HOME")
            .env_remove("RUSTUP_TOOLCHAIN");
        execute(cmd)
    };
    let out = run(&[], &["cargo", "run", "--offline", "--quiet"]);
    out.assert_code(0);
    assert!(out.stdout.contains("built offline on unix"), "{out}");

    // Never written: not a new file, not the extracted source.
    let planted = cargo.join("registry/planted");
    let source = cargo.join(format!("registry/src/{index}/{version}/src/lib.rs"));
    let script = format!(
        "touch '{}'; echo >> '{}'",
        planted.display(),
        source.display()
    );
    let before = fs::read(&source).unwrap();
    let out = run(&[], &["/bin/sh", "-c", &script]);
    assert!(!planted.exists(), "{out}");
    assert_eq!(fs::read(&source).unwrap(), before, "{out}");
    // Control: the person can allow it.
    let registry = cargo.join("registry");
    let out = run(
        &["--allow-write", registry.to_str().unwrap()],
        &["/bin/sh", "-c", &script],
    );
    assert!(planted.exists(), "{out}");
    // The rest of the cargo home stays hidden.
    fs::write(cargo.join("credentials.toml"), "token = \"SECRET\"\n").unwrap();
    let out = run(
        &[],
        &["cat", cargo.join("credentials.toml").to_str().unwrap()],
    );
    assert_ne!(out.code(), 0, "{out}");
    assert!(!out.stdout.contains("SECRET"), "{out}");
}

/// git in a workspace below its repository's root: the repository's `.git`
/// is readable (history, refs, index), never writable, and the rest of its
/// work tree stays hidden; a home directory kept in git is never added.
/// Control: without sluice's help (the `.git` not added, as for a
/// repository rooted at the home directory) git finds no repository.
#[test]
fn git_works_below_the_repository_root_read_only() {
    let fx = Fixture::new(PROBE);
    let git = |dir: &Path, args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
            .arg(dir)
            .args(args)
            .env("HOME", &fx.home_dir)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    let repo = fx.outside_dir.join("repo");
    fs::create_dir_all(repo.join("web")).unwrap();
    fs::write(repo.join("web/page.html"), "<p>\n").unwrap();
    fs::write(repo.join("server.txt"), "outside the workspace\n").unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "first"]);
    let head = || fs::read_to_string(repo.join(".git/HEAD")).unwrap();
    let refs = || {
        std::process::Command::new("git")
            .args(["-C", repo.to_str().unwrap(), "rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout
    };
    let (head_before, refs_before) = (head(), refs());
    let web = repo.join("web");
    let in_sandbox = |ws: &Path, script: &str| {
        execute(fx.sluice_cli_command(&[
            "run",
            "--workspace",
            ws.to_str().unwrap(),
            "--",
            "/bin/sh",
            "-c",
            script,
        ]))
    };
    let out = in_sandbox(&web, "git log --format=%s && git status --short page.html");
    out.assert_code(0);
    assert!(out.stdout.starts_with("first\n"), "{out}");
    // Never written: no commit, no HEAD; the work tree outside not read.
    let attack = "echo x >> page.html; git add page.html; \
                  git -c user.name=t -c user.email=t@t commit -qm evil; \
                  echo 'ref: refs/heads/evil' > ../.git/HEAD; cat ../server.txt";
    let out = in_sandbox(&web, attack);
    assert!(!out.stdout.contains("outside the workspace"), "{out}");
    assert_eq!(
        (head(), refs()),
        (head_before.clone(), refs_before),
        "{out}"
    );

    // Control: a repository rooted at the home directory is not added.
    let home_ws = fx.home_dir.join("proj");
    fs::create_dir_all(&home_ws).unwrap();
    fs::write(home_ws.join("f"), "x\n").unwrap();
    git(&fx.home_dir, &["init", "-q"]);
    let out = in_sandbox(&home_ws, "git status");
    assert_ne!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("not a git repository"), "{out}");
}

/// Tries `PTRACE_ATTACH` on every process in view that is not this one nor
/// its child: `PID errno` per line.
const ATTACH_OTHERS: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
me = os.getpid()
for name in os.listdir('/proc'):
    if not name.isdigit() or int(name) == me:
        continue
    pid = int(name)
    rc = libc.ptrace(16, pid, None, None)
    print(pid, 'attached' if rc == 0 else os.strerror(ctypes.get_errno()))
"#;

/// `[process] ptrace = "sandbox"` lets strace and gdb trace the program's
/// own children; `default` refuses ptrace. Attack: even so, no process of
/// the sandbox that sluice runs (its init, the guard's connector) can be
/// attached to, and nothing outside is in view (a PID namespace of its own,
/// and Landlock's ptrace scope behind it).
#[test]
fn debuggers_trace_the_programs_children_only_where_the_policy_says() {
    let fx = Fixture::new(PROBE);
    let tracing = fx.write_policy(
        "tracing.toml",
        "extends = [\"default\"]\n\n[process]\nptrace = \"sandbox\"\n",
    );
    let strace = [
        "strace",
        "-f",
        "-e",
        "trace=execve",
        "/bin/sh",
        "-c",
        "/bin/true",
    ];
    let run = |policy: &str, program: &[&str]| {
        execute(fx.sluice_command(&["--policy", policy, "-v"], program))
    };
    let out = run(&tracing, &strace);
    out.assert_code(0);
    assert!(out.stderr.contains("execve(\"/bin/true\""), "{out}");
    assert!(
        out.stderr
            .contains("ptrace of the sandbox's own processes allowed"),
        "{out}"
    );
    let gdb = [
        "gdb",
        "-nx",
        "-batch",
        "-ex",
        "run",
        "-ex",
        "info inferiors",
        "--args",
        "/bin/true",
    ];
    let out = run(&tracing, &gdb);
    out.assert_code(0);
    assert!(out.stdout.contains("exited normally"), "{out}");
    // Control: `default` refuses it.
    let out = run("default", &strace);
    assert_ne!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("Operation not permitted"), "{out}");

    // Attack: the other processes in view are sluice's, and stay out of reach.
    let out = run(&tracing, &["python3", "-c", ATTACH_OTHERS]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(!lines.is_empty(), "no other process in view: {out}");
    assert!(
        lines.iter().all(|l| l.ends_with("Operation not permitted")),
        "{out}"
    );
}
