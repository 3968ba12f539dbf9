//! What must hold for every profile: structure, order, the effect of each
//! list, escaping under fuzzed names, and size.

use std::path::{Path, PathBuf};

use policies::{NetPolicy, Policy};
use proptest::prelude::*;

use super::reader::{self, allows, covers_operation, filter_path, ReadRule};
use super::{state, Machine, HOME, SESSION, WORKSPACE};
use crate::seatbelt::{generate, SbplPath, SupervisorState, DENY_ALL, DENY_WRITE};

fn rules(policy: &Policy, state: &SupervisorState) -> Vec<ReadRule> {
    let profile = generate(policy, state).unwrap();
    reader::check(profile.text()).unwrap_or_else(|e| panic!("{e}\n{}", profile.text()))
}

/// Every policy the tests look at: the built-ins and their network variants.
fn all_builtins(machine: &Machine) -> Vec<Policy> {
    let mut out = Vec::new();
    for name in policies::builtin_names() {
        for net in [
            None,
            Some(NetPolicy::All),
            Some("tcp:443,bind:8000".parse().unwrap()),
        ] {
            out.push(machine.builtin(name, net));
        }
    }
    out
}

/// Two path filters overlap when one lies within the other.
fn overlap(a: (&str, bool), b: (&str, bool)) -> bool {
    let within = |x: (&str, bool), y: (&str, bool)| y.1 && Path::new(x.0).starts_with(y.0);
    a.0 == b.0 || within(a, b) || within(b, a)
}

/// Every deny rule comes after every allow rule that shares an operation
/// and a path with it: otherwise the allow, applied last, would win.
fn assert_denies_follow_allows(rules: &[ReadRule]) {
    for (d, deny) in rules.iter().enumerate().filter(|(_, r)| !r.allow) {
        for (a, allow) in rules.iter().enumerate().filter(|(_, r)| r.allow) {
            let shares_op = deny.operations.iter().any(|x| {
                allow
                    .operations
                    .iter()
                    .any(|y| covers_operation(x, y) || covers_operation(y, x))
            });
            let shares_path = deny.filters.iter().filter_map(filter_path).any(|dp| {
                allow.filters.is_empty()
                    || allow
                        .filters
                        .iter()
                        .filter_map(filter_path)
                        .any(|ap| overlap(dp, ap))
            });
            assert!(
                !(shares_op && shares_path) || a < d,
                "allow #{a} {allow:?} comes after deny #{d} {deny:?}"
            );
        }
    }
}

#[test]
fn every_builtin_profile_is_well_formed_and_ordered() {
    let machine = Machine::new();
    for policy in all_builtins(&machine) {
        let rules = rules(&policy, &state());
        assert_denies_follow_allows(&rules);
        // The protected state's rules are the very last ones.
        let n = state().entries().len();
        assert!(rules[rules.len() - n..].iter().all(|r| !r.allow));
    }
}

#[test]
fn each_list_has_its_effect() {
    let machine = Machine::new();
    let policy = machine.builtin("default", None);
    let rules = rules(&policy, &state());
    let ws = |rel: &str| format!("/Users/alice/src/app{rel}");
    // Controls: the workspace is readable, writable and executable.
    for op in ["file-read-data", "file-write-create", "process-exec"] {
        assert!(allows(&rules, op, &ws("/src/main.rs")), "{op}");
    }
    assert!(allows(&rules, "file-read-data", "/private/etc/hosts"));
    assert!(allows(&rules, "file-read-metadata", "/Users/alice/src"));
    // read_only: readable, not writable.
    assert!(allows(&rules, "file-read-data", &ws("/.git/config")));
    assert!(!allows(&rules, "file-write-data", &ws("/.git/config")));
    assert!(!allows(
        &rules,
        "file-write-create",
        &ws("/.git/hooks/pre-commit")
    ));
    // deny, inside the writable workspace, and what the glob found.
    for path in [
        ws("/.env"),
        ws("/.env.local"),
        "/Users/alice/.ssh/id_rsa".into(),
    ] {
        for op in [
            "file-read-data",
            "file-write-data",
            "process-exec",
            "network-outbound",
        ] {
            assert!(!allows(&rules, op, &path), "{op} {path}");
        }
    }
    // Absent at resolution: cannot be created later.
    assert!(!allows(
        &rules,
        "file-write-create",
        "/Users/alice/.aws/credentials"
    ));
    // Nothing else: the home directory, other system paths, /etc secrets.
    assert!(!allows(&rules, "file-read-data", "/Users/alice/notes.txt"));
    assert!(!allows(&rules, "file-read-data", "/Users/alice"));
    assert!(!allows(&rules, "file-read-data", "/private/etc/sudoers"));
    assert!(!allows(
        &rules,
        "file-read-data",
        "/private/etc/ssh/ssh_host_ed25519_key"
    ));
    assert!(allows(
        &rules,
        "file-read-data",
        "/private/etc/ssh/ssh_host_ed25519_key.pub"
    ));
    assert!(!allows(&rules, "file-write-data", "/usr/bin/env"));
    assert!(!allows(
        &rules,
        "network-outbound",
        "/private/var/run/mDNSResponder"
    ));
}

