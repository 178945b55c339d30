//! Feeds arbitrary bytes to the KPL aggregation decoder.
//!
//! Each input is read twice: as it is, and as the protobuf of an aggregate (behind the magic, with
//! a matching MD5 trailer) so that mutations reach the protobuf parser instead of stopping at the
//! digest check.
//!
//! Checks that `deaggregate` and `deaggregate_for_shard` never panic, that the shard variant
//! returns either what `deaggregate` returns or nothing, and that any aggregate read from the input
//! re-encodes to one that reads back as the same user records with an exactly predicted size.
//!
//! From `kpl/`, with `cargo install cargo-fuzz` done once. Only a stable toolchain is needed:
//! `RUSTC_BOOTSTRAP=1` lets it take cargo-fuzz's nightly-only flags (`-Zsanitizer=address`). The
//! first directory collects the corpus (libFuzzer wants it to exist), the second holds the
//! committed seeds (the byte vectors of the unit tests, whole and as bare protobuf); `--dev` builds
//! unoptimized, drop it for speed.
//!
//! ```text
//! mkdir -p fuzz/corpus/deaggregate
//! RUSTC_BOOTSTRAP=1 cargo fuzz run --dev deaggregate fuzz/corpus/deaggregate fuzz/seeds/deaggregate \
//!     -- -max_total_time=30
//! ```
#![no_main]

use bytes::Bytes;
use kpl::aggregation::{Aggregator, MAGIC, UserRecord, deaggregate, deaggregate_for_shard};
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};

fuzz_target!(|input: &[u8]| {
    check(input);
    let mut wrapped = MAGIC.to_vec();
    wrapped.extend_from_slice(input);
    wrapped.extend_from_slice(&Md5::digest(input));
    check(&wrapped);
});

fn check(input: &[u8]) {
    let data = Bytes::copy_from_slice(input);
    let out = deaggregate("container", Some("1"), &data);

    // A shard range from the last input byte: the full range, or a quarter of the hash space.
    let (start, end) = match input.last().map_or(0, |b| b % 5) {
        0 => (0, u128::MAX),
        q => {
            let start = u128::from(q - 1) << 126;
            (start, start + ((1u128 << 126) - 1))
        }
    };
    let shard = deaggregate_for_shard("container", Some("1"), &data, start, end);
    assert!(shard.is_empty() || shard == out);

    let as_is = out.len() == 1
        && out[0].partition_key == "container"
        && out[0].explicit_hash_key.as_deref() == Some("1")
        && out[0].data == data;
    if as_is || out.is_empty() {
        return;
    }

    let mut aggregator = Aggregator::new();
    for (i, record) in out.iter().enumerate() {
        assert_eq!(record.sub_sequence_number, i as u64);
        let key = record.explicit_hash_key.as_deref();
        let predicted = aggregator.size_with(&record.partition_key, key, record.data.len());
        aggregator.push(&record.partition_key, key, &record.data);
        assert_eq!(aggregator.size(), predicted);
    }
    let size = aggregator.size();
    let encoded = Bytes::from(aggregator.finish());
    assert_eq!(encoded.len(), size);
    let again: Vec<UserRecord> = deaggregate("other", None, &encoded);
    assert_eq!(again, out);
}
