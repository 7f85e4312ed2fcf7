//! Turning fuzzer bytes into the shapes the server receives. Seeds stay
//! readable text: a block of `Name: value` header lines, a blank line, then
//! a body.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Splits `text` at the first blank line into headers and the rest. Lines
/// that are not a valid header are skipped, as a real HTTP parser would
/// have refused them before the server saw them.
pub fn headers_and_body(text: &[u8]) -> (HeaderMap, &[u8]) {
    let (head, body) = match text.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&text[..at], &text[at + 2..]),
        None => (text, &b""[..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    (headers, body)
}
