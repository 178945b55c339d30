//! Checkpoint values as the lease table stores them (`checkpoint` + `checkpointSubSequenceNumber`).

use std::cmp::Ordering;
use std::fmt;

/// A position in a shard: a sentinel or a record's (sequence number, sub-sequence number).
///
/// Sentinels are stored in `checkpoint` as the strings the Java KCL uses: `TRIM_HORIZON`, `LATEST`,
/// `AT_TIMESTAMP` (where a lease starts) and `SHARD_END` (the shard was read to its end).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Checkpoint {
    /// Start at the oldest record.
    TrimHorizon,
    /// Start at the tip.
    Latest,
    /// Start at the configured timestamp.
    AtTimestamp,
    /// The shard was processed to its end; its children may start.
    ShardEnd,
    /// Processed up to and including this (sub-)record.
    Sequence(SequenceNumber),
}

/// A record's position: Kinesis sequence number and KPL sub-sequence number (0 for plain records).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceNumber {
    /// Decimal Kinesis sequence number.
    pub sequence: String,
    /// Index of the user record inside a KPL aggregate.
    pub sub_sequence: u64,
}

impl SequenceNumber {
    /// A position from its parts.
    pub fn new(sequence: impl Into<String>, sub_sequence: u64) -> Self {
        Self {
            sequence: sequence.into(),
            sub_sequence,
        }
    }
}

/// Compares decimal sequence numbers (up to 128 bits and beyond) without parsing them.
pub(crate) fn compare_sequence(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_sequence(&self.sequence, &other.sequence)
            .then(self.sub_sequence.cmp(&other.sub_sequence))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

pub(crate) const TRIM_HORIZON: &str = "TRIM_HORIZON";
pub(crate) const LATEST: &str = "LATEST";
pub(crate) const AT_TIMESTAMP: &str = "AT_TIMESTAMP";
pub(crate) const SHARD_END: &str = "SHARD_END";

impl Checkpoint {
    /// A checkpoint at a record.
    pub fn at(sequence: impl Into<String>, sub_sequence: u64) -> Self {
        Checkpoint::Sequence(SequenceNumber::new(sequence, sub_sequence))
    }

    /// The `checkpoint` attribute's string.
    pub fn as_str(&self) -> &str {
        match self {
            Checkpoint::TrimHorizon => TRIM_HORIZON,
            Checkpoint::Latest => LATEST,
            Checkpoint::AtTimestamp => AT_TIMESTAMP,
            Checkpoint::ShardEnd => SHARD_END,
            Checkpoint::Sequence(s) => &s.sequence,
        }
    }

    /// The `checkpointSubSequenceNumber` attribute (0 for sentinels, as the Java KCL writes).
    pub fn sub_sequence(&self) -> u64 {
        match self {
            Checkpoint::Sequence(s) => s.sub_sequence,
            _ => 0,
        }
    }

    /// Parses the stored pair; anything that is not a sentinel must be a decimal number.
    pub fn parse(value: &str, sub_sequence: u64) -> Option<Self> {
        Some(match value {
            TRIM_HORIZON => Checkpoint::TrimHorizon,
            LATEST => Checkpoint::Latest,
            AT_TIMESTAMP => Checkpoint::AtTimestamp,
            SHARD_END => Checkpoint::ShardEnd,
            v if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                Checkpoint::at(v, sub_sequence)
            }
            _ => return None,
        })
    }

    /// The record position, if this is not a sentinel.
    pub fn sequence(&self) -> Option<&SequenceNumber> {
        match self {
            Checkpoint::Sequence(s) => Some(s),
            _ => None,
        }
    }

    /// Whether `self` is at or beyond `other` in the shard. Start sentinels precede every record,
    /// `SHARD_END` follows every record.
    pub(crate) fn rank(&self) -> (u8, Option<&SequenceNumber>) {
        match self {
            Checkpoint::TrimHorizon | Checkpoint::Latest | Checkpoint::AtTimestamp => (0, None),
            Checkpoint::Sequence(s) => (1, Some(s)),
            Checkpoint::ShardEnd => (2, None),
        }
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checkpoint::Sequence(s) => write!(f, "{}/{}", s.sequence, s.sub_sequence),
            other => f.write_str(other.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_numerically() {
        assert!(SequenceNumber::new("9", 0) < SequenceNumber::new("10", 0));
        assert!(SequenceNumber::new("10", 1) > SequenceNumber::new("10", 0));
        assert!(
            SequenceNumber::new(
                "49590338271490256608559692538361571095921575989136588898",
                0
            ) > SequenceNumber::new(
                "49590338271490256608559692538361571095921575989136588897",
                5
            )
        );
    }

    #[test]
    fn sentinels_round_trip() {
        for c in [
            Checkpoint::TrimHorizon,
            Checkpoint::Latest,
            Checkpoint::AtTimestamp,
            Checkpoint::ShardEnd,
            Checkpoint::at("123", 4),
        ] {
            assert_eq!(Checkpoint::parse(c.as_str(), c.sub_sequence()), Some(c));
        }
        assert_eq!(Checkpoint::parse("garbage", 0), None);
    }

    #[test]
    fn ranks_order_start_records_end() {
        assert!(Checkpoint::TrimHorizon.rank() < Checkpoint::at("1", 0).rank());
        assert!(Checkpoint::at("1", 0).rank() < Checkpoint::ShardEnd.rank());
    }
}
