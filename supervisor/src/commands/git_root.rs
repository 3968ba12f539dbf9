//! git in a workspace below its repository's root (`sluice run` in
//! `~/src/app/web` of the repository `~/src/app`): git looks for `.git` in
//! every parent directory, and finds none in the sandbox's view.
//!
//! [`enclosing`] finds that repository's `.git` directory, which the launch
//! adds to the policy as a `read` tree (never writable: the person's
//! history, refs and index stay the person's), and git is told to look
//! across the mounts of the sandbox's view (`GIT_DISCOVERY_ACROSS_FILESYSTEM`),
//! since the workspace is a mount of its own there. The rest of the
//! repository's work tree stays out of view (`git status` shows files
//! outside the workspace as deleted; `--allow-read ROOT` shows them).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The variable that lets git's discovery cross from the workspace's mount
/// to its parents'.
pub const DISCOVERY: &str = "GIT_DISCOVERY_ACROSS_FILESYSTEM";

/// The `.git` directory of the repository `workspace` lies in below its
/// root, if there is one to add: none when the workspace has a `.git` of
/// its own (git stops there), when the nearest `.git` above is not a
/// directory (a worktree's or submodule's file naming another), belongs to
/// another user, or its repository is `/`, `home` or above it (a home
/// directory kept in git holds the person's whole configuration).
pub fn enclosing(workspace: &Path, home: &Path) -> Option<PathBuf> {
    if workspace.join(".git").symlink_metadata().is_ok() {
        return None;
    }
    let root = workspace
        .ancestors()
        .skip(1)
        .find(|dir| dir.join(".git").symlink_metadata().is_ok())?;
    // The workspace is canonical: so must the home directory be, to compare.
    let home = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    if root == Path::new("/") || home.starts_with(root) {
        return None;
    }
    let git = root.join(".git");
    let meta = git.symlink_metadata().ok()?;
    let uid = nix::unistd::geteuid().as_raw();
    (meta.is_dir() && meta.uid() == uid).then_some(git)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_git_directory_above_the_workspace_but_never_home_or_slash() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().canonicalize().unwrap();
        let home = t.join("home");
        std::fs::create_dir_all(t.join("repo/.git")).unwrap();
        std::fs::create_dir_all(t.join("repo/a/b")).unwrap();
        std::fs::create_dir_all(home.join(".git")).unwrap();
        std::fs::create_dir_all(home.join("proj")).unwrap();
        let ws = t.join("repo/a/b");
        assert_eq!(enclosing(&ws, &home), Some(t.join("repo/.git")));
        // The repository's root itself: git finds it there.
        assert_eq!(enclosing(&t.join("repo"), &home), None);
        // A nested repository stops the search.
        std::fs::create_dir_all(t.join("repo/a/.git")).unwrap();
        assert_eq!(enclosing(&ws, &home), Some(t.join("repo/a/.git")));
        // A home directory kept in git is never added, named through a
        // symlink too.
        assert_eq!(enclosing(&home.join("proj"), &home), None);
        std::os::unix::fs::symlink(&home, t.join("home-link")).unwrap();
        assert_eq!(enclosing(&home.join("proj"), &t.join("home-link")), None);
        // A `.git` file (a worktree's) is not followed.
        std::fs::create_dir_all(t.join("wt/x")).unwrap();
        std::fs::write(t.join("wt/.git"), "gitdir: /elsewhere\n").unwrap();
        assert_eq!(enclosing(&t.join("wt/x"), &home), None);
    }
}
