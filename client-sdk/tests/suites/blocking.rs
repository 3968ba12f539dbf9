// The blocking client's suite, included by `blocking.rs` (Linux wire) and
// `blocking_stream.rs` (the macOS wire), which each name their `WIRE`.

use std::fs;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::Ordering;

use client_sdk::{Access, Client, Error, ErrorKind, OpenOptions, ProtocolError, QueryAnswer};
use fake_broker::{fd_flags, probe, probe_closed, temp_path, Config, FakeBroker};
use proto::fd::FdError;

fn client(broker: &FakeBroker) -> Client {
    Client::connect(broker.shared(), "blocking-test").unwrap()
}

fn read_only() -> OpenOptions {
    OpenOptions::new().read(true).clone()
}

fn typed(err: &io::Error) -> &Error {
    Error::from_io(err).unwrap_or_else(|| panic!("no typed error in {err:?}"))
}

#[test]
fn handshake_gives_session_and_policy_and_the_name() {
    let broker = FakeBroker::start();
    let client = client(&broker);
    assert_eq!(client.session(), fake_broker::SESSION);
    assert_eq!(client.policy().name, "fake");
    assert_eq!(client.policy().broker_rules, 3);
    assert_eq!(*broker.stats.names.lock().unwrap(), ["blocking-test"]);
}

#[test]
fn opens_a_real_file_and_reads_it_through_the_descriptor() {
    let broker = FakeBroker::start();
    let mut client = client(&broker);
    let path = temp_path("read");
    fs::write(&path, b"hello from outside").unwrap();

    let mut file = client.open(&path, &read_only()).unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello from outside");
    assert_eq!(
        fd_flags(file.as_fd()) & libc::FD_CLOEXEC,
        libc::FD_CLOEXEC,
        "a received descriptor is close-on-exec"
    );
    // Opened read-only, as asked: writing fails.
    assert!(file.write_all(b"x").is_err());
    fs::remove_file(&path).unwrap();
}

#[test]
fn creates_writes_and_appends() {
    let broker = FakeBroker::start();
    let mut client = client(&broker);
    let path = temp_path("write");

    let mut file = client
        .open(
            &path,
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600),
        )
        .unwrap();
    file.write_all(b"one\n").unwrap();
    drop(file);
    let mut file = client.open(&path, OpenOptions::new().append(true)).unwrap();
    file.write_all(b"two\n").unwrap();
    drop(file);
    assert_eq!(fs::read_to_string(&path).unwrap(), "one\ntwo\n");

    let mut both = client
        .open(&path, OpenOptions::new().read(true).write(true))
        .unwrap();
    both.write_all(b"ONE").unwrap();
    both.rewind().unwrap();
    let mut text = String::new();
    both.read_to_string(&mut text).unwrap();
    assert_eq!(text, "ONE\ntwo\n");
    fs::remove_file(&path).unwrap();
}

#[test]
fn opens_a_directory() {
    let broker = FakeBroker::start();
    let mut client = client(&broker);
    let dir = client
        .open(
            std::env::temp_dir(),
            OpenOptions::new().read(true).directory(true),
        )
        .unwrap();
    assert!(dir.metadata().unwrap().is_dir());
}

#[test]
fn query_and_ping() {
    let broker = FakeBroker::start();
    let mut client = client(&broker);
    assert_eq!(
        client.query("/home/me/notes", Access::Read).unwrap(),
        QueryAnswer::Allowed {
            rule: Some("/home/me/notes".into())
        }
    );
    assert_eq!(
        client.query("/home/me/ask", Access::Write).unwrap(),
        QueryAnswer::WouldAsk {
            rule: Some("ask-home".into())
        }
    );
    assert_eq!(
        client.query("/home/me/denied", Access::ReadWrite).unwrap(),
        QueryAnswer::Denied {
            reason: "the fake policy says no".into(),
            rule: Some("deny-secrets".into())
        }
    );
    // Relative paths go out as given.
    assert_eq!(
        client.query("rel/../x", Access::Read).unwrap(),
        QueryAnswer::Allowed {
            rule: Some("rel/../x".into())
        }
    );
    client.ping().unwrap();
    client.ping().unwrap();
}

