//! One plugin's network grant: its allow rules, private ranges, limits and
//! credentials together, and the two checks `outbound` asks of it (a
//! destination before resolution, each address after).
//!
//! Knows no entry syntax and classifies no address itself; it combines the
//! answers of `allow` and `address`, with the operator's deny list always
//! winning.

use std::net::IpAddr;
use std::time::Duration;

use super::address::{AddressClass, Cidr, classify, embedded_ipv4};
use super::allow::{AllowRule, DenyList};
use super::credentials::Credential;
use super::target::{Host, Target};

/// Per-request timeout when the sidecar sets none: a slow or stalled upstream
/// must not hold a call, and the instance slot it occupies, for long.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Response body bytes per request when the sidecar sets none: an upstream
/// that streams without end must not fill guest memory or host buffers.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// Requests per call when the sidecar sets none: one call must not fan out
/// into a flood against an upstream from the server's address.
pub(crate) const DEFAULT_MAX_REQUESTS_PER_CALL: u32 = 100;

/// Per-request and per-call bounds on a plugin's outbound traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetworkLimits {
    /// Whole exchange: resolution, connect, TLS, headers and body.
    pub(crate) timeout: Duration,
    /// Response body bytes, counted as they stream in.
    pub(crate) max_response_bytes: u64,
    /// Requests one call may start, refused ones included.
    pub(crate) max_requests_per_call: u32,
}

/// What one plugin may reach, built from its sidecar at load time and shared
/// by every call of that plugin. The default grants nothing.
#[derive(Debug, Clone)]
pub(crate) struct NetworkGrant {
    pub(crate) allow: Vec<AllowRule>,
    pub(crate) allow_private: Vec<Cidr>,
    pub(crate) limits: NetworkLimits,
    pub(crate) credentials: Vec<Credential>,
}

/// Why a request or a resolved address was refused; logged with the plugin
/// and destination, and mapped to a `wasi:http` error code for the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("the plugin has no [network] grant")]
    NoNetwork,
    #[error("denied by plugins.policy.network_deny")]
    OperatorDenied,
    #[error("not in the plugin's [network] allow list")]
    NotAllowed,
    #[error("{ip} is denied by plugins.policy.network_deny")]
    OperatorDeniedAddress { ip: IpAddr },
    #[error(
        "{ip} is a non-public address ({class}) outside the plugin's [network] allow_private ranges"
    )]
    NonPublicAddress { ip: IpAddr, class: AddressClass },
}

impl NetworkGrant {
    /// No network at all: what a plugin without a `[network]` table gets,
    /// and what `list-tools` runs with at load time.
    pub(crate) fn none() -> NetworkGrant {
        NetworkGrant {
            allow: Vec::new(),
            allow_private: Vec::new(),
            limits: NetworkLimits {
                timeout: DEFAULT_TIMEOUT,
                max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
                max_requests_per_call: DEFAULT_MAX_REQUESTS_PER_CALL,
            },
            credentials: Vec::new(),
        }
    }

