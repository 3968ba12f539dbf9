//! `--net` values: `none`, `all`, `tcp:443,8080,bind:8000`; and host rules,
//! `[network] hosts` and `--allow-host`: `api.example.com`, `*.example.com:443`,
//! `127.0.0.1:5432`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

const EXPECTED: &str = "expected none, all, or tcp:PORTS such as tcp:443,8080,bind:8000";

/// Network access.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetPolicy {
    /// No sockets but AF_UNIX.
    #[default]
    None,
    /// Unrestricted.
    All,
    /// TCP only, to these ports; no UDP, no raw sockets.
    Tcp {
        connect: BTreeSet<u16>,
        bind: BTreeSet<u16>,
    },
    /// A network namespace of the program's own with loopback only; the way
    /// out is sluice's proxy, to the hosts these rules allow (or a person
    /// allows when asked).
    Hosts(HostPolicy),
}

impl FromStr for NetPolicy {
    type Err = String;

    /// `none`, `all`, or `tcp:` followed by a comma list of ports to connect
    /// to and `bind:PORT` items for ports to bind.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => return Ok(NetPolicy::None),
            "all" => return Ok(NetPolicy::All),
            "tcp" => return Err(format!("network policy 'tcp' needs ports ({EXPECTED})")),
            _ => {}
        }
        let Some(ports) = text.strip_prefix("tcp:") else {
            return Err(format!("unknown network policy '{text}' ({EXPECTED})"));
        };
        let mut connect = BTreeSet::new();
        let mut bind = BTreeSet::new();
        for item in ports.split(',') {
            let (set, port) = match item.strip_prefix("bind:") {
                Some(port) => (&mut bind, port),
                None => (&mut connect, item),
            };
            let port = port.parse::<u16>().map_err(|_| {
                format!("invalid port '{item}' in network policy '{text}' ({EXPECTED})")
            })?;
            set.insert(port);
        }
        Ok(NetPolicy::Tcp { connect, bind })
    }
}

/// Where the proxy listens in the program's own network namespace
/// (127.0.0.1): `HTTPS_PROXY=http://127.0.0.1:31280`. Not 3128, 8080 or
/// 1080, the ports proxies and the proxy relays of sandboxing tools take by
/// convention (sandbox-runtime's `socat` listens on 3128 and 1080 inside its
/// sandbox, which is the program's namespace under the bwrap stand-in), and
/// below the kernel's ephemeral range (32768 and up), so no connection the
/// program makes is given it as a local port.
pub const PROXY_PORT: u16 = 31280;

/// Under `tcp:PORTS` the program may also connect to this port: its names
/// resolve over TCP (`RES_OPTIONS=use-vc`), since UDP is refused.
pub const DNS_PORT: u16 = 53;

/// The ports a host rule without one allows: HTTPS and HTTP.
pub const DEFAULT_PORTS: [u16; 2] = [443, 80];

/// `[network] hosts`: the program reaches the network only through sluice's
/// proxy, and only the hosts these rules name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPolicy {
    /// Connections allowed without asking.
    pub allow: Vec<HostRule>,
    /// Hosts put to the person (`ask_hosts`); the others are refused.
    pub ask: AskHosts,
}

/// `ask_hosts`: which hosts not allowed are put to the person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AskHosts {
    /// None: refused.
    #[default]
    No,
    /// Any host (`ask_hosts = true`).
    Any,
    /// Those these rules match.
    Listed(Vec<HostRule>),
}

/// One host rule: a name, every subdomain of one (`*.`), or an address;
/// with one port, or without (then [`DEFAULT_PORTS`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostRule {
    pub host: HostPattern,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostPattern {
    /// Exactly this name (lower case, no trailing dot).
    Name(String),
    /// Any name below this one (`*.github.com`: `api.github.com`, not
    /// `github.com`).
    Subdomains(String),
    /// This address, written as a literal.
    Ip(IpAddr),
}

/// A host as a program names it: an address literal or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// Reads a host as it appears in a URL or a CONNECT line (`[::1]` too);
    /// names are folded to lower case. `None` when it is neither a valid
    /// address nor a valid name.
    pub fn parse(text: &str) -> Option<Host> {
        let bracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
        if let Some(ip) = bracketed {
            return ip.parse().ok().map(Host::Ip);
        }
        if let Ok(ip) = text.parse() {
            return Some(Host::Ip(ip));
        }
        let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
        if let Some(ip) = ipv4_in_any_form(&name) {
            return Some(Host::Ip(IpAddr::V4(ip)));
        }
        valid_name(&name).then_some(Host::Name(name))
    }
}

