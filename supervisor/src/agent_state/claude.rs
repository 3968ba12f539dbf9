//! Claude Code's state file (`.claude.json`): which of the program's
//! changes reach the person's file.
//!
//! The file holds Claude Code's counters, caches and display choices, and
//! also what it starts or lets run: the user-scope MCP servers
//! (`mcpServers`, each a command), environment variables for every command
//! (`env`: `NODE_OPTIONS`, `LD_PRELOAD`), a program that prints the API key
//! (`apiKeyHelper`), and per project (`projects["/path"]`) the local-scope
//! MCP servers, the trust given to the folder and to its `.mcp.json`
//! servers, and the tools allowed without asking. Found in Claude Code
//! 2.1.197's own lists of its keys (`GLOBAL_CONFIG_KEYS`,
//! `DEFAULT_PROJECT_CONFIG`).
//!
//! An allow-list, so a key a later version adds is held back until named
//! here: a key passes when it is below; any other key keeps the value it
//! had at launch, unless the program only wrote an empty value (`{}`,
//! `[]`, `false`, `0`, `null`, `""`, or an object of those) where the file
//! had none (Claude Code writes its defaults so), which names nothing and
//! raises no trust.

use serde_json::{Map, Value};

use super::merge::key_path;

/// Top-level keys that name no command and grant nothing: counters, the
/// onboarding's progress, display choices, caches of what the service
/// sent (feature flags among them: a forged one lasts until the next
/// fetch), and how Claude Code was installed (`installMethod`: which of
/// its own updaters runs; the updater fetches from Anthropic).
const TOP: &[&str] = &[
    "numStartups",
    "firstStartTime",
    "userID",
    "machineID",
    "anonymousId",
    "migrationVersion",
    "seenNotifications",
    "installMethod",
    "hasCompletedOnboarding",
    "tipsHistory",
    "theme",
    "verbose",
    "preferredNotifChannel",
    "editorMode",
    "hasUsedBackslashReturn",
    "autoCompactEnabled",
    "autoScrollEnabled",
    "showTurnDuration",
    "showMessageTimestamps",
    "hasUsedStash",
    "hasUsedBackgroundTask",
    "todoFeatureEnabled",
    "showExpandedTodos",
    "briefTranscript",
    "diffSidebarOpen",
    "messageIdleNotifThresholdMs",
    "fileCheckpointingEnabled",
    "terminalProgressBarEnabled",
    "showStatusInTerminalTab",
    "taskCompleteNotifEnabled",
    "inputNeededNotifEnabled",
    "respectGitignore",
    "copyFullResponse",
    "copyOnSelect",
    "leftArrowOpensAgents",
    "defaultToAgentsView",
    "permissionExplainerEnabled",
    "prStatusFooterEnabled",
    "remoteDialogSeen",
    "lspRecommendationDisabled",
    "lspRecommendationNeverPlugins",
    "hasAvailableSubscription",
    "fallbackAvailableWarningThreshold",
    "isQualifiedForDataSharing",
    "feedbackSurveyState",
    "changelogLastFetched",
    "s1mAccessCache",
    "s1mNonSubscriberAccessCache",
    "passesEligibilityCache",
    "groveConfigCache",
    "clientDataCache",
    "unpinOpus47LaunchEffort",
    "unpinOpus48LaunchEffort",
    "unpinFable5LaunchEffort",
];

/// Keys of a project's entry that name no command and grant nothing: its
/// last session's figures (`last*`), the onboarding's progress, example
/// files suggested, its prompt history (what the arrow keys bring back).
const PROJECT: &[&str] = &[
    "hasCompletedProjectOnboarding",
    "exampleFiles",
    "exampleFilesGeneratedAt",
    "hasClaudeMdExternalIncludesWarningShown",
    "history",
    "reactVulnerabilityCache",
];

/// Whether the program's value of a top-level key reaches the file.
fn top_passes(key: &str, value: Option<&Value>) -> bool {
    TOP.contains(&key) || shaped_as_state(key, value)
}

/// Whether the program's value of a project's key reaches the file.
fn project_passes(key: &str, value: Option<&Value>) -> bool {
    PROJECT.contains(&key) || shaped_as_state(key, value)
}