    /// Whether the plugin has any network at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.allow.is_empty()
    }

    /// Checks a request's destination before anything is resolved.
    pub(crate) fn check_target(&self, target: &Target, deny: &DenyList) -> Result<(), Refusal> {
        if self.is_empty() {
            return Err(Refusal::NoNetwork);
        }
        if deny.denies_target(target) {
            return Err(Refusal::OperatorDenied);
        }
        if !self.allow.iter().any(|rule| rule.matches(target)) {
            return Err(Refusal::NotAllowed);
        }
        if let Host::Ip(ip) = target.host {
            self.check_address(ip, deny)?;
        }
        Ok(())
    }

    /// Checks one resolved address. Returns the address to connect to: an
    /// IPv4-mapped IPv6 address comes back as plain IPv4, so the address
    /// checked is the address used.
    pub(crate) fn check_address(&self, ip: IpAddr, deny: &DenyList) -> Result<IpAddr, Refusal> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        let embedded = embedded_ipv4(ip).map(IpAddr::V4);
        if deny.denies_address(ip, embedded) {
            return Err(Refusal::OperatorDeniedAddress { ip });
        }
        let class = classify(ip);
        let granted = match class {
            AddressClass::Public => true,
            // Credentials for the whole cloud account sit behind these; only a
            // range naming the address exactly opens it, never a broad one.
            AddressClass::Metadata => self.allow_private.iter().any(|r| r.is_single(ip)),
            _ => self
                .allow_private
                .iter()
                .any(|r| r.contains(ip) || embedded.is_some_and(|v4| r.contains(v4))),
        };
        if granted {
            Ok(ip)
        } else {
            Err(Refusal::NonPublicAddress { ip, class })
        }
    }

    /// The credential to attach for `target`, if the sidecar declares one.
    pub(crate) fn credential_for(&self, target: &Target) -> Option<&Credential> {
        self.credentials.iter().find(|c| c.target.matches(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::network::target::{Scheme, parse_target, split_host_port};

    fn grant(allow: &[&str], allow_private: &[&str]) -> NetworkGrant {
        NetworkGrant {
            allow: allow
                .iter()
                .map(|a| a.parse().expect("allow entry"))
                .collect(),
            allow_private: allow_private
                .iter()
                .map(|a| a.parse().expect("cidr"))
                .collect(),
            limits: NetworkLimits {
                timeout: Duration::from_secs(1),
                max_response_bytes: 1,
                max_requests_per_call: 1,
            },
            credentials: Vec::new(),
        }
    }

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
    fn addresses_against_grants() {
        let check =
            |allow_private: &[&str], deny: &[&str], ip: &str, expect: Result<&str, &str>| {
                let deny = DenyList::parse(&deny.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                    .expect("deny");
                let ip: IpAddr = ip.parse().expect("ip");
                let res = grant(&["example.com"], allow_private).check_address(ip, &deny);
                match (res, expect) {
                    (Ok(got), Ok(want)) => assert_eq!(got.to_string(), want),
                    (Err(err), Err(part)) => {
                        let err = err.to_string();
                        assert!(err.contains(part), "{ip}: {err:?} lacks {part:?}");
                    }
                    (res, expect) => panic!("{ip}: got {res:?}, expected {expect:?}"),
                }
            };
        check(&[], &[], "93.184.216.34", Ok("93.184.216.34"));
        check(&[], &[], "127.0.0.1", Err("(loopback) outside"));
        check(&["127.0.0.0/8"], &[], "127.0.0.1", Ok("127.0.0.1"));
        check(&["127.0.0.0/8"], &[], "::ffff:127.0.0.1", Ok("127.0.0.1"));
        check(&["127.0.0.0/8"], &[], "::1", Err("loopback"));
        check(&["::1"], &[], "::1", Ok("::1"));
        check(&["10.0.0.0/8"], &[], "10.9.9.9", Ok("10.9.9.9"));
        check(&["10.0.0.0/8"], &[], "11.0.0.1", Ok("11.0.0.1"));
        check(&["10.1.0.0/16"], &[], "10.2.0.1", Err("(private) outside"));
        check(&["10.0.0.0/8"], &[], "64:ff9b::a00:1", Ok("64:ff9b::a00:1"));
        check(&[], &[], "169.254.169.254", Err("cloud metadata"));
        check(
            &["169.254.0.0/16"],
            &[],
            "169.254.169.254",
            Err("cloud metadata"),
        );
        check(
            &["0.0.0.0/0"],
            &[],
            "169.254.169.254",
            Err("cloud metadata"),
        );
        check(
            &["169.254.169.254/32"],
            &[],
            "169.254.169.254",
            Ok("169.254.169.254"),
        );
        check(&["fd00::/8"], &[], "fd00:ec2::254", Err("cloud metadata"));
        check(&[], &[], "168.63.129.16", Err("cloud metadata"));
        check(&["0.0.0.0/0"], &[], "0.0.0.0", Ok("0.0.0.0"));
        check(&[], &[], "0.0.0.0", Err("unspecified"));
        check(&[], &[], "100.64.1.1", Err("shared (CGNAT)"));
        check(&[], &[], "fe80::1", Err("link-local"));
        check(
            &[],
            &["93.184.0.0/16"],
            "93.184.216.34",
            Err("network_deny"),
        );
        check(
            &["10.0.0.0/8"],
            &["10.0.0.0/8"],
            "10.1.1.1",
            Err("network_deny"),
        );
        check(&[], &["10.0.0.0/8"], "::ffff:10.0.0.1", Err("network_deny"));
        check(
            &[],
            &["93.184.216.34"],
            "93.184.216.34",
            Err("network_deny"),
        );
    }

    #[test]
    fn targets_against_grants() {
        let check = |allow: &[&str], deny: &[&str], url: &str, expect: Result<(), &str>| {
            let deny = DenyList::parse(&deny.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .expect("deny");
            let res = grant(allow, &[]).check_target(&target(url), &deny);
            match (res, expect) {
                (Ok(()), Ok(())) => {}
                (Err(err), Err(part)) => {
                    let err = err.to_string();
                    assert!(err.contains(part), "{url}: {err:?} lacks {part:?}");
                }
                (res, expect) => panic!("{url}: got {res:?}, expected {expect:?}"),
            }
        };
        check(
            &[],
            &[],
            "https://api.github.com",
            Err("no [network] grant"),
        );
        check(&["api.github.com"], &[], "https://api.github.com", Ok(()));
        check(
            &["api.github.com"],
            &[],
            "https://example.com",
            Err("allow list"),
        );
        check(
            &["api.github.com"],
            &["api.github.com"],
            "https://api.github.com",
            Err("network_deny"),
        );
        check(
            &["*.github.com"],
            &["gist.github.com:443"],
            "https://gist.github.com",
            Err("network_deny"),
        );
        check(
            &["*.github.com"],
            &["gist.github.com:80"],
            "https://gist.github.com",
            Ok(()),
        );
        check(
            &["*.github.com"],
            &["*.internal.github.com"],
            "https://a.internal.github.com",
            Err("network_deny"),
        );
        check(
            &["http://169.254.169.254"],
            &[],
            "http://169.254.169.254",
            Err("cloud metadata"),
        );
        check(
            &["http://127.0.0.1:80"],
            &[],
            "http://127.0.0.1",
            Err("loopback"),
        );
        check(&["http://localhost:80"], &[], "http://localhost", Ok(()));
    }
}