#[test]
fn protected_state_holds_whatever_the_policy_allows() {
    let machine = Machine::new();
    // A policy that allows everything, everywhere.
    let policy = machine.resolve(
        "wide.toml",
        "[filesystem]\nexecute = [\"/\"]\nwrite = [\"/\"]\n[network]\nmode = \"all\"\n",
        None,
    );
    let state = SupervisorState {
        policy_files: vec!["/Users/alice/p.toml".into()],
        broker_socket: Some("/tmp/sluice.sock".into()),
        ..state()
    };
    let rules = rules(&policy, &state);
    assert_denies_follow_allows(&rules);
    // Control: the policy really does allow writing everywhere else.
    assert!(allows(
        &rules,
        "file-write-data",
        "/Users/alice/.local/state/other"
    ));
    for hidden in [
        "/Users/alice/.local/state/sluice/audit/s.jsonl",
        "/Users/alice/.local/state/sluice/sessions/0123456789abcdef",
        "/Users/alice/.config/sluice/approvals.toml",
        &format!("/private{SESSION}/private/deny-file"),
    ] {
        for op in [
            "file-read-data",
            "file-write-data",
            "file-write-unlink",
            "process-exec",
        ] {
            assert!(!allows(&rules, op, hidden), "{op} {hidden}");
        }
    }
    for unwritable in ["/Users/alice/p.toml", "/private/tmp/sluice.sock"] {
        assert!(allows(&rules, "file-read-data", unwritable), "{unwritable}");
        for op in [
            "file-write-data",
            "file-write-unlink",
            "file-write-create",
            "network-bind",
        ] {
            assert!(!allows(&rules, op, unwritable), "{op} {unwritable}");
        }
    }
    assert!(allows(
        &rules,
        "network-outbound",
        "/private/tmp/sluice.sock"
    ));
}

#[test]
fn the_profile_is_sealed() {
    let machine = Machine::new();
    for policy in all_builtins(&machine) {
        let text = generate(&policy, &state()).unwrap().text().to_string();
        let code: String = text.lines().filter(|l| !l.starts_with(";;")).collect();
        for word in [
            "extension",
            "(with",
            "import",
            "param",
            "define",
            "#\"",
            "default)",
        ] {
            let count = code.matches(word).count();
            let allowed = usize::from(word == "default)"); // (deny default) only
            assert_eq!(count, allowed, "{word} in\n{text}");
        }
    }
}

#[test]
fn unwritable_paths_are_refused_with_the_list_named() {
    let machine = Machine::new();
    let mut policy = machine.builtin("readonly", None);
    policy
        .filesystem
        .write
        .push(PathBuf::from("/Users/alice/a\nb"));
    let err = generate(&policy, &state()).unwrap_err().to_string();
    assert_eq!(
        err,
        "filesystem.write: '/Users/alice/a\\nb' contains the control character U+000A, \
         which a Seatbelt profile does not quote; no Seatbelt profile can name it"
    );
    let mut bad_state = state();
    bad_state.config_dir = PathBuf::from("/Users/alice/\u{7f}");
    let err = generate(&machine.builtin("readonly", None), &bad_state).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the configuration and approvals: "),
        "{err}"
    );
}

