//! The deny walk: what it finds, what it refuses, and its bounds.

use super::*;

use super::tests_support::*;

#[test]
fn bare_patterns_apply_in_writable_trees_rooted_ones_beneath_their_root() {
    let tree = Tree::new("scope");
    let deep = tree.file("ws/a/b/.env");
    let template = tree.file("ws/a/.env.example");
    let in_ro = tree.file("ro/x/.env");
    let pem = tree.file("ro/certs/k.pem");
    let outside = tree.file("elsewhere/.env");
    let dir_match = tree.file("ws/c/.env/inner");
    std::os::unix::fs::symlink(&pem, tree.0.join("ws/link.env")).unwrap();
    let mut fs = policy(
        &tree,
        &format!(
            "\"**/.env\", \"**/*.env\", \"!**/.env.example\", \"{}/ro/**/*.pem\"",
            tree.0.display()
        ),
    );
    let stats = fs.expand_deny_patterns(&tree.0.join("ws")).unwrap();
    let deny = &fs.deny;
    assert!(deny.contains(&deep), "{deny:?}");
    assert!(deny.contains(&pem), "{deny:?}");
    // A matching directory is denied whole, and not walked into.
    assert!(deny.contains(&dir_match.parent().unwrap().to_path_buf()));
    assert!(!deny.contains(&dir_match));
    for not in [&template, &in_ro, &outside] {
        assert!(!deny.contains(not), "{} {deny:?}", not.display());
    }
    // The symlink is denied where it leads (the pem, already there).
    assert_eq!(stats.matches, 4, "{deny:?}");
    assert!(!deny.contains(&tree.0.join("ws/link.env")));
}

#[test]
fn the_walk_lists_the_repositories_it_meets() {
    let tree = Tree::new("repos");
    tree.file("ws/a/.git/config");
    tree.file("ws/a/sub/.git");
    tree.file("ws/b/.env");
    tree.file("ws/c/.github/x");
    tree.file("ro/f");
    let mut fs = policy(&tree, "\"**/.env\"");
    let mut git = fs.expand_deny_patterns(&tree.0.join("ws")).unwrap().git;
    git.sort();
    git.dedup();
    assert_eq!(
        git,
        vec![tree.0.join("ws/a/.git"), tree.0.join("ws/a/sub/.git")]
    );
}

#[test]
fn no_walk_without_a_pattern_and_limits_are_refused_by_name() {
    let tree = Tree::new("limits");
    tree.file("ro/f");
    for i in 0..5 {
        tree.file(&format!("ws/d{i}/.env"));
    }
    let mut fs = policy(&tree, "\"$WORKSPACE/.env\"");
    assert_eq!(
        fs.expand_deny_patterns(&tree.0.join("ws")).unwrap(),
        WalkStats::default()
    );
    let mut fs = policy(&tree, "\"**/.env\"");
    let ws = tree.0.join("ws");
    let error = fs.clone().expand_within(&ws, (6, 100), None).unwrap_err();
    assert!(error.contains("more than 6 files"), "{error}");
    assert!(
        error.contains("deny \"**/.env\" (policy 'p.toml', line 4)"),
        "{error}"
    );
    let error = fs.clone().expand_within(&ws, (100, 4), None).unwrap_err();
    assert!(error.contains("more than 4 matches"), "{error}");
    assert_eq!(fs.expand_within(&ws, (10, 5), None).unwrap().matches, 5);
}

/// The `protect` list's walk ([`FsPolicy::existing_protected`]): what
/// exists in a writable tree, each match whole (not walked into), but a
/// directory a subtree exception takes part of, given entry by entry, the
/// excepted ones left out; symlinks and readable-only trees left out.
#[test]
fn the_protect_walk_finds_what_exists_in_the_writable_trees() {
    let tree = Tree::new("protect");
    let hook = tree.file("ws/sub/.git/hooks/pre-commit");
    tree.file("ws/sub/.git/hooks/pre-commit.sample");
    let settings = tree.file("ws/.claude/settings.json");
    let agent = tree.file("ws/state/.claude/settings.json");
    let commands = tree.file("ws/state/.claude/commands/x.md");
    tree.file("ws/state/.claude/projects/a/1.jsonl");
    tree.file("ro/.claude/settings.json");
    tree.file("ws/src/main.rs");
    std::os::unix::fs::symlink(&hook, tree.0.join("ws/sub/.git/hooks/post-commit")).unwrap();
    let fs = policy_with(
        &tree,
        &format!(
            "protect = [\"**/.git/hooks/*\", \"!**/.git/hooks/*.sample\", \"**/.claude\", \
             \"!{}/ws/state/.claude/projects/**\"]\n",
            tree.0.display()
        ),
    );
    let (found, stats) = fs.existing_protected(&tree.0.join("ws"), None).unwrap();
    let mut want = vec![
        hook,
        settings.parent().unwrap().to_path_buf(),
        agent,
        commands.parent().unwrap().to_path_buf(),
    ];
    want.sort();
    assert_eq!(found, want);
    assert_eq!(stats.matches, 4);
    // The deny walk is another: no `deny` pattern, nothing walked.
    let mut fs = fs;
    assert_eq!(
        fs.expand_deny_patterns(&tree.0.join("ws")).unwrap().entries,
        0
    );
    assert!(fs.deny.is_empty());
}

/// The `protect` list rides the deny walk of the writable trees: the same
/// paths as its own walk, a `.env` inside a protected `.claude` still
/// denied (the deny walk goes on beneath what only `protect` matches),
/// and the same again from the cache.
#[cfg(target_os = "linux")]
#[test]
fn the_protect_list_rides_the_deny_walk() {
    let tree = Tree::new("ride");
    let hook = tree.file("ws/sub/.git/hooks/pre-commit");
    tree.file("ws/sub/.git/hooks/pre-commit.sample");
    let settings = tree.file("ws/.claude/settings.json");
    let env = tree.file("ws/.claude/.env");
    let top_env = tree.file("ws/a/.env");
    tree.file("ro/.claude/settings.json");
    let fs = policy_with(
        &tree,
        "deny = [\"**/.env\"]\n\
         protect = [\"**/.git/hooks/*\", \"!**/.git/hooks/*.sample\", \"**/.claude\"]\n",
    );
    let ws = tree.0.join("ws");
    let (alone, _) = fs.existing_protected(&ws, None).unwrap();
    let mut want = vec![hook, settings.parent().unwrap().to_path_buf()];
    want.sort();
    assert_eq!(alone, want);
    let cache = tree.0.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    // Until every directory is settled, so the second walk reads them all
    // from the cache.
    std::thread::sleep(std::time::Duration::from_millis(
        super::cache::SETTLE as u64 * 1000 + 300,
    ));
    for listed in [true, false] {
        let mut walked = fs.clone();
        let stats = walked.expand_deny_patterns_cached(&ws, &cache).unwrap();
        assert_eq!(stats.cached == 0, listed, "{stats:?}");
        assert_eq!(stats.protected.as_ref(), Some(&want));
        let mut deny = walked.deny.clone();
        deny.sort();
        assert_eq!(deny, [env.clone(), top_env.clone()]);
    }
    // No `protect` list: nothing looked for.
    let mut bare = fs.clone();
    bare.protect = crate::Protect::default();
    assert_eq!(bare.expand_deny_patterns(&ws).unwrap().protected, None);
}
