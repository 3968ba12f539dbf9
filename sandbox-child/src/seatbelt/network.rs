//! The network part of a profile, per [`NetPolicy`].
//!
//! | policy | Linux | this profile |
//! |---|---|---|
//! | `none` | AF_UNIX only | unix sockets within the writable trees only; no IP |
//! | `tcp` | TCP to the `connect` ports, bind the `bind` ports | the same, any host (Seatbelt names hosts only as `*` or `localhost`); no UDP |
//! | `all` | anything | `network*` |
//!
//! Unix sockets are filtered by path: the program may connect to and bind
//! sockets in the trees it may write (its own servers, in the workspace or
//! `TMPDIR`), and to no other, which is narrower than on Linux (where
//! Landlock cannot filter a unix `connect` by path). Brokered access needs
//! no rule: the broker's socket is inherited already connected.
//!
//! `tcp` and `all` also let the program resolve names (the mDNSResponder
//! socket and the resolver configuration) and check TLS certificates
//! (trustd), as a host name is of little use otherwise.

use policies::NetPolicy;

use super::path::SbplPath;
use super::sbpl::{global_name, literal, local_tcp, remote_tcp, subpath, Rule, Section};

pub fn sections(net: &NetPolicy, writable: &[SbplPath]) -> Vec<Section> {
    let unix: Vec<String> = writable.iter().map(subpath).collect();
    let mut sections = vec![Section::new(
        &[
            "Unix sockets: connect to and create sockets only within the writable",
            "trees (the program's own servers); no other socket of the system.",
        ],
        if unix.is_empty() {
            vec![]
        } else {
            vec![Rule::allow(&["network-outbound", "network-bind"], unix)]
        },
    )];
    match net {
        // No proxy on macOS: the hosts mode allows no connection.
        NetPolicy::None | NetPolicy::Hosts(_) => sections.push(Section::new(
            &[
                "Network: none. No IP socket connects, binds or accepts: nothing",
                "below allows network-outbound or network-bind for an address.",
            ],
            vec![],
        )),
        NetPolicy::All => {
            sections.push(Section::new(
                &["Network: all (network = \"all\" in the policy)."],
                vec![
                    Rule::allow(&["network*"], vec![]),
                    Rule::allow(&["system-socket"], vec![]),
                ],
            ));
            sections.push(name_resolution());
        }
        NetPolicy::Tcp { connect, bind } => {
            sections.push(Section::new(
                &["Network: TCP connections to these ports, on any host. No UDP."],
                vec![Rule::allow(
                    &["network-outbound"],
                    connect.iter().map(|p| remote_tcp(*p)).collect(),
                )]
                .into_iter()
                .filter(|r| !r.filters.is_empty())
                .collect(),
            ));
            sections.push(Section::new(
                &["Network: TCP servers on these ports (bind, then accept)."],
                vec![Rule::allow(
                    &["network-bind", "network-inbound"],
                    bind.iter().map(|p| local_tcp(*p)).collect(),
                )]
                .into_iter()
                .filter(|r| !r.filters.is_empty())
                .collect(),
            ));
            sections.push(name_resolution());
        }
    }
    sections
}

/// Host names and TLS: getaddrinfo(3) asks mDNSResponder over its socket
/// and reads the resolver configuration from configd; Security.framework
/// checks certificate chains through trustd.
fn name_resolution() -> Section {
    let socket =
        SbplPath::new(std::path::Path::new("/private/var/run/mDNSResponder")).expect("fixed path");
    Section::new(
        &[
            "Name resolution (mDNSResponder, the resolver configuration) and TLS",
            "certificate checks (trustd): a host name is of little use without them.",
        ],
        vec![
            Rule::allow(&["network-outbound"], vec![literal(&socket)]),
            Rule::allow(
                &["mach-lookup"],
                [
                    "com.apple.SystemConfiguration.DNSConfiguration",
                    "com.apple.trustd.agent",
                ]
                .map(global_name)
                .to_vec(),
            ),
        ],
    )
}
