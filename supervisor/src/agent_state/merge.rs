//! A three-way merge of JSON values: what changed outside during the
//! session and what the program changed (already sanitized), against the
//! file as it was at launch.

use serde_json::{Map, Value};

/// The merged value (`None`: absent), and the paths where both sides
/// changed the same thing differently: there the outside's value is kept.
pub(super) fn merge3(
    base: Option<&Value>,
    outside: Option<&Value>,
    program: Option<&Value>,
    path: &str,
    conflicts: &mut Vec<String>,
) -> Option<Value> {
    if program == base || program == outside {
        return outside.cloned();
    }
    if outside == base {
        return program.cloned();
    }
    match (base, outside, program) {
        (Some(Value::Object(b)), Some(Value::Object(o)), Some(Value::Object(p))) => {
            Some(Value::Object(merge_objects(b, o, p, path, conflicts)))
        }
        _ => {
            conflicts.push(path_or_top(path));
            outside.cloned()
        }
    }
}

fn merge_objects(
    base: &Map<String, Value>,
    outside: &Map<String, Value>,
    program: &Map<String, Value>,
    path: &str,
    conflicts: &mut Vec<String>,
) -> Map<String, Value> {
    let mut keys: Vec<&String> = base
        .keys()
        .chain(outside.keys())
        .chain(program.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = Map::new();
    for key in keys {
        let at = format!("{path}{}", key_path(key));
        let merged = merge3(
            base.get(key),
            outside.get(key),
            program.get(key),
            &at,
            conflicts,
        );
        if let Some(v) = merged {
            out.insert(key.clone(), v);
        }
    }
    out
}

/// `.key`, or `["key"]` for a key that is not a plain name (a project's path).
pub(super) fn key_path(key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match plain {
        true => format!(".{key}"),
        false => format!("[{}]", Value::String(key.to_owned())),
    }
}

fn path_or_top(path: &str) -> String {
    match path.is_empty() {
        true => "the whole file".to_owned(),
        false => path.trim_start_matches('.').to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(b: Value, o: Value, p: Value) -> (Value, Vec<String>) {
        let mut c = Vec::new();
        let v = merge3(Some(&b), Some(&o), Some(&p), "", &mut c).unwrap();
        (v, c)
    }

    #[test]
    fn each_sides_own_changes_are_kept() {
        let (v, c) = m(
            json!({"a": 1, "projects": {"/x": {"n": 1}}}),
            json!({"a": 2, "projects": {"/x": {"n": 1}, "/y": {"n": 5}}}),
            json!({"a": 1, "b": 3, "projects": {"/x": {"n": 2}}}),
        );
        assert_eq!(
            v,
            json!({"a": 2, "b": 3, "projects": {"/x": {"n": 2}, "/y": {"n": 5}}})
        );
        assert!(c.is_empty());
    }

    #[test]
    fn where_both_changed_the_outside_wins_and_is_named() {
        let (v, c) = m(
            json!({"a": 1, "projects": {"/x": {"n": 1}}}),
            json!({"a": 2, "projects": {"/x": {"n": 7}}}),
            json!({"a": 3, "projects": {"/x": {"n": 8}}}),
        );
        assert_eq!(v, json!({"a": 2, "projects": {"/x": {"n": 7}}}));
        assert_eq!(c, vec!["a".to_owned(), "projects[\"/x\"].n".to_owned()]);
    }

    #[test]
    fn a_key_removed_on_one_side_is_removed() {
        let (v, _) = m(
            json!({"a": 1, "b": 2}),
            json!({"a": 1, "b": 2}),
            json!({"a": 1}),
        );
        assert_eq!(v, json!({"a": 1}));
        let (v, _) = m(
            json!({"a": 1, "b": 2}),
            json!({"b": 2}),
            json!({"a": 1, "b": 2}),
        );
        assert_eq!(v, json!({"b": 2}));
    }
}