#[test]
fn large_policies_stay_small() {
    let machine = Machine::new();
    let mut policy = machine.builtin("default", None);
    // 20,000 entries beneath trees the policy already allows: merged away.
    for i in 0..10_000 {
        let fs = &mut policy.filesystem;
        fs.read
            .push(PathBuf::from(format!("{WORKSPACE}/src/module{i}/file.rs")));
        fs.write
            .push(PathBuf::from(format!("{WORKSPACE}/target/out{i}")));
    }
    let base = generate(&machine.builtin("default", None), &state()).unwrap();
    let merged = generate(&policy, &state()).unwrap();
    assert_eq!(merged, base);
    // 5,000 separate long trees: one string each, all far under 64 KiB.
    let long = "d".repeat(200);
    for i in 0..5_000 {
        let fs = &mut policy.filesystem;
        fs.read
            .push(PathBuf::from(format!("/Volumes/data{i}/{long}")));
        fs.deny
            .push(PathBuf::from(format!("/Volumes/data{i}/{long}/secret")));
    }
    let text = generate(&policy, &state()).unwrap().text().to_string();
    let rules = reader::check(&text).unwrap();
    let longest = rules
        .iter()
        .flat_map(|r| r.filters.iter().filter_map(filter_path))
        .map(|(p, _)| p.len())
        .max()
        .unwrap();
    assert!(longest < 1024, "{longest}");
    // Linear in the separate trees: about 4 short lines per tree.
    assert!(
        text.len() < base.text().len() + 5_000 * 3 * 260,
        "{}",
        text.len()
    );
    assert_denies_follow_allows(&rules);
}

/// The built-in `readonly`, resolved once (the result names no temporary path).
fn readonly() -> &'static Policy {
    static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| Machine::new().builtin("readonly", None))
}

/// A file name of any printable characters, SBPL's own included.
fn hostile_name() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('"'),
            Just('\\'),
            Just('('),
            Just(')'),
            Just(';'),
            Just('#'),
            Just(' '),
            Just('|'),
            Just('\''),
            Just('*'),
            Just('é'),
            Just('日'),
            Just('.'),
            proptest::char::range('!', '~'),
        ],
        1..40,
    )
    .prop_map(|chars| chars.into_iter().collect::<String>())
    .prop_filter("a file name", |s| !s.contains('/') && s != "." && s != "..")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the names, the profile reads back as the same rules, with
    /// each name in exactly one string, exactly as given.
    #[test]
    fn fuzzed_names_cannot_inject_sbpl(w in hostile_name(), d in hostile_name(), r in hostile_name()) {
        let mut policy = readonly().clone();
        // "w-" keeps the tree apart from the policy's own entries (~/.ssh).
        let writable = format!("{HOME}/w-{w}");
        let denied = format!("{writable}/{d}");
        let read_only = format!("{writable}/{r}/x");
        policy.filesystem.write.push(writable.clone().into());
        policy.filesystem.deny.push(denied.clone().into());
        policy.filesystem.read_only.push(read_only.clone().into());
        let rules = rules(&policy, &state());
        let named: Vec<&str> = rules
            .iter()
            .flat_map(|r| r.filters.iter().filter_map(filter_path))
            .map(|(p, _)| p)
            .collect();
        for path in [&writable, &denied, &read_only] {
            prop_assert!(named.contains(&path.as_str()), "{path} not named");
        }
        // Same number of rules as with plain names: nothing was injected.
        let mut plain = readonly().clone();
        plain.filesystem.write.push(format!("{HOME}/w-w").into());
        plain.filesystem.deny.push(format!("{HOME}/w-w/d").into());
        plain.filesystem.read_only.push(format!("{HOME}/w-w/r/x").into());
        let plain = self::rules(&plain, &state());
        prop_assert_eq!(rules.len(), plain.len());
        let inside = format!("{writable}/f");
        prop_assert!(allows(&rules, "file-write-data", &inside));
        if !Path::new(&read_only).starts_with(&denied) {
            prop_assert!(!allows(&rules, "file-write-data", &read_only));
        }
        prop_assert!(!allows(&rules, "file-read-data", &denied));
        assert_denies_follow_allows(&rules);
    }

    #[test]
    fn fuzzed_names_quote_and_read_back(name in hostile_name()) {
        let path = SbplPath::new(Path::new(&format!("/{name}"))).unwrap();
        let text = format!("(version 1)\n(deny default)\n(allow file-read* (literal {}))", path.quoted());
        let rules = reader::check(&text).unwrap();
        prop_assert_eq!(filter_path(&rules[0].filters[0]), Some((path.as_str(), false)));
    }
}

