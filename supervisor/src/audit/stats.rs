//! `sluice audit stats`: decisions counted by outcome, by who decided, by
//! path and by session.

use std::collections::HashMap;

use serde::Serialize;

use super::escape::escape_os;
use super::record::{By, Counts, DecisionRecord};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub decisions: Counts,
    /// Who decided (and by which rule), most decisions first.
    pub deciders: Vec<DeciderTally>,
    /// The most asked-for paths, most requests first.
    pub top_paths: Vec<PathTally>,
    pub sessions: Vec<SessionTally>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeciderTally {
    pub by: By,
    pub rule: Option<String>,
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathTally {
    /// The stored text of the path asked for.
    pub path: String,
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionTally {
    pub session: String,
    pub counts: Counts,
}

/// Tallies `(session, decision)` pairs, keeping the `top` most asked paths.
pub fn collect<'a>(
    decisions: impl IntoIterator<Item = (&'a str, &'a DecisionRecord)>,
    top: usize,
) -> Stats {
    let mut stats = Stats::default();
    let mut deciders: HashMap<(By, Option<&str>), Counts> = HashMap::new();
    let mut paths: HashMap<String, Counts> = HashMap::new();
    let mut sessions: HashMap<&str, Counts> = HashMap::new();
    for (session, d) in decisions {
        stats.decisions.add(d.decision);
        deciders
            .entry((d.by, d.rule.as_deref()))
            .or_default()
            .add(d.decision);
        paths
            .entry(escape_os(d.path_asked.as_os_str()).into_owned())
            .or_default()
            .add(d.decision);
        sessions.entry(session).or_default().add(d.decision);
    }
    stats.deciders = deciders
        .into_iter()
        .map(|((by, rule), counts)| DeciderTally {
            by,
            rule: rule.map(str::to_owned),
            counts,
        })
        .collect();
    stats
        .deciders
        .sort_by(|a, b| (b.counts.total(), a.by, &a.rule).cmp(&(a.counts.total(), b.by, &b.rule)));
    stats.top_paths = paths
        .into_iter()
        .map(|(path, counts)| PathTally { path, counts })
        .collect();
    stats
        .top_paths
        .sort_by(|a, b| (b.counts.total(), &a.path).cmp(&(a.counts.total(), &b.path)));
    stats.top_paths.truncate(top);
    stats.sessions = sessions
        .into_iter()
        .map(|(session, counts)| SessionTally {
            session: session.to_owned(),
            counts,
        })
        .collect();
    stats.sessions.sort_by(|a, b| a.session.cmp(&b.session));
    stats
}
