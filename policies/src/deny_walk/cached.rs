//! The deny walk with its cache: a directory changed since the last
//! launch is listed again, whatever the program did to hide the change.

use super::tests_support::*;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::Duration;

/// Until every directory changed so far is settled (its listing kept).
fn settle() {
    std::thread::sleep(Duration::from_millis(
        super::cache::SETTLE as u64 * 1000 + 300,
    ));
}

/// A workspace with secrets and plain files, walked once to fill the
/// cache in `tree/cache`.
fn filled(tag: &str) -> (Tree, PathBuf) {
    let tree = Tree::new(tag);
    tree.file("ro/f");
    tree.file("ws/keep/.env");
    for dir in ["a", "b", "c", "d/e", "f"] {
        tree.file(&format!("ws/{dir}/plain"));
    }
    tree.file("outside/.env");
    let cache = tree.0.join("cache");
    fs::create_dir(&cache).unwrap();
    settle();
    (tree, cache)
}

/// The deny list of a cached walk (sorted), and its stats.
fn walk(tree: &Tree, cache: &std::path::Path) -> (Vec<PathBuf>, super::WalkStats) {
    let mut fs = policy(tree, "\"**/.env\", \"**/*.pem\"");
    let stats = fs
        .expand_deny_patterns_cached(&tree.0.join("ws"), cache)
        .unwrap();
    let mut deny = fs.deny;
    deny.sort();
    (deny, stats)
}

#[test]
fn an_unchanged_directory_is_not_listed_again_and_every_change_is_seen() {
    let (tree, cache) = filled("cached");
    let (first, stats) = walk(&tree, &cache);
    assert_eq!((stats.listed, stats.cached), (8, 0), "{stats:?}");
    assert_eq!(first, vec![tree.0.join("ws/keep/.env")]);
    // Control: nothing changed, nothing listed, the same found.
    let (again, stats) = walk(&tree, &cache);
    assert_eq!((stats.listed, stats.cached), (0, 8), "{stats:?}");
    assert_eq!((again, stats.entries), (first, 13));

    // A secret made in a cached directory whose mtime is then put back.
    let a = tree.0.join("ws/a");
    let mtime = fs::metadata(&a).unwrap().modified().unwrap();
    tree.file("ws/a/.env");
    let times = fs::FileTimes::new().set_modified(mtime);
    fs::File::open(&a).unwrap().set_times(times).unwrap();
    assert_eq!(fs::metadata(&a).unwrap().modified().unwrap(), mtime);
    // A hard link under a matching name.
    fs::hard_link(tree.0.join("ws/b/plain"), tree.0.join("ws/b/k.pem")).unwrap();
    // A secret renamed in from outside the tree.
    fs::rename(tree.0.join("outside/.env"), tree.0.join("ws/c/.env")).unwrap();
    // In a new directory of a cached one, and deeper.
    tree.file("ws/d/e/new/.env");
    // A directory renamed away, and another renamed where it was.
    fs::rename(tree.0.join("ws/f"), tree.0.join("ws/g")).unwrap();
    tree.file("ws/h/.env");
    fs::rename(tree.0.join("ws/h"), tree.0.join("ws/f")).unwrap();
    settle();
    let (deny, stats) = walk(&tree, &cache);
    let want: Vec<PathBuf> = ["a/.env", "b/k.pem", "c/.env", "d/e/new/.env", "f/.env"]
        .iter()
        .chain(&["keep/.env"])
        .map(|rel| tree.0.join("ws").join(rel))
        .collect();
    let mut want = want;
    want.sort();
    assert_eq!(deny, want);
    // Listed: the workspace, a, b, c, d/e, d/e/new, f, g; not keep, d.
    assert_eq!((stats.listed, stats.cached), (8, 2), "{stats:?}");
    let (again, stats) = walk(&tree, &cache);
    assert_eq!((again, stats.listed), (want, 0));
}

