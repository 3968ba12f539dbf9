//! `[broker]`: parse errors, merging over `extends`, resolution of
//! variables and canonical prefixes.

use std::os::unix::fs::symlink;
use std::path::Path;

use super::{load_error, resolve, resolve_error, vars_in, TempDir};
use crate::rule::BrokerList;
use crate::{load_str, Location, Verdict, Want};

/// The resolved patterns of a policy's rules, as `list resolved`.
fn resolved(text: &str, vars: &crate::Vars) -> Vec<String> {
    let policy = resolve(text, vars);
    let rules = policy.broker.rules().iter();
    rules
        .map(|rule| format!("{} {}", rule.list_name(), rule.resolved))
        .collect()
}

#[test]
fn unknown_keys_and_wrong_types_name_line_column_and_key() {
    assert_eq!(
        load_error("[broker]\nask = [\"/\"]\nalow = []"),
        "policy 'p.toml', line 3, column 1: unknown key 'alow'"
    );
    assert_eq!(
        load_error("broker = 3"),
        "policy 'p.toml', line 1, column 10: key 'broker': expected a table, found integer `3`"
    );
    assert_eq!(
        load_error("[broker]\nallow = \"/x\""),
        "policy 'p.toml', line 2, column 9: key 'broker.allow': \
         expected an array, found string \"/x\""
    );
    assert_eq!(
        load_error("[broker]\ndeny = [\"/a\", 1]"),
        "policy 'p.toml', line 2, column 15: key 'broker.deny': \
         expected a string, found integer `1`"
    );
    // Broker entries are patterns, not the `{ path, optional }` of [filesystem].
    assert_eq!(
        load_error("[broker]\nallow = [{ path = \"/x\" }]"),
        "policy 'p.toml', line 2, column 10: key 'broker.allow': \
         expected a string, found a table"
    );
}

#[test]
fn bad_patterns_name_line_column_and_key() {
    assert_eq!(
        load_error("[broker]\nask = [\n  \"/\",\n  \"etc/x\",\n]"),
        "policy 'p.toml', line 4, column 3: key 'broker.ask': \
         pattern 'etc/x' is relative; start it with /, ~, a variable or **/"
    );
    assert_eq!(
        load_error("[broker]\nask_write = [\"~user/x\"]"),
        "policy 'p.toml', line 2, column 14: key 'broker.ask_write': \
         pattern '~user/x' is relative; start it with /, ~, a variable or **/"
    );
    assert_eq!(
        load_error("[broker]\ndeny = [\"*.pem\"]"),
        "policy 'p.toml', line 2, column 9: key 'broker.deny': \
         pattern '*.pem' is relative; start it with /, ~, a variable or **/"
    );
    assert_eq!(
        load_error("[broker]\ndeny = [\"**/*.{pem\"]"),
        "policy 'p.toml', line 2, column 9: key 'broker.deny': invalid pattern '**/*.{pem': \
         unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)"
    );
    assert_eq!(
        load_error("[broker]\nallow_write = [\"$WORKSPACE/[z-a]\"]"),
        "policy 'p.toml', line 2, column 16: key 'broker.allow_write': \
         invalid pattern '$WORKSPACE/[z-a]': invalid range; 'z' > 'a'"
    );
    assert_eq!(
        load_error("[broker]\ndeny = [\"$FOO/x\"]"),
        "policy 'p.toml', line 2, column 9: key 'broker.deny': unknown variable '$FOO'"
    );
    assert_eq!(
        load_error("[broker]\ndeny = [\"/a/$\"]"),
        "policy 'p.toml', line 2, column 9: key 'broker.deny': \
         '$' in '/a/$' starts no variable (write '$$' for a literal '$')"
    );
    assert_eq!(
        load_error("[broker]\nallow = [\"~/a/../b\"]"),
        "policy 'p.toml', line 2, column 10: key 'broker.allow': \
         pattern '~/a/../b' has a '..' component; write the path it stands for"
    );
    assert_eq!(
        load_error("[broker]\ndeny = [\"/a/{b,c/d}\"]"),
        "policy 'p.toml', line 2, column 9: key 'broker.deny': pattern '/a/{b,c/d}': \
         a '/' inside '[...]' or '{...}', or after '\\', is not supported"
    );
    assert_eq!(
        load_error("[broker]\ndeny = [\"**/**\"]"),
        "policy 'p.toml', line 2, column 9: key 'broker.deny': \
         pattern '**/**' covers every path; write \"/\" for that"
    );
}

