//! Who is really calling: the socket's peer address, or, when that peer is
//! a configured trusted proxy, the right-most address in `X-Forwarded-For`
//! (or `Forwarded: for=`) that is not itself a trusted proxy. A client can
//! prepend anything it likes to those headers, so only hops added by our own
//! proxies are believed.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The resolved client address, put in request extensions for later layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Resolves the client address of a request that arrived from `peer`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> IpAddr {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("forwarded") {
        let Ok(text) = value.to_str() else { continue };
        for element in text.split(',') {
            for pair in element.split(';') {
                if let Some((key, value)) = pair.trim().split_once('=')
                    && key.trim().eq_ignore_ascii_case("for")
                    && let Some(ip) = parse_forwarded_for(value.trim())
                {
                    hops.push(ip);
                }
            }
        }
    }
    if hops.is_empty() {
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else { continue };
            hops.extend(
                text.split(',')
                    .filter_map(|hop| hop.trim().parse::<IpAddr>().ok()),
            );
        }
    }
    // Walk from the nearest hop outwards; the first untrusted one is the client.
    hops.iter()
        .rev()
        .find(|ip| !trusted(ip))
        .copied()
        .unwrap_or(peer)
}

/// `for=` values: `192.0.2.1`, `"[2001:db8::1]:4711"`, `192.0.2.1:80`.
fn parse_forwarded_for(value: &str) -> Option<IpAddr> {
    let value = value.trim_matches('"');
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    value.parse().ok().or_else(|| {
        value
            .rsplit_once(':')
            .and_then(|(host, _)| host.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(peer: &str, headers: &[(&'static str, &str)], expect: &str) {
        let proxies: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().expect("net"),
            "fd00::/8".parse().expect("net"),
        ];
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, value.parse().expect("header"));
        }
        let got = resolve(peer.parse().expect("ip"), &map, &proxies);
        assert_eq!(
            got,
            expect.parse::<IpAddr>().expect("ip"),
            "{peer} {headers:?}"
        );
    }

    #[test]
    fn only_trusted_hops_are_believed() {
        check("203.0.113.9", &[], "203.0.113.9");
        check(
            "203.0.113.9",
            &[("x-forwarded-for", "1.2.3.4")],
            "203.0.113.9",
        );
        check(
            "10.1.1.1",
            &[("x-forwarded-for", "198.51.100.7")],
            "198.51.100.7",
        );
        check(
            "10.1.1.1",
            &[("x-forwarded-for", "6.6.6.6, 198.51.100.7")],
            "198.51.100.7",
        );
        check(
            "10.1.1.1",
            &[("x-forwarded-for", "198.51.100.7, 10.2.2.2")],
            "198.51.100.7",
        );
        check("10.1.1.1", &[("x-forwarded-for", "garbage")], "10.1.1.1");
        check(
            "10.1.1.1",
            &[("forwarded", "for=198.51.100.8;proto=https")],
            "198.51.100.8",
        );
        check(
            "10.1.1.1",
            &[("forwarded", "for=\"[2001:db8::1]:4711\"")],
            "2001:db8::1",
        );
        check(
            "10.1.1.1",
            &[("forwarded", "for=6.6.6.6, for=192.0.2.60:8080")],
            "192.0.2.60",
        );
        check(
            "fd00::1",
            &[("x-forwarded-for", "2001:db8::9")],
            "2001:db8::9",
        );
    }
}