#[test]
fn denied_is_permission_denied_with_the_typed_error_inside() {
    let broker = FakeBroker::start();
    let mut client = client(&broker);
    let err = client
        .open("/home/me/.ssh/denied", &read_only())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    match typed(&err) {
        Error::Denied { reason, rule } => {
            assert_eq!(reason, "the fake policy says no");
            assert_eq!(rule.as_deref(), Some("deny-secrets"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "denied by the broker: the fake policy says no (rule deny-secrets)"
    );
    // An answer, not a broken connection.
    client.ping().unwrap();
}

#[test]
fn broker_errors_map_to_io_kinds() {
    let broker = FakeBroker::start();
    let mut client = client(&broker);
    let err = client.open("/fake/missing", &read_only()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(matches!(
        typed(&err),
        Error::Broker {
            kind: ErrorKind::NotFound,
            ..
        }
    ));
    let err = client.open("/fake/busy", &read_only()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ResourceBusy);
    // A real open that fails in the broker.
    let missing = temp_path("missing");
    let err = client.open(&missing, &read_only()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    client.ping().unwrap();
}

#[test]
fn invalid_options_are_refused_before_anything_is_sent() {
    let broker = FakeBroker::start();
    let mut client = client(&broker);
    for opts in [
        OpenOptions::new(),
        OpenOptions::new().read(true).create(true).clone(),
        OpenOptions::new().read(true).truncate(true).clone(),
        OpenOptions::new().append(true).truncate(true).clone(),
    ] {
        let err = client.open("/tmp/x", &opts).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{opts:?}");
    }
    assert_eq!(broker.stats.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn a_descriptor_with_a_denial_is_closed_and_a_protocol_error() {
    let broker = FakeBroker::start();
    let mut client = client(&broker);
    let (planted, mut peer) = probe();
    broker.plant(planted);

    let err = client
        .open("/fake/fd-with-denied", &read_only())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(
        matches!(
            typed(&err),
            Error::Protocol(ProtocolError::Fd(FdError::Unexpected { received: 1 }))
        ),
        "{err:?}"
    );
    assert!(
        probe_closed(&mut peer),
        "the planted descriptor is still open"
    );
    // The connection is given up on.
    assert!(matches!(client.ping(), Err(Error::Protocol(_))));
}

#[test]
fn a_garbage_record_is_a_protocol_error_that_breaks_the_connection() {
    let broker = FakeBroker::start();
    let mut client = client(&broker);
    let err = client.query("/fake/garbage", Access::Read).unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ProtocolError::Frame(_))),
        "{err:?}"
    );
    let again = client.ping().unwrap_err();
    assert!(matches!(again, Error::Protocol(ProtocolError::Frame(_))));
    // A new connection over the same shared socket works.
    let mut fresh = client.try_clone().unwrap();
    fresh.ping().unwrap();
}

#[test]
fn answers_that_do_not_fit_the_request_are_protocol_errors() {
    let broker = FakeBroker::start();
    let mut client = client(&broker);
    let err = client.query("/fake/wrong-id", Access::Read).unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ProtocolError::UnknownId { .. })),
        "{err:?}"
    );
    let mut client = client.try_clone().unwrap();
    let err = client.query("/fake/pong", Access::Read).unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ProtocolError::Unexpected { .. })),
        "{err:?}"
    );
}

#[test]
fn the_broker_closing_mid_request_is_closed() {
    let broker = FakeBroker::start();
    let mut client = client(&broker);
    let err = client.open("/fake/hangup", &read_only()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    assert!(matches!(typed(&err), Error::Closed));
    assert!(matches!(client.ping(), Err(Error::Closed)));
}

#[test]
fn a_refused_version_is_refused() {
    let broker = FakeBroker::with(Config {
        version: 999,
        ..Config::default()
    });
    match Client::connect(broker.shared(), "old") {
        Err(Error::Refused { reason }) => assert!(reason.contains("999"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_connection_dropped_before_the_handshake_is_closed() {
    let broker = FakeBroker::with(Config {
        drop_connections: true,
        ..Config::default()
    });
    assert!(matches!(
        Client::connect(broker.shared(), "x"),
        Err(Error::Closed)
    ));
}

#[test]
fn not_under_sluice_without_a_seqpacket_socket() {
    let (r, _w) = nix::unistd::pipe().unwrap();
    match Client::connect(r.as_fd(), "x") {
        Err(Error::NotUnderSluice { why }) => assert!(why.contains("not a socket"), "{why}"),
        other => panic!("{other:?}"),
    }
    let (s, _t) = std::os::unix::net::UnixStream::pair().unwrap();
    assert!(matches!(
        Client::connect(s.as_fd(), "x"),
        Err(Error::NotUnderSluice { .. })
    ));
    let err = io::Error::from(Client::connect(r.as_fd(), "x").unwrap_err());
    assert_eq!(err.kind(), io::ErrorKind::Unsupported);
}

#[test]
fn the_shared_socket_is_left_inheritable() {
    let broker = FakeBroker::start();
    // As sluice run hands it over: without close-on-exec.
    // SAFETY: F_SETFD sets descriptor flags only.
    let rc = unsafe { libc::fcntl(broker.shared.as_raw_fd(), libc::F_SETFD, 0) };
    assert_eq!(rc, 0);
    let mut client = client(&broker);
    client.ping().unwrap();
    let other = client.try_clone().unwrap();
    drop(other);
    assert_eq!(fd_flags(broker.shared()) & libc::FD_CLOEXEC, 0);
}

#[test]
fn clones_are_independent_connections_for_other_threads() {
    let broker = FakeBroker::start();
    let client = client(&broker);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let mut mine = client.try_clone().unwrap();
            std::thread::spawn(move || {
                for j in 0..50 {
                    let path = format!("/t{i}/{j}");
                    assert_eq!(
                        mine.query(&path, Access::Read).unwrap(),
                        QueryAnswer::Allowed { rule: Some(path) }
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(broker.stats.connections.load(Ordering::SeqCst), 5);
}
