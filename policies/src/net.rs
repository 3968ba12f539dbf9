//! `--net` values: `none`, `all`, `tcp:443,8080,bind:8000`.

use std::collections::BTreeSet;
use std::str::FromStr;

use crate::model::NetPolicy;

const EXPECTED: &str = "expected none, all, or tcp:PORTS such as tcp:443,8080,bind:8000";

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
}
