//! The blocking client against the in-process fake broker, on the Linux
//! wire (`SOCK_SEQPACKET`).

mod fake_broker;

const WIRE: proto::socket::Wire = proto::socket::Wire::Records;

include!("suites/blocking.rs");
