use super::*;

fn list() -> Protect {
    Protect::from_patterns([
        "**/.git/hooks/*",
        "!**/.git/hooks/*.sample",
        "**/.git/config",
        "**/.vscode/**",
        "/home/u/.bashrc",
        "/home/u/.config/autostart",
    ])
    .unwrap()
}

#[test]
fn bytecode_rules_and_their_exceptions_are_left_out_of_the_pins() {
    let p = Protect::from_patterns([
        "**/*.pyc",
        "**/__pycache__/*.pyc",
        "!/tmp/s/**/*.pyc",
        "**/.vscode",
        "!**/.git/hooks/*.sample",
    ])
    .unwrap();
    let pinned = p.pinned();
    let kept: Vec<String> = (pinned.rules().iter())
        .map(|r| r.as_written_resolved())
        .collect();
    assert_eq!(kept, ["**/.vscode", "!**/.git/hooks/*.sample"]);
    let pyc = Path::new("/ws/__pycache__/a.cpython-311.pyc");
    assert!(p.protects(pyc).is_some_and(|r| !r.pinned()));
    assert!(pinned.protects(pyc).is_none());
    assert!(p
        .protects(Path::new("/tmp/s/a/__pycache__/a.pyc"))
        .is_none());
    assert!(p.leads_to(Path::new("/ws/pkg/__pycache__")).is_some());
    assert!(p.leads_to(Path::new("/ws/pkg")).is_none());
}

#[test]
fn patterns_protect_what_they_match_and_everything_beneath_at_any_depth() {
    let p = list();
    for yes in [
        "/ws/.git/hooks/pre-commit",
        "/ws/a/b/sub/.git/hooks/post-checkout",
        "/ws/.git/hooks/pre-commit.sample/x",
        "/ws/.git/config",
        "/tmp/x/.git/config",
        "/ws/.vscode",
        "/ws/pkg/.vscode/tasks.json",
        "/home/u/.bashrc",
        "/home/u/.config/autostart/evil.desktop",
    ] {
        assert!(p.protects(Path::new(yes)).is_some(), "{yes}");
    }
    for no in [
        "/ws/.git/hooks/pre-commit.sample",
        "/ws/.git/hooks",
        "/ws/.git",
        "/ws/.git/config.lock",
        "/ws/git/config",
        "/ws/hooks/pre-commit",
        "/ws/home/u/.bashrc",
        "/home/u/.bashrc2",
    ] {
        assert!(p.protects(Path::new(no)).is_none(), "{no}");
    }
}

#[test]
fn names_on_the_way_to_a_protected_path_are_found() {
    let p = list();
    for yes in ["/ws/.git", "/ws/x/.git/hooks", "/home/u/.config", "/home/u"] {
        assert!(p.leads_to(Path::new(yes)).is_some(), "{yes}");
    }
    for no in [
        "/ws/x",
        "/ws/.gitx",
        "/ws/hooks",
        "/home/u/x/.config",
        "/ws/.vscode",
    ] {
        assert!(p.leads_to(Path::new(no)).is_none(), "{no}");
    }
}

#[test]
fn a_subtree_exception_beneath_a_protected_directory_holds_for_its_tree_only() {
    let p = Protect::from_patterns([
        "**/.git/hooks/*",
        "**/.claude",
        "!/home/u/.claude/projects/**",
        "!/home/u/.claude/.claude.json*/**",
        "!/home/u/.claude/notes",
    ])
    .unwrap();
    for no in [
        "/home/u/.claude/projects",
        "/home/u/.claude/projects/-ws/1.jsonl",
        "/home/u/.claude/.claude.json",
        "/home/u/.claude/.claude.json.tmp.1.2",
        "/home/u/.claude/.claude.json.lock",
    ] {
        assert!(p.protects(Path::new(no)).is_none(), "{no}");
    }
    // Part of `~/.claude` is excepted: not everything beneath it is
    // protected; nothing is excepted beneath another `.claude`.
    for (dir, beneath) in [
        ("/home/u/.claude", true),
        ("/home/u/.claude/projects", true),
        ("/home/u/.claude/commands", false),
        ("/home/u", true),
        ("/ws/.claude", false),
    ] {
        assert_eq!(p.excepts_beneath(Path::new(dir)), beneath, "{dir}");
    }
    for yes in [
        "/home/u/.claude",
        "/home/u/.claude/settings.json",
        "/home/u/.claude/commands/x.md",
        // An exception without `/**` holds only where the protecting
        // match is the path itself.
        "/home/u/.claude/notes",
        // Deeper matches still protect.
        "/home/u/.claude/projects/r/.claude/settings.json",
        "/home/u/.claude/projects/r/.git/hooks/pre-commit",
        // Another directory's `.claude`.
        "/ws/.claude/projects/x",
    ] {
        assert!(p.protects(Path::new(yes)).is_some(), "{yes}");
    }
}

