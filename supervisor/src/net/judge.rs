//! Judging a connection the program asks for: by the policy's `[network]
//! hosts`, by the person where `ask_hosts` says so, and to which addresses
//! a name may lead; what the program and the person are told of a refusal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use policies::Host;

use super::{Context, Upstream, Verdict, CONNECT_TIMEOUT};
use crate::approval::{Answer, HostQuestion};
use crate::audit::By;

/// Whether a connection may go to `ip` for a host allowed by an `exact`
/// rule, or else by a `*.` rule or a person's answer (who saw a name, not
/// where it leads). Never an unspecified address (it reaches this machine);
/// through a name not named exactly, never this machine's loopback, a
/// link-local address (a cloud's metadata service at 169.254.169.254) nor
/// a metadata service at another address ([`METADATA_SERVICES`]), in
/// whatever form the resolver gives it: an IPv6 address that carries an
/// IPv4 one is judged as both (`::ffff:127.0.0.1` is loopback; so is
/// `64:ff9b::7f00:1`, which a NAT64 gateway translates to 127.0.0.1, and
/// the deprecated `::127.0.0.1`, which a `sit` tunnel sends to it).
pub(super) fn reachable(ip: IpAddr, exact: bool) -> bool {
    let one = |ip: IpAddr| {
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => v6.is_unicast_link_local(),
        };
        !ip.is_unspecified() && (exact || !(ip.is_loopback() || link_local || metadata_service(ip)))
    };
    let ip = ip.to_canonical();
    one(ip) && carried_ipv4(ip).is_none_or(|v4| one(IpAddr::V4(v4)))
}

/// The IPv4 address an IPv6 one carries where it reaches that address by
/// a translator or a tunnel: NAT64's well-known prefix `64:ff9b::/96` and
/// its local-use `64:ff9b:1::/48` (RFC 6052, RFC 8215; the last 32 bits),
/// and IPv4-compatible addresses `::a.b.c.d` (but `::` and `::1`).
/// IPv4-mapped ones are made IPv4 by `to_canonical` already.
fn carried_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let s = v6.segments();
    let last = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..3] == [0x64, 0xff9b, 1];
    let compatible = s[..6] == [0; 6] && u32::from(last) > 1;
    (nat64 || compatible).then_some(last)
}

/// Clouds' instance metadata services (credentials of the machine's role,
/// its start-up scripts) and Azure's host agent, at addresses outside the
/// link-local range: Alibaba Cloud's, Azure's WireServer, Oracle Cloud's
/// older one, AWS's and Google Cloud's over IPv6. The others (AWS, Google,
/// Azure, Oracle, OpenStack, DigitalOcean, Tencent: 169.254.169.254,
/// 169.254.170.2, 169.254.0.23) are link-local already.
pub(super) const METADATA_SERVICES: [IpAddr; 5] = [
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V6(Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254)),
];

/// Whether `ip` (canonical) is one of [`METADATA_SERVICES`].
fn metadata_service(ip: IpAddr) -> bool {
    METADATA_SERVICES.contains(&ip)
}

/// The most hosts and ports whose refusal sluice says on stderr: a program
/// naming new hosts without end would otherwise flood the person's
/// terminal and grow the supervisor's memory by one name each.
pub(super) const MAX_TOLD: usize = 32;

/// This machine's interface addresses ([`crate::sys::host::interface_addresses`],
/// two netlink dumps, about 0.1 ms), listed again when the last list is a
/// second old: an address added since is reachable for at most that long.
fn own_addresses() -> std::io::Result<Vec<IpAddr>> {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static LISTED: Mutex<Option<(Instant, Vec<IpAddr>)>> = Mutex::new(None);
    let mut listed = LISTED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, addrs)) = listed.as_ref() {
        if at.elapsed() < Duration::from_secs(1) {
            return Ok(addrs.clone());
        }
    }
    let addrs = crate::sys::host::interface_addresses()?;
    *listed = Some((Instant::now(), addrs.clone()));
    Ok(addrs)
}

