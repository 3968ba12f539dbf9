//! A small SBPL reader for tests: s-expressions, strings with only the
//! escapes the generator writes, and a structural check of every form
//! against the operations and filters the generator may use. It also
//! evaluates a profile (last matching rule wins) for a path and operation.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sexp {
    List(Vec<Sexp>),
    Symbol(String),
    Str(String),
    Int(i64),
}

/// Reads every top-level form; errors name the byte offset.
pub fn read(text: &str) -> Result<Vec<Sexp>, String> {
    let mut chars = text.char_indices().peekable();
    let mut stack: Vec<Vec<Sexp>> = vec![Vec::new()];
    while let Some((at, c)) = chars.next() {
        match c {
            ';' => while chars.next_if(|&(_, c)| c != '\n').is_some() {},
            c if c.is_whitespace() => {}
            '(' => stack.push(Vec::new()),
            ')' => {
                let list = stack.pop().filter(|_| !stack.is_empty());
                let list = list.ok_or(format!("unbalanced ')' at {at}"))?;
                stack.last_mut().unwrap().push(Sexp::List(list));
            }
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated string from {at}")),
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, e @ ('"' | '\\'))) => s.push(e),
                            other => {
                                return Err(format!("unknown escape {other:?} in string at {at}"))
                            }
                        },
                        Some((i, c)) if c.is_control() => {
                            return Err(format!("raw control character {c:?} in string at {i}"))
                        }
                        Some((_, c)) => s.push(c),
                    }
                }
                stack.last_mut().unwrap().push(Sexp::Str(s));
            }
            c if c.is_ascii_alphanumeric() || "-*_.".contains(c) => {
                let mut atom = c.to_string();
                while let Some((_, c)) =
                    chars.next_if(|&(_, c)| c.is_ascii_alphanumeric() || "-*_.".contains(c))
                {
                    atom.push(c);
                }
                let item = match atom.parse::<i64>() {
                    Ok(n) => Sexp::Int(n),
                    Err(_) => Sexp::Symbol(atom),
                };
                stack.last_mut().unwrap().push(item);
            }
            c => return Err(format!("unexpected {c:?} at {at}")),
        }
    }
    match stack.len() {
        1 => Ok(stack.pop().unwrap()),
        n => Err(format!("{} unclosed '('", n - 1)),
    }
}

/// The operations a generated profile may name.
pub const OPERATIONS: &[&str] = &[
    "file-read*",
    "file-read-metadata",
    "file-write*",
    "file-ioctl",
    "file-map-executable",
    "process-exec*",
    "process-fork",
    "process-info*",
    "iokit-get-properties",
    "nvram*",
    "file-write-unlink",
    "mach-host*",
    "ipc-posix-sem",
    "signal",
    "sysctl-read",
    "mach-lookup",
    "ipc-posix-shm-read-data",
    "network*",
    "network-outbound",
    "network-bind",
    "network-inbound",
    "system-socket",
];

/// One allow or deny rule, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRule {
    pub allow: bool,
    pub operations: Vec<String>,
    /// (filter name, its string argument or its symbol and string).
    pub filters: Vec<(String, Vec<Sexp>)>,
}

/// Reads and checks a profile: `(version 1)`, `(deny default)`, then
/// rules with known operations and well-formed filters only.
pub fn check(text: &str) -> Result<Vec<ReadRule>, String> {
    let forms = read(text)?;
    let mut forms = forms.into_iter();
    let sym = |s: &str| Sexp::Symbol(s.into());
    if forms.next() != Some(Sexp::List(vec![sym("version"), Sexp::Int(1)])) {
        return Err("the profile does not start with (version 1)".into());
    }
    if forms.next() != Some(Sexp::List(vec![sym("deny"), sym("default")])) {
        return Err("(deny default) does not follow (version 1)".into());
    }
    forms.map(|form| rule(&form)).collect()
}

fn rule(form: &Sexp) -> Result<ReadRule, String> {
    let Sexp::List(items) = form else {
        return Err(format!("a top-level atom: {form:?}"));
    };
    let allow = match items.first() {
        Some(Sexp::Symbol(s)) if s == "allow" => true,
        Some(Sexp::Symbol(s)) if s == "deny" => false,
        _ => return Err(format!("not an allow or deny rule: {form:?}")),
    };
    let mut operations = Vec::new();
    let mut filters = Vec::new();
    for item in &items[1..] {
        match item {
            Sexp::Symbol(op) if filters.is_empty() && OPERATIONS.contains(&op.as_str()) => {
                operations.push(op.clone())
            }
            Sexp::List(filter) => filters.push(check_filter(filter)?),
            other => {
                return Err(format!(
                    "unknown operation or stray atom {other:?} in {form:?}"
                ))
            }
        }
    }
    if operations.is_empty() {
        return Err(format!("a rule without operations: {form:?}"));
    }
    Ok(ReadRule {
        allow,
        operations,
        filters,
    })
}