#[test]
fn deny_sets_are_what_they_say() {
    assert!(DENY_WRITE.iter().all(|op| DENY_ALL.contains(op)));
    assert!(DENY_ALL.iter().all(|op| reader::OPERATIONS.contains(op)));
}

/// Seatbelt's prelude allows process information, IOKit properties and
/// NVRAM under `(deny default)`: every profile takes them back, and allows
/// process information only within its own sandbox. Control: a profile
/// without the baseline leaves them allowed, as the model of the prelude
/// says.
#[test]
fn what_the_prelude_allows_is_taken_back() {
    let taken_back = ["process-info-pidinfo", "iokit-get-properties", "nvram-get"];
    let bare = reader::check("(version 1)\n(deny default)\n").unwrap();
    for op in taken_back {
        assert!(allows(&bare, op, "/"), "the model's prelude allows {op}");
    }
    let machine = Machine::new();
    for policy in all_builtins(&machine) {
        let rules = rules(&policy, &state());
        for op in taken_back {
            assert!(!allows(&rules, op, "/"), "{op} in {}", policy.name);
        }
        // The narrow form: process information of the sandbox's own.
        assert!(rules.iter().any(|r| r.allow
            && r.operations == ["process-info*"]
            && r.filters
                == [(
                    "target".into(),
                    vec![reader::Sexp::Symbol("same-sandbox".into())]
                )]));
    }
}

/// Seatbelt matches paths: renaming a directory above a read_only or
/// denied path in a writable tree would carry the path out from under its
/// rule (`mv .git x; edit x/config; mv x .git`). Those directories cannot
/// be renamed or removed; the rename's source is checked as
/// `file-write-unlink`. Control: any other directory of the workspace can.
#[test]
fn guarded_paths_cannot_be_moved_out_from_under_their_rules() {
    let machine = Machine::new();
    let policy = machine.builtin("default", None);
    let rules = rules(&policy, &state());
    let ws = |rel: &str| format!("{WORKSPACE}{rel}");
    for dir in [ws(""), ws("/.git")] {
        assert!(!allows(&rules, "file-write-unlink", &dir), "{dir}");
    }
    assert!(!allows(&rules, "file-write-unlink", &ws("/.git/config")));
    assert!(!allows(&rules, "file-write-unlink", &ws("/.env")));
    // Controls: ordinary files and directories move freely.
    for path in [ws("/src"), ws("/src/main.rs"), ws("/target")] {
        assert!(allows(&rules, "file-write-unlink", &path), "{path}");
    }

    // sluice's own state inside a tree the policy makes writable.
    let mut everywhere = policy.clone();
    everywhere.filesystem.write.push(PathBuf::from("/"));
    let rules = self::rules(&everywhere, &state());
    for dir in [
        "/Users/alice/.local/state/sluice",
        "/Users/alice/.local/state",
        "/Users/alice/.local",
        "/Users/alice",
        "/Users/alice/.config",
    ] {
        assert!(!allows(&rules, "file-write-unlink", dir), "{dir}");
    }
    assert!(allows(&rules, "file-write-unlink", "/Users/alice/notes"));
}

/// The baseline's allowances reach what ordinary programs need and no
/// further: the program's own terminal but no other, the per-user
/// directories but not a policy deny inside them, the Xcode shims' tools,
/// system resources read-only.
#[test]
fn baseline_allowances_are_narrow() {
    let machine = Machine::new();
    let mut policy = machine.builtin("default", None);
    let user_tmp = "/private/var/folders/zz/abc123/T";
    policy
        .filesystem
        .deny
        .push(PathBuf::from(format!("{user_tmp}/secret")));
    let state = SupervisorState {
        terminal: Some("/dev/ttys003".into()),
        user_dirs: vec![user_tmp.into()],
        ..state()
    };
    let rules = rules(&policy, &state);
    for op in ["file-read-data", "file-write-data", "file-ioctl"] {
        assert!(allows(&rules, op, "/dev/ttys003"), "{op}");
        assert!(allows(&rules, op, "/dev/tty"), "{op}");
        assert!(
            !allows(&rules, op, "/dev/ttys004"),
            "another terminal: {op}"
        );
    }
    assert!(allows(
        &rules,
        "file-write-create",
        &format!("{user_tmp}/cc.o")
    ));
    assert!(!allows(
        &rules,
        "file-read-data",
        &format!("{user_tmp}/secret")
    ));
    assert!(!allows(
        &rules,
        "file-write-create",
        "/private/var/folders/zz/other/T/x"
    ));
    assert!(allows(
        &rules,
        "file-read-data",
        "/private/var/db/xcode_select_link"
    ));
    let tool = "/Library/Developer/CommandLineTools/usr/bin/git";
    assert!(allows(&rules, "process-exec", tool));
    assert!(!allows(&rules, "file-write-data", tool));
    let zone = "/private/var/db/timezone/zoneinfo/Europe/Paris";
    assert!(allows(&rules, "file-read-data", zone));
    assert!(allows(
        &rules,
        "file-read-data",
        "/System/Library/CoreServices/SystemVersion.plist"
    ));
    assert!(!allows(&rules, "file-write-data", "/System/Library/x"));
    for link in ["/etc", "/tmp", "/var"] {
        assert!(allows(&rules, "file-read-metadata", link), "{link}");
        assert!(!allows(&rules, "file-read-data", link), "{link}");
    }
    assert!(allows(&rules, "file-write-data", "/dev/fd/3"));
    assert!(allows(&rules, "file-read-data", "/dev/stdin"));
    assert!(!allows(&rules, "file-read-data", "/dev/disk0"));
}

