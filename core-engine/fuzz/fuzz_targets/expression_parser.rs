//! Feeds arbitrary UTF-8 to every DynamoDB expression parser (condition, update, projection)
//! and evaluates what parses; any panic is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        core_engine::__fuzz_expression(text);
    }
});