/// An IPv4 address in the forms the C library's resolver reads as one
/// (`inet_aton`): one to four parts, each decimal, octal (a leading `0`)
/// or hexadecimal (`0x`), the last filling the bytes left (`127.1`,
/// `0x7f.1`, `2130706433`, `0177.0.0.1`). `getaddrinfo` answers such a
/// "name" with that address, without asking a name server: it is judged,
/// shown to the person and recorded as the address it is (`010.0.0.1` is
/// 8.0.0.1), never as a name.
fn ipv4_in_any_form(text: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<u32> = text
        .split('.')
        .map(|part| {
            let lower = part.to_ascii_lowercase();
            if let Some(hex) = lower.strip_prefix("0x") {
                match hex {
                    "" => Some(0),
                    hex => u32::from_str_radix(hex, 16).ok(),
                }
            } else if part.len() > 1 && part.starts_with('0') {
                u32::from_str_radix(&part[1..], 8).ok()
            } else if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()?;
    let (last, first) = parts.split_last()?;
    if first.len() > 3 || first.iter().any(|&p| p > 255) {
        return None;
    }
    let bits = 8 * (4 - first.len() as u32);
    if bits < 32 && *last >> bits != 0 {
        return None;
    }
    let high = first
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, &p)| acc | (p << (24 - 8 * i as u32)));
    Some(std::net::Ipv4Addr::from(high | last))
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A DNS name: labels of letters, digits, `-` and `_`, 1 to 63 long, not
/// starting or ending with `-`; 253 at most in all.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl HostRule {
    /// Whether this rule allows `host` on `port`. An address literal
    /// matches only a rule that names that address.
    pub fn matches(&self, host: &Host, port: u16) -> bool {
        let port_ok = match self.port {
            Some(p) => p == port,
            None => DEFAULT_PORTS.contains(&port),
        };
        port_ok
            && match (&self.host, host) {
                (HostPattern::Name(n), Host::Name(h)) => n == h,
                (HostPattern::Subdomains(n), Host::Name(h)) => h
                    .strip_suffix(n.as_str())
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
                (HostPattern::Ip(a), Host::Ip(b)) => a == b,
                _ => false,
            }
    }

    /// Whether the rule names exactly one host (not a `*.` pattern).
    pub fn is_exact(&self) -> bool {
        !matches!(self.host, HostPattern::Subdomains(_))
    }
}

impl HostPolicy {
    /// The first allow rule that matches.
    pub fn allowed(&self, host: &Host, port: u16) -> Option<&HostRule> {
        self.allow.iter().find(|r| r.matches(host, port))
    }

    /// Whether a connection no rule allows is put to the person.
    pub fn asks(&self, host: &Host, port: u16) -> bool {
        match &self.ask {
            AskHosts::No => false,
            AskHosts::Any => true,
            AskHosts::Listed(rules) => rules.iter().any(|r| r.matches(host, port)),
        }
    }

