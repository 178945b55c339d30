//! Whole requests through the engine's real dispatch path (routing, JSON and CBOR decoding,
//! every Kinesis and DynamoDB operation, encoding), against one in-memory engine that keeps its
//! state between inputs. Any panic, stack overflow or 500 answer is a bug. The input format (a
//! selector byte per request, sequences, `@ITER@` and `@TOKEN@`) is described in
//! `core-engine/src/fuzz.rs`; the seeds in `fuzz/seeds/whole_request` cover every operation.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    core_engine::__fuzz_requests(data);
});
