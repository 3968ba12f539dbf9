//! The network by host name, asked (`ask_hosts`, `--ask-host`): a host no
//! rule allows is put to the person on sluice's terminal, with the file
//! prompts' choices, and recorded. The asked host's server is the test's own,
//! in a network namespace the test makes around sluice; the fixtures are
//! `net_hosts`'s.

use std::fs;
use std::process::Command;

use serde_json::Value;
use sluice_tests::audit::{records, sessions};
use sluice_tests::pty::Terminal;
use sluice_tests::{execute, Fixture, Outcome};

use super::net_hosts::*;

/// `ask_hosts`: the asked host's server, on an address outside 127.0.0.0/8
/// (given to `lo`) in a network namespace the test makes around sluice (a
/// host the person allows never reaches a loopback address through its
/// name).
pub(super) const ASKED_IP: &str = "10.200.0.1";
pub(super) const ASKED_PORT: u16 = 8080;
/// The first line of a host prompt, and the end of its status line.
pub(super) const HOST_PROMPT: &str = "sluice: the sandboxed program asks to connect to a host";
pub(super) const READY: &str = "without an answer) ? ";

/// A policy asking the person about hosts: `ask` is the `ask_hosts` value.
pub(super) fn asking_policy(fx: &Fixture, ask: &str) -> String {
    fx.write_policy(
        "ask-hosts.toml",
        &format!("extends = [\"default\"]\n[network]\nask_hosts = {ask}\n"),
    )
}

pub(super) fn asked_url(host: &str) -> String {
    format!("http://{host}:{ASKED_PORT}/index.html")
}

impl Net {
    /// `cmd` in a mount and network namespace of the test's own: `lo`, with
    /// [`ASKED_IP`] too, where a server serves
    /// `served`; `asked.test` and `second.test` resolve to it, `loop.test`
    /// to 127.0.0.1. Control outside sluice: the server answers curl
    /// before the command starts.
    fn asking(&self, cmd: Command) -> Command {
        self.asking_as(cmd, None)
    }

    /// [`Net::asking`], the command run as `user` (a uid) if given.
    fn asking_as(&self, cmd: Command, user: Option<&str>) -> Command {
        let dir = self.hosts.parent().unwrap();
        let hosts = dir.join("asked-hosts");
        let system = fs::read_to_string("/etc/hosts").unwrap_or_default();
        fs::write(
            &hosts,
            format!("{system}\n{ASKED_IP} asked.test second.test\n127.0.0.1 loop.test\n"),
        )
        .unwrap();
        let run_as = match user {
            Some(uid) => format!("setpriv --reuid={uid} --regid={uid} --clear-groups -- "),
            None => String::new(),
        };
        let script = format!(
            "set -e\n\
             mount --bind \"$0\" /etc/hosts\n\
             ip link set lo up\n\
             ip addr add {ASKED_IP}/32 dev lo\n\
             {PYTHON} -m http.server --bind {ASKED_IP} --directory \"$1\" {ASKED_PORT} \
               >/dev/null 2>>\"$2\" &\n\
             server=$!\n\
             shift 2\n\
             i=0\n\
             until curl -s -o /dev/null --noproxy '*' http://{ASKED_IP}:{ASKED_PORT}/ready; do\n\
               i=$((i+1)); [ $i -lt 600 ] || exit 97; sleep 0.1\n\
             done\n\
             set +e\n\
             {run_as}\"$@\"; status=$?\n\
             kill $server\n\
             exit $status\n"
        );
        let mut wrapped = Command::new("unshare");
        wrapped.args(["-m", "-n", "--propagation", "private", "--", "sh", "-c"]);
        wrapped
            .arg(script)
            .arg(&hosts)
            .arg(&self.served)
            .arg(dir.join("asked-server.log"));
        around(wrapped, cmd)
    }

    /// `sluice run SLUICE_ARGS -- PROGRAM` there, without a terminal.
    fn run_asking(&self, sluice_args: &[&str], program: &[&str]) -> Outcome {
        execute(self.asking(self.fx.sluice_command(sluice_args, program)))
    }

    /// [`Net::run_asking`] as uid 65534 (the fixture's files handed to it).
    fn run_asking_as_nobody(&self, sluice_args: &[&str], program: &[&str]) -> Outcome {
        let cmd = self.nobody_command(sluice_args, program);
        execute(self.asking_as(cmd, Some("65534")))
    }

    /// The same on a pty, as a person would see it.
    fn terminal_asking(&self, sluice_args: &[&str], program: &[&str]) -> Terminal {
        Terminal::spawn(
            self.asking(self.fx.sluice_command(sluice_args, program)),
            24,
            120,
        )
    }