#[test]
fn resolve_errors_name_line_and_key() {
    let root = TempDir::new();
    let mut vars = vars_in(&root);
    let ws = vars.workspace.clone();
    let looped = ws.join("loop");
    symlink(&looped, &looped).unwrap();
    let error = resolve_error("[broker]\n\nask = [\"$WORKSPACE/loop/x\"]", &vars);
    assert!(
        error.starts_with(&format!(
            "policy 'p.toml', line 3, key 'broker.ask': cannot resolve path \
             '$WORKSPACE/loop/x' ({}): ",
            looped.display()
        )),
        "{error}"
    );
    vars.workspace = "ws".into();
    assert_eq!(
        resolve_error("[broker]\nallow = [\"$WORKSPACE/x\"]", &vars),
        "policy 'p.toml', line 2, key 'broker.allow': \
         pattern '$WORKSPACE/x' (ws/x) is relative; variables must hold absolute paths"
    );
}

#[test]
fn lists_merge_over_extends_parent_first() {
    let root = TempDir::new();
    root.write(
        "parent.toml",
        "[broker]\nask = [\"/\"]\ndeny = [\"~/.ssh\", \"**/*.pem\"]\n",
    );
    let child = "extends = [\"parent.toml\"]\n\
                 [broker]\n\
                 allow = [\"/usr/share/dict\"]\n\
                 deny = [\"~/.aws\", \"~/.ssh\", \"$HOME/.ssh/\"]\n";
    let spec = load_str("child.toml", child, root.path()).unwrap();
    let written = |list| -> Vec<&str> {
        let entries = spec.broker_list(list).iter();
        entries.map(|entry| entry.written.as_str()).collect()
    };
    assert_eq!(written(BrokerList::Ask), ["/"]);
    assert_eq!(written(BrokerList::Allow), ["/usr/share/dict"]);
    assert_eq!(
        written(BrokerList::Deny),
        ["~/.ssh", "**/*.pem", "~/.aws", "~/.ssh", "$HOME/.ssh/"]
    );

    let vars = vars_in(&root);
    let policy = spec.resolve(&vars).unwrap();
    let home = vars.home.display();
    let rules: Vec<String> = policy
        .broker
        .rules()
        .iter()
        .map(|r| r.to_string())
        .collect();
    // Repeats within a list resolve alike and are dropped; the first is kept.
    let parent = root.path().join("parent.toml");
    let parent = parent.display();
    assert_eq!(
        rules,
        [
            "allow \"/usr/share/dict\" (child.toml:3)".to_string(),
            format!("ask \"/\" ({parent}:2)"),
            format!("deny \"~/.ssh\" ({parent}:3)"),
            format!("deny \"**/*.pem\" ({parent}:3)"),
            "deny \"~/.aws\" (child.toml:4)".to_string(),
        ]
    );
    assert_eq!(policy.broker.rules()[4].resolved, format!("{home}/.aws"));
    assert_eq!(
        policy.broker.rules()[2].location,
        Some(Location::Policy {
            policy: parent.to_string(),
            line: 3
        })
    );
    // A policy without [broker] entries brokers nothing.
    let empty = resolve("", &vars);
    assert!(empty.broker.is_empty());
    assert_eq!(empty.broker.len(), 0);
    let d = empty.broker.decide(Path::new("/usr"), Want::Read);
    assert_eq!(
        (d.verdict, d.reason.as_str()),
        (Verdict::Deny, "no broker rule covers /usr")
    );
}

#[test]
fn variables_are_substituted_and_escaped() {
    let root = TempDir::new();
    let mut vars = vars_in(&root);
    // A home whose name is full of glob characters matches only itself.
    vars.home = root.mkdir("we*rd[1]{a,b}");
    let home = vars.home.display().to_string();
    let escaped = crate::rule::escape(&home);
    assert_eq!(
        resolved(
            "[broker]\nask_write = [\"~\", \"$HOME/x/**\", \"${HOME}/*.txt\", \"~/a$$b\"]\n\
             deny = [\"**/id_rsa*\", \"~/**/*.pem\"]",
            &vars
        ),
        [
            format!("ask_write {escaped}"),
            // A trailing `/**` is dropped: `x/**` covers what `x` covers.
            format!("ask_write {escaped}/x"),
            format!("ask_write {escaped}/*.txt"),
            format!("ask_write {escaped}/a$b"),
            "deny **/id_rsa*".to_string(),
            format!("deny {escaped}/**/*.pem"),
        ]
    );
    let policy = resolve("[broker]\nallow = [\"~/*.txt\"]", &vars);
    let broker = &policy.broker;
    let decide = |path: &str| broker.decide(Path::new(path), Want::Read).verdict;
    assert_eq!(decide(&format!("{home}/a.txt")), Verdict::Allow);
    assert_eq!(
        decide(&format!("{}/we_rd1a/a.txt", root.path().display())),
        Verdict::Deny
    );
}

