//! Golden profiles: the built-in policies (and a few variants) on the
//! synthetic machine, compared byte for byte with
//! `sandbox-child/tests/golden/seatbelt/*.sb`. After an intended change,
//! regenerate them with `SLUICE_BLESS=1 cargo test -p sandbox-child golden`
//! and review the diff.

use std::path::PathBuf;

use policies::NetPolicy;

use super::{reader, state, Machine};
use crate::seatbelt::{generate, SupervisorState};

/// A policy file with awkward names, the network in tcp mode, a policy file
/// and a broker socket: what the built-ins do not show.
const CUSTOM: &str = r#"
[filesystem]
execute = ["/usr"]
read = ["/etc", "~/.gitconfig", { path = "~/odd (name) \"quoted\" \\ back", optional = true }]
write = ["$WORKSPACE", "$TMPDIR", "/dev/null"]
read_only = ["$WORKSPACE/.git/config"]
deny = ["$WORKSPACE/.env*"]

[network]
mode = "tcp"
connect = [443]
bind = [8000]
"#;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/seatbelt")
}

fn compare(name: &str, text: &str) {
    reader::check(text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    let path = golden_dir().join(format!("{name}.sb"));
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (SLUICE_BLESS=1 writes it)", path.display()));
    if expected != text {
        panic!(
            "{name}: the profile differs from {}; if the change is intended, \
             regenerate with SLUICE_BLESS=1 and review the diff.\n--- got ---\n{text}",
            path.display()
        );
    }
}

#[test]
fn golden_builtin_profiles() {
    let machine = Machine::new();
    for name in policies::builtin_names() {
        let policy = machine.builtin(name, None);
        compare(name, generate(&policy, &state()).unwrap().text());
    }
    // Every golden has a source: the built-ins and the three variants below.
    if std::env::var_os("SLUICE_BLESS").is_none() {
        let goldens = std::fs::read_dir(golden_dir()).unwrap().count();
        assert_eq!(goldens, policies::builtin_names().len() + 3);
    }
}

#[test]
fn golden_network_variants() {
    let machine = Machine::new();
    let tcp = NetPolicy::Tcp {
        connect: [443, 8080].into(),
        bind: [8000].into(),
    };
    for (name, net) in [
        ("default-net-tcp", tcp),
        ("default-net-all", NetPolicy::All),
    ] {
        let policy = machine.builtin("default", Some(net));
        compare(name, generate(&policy, &state()).unwrap().text());
    }
}

#[test]
fn golden_custom_policy() {
    let machine = Machine::new();
    std::fs::create_dir_all(machine.path("/Users/alice/odd (name) \"quoted\" \\ back")).unwrap();
    let policy = machine.resolve("custom.toml", CUSTOM, None);
    let state = SupervisorState {
        policy_files: vec!["/Users/alice/policies/custom.toml".into()],
        broker_socket: Some("/var/folders/zz/T/sluice-0123456789abcdef/broker.sock".into()),
        terminal: Some("/dev/ttys003".into()),
        user_dirs: vec![
            "/var/folders/zz/abc123/T".into(),
            "/var/folders/zz/abc123/C".into(),
        ],
        ..state()
    };
    compare("custom", generate(&policy, &state).unwrap().text());
}
