//! A plugin's sidecar TOML, parsed and checked against the default policy.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &[u8]| {
    if let Ok(text) = std::str::from_utf8(text) {
        let _ = toolhost::fuzzing::sidecar(text);
    }
});
