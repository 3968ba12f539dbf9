//! The built-in policies, and `to_toml` round trips.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{resolve, vars_in, TempDir};
use crate::{builtin_names, builtin_source, load, load_str, Layer, NetPolicy, Policy, Vars};

#[test]
fn builtins_are_listed_and_embedded() {
    assert_eq!(
        builtin_names(),
        [
            "default",
            "macos",
            "readonly",
            "agent",
            "claude-code",
            "codex",
            "aider"
        ]
    );
    for name in builtin_names() {
        let text = builtin_source(name).unwrap();
        assert!(text.contains(&format!("Built-in policy \"{name}\"")));
        // The first line is the summary that `sluice policy list` shows.
        assert!(text.starts_with("# ") && text.lines().next().unwrap().len() > 20);
    }
    assert_eq!(builtin_source("x"), None);
}

/// The built-ins' `[broker]` and `protect` patterns are not checked with
/// stand-in variables when a launch reads them (`raw::built_in`); each is
/// checked here, as a policy file's are when it is read, so that skipping
/// it loses nothing (checked to fail with a `~/a/../b` added to `default`).
#[test]
fn every_builtin_pattern_passes_the_load_time_check() {
    let mut patterns = 0;
    for name in builtin_names() {
        let text = builtin_source(name).unwrap();
        let parsed = crate::parse::parse(name, text, false);
        let spec = match parsed {
            Ok(parsed) => parsed.spec,
            Err(error) => panic!("{name}: {error}"),
        };
        let protect = spec
            .protect
            .iter()
            .map(|e| (e, crate::protect::check_written as fn(&str) -> _));
        let broker = crate::rule::BrokerList::ALL
            .into_iter()
            .flat_map(|list| spec.broker_list(list))
            .map(|e| (e, crate::broker::check_written as fn(&str) -> _));
        for (entry, check) in protect.chain(broker) {
            assert_eq!(check(&entry.written), Ok(()), "{name}: {}", entry.written);
            patterns += 1;
        }
    }
    assert!(
        patterns > 300,
        "control: the patterns were there ({patterns})"
    );
}

/// What the built-ins skip is the check of a policy file's text: the same
/// text read as a file is refused when read, and read as a built-in it is
/// refused when resolved, the pattern checked with its real values.
#[test]
fn a_bad_pattern_is_refused_read_as_a_file_and_resolved_as_a_built_in() {
    let text = "[broker]\ndeny = [\"$HOME/../etc\"]\n";
    let error = crate::parse::parse("p.toml", text, false).err().unwrap();
    assert!(error.to_string().contains("'..'"), "{error}");
    let spec = crate::parse::parse("p", text, true).unwrap().spec;
    let root = TempDir::new();
    let error = spec.resolve(&vars_in(&root)).unwrap_err();
    assert!(error.to_string().contains("'..'"), "{error}");
}

/// A home with the things the built-ins mention, some present, some not.
fn populated(root: &TempDir) -> Vars {
    let vars = vars_in(root);
    root.mkdir("home/.ssh");
    root.mkdir("home/.cargo/bin");
    root.write("home/.gitconfig", "");
    root.write("home/.bash_history", "");
    root.mkdir("ws/.git/hooks");
    root.write("ws/.git/config", "");
    root.write("ws/.env.local", "");
    vars
}

