//! The proxy's side of one program connection: an HTTP request head, then
//! a tunnel (`CONNECT`) or one forwarded plain-HTTP request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use policies::Host;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{allow_hint, open, relay, Context, Verdict};
use crate::audit::{By, ConnectionRecord, Decision};

/// The most a request head may take.
const MAX_HEAD: usize = 64 * 1024;
/// How long the program may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

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

pub(super) async fn client(mut stream: TcpStream, ctx: Arc<Context>, shutdown: CancellationToken) {
    let started = Instant::now();
    let _ = stream.set_nodelay(true);
    let head = tokio::select! {
        _ = shutdown.cancelled() => return,
        head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)) => head,
    };
    let (head, rest) = match head {
        Ok(Ok(got)) => got,
        Ok(Err(why)) => {
            respond(
                &mut stream,
                400,
                "Bad Request",
                &format!("sluice's proxy: {why}\n"),
            )
            .await;
            return;
        }
        Err(_) => return,
    };
    let req = match parse(&head) {
        Ok(req) => req,
        Err(why) => {
            respond(
                &mut stream,
                400,
                "Bad Request",
                &format!("sluice's proxy: {why}\n"),
            )
            .await;
            return;
        }
    };
    let mut rec = ConnectionRecord {
        host: req.host.to_string(),
        port: req.port,
        via: if req.connect { "connect" } else { "http" }.to_owned(),
        address: None,
        decision: Decision::Denied,
        by: By::Rule,
        rule: None,
        reason: None,
        sent: 0,
        received: 0,
        duration_ms: 0,
    };
    let addrs = match ctx.judge(&req.host, req.port).await {
        Verdict::Allow { rule, addrs, by } => {
            rec.rule = Some(rule);
            rec.by = by;
            addrs
        }
        Verdict::Refuse { reason, by } => {
            rec.by = by;
            let body = format!(
                "sluice refused the connection to {}:{}: {reason}.\n\
                 To allow it: sluice run --allow-host {} ..., or add it to [network] hosts \
                 in the policy.\n",
                req.host,
                req.port,
                allow_hint(&req.host, req.port)
            );
            // The person who answered at the prompt has been told.
            if !matches!(by, By::Person | By::Timeout) {
                ctx.tell_refused(&req.host, req.port, &reason);
            }
            respond(&mut stream, 403, "Forbidden", &body).await;
            rec.reason = Some(reason);
            rec.duration_ms = started.elapsed().as_millis() as u64;
            ctx.record(&rec);
            return;
        }
    };
    let (mut upstream, addr) = match open(ctx.upstream, &req.host, req.port, &addrs).await {
        Ok(found) => found,
        Err(e) => {
            let reason = format!("connecting to {}:{}: {e}", req.host, req.port);
            respond(
                &mut stream,
                502,
                "Bad Gateway",
                &format!("sluice's proxy: {reason}\n"),
            )
            .await;
            rec.decision = Decision::Error;
            rec.reason = Some(reason);
            rec.duration_ms = started.elapsed().as_millis() as u64;
            ctx.record(&rec);
            return;
        }
    };
    rec.decision = Decision::Allowed;
    rec.address = Some(addr);
    let mut first = Vec::new();
    if req.connect {
        if stream
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            rec.duration_ms = started.elapsed().as_millis() as u64;
            ctx.record(&rec);
            return;
        }
    } else {
        first = req.forward;
    }
    first.extend_from_slice(&rest);
    let sent_first = first.len() as u64;
    if upstream.write_all(&first).await.is_ok() {
        let (sent, received) = relay(&mut stream, &mut upstream, &shutdown).await;
        rec.sent = sent_first + sent;
        rec.received = received;
    }
    rec.duration_ms = started.elapsed().as_millis() as u64;
    ctx.record(&rec);
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
    let mut forward = format!("{method} {path} {version}\r\n").into_bytes();
    for header in lines.take_while(|l| !l.is_empty()) {
        let name = header.split(':').next().unwrap_or("").trim();
        let hop = [
            "proxy-connection",
            "proxy-authorization",
            "connection",
            "keep-alive",
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
        port: port.unwrap_or(80),
        forward,
    })
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

async fn respond(stream: &mut TcpStream, code: u16, reason: &str, body: &str) {
    let text = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\nServer: sluice\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}
