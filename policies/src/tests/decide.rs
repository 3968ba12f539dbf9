//! `BrokerPolicy::decide`: which rule wins, what it grants, protected
//! paths, and the built-in policies' choices.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::{resolve, vars_in, TempDir};
use crate::{load, BrokerPolicy, Policy, Vars, Verdict, Want};

/// Nothing under here exists, so patterns resolve as written.
const ROOT: &str = "/policies-test-none";

fn vars() -> Vars {
    Vars {
        home: format!("{ROOT}/home/u").into(),
        workspace: format!("{ROOT}/ws").into(),
        tmpdir: format!("{ROOT}/tmp").into(),
    }
}

fn policy(text: &str) -> Policy {
    resolve(text, &vars())
}

/// `path` under the home directory of [`vars`].
fn home(path: &str) -> String {
    format!("{ROOT}/home/u/{path}")
}

/// The verdict, the deciding rule (as displayed) and the reason.
fn decide(broker: &BrokerPolicy, path: &str, want: Want) -> (Verdict, String, String) {
    let d = broker.decide(Path::new(path), want);
    let rule = d.rule.map_or_else(String::new, |rule| rule.to_string());
    (d.verdict, rule, d.reason)
}

/// Just the verdict and the deciding rule's list and pattern.
fn winner(broker: &BrokerPolicy, path: &str, want: Want) -> (Verdict, String) {
    let d = broker.decide(Path::new(path), want);
    let rule = d
        .rule
        .map_or_else(String::new, |r| format!("{} {}", r.list_name(), r.pattern));
    (d.verdict, rule)
}

const EXAMPLE: &str = r#"
[broker]
allow = ["/policies-test-none/home/u/projects/certs/dev.pem", "/usr/share/dict"]
allow_write = ["~/projects", "$TMPDIR"]
ask = ["/"]
ask_write = ["~"]
deny = ["~/.ssh", "**/*.pem"]
"#;

#[test]
fn the_most_specific_rule_wins() {
    let policy = policy(EXAMPLE);
    let broker = &policy.broker;
    let (read, write) = (Want::Read, Want::Write);
    // A rule matching a deeper ancestor beats one matching a shallower one.
    assert_eq!(
        decide(broker, &home(".ssh/id_rsa"), read),
        (
            Verdict::Deny,
            "deny \"~/.ssh\" (p.toml:7)".to_string(),
            "denied by rule deny \"~/.ssh\" (p.toml:7)".to_string()
        )
    );
    assert_eq!(
        winner(broker, &home(".ssh"), read),
        (Verdict::Deny, "deny ~/.ssh".into())
    );
    // A component boundary: ~/.sshx is not under ~/.ssh.
    assert_eq!(
        winner(broker, &home(".sshx"), write),
        (Verdict::Ask, "ask_write ~".into())
    );
    // Matching the path itself beats matching an ancestor.
    assert_eq!(
        winner(broker, &home("projects/a/server.pem"), read),
        (Verdict::Deny, "deny **/*.pem".into())
    );
    // Equal depth: more literal characters win.
    let dev = home("projects/certs/dev.pem");
    assert_eq!(
        winner(broker, &dev, read),
        (Verdict::Allow, format!("allow {dev}"))
    );
    assert_eq!(
        winner(broker, &home("projects/a/b.txt"), Want::ReadWrite),
        (Verdict::Allow, "allow_write ~/projects".into())
    );
    assert_eq!(
        winner(broker, &home("notes"), write),
        (Verdict::Ask, "ask_write ~".into())
    );
    assert_eq!(
        winner(broker, "/etc/hosts", read),
        (Verdict::Ask, "ask /".into())
    );
    // `/` covers everything, itself included.
    assert_eq!(winner(broker, "/", read), (Verdict::Ask, "ask /".into()));
    assert_eq!(
        winner(broker, &format!("{ROOT}/tmp/out/x"), write),
        (Verdict::Allow, "allow_write $TMPDIR".into())
    );
}

