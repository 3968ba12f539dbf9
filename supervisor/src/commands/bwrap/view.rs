//! The view bubblewrap's arguments describe, checked against what a
//! stacked sandbox can give, and written as the stacked session's policy.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::args::{cannot, refuse, Access, Mount, Request};

/// Devices `--dev` makes writable, where the enclosing view has them (the
/// same set `default` writes; /dev/shm and /dev/pts stay out, as there).
const DEV_WRITE: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];

impl Request {
    /// The view as bubblewrap would build it: a later mount covers what
    /// earlier ones put beneath it. Landlock can only add access, so a
    /// path given less than a tree it lies in is refused (hiding, or
    /// making read-only, part of what the command may read or write).
    pub(super) fn view(&self) -> Vec<&Mount> {
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

    pub(super) fn check_view(&self) -> Result<()> {
        let view = self.view();
        let covering = |p: &Path| {
            view.iter()
                .filter(|e| p.starts_with(&e.path) && p != e.path)
                .map(|e| e.access)
                .max()
        };
        for m in &view {
            match (m.access, covering(&m.path)) {
                // Read-only, or masked where nothing is yet, inside a
                // written tree: a `protect` entry ([`Request::masks`]).
                (Access::Read, Some(Access::Write)) => {}
                (Access::Hidden, Some(Access::Write)) if absent(&m.path) => {}
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
                            "it would hide what is there inside a tree the command may \
                             {}, and a stacked sandbox can only add access (Landlock); \
                             it can keep a path there read-only, not unseen",
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
    pub(super) fn grants(&self) -> Result<Vec<Mount>> {
        let view = self.view();
        let mut out = Vec::new();
        for m in &view {
            // Inside a written tree nothing is a hole: what is less there
            // is a mask, kept by `protect` ([`Request::masks`]).
            let holes: Vec<&Path> = view
                .iter()
                .filter(|h| h.access < m.access && !written(&view, &h.path))
                .filter(|h| h.path.starts_with(&m.path) && h.path != m.path)
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

    /// The masks inside written trees, as the stacked policy's `protect`
    /// list: a path bound read-only (`--ro-bind P P`), or masked where
    /// nothing is yet (`--ro-bind /dev/null P`, sandbox-runtime's way to
    /// keep a file from being made), inside a tree the command may write.
    /// `protect` keeps exactly that: the path and everything beneath it
    /// never written, never made, never renamed or linked onto, nor any name
    /// on the way to it made but by `mkdir`. A tree bound written again
    /// beneath a mask is an exception (`!P/**`). Given only where the
    /// enclosing session's guard applies the list ([`super::stand_in::require_guard`]).
    pub(super) fn masks(&self) -> Vec<Mask> {
        let view = self.view();
        let mut out = Vec::new();
        for m in view.iter().filter(|m| m.access < Access::Write) {
            if !written(&view, &m.path) {
                continue;
            }
            out.push(Mask {
                path: m.path.clone(),
                except: false,
                option: m.option.clone(),
            });
            for w in &view {
                if w.access == Access::Write && w.path.starts_with(&m.path) && w.path != m.path {
                    out.push(Mask {
                        path: w.path.clone(),
                        except: true,
                        option: w.option.clone(),
                    });
                }
            }
        }
        out
    }

    /// The stacked session's policy, as TOML text: the view's trees (each
    /// executable, as bubblewrap's binds are), the devices, the network,
    /// and the environment bubblewrap would pass.
    pub(super) fn policy_toml(&self) -> Result<String> {
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
        let mut protect = Vec::new();
        for mask in self.masks() {
            let text = policy_path(&mask.option, &mask.path)?;
            if text.contains(['*', '?', '[', ']', '{', '}', '\\']) {
                return Err(cannot(
                    &format!("{} {}", mask.option, text),
                    "a path with a wildcard character cannot be kept read-only inside \
                     a written tree (a sluice protect entry is a pattern)",
                ));
            }
            protect.push(Value::String(match mask.except {
                true => format!("!{text}/**"),
                false => text,
            }));
        }
        let mut fs = toml::Table::new();
        fs.insert("protect".into(), Value::Array(protect));
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
            let sluices = crate::commands::run_session::SLUICE_SET
                .iter()
                .any(|s| k == *s);
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

/// A path kept read-only inside a written tree ([`Request::masks`]).
pub(super) struct Mask {
    pub(super) path: PathBuf,
    /// A tree written again beneath a mask: an exception to it.
    pub(super) except: bool,
    /// The option as written, for messages.
    pub(super) option: String,
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

/// Whether `path` lies inside a tree of `view` the command may write.
fn written(view: &[&Mount], path: &Path) -> bool {
    view.iter()
        .filter(|e| path.starts_with(&e.path) && path != e.path)
        .any(|e| e.access == Access::Write)
}

/// Whether nothing is at `path` (not even a dangling symlink).
fn absent(path: &Path) -> bool {
    path.symlink_metadata()
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_read_with_their_escapes() {
        let table = b"36 35 98:0 / /mnt/a\\040b rw - ext3 /dev/root rw\n\
                      37 35 98:0 /x /usr ro - ext3 /dev/root rw\n";
        assert_eq!(
            mount_points(table),
            [PathBuf::from("/mnt/a b"), PathBuf::from("/usr")]
        );
    }
}
