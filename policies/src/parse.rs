//! One policy text to a [`PolicySpec`] of its own (before `extends`), with
//! the toml crate's errors turned into messages that name line, column and key.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{Location, PolicyError};
use crate::model::Limits;
use crate::raw::{RawPath, RawPolicy};
use crate::rule::BrokerList;
use crate::spec::{EnvValue, FsList, PathEntry, PatternEntry, PolicySpec};

/// A policy file's own content, and what it extends.
pub(crate) struct Parsed {
    /// Each `extends` entry as written, and where.
    pub extends: Vec<(String, Location)>,
    pub spec: PolicySpec,
}

/// Parses `text`; `name` is the policy's name in messages. `built_in`:
/// the text is one of the built-in policies (see [`crate::raw::built_in`]).
pub(crate) fn parse(name: &str, text: &str, built_in: bool) -> Result<Parsed, PolicyError> {
    let from_str = || toml::from_str::<RawPolicy>(text);
    let raw = match built_in {
        true => crate::raw::built_in(from_str),
        false => from_str(),
    };
    let raw = raw.map_err(|e| toml_error(name, text, &e))?;
    // Every entry keeps its line: found by a binary search in the offsets
    // of the text's newlines, not by counting them again for each entry.
    let newlines: Vec<usize> = text.match_indices('\n').map(|(at, _)| at).collect();
    let at = |span: Range<usize>| Location::Policy {
        policy: name.to_string(),
        line: newlines.partition_point(|&newline| newline < span.start) + 1,
    };
    let mut spec = PolicySpec::new(name);
    let fs = raw.filesystem;
    spec.protect = (fs.protect.into_iter())
        .map(|entry| PatternEntry {
            location: at(entry.span()),
            written: entry.into_inner().0,
        })
        .collect();
    for (list, entries) in [
        (FsList::Read, fs.read),
        (FsList::Write, fs.write),
        (FsList::Execute, fs.execute),
        (FsList::ReadOnly, fs.read_only),
        (FsList::Deny, fs.deny),
    ] {
        let entries = entries.into_iter().map(|entry: Spanned<RawPath>| {
            let location = at(entry.span());
            let RawPath {
                path,
                optional,
                create,
            } = entry.into_inner();
            PathEntry {
                written: path,
                optional,
                create,
                location,
            }
        });
        spec.list_mut(list).extend(entries);
    }
    let broker = raw.broker;
    spec.transparent = broker.transparent;
    for (list, entries) in [
        (BrokerList::Allow, broker.allow),
        (BrokerList::AllowWrite, broker.allow_write),
        (BrokerList::Ask, broker.ask),
        (BrokerList::AskWrite, broker.ask_write),
        (BrokerList::Deny, broker.deny),
    ] {
        let entries = entries.into_iter().map(|entry| PatternEntry {
            location: at(entry.span()),
            written: entry.into_inner().0,
        });
        spec.broker_list_mut(list).extend(entries);
    }
    spec.network = raw.network.map(|network| network.0);
    let limits = raw.limits;
    spec.limits = Limits {
        address_space: limits.address_space.map(|size| size.0),
        open_files: limits.open_files,
        processes: limits.processes,
        cpu_seconds: limits.cpu_seconds,
        file_size: limits.file_size.map(|size| size.0),
    };
    let env = raw.environment;
    spec.env_pass = env.pass.into_iter().map(|pattern| pattern.0).collect();
    spec.env_set = env
        .set
        .into_iter()
        .map(|(key, value)| {
            let location = at(value.span());
            let written = value.into_inner();
            (key.0, EnvValue { written, location })
        })
        .collect();
    spec.best_effort = raw.layers.best_effort.into_iter().map(|l| l.0).collect();
    spec.nested_best_effort = raw
        .layers
        .nested_best_effort
        .map(|layers| layers.into_iter().map(|l| l.0).collect());
    spec.nested = raw.nested.map(|mode| mode.0);
    spec.ptrace = raw.process.ptrace.map(|mode| mode.0);
    let extends = raw
        .extends
        .into_iter()
        .map(|entry| (entry.get_ref().clone(), at(entry.span())))
        .collect();
    Ok(Parsed { extends, spec })
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn toml_error(policy: &str, text: &str, error: &toml::de::Error) -> PolicyError {
    let Some(span) = error.span() else {
        return PolicyError::Invalid {
            policy: policy.to_string(),
            message: describe(error.message(), None),
        };
    };
    let (line, column) = line_column(text, span.start);
    let message = match DeTable::parse(text) {
        // Not TOML at all: the parser's own words say it best.
        Err(_) => error.message().to_string(),
        // TOML, but not a policy: serde's words, rephrased to name the key.
        Ok(document) => describe(error.message(), key_at(document.get_ref(), span.start)),
    };
    PolicyError::Parse {
        policy: policy.to_string(),
        line,
        column,
        message,
    }
}

/// Rephrases a serde message in the format's terms (keys and tables, not
/// fields and maps) and names the key it is about.
fn describe(message: &str, key: Option<String>) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return format!("unknown key '{field}'");
    }
    let detail = if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        format!("missing key '{field}'")
    } else if let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "))
    {
        let negative = found.starts_with("integer `-");
        format!(
            "expected {}, found {}",
            expected_term(expected, negative),
            found_term(found)
        )
    } else {
        message.to_string()
    };
    match key {
        Some(key) => format!("key '{key}': {detail}"),
        None => detail,
    }
}

fn expected_term(expected: &str, negative: bool) -> &str {
    match expected {
        "u64" if negative => "a non-negative integer",
        "u64" => "an integer",
        "u16" => "a port number (0 to 65535)",
        "a sequence" => "an array",
        "a map" => "a table",
        table if table.starts_with("struct ") => "a table",
        other => other,
    }
}

fn found_term(found: &str) -> &str {
    match found {
        "sequence" => "an array",
        "map" => "a table",
        other => other,
    }
}

/// The dotted key whose name or value covers byte `offset`, if any.
fn key_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    let mut path = Vec::new();
    table_key_at(table, offset, &mut path).then(|| path.join("."))
}

fn table_key_at(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    for (key, value) in table {
        path.push(key.get_ref().to_string());
        if key.span().contains(&offset) || value_key_at(value, offset, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn value_key_at(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<String>) -> bool {
    let inside = match value.get_ref() {
        DeValue::Table(table) => table_key_at(table, offset, path),
        // Array elements are reported under the array's key.
        DeValue::Array(array) => array
            .iter()
            .any(|element| value_key_at(element, offset, &mut Vec::new())),
        _ => false,
    };
    inside || value.span().contains(&offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one_in_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, text.len()), (3, 1));
    }

    #[test]
    fn key_at_finds_nested_keys() {
        let text = "[filesystem]\nread = [\"/a\", 3]\n[limits]\nprocesses = \"x\"\n";
        let document = DeTable::parse(text).unwrap();
        let table = document.get_ref();
        assert_eq!(
            key_at(table, text.find('3').unwrap()),
            Some("filesystem.read".into())
        );
        assert_eq!(
            key_at(table, text.find("\"x\"").unwrap()),
            Some("limits.processes".into())
        );
        assert_eq!(
            key_at(table, text.find("[limits]").unwrap()),
            Some("limits".into())
        );
    }
}