fn check_filter(filter: &[Sexp]) -> Result<(String, Vec<Sexp>), String> {
    let bad = || format!("malformed filter {filter:?}");
    let (Some(Sexp::Symbol(name)), args) = (filter.first(), &filter[1..]) else {
        return Err(bad());
    };
    let ok = match (name.as_str(), args) {
        ("literal" | "subpath", [Sexp::Str(p)]) => {
            Path::new(p).is_absolute() && !p.contains("//") && (p == "/" || !p.ends_with('/'))
        }
        (
            "global-name" | "sysctl-name" | "sysctl-name-prefix" | "ipc-posix-name",
            [Sexp::Str(s)],
        ) => !s.is_empty(),
        ("remote" | "local", [Sexp::Symbol(proto), Sexp::Str(addr)]) => {
            proto == "tcp"
                && addr
                    .strip_prefix("*:")
                    .is_some_and(|port| port.parse::<u16>().is_ok())
        }
        ("target", [Sexp::Symbol(t)]) => t == "same-sandbox",
        _ => false,
    };
    if ok {
        Ok((name.clone(), args.to_vec()))
    } else {
        Err(bad())
    }
}

/// The path a `literal` or `subpath` filter names.
pub fn filter_path(filter: &(String, Vec<Sexp>)) -> Option<(&str, bool)> {
    match (filter.0.as_str(), filter.1.as_slice()) {
        ("literal", [Sexp::Str(p)]) => Some((p, false)),
        ("subpath", [Sexp::Str(p)]) => Some((p, true)),
        _ => None,
    }
}

/// Whether a rule's operation covers `op` (`file-read*` covers
/// `file-read-metadata`; `network*` covers `network-bind`).
pub fn covers_operation(rule_op: &str, op: &str) -> bool {
    rule_op == op || rule_op.strip_suffix('*').is_some_and(|p| op.starts_with(p))
}

/// What Seatbelt's own prelude allows before any rule of a profile, even
/// under `(deny default)` (Apple's recovered SBPL prelude).
pub const PRELUDE_ALLOWED: &[&str] = &["process-info*", "iokit-get-properties", "nvram*"];

/// Evaluates `op` on `path` as Seatbelt would: the last matching rule
/// decides; nothing matching means denied, except what the prelude allows
/// ([`PRELUDE_ALLOWED`]). Only path filters are considered; a rule with
/// other filters does not match a path.
pub fn allows(rules: &[ReadRule], op: &str, path: &str) -> bool {
    let mut decision = PRELUDE_ALLOWED
        .iter()
        .any(|prelude| covers_operation(prelude, op));
    for rule in rules {
        if !rule.operations.iter().any(|r| covers_operation(r, op)) {
            continue;
        }
        let matches = rule.filters.is_empty()
            || rule.filters.iter().any(|f| match filter_path(f) {
                Some((p, true)) => Path::new(path).starts_with(p),
                Some((p, false)) => path == p,
                None => false,
            });
        if matches {
            decision = rule.allow;
        }
    }
    decision
}

#[test]
fn the_reader_refuses_what_the_generator_must_never_write() {
    let ok = "(version 1)\n(deny default)\n(allow file-read* (subpath \"/a \\\"b\\\" \\\\ (c)\"))";
    let rules = check(ok).unwrap();
    assert_eq!(rules[0].filters[0].1, [Sexp::Str("/a \"b\" \\ (c)".into())]);
    let head = "(version 1)\n(deny default)\n";
    for bad in [
        "(allow file-read* (subpath \"/a\")",
        "(allow file-read* (subpath \"/a\")))",
        "(allow file-read* (subpath \"/a\n\"))",
        "(allow file-read* (subpath \"/a\\n\"))",
        "(allow file-read* (subpath \"/a\" \"/b\"))",
        "(allow file-read* (subpath \"a\"))",
        "(allow file-read* (regex #\"^/a\"))",
        "(allow file-read* (extension \"com.apple.app-sandbox.read\"))",
        "(allow file-frobnicate (subpath \"/a\"))",
        "(allow (subpath \"/a\"))",
        "(allow default)",
        "(import \"system.sb\")",
        "(allow network-outbound (remote udp \"*:53\"))",
        "(allow signal (target others))",
    ] {
        assert!(check(&format!("{head}{bad}")).is_err(), "{bad}");
    }
    assert!(check("(deny default)").is_err());
    assert!(check("(version 1)\n(allow default)").is_err());
}
