//! Writing SBPL: rules, filters and comments, one form per rule.
//!
//! Every string that reaches the text goes through [`super::path::quote`]:
//! paths through [`SbplPath::quoted`], fixed names (Mach services, sysctl
//! names, network addresses) through the same function.

use std::fmt::Write;

use super::path::{quote, SbplPath};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
}

/// One `(allow|deny OPERATION... FILTER...)` form. No filters: the rule
/// applies to every use of the operations.
#[derive(Debug, Clone)]
pub struct Rule {
    pub action: Action,
    pub operations: &'static [&'static str],
    pub filters: Vec<String>,
}

impl Rule {
    pub fn allow(operations: &'static [&'static str], filters: Vec<String>) -> Rule {
        Rule {
            action: Action::Allow,
            operations,
            filters,
        }
    }

    pub fn deny(operations: &'static [&'static str], filters: Vec<String>) -> Rule {
        Rule {
            action: Action::Deny,
            operations,
            filters,
        }
    }
}

/// A commented group of rules. A section with no rules is left out.
#[derive(Debug, Clone)]
pub struct Section {
    /// Why these rules exist: one `;;` line each.
    pub why: Vec<String>,
    pub rules: Vec<Rule>,
}

impl Section {
    pub fn new(why: &[&str], rules: Vec<Rule>) -> Section {
        Section {
            why: why.iter().map(|l| l.to_string()).collect(),
            rules,
        }
    }
}

pub fn literal(path: &SbplPath) -> String {
    format!("(literal {})", path.quoted())
}

/// `(literal "/etc")` for one of the top-level links into `/private`
/// itself, which [`SbplPath`] would map to its target.
pub fn link_literal(link: &str) -> String {
    format!("(literal {})", quote(link))
}

pub fn subpath(path: &SbplPath) -> String {
    format!("(subpath {})", path.quoted())
}

pub fn global_name(name: &str) -> String {
    format!("(global-name {})", quote(name))
}

pub fn sysctl_name(name: &str) -> String {
    format!("(sysctl-name {})", quote(name))
}

pub fn sysctl_name_prefix(prefix: &str) -> String {
    format!("(sysctl-name-prefix {})", quote(prefix))
}

pub fn ipc_posix_name(name: &str) -> String {
    format!("(ipc-posix-name {})", quote(name))
}

/// `(remote tcp "*:PORT")`: a TCP connection to this port on any host
/// (Seatbelt filters hosts only as `*` or `localhost`).
pub fn remote_tcp(port: u16) -> String {
    format!("(remote tcp {})", quote(&format!("*:{port}")))
}

/// `(local tcp "*:PORT")`: a TCP socket bound to this port.
pub fn local_tcp(port: u16) -> String {
    format!("(local tcp {})", quote(&format!("*:{port}")))
}

/// `(target same-sandbox)`: processes under this same profile.
pub fn same_sandbox() -> String {
    "(target same-sandbox)".to_string()
}

/// Writes `sections` in order, each preceded by its comment lines.
pub fn render(out: &mut String, sections: &[Section]) {
    for section in sections.iter().filter(|s| !s.rules.is_empty()) {
        out.push('\n');
        for line in &section.why {
            // A comment runs to the end of its line: keep it on one line.
            let line = line.replace(['\n', '\r'], " ");
            let _ = writeln!(out, ";; {line}");
        }
        for rule in &section.rules {
            render_rule(out, rule);
        }
    }
}

fn render_rule(out: &mut String, rule: &Rule) {
    let action = match rule.action {
        Action::Allow => "allow",
        Action::Deny => "deny",
    };
    let _ = write!(out, "({action} {}", rule.operations.join(" "));
    match rule.filters.as_slice() {
        [] => {}
        [only] => {
            let _ = write!(out, " {only}");
        }
        many => {
            for filter in many {
                let _ = write!(out, "\n    {filter}");
            }
        }
    }
    out.push_str(")\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_render_one_filter_per_line() {
        let p = |s: &str| SbplPath::new(std::path::Path::new(s)).unwrap();
        let mut out = String::new();
        render(
            &mut out,
            &[
                Section::new(&["Why."], vec![Rule::allow(&["process-fork"], vec![])]),
                Section::new(&["Empty: left out."], vec![]),
                Section::new(
                    &["Two", "lines\nof why."],
                    vec![
                        Rule::allow(&["file-read*"], vec![subpath(&p("/a"))]),
                        Rule::deny(
                            &["file-read*", "file-write*"],
                            vec![literal(&p("/a/\"b\"")), subpath(&p("/tmp"))],
                        ),
                    ],
                ),
            ],
        );
        assert_eq!(
            out,
            "\n;; Why.\n(allow process-fork)\n\n;; Two\n;; lines of why.\n\
             (allow file-read* (subpath \"/a\"))\n\
             (deny file-read* file-write*\n    (literal \"/a/\\\"b\\\"\")\n    (subpath \"/private/tmp\"))\n"
        );
    }
}
