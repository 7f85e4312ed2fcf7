//! Client address resolution behind trusted proxies. Input: the peer
//! address, a line of trusted CIDRs (comma-separated), then header lines
//! (`Forwarded:` / `X-Forwarded-For:`).
//!
//! Property: from a peer no trusted range contains, the answer is that peer
//! (IPv4-mapped peers as IPv4): an untrusted client's headers are never
//! believed, whichever header the operator chose.
#![no_main]

use std::net::IpAddr;

use ipnet::IpNet;

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let mut lines = input.splitn(3, |&b| b == b'\n');
    let Some(peer) = lines
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .and_then(|l| l.trim().parse::<IpAddr>().ok())
    else {
        return;
    };
    let trusted: Vec<IpNet> = lines
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .map(|l| l.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    let (headers, _) = toolhost_fuzz::headers_and_body(lines.next().unwrap_or_default());
    let peer_v4 = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    };
    for forwarded in [false, true] {
        let client = toolhost::fuzzing::client_address(peer, &headers, &trusted, forwarded);
        if !trusted.iter().any(|net| net.contains(&peer_v4)) {
            assert_eq!(client, peer_v4, "an untrusted peer's headers were believed");
        }
    }
});
