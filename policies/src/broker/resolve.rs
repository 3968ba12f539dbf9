//! `[broker]` entries to a [`BrokerPolicy`]: variables substituted (their
//! values escaped), the longest existing literal prefix of each pattern
//! canonicalised, repeats removed, globs compiled.

use std::collections::HashSet;

use super::canonical::Canonicaliser;
use super::pattern::{literal_value, Pattern};
use super::{BrokerPolicy, BrokerRule, Verdict};
use crate::error::{Location, PolicyError};
use crate::rule::escape;
use crate::rule::BrokerList;
use crate::spec::{PatternEntry, PolicySpec};
use crate::vars::Vars;

/// The `[broker]` part of [`PolicySpec::resolve`]. Within each list, a
/// pattern that resolves like an earlier one is dropped.
pub(crate) fn resolve_broker(
    spec: &PolicySpec,
    vars: &Vars,
    canonicaliser: &mut Canonicaliser,
) -> Result<BrokerPolicy, PolicyError> {
    let mut rules = Vec::new();
    let mut patterns = Vec::new();
    let mut seen = HashSet::new();
    for list in BrokerList::ALL {
        for entry in spec.broker_list(list) {
            let pattern = resolve_pattern(list, entry, vars, canonicaliser)?;
            let resolved = pattern.text();
            if seen.insert((list as usize, resolved.clone())) {
                patterns.push(pattern);
                rules.push(BrokerRule {
                    verdict: list.verdict(),
                    grants_write: list.grants_write(),
                    pattern: entry.written.clone(),
                    resolved,
                    location: Some(entry.location.clone()),
                });
            }
        }
    }
    // `[filesystem] deny` patterns hold for the broker too: one list, so
    // that what the sandbox hides is never served instead. Exceptions are
    // not carried over (the broker's own lists decide those paths).
    let fs_deny = spec.list(crate::spec::FsList::Deny).iter();
    for entry in fs_deny.filter(|e| crate::protect::is_deny_pattern(&e.written)) {
        if entry.written.starts_with('!') {
            continue;
        }
        let entry = PatternEntry {
            written: entry.written.clone(),
            location: entry.location.clone(),
        };
        let pattern = resolve_pattern(BrokerList::Deny, &entry, vars, canonicaliser)?;
        let resolved = pattern.text();
        if seen.insert((BrokerList::Deny as usize, resolved.clone())) {
            patterns.push(pattern);
            rules.push(BrokerRule {
                verdict: Verdict::Deny,
                grants_write: false,
                pattern: entry.written,
                resolved,
                location: Some(entry.location),
            });
        }
    }
    BrokerPolicy::new(rules, patterns).map_err(|error| match error.rule {
        Some(rule) => {
            let list = BrokerList::of(rule.verdict, rule.grants_write);
            PolicyError::InvalidValue {
                location: rule.location.unwrap_or(Location::CommandLine),
                key: list.key(),
                message: error.message,
            }
        }
        None => PolicyError::Invalid {
            policy: spec.name().to_string(),
            message: error.message,
        },
    })
}

/// The pattern with variables substituted and its longest existing literal
/// prefix canonicalised; the rest is kept as written.
fn resolve_pattern(
    list: BrokerList,
    entry: &PatternEntry,
    vars: &Vars,
    canonicaliser: &mut Canonicaliser,
) -> Result<Pattern, PolicyError> {
    let key = list.key();
    let invalid = |message: String| PolicyError::InvalidValue {
        location: entry.location.clone(),
        key: key.clone(),
        message,
    };
    let text = vars.substitute_pattern_at(&entry.written, &entry.location, &key)?;
    let mut pattern = Pattern::parse(&text, &entry.written).map_err(invalid)?;
    if pattern.any_depth {
        return Ok(pattern);
    }
    let literal = pattern.literal_prefix();
    let names: Vec<String> = pattern.components[..literal]
        .iter()
        .map(|component| literal_value(component).unwrap_or_default())
        .collect();
    let (canonical, kept) =
        canonicaliser
            .existing(&names)
            .map_err(|(at, error)| PolicyError::PathIo {
                location: entry.location.clone(),
                key: key.clone(),
                written: entry.written.clone(),
                resolved: at,
                error,
            })?;
    let canonical = canonical.to_str().ok_or_else(|| {
        invalid(format!(
            "pattern '{}': path {} is not valid UTF-8, which a pattern must be",
            entry.written,
            canonical.display()
        ))
    })?;
    let mut components: Vec<String> = canonical
        .split('/')
        .filter(|c| !c.is_empty())
        .map(escape)
        .collect();
    components.extend(pattern.components.drain(kept..));
    pattern.components = components;
    Ok(pattern)
}
