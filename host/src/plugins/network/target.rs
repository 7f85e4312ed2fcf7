//! Destinations as written in a request or an entry: scheme, host and port,
//! and the host patterns (`*.example.com`) entries are made of. Owns the
//! syntax of `host[:port]`, including the refusal of hosts a resolver could
//! read as something else.
//!
//! Knows nothing of grants or policies: which destinations are allowed is
//! decided in `allow` and `grant`.

use std::fmt;
use std::net::IpAddr;

use super::address::{AddressClass, classify};

/// `http://` or `https://`; nothing else leaves the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub(super) fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// A host as written in a request: a DNS name (lowercase, no trailing dot)
/// or an IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Where a plugin's request goes, as parsed from its URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) scheme: Scheme,
    pub(crate) host: Host,
    pub(crate) port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The host part of an allow or deny entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    Exact(Host),
    /// `*.base`: one or more labels in front of `base`, never `base` itself.
    Wildcard(String),
}

impl HostPattern {
    pub(super) fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (HostPattern::Exact(want), got) => want == got,
            (HostPattern::Wildcard(base), Host::Name(name)) => name
                .strip_suffix(base.as_str())
                .and_then(|front| front.strip_suffix('.'))
                .is_some_and(|front| !front.is_empty()),
            (HostPattern::Wildcard(_), Host::Ip(_)) => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(host) => write!(f, "{host}"),
            HostPattern::Wildcard(base) => write!(f, "*.{base}"),
        }
    }
}

impl Target {
    /// Whether the host is `localhost` or a loopback address, where plain
    /// HTTP never crosses a network.
    pub(crate) fn is_loopback(&self) -> bool {
        match &self.host {
            Host::Name(name) => name == "localhost",
            Host::Ip(ip) => classify(*ip) == AddressClass::Loopback,
        }
    }
}

/// Parses the host of a request URI (`api.github.com`, `[::1]`, `10.0.0.1`)
/// with its scheme and optional port.
pub(crate) fn parse_target(
    scheme: Scheme,
    host: &str,
    port: Option<u16>,
) -> Result<Target, String> {
    let host = match parse_host_pattern(host)? {
        HostPattern::Exact(host) => host,
        HostPattern::Wildcard(_) => return Err("a wildcard is not a host".into()),
    };
    Ok(Target {
        scheme,
        host,
        port: port.unwrap_or(scheme.default_port()),
    })
}

/// Splits `host[:port]` or `[v6][:port]`.
pub(super) fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    if text.contains(['/', '?', '#']) {
        return Err(HOST_PORT_SHAPE.into());
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs a closing ]")?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("only :port may follow an IPv6 address")?,
                ),
            ),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err("the port must be 1-65535".into()),
                Ok(port) => Some(port),
            }
        }
        Some(_) => {
            return Err(HOST_PORT_SHAPE.into());
        }
    };
    Ok((host, port))
}

const HOST_PORT_SHAPE: &str =
    "expected host or host:port (no path; IPv6 in brackets, such as [::1]:8080)";

pub(super) fn parse_host_pattern(text: &str) -> Result<HostPattern, String> {
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .map_or(text, |v6| v6);
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(HostPattern::Exact(Host::Ip(ip)));
    }
    let (wildcard, name) = match text.strip_prefix("*.") {
        Some(base) => (true, base),
        None => (false, text),
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let valid = !name.is_empty()
        && name.len() <= 253
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(
            "not a valid host name (ASCII letters, digits, - and _ in dot-separated labels; \
             use punycode for international names)"
                .into(),
        );
    }
    // An all-digit last label is not a DNS name but a resolver may read it as
    // an IPv4 address in another notation (`127.1`, `2130706433`).
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("looks like an IPv4 address in a nonstandard notation".into());
    }
    if wildcard {
        if labels.len() < 2 {
            return Err(
                "a wildcard must cover a domain with at least two labels, such as *.example.com"
                    .into(),
            );
        }
        return Ok(HostPattern::Wildcard(name));
    }
    Ok(HostPattern::Exact(Host::Name(name)))
}
