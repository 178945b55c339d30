//! The direct CBOR decoders of PutRecords and PutRecord (the hot paths, which skip the JSON
//! translation) against the translation they replace: the input is one request body, and any
//! disagreement between the two paths, or a panic, is a bug. Seeds in `fuzz/seeds/cbor_hot_requests`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    core_engine::__fuzz_cbor_requests(data);
});
