//! Sequence numbers.
//!
//! A sequence number is a 128-bit integer sent as a decimal string. Its layout lets the engine
//! check where a number came from and keeps numbers growing with time:
//!
//! | bits    | field                                                         |
//! |---------|---------------------------------------------------------------|
//! | 124-127 | format version, always 2 (so every number has 38 digits)      |
//! | 80-123  | milliseconds since the Unix epoch when the record arrived     |
//! | 56-79   | shard index within the stream                                 |
//! | 0-55    | per-shard counter, starting at 0 for the shard's first number |
//!
//! Within a shard, numbers strictly increase because the time never goes back (the engine uses
//! the later of the clock and the shard's last time) and the counter always goes up. Across
//! shards of one stream they are unique because the shard index is part of the number.

const VERSION: u128 = 2;
const TIME_BITS: u32 = 44;
const SHARD_BITS: u32 = 24;
const COUNTER_BITS: u32 = 56;

/// The largest shard index a sequence number can carry.
pub const MAX_SHARD_INDEX: u32 = (1 << SHARD_BITS) - 1;

/// The fields of a sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SequenceNumber {
    /// Arrival time, epoch milliseconds.
    pub time_ms: i64,
    /// Shard index within the stream.
    pub shard_index: u32,
    /// Per-shard counter.
    pub counter: u64,
}

impl SequenceNumber {
    /// Packs the fields into the 128-bit number.
    pub fn to_u128(self) -> u128 {
        let time = (self.time_ms.max(0) as u128) & ((1 << TIME_BITS) - 1);
        let counter = u128::from(self.counter) & ((1 << COUNTER_BITS) - 1);
        (VERSION << (TIME_BITS + SHARD_BITS + COUNTER_BITS))
            | (time << (SHARD_BITS + COUNTER_BITS))
            | (u128::from(self.shard_index & MAX_SHARD_INDEX) << COUNTER_BITS)
            | counter
    }

    /// Unpacks a number made by this engine; `None` for anything else.
    pub fn from_u128(value: u128) -> Option<Self> {
        if value >> (TIME_BITS + SHARD_BITS + COUNTER_BITS) != VERSION {
            return None;
        }
        Some(Self {
            time_ms: ((value >> (SHARD_BITS + COUNTER_BITS)) & ((1 << TIME_BITS) - 1)) as i64,
            shard_index: ((value >> COUNTER_BITS) & u128::from(MAX_SHARD_INDEX)) as u32,
            counter: (value & ((1 << COUNTER_BITS) - 1)) as u64,
        })
    }

    /// The number that follows `last` in the same shard, at time `now_ms` or later.
    pub fn next_after(last: u128, now_ms: i64) -> Self {
        let last = Self::from_u128(last).expect("a shard only holds numbers this engine made");
        Self {
            time_ms: now_ms.max(last.time_ms),
            shard_index: last.shard_index,
            counter: last.counter + 1,
        }
    }
}

/// Parses a sequence number as clients send it: decimal digits, no sign, no leading zero.
pub fn parse(text: &str) -> Option<u128> {
    if is_well_formed(text) {
        text.parse().ok()
    } else {
        None
    }
}

/// Whether `text` has the shape of a sequence number per the Kinesis model (`0|([1-9]\d{0,128})`),
/// even if it is too large for this engine to have made.
pub fn is_well_formed(text: &str) -> bool {
    text.len() <= 129 && super::is_plain_decimal(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_has_38_digits() {
        let seq = SequenceNumber {
            time_ms: 1_763_000_000_123,
            shard_index: 7,
            counter: 42,
        };
        let n = seq.to_u128();
        assert_eq!(SequenceNumber::from_u128(n), Some(seq));
        assert_eq!(n.to_string().len(), 38);
        assert_eq!(parse(&n.to_string()), Some(n));
    }

    #[test]
    fn numbers_grow_within_a_shard_even_if_the_clock_goes_back() {
        let first = SequenceNumber {
            time_ms: 5_000,
            shard_index: 1,
            counter: 0,
        }
        .to_u128();
        let second = SequenceNumber::next_after(first, 4_000).to_u128();
        let third = SequenceNumber::next_after(second, 6_000).to_u128();
        assert!(first < second && second < third);
        assert_eq!(SequenceNumber::from_u128(third).unwrap().time_ms, 6_000);
    }

    #[test]
    fn foreign_numbers_are_recognised() {
        assert_eq!(SequenceNumber::from_u128(12345), None);
        assert_eq!(parse("007"), None);
        assert_eq!(parse("abc"), None);
        assert!(is_well_formed(
            "49590338271490256608559692538361571095921575989136588898"
        ));
        assert_eq!(
            parse("49590338271490256608559692538361571095921575989136588898"),
            None
        );
    }
}