#[test]
fn a_read_only_winner_refuses_writes() {
    let policy = policy(EXAMPLE);
    let broker = &policy.broker;
    assert_eq!(
        decide(broker, "/usr/share/dict/words", Want::Read).2,
        "allowed by rule allow \"/usr/share/dict\" (p.toml:3)"
    );
    for want in [Want::Write, Want::ReadWrite] {
        assert_eq!(
            decide(broker, "/usr/share/dict/words", want),
            (
                Verdict::Deny,
                "allow \"/usr/share/dict\" (p.toml:3)".to_string(),
                "rule allow \"/usr/share/dict\" (p.toml:3) grants read only".to_string()
            )
        );
    }
    // The winner decides completely: a broader rule that would grant the
    // write (ask_write ~) is not consulted.
    let dev = home("projects/certs/dev.pem");
    assert_eq!(decide(broker, &dev, Want::Write).0, Verdict::Deny);
    assert_eq!(
        decide(broker, "/etc/passwd", Want::Write).2,
        "rule ask \"/\" (p.toml:5) grants read only"
    );
    assert_eq!(
        decide(broker, "/etc/passwd", Want::Read).2,
        "asked by rule ask \"/\" (p.toml:5)"
    );
    assert_eq!(
        decide(broker, &home("notes"), Want::ReadWrite).2,
        "asked by rule ask_write \"~\" (p.toml:6)"
    );
}

#[test]
fn full_ties_go_to_the_stricter_rule() {
    let text = r#"
        [broker]
        allow = ["/t/a", "/t/b", "/t/c"]
        allow_write = ["/t/a", "/t/b", "/t/c", "/t/d"]
        ask = ["/t/b"]
        ask_write = ["/t/c", "/t/d"]
        deny = ["/t/a"]
    "#;
    let policy = policy(text);
    let broker = &policy.broker;
    assert_eq!(
        winner(broker, "/t/a/x", Want::Read),
        (Verdict::Deny, "deny /t/a".into())
    );
    assert_eq!(
        winner(broker, "/t/b/x", Want::Read),
        (Verdict::Ask, "ask /t/b".into())
    );
    assert_eq!(
        winner(broker, "/t/c/x", Want::Read),
        (Verdict::Ask, "ask_write /t/c".into())
    );
    assert_eq!(
        winner(broker, "/t/d/x", Want::Write),
        (Verdict::Ask, "ask_write /t/d".into())
    );
    // Same verdict: the rule that grants less.
    let policy = resolve(
        "[broker]\nallow_write = [\"/t\"]\nallow = [\"/t\"]",
        &vars(),
    );
    assert_eq!(
        winner(&policy.broker, "/t/x", Want::Write),
        (Verdict::Deny, "allow /t".into())
    );
}

#[test]
fn depth_then_literal_characters_with_globs() {
    let text = r#"
        [broker]
        allow = ["/data", "/data/*/report.txt", "/srv/**/public"]
        deny = ["/data/a/*", "/data/**/secret", "/srv/**/.git", "/t/[ab]/x", "/t/?/x"]
        ask = ["/t/a/?"]
    "#;
    let policy = policy(text);
    let broker = &policy.broker;
    let read = Want::Read;
    // Equal depth: `/data/*/report.txt` has more literal characters.
    assert_eq!(
        winner(broker, "/data/a/report.txt", read),
        (Verdict::Allow, "allow /data/*/report.txt".into())
    );
    // Matching the path itself beats matching its ancestor `/data`.
    assert_eq!(
        winner(broker, "/data/a/other", read),
        (Verdict::Deny, "deny /data/a/*".into())
    );
    // `*` does not cross `/`, but the match of `/data/a/*` at /data/a/other
    // covers everything beneath it.
    assert_eq!(
        winner(broker, "/data/a/other/deeper/x", read),
        (Verdict::Deny, "deny /data/a/*".into())
    );
    assert_eq!(
        winner(broker, "/data/b/c", read),
        (Verdict::Allow, "allow /data".into())
    );
    // `**` in the middle matches any number of components, none included.
    assert_eq!(
        winner(broker, "/data/secret", read),
        (Verdict::Deny, "deny /data/**/secret".into())
    );
    assert_eq!(
        winner(broker, "/data/x/y/secret/file", read),
        (Verdict::Deny, "deny /data/**/secret".into())
    );
    // The deepest match of a rule counts: /srv/x/public/y/.git is deeper.
    assert_eq!(
        winner(broker, "/srv/x/public/y/.git/config", read),
        (Verdict::Deny, "deny /srv/**/.git".into())
    );
    assert_eq!(
        winner(broker, "/srv/x/.git/public/f", read),
        (Verdict::Allow, "allow /srv/**/public".into())
    );
    // A class and a `?` count no literal characters: `/t/[ab]/x` and
    // `/t/?/x` tie with each other (both deny) and lose to nothing else.
    assert_eq!(
        winner(broker, "/t/a/x", read),
        (Verdict::Deny, "deny /t/[ab]/x".into())
    );
    assert_eq!(
        winner(broker, "/t/c/x", read),
        (Verdict::Deny, "deny /t/?/x".into())
    );
    assert_eq!(
        winner(broker, "/t/a/y", read),
        (Verdict::Ask, "ask /t/a/?".into())
    );
    // A wildcard never matches an empty component: `/t/a/?` does not cover /t/a.
    assert_eq!(winner(broker, "/t/a", read).0, Verdict::Deny);
    assert_eq!(decide(broker, "/t/a", read).2, "no broker rule covers /t/a");
}

