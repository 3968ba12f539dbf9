//! `extends`: built-in and file parents, relative paths, cycles, and the
//! merge semantics.

use std::collections::{BTreeMap, BTreeSet};

use super::{resolve, spec, vars_in, TempDir};
use crate::spec::FsList;
use crate::{load, load_str, Layer, NetPolicy, PolicyError, PolicySpec};

fn written(spec: &PolicySpec, list: FsList) -> Vec<&str> {
    spec.list(list).iter().map(|e| e.written.as_str()).collect()
}

#[test]
fn extends_a_builtin() {
    let child = spec("extends = [\"default\"]\n[filesystem]\nread = [\"/srv\"]\n");
    let default = load("default").unwrap();
    assert_eq!(child.name(), "p.toml");
    let mut expected = written(&default, FsList::Read);
    expected.push("/srv");
    assert_eq!(written(&child, FsList::Read), expected);
    assert_eq!(
        written(&child, FsList::Deny),
        written(&default, FsList::Deny)
    );
    assert_eq!(child.network, Some(NetPolicy::None));
    assert_eq!(child.limits, default.limits);
}

#[test]
fn extends_files_relative_to_the_extending_file() {
    let root = TempDir::new();
    root.write("common.toml", "[filesystem]\nread = [\"/common\"]\n");
    root.write(
        "sub/base.toml",
        "extends = [\"../common.toml\"]\n[filesystem]\nread = [\"/base\"]\n",
    );
    let child = root.write(
        "child.toml",
        "extends = [\"sub/base.toml\"]\n[filesystem]\nread = [\"/child\"]\n",
    );
    let spec = load(child.to_str().unwrap()).unwrap();
    assert_eq!(spec.name(), child.to_str().unwrap());
    assert_eq!(written(&spec, FsList::Read), ["/common", "/base", "/child"]);
    // Locations name the file each entry came from.
    let location = &spec.list(FsList::Read)[1].location;
    assert_eq!(
        location.to_string(),
        format!(
            "policy '{}', line 3",
            root.path().join("sub/base.toml").display()
        )
    );

    // From memory, relative extends resolve against the given directory.
    let spec = load_str("mem", "extends = [\"sub/base.toml\"]", root.path()).unwrap();
    assert_eq!(written(&spec, FsList::Read), ["/common", "/base"]);
    // An absolute extends path ignores the directory.
    let text = format!(
        "extends = [\"{}\"]",
        root.path().join("common.toml").display()
    );
    let spec = load_str("mem", &text, std::path::Path::new("/nonexistent")).unwrap();
    assert_eq!(written(&spec, FsList::Read), ["/common"]);
}

#[test]
fn cycles_are_reported_with_the_chain() {
    let root = TempDir::new();
    let a = root.write("a.toml", "extends = [\"b.toml\"]\n");
    let b = root.write("b.toml", "extends = [\"./a.toml\"]\n");
    let (a, b) = (a.display(), b.display());
    let dir = root.path().display();
    let error = load(&a.to_string()).unwrap_err();
    assert!(matches!(error, PolicyError::Cycle { .. }));
    assert_eq!(
        error.to_string(),
        format!("policy '{a}': extends cycle: {a} -> {b} -> {dir}/./a.toml")
    );

    let own = root.write("self.toml", "extends = [\"self.toml\"]\n");
    let own = own.display();
    assert_eq!(
        load(&own.to_string()).unwrap_err().to_string(),
        format!("policy '{own}': extends cycle: {own} -> {own}")
    );
}

#[test]
fn a_diamond_is_not_a_cycle() {
    let root = TempDir::new();
    root.write("common.toml", "[filesystem]\nread = [\"/\"]\n");
    root.write("left.toml", "extends = [\"common.toml\"]\n");
    root.write("right.toml", "extends = [\"common.toml\"]\n");
    let top = root.write("top.toml", "extends = [\"left.toml\", \"right.toml\"]\n");
    let spec = load(top.to_str().unwrap()).unwrap();
    assert_eq!(written(&spec, FsList::Read), ["/", "/"]);
    let policy = spec.resolve(&vars_in(&root)).unwrap();
    assert_eq!(policy.filesystem.read, [std::path::PathBuf::from("/")]);
}

