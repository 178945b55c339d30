//! `size()` and `size_with()` are exact, over many random aggregates; each one also round-trips and
//! matches prost's encoding of the same message.

use super::super::Aggregator;
use super::super::encode::{put_varint, varint_len};
use super::{Input, Rng, aggregate, as_is, expected, prost_encoding, read};

/// Data lengths around every varint boundary up to three bytes.
const EDGE_LENGTHS: [usize; 9] = [0, 1, 126, 127, 128, 129, 16_383, 16_384, 16_385];

struct Generated {
    partition_keys: Vec<String>,
    explicit_hash_keys: Vec<Option<String>>,
    data: Vec<Vec<u8>>,
}

impl Generated {
    fn inputs(&self) -> Vec<Input<'_>> {
        (0..self.data.len())
            .map(|i| {
                (
                    &*self.partition_keys[i],
                    self.explicit_hash_keys[i].as_deref(),
                    &*self.data[i],
                )
            })
            .collect()
    }
}

fn key(rng: &mut Rng, pool: usize) -> String {
    match rng.below(10) {
        // Shared keys, so tables deduplicate.
        0..=5 => format!("key-{}", rng.below(pool)),
        // Distinct keys with lengths around the one-byte varint boundary.
        6 | 7 => "k".repeat(120 + rng.below(20)) + &rng.next().to_string(),
        // Multi-byte UTF-8.
        8 => format!("ключ-{}-🔑", rng.below(pool)),
        _ => format!("unique-{}", rng.next()),
    }
}

fn generate(rng: &mut Rng) -> Generated {
    let count = match rng.below(8) {
        0 => 0,
        // Enough distinct keys for two-byte table indexes.
        1 => 150 + rng.below(200),
        _ => rng.below(40),
    };
    let pool = 1 + rng.below(8);
    let mut g = Generated {
        partition_keys: Vec::new(),
        explicit_hash_keys: Vec::new(),
        data: Vec::new(),
    };
    for _ in 0..count {
        g.partition_keys.push(if count > 100 && rng.below(2) == 0 {
            format!("d{}", rng.next())
        } else {
            key(rng, pool)
        });
        g.explicit_hash_keys.push(match rng.below(3) {
            0 => Some((u128::from(rng.next()) << 64 | u128::from(rng.next())).to_string()),
            1 => Some(rng.below(pool).to_string()),
            _ => None,
        });
        let len = if rng.below(10) == 0 {
            EDGE_LENGTHS[rng.below(EDGE_LENGTHS.len())]
        } else {
            rng.below(300)
        };
        g.data.push((0..len).map(|_| rng.next() as u8).collect());
    }
    g
}

#[test]
fn sizes_are_exact_and_aggregates_round_trip() {
    let mut rng = Rng(0x5eed);
    for _ in 0..400 {
        let generated = generate(&mut rng);
        let inputs = generated.inputs();
        // `aggregate` asserts size_with before each push, size after it, and finish().len().
        let bytes = aggregate(&inputs);
        if inputs.is_empty() {
            // Magic and digest alone are too short to be read as an aggregate.
            assert_eq!(read(&bytes), as_is(&bytes));
        } else {
            assert_eq!(read(&bytes), expected(&inputs));
        }
        assert_eq!(bytes, prost_encoding(&inputs));
    }
}

#[test]
fn size_with_does_not_add() {
    let mut agg = Aggregator::new();
    agg.push("pk", Some("1"), b"data");
    let before = agg.size();
    let with_new = agg.size_with("other", Some("2"), 10);
    assert_eq!(agg.size_with("other", Some("2"), 10), with_new);
    assert_eq!(agg.size(), before);
    assert_eq!(agg.len(), 1);
    // A new key costs its table entry (tag, length, bytes); a known one only its index.
    assert_eq!(
        with_new - agg.size_with("pk", Some("1"), 10),
        (1 + 1 + 5) + (1 + 1 + 1)
    );
    agg.push("third", None, b"");
    assert_eq!(agg.clone().finish().len(), agg.size());
    assert!(!agg.is_empty());
    assert!(Aggregator::with_capacity(1024).is_empty());
}

#[test]
fn large_record_needs_three_byte_lengths() {
    let data = vec![7u8; (1 << 20) + 5];
    let inputs: [Input<'_>; 2] = [("a", None, &data), ("b", Some("9"), &data[..1 << 14])];
    let bytes = aggregate(&inputs);
    assert_eq!(read(&bytes), expected(&inputs));
}

#[test]
fn varint_lengths() {
    for shift in 0..64 {
        for v in [
            (1u64 << shift) - 1,
            1u64 << shift,
            (1u64 << shift) + 1,
            u64::MAX >> shift,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            assert_eq!(prost::encoding::decode_varint(&mut &out[..]).unwrap(), v);
        }
    }
    assert_eq!(varint_len(0), 1);
    assert_eq!(varint_len(u64::MAX), 10);
}
