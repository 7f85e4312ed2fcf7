//! Client address resolution behind trusted proxies. Input: the peer
//! address, a line of trusted CIDRs (comma-separated), then header lines
//! (`Forwarded:` / `X-Forwarded-For:`).
//!
//! Property: the answer is the peer itself, or an address no trusted proxy
//! range contains (a client can forge hops, never a trusted one).
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
    let client = toolhost::fuzzing::client_address(peer, &headers, &trusted);
    assert!(
        client == peer || !trusted.iter().any(|net| net.contains(&client)),
        "resolved to trusted proxy {client} from {peer}"
    );
});
