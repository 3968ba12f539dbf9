//! Resolution: variables, globs, missing paths, symlinks, de-duplication,
//! command-line overrides.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::PathBuf;

use super::{resolve, resolve_error, spec, vars_in, TempDir};
use crate::{AskHosts, NetPolicy};

#[test]
fn every_variable_form_is_substituted() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    root.mkdir("home/a");
    root.mkdir("home/b");
    root.mkdir("home/c");
    root.mkdir("ws/d");
    root.mkdir("tmp/e");
    root.mkdir("tmp/f$g");
    let policy = resolve(
        r#"
        [filesystem]
        read = ["~", "~/a", "$HOME/b", "${HOME}/c", "$WORKSPACE/d", "${TMPDIR}/e", "$TMPDIR/f$$g"]
        [environment]
        set = { CACHE = "$TMPDIR/cache", CFG = "~/cfg", PLAIN = "a~b", PRICE = "$$5" }
        "#,
        &vars,
    );
    let expected: Vec<PathBuf> = [
        "home", "home/a", "home/b", "home/c", "ws/d", "tmp/e", "tmp/f$g",
    ]
    .iter()
    .map(|p| root.path().join(p))
    .collect();
    assert_eq!(policy.filesystem.read, expected);
    let tmp = vars.tmpdir.display();
    let home = vars.home.display();
    assert_eq!(
        policy.env.set,
        BTreeMap::from([
            ("CACHE".to_string(), format!("{tmp}/cache")),
            ("CFG".to_string(), format!("{home}/cfg")),
            ("PLAIN".to_string(), "a~b".to_string()),
            ("PRICE".to_string(), "$5".to_string()),
        ])
    );
}

#[test]
fn deny_globs_expand_in_the_last_component() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    for name in [".env", ".env.prod", ".env.local", ".envrc", "x.env"] {
        root.write(&format!("ws/{name}"), "");
    }
    root.mkdir("ws/.git");
    root.write("ws/.git/config", "");
    let policy = resolve(
        r#"
        [filesystem]
        write = ["$WORKSPACE"]
        read_only = ["$WORKSPACE/.git/conf*", "$WORKSPACE/.git/hook?"]
        deny = ["$WORKSPACE/.env", "$WORKSPACE/.env.*", "$WORKSPACE/*.pem", "$WORKSPACE/nodir/*"]
        "#,
        &vars,
    );
    let ws = &vars.workspace;
    assert_eq!(
        policy.filesystem.deny,
        [ws.join(".env"), ws.join(".env.local"), ws.join(".env.prod")]
    );
    assert_eq!(policy.filesystem.read_only, [ws.join(".git/config")]);
    assert_eq!(
        policy.filesystem.absent,
        [ws.join(".git/hook?"), ws.join("*.pem"), ws.join("nodir/*")]
    );
}

#[test]
fn globs_are_literal_in_allow_lists_and_must_parse() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    root.mkdir("ws/a*");
    root.mkdir("ws/ab");
    let policy = resolve("[filesystem]\nread = [\"$WORKSPACE/a*\"]", &vars);
    assert_eq!(policy.filesystem.read, [vars.workspace.join("a*")]);
    assert_eq!(
        resolve_error("[filesystem]\ndeny = [\"$WORKSPACE/a[\"]", &vars),
        "policy 'p.toml', line 2, key 'filesystem.deny': \
         invalid glob 'a[': unclosed character class; missing ']'"
    );
}

#[test]
fn missing_paths_are_absent_when_allowed_to_be() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    root.write("ws/file", "");
    let policy = resolve(
        r#"
        [filesystem]
        read = [{ path = "~/.pyenv", optional = true }, "$WORKSPACE"]
        write = [{ path = "$WORKSPACE/file/sub", optional = true }]
        read_only = ["$WORKSPACE/.git/hooks"]
        deny = ["~/.ssh", { path = "~/.aws", optional = true }]
        "#,
        &vars,
    );
    let (home, ws) = (&vars.home, &vars.workspace);
    assert_eq!(policy.filesystem.read, std::slice::from_ref(ws));
    assert!(policy.filesystem.write.is_empty());
    assert!(policy.filesystem.deny.is_empty());
    assert_eq!(
        policy.filesystem.absent,
        [
            home.join(".pyenv"),
            // Not a directory counts as missing.
            ws.join("file/sub"),
            ws.join(".git/hooks"),
            home.join(".ssh"),
            home.join(".aws"),
        ]
    );
    // Only the read-only one is for the supervisor to check at the end.
    assert_eq!(policy.filesystem.absent_read_only, [ws.join(".git/hooks")]);
}

#[test]
fn paths_are_canonicalised_through_symlinks() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    let real = root.mkdir("ws/real");
    symlink(&real, vars.workspace.join("link")).unwrap();
    let secret = root.write("elsewhere/secret", "");
    symlink(&secret, vars.workspace.join(".env.link")).unwrap();
    symlink(
        root.path().join("gone"),
        vars.workspace.join(".env.dangling"),
    )
    .unwrap();
    let policy = resolve(
        r#"
        [filesystem]
        read = ["$WORKSPACE/link", "$WORKSPACE/link/../real/."]
        deny = ["$WORKSPACE/.env.*"]
        "#,
        &vars,
    );
    assert_eq!(policy.filesystem.read, [real]);
    assert_eq!(policy.filesystem.deny, [secret]);
    assert_eq!(
        policy.filesystem.absent,
        [vars.workspace.join(".env.dangling")]
    );
}