#[test]
fn any_depth_patterns_and_trailing_globstars() {
    let text = r#"
        [broker]
        allow_write = ["$WORKSPACE/**", "/**"]
        deny = ["**/.git", "**/*.pem", "**/.env.*"]
        ask = ["~/x/**"]
    "#;
    let policy = policy(text);
    let broker = &policy.broker;
    let ws = format!("{ROOT}/ws");
    let rules: Vec<&str> = broker.rules().iter().map(|r| r.resolved.as_str()).collect();
    assert_eq!(rules[..2], [ws.as_str(), "/"]);
    assert_eq!(rules[2], home("x"));
    // `**/.git` matches the directory, and so covers what is inside it.
    assert_eq!(
        winner(broker, &format!("{ws}/.git/hooks/pre-commit"), Want::Write),
        (Verdict::Deny, "deny **/.git".into())
    );
    assert_eq!(winner(broker, "/.git", Want::Read).0, Verdict::Deny);
    assert_eq!(
        winner(broker, &format!("{ws}/a.pem.txt"), Want::Write).0,
        Verdict::Allow
    );
    assert_eq!(
        winner(broker, &format!("{ws}/.env.local"), Want::Read).0,
        Verdict::Deny
    );
    // `~/x/**` covers ~/x itself, like `~/x`.
    assert_eq!(
        winner(broker, &home("x"), Want::Read),
        (Verdict::Ask, "ask ~/x/**".into())
    );
    assert_eq!(
        winner(broker, "/anything/else", Want::Write).0,
        Verdict::Allow
    );
}

#[test]
fn non_utf8_paths_are_matched_by_bytes() {
    let policy = policy(EXAMPLE);
    let broker = &policy.broker;
    let path = |bytes: &[u8]| PathBuf::from(OsStr::from_bytes(bytes));
    let mut pem = home("projects/").into_bytes();
    pem.extend_from_slice(b"\xff\xfe.pem");
    let d = broker.decide(&path(&pem), Want::Read);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.rule.unwrap().pattern, "**/*.pem");
    let mut plain = home("projects/").into_bytes();
    plain.extend_from_slice(b"caf\xe9/x");
    assert_eq!(
        broker.decide(&path(&plain), Want::Write).verdict,
        Verdict::Allow
    );

    let narrow = resolve("[broker]\nallow = [\"/usr\"]", &vars());
    let d = narrow
        .broker
        .decide(&path(b"/srv/caf\xe9/\xc3\xa9"), Want::Read);
    assert_eq!(d.reason, "no broker rule covers /srv/caf\\xe9/é");
    // Denied for want of a rule, not protected.
    assert!(!d.protected);
}

#[test]
fn paths_must_be_absolute_and_canonical() {
    let policy = policy(EXAMPLE);
    let broker = &policy.broker;
    let cases = [
        (
            "usr/share/dict/words",
            "path usr/share/dict/words is not absolute",
        ),
        ("", "path  is not absolute"),
        (
            "/usr/share/dict/../../../etc/shadow",
            "path /usr/share/dict/../../../etc/shadow is not canonical",
        ),
        (
            "/usr/share/./dict",
            "path /usr/share/./dict is not canonical",
        ),
        ("/usr//share", "path /usr//share is not canonical"),
        ("/usr/share/dict/", "path /usr/share/dict/ is not canonical"),
    ];
    for (path, reason) in cases {
        assert_eq!(
            decide(broker, path, Want::Read),
            (Verdict::Deny, String::new(), reason.to_string())
        );
    }
}

