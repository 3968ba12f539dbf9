//! The blocking client's suite again on the macOS wire (stream private
//! connections, a datagram shared socket), run on Linux.

mod fake_broker;

const WIRE: proto::socket::Wire = proto::socket::Wire::Stream;

include!("suites/blocking.rs");