    /// The loopback services the program reaches at their own address
    /// (`127.0.0.1:5432`): allow rules naming a loopback address and a port.
    pub fn loopback_services(&self) -> Vec<(IpAddr, u16)> {
        let mut out: Vec<(IpAddr, u16)> = self
            .allow
            .iter()
            .filter_map(|r| match (&r.host, r.port) {
                (HostPattern::Ip(ip), Some(port)) if ip.is_loopback() => Some((*ip, port)),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

const HOST_EXPECTED: &str =
    "expected a host name, *.DOMAIN or an IP address, with an optional :PORT \
     (api.example.com, *.github.com:443, 127.0.0.1:5432, [::1]:8080)";

impl FromStr for HostRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid host '{text}': {why} ({HOST_EXPECTED})");
        // `[v6]:port`, `[v6]`, a bare v6 address (more than one colon), or
        // `host:port`.
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (ip, after) = rest.split_once(']').ok_or_else(|| bad("no closing ']'"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("text after ']'"))?),
            };
            (format!("[{ip}]"), port)
        } else if text.matches(':').count() > 1 {
            (text.to_string(), None)
        } else {
            match text.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (text.to_string(), None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad(&format!("'{p}' is not a port (1-65535)"))),
                Ok(p) => Some(p),
            },
        };
        let host = if let Some(domain) = host.strip_prefix("*.") {
            match Host::parse(domain) {
                Some(Host::Name(n)) if n.contains('.') || n == "localhost" => {
                    HostPattern::Subdomains(n)
                }
                Some(Host::Name(_)) => {
                    return Err(bad("a wildcard needs a domain of two labels at least"))
                }
                _ => return Err(bad("a wildcard needs a domain name after '*.'")),
            }
        } else if host.contains('*') {
            return Err(bad("'*' only as the whole first label ('*.example.com')"));
        } else {
            match Host::parse(&host) {
                Some(Host::Name(n)) => HostPattern::Name(n),
                Some(Host::Ip(ip)) if ip.is_unspecified() => {
                    return Err(bad("an unspecified address reaches nothing"))
                }
                Some(Host::Ip(ip)) => HostPattern::Ip(ip),
                None => return Err(bad("not a host name or an IP address")),
            }
        };
        Ok(HostRule { host, port })
    }
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Name(n) => f.write_str(n)?,
            HostPattern::Subdomains(n) => write!(f, "*.{n}")?,
            HostPattern::Ip(IpAddr::V6(ip)) if self.port.is_some() => write!(f, "[{ip}]")?,
            HostPattern::Ip(ip) => write!(f, "{ip}")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(connect: &[u16], bind: &[u16]) -> NetPolicy {
        NetPolicy::Tcp {
            connect: connect.iter().copied().collect(),
            bind: bind.iter().copied().collect(),
        }
    }

    #[test]
    fn parses_good_values() {
        assert_eq!("none".parse(), Ok(NetPolicy::None));
        assert_eq!("all".parse(), Ok(NetPolicy::All));
        assert_eq!("tcp:443".parse(), Ok(tcp(&[443], &[])));
        assert_eq!(
            "tcp:443,8080,bind:8000".parse(),
            Ok(tcp(&[443, 8080], &[8000]))
        );
        assert_eq!("tcp:bind:8000,443,443".parse(), Ok(tcp(&[443], &[8000])));
    }

    #[test]
    fn rejects_bad_values() {
        assert_eq!(
            "any".parse::<NetPolicy>(),
            Err(format!("unknown network policy 'any' ({EXPECTED})"))
        );
        assert_eq!(
            "tcp".parse::<NetPolicy>(),
            Err(format!("network policy 'tcp' needs ports ({EXPECTED})"))
        );
        assert_eq!(
            "tcp:443,70000".parse::<NetPolicy>(),
            Err(format!(
                "invalid port '70000' in network policy 'tcp:443,70000' ({EXPECTED})"
            ))
        );
        for bad in [
            "tcp:",
            "tcp:443,",
            "tcp:bind:",
            "tcp:x",
            "tcp: 443",
            "NONE",
            "",
        ] {
            assert!(bad.parse::<NetPolicy>().is_err(), "{bad}");
        }
    }

    fn rule(text: &str) -> HostRule {
        text.parse().unwrap()
    }

    #[test]
    fn host_rules_parse_and_print_back() {
        for text in [
            "api.example.com",
            "*.github.com:443",
            "127.0.0.1:5432",
            "[::1]:8080",
            "::1",
            "localhost:11434",
        ] {
            assert_eq!(rule(text).to_string(), text);
        }
        assert_eq!(rule("API.Example.COM.").to_string(), "api.example.com");
        for bad in [
            "",
            "*",
            "*.com",
            "a.*.com",
            "host:0",
            "host:70000",
            "host:",
            "0.0.0.0",
            "[::1",
            "[::1]x",
            "exa mple.com",
            "-bad.com",
            "http://x.com",
        ] {
            assert!(bad.parse::<HostRule>().is_err(), "{bad}");
        }
    }

    /// Every form the C library's resolver reads as an IPv4 address is
    /// that address (it asks no name server for it); other numbers are
    /// names.
    #[test]
    fn ipv4_addresses_in_every_form_are_addresses() {
        let v4 = |t: &str| Some(Host::Ip(t.parse().unwrap()));
        for (form, ip) in [
            ("2130706433", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0X7F.0.0.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("127.0.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("127.0.0.1.", "127.0.0.1"),
            ("010.0.0.1", "8.0.0.1"),
            ("0300.0250.0.1", "192.168.0.1"),
            ("0x64.0x64.0x64.0xc8", "100.100.100.200"),
            ("0", "0.0.0.0"),
            ("4294967295", "255.255.255.255"),
        ] {
            assert_eq!(Host::parse(form), v4(ip), "{form}");
        }
        for name in [
            "4294967296",
            "256.0.0.1",
            "1.2.3.4.5",
            "08.0.0.1",
            "0x.example",
            "1.2.3.x",
            "1..2",
            "127.0.0.256",
            "1.2.65536",
        ] {
            assert!(
                !matches!(Host::parse(name), Some(Host::Ip(_))),
                "{name} is not an address"
            );
        }
    }

    #[test]
    fn host_rules_match_names_ports_and_addresses() {
        let h = |t: &str| Host::parse(t).unwrap();
        assert!(rule("api.example.com").matches(&h("API.example.com"), 443));
        assert!(rule("api.example.com").matches(&h("api.example.com"), 80));
        assert!(!rule("api.example.com").matches(&h("api.example.com"), 22));
        assert!(!rule("api.example.com").matches(&h("example.com"), 443));
        assert!(!rule("api.example.com").matches(&h("x.api.example.com"), 443));
        assert!(rule("*.github.com:443").matches(&h("api.github.com"), 443));
        assert!(rule("*.github.com:443").matches(&h("a.b.github.com"), 443));
        assert!(!rule("*.github.com:443").matches(&h("github.com"), 443));
        assert!(!rule("*.github.com:443").matches(&h("evilgithub.com"), 443));
        assert!(!rule("*.github.com:443").matches(&h("api.github.com"), 80));
        assert!(rule("127.0.0.1:5432").matches(&h("127.0.0.1"), 5432));
        assert!(!rule("127.0.0.1:5432").matches(&h("127.0.0.1"), 5433));
        // A name does not match an address rule, nor an address a name rule.
        assert!(!rule("127.0.0.1:5432").matches(&h("localhost"), 5432));
        assert!(!rule("localhost:5432").matches(&h("127.0.0.1"), 5432));
        assert!(rule("[::1]:8080").matches(&h("[::1]"), 8080));
    }
}
