//! A request body through JSON and JSON-RPC message parsing (no headers, so
//! the stateless checks refuse at once).
#![no_main]

libfuzzer_sys::fuzz_target!(|body: &[u8]| {
    toolhost::fuzzing::mcp_message(&http::HeaderMap::new(), body);
});
