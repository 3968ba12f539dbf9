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
//! content then is what the person chose to run with.

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

/// Makes each of `files` that the policy could write read-only in the
/// sandbox's view; returns those files with the tree that holds each.
pub fn keep_read_only(fs: &mut FsPolicy, files: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    let exposed: Vec<(PathBuf, PathBuf)> = files
        .iter()
        .filter_map(|f| writable_tree(fs, f).map(|t| (f.clone(), t.to_path_buf())))
        .collect();
    let read_only = &mut fs.read_only;
    for (file, _) in &exposed {
        if !read_only.contains(file) {
            read_only.push(file.clone());
        }
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
