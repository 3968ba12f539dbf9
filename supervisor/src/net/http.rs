//! An HTTP request to the proxy: its head, asking for a tunnel (`CONNECT`)
//! or one plain-HTTP request to forward, and the proxy's own answers.

use policies::Host;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Asked, How};

/// The most a request head may take.
const MAX_HEAD: usize = 64 * 1024;

/// What the program asked for.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Request {
    pub connect: bool,
    pub host: Host,
    pub port: u16,
    /// Plain HTTP: the head to send on, in origin form, with
    /// `Connection: close`.
    pub forward: Vec<u8>,
}

/// Reads the program's request head and parses it; a malformed one is
/// answered `400` here and gives `None`.
pub(super) async fn request(stream: &mut TcpStream) -> Option<Asked> {
    let parsed = match read_head(stream).await {
        Ok((head, rest)) => parse(&head).map(|req| (req, rest)),
        Err(why) => Err(why),
    };
    match parsed {
        Ok((req, rest)) => Some(Asked {
            host: req.host,
            port: req.port,
            how: if req.connect {
                How::Connect
            } else {
                How::Http(req.forward)
            },
            rest,
        }),
        Err(why) => {
            let body = format!("sluice's proxy: {why}\n");
            respond(stream, 400, "Bad Request", &body).await;
            None
        }
    }
}

/// Reads up to the end of the request head; returns the head and what
/// came after it.
async fn read_head(stream: &mut TcpStream) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the request: {e}"))?;
        if n == 0 {
            return Err("the connection closed before a full request head".into());
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + at + 4;
            let rest = buf.split_off(end);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("request head longer than {MAX_HEAD} bytes"));
        }
    }
}

/// Reads `CONNECT host:port HTTP/1.x` or `METHOD http://host[:port]/path
/// HTTP/1.x` and its headers.
pub(super) fn parse(head: &[u8]) -> Result<Request, String> {
    let text = std::str::from_utf8(head).map_err(|_| "the request head is not UTF-8")?;
    stray_line_ends(head)?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("not an HTTP request line: {:?}", truncate(line)));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("unsupported HTTP version {:?}", truncate(version)));
    }
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = host_port(target).ok_or_else(|| bad_target(target))?;
        let port = port.ok_or_else(|| format!("CONNECT {:?} names no port", truncate(target)))?;
        return Ok(Request {
            connect: true,
            host,
            port,
            forward: Vec::new(),
        });
    }
    let scheme_len = "http://".len();
    let is_http = target.len() > scheme_len
        && target.is_char_boundary(scheme_len)
        && target[..scheme_len].eq_ignore_ascii_case("http://");
    if !is_http {
        return Err(format!(
            "{:?} is not an absolute http:// URI (use CONNECT for other schemes)",
            truncate(target)
        ));
    }
    let after = &target[scheme_len..];
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, path) = after.split_at(end);
    if authority.contains('@') {
        return Err("credentials in the URI are not passed on".into());
    }
    let (host, port) = host_port(authority).ok_or_else(|| bad_target(target))?;
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('/') => p.to_owned(),
        p => format!("/{p}"),
    };
    // The host judged, not the program's `Host` header: a server that
    // hosts many names (a CDN) would otherwise serve the name the header
    // says, one no rule allows (RFC 9112, 3.2.2: a proxy replaces it).
    let port = port.unwrap_or(80);
    let authority = match port {
        80 => host.to_string(),
        port => format!("{host}:{port}"),
    };
    let mut forward = format!("{method} {path} {version}\r\nHost: {authority}\r\n").into_bytes();
    for header in lines.take_while(|l| !l.is_empty()) {
        if header.starts_with([' ', '\t']) {
            // A header folded over lines: it would continue whatever line
            // came before it here (RFC 9112, 5.2: reject it).
            return Err("a header folded over two lines (obsolete line folding)".into());
        }
        let name = header.split(':').next().unwrap_or("").trim();
        let hop = [
            "proxy-connection",
            "proxy-authorization",
            "connection",
            "keep-alive",
            "host",
        ];
        if hop.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        forward.extend_from_slice(header.as_bytes());
        forward.extend_from_slice(b"\r\n");
    }
    forward.extend_from_slice(b"Connection: close\r\n\r\n");
    Ok(Request {
        connect: false,
        host,
        port,
        forward,
    })
}

/// Refuses a bare CR or LF (not part of a CRLF) and NUL anywhere in the
/// head. Lines are read here at CRLF, but many servers end a line at a
/// bare LF or CR too (RFC 9112, 2.2, allows the LF): a `Host` header after
/// one would pass as part of another line, and reach the server as a
/// header of its own, past the `Host` replacement.
fn stray_line_ends(head: &[u8]) -> Result<(), String> {
    for (at, &byte) in head.iter().enumerate() {
        let stray = match byte {
            b'\r' => head.get(at + 1) != Some(&b'\n'),
            b'\n' => at == 0 || head[at - 1] != b'\r',
            0 => true,
            _ => false,
        };
        if stray {
            let what = match byte {
                b'\r' => "a bare CR",
                b'\n' => "a bare LF",
                _ => "a NUL byte",
            };
            return Err(format!(
                "{what} in the request head (its lines end with CRLF, and nothing else)"
            ));
        }
    }
    Ok(())
}

fn bad_target(target: &str) -> String {
    format!("{:?} names no valid host", truncate(target))
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn host_port(text: &str) -> Option<(Host, Option<u16>)> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (ip, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (&text[..ip.len() + 2], port)
        }
        None => match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        },
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return None,
            Ok(p) => Some(p),
        },
    };
    Some((Host::parse(host)?, port))
}

pub(super) async fn respond(stream: &mut TcpStream, code: u16, reason: &str, body: &str) {
    let text = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\nServer: sluice\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}