#[test]
fn merge_semantics() {
    let root = TempDir::new();
    root.write(
        "parent.toml",
        r#"
        [filesystem]
        read = ["/p"]
        deny = ["/p/secret"]
        [network]
        mode = "tcp"
        connect = [443]
        bind = [8000]
        [limits]
        open_files = 10
        processes = 20
        [environment]
        pass = ["PATH"]
        set = { A = "parent", B = "parent" }
        [layers]
        best_effort = ["network"]
        "#,
    );
    let child = r#"
        extends = ["parent.toml"]
        [filesystem]
        read = ["/c"]
        [network]
        mode = "tcp"
        connect = [80]
        [limits]
        processes = 30
        cpu_seconds = 5
        [environment]
        pass = ["HOME"]
        set = { B = "child", C = "child" }
        [layers]
        best_effort = ["scopes"]
    "#;
    let spec = load_str("child.toml", child, root.path()).unwrap();
    assert_eq!(written(&spec, FsList::Read), ["/p", "/c"]);
    assert_eq!(written(&spec, FsList::Deny), ["/p/secret"]);
    // [network] replaces as a whole: the parent's bind list is gone.
    assert_eq!(
        spec.network,
        Some(NetPolicy::Tcp {
            connect: BTreeSet::from([80]),
            bind: BTreeSet::new(),
        })
    );
    assert_eq!(spec.limits.open_files, Some(10));
    assert_eq!(spec.limits.processes, Some(30));
    assert_eq!(spec.limits.cpu_seconds, Some(5));
    assert_eq!(spec.limits.address_space, None);
    assert_eq!(spec.env_pass, ["PATH", "HOME"]);
    let set: BTreeMap<_, _> = spec
        .env_set
        .iter()
        .map(|(k, v)| (k.as_str(), v.written.as_str()))
        .collect();
    assert_eq!(
        set,
        BTreeMap::from([("A", "parent"), ("B", "child"), ("C", "child")])
    );
    assert_eq!(
        spec.best_effort,
        BTreeSet::from([Layer::Network, Layer::Scopes])
    );
}

#[test]
fn missing_tables_inherit_and_later_parents_win() {
    let root = TempDir::new();
    root.write(
        "a.toml",
        "[network]\nmode = \"all\"\n[limits]\nprocesses = 1\n",
    );
    root.write("b.toml", "[limits]\nprocesses = 2\n");
    let spec = load_str("c", "extends = [\"a.toml\", \"b.toml\"]", root.path()).unwrap();
    assert_eq!(spec.network, Some(NetPolicy::All));
    assert_eq!(spec.limits.processes, Some(2));

    // With no [network] anywhere, the policy has no network.
    let policy = resolve("", &vars_in(&root));
    assert_eq!(policy.network, NetPolicy::None);
}

#[test]
fn a_loaded_policy_names_every_file_it_was_read_from() {
    let root = TempDir::new();
    root.write("common.toml", "[filesystem]\nread = [\"/common\"]\n");
    root.write(
        "sub/base.toml",
        "extends = [\"../common.toml\", \"default\"]\n",
    );
    let child = root.write("child.toml", "extends = [\"sub/base.toml\"]\n");
    let spec = load(child.to_str().unwrap()).unwrap();
    // As opened: absolute, nothing resolved.
    let opened = |p: &str| std::path::absolute(root.path().join(p)).unwrap();
    assert_eq!(
        spec.files(),
        [
            opened("child.toml"),
            opened("sub/base.toml"),
            opened("sub/../common.toml")
        ]
    );
    assert!(load("default").unwrap().files().is_empty());
}