/// Names Claude Code gives its figures and hints, checked by the value's
/// kind too: a counter (`...Count`) is a number, a hint seen (`hasSeen...`,
/// `hasShown...`) or a migration of its own state done
/// (`...MigrationComplete`) a boolean, a last session's figure (`lastCost`,
/// `lastModelUsage`, `lastSessionId`) or a cache of the service
/// (`cached...`) anything but a command: neither is read as one.
fn shaped_as_state(key: &str, value: Option<&Value>) -> bool {
    let camel = |prefix: &str| {
        key.strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
    };
    let number = value.is_none_or(Value::is_number);
    let boolean = value.is_none_or(Value::is_boolean);
    (key.ends_with("Count") && number)
        || ((camel("hasSeen") || camel("hasShown") || key.ends_with("MigrationComplete"))
            && boolean)
        || camel("last")
        || camel("cached")
}

/// A value that names nothing and grants nothing: empty, or an object of
/// such values (`customApiKeyResponses: {approved: [], rejected: []}`).
fn inert(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(inert),
    }
}

/// The file as the program left it, with every key that does not pass
/// back at its launch value (absent if it was absent), and the keys so
/// kept back, as paths (`mcpServers`, `projects["/w"].mcpServers`).
pub(super) fn sanitize(launch: &Map<String, Value>, program: &Map<String, Value>) -> Sanitized {
    let mut held = Vec::new();
    let value = filter(
        launch,
        program,
        "",
        &mut held,
        &|key, path, l, p, held| match key {
            "projects" if path.is_empty() => Some(projects(l, p, held)),
            _ if top_passes(key, p) => Some(p.cloned()),
            _ => None,
        },
    );
    Sanitized { value, held }
}

pub(super) struct Sanitized {
    pub value: Map<String, Value>,
    pub held: Vec<String>,
}

type Rule<'a> = dyn Fn(&str, &str, Option<&Value>, Option<&Value>, &mut Vec<String>) -> Option<Option<Value>>
    + 'a;

/// Every key of either side, decided by `rule` (`Some(v)`: the value to
/// write, absent for `None`), else kept back.
fn filter(
    launch: &Map<String, Value>,
    program: &Map<String, Value>,
    path: &str,
    held: &mut Vec<String>,
    rule: &Rule,
) -> Map<String, Value> {
    let mut keys: Vec<&String> = launch.keys().chain(program.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Map::new();
    for key in keys {
        let (l, p) = (launch.get(key), program.get(key));
        let decided = match rule(key, path, l, p, held) {
            Some(v) => v,
            None => kept_back(l, p, &format!("{path}{}", key_path(key)), held),
        };
        if let Some(v) = decided {
            out.insert(key.clone(), v);
        }
    }
    out
}

/// A key that does not pass: its launch value, unless the program left it
/// so, or wrote an inert value where there was none.
fn kept_back(
    launch: Option<&Value>,
    program: Option<&Value>,
    path: &str,
    held: &mut Vec<String>,
) -> Option<Value> {
    if launch == program || (launch.is_none() && program.is_some_and(inert)) {
        return program.cloned();
    }
    held.push(path.trim_start_matches('.').to_owned());
    launch.cloned()
}

/// `projects`: an object of project entries, each filtered by its own list;
/// anything else is kept back whole.
fn projects(
    launch: Option<&Value>,
    program: Option<&Value>,
    held: &mut Vec<String>,
) -> Option<Value> {
    let empty = Map::new();
    let (Some(l), Some(p)) = (object_or(launch, &empty), object_or(program, &empty)) else {
        return kept_back(launch, program, ".projects", held);
    };
    let out = filter(l, p, "projects", held, &|key, path, lv, pv, held| {
        Some(project(lv, pv, &format!("{path}{}", key_path(key)), held))
    });
    match (launch, out.is_empty()) {
        (None, true) => None,
        _ => Some(Value::Object(out)),
    }
}

/// An object, or `empty` for an absent value; `None` for another kind.
fn object_or<'a>(
    value: Option<&'a Value>,
    empty: &'a Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    match value {
        None => Some(empty),
        Some(Value::Object(o)) => Some(o),
        Some(_) => None,
    }
}