#[test]
fn a_directory_changed_moments_ago_is_listed_until_it_settles() {
    let tree = Tree::new("fresh");
    tree.file("ro/f");
    tree.file("ws/a/plain");
    let cache = tree.0.join("cache");
    fs::create_dir(&cache).unwrap();
    let (_, stats) = walk(&tree, &cache);
    assert_eq!((stats.listed, stats.cached), (2, 0), "{stats:?}");
    let (_, stats) = walk(&tree, &cache);
    assert_eq!((stats.listed, stats.cached), (2, 0), "{stats:?}");
    settle();
    walk(&tree, &cache);
    let (_, stats) = walk(&tree, &cache);
    assert_eq!((stats.listed, stats.cached), (0, 2), "{stats:?}");
}

#[test]
fn a_tree_deeper_than_a_path_can_name_is_walked_from_the_cache_too() {
    use std::ffi::CString;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (tree, cache) = filled("deep");
    let name = CString::new("d".repeat(200)).unwrap();
    let top = CString::new(tree.0.join("ws/a").into_os_string().into_vec()).unwrap();
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated path; the descriptor is owned below.
    let mut dir = unsafe { OwnedFd::from_raw_fd(libc::open(top.as_ptr(), flags)) };
    for _ in 0..25 {
        use std::os::fd::AsRawFd;
        // SAFETY: `dir` is an open directory, `name` NUL-terminated.
        unsafe {
            assert_eq!(libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755), 0);
            let fd = libc::openat(dir.as_raw_fd(), name.as_ptr(), flags);
            assert!(fd >= 0);
            dir = OwnedFd::from_raw_fd(fd);
        }
    }
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `dir` is an open directory, the name NUL-terminated.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c".env".as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        assert!(fd >= 0);
        // SAFETY: just opened, owned by nobody else.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    settle();
    let deep_env = |deny: &[PathBuf]| {
        deny.iter()
            .any(|p| p.ends_with(".env") && p.as_os_str().len() > 5000)
    };
    let (deny, stats) = walk(&tree, &cache);
    assert!(deep_env(&deny) && stats.cached == 0, "{stats:?}");
    let (deny, stats) = walk(&tree, &cache);
    assert!(deep_env(&deny) && stats.listed == 0, "{stats:?}");
}

#[test]
fn a_damaged_foreign_or_linked_cache_is_not_believed() {
    let (tree, cache) = filled("damaged");
    walk(&tree, &cache);
    let file = fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good = fs::read(&file).unwrap();
    // What a cache hiding a secret would look like: the directory's
    // stamp of now, with its match left out.
    tree.file("ws/a/.env");
    settle();
    walk(&tree, &cache);
    let found = fs::read(&file).unwrap();
    let forged = super::cache::tests::without_matches(&found);
    let secret = tree.0.join("ws/a/.env");
    // Found, and whether the file was ignored whole.
    let found_it = |what: &str, ignored: bool| {
        let (deny, stats) = walk(&tree, &cache);
        assert!(deny.contains(&secret), "{what}: {deny:?}");
        assert_eq!(stats.cached == 0, ignored, "{what}: {stats:?}");
    };
    // One bit changed in a match's name: the listing would lose it.
    let mut flipped = found.clone();
    let at = (flipped.windows(5).rposition(|w| w == b".env\0")).unwrap();
    flipped[at + 3] ^= 1;
    fs::write(&file, &flipped).unwrap();
    found_it("a flipped bit", true);
    fs::write(&file, &forged[..forged.len() - 3]).unwrap();
    found_it("truncated", true);
    fs::write(&file, &good).unwrap();
    found_it("an older cache", false);
    let elsewhere = tree.0.join("forged");
    fs::write(&elsewhere, &forged).unwrap();
    fs::remove_file(&file).unwrap();
    symlink(&elsewhere, &file).unwrap();
    found_it("a symlink to a forged cache", true);
    fs::remove_file(&file).unwrap();
    fs::write(&file, &forged).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&file, fs::Permissions::from_mode(0o622)).unwrap();
    found_it("a cache others may write", true);
    // Control: the forged cache, where only sluice writes, is believed
    // (so what kept it out above was the check named).
    fs::remove_file(&file).unwrap();
    fs::write(&file, &forged).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let (deny, _) = walk(&tree, &cache);
    assert!(!deny.contains(&secret), "{deny:?}");
}
