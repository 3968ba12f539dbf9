//! The files a session's policy was read from: never writable from inside,
//! and checked by the next run where a sandbox could have written them.
//!
//! Each file (the `--policy` file and every file it extends) that lies in a
//! tree its own policy makes writable is made read-only in the sandbox's
//! view (a `read_only` entry: a bind mount, its ancestors pinned) and is
//! never served by the broker. That holds for this session's program. It
//! does not hold for what the view cannot cover: another session whose
//! policy writes the same tree, a sandbox that cannot mount (stacked), or a
//! file the program changed in an earlier session that protected it less.
//! So such a file is also **pinned**: the SHA-256 of its content is kept in
//! sluice's state directory (`$XDG_STATE_HOME/sluice/policy-pins`, private,
//! denied to every sandbox), and a later run that finds the content changed
//! refuses to start until the person says the change is theirs
//! (`--accept-policy-change`). The first run that uses a file pins it: its
//! content then is what the person chose to run with. A pin is keyed by the
//! path the file was opened by, not its real path, and holds the content
//! read through that path: a symlink pointed at another file is a change.

use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use policies::FsPolicy;

use crate::audit::chain::sha256_hex;

/// The writable tree of `fs` that holds `path`, if any.
pub fn writable_tree<'a>(fs: &'a FsPolicy, path: &Path) -> Option<&'a Path> {
    fs.write
        .iter()
        .find(|tree| path.starts_with(tree))
        .map(PathBuf::as_path)
}

/// Makes each of `files` (as opened: symlinks not resolved) that the policy
/// could write read-only in the sandbox's view; returns those files with the
/// writable tree that exposes each. A file is exposed when its real path
/// lies in a writable tree, and also when the path it was opened by does: a
/// symlink (to the file or to a directory above it) in a writable tree can
/// be pointed elsewhere, which no mount on the real file prevents.
pub fn keep_read_only(fs: &mut FsPolicy, files: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    let mut exposed = Vec::new();
    for file in files {
        let real = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        let tree = writable_tree(fs, &real).or_else(|| writable_tree(fs, file));
        let Some(tree) = tree.map(Path::to_path_buf) else {
            continue;
        };
        if writable_tree(fs, &real).is_some() && !fs.read_only.contains(&real) {
            fs.read_only.push(real);
        }
        exposed.push((file.clone(), tree));
    }
    exposed
}

/// `$XDG_STATE_HOME/sluice/policy-pins` (or under `~/.local/state`).
pub fn default_pins_dir() -> io::Result<PathBuf> {
    Ok(crate::xdg::base_dir("XDG_STATE_HOME", ".local/state")?.join("sluice/policy-pins"))
}

/// Checks each `(file, tree)` against its pin in `pins` (a private
/// directory): a file seen for the first time is pinned; a changed one is
/// refused, or pinned anew when `accept` says the person made the change.
pub fn check_pins(pins: &Path, exposed: &[(PathBuf, PathBuf)], accept: bool) -> Result<()> {
    for (file, tree) in exposed {
        let content = fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let digest = sha256_hex(&content);
        let pin = pins.join(sha256_hex(file.as_os_str().as_bytes()));
        let pinned = match fs::read_to_string(&pin) {
            Ok(text) => text.lines().next().map(str::to_owned),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", pin.display())),
        };
        match pinned {
            Some(old) if old == digest => continue,
            Some(_) if !accept => bail!(
                "the policy file {} changed since the last session that used it, and it \
                 lies in {}, which a sandboxed program could write: read it, and if the \
                 change is yours, run again with --accept-policy-change",
                file.display(),
                tree.display()
            ),
            Some(_) => tracing::warn!("accepting the changed policy file {}", file.display()),
            None => {}
        }
        write_pin(&pin, &digest, file)
            .with_context(|| format!("pinning {} in {}", file.display(), pins.display()))?;
    }
    Ok(())
}

/// Writes the pin through a new file renamed over the old one.
fn write_pin(pin: &Path, digest: &str, file: &Path) -> io::Result<()> {
    let tmp = pin.with_extension("new");
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(out, "{digest}\n{}", file.display())?;
    out.sync_all()?;
    fs::rename(&tmp, pin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sluice-pins-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        fs::remove_dir_all(&dir).ok();
        fs::create_dir_all(dir.join("pins")).unwrap();
        dir
    }

    #[test]
    fn a_changed_file_is_refused_until_accepted() {
        let dir = scratch("change");
        let pins = dir.join("pins");
        let file = dir.join("agent.toml");
        fs::write(&file, "one").unwrap();
        let exposed = vec![(file.clone(), dir.clone())];
        check_pins(&pins, &exposed, false).unwrap();
        check_pins(&pins, &exposed, false).unwrap();
        fs::write(&file, "two").unwrap();
        let err = format!("{:#}", check_pins(&pins, &exposed, false).unwrap_err());
        assert!(err.contains("--accept-policy-change"), "{err}");
        assert!(err.contains(&file.display().to_string()), "{err}");
        check_pins(&pins, &exposed, true).unwrap();
        check_pins(&pins, &exposed, false).unwrap();
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_symlink_in_a_writable_tree_exposes_the_file_it_names() {
        let dir = scratch("link").canonicalize().unwrap();
        let (ws, etc) = (dir.join("ws"), dir.join("etc"));
        fs::create_dir_all(&ws).unwrap();
        fs::create_dir_all(&etc).unwrap();
        fs::write(etc.join("agent.toml"), "one").unwrap();
        std::os::unix::fs::symlink(etc.join("agent.toml"), ws.join("agent.toml")).unwrap();
        let mut fs_policy = FsPolicy {
            write: vec![ws.clone()],
            ..FsPolicy::default()
        };
        let exposed = keep_read_only(&mut fs_policy, &[ws.join("agent.toml")]);
        assert_eq!(exposed, [(ws.join("agent.toml"), ws.clone())]);
        // The real file is outside every writable tree: nothing to mount.
        assert!(fs_policy.read_only.is_empty());
        // Pointing the link at another file is a change.
        let pins = dir.join("pins");
        check_pins(&pins, &exposed, false).unwrap();
        fs::write(ws.join("evil.toml"), "two").unwrap();
        fs::remove_file(ws.join("agent.toml")).unwrap();
        std::os::unix::fs::symlink(ws.join("evil.toml"), ws.join("agent.toml")).unwrap();
        assert!(check_pins(&pins, &exposed, false).is_err());
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn only_files_in_writable_trees_are_kept_read_only() {
        let mut fs = FsPolicy {
            write: vec![PathBuf::from("/ws"), PathBuf::from("/tmp/s")],
            ..FsPolicy::default()
        };
        let files = [
            PathBuf::from("/ws/agent.toml"),
            PathBuf::from("/etc/p.toml"),
        ];
        let exposed = keep_read_only(&mut fs, &files);
        assert_eq!(
            exposed,
            [(PathBuf::from("/ws/agent.toml"), PathBuf::from("/ws"))]
        );
        assert_eq!(fs.read_only, [PathBuf::from("/ws/agent.toml")]);
    }
}
