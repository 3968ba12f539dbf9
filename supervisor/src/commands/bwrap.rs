//! `bwrap` inside a sluice sandbox: bubblewrap's command line as a stacked,
//! narrower sluice session for that command.
//!
//! Agents wrap each tool call in bubblewrap (Claude Code's sandbox-runtime,
//! `codex sandbox`), which cannot make its namespaces inside sluice. The
//! sandbox's view holds sluice's own binary at `/usr/bin/bwrap` (a
//! [`StandIn`], bound read-only over the host's file) and sluice started
//! under that name reads bubblewrap's options ([`parse`]), turns the view
//! they describe into a policy ([`Request::policy_toml`]) and runs the
//! command in a session stacked on the enclosing one (`run::run_with`):
//! Landlock and seccomp only narrow, so the command gets at most what both
//! allow. An option whose effect a stacked session cannot give (a tree
//! hidden or made read-only inside one it may read or write, a bind to
//! another place, a seccomp program, another uid) is refused with a message
//! naming it: the stand-in never runs a command wider than asked.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use sandbox_child::StandIn;

use crate::exit;

/// Where programs call bubblewrap; `/usr/bin` is on every `PATH` too.
pub const PATH: &str = "/usr/bin/bwrap";

/// The name sluice answers to as the stand-in.
const NAME: &str = "bwrap";

/// The files the sandbox sees replaced by sluice's own binary.
pub fn stand_ins() -> Vec<StandIn> {
    match std::env::current_exe().and_then(|p| p.canonicalize()) {
        Ok(source) => vec![StandIn {
            path: PathBuf::from(PATH),
            source,
        }],
        Err(e) => {
            tracing::warn!("no bwrap stand-in in the sandbox: locating sluice's binary: {e}");
            Vec::new()
        }
    }
}

/// The stand-in's logging unless `SLUICE_LOG` says otherwise: the stacked
/// session's expected warnings (no namespaces, no PID namespace, no
/// read-only copy of the mount tree) would be in every wrapped command's
/// output; the enforcement report in the audit record still says them.
pub const LOG_LEVEL: &str = "error";

/// Whether a stacked session leaves its best-effort warnings unsaid: the
/// bwrap stand-in, unless `SLUICE_LOG` is set.
pub fn quiet() -> bool {
    invoked_as_bwrap() && std::env::var_os("SLUICE_LOG").is_none()
}

/// Whether sluice was started as `bwrap` (argv[0]'s last component).
pub fn invoked_as_bwrap() -> bool {
    std::env::args_os()
        .next()
        .is_some_and(|a| Path::new(&a).file_name() == Some(OsStr::new(NAME)))
}

/// The stand-in's entry point: bubblewrap's arguments, its exit code.
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    crate::cli::finish(NAME, run(args))
}

fn run(args: Vec<OsString>) -> Result<i32> {
    let mut request = match parse(args, std::env::vars_os().collect())? {
        Parsed::Run(request) => request,
        Parsed::Said(text) => {
            print!("{text}");
            return Ok(0);
        }
    };
    if crate::nesting::detect().is_none() {
        return Err(exit::with_code(
            exit::ERROR,
            "this is sluice's stand-in for bubblewrap, for use inside a sluice sandbox; \
             outside one, run bubblewrap itself",
        ));
    }
    request.relay_ports = relay_ports(&request);
    if request.die_with_parent {
        die_with_parent()?;
    }
    if let Some(dir) = &request.chdir {
        std::env::set_current_dir(dir)
            .with_context(|| format!("--chdir {}: cannot enter it", dir.display()))?;
    }
    let cwd = std::env::current_dir().context("the current directory")?;
    let spec = policies::load_str("bwrap", &request.policy_toml()?, &cwd)
        .map_err(|e| anyhow::anyhow!("the policy made from bwrap's arguments: {e}"))?;
    let mut argv: Vec<OsString> = vec!["--nested".into(), "stack".into(), "--".into()];
    argv.extend(request.command.iter().cloned());
    let args = crate::cli::run_args(argv).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tmpdir = request
        .env
        .iter()
        .find(|(k, _)| k == "TMPDIR")
        .map(|(_, v)| v.clone());
    super::run::run_with(args, Some(super::run::Given { spec, tmpdir }))
}

/// `--die-with-parent`: the stand-in (the stacked session's supervisor,
/// whose death kills the command) goes when its caller does.
fn die_with_parent() -> Result<()> {
    // SAFETY: getppid cannot fail.
    let parent = unsafe { libc::getppid() };
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; no pointers.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("--die-with-parent");
    }
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent {
        return Err(exit::with_code(
            exit::ERROR,
            "--die-with-parent: the caller is gone",
        ));
    }
    Ok(())
}

