//! The decoder against arbitrary bytes, as a hostile peer would send them.
//!
//! For any input, `check` and `parse` must not panic, must agree with each
//! other, must decide from the bytes of the frame they report and nothing
//! after it, and any message they accept must survive a re-encode.

use proptest::prelude::*;
use proto::frame::{self, FrameError, HEADER_LEN, MAX_FRAME_LEN};
use proto::{
    Access, ClientMessage, ErrorKind, OpenFlags, PolicySummary, Request, RequestBody, Response,
    ResponseBody, ServerMessage,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

fn exercise(buf: &[u8]) {
    let checked = frame::check(buf);
    match &checked {
        Ok(total) => {
            assert!(*total >= HEADER_LEN && *total <= buf.len());
            assert!(*total - HEADER_LEN <= MAX_FRAME_LEN);
        }
        Err(FrameError::Incomplete) => {
            if let Some(header) = buf.first_chunk::<4>() {
                let len = u32::from_le_bytes(*header) as usize;
                assert!(len <= MAX_FRAME_LEN && buf.len() < HEADER_LEN + len);
            }
        }
        Err(FrameError::TooLarge { len }) => {
            assert!(buf.len() >= HEADER_LEN && *len > MAX_FRAME_LEN);
        }
        Err(other) => panic!("check returned {other:?}"),
    }
    exercise_as::<ClientMessage>(buf, &checked);
    exercise_as::<ServerMessage>(buf, &checked);
}

fn exercise_as<T>(buf: &[u8], checked: &Result<usize, FrameError>)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let parsed = frame::parse::<T>(buf);
    match (checked, &parsed) {
        (Err(c), Err(p)) => assert_eq!(c, p, "parse and check disagree"),
        (Err(c), Ok(_)) => panic!("check said {c:?} but parse succeeded"),
        (Ok(total), result) => {
            // Only the frame's own bytes decide the outcome.
            assert_eq!(&frame::parse::<T>(&buf[..*total]), result);
            match result {
                Ok((msg, used)) => {
                    assert_eq!(used, total);
                    let again = frame::encode(msg).expect("accepted message re-encodes");
                    let (back, n) = frame::parse::<T>(&again).expect("re-encoded frame parses");
                    assert_eq!(&back, msg);
                    assert_eq!(n, again.len());
                }
                Err(FrameError::Malformed { .. }) => {}
                Err(other) => panic!("whole frame gave {other:?}"),
            }
        }
    }
}

/// Valid frames to mutate, so inputs reach deep into the postcard decoder
/// rather than stopping at a random length header.
fn seeds() -> Vec<Vec<u8>> {
    let open = |access| {
        ClientMessage::Request(Request {
            id: 1 << 40,
            body: RequestBody::Open {
                path: b"/home/u/\xff.txt".to_vec(),
                access,
                flags: OpenFlags {
                    create: true,
                    truncate: true,
                    mode: 0o600,
                    ..OpenFlags::default()
                },
            },
        })
    };
    let response = |body| ServerMessage::Response(Response { id: 9, body });
    vec![
        frame::encode(&ClientMessage::Hello {
            protocol: proto::PROTOCOL_VERSION,
            client: "fuzz".into(),
        })
        .unwrap(),
        frame::encode(&open(Access::ReadWrite)).unwrap(),
        frame::encode(&ClientMessage::Request(Request {
            id: 2,
            body: RequestBody::Query {
                path: b"/etc".to_vec(),
                access: Access::Write,
            },
        }))
        .unwrap(),
        frame::encode(&ServerMessage::Welcome {
            session: "s".into(),
            policy: PolicySummary {
                name: "p".into(),
                broker_rules: 300,
            },
        })
        .unwrap(),
        frame::encode(&response(ResponseBody::Denied {
            reason: "no".into(),
            rule: Some("r".into()),
        }))
        .unwrap(),
        frame::encode(&response(ResponseBody::Error {
            kind: ErrorKind::TooManyRequests,
            message: "slow down".into(),
        }))
        .unwrap(),
        frame::encode(&response(ResponseBody::WouldAsk {
            rule: Some("ask /".into()),
        }))
        .unwrap(),
        frame::encode(&ClientMessage::Connect).unwrap(),
    ]
}

fn with_header(payload: &[u8]) -> Vec<u8> {
    let mut buf = (payload.len() as u32).to_le_bytes().to_vec();
    buf.extend_from_slice(payload);
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn short_arbitrary_bytes(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
        exercise(&buf);
    }

    #[test]
    fn arbitrary_payload_behind_a_valid_header(
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        after in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut buf = with_header(&payload);
        buf.extend_from_slice(&after);
        exercise(&buf);
    }

    #[test]
    fn mutated_valid_frames(
        seed in 0..6usize,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut buf = seeds().swap_remove(seed);
        for (at, byte) in edits {
            // Leave the header alone: header mutations are covered above.
            let i = HEADER_LEN + at.index(buf.len() - HEADER_LEN);
            buf[i] = byte;
        }
        if truncate {
            buf.truncate(cut.index(buf.len() + 1));
        }
        exercise(&buf);
    }
}

proptest! {
    // Big inputs are slow to generate; fewer cases keep this test quick.
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn large_arbitrary_bytes(buf in proptest::collection::vec(any::<u8>(), 0..=80 * 1024)) {
        exercise(&buf);
    }

    #[test]
    fn large_payload_behind_a_valid_header(
        len in (MAX_FRAME_LEN - 64)..=(MAX_FRAME_LEN + 64),
        fill in any::<u8>(),
        lead in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        // A declared length around the maximum, with the whole payload present.
        let mut payload = lead;
        payload.resize(len, fill);
        exercise(&with_header(&payload));
    }
}
