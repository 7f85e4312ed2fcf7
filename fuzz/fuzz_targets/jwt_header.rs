//! A bearer token's header, peeked at before any signature check.
#![no_main]

libfuzzer_sys::fuzz_target!(|token: &[u8]| {
    // Header values reach the verifier as text; other bytes are refused
    // before it.
    if let Ok(token) = std::str::from_utf8(token) {
        let _ = toolhost::fuzzing::jwt_header(token);
    }
});
