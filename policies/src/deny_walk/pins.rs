//! The `protect` list's part of the walk: what it protects and exists in
//! the writable trees, for the launch to pin (`sluice run`'s
//! `pin_protected`: each a read-only mount of its own, its ancestors mount
//! points, so the program neither removes nor renames away what protects
//! by existing). It rides the deny walk where that walks the writable trees
//! whole ([`Walker::pins`]), else walks them on its own.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Purpose, WalkError, WalkStats, Walker, MAX_ENTRIES, MAX_MATCHES};
use crate::model::FsPolicy;

impl FsPolicy {
    /// What the `protect` list protects that exists now in a tree the
    /// program may write, for the launch to pin (`sluice run` makes each a
    /// read-only mount, its ancestors mount points: the program cannot
    /// remove or rename away what protects by existing, a hook or an
    /// agent's settings). The deny walk finds the same where it walks the
    /// writable trees whole ([`WalkStats::protected`]), at no second walk;
    /// this is the walk of [`FsPolicy::expand_deny_patterns`] for the
    /// others, over the writable trees only, with the same cache (its own
    /// files: another rule set) and limits. A
    /// match is not walked beneath (its mount holds everything there),
    /// except a directory a subtree exception takes part of
    /// (`!~/.claude/projects/**` in `~/.claude`): there each protected
    /// entry is given instead, the excepted ones left out. A symlink is
    /// left out (no mount sits on one), and so is a literal pattern's path
    /// that is not a directory when nothing walks to it (`~/.bashrc` in a
    /// writable home).
    pub fn existing_protected(
        &self,
        workspace: &Path,
        cache_dir: Option<&Path>,
    ) -> Result<(Vec<PathBuf>, WalkStats), String> {
        self.walk(
            Purpose::Protect,
            workspace,
            (MAX_ENTRIES, MAX_MATCHES),
            cache_dir,
        )
    }
}

impl Walker<'_> {
    /// Records the `protect` match at `self.path` (see
    /// [`FsPolicy::existing_protected`]): itself; nothing for a symlink;
    /// for a directory a subtree exception takes part of, what is
    /// protected in it.
    pub(super) fn found_pin(&mut self, d_type: u8) -> Result<(), WalkError> {
        let path = Path::new(OsStr::from_bytes(&self.path)).to_path_buf();
        let rules = self.pins.unwrap_or(self.rules);
        match d_type {
            libc::DT_LNK => Ok(()),
            libc::DT_DIR if rules.excepts_beneath(&path) => self.protected_beneath(&path),
            _ => self.record_pin(path),
        }
    }

    /// What is protected in the protected directory `dir`, part of which a
    /// subtree exception takes out: each entry protected with nothing
    /// excepted beneath it, whole; a directory with something excepted
    /// beneath, looked through in its turn; an excepted entry, and a
    /// symlink, left out. Few entries (an agent's settings beside its
    /// state), listed at each launch, uncached.
    fn protected_beneath(&mut self, dir: &Path) -> Result<(), WalkError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) => return Err(format!("listing {}: {error}", dir.display())),
        };
        for entry in entries {
            let entry = entry.map_err(|error| format!("listing {}: {error}", dir.display()))?;
            self.stats.entries += 1;
            if self.stats.entries > self.limits.0 {
                return Err(self.too_many_entries());
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let rules = self.pins.unwrap_or(self.rules);
            if kind.is_symlink() || rules.protects(&path).is_none() {
                continue;
            }
            if kind.is_dir() && rules.excepts_beneath(&path) {
                self.protected_beneath(&path)?;
            } else {
                self.record_pin(path)?;
            }
        }
        Ok(())
    }

    /// Adds `path` to what the `protect` list protects, within the limit
    /// (counted in [`WalkStats::matches`] only for a walk of its own).
    pub(super) fn record_pin(&mut self, path: PathBuf) -> Result<(), WalkError> {
        self.pinned.push(path);
        match self.purpose {
            Purpose::Protect => self.stats.matches += 1,
            Purpose::Deny => {}
        }
        self.within_limit()
    }
}