#[test]
fn one_double_star_in_the_middle_spans_any_depth() {
    assert!(Protect::from_patterns(["**/a/**/b/**/c"]).is_err());
    assert!(Protect::from_patterns(["/**/**/c"]).is_err());
    assert!(Protect::from_patterns(["a/b"]).is_err());
    let p = Protect::from_patterns([
        "**/.git/modules/**/config",
        "**/.git/modules/**/hooks/*",
        "!**/.git/modules/**/hooks/*.sample",
        "/home/u/m/**/x",
    ])
    .unwrap();
    for yes in [
        "/ws/.git/modules/a/config",
        "/ws/.git/modules/lib/foo/config",
        "/ws/s/.git/modules/a/modules/b/config",
        "/ws/.git/modules/a/hooks/pre-commit",
        "/ws/.git/modules/a/hooks/pre-commit/x",
        "/home/u/m/x",
        "/home/u/m/a/b/x",
    ] {
        assert!(p.protects(Path::new(yes)).is_some(), "{yes}");
    }
    for no in [
        "/ws/.git/modules/a/hooks/pre-commit.sample",
        "/ws/.git/modules/a/HEAD",
        "/ws/.git/modules/a/objects/ab/cd",
        "/ws/.git/modules",
        "/ws/.git/config",
        "/ws/modules/a/config",
        "/home/v/m/x",
        "/x/home/u/m/x",
    ] {
        assert!(p.protects(Path::new(no)).is_none(), "{no}");
    }
    for yes in [
        "/ws/.git",
        "/ws/.git/modules",
        "/ws/.git/modules/a/hooks",
        "/ws/.git/modules/a/b/hooks",
        "/home/u/m",
    ] {
        assert!(p.leads_to(Path::new(yes)).is_some(), "{yes}");
    }
    for no in [
        "/ws/.git/modules/a",
        "/ws/.git/modules/a/objects",
        "/ws/x",
        "/home/u/m/a",
    ] {
        assert!(p.leads_to(Path::new(no)).is_none(), "{no}");
    }
    let root = |path: &str| p.region(Path::new(path)).map(|(_, root)| root);
    assert_eq!(
        root("/ws/.git/modules/a/objects/x"),
        Some(PathBuf::from("/ws/.git/modules"))
    );
    assert_eq!(
        root("/ws/.git/modules/a"),
        Some(PathBuf::from("/ws/.git/modules"))
    );
    assert_eq!(root("/ws/.git/modules"), None);
    assert_eq!(root("/ws/.git/hooks/x"), None);
    assert_eq!(root("/home/u/m/a"), Some(PathBuf::from("/home/u/m")));
}

/// attack15: a path added whole that holds glob characters (what a tool's
/// configuration names: `tools/ext[1].py`, `hooks{old}`, `a*b`, a
/// backslash) is protected, it and what lies beneath, and nothing its
/// characters would match as a glob. Mutation-checked: unescaped, `[1]`
/// protected `ext1.py` and not `ext[1].py`.
#[test]
fn a_tree_added_whole_is_protected_whatever_its_characters() {
    let mut p = Protect::default();
    for dir in [
        "/ws/tools/ext[1].py",
        "/ws/hooks{old}",
        "/ws/a*b",
        "/ws/b\\c",
        "/ws/q?",
    ] {
        p.add_tree(Path::new(dir)).unwrap();
        assert!(p.protects(Path::new(dir)).is_some(), "{dir}");
        assert!(p.protects(&Path::new(dir).join("x")).is_some(), "{dir}");
    }
    for other in [
        "/ws/tools/ext1.py",
        "/ws/hooksold",
        "/ws/aXb",
        "/ws/bc",
        "/ws/qq",
    ] {
        assert!(p.protects(Path::new(other)).is_none(), "{other}");
    }
}
