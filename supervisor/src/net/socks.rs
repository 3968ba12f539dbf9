//! A SOCKS5 request to the proxy (RFC 1928): `CONNECT` only, without
//! authentication. The target is a name (judged and resolved here, as an
//! HTTP `CONNECT`'s is) or an address literal (which a rule must name).
//! A refusal is the reply `connection not allowed by ruleset`; sluice's
//! stderr says which host and how to allow it.

use std::io;

use policies::Host;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Asked, How};

/// The first byte of every SOCKS5 message.
pub(super) const VERSION: u8 = 5;
/// The one authentication method offered: none.
const NO_AUTHENTICATION: u8 = 0;
const NO_ACCEPTABLE_METHOD: u8 = 0xff;
const CONNECT: u8 = 1;
const IPV4: u8 = 1;
const NAME: u8 = 3;
const IPV6: u8 = 4;

/// The replies the proxy gives (RFC 1928, section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reply {
    Succeeded = 0,
    Failure = 1,
    NotAllowed = 2,
    NetworkUnreachable = 3,
    HostUnreachable = 4,
    Refused = 5,
    CommandNotSupported = 7,
    AddressNotSupported = 8,
}

impl Reply {
    /// The reply for a connection that could not be opened.
    pub(super) fn failed(e: &io::Error) -> Reply {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Reply::Refused,
            io::ErrorKind::NetworkUnreachable => Reply::NetworkUnreachable,
            io::ErrorKind::HostUnreachable | io::ErrorKind::TimedOut => Reply::HostUnreachable,
            _ => Reply::Failure,
        }
    }
}

/// Reads the program's greeting and request, answering the greeting; a
/// request the proxy does not serve is answered (and closed) here and
/// gives `None`.
pub(super) async fn request<S>(stream: &mut S) -> Option<Asked>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match read_request(stream).await {
        Ok(Ok((host, port))) => Some(Asked {
            host,
            port,
            how: How::Socks5,
            rest: Vec::new(),
        }),
        Ok(Err(refusal)) => {
            reply(stream, refusal).await;
            None
        }
        Err(_) => None,
    }
}

/// The greeting (answered) and the request: the target, or the reply that
/// refuses the request. An I/O error (or a greeting without "no
/// authentication", answered so) ends the connection.
async fn read_request<S>(stream: &mut S) -> io::Result<Result<(Host, u16), Reply>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let [version, count] = read_array::<2, _>(stream).await?;
    let mut methods = vec![0u8; usize::from(count)];
    stream.read_exact(&mut methods).await?;
    if version != VERSION || !methods.contains(&NO_AUTHENTICATION) {
        stream.write_all(&[VERSION, NO_ACCEPTABLE_METHOD]).await?;
        let _ = stream.shutdown().await;
        return Err(io::Error::other("no acceptable SOCKS5 method"));
    }
    stream.write_all(&[VERSION, NO_AUTHENTICATION]).await?;
    let [version, command, _reserved, kind] = read_array::<4, _>(stream).await?;
    if version != VERSION {
        return Ok(Err(Reply::Failure));
    }
    let host = match kind {
        IPV4 => Some(Host::Ip(read_array::<4, _>(stream).await?.into())),
        IPV6 => Some(Host::Ip(read_array::<16, _>(stream).await?.into())),
        NAME => {
            let [len] = read_array::<1, _>(stream).await?;
            let mut name = vec![0u8; usize::from(len)];
            stream.read_exact(&mut name).await?;
            // An address written as a name is judged as the address.
            std::str::from_utf8(&name).ok().and_then(Host::parse)
        }
        _ => return Ok(Err(Reply::AddressNotSupported)),
    };
    let port = u16::from_be_bytes(read_array::<2, _>(stream).await?);
    if command != CONNECT {
        return Ok(Err(Reply::CommandNotSupported));
    }
    match host {
        Some(host) if port != 0 => Ok(Ok((host, port))),
        _ => Ok(Err(Reply::AddressNotSupported)),
    }
}

async fn read_array<const N: usize, S>(stream: &mut S) -> io::Result<[u8; N]>
where
    S: AsyncRead + Unpin,
{
    let mut bytes = [0u8; N];
    stream.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// Sends `reply` (the bound address given as 0.0.0.0:0: the supervisor's
/// own addresses are none of the program's business); anything but
/// success closes the connection. Returns whether it was sent.
pub(super) async fn reply<S>(stream: &mut S, reply: Reply) -> bool
where
    S: AsyncWrite + Unpin,
{
    let message = [VERSION, reply as u8, 0, IPV4, 0, 0, 0, 0, 0, 0];
    let sent = stream.write_all(&message).await.is_ok();
    if reply != Reply::Succeeded {
        let _ = stream.shutdown().await;
    }
    sent
}