/// One project's entry (`at`: its path, for what is kept back): filtered
/// by [`PROJECT`]; anything but an object is kept back whole. An entry
/// that ends up empty where there was none is left out.
fn project(
    launch: Option<&Value>,
    program: Option<&Value>,
    at: &str,
    held: &mut Vec<String>,
) -> Option<Value> {
    let empty = Map::new();
    let (Some(l), Some(p)) = (object_or(launch, &empty), object_or(program, &empty)) else {
        return kept_back(launch, program, at, held);
    };
    let out = filter(l, p, at, held, &|key, _, _, pv, _| {
        project_passes(key, pv).then(|| pv.cloned())
    });
    match (launch, program, out.is_empty()) {
        (None, _, true) | (_, None, true) => None,
        _ => Some(Value::Object(out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(launch: Value, program: Value) -> (Value, Vec<String>) {
        let s = sanitize(launch.as_object().unwrap(), program.as_object().unwrap());
        (Value::Object(s.value), s.held)
    }

    #[test]
    fn commands_and_trust_keep_their_launch_values() {
        let ws = "/home/me/w";
        let (v, held) = run(
            json!({"numStartups": 3, "mcpServers": {"mine": {"command": "x"}},
                   "projects": {ws: {"hasTrustDialogAccepted": false, "lastCost": 1}}}),
            json!({"numStartups": 4, "mcpServers": {"evil": {"command": "sh"}},
                   "env": {"NODE_OPTIONS": "--require /w/e.js"},
                   "apiKeyHelper": "/w/key.sh",
                   "projects": {ws: {"hasTrustDialogAccepted": true, "lastCost": 2,
                                     "mcpServers": {"e": {"command": "sh"}},
                                     "allowedTools": ["Bash(*)"]},
                                "/elsewhere": {"mcpServers": {"e": {"command": "sh"}},
                                               "enableAllProjectMcpServers": true}}}),
        );
        assert_eq!(
            v,
            json!({"numStartups": 4, "mcpServers": {"mine": {"command": "x"}},
                   "projects": {ws: {"hasTrustDialogAccepted": false, "lastCost": 2}}})
        );
        let w = "projects[\"/home/me/w\"]";
        let e = "projects[\"/elsewhere\"]";
        assert_eq!(
            held,
            vec![
                "apiKeyHelper".to_owned(),
                "env".to_owned(),
                "mcpServers".to_owned(),
                format!("{e}.enableAllProjectMcpServers"),
                format!("{e}.mcpServers"),
                format!("{w}.allowedTools"),
                format!("{w}.hasTrustDialogAccepted"),
                format!("{w}.mcpServers"),
            ]
        );
    }

    #[test]
    fn state_and_inert_defaults_pass() {
        let (v, held) = run(
            json!({}),
            json!({"numStartups": 1, "tipsHistory": {"a": 1}, "promptQueueUseCount": 2,
                   "hasSeenTasksHint": true, "cachedGrowthBookFeatures": {"f": 1},
                   "env": {}, "mcpServers": {}, "customApiKeyResponses": {"approved": []},
                   "projects": {"/w": {"allowedTools": [], "hasTrustDialogAccepted": false,
                                       "projectOnboardingSeenCount": 1}}}),
        );
        assert!(held.is_empty(), "{held:?}");
        assert_eq!(v["projects"]["/w"]["projectOnboardingSeenCount"], json!(1));
        assert_eq!(v["numStartups"], json!(1));
    }

    #[test]
    fn a_name_shaped_as_state_with_another_kind_of_value_is_kept_back() {
        let (v, held) = run(
            json!({}),
            json!({"fooCount": {"command": "sh"}, "hasSeenX": "sh", "lastThing": "ok"}),
        );
        assert_eq!(v, json!({"lastThing": "ok"}));
        assert_eq!(held, vec!["fooCount".to_owned(), "hasSeenX".to_owned()]);
    }

    #[test]
    fn projects_that_are_not_an_object_are_kept_back_whole() {
        let (v, held) = run(json!({"projects": {"/w": {}}}), json!({"projects": "x"}));
        assert_eq!(v, json!({"projects": {"/w": {}}}));
        assert_eq!(held, vec!["projects".to_owned()]);
    }
}
