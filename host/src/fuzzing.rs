//! Entry points for the coverage-guided harness in `fuzz/` (built only with
//! the `fuzzing` feature). Each runs one untrusted-input surface the way the
//! server does and panics where a property the server relies on breaks, so
//! the harness only has to turn bytes into arguments.
//!
//! Kept to one function per surface: the harness must not grow into a
//! second way of calling the server's internals.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;
use serde_json::Value;

use crate::mcp::{Message, parse_message, validate_stateless};
use crate::plugins::{AllowRule, DenyList};

/// A request body as the MCP transport reads it: JSON, then one JSON-RPC
/// message, then (for requests and notifications) the stateless era's
/// header and `_meta` checks against `headers`.
pub fn mcp_message(headers: &HeaderMap, body: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let (method, params) = match parse_message(value) {
        Ok(Message::Request(request)) => {
            assert!(request.id.is_string() || request.id.is_number());
            (request.method, request.params)
        }
        Ok(Message::Notification { method, params }) => (method, params),
        Ok(Message::Response { .. }) | Err(_) => return,
    };
    assert!(params.is_object(), "params reach dispatch as an object");
    let _ = validate_stateless(headers, &method, &params);
}

/// A bearer token's header as the resource server peeks at it before any
/// signature check: `alg` and `kid`, or a refusal.
pub fn jwt_header(token: &str) -> Result<(String, Option<String>), String> {
    crate::auth::peek_header(token).map_err(|e| e.to_string())
}

/// The client address of a request from `peer` behind trusted proxies,
/// reading `Forwarded` when `forwarded`, else `X-Forwarded-For`. Wrapped so
/// a change of the resolver's signature only touches this function.
pub fn client_address(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted_proxies: &[IpNet],
    forwarded: bool,
) -> IpAddr {
    let (name, header) = if forwarded {
        ("forwarded", crate::limits::ForwardedHeader::Forwarded)
    } else {
        (
            "x-forwarded-for",
            crate::limits::ForwardedHeader::XForwardedFor,
        )
    };
    let values: Vec<&[u8]> = headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
    crate::limits::resolve(peer, &values, trusted_proxies, header)
}

/// A sidecar file's text, parsed and checked against the default policy as
/// loading does.
pub fn sidecar(text: &str) -> Result<(), String> {
    crate::plugins::check_sidecar(text)
}

/// `[network] allow` entries and `network_deny` entries: each allow entry
/// that parses prints to a form that parses back to the same rule, an exact
/// rule matches its own destination, and every rule is asked about every
/// destination; the same entries are also parsed as a deny list.
pub fn network_entries(entries: &[String]) {
    let rules: Vec<AllowRule> = entries.iter().filter_map(|e| e.parse().ok()).collect();
    let targets: Vec<_> = rules.iter().filter_map(AllowRule::exact_target).collect();
    for rule in &rules {
        let printed = rule.to_string();
        let reparsed: AllowRule = match printed.parse() {
            Ok(rule) => rule,
            Err(err) => panic!("{rule:?} prints as {printed:?}, which does not parse: {err}"),
        };
        assert_eq!(&reparsed, rule, "{printed:?} does not round-trip");
        if let Some(target) = rule.exact_target() {
            assert!(
                rule.matches(&target),
                "{rule} does not match its own destination"
            );
        }
        for target in &targets {
            let _ = rule.matches(target);
        }
    }
    let _ = DenyList::parse(entries);
}
