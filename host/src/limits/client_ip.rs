//! Who is really calling: the socket's peer address, or, when that peer is
//! a configured trusted proxy, the right-most hop of the one forwarding
//! header the operator chose (`X-Forwarded-For` by default, or `Forwarded`)
//! that is not itself a trusted proxy.
//!
//! Only one header is read because proxies append to one and pass the other
//! through from the client untouched: reading both lets a client name its
//! own address. A client can prepend anything it likes, so only hops added
//! by our own proxies are believed, and a hop that cannot be read ends the
//! walk: skipping it would let a hop further left (written by the client)
//! win. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack
//! listener reports for IPv4 peers) are compared as the IPv4 they are.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv6Net};
use serde::Deserialize;

/// The resolved client address, put in request extensions for later layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The address range a client is charged to (budgets, in-flight sign-ins):
/// the address itself for IPv4, its `limits.ipv6_prefix` network for IPv6,
/// since one host is routinely given a whole /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ClientRange(pub IpNet);

impl ClientRange {
    pub fn of(ip: IpAddr, ipv6_prefix: u8) -> ClientRange {
        let net = match ip.to_canonical() {
            IpAddr::V4(v4) => IpNet::V4(v4.into()),
            IpAddr::V6(v6) => IpNet::V6(
                Ipv6Net::new(v6, ipv6_prefix.min(128))
                    .map_or_else(|_| v6.into(), |net| net.trunc()),
            ),
        };
        ClientRange(net)
    }
}

impl std::fmt::Display for ClientRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            // A single IPv4 address reads better without its `/32`.
            IpNet::V4(net) if net.prefix_len() == 32 => net.addr().fmt(f),
            net => net.fmt(f),
        }
    }
}

/// Which forwarding header a trusted proxy writes (`limits.forwarded_header`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1`: what nginx, HAProxy and cloud
    /// load balancers append.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name, lower case, as `HeaderMap` wants it.
    pub fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

/// Resolves the client address of a request that arrived from `peer`.
///
/// `values` are the raw values of the chosen header's fields in the order
/// they arrived (several fields count as one comma-joined list). Pure and
/// total: any bytes give an answer, never a panic.
pub fn resolve(
    peer: IpAddr,
    values: &[&[u8]],
    trusted_proxies: &[IpNet],
    header: ForwardedHeader,
) -> IpAddr {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    let peer = peer.to_canonical();
    if !trusted(&peer) {
        return peer;
    }
    // Walk from the nearest hop outwards. `nearest` is the last address a
    // trusted party vouched for: the answer if the walk cannot go further.
    let mut nearest = peer;
    for value in values.iter().rev() {
        let Ok(text) = std::str::from_utf8(value) else {
            return nearest;
        };
        for hop in text.rsplit(',') {
            let parsed = match header {
                ForwardedHeader::XForwardedFor => hop.trim().parse::<IpAddr>().ok(),
                ForwardedHeader::Forwarded => forwarded_for(hop),
            };
            let Some(ip) = parsed.map(|ip| ip.to_canonical()) else {
                return nearest;
            };
            if !trusted(&ip) {
                return ip;
            }
            nearest = ip;
        }
    }
    nearest
}