#[test]
fn default_resolves() {
    let root = TempDir::new();
    let vars = populated(&root);
    let policy = load("default").unwrap().resolve(&vars).unwrap();
    let fs = &policy.filesystem;
    let (home, ws, tmp) = (&vars.home, &vars.workspace, &vars.tmpdir);
    assert_eq!(policy.name, "default");
    assert!(fs.execute.contains(&PathBuf::from("/usr")));
    assert!(fs.execute.contains(ws) && fs.execute.contains(tmp));
    assert!(fs.execute.contains(&home.join(".cargo/bin")));
    assert!(fs.absent.contains(&home.join(".rustup")));
    assert!(fs.read.contains(&PathBuf::from("/etc")));
    assert!(fs.read.contains(&home.join(".gitconfig")));
    assert!(!fs.read.contains(home));
    assert!(fs.write.contains(ws) && fs.write.contains(tmp));
    assert!(fs.write.contains(&PathBuf::from("/dev/null")));
    assert_eq!(
        fs.read_only,
        [ws.join(".git/hooks"), ws.join(".git/config")]
    );
    for denied in [home.join(".ssh"), home.join(".bash_history")] {
        assert!(fs.deny.contains(&denied), "{}", denied.display());
    }
    // Secrets by name are patterns, matched at any depth at launch.
    let patterns = &fs.deny_patterns;
    for secret in [".env.local", "a/b/.env", "certs/server.pem", "k/id_ed25519"] {
        assert!(patterns.protects(&ws.join(secret)).is_some(), "{secret}");
    }
    for template in [".env.example", "pkg/.env.sample", "src/main.rs"] {
        assert!(
            patterns.protects(&ws.join(template)).is_none(),
            "{template}"
        );
    }
    assert!(fs.absent.contains(&home.join(".aws")));
    assert!(fs.deny.contains(&PathBuf::from("/etc/shadow")));
    assert_eq!(policy.network, NetPolicy::None);
    assert_eq!(policy.limits.open_files, Some(4096));
    assert_eq!(policy.limits.processes, Some(4096));
    assert_eq!(policy.limits.address_space, None);
    assert!(policy.env.pass.iter().any(|name| name == "LC_*"));
    // Python's bytecode: never written beside the sources (a cache Python
    // runs instead of them), nor pinned; Python's cache in the TMPDIR.
    let pycache = tmp.join("pycache");
    assert_eq!(
        policy
            .env
            .set
            .get("PYTHONPYCACHEPREFIX")
            .map(String::as_str),
        pycache.to_str()
    );
    let protect = &fs.protect;
    for bytecode in ["__pycache__/a.cpython-311.pyc", "json.pyc", "p/a.pyo"] {
        let rule = protect.protects(&ws.join(bytecode));
        assert!(rule.is_some_and(|r| !r.pinned()), "{bytecode}");
    }
    assert!(protect
        .protects(&pycache.join("ws/a.cpython-311.pyc"))
        .is_none());
    assert!(protect
        .protects(&tmp.join("p/__pycache__/a.cpython-311.pyc"))
        .is_none());
    assert!(protect.leads_to(&ws.join("p/__pycache__")).is_some());
    assert!(protect.protects(&ws.join("a.py")).is_none());
    assert!(Layer::ALL
        .iter()
        .all(|layer| policy.layers.is_required(*layer)));
}

#[test]
fn readonly_resolves() {
    let root = TempDir::new();
    let vars = populated(&root);
    let policy = load("readonly").unwrap().resolve(&vars).unwrap();
    let default = load("default").unwrap().resolve(&vars).unwrap();
    let fs = &policy.filesystem;
    let (ws, tmp) = (&vars.workspace, &vars.tmpdir);
    assert!(fs.execute.contains(ws));
    assert!(!fs.execute.contains(tmp));
    assert!(!fs.write.contains(ws));
    assert!(fs.write.contains(tmp));
    assert_eq!(fs.deny, default.filesystem.deny);
    assert_eq!(fs.deny_patterns, default.filesystem.deny_patterns);
    assert_eq!(fs.read, default.filesystem.read);
    let devices = |p: &Policy| -> Vec<PathBuf> {
        let write = p.filesystem.write.iter();
        write
            .filter(|path| path.starts_with("/dev"))
            .cloned()
            .collect()
    };
    assert_eq!(devices(&policy), devices(&default));
    assert_eq!(policy.network, NetPolicy::None);
    assert_eq!(policy.env, default.env);
}

#[test]
fn builtins_resolve_for_the_invoking_user() {
    // As on the target machines: the real home (root's /root under CI).
    let root = TempDir::new();
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    let vars = Vars {
        home,
        ..vars_in(&root)
    };
    for name in builtin_names() {
        let policy = load(name).unwrap().resolve(&vars);
        assert!(policy.is_ok(), "{name}: {}", policy.unwrap_err());
    }
}

