//! Finding the broker and what both clients say on the wire: the inherited
//! socket, the private connection made over it, the handshake.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use proto::socket::{send_frame, Blocking, SocketError, Wire};
use proto::{
    frame, ClientMessage, PolicySummary, Request, RequestBody, ServerMessage, PROTOCOL_VERSION,
};

use crate::error::{Error, ProtocolError};
use crate::{sys, BROKER_FD_ENV};

/// The shared socket named by `SLUICE_BROKER_FD`, as a private
/// close-on-exec copy (the inherited descriptor itself is left untouched,
/// inheritable, for child processes), and the wire it belongs to.
pub(crate) fn shared_from_env() -> Result<(OwnedFd, Wire), Error> {
    shared_from_value(std::env::var_os(BROKER_FD_ENV).as_deref())
}

/// [`shared_from_env`] for a given value of the variable.
fn shared_from_value(value: Option<&OsStr>) -> Result<(OwnedFd, Wire), Error> {
    let raw = parse_broker_fd(value)?;
    let fd = sys::dup_raw(raw).map_err(|e| {
        let why = if e.raw_os_error() == Some(libc::EBADF) {
            format!("{BROKER_FD_ENV}={raw} is not an open descriptor")
        } else {
            format!("{BROKER_FD_ENV}={raw}: {e}")
        };
        Error::NotUnderSluice { why }
    })?;
    let wire = shared_wire(fd.as_fd(), &format!("{BROKER_FD_ENV}={raw}"))?;
    Ok((fd, wire))
}

/// The descriptor number in the value of `SLUICE_BROKER_FD`, if any.
pub(crate) fn parse_broker_fd(value: Option<&OsStr>) -> Result<RawFd, Error> {
    let not_under = |why: String| Error::NotUnderSluice { why };
    let value = value.ok_or_else(|| not_under(format!("{BROKER_FD_ENV} is not set")))?;
    let text = value
        .to_str()
        .ok_or_else(|| not_under(format!("{BROKER_FD_ENV} is not a descriptor number")))?;
    // Decimal digits only: no sign, no spaces, no "0x".
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_under(format!(
            "{BROKER_FD_ENV}={text:?} is not a descriptor number"
        )));
    }
    text.parse::<RawFd>()
        .map_err(|_| not_under(format!("{BROKER_FD_ENV}={text} is out of range")))
}

/// A private copy of a shared socket given by the caller, once it is known
/// to be one, and the wire it belongs to.
pub(crate) fn adopt_shared(shared: BorrowedFd<'_>) -> Result<(OwnedFd, Wire), Error> {
    let wire = shared_wire(shared, "the broker descriptor")?;
    Ok((shared.try_clone_to_owned()?, wire))
}

/// Only an `AF_UNIX` `SOCK_SEQPACKET` socket (Linux) or `SOCK_DGRAM`
/// socket (macOS, whose private connections are streams) can be the
/// broker's; its type says which wire the private connections speak.
fn shared_wire(fd: BorrowedFd<'_>, what: &str) -> Result<Wire, Error> {
    let not_under = |why: String| Error::NotUnderSluice { why };
    match Wire::of_shared(fd) {
        Ok(Some(wire)) => Ok(wire),
        Ok(None) => Err(not_under(format!(
            "{what} is a socket, but not a unix seqpacket or datagram socket"
        ))),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
            Err(not_under(format!("{what} is not a socket")))
        }
        Err(e) => Err(not_under(format!("{what}: {e}"))),
    }
}

/// The name `from_env` introduces itself with: the program's file name.
pub(crate) fn default_client_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "client-sdk".to_owned())
}

/// Sends `Connect` on the shared socket with `end` attached.
///
/// With [`Blocking::Yes`] this waits while the socket's buffer is full,
/// even if another process made the shared socket non-blocking (its file
/// flags are shared with every process of the sandbox, so they are never
/// changed here).
pub(crate) fn send_connect(
    shared: BorrowedFd<'_>,
    end: BorrowedFd<'_>,
    blocking: Blocking,
) -> io::Result<()> {
    let bytes = encode(&ClientMessage::Connect)?;
    loop {
        match send_frame(shared, &bytes, Some(end), blocking) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && blocking == Blocking::Yes => {
                proto::socket::wait_writable(shared)?
            }
            other => return other,
        }
    }
}