impl Context {
    /// Judges `host:port` by the policy (asking the person where
    /// `ask_hosts` says so), and resolves an allowed name.
    pub(super) async fn judge(&self, host: &Host, port: u16) -> Verdict {
        let (rule_text, exact, by) = match self.hosts.allowed(host, port) {
            Some(rule) => (rule.to_string(), rule.is_exact(), By::Rule),
            None if self.hosts.asks(host, port) => {
                if let Host::Ip(ip) = host {
                    if !reachable(*ip, false) {
                        return Verdict::Refuse {
                            reason:
                                "a loopback, link-local or cloud metadata address, never put to \
                                     the person: name the service in [network] hosts"
                                    .to_owned(),
                            by: By::Rule,
                        };
                    }
                }
                let answer = self.ask(host, port).await;
                if !answer.allow {
                    return Verdict::Refuse {
                        reason: refused_by(&answer),
                        by: answer.by,
                    };
                }
                // The person saw a name, not where it leads: like a `*.`
                // rule, it never reaches the host's loopback through it.
                let rule = answer.rule.unwrap_or_else(|| self.ask_rule(host, port));
                (rule, false, answer.by)
            }
            None => {
                let reason = match host {
                    Host::Ip(_) => "an address no rule of [network] hosts names (name the host instead, or list the address)",
                    Host::Name(_) => "not in [network] hosts",
                };
                return Verdict::Refuse {
                    reason: reason.to_owned(),
                    by: By::Rule,
                };
            }
        };
        if let Upstream::Via(_) = self.upstream {
            // The enclosing session resolves, and judges the name again.
            return Verdict::Allow {
                rule: rule_text,
                addrs: Vec::new(),
                by,
            };
        }
        let addrs = match host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
            Host::Name(name) => {
                let lookup = tokio::net::lookup_host((name.as_str(), port));
                match tokio::time::timeout(CONNECT_TIMEOUT, lookup).await {
                    Ok(Ok(found)) => found.collect(),
                    Ok(Err(e)) => {
                        return Verdict::Refuse {
                            reason: format!("cannot resolve {name}: {e}"),
                            by: By::Rule,
                        }
                    }
                    Err(_) => {
                        return Verdict::Refuse {
                            reason: format!("resolving {name} timed out"),
                            by: By::Rule,
                        }
                    }
                }
            }
        };
        // A name not named exactly reaches none of this machine's own
        // addresses either: a service listening on every interface answers
        // on them as on loopback (DNS rebinding into this machine).
        let own = match exact {
            true => Vec::new(),
            false => match own_addresses() {
                Ok(own) => own,
                Err(e) => {
                    return Verdict::Refuse {
                        reason: format!("this machine's own addresses could not be listed: {e}"),
                        by: By::Rule,
                    }
                }
            },
        };
        let (kept, dropped): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
            .into_iter()
            .partition(|a| reachable(a.ip(), exact) && !own.contains(&a.ip().to_canonical()));
        if kept.is_empty() {
            // Refused whoever allowed the name: by the rule on addresses.
            let who = match by {
                By::Rule => "a *. rule does not reach (name the host exactly)",
                _ => "an answer to ask_hosts does not reach (name the host in [network] hosts)",
            };
            let reason = match dropped.first() {
                Some(a) if metadata_service(a.ip().to_canonical()) => format!(
                    "{host} resolves to {} only, a cloud's metadata service, which {who}",
                    a.ip()
                ),
                Some(a) => format!("{host} resolves to {} only, which {who}", a.ip()),
                None => format!("{host} resolves to no address"),
            };
            return Verdict::Refuse {
                reason,
                by: By::Rule,
            };
        }
        Verdict::Allow {
            rule: rule_text,
            addrs: kept,
            by,
        }
    }

    /// The `ask_hosts` entry that puts `host:port` to the person.
    fn ask_rule(&self, host: &Host, port: u16) -> String {
        match &self.hosts.ask {
            policies::AskHosts::Listed(rules) => match rules.iter().find(|r| r.matches(host, port))
            {
                Some(r) => format!("ask_hosts \"{r}\""),
                None => "ask_hosts".to_owned(),
            },
            _ => "ask_hosts = true".to_owned(),
        }
    }

    /// Puts `host:port` to the session's approvals (nobody: refused).
    async fn ask(&self, host: &Host, port: u16) -> Answer {
        let Some(shared) = &self.approvals else {
            return Answer::new(false, By::NonInteractiveDefault);
        };
        let q = HostQuestion {
            host,
            port,
            rule: Some(self.ask_rule(host, port)),
        };
        shared.approvals.ask_host(&q).await
    }

    /// Says on stderr, once per host and port, that a connection was refused
    /// and how to allow it; for [`MAX_TOLD`] hosts and ports, then once that
    /// the rest are in the record only.
    pub(super) fn tell_refused(&self, host: &Host, port: u16, reason: &str) {
        let target = format!("{host}:{port}");
        let first = {
            let mut told = self.told.lock().unwrap_or_else(|p| p.into_inner());
            if told.contains(&target) || told.len() > MAX_TOLD {
                false
            } else if told.len() < MAX_TOLD {
                told.insert(target.clone())
            } else {
                // The empty name (no `host:port`) marks that this was said.
                told.insert(String::new());
                eprintln!(
                    "sluice: the program's connections to more hosts were refused; they are not \
                     shown here (sluice audit show SESSION --access net lists every one)"
                );
                false
            }
        };
        if !first {
            return;
        }
        if self.hosts.allowed(host, port).is_some() {
            // Allowed, but not reachable (not resolved, or only to addresses
            // the rule may not reach): allowing it again would change nothing.
            eprintln!(
                "sluice: the program's connection to {target} is allowed but failed ({reason})"
            );
        } else {
            eprintln!(
                "sluice: refused the program's connection to {target} ({reason}); \
                 to allow it: sluice run --allow-host {} ...",
                allow_hint(host, port)
            );
        }
    }
}

/// Why a connection put to the person is refused, for the program and the
/// record.
pub(super) fn refused_by(answer: &Answer) -> String {
    let mut why = match answer.by {
        By::Person => "denied by the person at sluice's prompt".to_owned(),
        By::Timeout => "the person did not answer sluice's prompt in time".to_owned(),
        By::Session => "denied earlier in this session at sluice's prompt".to_owned(),
        By::Overlay => format!(
            "denied always in the approvals overlay ({})",
            answer.rule.as_deref().unwrap_or("-")
        ),
        By::RateLimit => "too many questions for the person".to_owned(),
        By::NonInteractiveDefault => {
            "not in [network] hosts, and no terminal to ask on (--approve deny)".to_owned()
        }
        // No answerer says so (`Approvals::ask_host`).
        by @ (By::Rule | By::Protected | By::Error) => format!("denied ({by})"),
    };
    if let Some(note) = &answer.note {
        why = format!("{why}: {note}");
    }
    why
}

/// What `--allow-host` would allow this `host:port`: the default ports need
/// no `:PORT`.
pub fn allow_hint(host: &Host, port: u16) -> String {
    match (host, policies::DEFAULT_PORTS.contains(&port)) {
        (Host::Name(_), true) => host.to_string(),
        _ => format!("{host}:{port}"),
    }
}