    /// Requests for the page the asked server has served, in every run.
    fn asked_hits(&self) -> usize {
        let log = self.hosts.parent().unwrap().join("asked-server.log");
        fs::read_to_string(log)
            .unwrap_or_default()
            .matches("GET /index.html")
            .count()
    }
}

/// `(decision, by)` of each connection record of the fixture's last session.
pub(super) fn last_connections(fx: &Fixture) -> Vec<Value> {
    let all = sessions(fx);
    records(fx, all.last().expect("an audited session"))
        .into_iter()
        .filter(|r| r["kind"] == "connection")
        .collect()
}

pub(super) fn decided(recs: &[Value]) -> Vec<(String, String, String)> {
    recs.iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap().to_owned(),
                r["decision"].as_str().unwrap().to_owned(),
                r["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub(super) fn triple(host: &str, decision: &str, by: &str) -> (String, String, String) {
    (host.to_owned(), decision.to_owned(), by.to_owned())
}

/// `curl URL` for each of `urls`, one after the other, in one shell.
pub(super) fn curls(urls: &[&str]) -> Vec<String> {
    let script: Vec<String> = urls
        .iter()
        .map(|u| format!("curl -sS --max-time 120 {u}; echo"))
        .collect();
    vec!["sh".into(), "-c".into(), script.join("; ")]
}

#[test]
fn an_asked_host_is_put_to_the_person_once_allowed_then_denied() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let url = asked_url("asked.test");
    let program = curls(&[&url, &url]);
    let mut t = net.terminal_asking(&["--policy", &policy], &strs(&program));
    t.expect(HOST_PROMPT);
    let prompt = t.expect(READY);
    assert!(
        prompt.contains(&format!("host     asked.test:{ASKED_PORT}")),
        "{prompt}"
    );
    assert!(prompt.contains("rule     ask_hosts = true"), "{prompt}");
    assert!(!prompt.contains("[d]"), "{prompt}");
    assert_eq!(net.asked_hits(), 0, "asked before connecting");
    t.send(b"y");
    t.expect(&format!("allowed once: asked.test:{ASKED_PORT}"));
    t.expect(BODY.trim_end());
    // Once is once: the second connection asks again.
    t.expect(HOST_PROMPT);
    t.expect(READY);
    t.send(b"n");
    t.expect(&format!("denied: asked.test:{ASKED_PORT}"));
    // The 403's body explains.
    t.expect(&format!(
        "sluice refused the connection to asked.test:{ASKED_PORT}: denied by the person at sluice's prompt"
    ));
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(net.asked_hits(), 1, "{}", done.transcript);
    let recs = last_connections(&net.fx);
    assert_eq!(
        decided(&recs),
        [
            triple("asked.test", "allowed", "person"),
            triple("asked.test", "denied", "person")
        ]
    );
    assert_eq!(recs[0]["address"], format!("{ASKED_IP}:{ASKED_PORT}"));
    assert_eq!(recs[0]["rule"], "ask_hosts = true");
}

#[test]
fn an_unanswered_host_prompt_times_out_and_refuses() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let program = curls(&[&asked_url("asked.test")]);
    let mut t = net.terminal_asking(
        &["--policy", &policy, "--approve-timeout", "1"],
        &strs(&program),
    );
    t.expect(HOST_PROMPT);
    // The test never types.
    t.expect("denied: no answer in time: asked.test");
    t.expect("the person did not answer sluice's prompt in time");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("asked.test", "denied", "timeout")]
    );
    assert_eq!(net.asked_hits(), 0);
}

#[test]
fn a_session_answer_asks_once_for_two_connections_to_that_host() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let url = asked_url("asked.test");
    let program = curls(&[&url, &url, &asked_url("second.test")]);
    let mut t = net.terminal_asking(&["--policy", &policy], &strs(&program));
    t.expect(HOST_PROMPT);
    t.expect(READY);
    t.send(b"s");
    t.expect("allowed for this session");
    // Control: another host is asked about.
    let between = t.expect(HOST_PROMPT);
    assert_eq!(between.matches(BODY.trim_end()).count(), 2, "{between}");
    let prompt = t.expect(READY);
    assert!(
        prompt.contains(&format!("host     second.test:{ASKED_PORT}")),
        "{prompt}"
    );
    t.send(b"\r");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(net.asked_hits(), 2);
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [
            triple("asked.test", "allowed", "person"),
            triple("asked.test", "allowed", "session"),
            triple("second.test", "denied", "person")
        ]
    );
}