/// What the command may do with a tree of its view; ordered, wider last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Access {
    /// Covered (`--tmpfs`, `--ro-bind /dev/null`): nothing of it seen.
    Hidden,
    /// Read and executed (`--ro-bind`, `--proc`, `--dev`'s tree).
    Read,
    /// Read, written and executed (`--bind`, `--dev-bind`).
    Write,
}

/// One entry of the view, in bubblewrap's order.
#[derive(Debug, Clone)]
struct Mount {
    path: PathBuf,
    access: Access,
    /// `-try`: a missing source is skipped.
    optional: bool,
    /// The option as written, for messages.
    option: String,
}

/// A command line bubblewrap accepts and the stand-in can give.
#[derive(Debug, Default)]
struct Request {
    mounts: Vec<Mount>,
    /// `--dev /dev`: the harmless devices written (as in `default`).
    dev: bool,
    /// `--unshare-net` (or `--unshare-all` without `--share-net`).
    no_network: bool,
    chdir: Option<PathBuf>,
    /// The command's environment, as bubblewrap would pass it.
    env: Vec<(OsString, OsString)>,
    die_with_parent: bool,
    command: Vec<OsString>,
    /// The variables `--setenv` gave (a proxy the caller set up for the
    /// command, unlike one the caller's own environment names).
    set_here: Vec<OsString>,
    /// `--unshare-net` with a proxy on loopback: the ports the command may
    /// listen on and connect to ([`relay_ports`]).
    relay_ports: Vec<u16>,
}

enum Parsed {
    Run(Request),
    /// `--help`, `--version`: printed, nothing run.
    Said(String),
}

/// A refusal: exit 125 with bubblewrap's option named.
fn refuse(message: String) -> anyhow::Error {
    exit::with_code(exit::ERROR, message)
}

fn cannot(option: &str, why: &str) -> anyhow::Error {
    refuse(format!(
        "{option}: sluice's stand-in for bubblewrap cannot give this inside a sluice \
         sandbox ({why}); leave it out, or run the command without bwrap"
    ))
}

/// Devices `--dev` makes writable, where the enclosing view has them (the
/// same set `default` writes; /dev/shm and /dev/pts stay out, as there).
const DEV_WRITE: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];

/// Options taken with no effect of their own: what each is for, sluice's
/// sandbox does already, or cannot do at all (said in ARCHITECTURE.md).
const NO_EFFECT: &[&str] = &[
    // sluice's filter refuses TIOCSTI and TIOCLINUX, the reason for it.
    "--new-session",
    // The command holds no capability in any sluice sandbox.
    "--unshare-user",
    "--unshare-user-try",
    "--disable-userns",
    "--assert-userns-disabled",
    // Signals and ptrace reach only the command's own processes (Landlock
    // scopes); see ARCHITECTURE.md for what /proc still shows.
    "--unshare-pid",
    // No capability: the host name cannot be changed either way.
    "--unshare-uts",
    "--unshare-cgroup",
    "--unshare-cgroup-try",
    // SysV IPC stays the enclosing session's (see ARCHITECTURE.md).
    "--unshare-ipc",
];

/// Options the stand-in refuses, with why.
const REFUSED: &[(&str, &str)] = &[
    ("--cap-add", "no capability is held in a sluice sandbox"),
    ("--userns", "no user namespace can be entered"),
    ("--userns2", "no user namespace can be entered"),
    ("--pidns", "no PID namespace can be entered"),
    ("--hostname", "no UTS namespace can be made"),
    ("--argv0", "the command's argv[0] is the command itself"),
    ("--lock-file", "no lock is taken in the sandbox's view"),
    ("--sync-fd", "no descriptor is kept for the command"),
    (
        "--seccomp",
        "sluice's own filter applies; another cannot be added here",
    ),
    (
        "--add-seccomp-fd",
        "sluice's own filter applies; another cannot be added here",
    ),
    ("--block-fd", "the command starts at once"),
    ("--userns-block-fd", "no user namespace is made"),
    ("--info-fd", "no status is written"),
    ("--json-status-fd", "no status is written"),
    ("--exec-label", "no SELinux label is set"),
    ("--file-label", "no SELinux label is set"),
    ("--mqueue", "no IPC namespace of its own"),
    ("--perms", "no file is made in the view"),
    ("--size", "no tmpfs is made"),
    ("--chmod", "nothing in the view is changed"),
    ("--file", "no file is made in the view"),
    ("--bind-data", "no file is made in the view"),
    ("--ro-bind-data", "no file is made in the view"),
    ("--overlay-src", "no overlay is mounted"),
    ("--overlay", "no overlay is mounted"),
    ("--tmp-overlay", "no overlay is mounted"),
    ("--ro-overlay", "no overlay is mounted"),
    (
        "--as-pid-1",
        "the command is not the init of a PID namespace",
    ),
    ("--level-prefix", "messages are sluice's"),
];

const HELP: &str = "\
usage: bwrap [OPTIONS...] [--] COMMAND [ARGS...]

