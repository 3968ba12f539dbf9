//! Where audit files live, and making sure nobody else can change them.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// `$XDG_STATE_HOME/sluice/audit`, or `~/.local/state/sluice/audit` when
/// `XDG_STATE_HOME` is unset or not absolute (as the XDG spec says).
pub fn default_dir() -> io::Result<PathBuf> {
    Ok(crate::xdg::base_dir("XDG_STATE_HOME", ".local/state")?.join("sluice/audit"))
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Creates `dir` and any missing parents as 0700, then checks that `dir` is
/// a directory we own that neither group nor others can write.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("creating the audit directory {}: {e}", dir.display()),
            ))
        }
    }
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the audit directory {} is not a directory", dir.display()),
        ));
    }
    check_owner_and_mode(meta.uid(), meta.mode(), euid()).map_err(|why| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing the audit directory {}: {why}", dir.display()),
        )
    })
}

/// Whether a directory with this owner and mode is safe for audit files.
fn check_owner_and_mode(owner: u32, mode: u32, us: u32) -> Result<(), String> {
    if owner != us {
        return Err(format!("it is owned by uid {owner}, not by us (uid {us})"));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "group or others can write it (mode {:04o}; chmod go-w to fix)",
            mode & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_and_mode_rules() {
        assert!(check_owner_and_mode(1000, 0o40700, 1000).is_ok());
        assert!(check_owner_and_mode(1000, 0o40755, 1000).is_ok());
        let err = check_owner_and_mode(0, 0o40700, 1000).unwrap_err();
        assert!(err.contains("owned by uid 0"), "{err}");
        let err = check_owner_and_mode(1000, 0o40770, 1000).unwrap_err();
        assert!(err.contains("mode 0770"), "{err}");
        assert!(check_owner_and_mode(1000, 0o41777, 1000).is_err());
    }
}
