//! The pipelining tokio client against the in-process fake broker, on the
//! Linux wire (`SOCK_SEQPACKET`).
#![cfg(feature = "tokio")]

mod fake_broker;

const WIRE: proto::socket::Wire = proto::socket::Wire::Records;

include!("suites/tokio.rs");
