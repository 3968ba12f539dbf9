//! Tests of the profile generator, on any platform.
//!
//! The built-in policies are resolved for real (`PolicySpec::resolve`:
//! canonicalisation, globs, absent paths) against a fixed, synthetic machine
//! built in a temporary directory: the policy's system paths are redirected
//! into it, and the temporary prefix is removed afterwards, so the profiles
//! are the same on every machine and can be compared with golden files.

mod golden;
mod properties;
mod reader;

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use policies::{NetPolicy, Policy, Vars};

use super::SupervisorState;

/// The synthetic machine's fixed paths, as the profile names them.
pub const HOME: &str = "/Users/alice";
pub const WORKSPACE: &str = "/Users/alice/src/app";
pub const SESSION: &str = "/var/folders/zz/T/sluice-0123456789abcdef";

/// A temporary directory holding a synthetic machine; removed on drop.
pub struct Machine {
    root: PathBuf,
}

impl Machine {
    /// A macOS-like tree with what the built-in policies name, some of it
    /// present (`~/.ssh`, `.env`, a host key, Homebrew) and some not
    /// (`/etc/shadow`, `/lib64`, `~/.aws`, Xcode).
    pub fn new() -> Machine {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "sluice-seatbelt-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let root = std::env::temp_dir().join(unique);
        fs::create_dir_all(&root).unwrap();
        let machine = Machine {
            root: root.canonicalize().unwrap(),
        };
        for dir in [
            "usr",
            "bin",
            "sbin",
            "proc",
            "sys",
            "etc/ssh",
            "etc/ssl",
            "Users/alice/.ssh",
            "Users/alice/.cargo/bin",
            "Users/alice/.config",
            "Users/alice/src/app/.git/hooks",
            // What the macOS policy names, some of it (a Mac without Xcode,
            // MacPorts or Intel Homebrew).
            "Library/Developer/CommandLineTools/usr/bin",
            "Library/Preferences",
            "Library/Keychains",
            "opt/homebrew/bin",
            "private/var/db/dslocal",
            "Users/alice/Library/Keychains",
        ] {
            fs::create_dir_all(machine.root.join(dir)).unwrap();
        }
        for dir in ["tmp", "private"] {
            fs::create_dir_all(machine.path(SESSION).join(dir)).unwrap();
        }
        for file in [
            "etc/sudoers",
            "etc/ssh/ssh_host_ed25519_key",
            "etc/ssh/ssh_host_ed25519_key.pub",
            "dev/urandom",
            "dev/random",
            "dev/null",
            "dev/zero",
            "dev/tty",
            "Users/alice/.gitconfig",
            "Users/alice/.bash_history",
            "Users/alice/src/app/.git/config",
            "Users/alice/src/app/.env",
            "Users/alice/src/app/.env.local",
        ] {
            let path = machine.root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "").unwrap();
        }
        machine
    }

    /// Where a path of the synthetic machine really is.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn vars(&self) -> Vars {
        Vars {
            home: self.path(HOME),
            workspace: self.path(WORKSPACE),
            tmpdir: self.path(SESSION).join("tmp"),
        }
    }

    /// Resolves policy TOML on this machine, its absolute paths redirected
    /// into it, and maps the result back to the machine's own paths.
    /// `[broker]` is left out: the profile does not use it.
    pub fn resolve(&self, name: &str, toml: &str, net: Option<NetPolicy>) -> Policy {
        let redirected = self.redirect(toml);
        self.resolve_redirected(name, &redirected, net)
    }

    /// [`Machine::resolve`] of TOML already redirected.
    fn resolve_redirected(&self, name: &str, redirected: &str, net: Option<NetPolicy>) -> Policy {
        let mut spec = policies::load_str(name, redirected, Path::new("/")).unwrap();
        if let Some(net) = net {
            spec.set_network(net);
        }
        let mut policy = spec.resolve(&self.vars()).unwrap();
        // As `sluice run` does: `deny` patterns become the paths they match.
        let workspace = self.vars().workspace;
        policy.filesystem.expand_deny_patterns(&workspace).unwrap();
        let fs = &mut policy.filesystem;
        for list in [
            &mut fs.read,
            &mut fs.write,
            &mut fs.execute,
            &mut fs.read_only,
            &mut fs.deny,
            &mut fs.absent,
        ] {
            for path in list.iter_mut() {
                *path = self.unmap(path);
            }
        }
        policy
    }

    /// Policy TOML with its absolute paths redirected into the machine, and
    /// the built-in policies it extends written into it, redirected too.
    fn redirect(&self, toml: &str) -> String {
        self.redirect_as(toml, |name| policies::builtin_source(name).unwrap())
    }

    /// [`Machine::redirect`] with the built-ins' text given by `builtin`
    /// (as a sluice built for another platform has them).
    fn redirect_as(&self, toml: &str, builtin: fn(&str) -> &'static str) -> String {
        let filesystem_part = toml.split("\n[broker]").next().unwrap();
        let mut text = filesystem_part.replace("\"/", "\"$HOME/../../");
        for parent in policies::builtin_names() {
            let named = format!("extends = [\"{parent}\"]");
            if text.contains(&named) {
                let file = self.root.join(format!("builtin-{parent}.toml"));
                fs::write(&file, self.redirect_as(builtin(parent), builtin)).unwrap();
                text = text.replace(&named, &format!("extends = [\"{}\"]", file.display()));
            }
        }
        text
    }

    /// A built-in policy, resolved on this machine.
    pub fn builtin(&self, name: &str, net: Option<NetPolicy>) -> Policy {
        self.resolve(name, policies::builtin_source(name).unwrap(), net)
    }

    /// A built-in policy as sluice built for macOS has it: `default` is the
    /// `macos` policy there, for the policies that extend it too.
    pub fn builtin_on_macos(&self, name: &str) -> Policy {
        fn on_macos(name: &str) -> &'static str {
            let name = if name == "default" { "macos" } else { name };
            policies::builtin_source(name).unwrap()
        }
        let redirected = self.redirect_as(on_macos(name), on_macos);
        self.resolve_redirected(name, &redirected, None)
    }

    /// A real path (perhaps with `..`, if it was absent) as the machine's own.
    fn unmap(&self, path: &Path) -> PathBuf {
        let mut normal = PathBuf::from("/");
        for c in path.components() {
            match c {
                Component::Normal(name) => normal.push(name),
                Component::ParentDir => {
                    normal.pop();
                }
                _ => {}
            }
        }
        let inside = normal
            .strip_prefix(&self.root)
            .unwrap_or_else(|_| panic!("{} escaped the synthetic machine", path.display()));
        Path::new("/").join(inside)
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// sluice's state on the synthetic machine.
pub fn state() -> SupervisorState {
    SupervisorState {
        audit_dir: PathBuf::from(HOME).join(".local/state/sluice/audit"),
        config_dir: PathBuf::from(HOME).join(".config/sluice"),
        session_dir: Some(PathBuf::from(SESSION).join("private")),
        records_dir: Some(PathBuf::from(HOME).join(".local/state/sluice/sessions")),
        policy_files: vec![],
        broker_socket: None,
        terminal: None,
        user_dirs: vec![],
    }
}
