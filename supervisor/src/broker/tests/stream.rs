//! The broker serving the stream wire ([`Wire::Stream`]: a datagram shared
//! socket, stream connections), macOS's configuration, on Linux: the same
//! broker, the same SDK, only the sockets' types differ. Each attack runs
//! against both wires, the records wire (Linux's) being the control.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use client_sdk::{Client, OpenOptions};
use proto::socket::{send_message, Blocking, FrameReader, SocketError, Wire};
use proto::{ClientMessage, ServerMessage, PROTOCOL_VERSION};

use super::super::Broker;
use super::Fixture;

const WIRES: [Wire; 2] = [Wire::Records, Wire::Stream];

/// A broker serving `fixture`'s rules on a shared socket of `wire`; the
/// program's end of it.
fn serve(fixture: &Fixture, wire: Wire) -> (Broker, OwnedFd) {
    let (ours, theirs) = wire.shared_pair().unwrap();
    let broker = Broker::start(ours, Arc::new(fixture.shared(false, None))).unwrap();
    (broker, theirs)
}

/// Sends `Connect` with `private` on `shared`, then `Hello` on `client`;
/// what the broker answers (or how the connection failed).
fn hello(
    shared: &OwnedFd,
    wire: Wire,
    client: &OwnedFd,
    private: OwnedFd,
) -> Result<ServerMessage, SocketError> {
    send_message(
        shared.as_fd(),
        &ClientMessage::Connect,
        Some(private.as_fd()),
        Blocking::Yes,
    )?;
    drop(private);
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client: "test".into(),
    };
    send_message(client.as_fd(), &hello, None, Blocking::Yes)?;
    // A broker that no longer accepts fails the test instead of hanging it.
    let limit = nix::sys::time::TimeVal::new(20, 0);
    nix::sys::socket::setsockopt(client, nix::sys::socket::sockopt::ReceiveTimeout, &limit)
        .unwrap();
    FrameReader::new(wire)
        .recv(client.as_fd(), Blocking::Yes, |_: &ServerMessage| false)
        .map(|(m, _)| m)
}

/// The SDK over the stream wire gets what it gets over records: a file
/// the rules allow (its descriptor, passed with `SCM_RIGHTS` on the
/// frame's first byte), a refusal for one they deny.
#[test]
fn the_sdk_is_served_the_same_over_both_wires() {
    let fixture = Fixture::new();
    for wire in WIRES {
        let (broker, theirs) = serve(&fixture, wire);
        assert_eq!(Wire::of_shared(theirs.as_fd()).unwrap(), Some(wire));
        let mut client = Client::connect(theirs.as_fd(), "test").unwrap();
        let mut text = String::new();
        client
            .open(fixture.path("allowed"), OpenOptions::new().read(true))
            .unwrap_or_else(|e| panic!("{wire:?}: {e}"))
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "allowed", "{wire:?}");
        let err = client
            .open(fixture.path("denied"), OpenOptions::new().read(true))
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{wire:?}");
        client.ping().unwrap();
        drop(client);
        broker.stop();
    }
}

/// A private connection of the other wire's type is never spoken to (a
/// seqpacket socket on the stream wire, a stream on the records wire):
/// no Welcome, the broker closes it. Control: the wire's own type is
/// welcomed.
#[test]
fn a_connection_of_the_wrong_type_is_not_served() {
    let fixture = Fixture::new();
    for wire in WIRES {
        let (broker, theirs) = serve(&fixture, wire);
        let other = match wire {
            Wire::Records => Wire::Stream,
            Wire::Stream => Wire::Records,
        };
        let (client, private) = other.pair().unwrap();
        let answer = hello(&theirs, other, &client, private);
        // Closed by the broker: the end of file, or (a stream closed with
        // our Hello unread) a reset.
        let gone = |e: &std::io::Error| {
            use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
            matches!(e.kind(), ConnectionReset | BrokenPipe)
        };
        assert!(
            matches!(&answer, Err(SocketError::Closed))
                || matches!(&answer, Err(SocketError::Io(e)) if gone(e)),
            "{wire:?} served a {other:?} connection: {answer:?}"
        );
        let (client, private) = wire.pair().unwrap();
        let answer = hello(&theirs, wire, &client, private).unwrap();
        assert!(
            matches!(answer, ServerMessage::Welcome { .. }),
            "{wire:?}: {answer:?}"
        );
        broker.stop();
    }
}