#[test]
fn always_answers_go_to_the_overlay_and_hold_in_later_sessions() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let overlay = net.fx.config_dir().join("approvals.toml");
    let asked = asked_url("asked.test");
    let second = asked_url("second.test");
    // Controls: without a terminal, the asked host is refused; with
    // --approve allow, the second one is reached.
    let out = net.run_asking(&["--policy", &policy], &curl(&asked));
    assert!(out.stdout.contains("no terminal to ask on"), "{out}");
    let out = net.run_asking(&["--policy", &policy, "--approve", "allow"], &curl(&second));
    assert_eq!(out.stdout, BODY, "{out}");

    // Allow always.
    let mut t = net.terminal_asking(&["--policy", &policy], &strs(&curls(&[&asked])));
    t.expect(HOST_PROMPT);
    let prompt = t.expect(READY);
    assert!(prompt.contains("[a] allow always"), "{prompt}");
    t.send(b"a");
    t.expect("allowed always");
    t.expect(BODY.trim_end());
    assert_eq!(t.wait().code, 0);
    let text = fs::read_to_string(&overlay).unwrap();
    assert!(
        text.contains("[network]")
            && text.contains(&format!("hosts = [\"asked.test:{ASKED_PORT}\"]")),
        "{text}"
    );
    // The next session, without a terminal, reaches it by the overlay.
    let out = net.run_asking(&["--policy", &policy], &curl(&asked));
    assert_eq!(out.stdout, BODY, "{out}");
    let recs = last_connections(&net.fx);
    assert_eq!(decided(&recs), [triple("asked.test", "allowed", "overlay")]);
    assert_eq!(
        recs[0]["rule"],
        format!("hosts \"asked.test:{ASKED_PORT}\" (approvals.toml)")
    );
    // On a terminal: no prompt either.
    let t = net.terminal_asking(&["--policy", &policy], &strs(&curls(&[&asked])));
    let done = t.wait();
    assert!(
        !done.transcript.contains(HOST_PROMPT),
        "{}",
        done.transcript
    );
    assert!(
        done.transcript.contains(BODY.trim_end()),
        "{}",
        done.transcript
    );

    // Deny always: holds against --approve allow later.
    let mut t = net.terminal_asking(&["--policy", &policy], &strs(&curls(&[&second])));
    t.expect(HOST_PROMPT);
    t.expect(READY);
    t.send(b"v");
    t.expect("denied always");
    assert_eq!(t.wait().code, 0);
    let text = fs::read_to_string(&overlay).unwrap();
    assert!(
        text.contains(&format!("deny_hosts = [\"second.test:{ASKED_PORT}\"]")),
        "{text}"
    );
    let hits = net.asked_hits();
    let out = net.run_asking(&["--policy", &policy, "--approve", "allow"], &curl(&second));
    assert!(
        out.stdout
            .contains("denied always in the approvals overlay"),
        "{out}"
    );
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("second.test", "denied", "overlay")]
    );
    assert_eq!(net.asked_hits(), hits);
}

#[test]
fn without_a_terminal_asked_hosts_follow_approve() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, &format!("[\"asked.test:{ASKED_PORT}\"]"));
    let asked = asked_url("asked.test");
    let out = net.run_asking(&["--policy", &policy], &curl(&asked));
    assert!(
        out.stdout.contains(&format!(
            "sluice refused the connection to asked.test:{ASKED_PORT}: not in [network] hosts, \
             and no terminal to ask on (--approve deny)"
        )),
        "{out}"
    );
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("asked.test", "denied", "non-interactive-default")]
    );
    assert_eq!(net.asked_hits(), 0);
    let out = net.run_asking(&["--policy", &policy, "--approve", "allow"], &curl(&asked));
    assert_eq!(out.stdout, BODY, "{out}");
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("asked.test", "allowed", "non-interactive-default")]
    );
    // A host the list does not name is not asked: refused by rule, even
    // with --approve allow.
    let out = net.run_asking(
        &["--policy", &policy, "--approve", "allow"],
        &curl(&asked_url("second.test")),
    );
    assert!(out.stdout.contains("not in [network] hosts."), "{out}");
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("second.test", "denied", "rule")]
    );
    assert_eq!(net.asked_hits(), 1);
}

