//! Network allow and deny entries, one per line; the facade checks that
//! allow rules round-trip through their printed form and match their own
//! destination.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &[u8]| {
    if let Ok(text) = std::str::from_utf8(text) {
        let entries: Vec<String> = text.lines().map(str::to_string).collect();
        toolhost::fuzzing::network_entries(&entries);
    }
});