/// The first frame on a private connection.
pub(crate) fn hello(client_name: &str) -> io::Result<Vec<u8>> {
    encode(&ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client: client_name.to_owned(),
    })
}

/// A request as one frame. A request too large for a frame (a path of tens
/// of kilobytes) is the caller's mistake, `InvalidInput`.
pub(crate) fn request(id: u64, body: RequestBody) -> io::Result<Vec<u8>> {
    encode(&ClientMessage::Request(Request { id, body }))
}

/// A stacked sluice's registration as one frame (its ruleset travels
/// with it).
pub(crate) fn stacked(id: u64, protect: Vec<String>) -> io::Result<Vec<u8>> {
    encode(&ClientMessage::Stacked(proto::StackedSandbox {
        id,
        protect,
    }))
}

fn encode(msg: &ClientMessage) -> io::Result<Vec<u8>> {
    frame::encode(msg).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// The session and policy from the answer to `Hello`.
pub(crate) fn welcome(answer: ServerMessage) -> Result<(String, PolicySummary), Error> {
    match answer {
        ServerMessage::Welcome { session, policy } => Ok((session, policy)),
        ServerMessage::Refused { reason } => Err(Error::Refused { reason }),
        ServerMessage::Response(_) => Err(ProtocolError::Unexpected {
            expected: "a welcome",
            got: "a response",
        }
        .into()),
    }
}

/// An error of the socket itself (a gone peer is [`Error::Closed`]).
pub(crate) fn socket_error(err: io::Error) -> Error {
    SocketError::Io(err).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::{UnixDatagram, UnixStream};

    fn not_under(result: Result<impl std::fmt::Debug, Error>) -> String {
        match result {
            Err(Error::NotUnderSluice { why }) => why,
            other => panic!("expected NotUnderSluice, got {other:?}"),
        }
    }

    #[test]
    fn the_variable_must_be_a_plain_decimal_number() {
        assert_eq!(parse_broker_fd(Some(OsStr::new("7"))).unwrap(), 7);
        assert_eq!(parse_broker_fd(Some(OsStr::new("0"))).unwrap(), 0);
        assert!(not_under(parse_broker_fd(None)).contains("not set"));
        for bad in ["", " 7", "7 ", "-1", "+3", "0x10", "seven", "3.0"] {
            not_under(parse_broker_fd(Some(OsStr::new(bad))));
        }
        assert!(not_under(parse_broker_fd(Some(OsStr::new("99999999999")))).contains("range"));
    }

    #[test]
    fn the_variable_must_name_an_open_seqpacket_socket() {
        let (a, _b) = proto::socket::seqpacket_pair().unwrap();
        let value = a.as_raw_fd().to_string();
        let (copy, wire) = shared_from_value(Some(OsStr::new(&value))).unwrap();
        assert_ne!(copy.as_raw_fd(), a.as_raw_fd());
        assert_eq!(wire, Wire::Records);

        let (r, _w) = nix::unistd::pipe().unwrap();
        let value = r.as_raw_fd().to_string();
        let why = not_under(shared_from_value(Some(OsStr::new(&value))));
        assert!(why.contains("not a socket"), "{why}");

        // A number far above anything this process opens.
        let why = not_under(shared_from_value(Some(OsStr::new("999999"))));
        assert!(why.contains("not an open descriptor"), "{why}");
    }

    #[test]
    fn only_a_unix_seqpacket_or_datagram_socket_is_accepted() {
        let (a, _b) = proto::socket::seqpacket_pair().unwrap();
        assert_eq!(adopt_shared(a.as_fd()).unwrap().1, Wire::Records);
        // The macOS configuration: a datagram shared socket, stream
        // connections.
        let (d, _e) = UnixDatagram::pair().unwrap();
        assert_eq!(adopt_shared(d.as_fd()).unwrap().1, Wire::Stream);

        let (r, _w) = nix::unistd::pipe().unwrap();
        assert!(not_under(adopt_shared(r.as_fd())).contains("not a socket"));
        let (s, _t) = UnixStream::pair().unwrap();
        assert!(not_under(adopt_shared(s.as_fd())).contains("not a unix seqpacket"));
        let inet = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(not_under(adopt_shared(inet.as_fd())).contains("not a unix seqpacket"));
    }
}