/// Answers finished by many tasks at once go out on one stream, a frame
/// at a time: with a send buffer so small that every answer takes several
/// writes, each still arrives whole (frames from two tasks interleaved
/// would be misread, or a descriptor would land on another frame). The
/// records wire, whose records are sent whole, is the control.
#[test]
fn answers_sent_at_once_never_interleave_on_a_stream() {
    let fixture = Fixture::new();
    // Each answer is a refusal naming this long path: several kilobytes.
    let long = fixture
        .path("missing")
        .join(["a"; 200].concat())
        .join(["b".repeat(250), "/".into()].concat().repeat(14));
    for wire in WIRES {
        let (broker, theirs) = serve(&fixture, wire);
        let (client, private) = wire.pair().unwrap();
        // The smallest the kernel allows: a write takes at most half.
        use nix::sys::socket::{getsockopt, setsockopt, sockopt::SndBuf};
        setsockopt(&private, SndBuf, &1).unwrap();
        let small = getsockopt(&private, SndBuf).unwrap();
        let welcome = hello(&theirs, wire, &client, private).unwrap();
        assert!(matches!(welcome, ServerMessage::Welcome { .. }), "{wire:?}");
        let mut frames = FrameReader::new(wire);
        // Rounds of N requests (fewer than a connection may have in flight),
        // each sent from a thread of its own: the broker's answers fill the
        // socket until they are read below.
        const N: u64 = 120;
        for _round in 0..5 {
            let sender = {
                let client = client.try_clone().unwrap();
                let (long, allowed) = (long.clone(), fixture.path("allowed"));
                std::thread::spawn(move || {
                    for id in 0..N {
                        let path = if id % 10 == 0 { &allowed } else { &long };
                        let req = ClientMessage::Request(proto::Request {
                            id,
                            body: proto::RequestBody::Open {
                                path: super::bytes(path).to_vec(),
                                access: proto::Access::Read,
                                flags: proto::OpenFlags::default(),
                            },
                        });
                        send_message(client.as_fd(), &req, None, Blocking::Yes).unwrap();
                    }
                })
            };
            // Let answers pile up in the broker's tasks before reading any.
            std::thread::sleep(Duration::from_millis(300));
            let mut seen = vec![false; N as usize];
            for _ in 0..N {
                let (msg, fd) = frames
                    .recv(client.as_fd(), Blocking::Yes, |m: &ServerMessage| {
                        m.expects_fd()
                    })
                    .unwrap_or_else(|e| panic!("{wire:?}: a frame misread: {e}"));
                let ServerMessage::Response(r) = msg else {
                    panic!("{wire:?}: {msg:?}");
                };
                assert!(!seen[r.id as usize], "{wire:?}: {} answered twice", r.id);
                seen[r.id as usize] = true;
                match r.id % 10 {
                    0 => {
                        assert!(matches!(r.body, proto::ResponseBody::Opened), "{r:?}");
                        let mut text = String::new();
                        std::fs::File::from(fd.expect("a descriptor"))
                            .read_to_string(&mut text)
                            .unwrap();
                        assert_eq!(text, "allowed");
                    }
                    _ => {
                        assert!(fd.is_none(), "{wire:?}: a descriptor on answer {}", r.id);
                        let proto::ResponseBody::Denied { reason, .. } = &r.body else {
                            panic!("{wire:?}: {r:?}");
                        };
                        assert!(reason.len() > small / 2, "answers too short to split");
                    }
                }
            }
            sender.join().unwrap();
        }
        broker.stop();
    }
}

/// An empty datagram or record on the shared socket (which any process of
/// the sandbox can send) is not its end: the broker goes on accepting
/// connections on either wire.
#[test]
fn an_empty_frame_does_not_stop_the_broker_accepting() {
    let fixture = Fixture::new();
    // On records (Linux's wire) an empty record reads as end of file: any
    // process of the sandbox could send one.
    for wire in WIRES {
        let (broker, theirs) = serve(&fixture, wire);
        proto::socket::send_frame(theirs.as_fd(), &[], None, Blocking::Yes).unwrap();
        // Control and attack at once: a connection after it is still welcomed.
        let (client, private) = wire.pair().unwrap();
        let answer = hello(&theirs, wire, &client, private).unwrap();
        assert!(
            matches!(answer, ServerMessage::Welcome { .. }),
            "{wire:?}: {answer:?}"
        );
        broker.stop();
    }
}