#[test]
fn the_longest_existing_literal_prefix_is_canonicalised() {
    let root = TempDir::new();
    let mut vars = vars_in(&root);
    let real = root.mkdir("real");
    root.mkdir("real/tmp/sub");
    symlink(&real, root.path().join("link")).unwrap();
    // $TMPDIR under a symlink, like /tmp on some systems.
    vars.tmpdir = root.path().join("link/tmp");
    let real = real.display();
    assert_eq!(
        resolved(
            "[broker]\nallow_write = [\"$TMPDIR/out\", \"$TMPDIR\", \"$TMPDIR/sub/missing/deeper\"]\n\
             ask = [\"$TMPDIR/sub/*.log\", \"$TMPDIR/**/x\", \"$TMPDIR/gone/*/y\"]\n\
             deny = [\"/\", \"/**\", \"//\"]",
            &vars
        ),
        [
            // Missing parts are kept as written after the canonical prefix.
            format!("allow_write {real}/tmp/out"),
            format!("allow_write {real}/tmp"),
            format!("allow_write {real}/tmp/sub/missing/deeper"),
            // The prefix stops at the first component with a wildcard.
            format!("ask {real}/tmp/sub/*.log"),
            format!("ask {real}/tmp/**/x"),
            format!("ask {real}/tmp/gone/*/y"),
            "deny /".to_string(),
        ]
    );
    // What the supervisor sees is the real path.
    let policy = resolve("[broker]\nallow_write = [\"$TMPDIR/out\"]", &vars);
    let out = format!("{real}/tmp/out/report.txt");
    let decision = policy.broker.decide(Path::new(&out), Want::Write);
    assert_eq!(decision.verdict, Verdict::Allow);
    assert_eq!(decision.rule.unwrap().pattern, "$TMPDIR/out");
}

#[test]
fn broker_round_trips_through_to_toml() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    root.mkdir("ws/odd*{x}?");
    root.mkdir("ws/a$b");
    let real = root.mkdir("real");
    symlink(&real, root.path().join("ws/link")).unwrap();
    let policy = resolve(
        r#"
        [broker]
        allow = ["$WORKSPACE/odd*{x}?/**", "$WORKSPACE/a$$b/*.log"]
        allow_write = ["$WORKSPACE/link/out", "$TMPDIR"]
        ask = ["/", "$WORKSPACE/[ab]*/x"]
        ask_write = ["~"]
        deny = ["**/*.pem", "~/.ssh", "**/.env.*", "$WORKSPACE/quote\"back\\slash"]
        "#,
        &vars,
    );
    assert_eq!(policy.broker.len(), 11);
    let text = policy.to_toml();
    assert!(text.contains("\n[broker]\nallow = [\n"), "{text}");
    assert!(text.contains("    \"**/*.pem\",\n"), "{text}");
    let reloaded = load_str("p.toml", &text, Path::new("/"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .resolve(&vars)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(reloaded, policy, "{text}");
    assert_eq!(reloaded.to_toml(), text);
    // Equal policies decide alike, wherever their rules were written.
    // `odd*{x}?` is a glob there (it was written in a pattern).
    let odd = vars.workspace.join("odd-x!/f");
    let decision = reloaded.broker.decide(&odd, Want::Read);
    assert_eq!(decision.verdict, Verdict::Allow);
    let location = decision.rule.unwrap().location.as_ref();
    assert!(matches!(location, Some(Location::Policy { policy, .. }) if policy == "p.toml"));

    // protect() is part of what a broker policy is.
    let mut protected = policy.clone();
    assert_eq!(protected, policy);
    protected
        .broker
        .protect(root.path().join("audit"), "sluice's audit log");
    assert_ne!(protected, policy);
}

#[test]
fn transparent_is_off_unless_set_and_the_child_overrides() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    assert!(!resolve("", &vars).transparent);
    assert!(!resolve("[broker]\ntransparent = false\n", &vars).transparent);
    let on = resolve("[broker]\ntransparent = true\n", &vars);
    assert!(on.transparent);
    // It survives to_toml, and an off policy writes nothing for it.
    let text = on.to_toml();
    assert!(text.contains("\ntransparent = true\n"), "{text}");
    let reloaded = load_str("p.toml", &text, Path::new("/")).unwrap();
    assert_eq!(reloaded.resolve(&vars).unwrap(), on);
    assert!(!resolve("", &vars).to_toml().contains("transparent"));
    // A parent's setting is inherited; a child's replaces it.
    root.write("on.toml", "[broker]\ntransparent = true\n");
    let inherits = load_str("c.toml", "extends = [\"on.toml\"]\n", root.path()).unwrap();
    assert!(inherits.resolve(&vars).unwrap().transparent);
    let text = "extends = [\"on.toml\"]\n[broker]\ntransparent = false\n";
    let overrides = load_str("c.toml", text, root.path()).unwrap();
    assert!(!overrides.resolve(&vars).unwrap().transparent);
    // The command line turns it on whatever the policy says.
    let mut spec = overrides;
    spec.set_transparent();
    assert!(spec.resolve(&vars).unwrap().transparent);
    assert_eq!(
        load_error("[broker]\ntransparent = \"yes\""),
        "policy 'p.toml', line 2, column 15: key 'broker.transparent': \
         expected a boolean, found string \"yes\""
    );
}
