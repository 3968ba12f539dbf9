//! The network by host name through the proxy's SOCKS5 side: `socks5h`
//! (the name sent) and `socks5` (the address sent) reach an allowed host and
//! nothing else, and a stacked session's SOCKS5 narrows the outer hosts.
//! Each attack has its control: the same request to an allowed host. The
//! servers, the resolver and the fixture are `net_hosts.rs`'s.

use super::net_ask::{decided, last_connections, triple};
use super::net_hosts::{curl_socks, strs, Net, BODY};

#[test]
fn socks5_reaches_an_allowed_host_and_refuses_others() {
    let net = Net::new();
    let allow = net.allow("allowed.test");
    let out = net.run(
        &[&allow],
        &strs(&curl_socks("socks5h", &net.url("allowed.test"))),
    );
    out.assert_code(0);
    assert_eq!(out.stdout, BODY, "{out}");
    let recs = last_connections(&net.fx);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0]["via"], "socks5");
    assert_eq!(recs[0]["decision"], "allowed");
    assert_eq!(recs[0]["address"], format!("127.0.0.1:{}", net.server.port));
    assert!(
        recs[0]["received"].as_u64().unwrap() >= BODY.len() as u64,
        "{recs:#?}"
    );
    // A name not listed: refused before any connection, and sluice says so.
    let before = net.server.hits();
    let out = net.run(
        &[&allow],
        &strs(&curl_socks("socks5h", &net.url("other.test"))),
    );
    assert_ne!(out.code(), 0, "{out}");
    assert!(!out.stdout.contains(BODY), "{out}");
    assert!(
        out.stderr
            .contains("sluice: refused the program's connection to other.test"),
        "{out}"
    );
    assert_eq!(net.server.hits(), before);
    assert_eq!(
        decided(&last_connections(&net.fx)),
        [triple("other.test", "denied", "rule")]
    );
    // The program resolving the allowed name itself sends an address
    // literal: refused, as no rule names the address...
    let out = net.run(
        &[&allow],
        &strs(&curl_socks("socks5", &net.url("allowed.test"))),
    );
    assert_ne!(out.code(), 0, "{out}");
    assert_eq!(net.server.hits(), before);
    // ...and let through where one does (the control).
    let out = net.run(
        &[&net.allow("127.0.0.1")],
        &strs(&curl_socks("socks5", &net.url("allowed.test"))),
    );
    assert_eq!(out.stdout, BODY, "{out}");
}
#[test]
fn socks5_in_a_stacked_session_narrows_the_outer_hosts() {
    let net = Net::new();
    let sluice = sluice_tests::sluice_bin();
    let sluice = sluice.to_str().unwrap();
    // The inner proxy's port, as its HTTPS_PROXY names it.
    let script = format!(
        "p=\"socks5h://${{HTTPS_PROXY#http://}}\"; \
         curl -sS --max-time 60 -x \"$p\" {}; curl -sS --max-time 60 -x \"$p\" {}; \
         echo \"exit $?\"",
        net.url("allowed.test"),
        net.url("other.test"),
    );
    let outer = [net.allow("allowed.test"), net.allow("other.test")];
    let inner = net.allow("allowed.test");
    let before = net.server.hits();
    let program = [sluice, "run", &inner, "--", "sh", "-c", &script];
    let out = net.run(&strs(&outer), &program);
    // Control: allowed by both, reached through both.
    assert!(out.stdout.starts_with(BODY), "{out}");
    // other.test, allowed by the outer session only: the inner refuses it.
    assert_eq!(out.stdout.matches(BODY).count(), 1, "{out}");
    assert!(!out.stdout.trim_end().ends_with("exit 0"), "{out}");
    assert!(
        out.stderr
            .contains("sluice: refused the program's connection to other.test"),
        "{out}"
    );
    assert_eq!(net.server.hits(), before + 1);
}
