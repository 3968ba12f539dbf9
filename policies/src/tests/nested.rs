//! `nested` and `[layers] nested_best_effort`: parsing, defaults, merging
//! and errors.

use std::collections::BTreeSet;

use super::{load_error, resolve, vars_in, TempDir};
use crate::{load_str, Layer, Layers, Nested};

fn set(layers: &[Layer]) -> BTreeSet<Layer> {
    layers.iter().copied().collect()
}

#[test]
fn defaults_stack_on_linux_with_namespaces_and_limits_inherited() {
    let root = TempDir::new();
    let policy = resolve("", &vars_in(&root));
    assert_eq!(policy.nested, Nested::PLATFORM_DEFAULT);
    if cfg!(target_os = "linux") {
        assert_eq!(policy.nested, Nested::Stack);
    }
    assert_eq!(
        policy.layers.nested_best_effort,
        set(&[Layer::Namespaces, Layer::PidNamespace, Layer::Limits])
    );
    assert!(policy.layers.is_required(Layer::Namespaces));
    assert!(!policy.layers.when_nested().is_required(Layer::Namespaces));
    assert!(policy.layers.when_nested().is_required(Layer::Filesystem));
}

#[test]
fn every_mode_parses_and_prints_back() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    for mode in Nested::ALL {
        let text = format!("nested = \"{mode}\"\n[layers]\nnested_best_effort = []\n");
        let policy = resolve(&text, &vars);
        assert_eq!(policy.nested, mode);
        assert!(policy.layers.nested_best_effort.is_empty());
        let printed = policy.to_toml();
        assert!(
            printed.contains(&format!("nested = \"{mode}\"")),
            "{printed}"
        );
        let again = resolve(&printed, &vars);
        assert_eq!(again, policy);
    }
}

#[test]
fn a_child_replaces_the_mode_and_the_nested_layers() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    let parent = root.write(
        "parent.toml",
        "nested = \"skip\"\n[layers]\nnested_best_effort = [\"limits\"]\nbest_effort = [\"scopes\"]\n",
    );
    let child_text = format!(
        "extends = [\"{}\"]\nnested = \"error\"\n[layers]\nnested_best_effort = []\n",
        parent.display()
    );
    let child = load_str("child.toml", &child_text, root.path())
        .unwrap()
        .resolve(&vars)
        .unwrap();
    assert_eq!(child.nested, Nested::Error);
    assert!(child.layers.nested_best_effort.is_empty());
    assert_eq!(child.layers.best_effort, set(&[Layer::Scopes]));
    // A child that says nothing inherits both.
    let quiet = format!("extends = [\"{}\"]\n", parent.display());
    let quiet = load_str("quiet.toml", &quiet, root.path())
        .unwrap()
        .resolve(&vars)
        .unwrap();
    assert_eq!(quiet.nested, Nested::Skip);
    assert_eq!(quiet.layers.nested_best_effort, set(&[Layer::Limits]));
    assert_eq!(
        quiet.layers.when_nested().best_effort,
        set(&[Layer::Scopes, Layer::Limits])
    );
}

#[test]
fn a_bad_mode_or_layer_names_line_and_key() {
    assert_eq!(
        load_error("nested = \"sometimes\"\n"),
        "policy 'p.toml', line 1, column 10: key 'nested': \
         unknown nested mode 'sometimes' (expected stack, skip, warn or error)"
    );
    let error = load_error("[layers]\nnested_best_effort = [\"namespace\"]\n");
    assert!(
        error.starts_with("policy 'p.toml', line 2, column 23: key 'layers.nested_best_effort': unknown layer 'namespace'"),
        "{error}"
    );
}

#[test]
fn layers_default_matches_the_resolved_default() {
    let root = TempDir::new();
    assert_eq!(resolve("", &vars_in(&root)).layers, Layers::default());
}