#[test]
fn an_allowed_answer_never_reaches_loopback() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let allow = ["--policy", policy.as_str(), "--approve", "allow"];
    // A loopback address is not put to anyone: not even --approve allow
    // reaches it.
    let out = net.run_asking(&allow, &strs(&raw_proxy_connect("127.0.0.1:8080")));
    assert!(out.stdout.starts_with("HTTP/1.1 403"), "{out}");
    assert!(out.stdout.contains("never put to the person"), "{out}");
    // Nor a name that resolves to one (DNS rebinding into the host).
    let out = net.run_asking(&allow, &curl(&asked_url("loop.test")));
    assert!(
        out.stdout
            .contains("resolves to 127.0.0.1 only, which an answer to ask_hosts does not reach"),
        "{out}"
    );
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("loop.test", "denied", "rule")]
    );
    // Control: the same answer reaches a name that resolves elsewhere.
    let out = net.run_asking(&allow, &curl(&asked_url("asked.test")));
    assert_eq!(out.stdout, BODY, "{out}");
}

#[test]
fn the_ask_host_flag_asks_about_that_host_only() {
    let net = Net::new();
    let flag = format!("--ask-host=asked.test:{ASKED_PORT}");
    let program = curls(&[&asked_url("asked.test"), &asked_url("second.test")]);
    let mut t = net.terminal_asking(&[&flag], &strs(&program));
    t.expect(HOST_PROMPT);
    let prompt = t.expect(READY);
    assert!(
        prompt.contains(&format!("rule     ask_hosts \"asked.test:{ASKED_PORT}\"")),
        "{prompt}"
    );
    t.send(b"y");
    t.expect(BODY.trim_end());
    // Control: the host the flag does not name is refused without a prompt.
    let after = t.expect("not in [network] hosts.");
    assert!(!after.contains(HOST_PROMPT), "{after}");
    let done = t.wait();
    assert_eq!(done.code, 0, "{}", done.transcript);
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [
            triple("asked.test", "allowed", "person"),
            triple("second.test", "denied", "rule")
        ]
    );
    let out = net.run_asking(&[&flag, "--net", "all"], &curl(&asked_url("asked.test")));
    out.assert_code(125);
    assert!(
        out.stderr
            .contains("--ask-host and --net all do not go together"),
        "{out}"
    );
}

#[test]
fn asked_hosts_work_unprivileged() {
    let net = Net::new();
    let flag = format!("--ask-host=asked.test:{ASKED_PORT}");
    let url = asked_url("asked.test");
    let out = net.run_asking_as_nobody(&[&flag], &curl(&url));
    assert!(out.stdout.contains("no terminal to ask on"), "{out}");
    let out = net.run_asking_as_nobody(&[&flag, "--approve", "allow"], &curl(&url));
    assert_eq!(out.stdout, BODY, "{out}");
    assert_eq!(net.asked_hits(), 1);
}

/// Draws a fake host prompt, answers it on every descriptor of its
/// terminal, and keeps typing `y` there while the real question waits.
pub(super) const FAKE_AND_ANSWER: &str = r#"
printf '%s\r\n' "sluice: the sandboxed program asks to connect to a host" "  [y] allow once"
printf '  (1 request) ? '
printf 'y\r'; printf 'y\r' >&0; printf 'y\r' > /dev/tty
( while :; do printf y; printf y >&0; printf 'y\r' > /dev/tty; done ) 2>/dev/null &
writer=$!
curl -sS --max-time 120 "$1"; echo
kill $writer
"#;

#[test]
fn the_program_cannot_answer_its_own_host_prompt() {
    let net = Net::new();
    let policy = asking_policy(&net.fx, "true");
    let url = asked_url("asked.test");
    let program = ["/bin/sh", "-c", FAKE_AND_ANSWER, "sh", url.as_str()];
    let real = "for this host, 0 other question(s) queued";
    // Control: the person's `y` is what allows.
    let mut t = net.terminal_asking(&["--policy", &policy], &program);
    t.expect(real);
    t.send(b"y");
    t.expect("allowed once");
    t.wait();
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("asked.test", "allowed", "person")]
    );
    assert_eq!(net.asked_hits(), 1);
    // The attack: all the program's `y`s, and the person's Enter.
    let mut t = net.terminal_asking(&["--policy", &policy], &program);
    let before = t.expect(real);
    assert!(
        before.contains("(1 request) ? y"),
        "the fake prompt was shown: {before:?}"
    );
    assert!(!before.contains("allowed"), "{before:?}");
    t.send(b"\r");
    t.expect("denied: asked.test");
    let done = t.wait();
    assert!(!done.transcript.contains("allowed once"));
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("asked.test", "denied", "person")]
    );
    assert_eq!(net.asked_hits(), 1);
}
