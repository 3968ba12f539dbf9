use super::http::parse;
use super::judge::reachable;
use super::*;

fn hosts(rules: &[&str]) -> HostPolicy {
    HostPolicy {
        allow: rules.iter().map(|r| r.parse().unwrap()).collect(),
        ask: policies::AskHosts::No,
    }
}

fn ctx(rules: &[&str]) -> Context {
    Context {
        hosts: hosts(rules),
        pipes: Arc::new(Semaphore::new(SPLICED_DIRECTIONS)),
        upstream: Upstream::Direct,
        audit: None,
        approvals: None,
        told: Mutex::new(HashSet::new()),
    }
}

fn judge(c: &Context, host: &str, port: u16) -> Verdict {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(c.judge(&Host::parse(host).unwrap(), port))
}

#[test]
fn connect_requests_parse() {
    let r = parse(b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(r.connect);
    assert_eq!(r.host, Host::Name("api.example.com".into()));
    assert_eq!(r.port, 443);
    let r = parse(b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(r.host, Host::Ip("::1".parse().unwrap()));
    assert!(parse(b"CONNECT api.example.com HTTP/1.1\r\n\r\n").is_err());
    assert!(parse(b"CONNECT a.com:0 HTTP/1.1\r\n\r\n").is_err());
}

#[test]
fn plain_requests_are_rewritten_to_origin_form_with_close() {
    let r = parse(
        b"GET http://Example.com:8080/a?b HTTP/1.1\r\nHost: example.com:8080\r\n\
          Proxy-Connection: keep-alive\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n",
    )
    .unwrap();
    assert!(!r.connect);
    assert_eq!(r.host, Host::Name("example.com".into()));
    assert_eq!(r.port, 8080);
    assert_eq!(
        String::from_utf8(r.forward).unwrap(),
        "GET /a?b HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    let r = parse(b"GET http://example.com HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(r.port, 80);
    assert!(String::from_utf8(r.forward)
        .unwrap()
        .starts_with("GET / HTTP/1.0\r\n"));
    for bad in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"GET https://example.com/ HTTP/1.1\r\n\r\n",
        b"GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n",
        b"GET http://exa mple.com/ HTTP/1.1\r\n\r\n",
        b"GET http://example.com/ HTTP/2\r\n\r\n",
    ] {
        assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

/// Domain fronting in plain HTTP: the request line names an allowed host,
/// its `Host` header (or a second one, or one folded over two lines)
/// another name the same server hosts. The judged host alone is sent on.
/// Control: a request whose header agrees keeps it, once.
#[test]
fn the_host_header_sent_on_is_the_host_judged() {
    let sent = |head: &[u8]| String::from_utf8(parse(head).unwrap().forward).unwrap();
    for head in [
        &b"GET http://allowed.example/ HTTP/1.1\r\nHost: denied.example\r\n\r\n"[..],
        b"GET http://allowed.example/ HTTP/1.1\r\nAccept: */*\r\nhost:denied.example\r\n\r\n",
        b"GET http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\nHost: denied.example\r\n\r\n",
        b"GET http://allowed.example/ HTTP/1.1\r\nHOST : denied.example\r\n\r\n",
    ] {
        let out = sent(head);
        assert!(!out.contains("denied"), "{out}");
        assert_eq!(out.matches("Host: allowed.example\r\n").count(), 1, "{out}");
    }
    let folded =
        b"GET http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\n denied.example\r\n\r\n";
    assert!(parse(folded).is_err());
    let out =
        sent(b"GET http://allowed.example:8080/x HTTP/1.1\r\nHost: allowed.example:8080\r\n\r\n");
    assert_eq!(
        out,
        "GET /x HTTP/1.1\r\nHost: allowed.example:8080\r\nConnection: close\r\n\r\n"
    );
    let out = sent(b"GET http://[::1]/ HTTP/1.1\r\n\r\n");
    assert!(
        out.starts_with("GET / HTTP/1.1\r\nHost: [::1]\r\n"),
        "{out}"
    );
}

/// A header after a bare LF or CR (or a NUL) is a header of its own to
/// many servers, not part of the line the proxy read: refused, in a
/// header and after the request line's version. Control: the same head
/// with CRLF passes.
#[test]
fn a_stray_line_end_in_the_head_is_refused() {
    for head in [
        &b"GET http://allowed.example/ HTTP/1.1\r\nX-A: a\nHost: denied.example\r\n\r\n"[..],
        b"GET http://allowed.example/ HTTP/1.1\nHost:denied.example\r\n\r\n",
        b"GET http://allowed.example/ HTTP/1.1\r\nX-A: a\rHost: denied.example\r\n\r\n",
        b"GET http://allowed.example/ HTTP/1.1\r\nX-A: a\0Host: denied.example\r\n\r\n",
        b"\nGET http://allowed.example/ HTTP/1.1\r\n\r\n",
        b"CONNECT allowed.example:443 HTTP/1.1\r\nX-A: \r\r\n\r\n",
    ] {
        let err = parse(head).unwrap_err();
        assert!(err.contains("in the request head"), "{err}");
    }
    let ok = b"GET http://allowed.example/ HTTP/1.1\r\nX-A: a\r\nHost: denied.example\r\n\r\n";
    let out = String::from_utf8(parse(ok).unwrap().forward).unwrap();
    assert!(!out.contains("denied"), "{out}");
}

#[test]
fn ip_literals_pass_only_where_listed() {
    let c = ctx(&["localhost", "127.0.0.1:5432"]);
    assert!(matches!(
        judge(&c, "127.0.0.1", 443),
        Verdict::Refuse { .. }
    ));
    assert!(matches!(
        judge(&c, "127.0.0.1", 5432),
        Verdict::Allow { .. }
    ));
    assert!(matches!(judge(&c, "[::1]", 443), Verdict::Refuse { .. }));
}

#[test]
fn names_connect_only_to_what_they_resolve_to() {
    // `localhost` resolves through /etc/hosts, on any machine.
    let c = ctx(&["localhost"]);
    match judge(&c, "localhost", 443) {
        Verdict::Allow { addrs, .. } => assert!(addrs.iter().all(|a| a.ip().is_loopback())),
        other => panic!("{other:?}"),
    }
    assert!(matches!(judge(&c, "localhost", 22), Verdict::Refuse { .. }));
    assert!(matches!(
        judge(&c, "other.invalid", 443),
        Verdict::Refuse { .. }
    ));
    // A *. rule never reaches loopback through a name.
    let c = ctx(&["*.localhost"]);
    if let Verdict::Allow { addrs, .. } = judge(&c, "x.localhost", 443) {
        panic!("allowed {addrs:?}");
    }
}

#[test]
fn the_hint_names_the_port_only_when_needed() {
    let h = |t| Host::parse(t).unwrap();
    assert_eq!(allow_hint(&h("a.com"), 443), "a.com");
    assert_eq!(allow_hint(&h("a.com"), 8443), "a.com:8443");
    assert_eq!(allow_hint(&h("127.0.0.1"), 443), "127.0.0.1:443");
}

/// The proxy's SOCKS5 side given `sent`: what it understood, and every
/// byte it answered.
fn socks_request(sent: &[u8]) -> (Option<(Host, u16)>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut program, mut proxy) = tokio::io::duplex(4096);
        program.write_all(sent).await.unwrap();
        program.shutdown().await.unwrap();
        let asked = super::socks::request(&mut proxy).await;
        drop(proxy);
        let mut answered = Vec::new();
        program.read_to_end(&mut answered).await.unwrap();
        (asked.map(|a| (a.host, a.port)), answered)
    })
}

#[test]
fn socks5_connect_requests_parse() {
    let h = |t| Host::parse(t).unwrap();
    // A name, the way curl --socks5-hostname sends it.
    let mut sent = vec![5, 1, 0, 5, 1, 0, 3, 15];
    sent.extend_from_slice(b"api.example.com");
    sent.extend_from_slice(&443u16.to_be_bytes());
    let (asked, answered) = socks_request(&sent);
    assert_eq!(asked, Some((h("api.example.com"), 443)));
    assert_eq!(answered, [5, 0]);
    // Address literals, judged as literals.
    let (asked, _) = socks_request(&[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]);
    assert_eq!(asked, Some((h("127.0.0.1"), 8080)));
    let mut sent = vec![5, 2, 2, 0, 5, 1, 0, 4];
    sent.extend_from_slice(&"::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    sent.extend_from_slice(&[0, 80]);
    assert_eq!(socks_request(&sent).0, Some((h("[::1]"), 80)));
    // A literal written as a name is a literal.
    let mut sent = vec![5, 1, 0, 5, 1, 0, 3, 9];
    sent.extend_from_slice(b"127.0.0.1");
    sent.extend_from_slice(&[0, 80]);
    assert_eq!(socks_request(&sent).0, Some((h("127.0.0.1"), 80)));
}

#[test]
fn socks5_requests_the_proxy_does_not_serve_are_answered_and_closed() {
    let refused = |reply: u8| vec![5, 0, 5, reply, 0, 1, 0, 0, 0, 0, 0, 0];
    // Only "no authentication" is offered: a client wanting a password
    // is told no method fits.
    assert_eq!(socks_request(&[5, 1, 2]), (None, vec![5, 0xff]));
    // BIND and UDP ASSOCIATE: command not supported.
    for command in [2, 3] {
        let (asked, answered) = socks_request(&[5, 1, 0, 5, command, 0, 1, 127, 0, 0, 1, 0, 80]);
        assert_eq!((asked, answered), (None, refused(7)));
    }
    // An unknown address type, an invalid name, port 0.
    assert_eq!(socks_request(&[5, 1, 0, 5, 1, 0, 9]), (None, refused(8)));
    let mut sent = vec![5, 1, 0, 5, 1, 0, 3, 8];
    sent.extend_from_slice(b"a b.test");
    sent.extend_from_slice(&[0, 80]);
    assert_eq!(socks_request(&sent), (None, refused(8)));
    let (asked, answered) = socks_request(&[5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, 0, 0]);
    assert_eq!((asked, answered), (None, refused(8)));
    // Cut short: nothing more is said.
    assert_eq!(socks_request(&[5, 1, 0, 5, 1]), (None, vec![5, 0]));
}

#[test]
fn names_not_named_exactly_never_reach_this_machine_or_link_local_addresses() {
    let ip = |t: &str| t.parse::<IpAddr>().unwrap();
    // Through a `*.` rule or a person's answer: never loopback, in any of
    // the forms a resolver may give, nor a cloud's metadata address.
    for bad in [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "::",
        "::ffff:0.0.0.0",
        "169.254.169.254",
        "::ffff:169.254.169.254",
        "fe80::1",
        "100.100.100.200",
        "::ffff:100.100.100.200",
        "168.63.129.16",
        "192.0.0.192",
        "fd00:ec2::254",
        "fd20:ce::254",
        // Translated or tunnelled to an IPv4 address: NAT64, IPv4-compatible.
        "64:ff9b::7f00:1",
        "64:ff9b::169.254.169.254",
        "64:ff9b:1::a9fe:a9fe",
        "64:ff9b::100.100.100.200",
        "::127.0.0.1",
        "::169.254.169.254",
    ] {
        assert!(!reachable(ip(bad), false), "{bad} reachable through a name");
    }
    // Unspecified, whatever carries it and whoever names it.
    for nothing in ["64:ff9b::", "64:ff9b::0.0.0.0"] {
        assert!(!reachable(ip(nothing), true), "{nothing}");
    }
    // Named exactly, a metadata service is the person's to reach.
    for service in super::judge::METADATA_SERVICES {
        assert!(reachable(service, true), "{service}");
    }
    // An exact rule may name a loopback service, never "any address".
    assert!(reachable(ip("127.0.0.1"), true));
    assert!(reachable(ip("::ffff:127.0.0.1"), true));
    assert!(!reachable(ip("0.0.0.0"), true));
    assert!(!reachable(ip("::ffff:0.0.0.0"), true));
    // Control: ordinary addresses pass either way.
    for good in [
        "93.184.215.14",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
        "10.1.2.3",
        "100.100.100.201",
        "fd00:ec2::253",
        "64:ff9b::93.184.215.14",
        "::2",
        "2001:db8::7f00:1",
    ] {
        assert!(reachable(ip(good), false), "{good}");
        assert!(reachable(ip(good), true), "{good}");
    }
}