#[test]
fn protected_paths_override_every_rule() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    let real = root.mkdir("real");
    symlink(&real, root.path().join("link")).unwrap();
    let mut policy = resolve("[broker]\nallow_write = [\"/\"]", &vars);
    let broker = &mut policy.broker;
    let session = root.path().join("link/sluice-1");
    broker.protect(session.join("private"), "sluice's session state");
    broker.protect(real.join("audit.log"), "sluice's audit log");
    let check = |broker: &BrokerPolicy, path: PathBuf| {
        let d = broker.decide(&path, Want::Write);
        assert_eq!(
            d.protected,
            d.verdict == Verdict::Deny,
            "{}",
            path.display()
        );
        (d.verdict, d.rule.is_some(), d.reason)
    };
    let protected = (Verdict::Deny, false, "sluice's session state".to_string());
    // The real path of what was protected through a symlink...
    assert_eq!(check(broker, real.join("sluice-1/private")), protected);
    assert_eq!(check(broker, real.join("sluice-1/private/a/b")), protected);
    // ...and the path as given.
    assert_eq!(check(broker, session.join("private/x")), protected);
    assert_eq!(
        check(broker, real.join("audit.log")),
        (Verdict::Deny, false, "sluice's audit log".to_string())
    );
    // Siblings are not protected.
    assert_eq!(
        check(broker, real.join("sluice-1/private2")).0,
        Verdict::Allow
    );
    assert_eq!(check(broker, real.join("audit.log.1")).0, Verdict::Allow);
}

#[test]
fn a_protected_tree_can_leave_one_subtree_to_the_rules() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    let sessions = root.mkdir("sluice-1000");
    let mut policy = resolve("[broker]\nallow_write = [\"/\"]", &vars);
    let broker = &mut policy.broker;
    let own = sessions.join("aaaa/tmp");
    broker.protect_except(sessions.clone(), Some(own.clone()), "other sluice sessions");
    let verdict = |path: PathBuf| broker.decide(&path, Want::Write).verdict;
    // Said so by the decision: nothing else keeps the list.
    assert!(broker.decide(&sessions, Want::Read).protected);
    assert!(!broker.decide(&own, Want::Read).protected);
    assert_eq!(verdict(own.join("x")), Verdict::Allow);
    assert_eq!(verdict(own.clone()), Verdict::Allow);
    assert_eq!(verdict(sessions.clone()), Verdict::Deny);
    for other in ["aaaa", "aaaa/private/x", "aaaa/tmp2", "bbbb/tmp/x"] {
        assert_eq!(verdict(sessions.join(other)), Verdict::Deny, "{other}");
    }
}

#[test]
fn rules_display_for_reasons() {
    let policy = policy(EXAMPLE);
    let shown: Vec<String> = policy
        .broker
        .rules()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        shown,
        [
            format!("allow \"{}\" (p.toml:3)", home("projects/certs/dev.pem")),
            "allow \"/usr/share/dict\" (p.toml:3)".to_string(),
            "allow_write \"~/projects\" (p.toml:4)".to_string(),
            "allow_write \"$TMPDIR\" (p.toml:4)".to_string(),
            "ask \"/\" (p.toml:5)".to_string(),
            "ask_write \"~\" (p.toml:6)".to_string(),
            "deny \"~/.ssh\" (p.toml:7)".to_string(),
            "deny \"**/*.pem\" (p.toml:7)".to_string(),
        ]
    );
    let mut rule = policy.broker.rules()[0].clone();
    rule.location = None;
    rule.pattern = "/a \"b\"".into();
    assert_eq!(rule.to_string(), "allow \"/a \\\"b\\\"\"");
}

/// A home and workspace with the things the built-ins name.
fn builtin(name: &str) -> (Policy, Vars, TempDir) {
    let root = TempDir::new();
    let vars = vars_in(&root);
    root.mkdir("home/.ssh");
    root.mkdir("ws/.git/hooks");
    let policy = load(name).unwrap().resolve(&vars).unwrap();
    (policy, vars, root)
}

