//! Network escapes: TCP, UDP and other socket families under `--net none`;
//! unlisted ports under `--net tcp:...`, for connect(2), TCP Fast Open (which
//! connects without connect(2)), bind(2) and listen(2) without bind (which binds
//! an ephemeral port); and AF_UNIX sockets that live outside the sandbox
//! (abstract names, and socket files outside the policy). The connect tests
//! run twice: as launched by default, and under `--transparent`, where every
//! `connect` is made by the connector in the program's sandbox
//! (`sandbox_child::connector`), named sockets judged by the supervisor.
//!
//! Every listener is opened by the test on an ephemeral loopback port (or a unique
//! socket name), so tests run in parallel. After a blocked attempt the listener is
//! checked from outside: nothing may have arrived.

use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};

use sluice_tests::Fixture;

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

fn tcp_listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    (listener, port)
}

/// A port that was free a moment ago (for binding from inside the sandbox).
fn free_port() -> String {
    tcp_listener().1
}

/// Calls `next` on a non-blocking socket until nothing is pending; how
/// many times it got something. `what` names the call in a panic.
fn drain<T>(what: &str, mut next: impl FnMut() -> std::io::Result<T>) -> usize {
    let mut count = 0;
    loop {
        match next() {
            Ok(_) => count += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return count,
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// Accepts everything pending; loopback connects complete before connect returns.
fn drain_tcp(listener: &TcpListener) -> usize {
    drain("accept", || listener.accept())
}

/// A non-blocking listener on the socket file `path` (drained by the test).
fn unix_listener(path: &str) -> UnixListener {
    let listener = UnixListener::bind(path).unwrap();
    listener.set_nonblocking(true).unwrap();
    listener
}

fn drain_unix(listener: &UnixListener) -> usize {
    drain("accept", || listener.accept())
}

fn udp_socket() -> (UdpSocket, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let port = socket.local_addr().unwrap().port().to_string();
    (socket, port)
}

fn drain_udp(socket: &UdpSocket) -> usize {
    drain("recv", || socket.recv(&mut [0u8; 64]))
}

#[test]
fn tcp_is_blocked_by_default() {
    let fx = Fixture::new(PROBE);
    let (listener, port) = tcp_listener();
    fx.direct(&["tcp-connect", "127.0.0.1", &port]).assert_ok();
    fx.sluice(&["--net", "all"], &["tcp-connect", "127.0.0.1", &port])
        .assert_ok();
    assert_eq!(drain_tcp(&listener), 2, "controls did not arrive");

    fx.sluice(&[], &["tcp-connect", "127.0.0.1", &port])
        .assert_blocked();
    fx.sluice(&["--net", "none"], &["tcp-connect", "127.0.0.1", &port])
        .assert_blocked();
    assert_eq!(drain_tcp(&listener), 0, "a connection got through");
}

#[test]
fn udp_is_blocked_by_default() {
    let fx = Fixture::new(PROBE);
    let (socket, port) = udp_socket();
    fx.direct(&["udp-send", "127.0.0.1", &port]).assert_ok();
    fx.sluice(&["--net", "all"], &["udp-send", "127.0.0.1", &port])
        .assert_ok();
    drain_udp(&socket);

    fx.sluice(&[], &["udp-send", "127.0.0.1", &port])
        .assert_blocked();
    assert_eq!(drain_udp(&socket), 0, "a datagram got through");
}

/// The launch modes the connect tests run in.
const MODES: [&[&str]; 2] = [&[], &["--transparent"]];

/// `args` then the mode's own.
fn with<'a>(mode: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
    args.iter().chain(mode).copied().collect()
}

#[test]
fn tcp_mode_connects_only_to_listed_ports() {
    let fx = Fixture::new(PROBE);
    let (allowed, allowed_port) = tcp_listener();
    let (other, other_port) = tcp_listener();
    let net = format!("tcp:{allowed_port}");
    fx.direct(&["tcp-connect", "127.0.0.1", &other_port])
        .assert_ok();
    for mode in MODES {
        let args = with(mode, &["--net", &net]);
        fx.sluice(&args, &["tcp-connect", "127.0.0.1", &allowed_port])
            .assert_ok();
        assert_eq!(
            drain_tcp(&allowed),
            1,
            "the listed port did not connect ({mode:?})"
        );
        drain_tcp(&other);

        fx.sluice(&args, &["tcp-connect", "127.0.0.1", &other_port])
            .assert_blocked();
        assert_eq!(drain_tcp(&other), 0, "a connection got through ({mode:?})");
    }
}

#[test]
fn udp_is_blocked_in_tcp_mode() {
    let fx = Fixture::new(PROBE);
    let (socket, port) = udp_socket();
    fx.sluice(&["--net", "all"], &["udp-send", "127.0.0.1", &port])
        .assert_ok();
    drain_udp(&socket);

    // Even to the very port listed for TCP.
    let net = format!("tcp:{port}");
    fx.sluice(&["--net", &net], &["udp-send", "127.0.0.1", &port])
        .assert_blocked();
    assert_eq!(drain_udp(&socket), 0, "a datagram got through");
}

#[test]
fn tcp_mode_binds_only_listed_ports() {
    let fx = Fixture::new(PROBE);
    let (bind_ok, bind_other, connect) = (free_port(), free_port(), free_port());
    let net = format!("tcp:{connect},bind:{bind_ok}");
    fx.direct(&["tcp-bind", &bind_other]).assert_ok();
    fx.sluice(&["--net", &net], &["tcp-bind", &bind_ok])
        .assert_ok();

    fx.sluice(&["--net", &net], &["tcp-bind", &bind_other])
        .assert_blocked();
    fx.sluice(&["--net", &net], &["tcp-bind", "0"])
        .assert_blocked();
    fx.sluice(&[], &["tcp-bind", &bind_ok]).assert_blocked();
}

/// KNOWN GAP, not yet fixed: listen(2) on an unbound TCP socket makes the
/// kernel bind an ephemeral port without bind(2), so Landlock's bind-port
/// check never runs (an open upstream Landlock issue). seccomp cannot tell a
/// TCP listen from an AF_UNIX one. Run with `cargo test -- --ignored`.
#[test]
#[ignore = "known gap: listen() autobinds an ephemeral TCP port past Landlock (ARCHITECTURE.md)"]
fn tcp_mode_refuses_listen_without_bind() {
    let fx = Fixture::new(PROBE);
    let net = format!("tcp:{},bind:{}", free_port(), free_port());
    fx.direct(&["tcp-listen-unbound"]).assert_ok();
    fx.sluice(&["--net", &net], &["tcp-listen-unbound"])
        .assert_blocked();
}

#[test]
fn tcp_fast_open_to_an_unlisted_port_is_blocked() {
    let fx = Fixture::new(PROBE);
    let (allowed, allowed_port) = tcp_listener();
    let (other, other_port) = tcp_listener();
    let net = format!("tcp:{allowed_port}");
    // MSG_FASTOPEN connects without connect(2), through any of these calls,
    // so Landlock never sees the port. sluice refuses the flag in tcp mode
    // (seccomp cannot read the destination); a plain connect to a listed port
    // is the in-sandbox control.
    for via in ["sendto", "sendmsg", "sendmmsg"] {
        fx.direct(&["tcp-fastopen", "127.0.0.1", &other_port, via])
            .assert_ok();
        fx.sluice(
            &["--net", &net],
            &["tcp-connect", "127.0.0.1", &allowed_port],
        )
        .assert_ok();
        assert_eq!(drain_tcp(&allowed), 1, "the listed port did not connect");
        fx.sluice(
            &["--net", &net],
            &["tcp-fastopen", "127.0.0.1", &allowed_port, via],
        )
        .assert_blocked();
        assert_eq!(drain_tcp(&allowed), 0, "fast open got through ({via})");
        assert_eq!(drain_tcp(&other), 1, "the control did not arrive");

        fx.sluice(
            &["--net", &net],
            &["tcp-fastopen", "127.0.0.1", &other_port, via],
        )
        .assert_blocked();
        assert_eq!(drain_tcp(&other), 0, "a connection got through ({via})");
    }
}

#[test]
fn other_socket_families_are_refused() {
    let fx = Fixture::new(PROBE);
    let tcp_mode = format!("tcp:{}", free_port());
    for kind in ["inet6-stream", "netlink", "packet", "inet-raw"] {
        fx.direct(&["socket", kind]).assert_ok();
        fx.sluice(&[], &["socket", kind]).assert_blocked();
    }
    // TCP mode grants TCP over IPv4 and IPv6, nothing else.
    fx.sluice(&["--net", &tcp_mode], &["socket", "inet6-stream"])
        .assert_ok();
    for kind in ["netlink", "packet", "inet-raw"] {
        fx.sluice(&["--net", &tcp_mode], &["socket", kind])
            .assert_blocked();
    }
}

#[test]
fn abstract_unix_socket_outside_is_blocked() {
    let fx = Fixture::new(PROBE);
    let name = format!("sluice-test-{}-abstract", fx.root().display());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    fx.direct(&["abstract-connect", &name]).assert_ok();
    assert_eq!(drain_unix(&listener), 1, "the control did not arrive");
    for mode in MODES {
        // AF_UNIX itself works inside: an abstract socket of the sandbox's own.
        let own = format!("{name}-own");
        fx.sluice(mode, &["abstract-self", &own]).assert_ok();

        fx.sluice(mode, &["abstract-connect", &name])
            .assert_blocked();
        fx.sluice(&with(mode, &["--net", "all"]), &["abstract-connect", &name])
            .assert_blocked();
        assert_eq!(
            drain_unix(&listener),
            0,
            "a connection got through ({mode:?})"
        );
    }
}

/// Landlock ABI 7 has no right for connecting to a socket file; what stops
/// these connects is the policy-built root: outside the allowed trees the
/// socket files do not exist in the sandbox (`sandbox-child/src/root.rs`).
/// Under `--transparent` the host's tree is in view, and the supervisor
/// refuses them (`broker/transparent/connect.rs`).
#[test]
fn unix_socket_files_outside_the_policy_are_blocked() {
    let fx = Fixture::new(PROBE);
    let inside_path = fx.ws("ok.sock");
    let inside = unix_listener(&inside_path);
    let targets = [fx.outside("agent.sock"), fx.home(".gnupg/S.gpg-agent")];
    let listeners: Vec<UnixListener> = targets.iter().map(|path| unix_listener(path)).collect();
    for path in &targets {
        fx.direct(&["unix-connect", path]).assert_ok();
    }
    for listener in &listeners {
        assert_eq!(drain_unix(listener), 1, "a control did not arrive");
    }
    for mode in MODES {
        fx.sluice(mode, &["unix-connect", &inside_path]).assert_ok();
        assert_eq!(
            drain_unix(&inside),
            1,
            "the control did not arrive ({mode:?})"
        );
        // Relative to the working directory (the workspace) as well.
        fx.sluice(mode, &["unix-connect", "ok.sock"]).assert_ok();
        assert_eq!(drain_unix(&inside), 1, "the relative control ({mode:?})");

        for (path, listener) in targets.iter().zip(&listeners) {
            fx.sluice(mode, &["unix-connect", path]).assert_blocked();
            assert_eq!(
                drain_unix(listener),
                0,
                "a connection to {path} got through ({mode:?})"
            );
        }
    }
    // Each refusal under --transparent is on the record.
    let records: String = std::fs::read_dir(fx.audit_dir())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    for path in &targets {
        assert!(
            records
                .lines()
                .any(|l| l.contains(r#""via":"seccomp:connect""#)
                    && l.contains(r#""decision":"denied""#)
                    && l.contains(&format!(r#""path_opened":"{path}""#))),
            "no refusal recorded for {path}"
        );
    }
    // A symlink in the workspace to a socket outside is judged where it
    // leads.
    let link = fx.ws("agent-link.sock");
    std::os::unix::fs::symlink(&targets[0], &link).unwrap();
    fx.sluice(&["--transparent"], &["unix-connect", &link])
        .assert_blocked();
    assert_eq!(drain_unix(&listeners[0]), 0, "through the symlink");
}

/// A datagram socket bound to `path`, non-blocking (drained by the test).
fn unix_datagram(path: &str) -> UnixDatagram {
    let socket = UnixDatagram::bind(path).unwrap();
    socket.set_nonblocking(true).unwrap();
    socket
}

fn drain_datagrams(socket: &UnixDatagram) -> usize {
    drain("recv", || socket.recv(&mut [0u8; 64]))
}

/// Every way the probe sends a datagram to a socket file.
const DATAGRAM_WAYS: [&str; 5] = ["sendto", "sendmsg", "sendmmsg", "raw", "pair"];

/// A datagram needs no `connect`: it is sent to the socket file named in
/// `sendto`, or in a `sendmsg` header no filter can read. By default the
/// policy-built root leaves nothing outside the policy to name; under
/// `--transparent` the host's tree is in view, so AF_UNIX datagram sockets
/// are not made at all (`/dev/log`, journald's socket and the like stay out
/// of reach). Controls: outside sluice every way arrives, and by default a
/// datagram socket in the workspace gets its datagrams.
#[test]
fn datagrams_to_a_socket_file_outside_the_policy_are_blocked() {
    let fx = Fixture::new(PROBE);
    let outside_path = fx.outside("log.sock");
    let outside = unix_datagram(&outside_path);
    let inside_path = fx.ws("log.sock");
    let inside = unix_datagram(&inside_path);
    for via in DATAGRAM_WAYS {
        fx.direct(&["unix-send", &outside_path, via]).assert_ok();
        assert_eq!(drain_datagrams(&outside), 1, "the control ({via})");
        fx.sluice(&[], &["unix-send", &inside_path, via])
            .assert_ok();
        assert_eq!(drain_datagrams(&inside), 1, "inside the workspace ({via})");
        for mode in MODES {
            fx.sluice(mode, &["unix-send", &outside_path, via])
                .assert_blocked();
            assert_eq!(
                drain_datagrams(&outside),
                0,
                "a datagram got through ({via}, {mode:?})"
            );
        }
        // The price under --transparent: none inside the policy either.
        let out = fx.sluice(&["--transparent"], &["unix-send", &inside_path, via]);
        out.assert_blocked();
        assert!(out.stdout.contains("Operation not permitted"), "{out}");
    }
}

/// Under `--transparent`, the program installs a seccomp filter of its own
/// that hands `connect` to a listener it holds and answers `CONTINUE`: the
/// newest filter takes the call, so this would bypass the supervisor. The
/// deny filter refuses the program any listener. Control: outside sluice
/// the same program connects.
#[test]
fn a_listener_of_the_programs_own_cannot_take_its_connects() {
    let fx = Fixture::new(PROBE);
    let outside_path = fx.outside("own-listener.sock");
    let outside = unix_listener(&outside_path);
    fx.direct(&["own-listener-connect", &outside_path])
        .assert_ok();
    assert_eq!(drain_unix(&outside), 1, "the control did not connect");
    for mode in MODES {
        let out = fx.sluice(mode, &["own-listener-connect", &outside_path]);
        out.assert_blocked();
        assert!(out.stdout.contains("seccomp(NEW_LISTENER)"), "{out}");
        assert_eq!(
            drain_unix(&outside),
            0,
            "a connection got through ({mode:?})"
        );
    }
}

/// Under `--transparent`, a thread rewrites the address between a socket
/// inside the workspace and one outside while another connects: the check
/// and the connect use one copy, so the outside one never gets a
/// connection, and the inside one does (the control).
#[test]
fn under_transparent_a_swapped_socket_address_never_reaches_a_refused_socket() {
    let fx = Fixture::new(PROBE);
    let inside_path = fx.ws("in.sock");
    let inside = unix_listener(&inside_path);
    let outside_path = fx.outside("race.sock");
    let outside = unix_listener(&outside_path);
    let (mut reached_inside, mut reached_outside) = (0, 0);
    // Drained between runs: the backlog is small.
    for _ in 0..10 {
        let out = fx.sluice(
            &["--transparent"],
            &["connect-race", &inside_path, &outside_path, "100"],
        );
        assert_eq!(out.code(), 0, "{out}");
        reached_inside += drain_unix(&inside);
        reached_outside += drain_unix(&outside);
    }
    assert_eq!(
        reached_outside, 0,
        "a swapped address reached the refused socket"
    );
    assert!(reached_inside > 0, "no connect reached the allowed socket");
}

/// Under `--transparent`, a thread keeps replacing the connecting
/// descriptor (`dup2`) with a unix socket, then a TCP one, while another
/// connects it to a socket file outside the policy: whichever socket the
/// supervisor took is the one connected, so nothing reaches the file.
#[test]
fn under_transparent_a_swapped_descriptor_never_reaches_a_refused_socket() {
    let fx = Fixture::new(PROBE);
    let outside_path = fx.outside("fd-race.sock");
    let outside = unix_listener(&outside_path);
    let net = format!("tcp:{}", free_port());
    let mut reached = 0;
    for _ in 0..10 {
        let out = fx.sluice(
            &["--transparent", "--net", &net],
            &["connect-fd-race", &outside_path, "200"],
        );
        assert_eq!(out.code(), 0, "{out}");
        reached += drain_unix(&outside);
    }
    assert_eq!(
        reached, 0,
        "a swapped descriptor reached the refused socket"
    );
    // Control: without the sandbox the same program does reach it. A
    // single run can miss on a loaded machine (the swapper may sit on a TCP
    // socket for all of a run's 200 fast connects), so it gets a few.
    let control = (0..20).any(|_| {
        let out = fx.direct(&["connect-fd-race", &outside_path, "200"]);
        assert_eq!(out.code(), 0, "{out}");
        drain_unix(&outside) > 0
    });
    assert!(control, "the control never connected in 20 runs");
}
