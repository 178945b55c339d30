//! The data model: streams, shards, hash keys, sequence numbers and iterators, as plain data
//! with methods that take the current time as an argument.

pub(crate) mod consumer;
pub mod hash;
pub mod iterator;
pub(crate) mod records;
pub(crate) mod registry;
pub(crate) mod reshard;
pub mod sequence;
pub(crate) mod settings;
pub(crate) mod shard;
pub(crate) mod stream;
pub(crate) mod throttle;

/// Whether `text` is a non-negative decimal integer without sign or leading zero.
pub(crate) fn is_plain_decimal(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
}