#[test]
fn lists_are_deduplicated_in_order() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    let policy = resolve(
        r#"
        [filesystem]
        read = ["$WORKSPACE", "/", "~/../ws", "${WORKSPACE}/"]
        deny = ["~/.ssh", "$HOME/.ssh"]
        [environment]
        pass = ["PATH", "LC_*", "PATH"]
        "#,
        &vars,
    );
    assert_eq!(
        policy.filesystem.read,
        [vars.workspace.clone(), PathBuf::from("/")]
    );
    assert_eq!(policy.filesystem.absent, [vars.home.join(".ssh")]);
    assert_eq!(policy.env.pass, ["PATH", "LC_*"]);
}

#[test]
fn command_line_overrides_apply() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    root.mkdir("home/data");
    let mut spec = spec("[network]\nmode = \"none\"\n[filesystem]\nread = [\"/\"]");
    spec.allow_read("~/data");
    spec.allow_write("$TMPDIR");
    spec.allow_write("$TMPDIR");
    spec.set_network("tcp:443,bind:8000".parse().unwrap());
    let policy = spec.resolve(&vars).unwrap();
    assert_eq!(
        policy.filesystem.read,
        [PathBuf::from("/"), vars.home.join("data")]
    );
    assert_eq!(policy.filesystem.write, std::slice::from_ref(&vars.tmpdir));
    assert_eq!(
        policy.network,
        "tcp:443,bind:8000".parse::<NetPolicy>().unwrap()
    );
    // The spec itself is unchanged by resolution and can be resolved again.
    assert_eq!(spec.resolve(&vars).unwrap(), policy);
}

#[test]
fn unreadable_directories_are_errors_not_absent() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    let locked = root.mkdir("ws/locked");
    root.write("ws/locked/.env.x", "");
    let loop_a = vars.workspace.join("loop");
    symlink(&loop_a, &loop_a).unwrap();
    let error = resolve_error("[filesystem]\ndeny = [\"$WORKSPACE/loop\"]", &vars);
    assert!(
        error.starts_with(&format!(
            "policy 'p.toml', line 2, key 'filesystem.deny': cannot resolve path \
             '$WORKSPACE/loop' ({}): ",
            loop_a.display()
        )),
        "{error}"
    );
    // Listing a directory that cannot be read stops resolution (root can
    // read anything, so this part only runs for other users).
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o300)).unwrap();
    if fs::read_dir(&locked).is_err() {
        let error = resolve_error("[filesystem]\ndeny = [\"$WORKSPACE/locked/.env.*\"]", &vars);
        assert!(error.ends_with("Permission denied"), "{error}");
    }
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn hosts_come_from_the_policy_and_the_command_line_and_print_back() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    let mut spec = super::spec(
        "[network]\nhosts = [\"api.example.com\", \"*.github.com:443\"]\nask_hosts = [\"*.pypi.org\"]",
    );
    spec.allow_host("127.0.0.1:5432".parse().unwrap());
    let policy = spec.resolve(&vars).unwrap();
    let NetPolicy::Hosts(hosts) = &policy.network else {
        panic!("{:?}", policy.network);
    };
    let allow: Vec<String> = hosts.allow.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        allow,
        ["api.example.com", "*.github.com:443", "127.0.0.1:5432"]
    );
    let printed = policy.to_toml();
    assert!(
        printed.contains(
            "mode = \"hosts\"\nhosts = [\"api.example.com\", \"*.github.com:443\", \
             \"127.0.0.1:5432\"]\nask_hosts = [\"*.pypi.org\"]\n"
        ),
        "{printed}"
    );
    // What `policy show` prints loads back to the same rules.
    let again = crate::load_str("shown.toml", &printed, std::path::Path::new("/")).unwrap();
    assert_eq!(again.resolve(&vars).unwrap().network, policy.network);
    // --allow-host over another mode: that host alone.
    let mut spec = super::spec("[network]\nmode = \"all\"");
    spec.allow_host("a.com".parse().unwrap());
    let NetPolicy::Hosts(hosts) = spec.resolve(&vars).unwrap().network else {
        panic!("not the hosts mode");
    };
    assert_eq!(hosts.allow.len(), 1);
    // --ask-host joins ask_hosts; over `ask_hosts = true` it adds nothing;
    // over another mode, the hosts mode with nothing allowed.
    let mut spec = super::spec("[network]\nask_hosts = [\"*.pypi.org\"]");
    spec.ask_host("b.com:8080".parse().unwrap());
    let NetPolicy::Hosts(hosts) = spec.resolve(&vars).unwrap().network else {
        panic!("not the hosts mode");
    };
    let b = "b.com:8080".parse().unwrap();
    assert_eq!(
        hosts.ask,
        AskHosts::Listed(vec!["*.pypi.org".parse().unwrap(), b])
    );
    let mut spec = super::spec("[network]\nask_hosts = true");
    spec.ask_host("b.com".parse().unwrap());
    let NetPolicy::Hosts(hosts) = spec.resolve(&vars).unwrap().network else {
        panic!("not the hosts mode");
    };
    assert_eq!(hosts.ask, AskHosts::Any);
    let mut spec = super::spec("[network]\nmode = \"tcp\"\nconnect = [443]");
    spec.ask_host("b.com".parse().unwrap());
    let NetPolicy::Hosts(hosts) = spec.resolve(&vars).unwrap().network else {
        panic!("not the hosts mode");
    };
    assert!(hosts.allow.is_empty());
    assert_eq!(hosts.ask, AskHosts::Listed(vec!["b.com".parse().unwrap()]));
}