sluice's stand-in for bubblewrap: the command runs in a sluice session
stacked on this one, narrower. Understood: --ro-bind[-try], --bind[-try],
--dev-bind[-try] of a path onto itself, --ro-bind /dev/null PATH and --tmpfs
over what the command sees nothing of anyway, --remount-ro and --dir of what
already is so, --proc /proc, --dev /dev, --unshare-net/-all (no network),
--share-net, --unshare-user/-pid/-ipc/-uts/-cgroup[-try], --die-with-parent,
--new-session, --chdir, --setenv, --unsetenv, --clearenv, --cap-drop,
--uid/--gid (your own), --args FD, --disable-userns. Anything else is refused.
";

/// The next argument of `option`, or a refusal.
fn value(args: &mut std::collections::VecDeque<OsString>, option: &str) -> Result<OsString> {
    args.pop_front()
        .ok_or_else(|| refuse(format!("{option} takes an argument")))
}

fn parse(args: Vec<OsString>, env: Vec<(OsString, OsString)>) -> Result<Parsed> {
    let mut args: std::collections::VecDeque<OsString> = args.into();
    let mut r = Request {
        env,
        ..Request::default()
    };
    let mut unshare_net = false;
    let mut read_args_file = false;
    while let Some(arg) = args.pop_front() {
        let Some(option) = arg.to_str().filter(|a| a.starts_with("--")) else {
            // The command: bubblewrap's options end at the first word that
            // is not one.
            args.push_front(arg);
            break;
        };
        let option = option.to_owned();
        match option.as_str() {
            "--" => break,
            "--help" => return Ok(Parsed::Said(HELP.to_owned())),
            "--version" => {
                return Ok(Parsed::Said(format!(
                    "bubblewrap (sluice {} stand-in)\n",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            "--args" => {
                if read_args_file {
                    return Err(refuse("--args: given twice".to_owned()));
                }
                read_args_file = true;
                let fd = value(&mut args, &option)?;
                for (i, a) in args_from_fd(&fd)?.into_iter().enumerate() {
                    args.insert(i, a);
                }
            }
            "--unshare-net" | "--unshare-all" => unshare_net = true,
            "--share-net" => unshare_net = false,
            "--die-with-parent" => r.die_with_parent = true,
            "--clearenv" => r.env.clear(),
            "--setenv" => {
                let name = value(&mut args, &option)?;
                let val = value(&mut args, &option)?;
                r.env.retain(|(k, _)| *k != name);
                r.set_here.push(name.clone());
                r.env.push((name, val));
            }
            "--unsetenv" => {
                let name = value(&mut args, &option)?;
                r.env.retain(|(k, _)| *k != name);
            }
            "--chdir" => r.chdir = Some(value(&mut args, &option)?.into()),
            "--cap-drop" => {
                value(&mut args, &option)?;
            }
            "--uid" | "--gid" => {
                let id = value(&mut args, &option)?;
                // SAFETY: geteuid and getegid cannot fail.
                let own = unsafe {
                    match option.as_str() {
                        "--uid" => libc::geteuid(),
                        _ => libc::getegid(),
                    }
                };
                if id.to_str() != Some(own.to_string().as_str()) {
                    return Err(cannot(
                        &format!("{option} {}", id.to_string_lossy()),
                        "the command keeps the ids it runs with",
                    ));
                }
            }
            "--bind" | "--bind-try" | "--dev-bind" | "--dev-bind-try" | "--ro-bind"
            | "--ro-bind-try" => {
                let src = absolute(&option, value(&mut args, &option)?)?;
                let dest = absolute(&option, value(&mut args, &option)?)?;
                r.mounts.push(bind(&option, &src, &dest)?);
            }
            "--proc" | "--dev" => {
                let dest = absolute(&option, value(&mut args, &option)?)?;
                let want = if option == "--proc" { "/proc" } else { "/dev" };
                if dest != Path::new(want) {
                    return Err(cannot(
                        &format!("{option} {}", dest.display()),
                        &format!("the enclosing sandbox's {want} is the only one, at {want}"),
                    ));
                }
                r.dev |= option == "--dev";
                r.mounts.push(Mount {
                    path: real(&dest),
                    access: Access::Read,
                    optional: false,
                    option,
                });
            }
            "--tmpfs" => {
                let dest = absolute(&option, value(&mut args, &option)?)?;
                r.mounts.push(Mount {
                    path: real(&dest),
                    access: Access::Hidden,
                    optional: false,
                    option,
                });
            }
            "--remount-ro" | "--dir" => {
                let dest = absolute(&option, value(&mut args, &option)?)?;
                r.mounts.push(Mount {
                    path: real(&dest),
                    // Checked against the view once it is known.
                    access: Access::Read,
                    optional: true,
                    option,
                });
            }
            "--symlink" => {
                let target = value(&mut args, &option)?;
                let link = absolute(&option, value(&mut args, &option)?)?;
                if std::fs::read_link(&link).ok().as_deref() != Some(Path::new(&target)) {
                    return Err(cannot(
                        &format!("--symlink {} {}", target.to_string_lossy(), link.display()),
                        "no symlink is made in the view; only one already there is accepted",
                    ));
                }
            }
            other => {
                if NO_EFFECT.contains(&other) {
                    continue;
                }
                match REFUSED.iter().find(|(o, _)| *o == other) {
                    Some((o, why)) => return Err(cannot(o, why)),
                    None => {
                        return Err(refuse(format!(
                            "unknown option {other}: sluice's stand-in for bubblewrap \
                             runs nothing it does not understand (`bwrap --help` lists \
                             what it does)"
                        )))
                    }
                }
            }
        }
    }
    r.command = args.into();
    if r.command.is_empty() {
        return Err(refuse("no command given".to_owned()));
    }
    r.no_network = unshare_net;
    r.check_view()?;
    Ok(Parsed::Run(r))
}

/// A path bubblewrap's option names: absolute, lexically normal.
fn absolute(option: &str, path: OsString) -> Result<PathBuf> {
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(refuse(format!(
            "{option} {}: give an absolute path",
            path.display()
        )));
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                return Err(refuse(format!(
                    "{option} {}: give the path without '..'",
                    path.display()
                )))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `path` with the symlinks on its way resolved, as bubblewrap mounts at
/// the place a destination leads to (and Landlock judges it): the longest
/// part that exists, canonical, then the rest. Compared lexically, a mask
/// named through a link would miss the tree it lies in.
fn real(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if let Ok(found) = at.canonicalize() {
            return missing.iter().rev().fold(found, |p, name| p.join(name));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// `--bind`, `--dev-bind`, `--ro-bind` (and `-try`): the same tree at the
/// same place, or `/dev/null` over a path (nothing of it seen).
fn bind(option: &str, src: &Path, dest: &Path) -> Result<Mount> {
    let optional = option.ends_with("-try");
    let ro = option.starts_with("--ro-bind");
    let same = src == dest
        || matches!(
            (src.canonicalize(), dest.canonicalize()),
            (Ok(a), Ok(b)) if a == b
        );
    let access = if same {
        if ro {
            Access::Read
        } else {
            Access::Write
        }
    } else if ro && (src == Path::new("/dev/null") || is_empty(src)) {
        // A mask: what is at `dest` shows nothing (given as not seen).
        Access::Hidden
    } else {
        return Err(cannot(
            &format!("{option} {} {}", src.display(), dest.display()),
            "a tree is seen only where it is; bind a path onto itself",
        ));
    };
    if !optional && !same_exists(src) {
        return Err(refuse(format!(
            "{option}: can't find source path {}",
            src.display()
        )));
    }
    Ok(Mount {
        path: real(dest),
        access,
        optional,
        option: option.to_owned(),
    })
}

/// An empty directory or empty regular file: what a mask is made of.
fn is_empty(p: &Path) -> bool {
    match p.metadata() {
        Ok(m) if m.is_dir() => std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none()),
        Ok(m) => m.is_file() && m.len() == 0,
        Err(_) => false,
    }
}

fn same_exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

impl Request {
    /// The view as bubblewrap would build it: a later mount covers what
    /// earlier ones put beneath it. Landlock can only add access, so a
    /// path given less than a tree it lies in is refused (hiding, or
    /// making read-only, part of what the command may read or write).
    fn view(&self) -> Vec<&Mount> {
        let mut view: Vec<&Mount> = Vec::new();
        for m in &self.mounts {
            if matches!(m.option.as_str(), "--remount-ro" | "--dir") {
                continue;
            }
            view.retain(|e| !e.path.starts_with(&m.path));
            view.push(m);
        }
        view
    }

    fn check_view(&self) -> Result<()> {
        let view = self.view();
        let covering = |p: &Path| {
            view.iter()
                .filter(|e| p.starts_with(&e.path) && p != e.path)
                .map(|e| e.access)
                .max()
        };
        for m in &view {
            match (m.access, covering(&m.path)) {
                (Access::Hidden, None) if m.option == "--tmpfs" => {
                    return Err(cannot(
                        &format!("--tmpfs {}", m.path.display()),
                        "no directory of its own can be made in the view; bind a \
                         directory onto itself instead",
                    ))
                }
                // Hidden inside a tree only read: the tree is granted
                // around it ([`Request::grants`]).
                (Access::Hidden, Some(Access::Read)) => {}
                (mine, Some(outer)) if mine < outer => {
                    return Err(cannot(
                        &format!("{} {}", m.option, m.path.display()),
                        &format!(
                            "it would give less inside a tree the command may {}, and a \
                             stacked sandbox can only add access (Landlock)",
                            if outer == Access::Write {
                                "write"
                            } else {
                                "read"
                            }
                        ),
                    ))
                }
                _ => {}
            }
        }
        // `--remount-ro` and `--dir` are accepted for what is so already.
        for m in &self.mounts {
            let wider = covering(&m.path).is_some_and(|a| a == Access::Write)
                || view
                    .iter()
                    .any(|e| e.path == m.path && e.access == Access::Write);
            if m.option == "--remount-ro" && wider {
                return Err(cannot(
                    &format!("--remount-ro {}", m.path.display()),
                    "it is inside a tree the command may write, and a stacked sandbox \
                     can only add access (Landlock)",
                ));
            }
            if m.option == "--dir" && !m.path.is_dir() {
                return Err(cannot(
                    &format!("--dir {}", m.path.display()),
                    "no directory is made in the view; only one already there is accepted",
                ));
            }
        }
        Ok(())
    }

    /// The trees granted: the view's, except that a tree only read with
    /// something hidden beneath it (`--ro-bind / /` then `--tmpfs
    /// /etc/ssh/ssh_config.d`) is granted as each entry beside the way
    /// down to what is hidden, the directories on the way getting nothing
    /// (so they cannot be listed: narrower than bubblewrap, never wider).
    /// Symlinks beside the way are left out: what they lead to is judged
    /// by its own grant.
    fn grants(&self) -> Result<Vec<Mount>> {
        let view = self.view();
        let mut out = Vec::new();
        for m in &view {
            let holes: Vec<&Path> = view
                .iter()
                .filter(|h| h.access < m.access && h.path.starts_with(&m.path) && h.path != m.path)
                .map(|h| h.path.as_path())
                .collect();
            if holes.is_empty() {
                out.push((*m).clone());
            } else {
                around(m, &m.path, &holes, &mut out)?;
            }
        }
        Ok(out)
    }

    /// The stacked session's policy, as TOML text: the view's trees (each
    /// executable, as bubblewrap's binds are), the devices, the network,
    /// and the environment bubblewrap would pass.
    fn policy_toml(&self) -> Result<String> {
        use toml::Value;
        let entry = |m: &Mount| -> Result<Value> {
            let text = policy_path(&m.option, &m.path)?;
            Ok(if m.optional {
                let mut t = toml::Table::new();
                t.insert("path".into(), Value::String(text));
                t.insert("optional".into(), Value::Boolean(true));
                Value::Table(t)
            } else {
                Value::String(text)
            })
        };
        let (mut read, mut execute, mut write) = (Vec::new(), Vec::new(), Vec::new());
        for m in self.grants()? {
            match m.access {
                Access::Hidden => {}
                Access::Read if matches!(m.option.as_str(), "--proc" | "--dev") => {
                    read.push(entry(&m)?)
                }
                Access::Read => execute.push(entry(&m)?),
                Access::Write => {
                    execute.push(entry(&m)?);
                    write.push(entry(&m)?);
                }
            }
        }
        if self.dev {
            for dev in DEV_WRITE.iter().filter(|d| Path::new(d).exists()) {
                write.push(Value::String((*dev).to_owned()));
            }
        }
        let mut fs = toml::Table::new();
        fs.insert("read".into(), Value::Array(read));
        fs.insert("execute".into(), Value::Array(execute));
        fs.insert("write".into(), Value::Array(write));
        let mut net = toml::Table::new();
        let mode = match (self.no_network, self.relay_ports.is_empty()) {
            (false, _) => "all",
            (true, true) => "none",
            (true, false) => {
                let ports: Vec<Value> = self
                    .relay_ports
                    .iter()
                    .map(|p| Value::Integer(i64::from(*p)))
                    .collect();
                net.insert("connect".into(), Value::Array(ports.clone()));
                net.insert("bind".into(), Value::Array(ports));
                "tcp"
            }
        };
        net.insert("mode".into(), Value::String(mode.into()));
        let mut set = toml::Table::new();
        for (k, v) in &self.env {
            let sluices = crate::commands::run::SLUICE_SET.iter().any(|s| k == *s);
            if sluices && k != "TMPDIR" && self.set_here.contains(k) {
                return Err(refuse(format!(
                    "--setenv {}: sluice sets it itself in the stacked session",
                    k.to_string_lossy()
                )));
            }
            if k == "TMPDIR" || sluices {
                // sluice's own, set by the stacked session; TMPDIR is
                // passed as it is (`run::Given::tmpdir`).
                continue;
            }
            let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else {
                return Err(refuse(format!(
                    "the environment variable {} is not valid text, which a sluice \
                     policy cannot carry: --unsetenv it",
                    k.to_string_lossy()
                )));
            };
            set.insert(k.to_owned(), Value::String(v.to_owned()));
        }
        let mut env = toml::Table::new();
        env.insert("pass".into(), Value::Array(Vec::new()));
        env.insert("set".into(), Value::Table(set));
        let mut top = toml::Table::new();
        top.insert("filesystem".into(), Value::Table(fs));
        top.insert("network".into(), Value::Table(net));
        top.insert("environment".into(), Value::Table(env));
        toml::to_string(&top).context("writing the policy made from bwrap's arguments")
    }
}

/// `--unshare-net` gives bubblewrap's command a loopback of its own, where
/// sandboxing tools run their proxy's relay (sandbox-runtime's `socat` on
/// 3128 and 1080, named in the `*_PROXY` variables it sets with
/// `--setenv`; those the caller inherited name its own proxy, outside). Stacked, no
/// network namespace can be made, and Landlock names ports, not addresses;
/// so the command may listen on and connect to those ports only where the
/// enclosing network namespace holds nothing but loopback (the outer
/// session in the hosts mode): there a port reaches nothing else. A port
/// already taken there (sluice's own proxy holds 3128 in the hosts mode)
/// or one the enclosing sandbox does not let us bind is not granted, and
/// said. Elsewhere the command has no network, as asked.
fn relay_ports(r: &Request) -> Vec<u16> {
    if !r.no_network || !only_loopback() {
        return Vec::new();
    }
    let mut ports: Vec<u16> = r
        .env
        .iter()
        .filter(|(k, _)| r.set_here.contains(k))
        .filter(|(k, _)| {
            crate::net::PROXY_VARIABLES.iter().any(|p| k == p)
                || [
                    "FTP_PROXY",
                    "ftp_proxy",
                    "GRPC_PROXY",
                    "grpc_proxy",
                    "RSYNC_PROXY",
                ]
                .iter()
                .any(|p| k == p)
        })
        .filter_map(|(_, v)| loopback_port(v.to_str()?))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports.retain(
        |port| match std::net::TcpListener::bind(("127.0.0.1", *port)) {
            Ok(_) => true,
            Err(e) => {
                eprintln!(
                    "bwrap: the command's proxy port {port} on loopback cannot be its own \
                 ({e}: in use in the enclosing sandbox's network, such as sluice's own \
                 proxy, or not allowed there); it stays cut off"
                );
                false
            }
        },
    );
    ports
}

/// Whether this network namespace has no interface but loopback
/// (`/proc/net/dev`; unreadable counts as no).
fn only_loopback() -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/dev") else {
        return false;
    };
    let mut names = table
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()));
    names.all(|n| n == "lo")
}

/// The port of a proxy URL on loopback (`http://user:pw@localhost:3128`,
/// `socks5h://127.0.0.1:1080`, `localhost:1080`).
fn loopback_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    port.parse().ok().filter(|p| loopback && *p != 0)
}

/// The most entries a tree granted around what is hidden in it may take.
const MAX_AROUND: usize = 4096;

/// `m`'s access granted to each entry of `dir` beside the way to `holes`
/// ([`Request::grants`]).
fn around(m: &Mount, dir: &Path, holes: &[&Path], out: &mut Vec<Mount>) -> Result<()> {
    let listing = |e: std::io::Error| {
        anyhow::Error::from(e).context(format!(
            "{} {}: listing {} to grant what is beside the hidden {}",
            m.option,
            m.path.display(),
            dir.display(),
            holes[0].display()
        ))
    };
    for (path, kind) in children(dir).map_err(listing)? {
        if holes.iter().any(|h| *h == path) || kind.is_symlink() {
            continue;
        }
        if holes.iter().any(|h| h.starts_with(&path)) {
            if kind.is_dir() {
                around(m, &path, holes, out)?;
            }
            continue;
        }
        if out.len() >= MAX_AROUND {
            return Err(cannot(
                &format!("{} {}", m.option, m.path.display()),
                &format!("what it hides leaves more than {MAX_AROUND} entries to grant one by one"),
            ));
        }
        out.push(Mount {
            path,
            optional: true,
            ..m.clone()
        });
    }
    Ok(())
}

/// The entries of `dir` with their types. A directory the enclosing
/// sandbox does not let us list (its policy-built root, `/`, holds only
/// the trees it allows, each a mount) is known by the mount points
/// beneath it.
fn children(dir: &Path) -> std::io::Result<Vec<(PathBuf, std::fs::FileType)>> {
    let names: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let table = std::fs::read("/proc/self/mountinfo")?;
            let mut names: Vec<PathBuf> = mount_points(&table)
                .into_iter()
                .filter(|p| p.starts_with(dir) && p != dir)
                .filter_map(|p| {
                    let rest = p.strip_prefix(dir).ok()?.components().next()?;
                    Some(dir.join(rest))
                })
                .collect();
            names.sort();
            names.dedup();
            names
        }
        Err(e) => return Err(e),
    };
    names
        .into_iter()
        .filter_map(|p| match p.symlink_metadata() {
            Ok(m) => Some(Ok((p, m.file_type()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(e)),
        })
        .collect()
}

/// The mount points of a `/proc/self/mountinfo` table (the fifth field,
/// with the kernel's octal escapes of space, tab, newline and backslash).
fn mount_points(table: &[u8]) -> Vec<PathBuf> {
    table
        .split(|b| *b == b'\n')
        .filter_map(|line| line.split(|b| *b == b' ').nth(4))
        .map(|field| {
            let mut out = Vec::with_capacity(field.len());
            let mut i = 0;
            while i < field.len() {
                let octal = field
                    .get(i + 1..i + 4)
                    .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
                match octal {
                    Some(d) => {
                        out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                        i += 4;
                    }
                    None => {
                        out.push(field[i]);
                        i += 1;
                    }
                }
            }
            PathBuf::from(OsString::from_vec(out))
        })
        .collect()
}

/// A path as a policy entry: text without sluice's `~` and `$` syntax.
fn policy_path(option: &str, path: &Path) -> Result<String> {
    match path.to_str() {
        Some(text) if !text.contains('$') => Ok(text.to_owned()),
        _ => Err(refuse(format!(
            "{option} {}: a path with '$' or that is not valid text cannot be \
             put in a sluice policy",
            path.display()
        ))),
    }
}

/// `--args FD`: more arguments, NUL-separated, read from the descriptor.
fn args_from_fd(fd: &OsStr) -> Result<Vec<OsString>> {
    let fd: libc::c_int = fd
        .to_str()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| refuse(format!("--args {}: not a descriptor", fd.to_string_lossy())))?;
    // SAFETY: F_GETFD only asks whether `fd` is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(refuse(format!("--args {fd}: not an open descriptor")));
    }
    // SAFETY: `fd` is open (checked above) and was handed to us for this
    // alone, as bubblewrap takes it: read to the end, then closed.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut bytes = Vec::new();
    file.by_ref()
        .take(1 << 20)
        .read_to_end(&mut bytes)
        .with_context(|| format!("--args {fd}: reading it"))?;
    if bytes.last() == Some(&0) {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(bytes
        .split(|b| *b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<Request> {
        let args = args.iter().map(OsString::from).collect();
        let env = vec![("HOME".into(), "/root".into()), ("A".into(), "1".into())];
        match parse(args, env)? {
            Parsed::Run(r) => Ok(r),
            Parsed::Said(_) => anyhow::bail!("said"),
        }
    }

    #[test]
    fn a_claude_code_like_command_line_becomes_a_policy() {
        let r = parsed(&[
            "--new-session",
            "--die-with-parent",
            "--unsetenv",
            "A",
            "--setenv",
            "B",
            "2",
            "--unshare-net",
            "--ro-bind",
            "/",
            "/",
            "--bind",
            "/tmp",
            "/tmp",
            "--dev",
            "/dev",
            "--unshare-pid",
            "--unshare-user",
            "--proc",
            "/proc",
            "--",
            "/bin/sh",
            "-c",
            "true",
        ])
        .unwrap();
        assert!(r.no_network && r.die_with_parent);
        assert_eq!(r.command, ["/bin/sh", "-c", "true"]);
        let text = r.policy_toml().unwrap();
        let policy: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(policy["network"]["mode"].as_str(), Some("none"));
        assert_eq!(
            policy["filesystem"]["execute"].as_array().unwrap().len(),
            2,
            "{text}"
        );
        assert_eq!(policy["filesystem"]["read"].as_array().unwrap().len(), 2);
        assert!(policy["filesystem"]["write"]
            .as_array()
            .unwrap()
            .contains(&toml::Value::String("/tmp".into())));
        let set = policy["environment"]["set"].as_table().unwrap();
        assert_eq!(set.get("B").and_then(|v| v.as_str()), Some("2"));
        assert!(set.get("A").is_none() && set.get("HOME").is_some());
    }

    #[test]
    fn what_a_stacked_sandbox_cannot_give_is_refused() {
        for args in [
            // Hidden, or read-only, inside a tree the command may use.
            &["--bind", "/", "/", "--tmpfs", "/tmp", "true"][..],
            &[
                "--bind",
                "/tmp",
                "/tmp",
                "--ro-bind",
                "/dev/null",
                "/tmp/x",
                "true",
            ],
            &[
                "--bind",
                "/tmp",
                "/tmp",
                "--ro-bind",
                "/tmp",
                "/tmp/..",
                "true",
            ],
            &["--bind", "/tmp", "/tmp", "--remount-ro", "/tmp", "true"],
            // Elsewhere, or not at all.
            &["--bind", "/usr", "/opt", "true"],
            &["--tmpfs", "/nowhere", "true"],
            &["--proc", "/elsewhere", "true"],
            &["--seccomp", "3", "true"],
            &["--cap-add", "ALL", "true"],
            &["--uid", "12345", "true"],
            &["--polcy", "true"],
            &["--ro-bind", "/no/such/path", "/no/such/path", "true"],
            &["--ro-bind", "/usr", "/usr"],
            &["--setenv", "SLUICE_BROKER_FD", "3", "true"],
        ] {
            let policy = parsed(args).and_then(|r| r.policy_toml());
            assert!(policy.is_err(), "accepted: {args:?}");
        }
    }

    #[test]
    fn a_tree_only_read_is_granted_around_what_is_hidden_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["a/hidden/x", "a/kept", "b"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("a/file"), "").unwrap();
        std::os::unix::fs::symlink(d.join("a/hidden"), d.join("a/link")).unwrap();
        let root = d.to_str().unwrap();
        let hidden = d.join("a/hidden");
        let r = parsed(&[
            "--ro-bind",
            root,
            root,
            "--tmpfs",
            hidden.to_str().unwrap(),
            "true",
        ])
        .unwrap();
        let mut got: Vec<PathBuf> = r
            .grants()
            .unwrap()
            .into_iter()
            .filter(|m| m.access != Access::Hidden)
            .map(|m| m.path)
            .collect();
        got.sort();
        // Beside the way: b, a/file, a/kept; not a (on the way), not the
        // hidden tree, not the symlink into it.
        assert_eq!(got, [d.join("a/file"), d.join("a/kept"), d.join("b")]);
    }

    #[test]
    fn an_empty_directory_bound_over_a_path_is_a_mask() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::create_dir_all(dir.path().join("ws/.claude")).unwrap();
        let (e, ws) = (empty.to_str().unwrap(), dir.path().join("ws"));
        let (ws, masked) = (ws.to_str().unwrap(), ws.join(".claude"));
        let masked = masked.to_str().unwrap();
        let read = parsed(&["--ro-bind", ws, ws, "--ro-bind", e, masked, "true"]).unwrap();
        assert!(read.view().iter().any(|m| m.access == Access::Hidden));
        assert!(parsed(&["--bind", ws, ws, "--ro-bind", e, masked, "true"]).is_err());
        // Not empty: a bind elsewhere, refused.
        std::fs::write(empty.join("x"), "").unwrap();
        assert!(parsed(&["--ro-bind", ws, ws, "--ro-bind", e, masked, "true"]).is_err());
    }

    #[test]
    fn proxy_ports_on_loopback_are_read_from_their_urls() {
        for (url, port) in [
            ("http://srt.x%3D:secret@localhost:3128", Some(3128)),
            ("socks5h://u:p@127.0.0.1:1080/", Some(1080)),
            ("localhost:1080", Some(1080)),
            ("http://[::1]:8080", Some(8080)),
            ("http://proxy.example.com:3128", None),
            ("http://localhost.example.com:3128", None),
            ("http://10.0.0.1:3128", None),
            ("http://localhost", None),
        ] {
            assert_eq!(loopback_port(url), port, "{url}");
        }
    }

    #[test]
    fn a_mask_named_through_a_symlink_is_judged_where_it_leads() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join(".env"), "x").unwrap();
        std::os::unix::fs::symlink(&ws, dir.path().join("link")).unwrap();
        let ws = ws.to_str().unwrap();
        let via_link = dir.path().join("link/.env");
        let via_link = via_link.to_str().unwrap();
        // Written tree: refused, as named directly.
        assert!(parsed(&["--bind", ws, ws, "--ro-bind", "/dev/null", via_link, "true"]).is_err());
        // Read tree: the mask holds where the link leads.
        let r = parsed(&["--ro-bind", ws, ws, "--tmpfs", via_link, "true"]).unwrap();
        let granted: Vec<PathBuf> = r
            .grants()
            .unwrap()
            .into_iter()
            .filter(|m| m.access != Access::Hidden)
            .map(|m| m.path)
            .collect();
        assert!(granted.is_empty(), "{granted:?}");
    }

    #[test]
    fn mount_points_are_read_with_their_escapes() {
        let table = b"36 35 98:0 / /mnt/a\\040b rw - ext3 /dev/root rw\n\
                      37 35 98:0 /x /usr ro - ext3 /dev/root rw\n";
        assert_eq!(
            mount_points(table),
            [PathBuf::from("/mnt/a b"), PathBuf::from("/usr")]
        );
    }

    #[test]
    fn a_later_wider_mount_and_a_mask_outside_the_view_are_taken() {
        let r = parsed(&[
            "--ro-bind",
            "/usr",
            "/usr",
            "--bind",
            "/tmp",
            "/tmp",
            "--ro-bind",
            "/dev/null",
            "/nowhere/x",
            "--ro-bind-try",
            "/no/such",
            "/no/such",
            "--share-net",
            "true",
        ])
        .unwrap();
        assert!(!r.no_network);
        // A later mount covers what earlier ones put beneath it.
        let r2 = parsed(&["--ro-bind", "/tmp", "/tmp", "--bind", "/", "/", "true"]).unwrap();
        assert_eq!(r2.view().len(), 1);
        let policy: toml::Table = toml::from_str(&r.policy_toml().unwrap()).unwrap();
        assert_eq!(policy["network"]["mode"].as_str(), Some("all"));
    }
}