/// `to_toml`, loaded and resolved again, gives the same policy (but for
/// the symlinks its paths were named through: the text holds canonical
/// paths, whose view needs none).
fn assert_round_trip(policy: &Policy, vars: &Vars) {
    let mut policy = policy.clone();
    policy.filesystem.links.clear();
    let policy = &policy;
    let text = policy.to_toml();
    assert_eq!(text, policy.to_toml(), "deterministic");
    let reloaded = load_str(&policy.name, &text, Path::new("/"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .resolve(vars)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(&reloaded, policy, "{text}");
}

#[test]
fn builtins_round_trip_through_to_toml() {
    let root = TempDir::new();
    let vars = populated(&root);
    for name in builtin_names() {
        let policy = load(name).unwrap().resolve(&vars).unwrap();
        let text = policy.to_toml();
        assert!(
            text.starts_with(&format!("# Policy \"{name}\", resolved by sluice.\n")),
            "{text}"
        );
        assert!(!text.contains("extends"));
        assert!(text.contains("\n[broker]\n"), "{text}");
        assert!(!policy.broker.is_empty());
        assert_round_trip(&policy, &vars);
    }
}

#[test]
fn everything_round_trips_through_to_toml() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    for name in ["f[1]", "a$b", "odd*{x}?", "quote\"back\\slash"] {
        root.write(&format!("ws/{name}"), "");
    }
    let policy = resolve(
        r#"
        [filesystem]
        read = ["$WORKSPACE/a$$b", { path = "/missing/policies-test", optional = true }]
        write = ["$WORKSPACE/quote\"back\\slash"]
        execute = ["$WORKSPACE/odd*{x}?"]
        read_only = ["$WORKSPACE/f*"]
        deny = ["$WORKSPACE/*[[]*", "$WORKSPACE/none.*", "$WORKSPACE/odd*"]
        [network]
        mode = "tcp"
        connect = [443, 80]
        bind = [8000]
        [limits]
        address_space = "8GiB"
        file_size = 1000
        open_files = 64
        processes = 32
        cpu_seconds = 60
        [environment]
        pass = ["PATH", "LC_*"]
        set = { "X.Y" = "$$1 \"q\"", EDITOR = "vi", TMP = "$TMPDIR" }
        [layers]
        best_effort = ["scopes", "network"]
        [broker]
        allow = ["$WORKSPACE/f[[]1]", "$WORKSPACE/a$$b/*.log"]
        allow_write = ["$TMPDIR", "$WORKSPACE/missing/**"]
        ask = ["/"]
        ask_write = ["~", "$WORKSPACE/odd[*]{[{]x}?"]
        deny = ["**/*.pem", "~/.ssh", "$WORKSPACE/quote\"back\\\\slash/**/x"]
        "#,
        &vars,
    );
    let ws = &vars.workspace;
    assert_eq!(
        policy.filesystem.deny,
        [ws.join("f[1]"), ws.join("odd*{x}?")]
    );
    assert_eq!(policy.limits.address_space, Some(8 << 30));
    assert_eq!(
        policy.layers.best_effort,
        BTreeSet::from([Layer::Network, Layer::Scopes])
    );
    assert_eq!(policy.broker.len(), 10);
    // An escaped backslash names the existing directory, which is canonical.
    assert_eq!(
        policy.broker.rules()[9].resolved,
        format!("{}/quote\"back\\\\slash/**/x", ws.display())
    );
    assert_round_trip(&policy, &vars);

    for network in ["none", "all", "tcp:1"] {
        let text = format!("[filesystem]\nread = [\"/\"]\n[network]\nmode = \"{network}\"");
        let text = text.replace("\"tcp:1\"", "\"tcp\"\nconnect = [1]");
        assert_round_trip(&resolve(&text, &vars), &vars);
    }
    assert_round_trip(&resolve("", &vars), &vars);
}

#[test]
fn agent_policies_open_the_agents_state_and_protect_what_runs_code() {
    let root = TempDir::new();
    let vars = populated(&root);
    let home = vars.home.clone();
    for (name, state, kept, protected) in [
        (
            "claude-code",
            ".claude",
            [".claude/projects/-ws/1.jsonl", ".claude/.claude.json.tmp.1"],
            [".claude/settings.json", ".claude/commands/x.md"],
        ),
        (
            "codex",
            ".codex",
            [".codex/sessions/2026/x.jsonl", ".codex/state_5.sqlite-wal"],
            [".codex/config.toml", ".codex/rules/default.rules"],
        ),
    ] {
        let spec = load(name).unwrap();
        // Made at launch (`create = true`), absent until then.
        let made = spec.dirs_to_create(&vars).unwrap();
        assert!(made.iter().any(|(_, d)| *d == home.join(state)), "{name}");
        root.mkdir(&format!("home/{state}"));
        let policy = spec.resolve(&vars).unwrap();
        assert!(
            policy.filesystem.write.contains(&home.join(state)),
            "{name}"
        );
        assert!(policy.filesystem.write.contains(&vars.workspace), "{name}");
        assert!(
            policy.filesystem.deny.contains(&home.join(".ssh")),
            "{name}"
        );
        // Its API by name, through the proxy; no other host.
        let NetPolicy::Hosts(hosts) = &policy.network else {
            panic!("{name}: {:?}", policy.network)
        };
        let api = if name == "codex" {
            "api.openai.com"
        } else {
            "api.anthropic.com"
        };
        let api = crate::net::Host::parse(api).unwrap();
        let other = crate::net::Host::parse("example.org").unwrap();
        assert!(hosts.allowed(&api, 443).is_some(), "{name}");
        assert!(hosts.allowed(&other, 443).is_none(), "{name}");
        let protect = &policy.filesystem.protect;
        for path in kept {
            assert!(
                protect.protects(&home.join(path)).is_none(),
                "{name} {path}"
            );
        }
        for path in protected {
            assert!(
                protect.protects(&home.join(path)).is_some(),
                "{name} {path}"
            );
        }
        // Another repository's agent settings stay protected whole.
        let ws_state = vars.workspace.join(state).join("projects");
        assert!(protect.protects(&ws_state).is_some(), "{name}");
        assert!(protect
            .protects(&vars.workspace.join(".git/hooks/x"))
            .is_some());
        assert!(policy.env.pass.iter().any(|p| p == "IS_SANDBOX"), "{name}");
        assert!(!policy
            .env
            .pass
            .iter()
            .any(|p| p.contains('*') && p.len() < 3));
    }
    let claude = load("claude-code").unwrap().resolve(&vars).unwrap();
    assert_eq!(
        claude.env.set.get("CLAUDE_CONFIG_DIR"),
        Some(&home.join(".claude").display().to_string())
    );
    assert!(claude.env.pass.iter().any(|p| p == "ANTHROPIC_API_KEY"));
    let aider = load("aider").unwrap().resolve(&vars).unwrap();
    assert!(aider.env.pass.iter().any(|p| p == "OPENAI_API_KEY"));
    assert!(aider
        .filesystem
        .protect
        .protects(&vars.workspace.join(".aider.conf.yml"))
        .is_some());
}

/// A project's environment file, which the person's direnv (`dotenv`) and
/// shell plugins load later, is never written by the program under
/// `default` and every policy extending it; the templates are. `protect`
/// and the `deny` patterns agree on each name: what exists at launch is
/// denied, what does not is never made.
#[test]
fn every_policy_extending_default_protects_dotenv_as_it_denies_it() {
    let root = TempDir::new();
    let vars = populated(&root);
    let ws = &vars.workspace;
    let protected = [".env", "a/b/.env", ".env.local", "pkg/.env.production"];
    let templates = [".env.example", "a/.env.sample", ".env.template"];
    let others = ["x.env", "env", "src/.environment"];
    for name in ["default", "agent", "claude-code", "codex", "aider"] {
        let policy = load(name).unwrap().resolve(&vars).unwrap();
        let fs = &policy.filesystem;
        for rel in protected.iter().chain(&templates).chain(&others) {
            let path = ws.join(rel);
            let want = protected.contains(rel);
            assert_eq!(fs.protect.protects(&path).is_some(), want, "{name} {rel}");
            assert_eq!(
                fs.deny_patterns.protects(&path).is_some(),
                want,
                "{name} {rel}"
            );
        }
        let home_env = vars.home.join("proj/.env");
        assert!(fs.protect.protects(&home_env).is_some(), "{name}");
    }
}

/// `default` makes no `HEAD` but where git keeps one in a `.git`, and
/// names those places (`Protect::excepted`) for the guard, which judges
/// the directory as a `.git` there with or without its `HEAD`.
#[test]
fn default_keeps_head_only_where_git_does() {
    let root = TempDir::new();
    let vars = populated(&root);
    let protect = load("default")
        .unwrap()
        .resolve(&vars)
        .unwrap()
        .filesystem
        .protect;
    let ws = &vars.workspace;
    for made in [
        "sub/HEAD",
        "repo.git/HEAD",
        ".git/refs/HEAD",
        ".git/objects/HEAD",
    ] {
        assert!(protect.protects(&ws.join(made)).is_some(), "{made}");
        assert!(!protect.excepted(&ws.join(made)), "{made}");
    }
    for kept in [
        ".git/HEAD",
        ".git/logs/HEAD",
        ".git/refs/remotes/origin/HEAD",
        ".git/logs/refs/remotes/origin/HEAD",
        ".git/worktrees/w/HEAD",
        ".git/worktrees/w/logs/HEAD",
        ".git/modules/vendor/lib/HEAD",
    ] {
        assert!(protect.protects(&ws.join(kept)).is_none(), "{kept}");
        assert!(protect.excepted(&ws.join(kept)), "{kept}");
    }
    assert!(!protect.excepted(&ws.join("src/main.rs")));
    assert!(protect.leads_to(&ws.join("sub")).is_none());
}

/// Tool configurations in the workspace that make the person's tool run a
/// command on an action that runs no project code otherwise (`hg status`,
/// `yarn --version`, `cargo metadata`, `bazel version`, a commit through
/// lefthook's hook) are protected at any depth under `default` and every
/// policy extending it, and the names on the way to them are judged; their
/// neighbours (the repository's data, backups, other files of the same
/// directories, the same names elsewhere) are not.
#[test]
fn every_policy_extending_default_protects_tool_configurations_that_run_code() {
    let root = TempDir::new();
    let vars = populated(&root);
    let ws = &vars.workspace;
    let protected = [
        ".hg/hgrc",
        "vendor/lib/.hg/hgrc",
        ".hg/hgrc-not-shared",
        "a/.hg/sharedpath",
        ".sl/config",
        ".jj/repo/config.toml",
        ".yarnrc",
        "pkg/.yarnrc.yml",
        ".yarn/releases/yarn-4.1.0.cjs",
        ".yarn/plugins/@yarnpkg/plugin-x.cjs",
        ".cargo/config.toml",
        "crates/a/.cargo/config",
        ".bazeliskrc",
        ".bazelversion",
        "tools/bazel",
        "tools/bazel.linux-x86_64",
        "lefthook.yml",
        "web/.lefthook.yaml",
        "lefthook-local.toml",
        ".lefthook-local.json",
        ".lefthook/pre-commit/check.sh",
        ".lefthook-local/commit-msg/x",
        ".config/lefthook.yml",
        "project.code-workspace",
        ".clinerules/hooks/TaskStart",
    ];
    let others = [
        ".hg/store/data/x.i",
        ".hg/requires",
        ".hg/dirstate",
        "hgrc",
        ".hgrc",
        ".hgignore",
        ".jj/repo/store/x",
        ".yarnrc.yml.bak",
        ".yarn/cache/x.zip",
        ".yarn/sdks/typescript/lib/tsserver.js",
        ".cargo/registry/x",
        "cargo/config.toml",
        ".cargo/config.toml.bak",
        "tools/bazelisk.md",
        "bazel/tools.bzl",
        "docs/lefthook.md",
        "lefthook.yml.orig",
        "x.code-workspace.bak",
        ".clinerules/rules.md",
        ".npmrc",
        ".npmrc.bak",
        ".pylintrc",
    ];
    for name in ["default", "agent", "claude-code", "codex", "aider"] {
        let policy = load(name).unwrap().resolve(&vars).unwrap();
        let protect = &policy.filesystem.protect;
        for rel in protected {
            let rule = protect.protects(&ws.join(rel));
            assert!(rule.is_some_and(|r| r.pinned()), "{name} {rel}");
        }
        for rel in others {
            assert!(protect.protects(&ws.join(rel)).is_none(), "{name} {rel}");
        }
        for way in [
            ".hg", "a/.sl", ".jj", ".jj/repo", ".yarn", ".cargo", "tools",
        ] {
            assert!(protect.leads_to(&ws.join(way)).is_some(), "{name} {way}");
        }
        assert!(protect.leads_to(&ws.join("src")).is_none(), "{name}");
        // In the session's temporary directory too: a tree it may write.
        assert!(protect.protects(&vars.tmpdir.join("p/.hg/hgrc")).is_some());
    }
}
