//! bubblewrap's command line, read into the view it describes
//! ([`Request`]); what the stand-in cannot give is refused here, before
//! anything runs.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use crate::exit;

/// What the command may do with a tree of its view; ordered, wider last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Access {
    /// Covered (`--tmpfs`, `--ro-bind /dev/null`): nothing of it seen.
    Hidden,
    /// Read and executed (`--ro-bind`, `--proc`, `--dev`'s tree).
    Read,
    /// Read, written and executed (`--bind`, `--dev-bind`).
    Write,
}

/// One entry of the view, in bubblewrap's order.
#[derive(Debug, Clone)]
pub(super) struct Mount {
    pub(super) path: PathBuf,
    pub(super) access: Access,
    /// `-try`: a missing source is skipped.
    pub(super) optional: bool,
    /// The option as written, for messages.
    pub(super) option: String,
}

/// A command line bubblewrap accepts and the stand-in can give.
#[derive(Debug, Default)]
pub(super) struct Request {
    pub(super) mounts: Vec<Mount>,
    /// `--dev /dev`: the harmless devices written (as in `default`).
    pub(super) dev: bool,
    /// `--unshare-net` (or `--unshare-all` without `--share-net`).
    pub(super) no_network: bool,
    pub(super) chdir: Option<PathBuf>,
    /// The command's environment, as bubblewrap would pass it.
    pub(super) env: Vec<(OsString, OsString)>,
    pub(super) die_with_parent: bool,
    pub(super) command: Vec<OsString>,
    /// The variables `--setenv` gave (a proxy the caller set up for the
    /// command, unlike one the caller's own environment names).
    pub(super) set_here: Vec<OsString>,
    /// `--unshare-net` with a proxy on loopback: the ports the command may
    /// listen on and connect to ([`relay_ports`]).
    pub(super) relay_ports: Vec<u16>,
}

pub(super) enum Parsed {
    Run(Request),
    /// `--help`, `--version`: printed, nothing run.
    Said(String),
}

/// A refusal: exit 125 with bubblewrap's option named.
pub(super) fn refuse(message: String) -> anyhow::Error {
    exit::with_code(exit::ERROR, message)
}

pub(super) fn cannot(option: &str, why: &str) -> anyhow::Error {
    refuse(format!(
        "{option}: sluice's stand-in for bubblewrap cannot give this inside a sluice \
         sandbox ({why}); leave it out, or run the command without bwrap"
    ))
}

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
inside a tree only read, --ro-bind P P (or /dev/null over a missing P) inside
a written tree where the enclosing session guards writes (kept as protect),
--remount-ro and --dir of what
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

pub(super) fn parse(args: Vec<OsString>, env: Vec<(OsString, OsString)>) -> Result<Parsed> {
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
                let own = match option.as_str() {
                    "--uid" => nix::unistd::geteuid().as_raw(),
                    _ => nix::unistd::getegid().as_raw(),
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

/// `--args FD`: more arguments, NUL-separated, read from the descriptor.
fn args_from_fd(fd: &OsStr) -> Result<Vec<OsString>> {
    let fd: libc::c_int = fd
        .to_str()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| refuse(format!("--args {}: not a descriptor", fd.to_string_lossy())))?;
    // Handed to us for this alone, as bubblewrap takes it: read to the
    // end, then closed.
    let Ok(owned) = crate::sys::io::adopt_inherited(fd) else {
        return Err(refuse(format!("--args {fd}: not an open descriptor")));
    };
    let mut file = std::fs::File::from(owned);
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
            // Hidden where something is, inside a written tree.
            &["--bind", "/", "/", "--ro-bind", "/dev/null", "/etc", "true"],
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
    fn what_is_read_only_inside_a_written_tree_is_protected() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        for sub in [".git/hooks", "docs/out"] {
            std::fs::create_dir_all(ws.join(sub)).unwrap();
        }
        let p = |s: &str| ws.join(s).to_str().unwrap().to_owned();
        let w = ws.to_str().unwrap().to_owned();
        let (hooks, docs, out, rc) = (p(".git/hooks"), p("docs"), p("docs/out"), p(".bashrc"));
        // sandbox-runtime's shape: the tree bound, what exists in it bound
        // read-only onto itself, what does not yet masked by /dev/null.
        let r = parsed(&[
            "--ro-bind",
            "/",
            "/",
            "--bind",
            &w,
            &w,
            "--ro-bind",
            &hooks,
            &hooks,
            "--ro-bind",
            &docs,
            &docs,
            "--bind",
            &out,
            &out,
            "--ro-bind",
            "/dev/null",
            &rc,
            "true",
        ])
        .unwrap();
        let policy: toml::Table = toml::from_str(&r.policy_toml().unwrap()).unwrap();
        let protect: Vec<&str> = policy["filesystem"]["protect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let except = format!("!{out}/**");
        assert_eq!(protect, [&hooks, &docs, &except, &rc]);
        // The written tree is granted whole, not around its masks.
        let write = policy["filesystem"]["write"].as_array().unwrap();
        assert!(write.contains(&toml::Value::String(w.clone())), "{policy}");
        // And `/`, only read, whole: a mask in a written tree is no hole.
        let execute = policy["filesystem"]["execute"].as_array().unwrap();
        assert!(
            execute.contains(&toml::Value::String("/".into())),
            "{policy}"
        );
        // Nothing inside a tree only read is a protect entry.
        let read = parsed(&["--ro-bind", &w, &w, "--ro-bind", &hooks, &hooks, "true"]).unwrap();
        assert!(read.masks().is_empty());
        // Hidden where something is, inside the written tree: refused.
        assert!(parsed(&["--bind", &w, &w, "--tmpfs", &hooks, "true"]).is_err());
        assert!(parsed(&["--bind", &w, &w, "--ro-bind", "/dev/null", &docs, "true"]).is_err());
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