/// The address in one `Forwarded` element: exactly one `for=` pair whose
/// value is `192.0.2.1`, `"192.0.2.1:80"` or `"[2001:db8::1]:4711"`.
/// Obfuscated identifiers (`unknown`, `_hidden`) name no address.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let mut values = element.split(';').filter_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then_some(value.trim())
    });
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = match value.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"')?,
        None => value,
    };
    let port_ok = |port: &str| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port_fine = after.is_empty() || after.strip_prefix(':').is_some_and(port_ok);
        return port_fine.then(|| host.parse().ok()).flatten();
    }
    if let Ok(ip) = value.parse() {
        return Some(ip);
    }
    let (host, port) = value.split_once(':')?;
    let v4: std::net::Ipv4Addr = host.parse().ok()?;
    port_ok(port).then_some(IpAddr::V4(v4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> Vec<IpNet> {
        vec![
            "10.0.0.0/8".parse().expect("net"),
            "fd00::/8".parse().expect("net"),
        ]
    }

    fn check_with(header: ForwardedHeader, peer: &str, values: &[&str], expect: &str) {
        let values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        let got = resolve(peer.parse().expect("ip"), &values, &proxies(), header);
        assert_eq!(
            got,
            expect.parse::<IpAddr>().expect("ip"),
            "{header:?} from {peer}: {values:?}"
        );
    }

    fn xff(peer: &str, values: &[&str], expect: &str) {
        check_with(ForwardedHeader::XForwardedFor, peer, values, expect);
    }

    fn fwd(peer: &str, values: &[&str], expect: &str) {
        check_with(ForwardedHeader::Forwarded, peer, values, expect);
    }

    #[test]
    fn only_trusted_hops_are_believed() {
        xff("203.0.113.9", &[], "203.0.113.9");
        xff("203.0.113.9", &["1.2.3.4"], "203.0.113.9");
        xff("10.1.1.1", &[], "10.1.1.1");
        xff("10.1.1.1", &["198.51.100.7"], "198.51.100.7");
        xff("10.1.1.1", &["6.6.6.6, 198.51.100.7"], "198.51.100.7");
        xff("10.1.1.1", &["198.51.100.7, 10.2.2.2"], "198.51.100.7");
        // Several fields are one list, in arrival order.
        xff("10.1.1.1", &["6.6.6.6", "198.51.100.7"], "198.51.100.7");
        xff("10.1.1.1", &["198.51.100.7", "10.2.2.2"], "198.51.100.7");
        // Every hop trusted: the furthest one vouched for.
        xff("10.1.1.1", &["10.3.3.3, 10.2.2.2"], "10.3.3.3");
        xff("fd00::1", &["2001:db8::9"], "2001:db8::9");
    }

    #[test]
    fn only_the_chosen_header_is_read() {
        // What a proxy that appends X-Forwarded-For passes through from a
        // client that sent its own `Forwarded`: the caller hands `resolve`
        // only the chosen header, so the other cannot take part. Here the
        // `Forwarded` parser, given XFF text, reads no address at all.
        fwd("10.1.1.1", &["203.0.113.5"], "10.1.1.1");
        xff("10.1.1.1", &["for=10.9.9.9"], "10.1.1.1");
    }

    #[test]
    fn an_unreadable_hop_ends_the_walk() {
        xff("10.1.1.1", &["garbage"], "10.1.1.1");
        // Skipping it would hand the answer to what the client wrote.
        xff("10.1.1.1", &["6.6.6.6, garbage"], "10.1.1.1");
        xff("10.1.1.1", &["6.6.6.6, garbage, 10.2.2.2"], "10.2.2.2");
        xff("10.1.1.1", &["6.6.6.6,, 10.2.2.2"], "10.2.2.2");
        xff("10.1.1.1", &["6.6.6.6, unknown"], "10.1.1.1");
        // `ip:port` is not X-Forwarded-For syntax.
        xff("10.1.1.1", &["6.6.6.6, 198.51.100.7:443"], "10.1.1.1");
        xff("10.1.1.1", &["6.6.6.6, [2001:db8::1]:443"], "10.1.1.1");
        // A field that is not text ends it too, wherever it is.
        let bad: &[u8] = b"\xff\xfe";
        let got = resolve(
            "10.1.1.1".parse().expect("ip"),
            &[b"6.6.6.6", bad, b"10.2.2.2"],
            &proxies(),
            ForwardedHeader::XForwardedFor,
        );
        assert_eq!(got, "10.2.2.2".parse::<IpAddr>().expect("ip"));
        fwd("10.1.1.1", &["for=6.6.6.6, for=_hidden"], "10.1.1.1");
        fwd("10.1.1.1", &["for=6.6.6.6, proto=https"], "10.1.1.1");
        fwd(
            "10.1.1.1",
            &["for=6.6.6.6, for=1.1.1.1;for=2.2.2.2"],
            "10.1.1.1",
        );
        fwd(
            "10.1.1.1",
            &["for=6.6.6.6, for=\"[2001:db8::1]:x\""],
            "10.1.1.1",
        );
        fwd("10.1.1.1", &["for=6.6.6.6, for=\"192.0.2.1"], "10.1.1.1");
    }

    #[test]
    fn forwarded_elements_follow_rfc_7239() {
        fwd(
            "10.1.1.1",
            &["for=198.51.100.8;proto=https"],
            "198.51.100.8",
        );
        fwd("10.1.1.1", &["For=\"[2001:db8::1]:4711\""], "2001:db8::1");
        fwd("10.1.1.1", &["for=\"[2001:db8::1]\""], "2001:db8::1");
        fwd(
            "10.1.1.1",
            &["for=6.6.6.6, for=\"192.0.2.60:8080\""],
            "192.0.2.60",
        );
        fwd("10.1.1.1", &["for=6.6.6.6", "for=192.0.2.61"], "192.0.2.61");
        fwd(
            "10.1.1.1",
            &["for=198.51.100.8, for=10.2.2.2"],
            "198.51.100.8",
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        // A dual-stack listener reports an IPv4 proxy as ::ffff:10.1.1.1.
        xff("::ffff:10.1.1.1", &["198.51.100.7"], "198.51.100.7");
        xff("::ffff:203.0.113.9", &["198.51.100.7"], "203.0.113.9");
        // And a mapped hop is compared, and reported, as IPv4.
        xff(
            "10.1.1.1",
            &["198.51.100.7, ::ffff:10.2.2.2"],
            "198.51.100.7",
        );
        xff("10.1.1.1", &["::ffff:198.51.100.7"], "198.51.100.7");
    }

    #[test]
    fn ipv6_clients_are_charged_per_range() {
        let range = |ip: &str, prefix| ClientRange::of(ip.parse().expect("ip"), prefix);
        assert_eq!(
            range("2001:db8:1:2::1", 64),
            range("2001:db8:1:2:ffff::9", 64)
        );
        assert_ne!(range("2001:db8:1:2::1", 64), range("2001:db8:1:3::1", 64));
        assert_eq!(
            range("2001:db8:1:2::1", 64).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(range("2001:db8:1:2::1", 48), range("2001:db8:1:3::1", 48));
        assert_ne!(range("2001:db8::1", 128), range("2001:db8::2", 128));
        assert_eq!(range("2001:db8::1", 200).to_string(), "2001:db8::1/128");
        assert_ne!(range("192.0.2.1", 64), range("192.0.2.2", 64));
        assert_eq!(range("192.0.2.1", 64).to_string(), "192.0.2.1");
        assert_eq!(range("::ffff:192.0.2.1", 64), range("192.0.2.1", 64));
    }
}