#[test]
fn default_broker_rules() {
    let (policy, vars, _root) = builtin("default");
    let broker = &policy.broker;
    let (home, ws, tmp) = (&vars.home, &vars.workspace, &vars.tmpdir);
    let verdict = |path: PathBuf, want| broker.decide(&path, want).verdict;
    let (read, write) = (Want::Read, Want::Write);
    // Secrets: never, not even asked.
    assert_eq!(verdict(home.join(".ssh/id_rsa"), read), Verdict::Deny);
    assert_eq!(verdict(home.join(".ssh/config"), read), Verdict::Deny);
    assert_eq!(verdict(home.join(".aws/credentials"), read), Verdict::Deny);
    assert_eq!(verdict("/etc/shadow".into(), read), Verdict::Deny);
    assert_eq!(
        verdict("/etc/ssh/ssh_host_ed25519_key".into(), read),
        Verdict::Deny
    );
    assert_eq!(verdict(ws.join("certs/server.pem"), read), Verdict::Deny);
    assert_eq!(verdict(ws.join("deploy/id_ed25519"), read), Verdict::Deny);
    assert_eq!(verdict(ws.join(".env"), read), Verdict::Deny);
    assert_eq!(verdict(ws.join("app/.env.production"), read), Verdict::Deny);
    assert_eq!(verdict("/proc/self/environ".into(), read), Verdict::Deny);
    assert_eq!(verdict("/dev/sda".into(), read), Verdict::Deny);
    // Reading anything else: asked.
    assert_eq!(verdict("/usr/share/x".into(), read), Verdict::Ask);
    assert_eq!(verdict("/etc/hosts".into(), read), Verdict::Ask);
    assert_eq!(verdict(home.join("notes.txt"), read), Verdict::Ask);
    assert_eq!(verdict(home.join(".bashrc"), read), Verdict::Ask);
    // Writing: asked in the home directory, refused elsewhere and in the
    // files that run code at the next login, shell or git command.
    assert_eq!(verdict(home.join("notes.txt"), write), Verdict::Ask);
    assert_eq!(verdict("/etc/hosts".into(), write), Verdict::Deny);
    assert_eq!(
        verdict("/usr/local/bin/x".into(), Want::ReadWrite),
        Verdict::Deny
    );
    assert_eq!(verdict(home.join(".bashrc"), write), Verdict::Deny);
    assert_eq!(verdict(home.join(".local/bin/ls"), write), Verdict::Deny);
    assert_eq!(
        verdict(home.join(".config/git/config"), write),
        Verdict::Deny
    );
    // The workspace and the temporary directory: served without asking,
    // except git's hooks and configuration, which are read only.
    assert_eq!(verdict(ws.join("src/main.rs"), write), Verdict::Allow);
    assert_eq!(verdict(tmp.join("out.txt"), write), Verdict::Allow);
    assert_eq!(
        verdict(ws.join(".git/hooks/pre-commit"), read),
        Verdict::Allow
    );
    assert_eq!(
        verdict(ws.join(".git/hooks/pre-commit"), write),
        Verdict::Deny
    );
    assert_eq!(verdict(ws.join(".git/config"), write), Verdict::Deny);
    assert_eq!(verdict(ws.join(".git/HEAD"), write), Verdict::Allow);
    let reason = broker.decide(&PathBuf::from("/etc/hosts"), write).reason;
    assert!(
        reason.starts_with("rule ask \"/\" (default:") && reason.ends_with(") grants read only")
    );
}

#[test]
fn readonly_broker_rules() {
    let (policy, vars, _root) = builtin("readonly");
    let (default, ..) = builtin("default");
    let broker = &policy.broker;
    let (home, ws) = (&vars.home, &vars.workspace);
    let verdict = |path: PathBuf, want| broker.decide(&path, want).verdict;
    let denies = |p: &Policy| -> Vec<String> {
        let rules = p.broker.rules().iter();
        rules
            .filter(|r| r.verdict == Verdict::Deny)
            .map(|r| r.pattern.clone())
            .collect()
    };
    assert_eq!(denies(&policy), denies(&default));
    assert!(broker.rules().iter().all(|rule| !rule.grants_write));
    assert_eq!(verdict(home.join(".ssh/id_rsa"), Want::Read), Verdict::Deny);
    assert_eq!(verdict("/etc/shadow".into(), Want::Read), Verdict::Deny);
    assert_eq!(verdict("/usr/share/x".into(), Want::Read), Verdict::Ask);
    assert_eq!(verdict(ws.join("src/main.rs"), Want::Read), Verdict::Allow);
    assert_eq!(verdict(ws.join("key.pem"), Want::Read), Verdict::Deny);
    for path in [ws.join("src/main.rs"), home.join("notes"), "/tmp/x".into()] {
        assert_eq!(verdict(path, Want::Write), Verdict::Deny);
    }
}
