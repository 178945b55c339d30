//! Hash keys: how a record finds its shard.
//!
//! Kinesis maps a partition key to a 128-bit number, the MD5 digest of its UTF-8 bytes read as a
//! big-endian unsigned integer, unless the producer gives an `ExplicitHashKey`. Each shard owns a
//! contiguous, inclusive range of that space.

use md5::{Digest, Md5};

/// The hash key of a partition key: MD5 as a big-endian 128-bit integer.
pub fn partition_key_hash(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// Parses an `ExplicitHashKey`: a decimal integer in `0..=2^128-1`, as AWS accepts it.
pub fn parse_hash_key(text: &str) -> Option<u128> {
    if super::is_plain_decimal(text) {
        text.parse().ok()
    } else {
        None
    }
}

/// An inclusive range of hash keys owned by one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HashRange {
    /// First hash key of the range.
    #[serde(with = "u128_string")]
    pub start: u128,
    /// Last hash key of the range, inclusive.
    #[serde(with = "u128_string")]
    pub end: u128,
}

impl HashRange {
    /// Whether `hash` falls in the range.
    pub fn contains(&self, hash: u128) -> bool {
        self.start <= hash && hash <= self.end
    }
}

/// Splits the whole hash space into `count` even ranges, the last one absorbing the remainder,
/// as CreateStream does: with `step = floor(2^128 / count)`, range i is `[i*step, (i+1)*step - 1]`.
pub fn even_ranges(count: u32) -> Vec<HashRange> {
    assert!(count > 0, "a stream has at least one shard");
    if count == 1 {
        return vec![HashRange {
            start: 0,
            end: u128::MAX,
        }];
    }
    let count = u128::from(count);
    // floor(2^128 / n) computed without overflow: (2^128 - 1) / n, plus one when n divides 2^128.
    let step = u128::MAX / count + u128::from((u128::MAX % count) == count - 1);
    (0..count)
        .map(|i| HashRange {
            start: i * step,
            end: if i == count - 1 {
                u128::MAX
            } else {
                (i + 1) * step - 1
            },
        })
        .collect()
}

/// Serde as a decimal string, the way Kinesis sends hash keys and sequence numbers.
pub(crate) mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_hash_matches_known_vectors() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e; md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(partition_key_hash(""), 0xd41d8cd98f00b204e9800998ecf8427e);
        assert_eq!(partition_key_hash("a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }

    #[test]
    fn explicit_hash_keys_follow_aws_rules() {
        assert_eq!(parse_hash_key("0"), Some(0));
        assert_eq!(
            parse_hash_key("340282366920938463463374607431768211455"),
            Some(u128::MAX)
        );
        assert_eq!(
            parse_hash_key("340282366920938463463374607431768211456"),
            None
        );
        assert_eq!(parse_hash_key("-1"), None);
        assert_eq!(parse_hash_key("01"), None);
        assert_eq!(parse_hash_key(""), None);
        assert_eq!(parse_hash_key("1e3"), None);
    }

    #[test]
    fn even_ranges_cover_the_space_without_gaps() {
        for n in [1u32, 2, 3, 4, 7, 16, 1000] {
            let ranges = even_ranges(n);
            assert_eq!(ranges.len(), n as usize);
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges.last().unwrap().end, u128::MAX);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end + 1, pair[1].start);
            }
        }
        // The values AWS shows for a 2-shard stream.
        let two = even_ranges(2);
        assert_eq!(
            two[0].end.to_string(),
            "170141183460469231731687303715884105727"
        );
        assert_eq!(
            two[1].start.to_string(),
            "170141183460469231731687303715884105728"
        );
        // 3 shards: step = floor(2^128 / 3).
        assert_eq!(
            even_ranges(3)[1].start.to_string(),
            "113427455640312821154458202477256070485"
        );
    }
}
