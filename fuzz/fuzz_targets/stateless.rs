//! Headers and a body through message parsing and the stateless era's
//! header-mirroring and `_meta` checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let (headers, body) = toolhost_fuzz::headers_and_body(input);
    toolhost::fuzzing::mcp_message(&headers, body);
});