/// The built-in macOS policy resolves on a Mac's paths and means what the
/// Linux default means: the workspace writable, the system's and
/// Homebrew's software runnable, credentials in ~/Library and the system's
/// secrets denied, git's hooks read-only. Controls and attacks side by
/// side.
#[test]
fn the_macos_policy_means_the_default_on_a_mac() {
    let machine = Machine::new();
    let policy = machine.builtin("macos", None);
    let rules = rules(&policy, &state());
    let ws = |rel: &str| format!("{WORKSPACE}{rel}");
    assert!(allows(&rules, "file-write-create", &ws("/src/lib.rs")));
    assert!(allows(&rules, "process-exec", &ws("/target/debug/app")));
    for tool in [
        "/usr/bin/make",
        "/opt/homebrew/bin/rg",
        "/Library/Developer/CommandLineTools/usr/bin/clang",
    ] {
        assert!(allows(&rules, "process-exec", tool), "{tool}");
        assert!(!allows(&rules, "file-write-data", tool), "{tool}");
    }
    assert!(allows(&rules, "file-read-data", "/private/etc/hosts"));
    assert!(!allows(&rules, "file-read-data", &ws("/.env")));
    assert!(!allows(&rules, "file-write-data", &ws("/.git/config")));
    for secret in [
        "/Users/alice/Library/Keychains/login.keychain-db",
        "/Users/alice/.ssh/id_ed25519",
        "/private/etc/sudoers",
        "/private/var/db/dslocal/nodes/Default/users/alice.plist",
        "/Library/Keychains/System.keychain",
        "/Users/alice/notes.txt",
    ] {
        assert!(!allows(&rules, "file-read-data", secret), "{secret}");
    }
    assert!(!allows(
        &rules,
        "network-outbound",
        "/private/var/run/mDNSResponder"
    ));
}

const PREFERENCES: &str = "/Library/Preferences/com.apple.dt.Xcode.plist";

/// On macOS `default` is the macOS policy, and the agent policies extend
/// it: each resolves on a Mac's paths, and its profile is well formed, with
/// the macOS policy's allows (Homebrew, the system's preferences) and
/// denies (the keychains).
#[test]
fn the_agent_policies_extend_the_macos_default_on_a_mac() {
    let machine = Machine::new();
    for name in ["agent", "claude-code", "codex", "aider"] {
        let policy = machine.builtin_on_macos(name);
        let rules = rules(&policy, &state());
        assert_denies_follow_allows(&rules);
        let keychain = "/Users/alice/Library/Keychains/login.keychain-db";
        assert!(!allows(&rules, "file-read-data", keychain), "{name}");
        let rg = "/opt/homebrew/bin/rg";
        assert!(allows(&rules, "process-exec", rg), "{name}");
        assert!(allows(&rules, "file-read-data", PREFERENCES), "{name}");
        let new = format!("{WORKSPACE}/x");
        assert!(allows(&rules, "file-write-create", &new), "{name}");
    }
    // Control: the agent policy on the Linux default knows nothing of a
    // Mac's system preferences.
    let linux = rules(&machine.builtin("agent", None), &state());
    assert!(!allows(&linux, "file-read-data", PREFERENCES));
}
