//! The entries of a grant and of the operator's policy: `[network] allow`
//! rules and `plugins.policy.network_deny` entries, how they parse, and which
//! destinations and addresses they match.
//!
//! Knows nothing of address classes or of how a grant combines allow, deny
//! and `allow_private`; that is `grant`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::address::Cidr;
use super::target::{HostPattern, Scheme, Target, parse_host_pattern, split_host_port};

/// One `[network] allow` entry: `[http://|https://]host[:port]`, where host
/// may start with `*.`. HTTPS and port 443 unless written otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowRule {
    scheme: Scheme,
    host: HostPattern,
    port: u16,
}

impl AllowRule {
    pub(crate) fn matches(&self, target: &Target) -> bool {
        self.scheme == target.scheme && self.port == target.port && self.host.matches(&target.host)
    }

    /// The single destination this rule names, unless it is a wildcard.
    pub(crate) fn exact_target(&self) -> Option<Target> {
        match &self.host {
            HostPattern::Exact(host) => Some(Target {
                scheme: self.scheme,
                host: host.clone(),
                port: self.port,
            }),
            HostPattern::Wildcard(_) => None,
        }
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl FromStr for AllowRule {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<AllowRule, NetworkError> {
        let err = |reason: String| NetworkError::Entry {
            entry: text.to_string(),
            reason,
        };
        let (scheme, rest) = match text.split_once("://") {
            Some(("https", rest)) => (Scheme::Https, rest),
            Some(("http", rest)) => (Scheme::Http, rest),
            Some((other, _)) => {
                return Err(err(format!(
                    "scheme {other:?} is not allowed; only http:// and https://"
                )));
            }
            None => (Scheme::Https, text),
        };
        let (host, port) = split_host_port(rest).map_err(err)?;
        Ok(AllowRule {
            scheme,
            host: parse_host_pattern(host).map_err(err)?,
            port: port.unwrap_or(scheme.default_port()),
        })
    }
}

/// The operator's `plugins.policy.network_deny`: host patterns (any scheme,
/// any port unless one is given) and CIDR ranges (checked on resolved
/// addresses). A deny always wins over a sidecar's allow.
#[derive(Debug, Clone, Default)]
pub(crate) struct DenyList {
    hosts: Vec<(HostPattern, Option<u16>)>,
    ranges: Vec<Cidr>,
}

impl DenyList {
    /// Parses the policy entries once at start-up.
    pub(crate) fn parse(entries: &[String]) -> Result<DenyList, NetworkError> {
        let mut deny = DenyList::default();
        for entry in entries {
            // A bare address is a range of one, so it also covers names
            // that resolve to it.
            let is_range = entry.parse::<IpAddr>().is_ok()
                || entry
                    .split_once('/')
                    .is_some_and(|(addr, _)| addr.parse::<IpAddr>().is_ok());
            if is_range {
                deny.ranges.push(entry.parse()?);
                continue;
            }
            let (host, port) = split_host_port(entry).map_err(|reason| NetworkError::Entry {
                entry: entry.clone(),
                reason,
            })?;
            let host = parse_host_pattern(host).map_err(|reason| NetworkError::Entry {
                entry: entry.clone(),
                reason,
            })?;
            deny.hosts.push((host, port));
        }
        Ok(deny)
    }

    pub(super) fn denies_target(&self, target: &Target) -> bool {
        self.hosts.iter().any(|(host, port)| {
            host.matches(&target.host) && port.is_none_or(|port| port == target.port)
        })
    }

    pub(super) fn denies_address(&self, ip: IpAddr, embedded: Option<IpAddr>) -> bool {
        self.ranges
            .iter()
            .any(|range| range.contains(ip) || embedded.is_some_and(|v4| range.contains(v4)))
    }
}

/// Why an entry of a grant or policy did not parse.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetworkError {
    #[error("{entry:?}: {reason}")]
    Entry { entry: String, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::network::target::parse_target;

    fn target(url: &str) -> Target {
        let (scheme, rest) = url.split_once("://").expect("scheme");
        let scheme = if scheme == "http" {
            Scheme::Http
        } else {
            Scheme::Https
        };
        let (host, port) = split_host_port(rest).expect("authority");
        parse_target(scheme, host, port).expect("target")
    }

    #[test]
    fn allow_entries_parse() {
        let check =
            |entry: &str, expect: Result<&str, &str>| match (entry.parse::<AllowRule>(), expect) {
                (Ok(rule), Ok(shown)) => assert_eq!(rule.to_string(), shown, "{entry}"),
                (Err(err), Err(part)) => {
                    let err = err.to_string();
                    assert!(err.contains(part), "{entry}: {err:?} lacks {part:?}");
                }
                (res, expect) => panic!("{entry}: got {res:?}, expected {expect:?}"),
            };
        check("api.github.com", Ok("https://api.github.com:443"));
        check("API.GitHub.com.", Ok("https://api.github.com:443"));
        check("*.atlassian.net:443", Ok("https://*.atlassian.net:443"));
        check("http://localhost:8080", Ok("http://localhost:8080"));
        check("http://example.com", Ok("http://example.com:80"));
        check("https://example.com:8443", Ok("https://example.com:8443"));
        check("10.1.2.3:9000", Ok("https://10.1.2.3:9000"));
        check("http://[::1]:8080", Ok("http://[::1]:8080"));
        check("ftp://example.com", Err("only http:// and https://"));
        check("example.com/path", Err("no path"));
        check("example.com:0", Err("1-65535"));
        check("example.com:70000", Err("1-65535"));
        check("example.com:", Err("host:port"));
        check("*", Err("valid host name"));
        check("*.com", Err("at least two labels"));
        check("a.*.example.com", Err("valid host name"));
        check("*.10.0.0.1", Err("nonstandard notation"));
        check("127.1", Err("nonstandard notation"));
        check("2130706433", Err("nonstandard notation"));
        check("::1", Err("host:port"));
        check("user@example.com", Err("valid host name"));
        check("exa mple.com", Err("valid host name"));
        check("bücher.de", Err("punycode"));
        check("", Err("valid host name"));
    }

    #[test]
    fn targets_match_rules() {
        let check = |allow: &[&str], url: &str, expect: bool| {
            let res = allow
                .iter()
                .map(|a| a.parse::<AllowRule>().expect("allow entry"))
                .any(|r| r.matches(&target(url)));
            assert_eq!(res, expect, "{allow:?} vs {url}");
        };
        check(&["api.github.com"], "https://api.github.com", true);
        check(&["api.github.com"], "https://API.GITHUB.COM.", true);
        check(&["api.github.com"], "https://api.github.com:443", true);
        check(&["api.github.com"], "http://api.github.com", false);
        check(&["api.github.com"], "https://api.github.com:8443", false);
        check(&["api.github.com"], "https://github.com", false);
        check(&["api.github.com"], "https://evil.api.github.com", false);
        check(
            &["api.github.com"],
            "https://api.github.com.evil.com",
            false,
        );
        check(&["*.atlassian.net"], "https://a.atlassian.net", true);
        check(&["*.atlassian.net"], "https://a.b.atlassian.net", true);
        check(&["*.atlassian.net"], "https://atlassian.net", false);
        check(&["*.atlassian.net"], "https://evilatlassian.net", false);
        check(&["*.atlassian.net"], "https://a.atlassian.net:8443", false);
        check(&["http://localhost:8080"], "http://localhost:8080", true);
        check(&["http://localhost:8080"], "https://localhost:8080", false);
        check(&["http://localhost:8080"], "http://localhost", false);
        check(&["http://localhost:8080"], "http://127.0.0.1:8080", false);
        check(&["http://127.0.0.1:8080"], "http://127.0.0.1:8080", true);
        check(&["http://[::1]:80"], "http://[::1]", true);
    }

    #[test]
    fn deny_entries_parse() {
        let check = |entry: &str, expect: Result<(), &str>| match (
            DenyList::parse(&[entry.to_string()]),
            expect,
        ) {
            (Ok(_), Ok(())) => {}
            (Err(err), Err(part)) => {
                let err = err.to_string();
                assert!(err.contains(part), "{entry}: {err:?} lacks {part:?}");
            }
            (res, expect) => panic!("{entry}: got {res:?}, expected {expect:?}"),
        };
        check("metadata.google.internal", Ok(()));
        check("*.corp.example.com", Ok(()));
        check("example.com:8080", Ok(()));
        check("169.254.0.0/16", Ok(()));
        check("10.1.2.3", Ok(()));
        check("fd00::/8", Ok(()));
        check("10.0.0.1/8", Err("write the network address"));
        check("10.0.0.0/33", Err("too long"));
        check("10.0.0.0/x", Err("must be a number"));
        check("nope/8", Err("host:port"));
        check("https://example.com", Err("host:port"));
    }
}
