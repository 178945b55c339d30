//! The writer: a hand-written protobuf encoder that keeps the aggregate in its final byte form as
//! records arrive.
//!
//! Why not build prost structs and serialize them at the end: the producer asks for the exact size
//! before every record (to close an aggregate at `AggregationMaxSize`), so the encoder needs
//! byte-exact incremental accounting anyway, and writing each record straight into one buffer costs
//! no allocation per record and leaves [`Aggregator::finish`] with three copies and an MD5. The
//! output is checked against prost's encoding of the same message in the tests.

use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use md5::{Digest, Md5};

use super::{FIXED_OVERHEAD, MAGIC};

/// Tag of `AggregatedRecord.partition_key_table` (field 1, length-delimited).
pub(super) const TAG_PK_TABLE: u8 = 0x0A;
/// Tag of `AggregatedRecord.explicit_hash_key_table` (field 2, length-delimited).
pub(super) const TAG_EHK_TABLE: u8 = 0x12;
/// Tag of `AggregatedRecord.records` (field 3, length-delimited).
pub(super) const TAG_RECORD: u8 = 0x1A;
/// Tag of `Record.partition_key_index` (field 1, varint).
pub(super) const TAG_PK_INDEX: u8 = 0x08;
/// Tag of `Record.explicit_hash_key_index` (field 2, varint).
pub(super) const TAG_EHK_INDEX: u8 = 0x10;
/// Tag of `Record.data` (field 3, length-delimited).
pub(super) const TAG_DATA: u8 = 0x1A;

/// Bytes the base-128 varint encoding of `v` takes (1 to 10).
pub(super) fn varint_len(v: u64) -> usize {
    // Significant bits, with 0 counting as one, in groups of seven.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends the base-128 varint encoding of `v`.
pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes of a length-delimited field with `len` payload bytes: tag, length varint, payload.
fn delimited_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// Bytes of one `records` entry, tag and length included.
fn record_len(pk_index: u64, ehk_index: Option<u64>, data_len: usize) -> usize {
    let inner = 1
        + varint_len(pk_index)
        + ehk_index.map_or(0, |i| 1 + varint_len(i))
        + delimited_len(data_len);
    delimited_len(inner)
}

/// A key looked up in a [`KeyTable`]: its hash, and its index if the table has it.
#[derive(Debug, Clone, Copy)]
struct KeyProbe {
    hash: u64,
    index: Option<u64>,
}

/// A user record's keys looked up in an [`Aggregator`] ([`Aggregator::size_with_probe`]), so
/// that adding it right after ([`Aggregator::push_probed`]) hashes and compares them no more.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    partition_key: KeyProbe,
    explicit_hash_key: Option<KeyProbe>,
    /// The number of records when probed: a probe is only good until the next push.
    records: usize,
}

/// Where a key's bytes sit in [`KeyTable::encoded`], and its index in the table.
#[derive(Debug, Clone, Copy)]
struct Slot {
    start: usize,
    len: usize,
    index: u64,
}

/// One of the two string tables, deduplicated like the KPL's `KeySet`: each distinct key once, in
/// order of first use.
///
/// The keys live only in `encoded`, already serialized as table entries; the hash table indexes
/// into it, so a new key costs no allocation of its own (most producers use a distinct partition
/// key per record).
#[derive(Clone, Default)]
struct KeyTable {
    tag: u8,
    encoded: Vec<u8>,
    slots: HashTable<Slot>,
    count: u64,
    hasher: foldhash::fast::RandomState,
}

impl KeyTable {
    fn new(tag: u8) -> Self {
        Self {
            tag,
            ..Self::default()
        }
    }

    /// Looks `key` up: its hash, and its index if the table has it.
    fn probe(&self, key: &str) -> KeyProbe {
        let hash = self.hasher.hash_one(key.as_bytes());
        let found = self.slots.find(hash, |s| {
            &self.encoded[s.start..s.start + s.len] == key.as_bytes()
        });
        KeyProbe {
            hash,
            index: found.map(|slot| slot.index),
        }
    }

    /// The index `key` has or would get, and the bytes adding it would add to the table.
    fn cost(&self, key: &str, probe: KeyProbe) -> (u64, usize) {
        match probe.index {
            Some(index) => (index, 0),
            None => (self.count, delimited_len(key.len())),
        }
    }

    /// The index of `key`, adding it to the table if `probe` (of this table as it is) did not
    /// find it.
    fn index_probed(&mut self, key: &str, probe: KeyProbe) -> u64 {
        if let Some(index) = probe.index {
            return index;
        }
        let Self {
            tag,
            encoded,
            slots,
            count,
            hasher,
        } = self;
        encoded.push(*tag);
        put_varint(encoded, key.len() as u64);
        let start = encoded.len();
        encoded.extend_from_slice(key.as_bytes());
        let index = *count;
        let slot = Slot {
            start,
            len: key.len(),
            index,
        };
        slots.insert_unique(probe.hash, slot, |s| {
            hasher.hash_one(&encoded[s.start..s.start + s.len])
        });
        *count += 1;
        index
    }

    /// An empty table with room for as many keys and bytes as this one holds.
    fn empty_like(&self) -> Self {
        Self {
            tag: self.tag,
            encoded: Vec::with_capacity(self.encoded.len()),
            slots: HashTable::with_capacity(self.slots.len()),
            count: 0,
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

/// Builds one aggregated Kinesis record from user records.
///
/// Records are serialized as they are pushed, so [`size`](Self::size) and
/// [`size_with`](Self::size_with) are exact and O(1) (one hash lookup per key) and
/// [`finish`](Self::finish) only concatenates and hashes.
///
/// Explicit hash keys are stored as given. The caller validates them first, as the KPL's
/// `addUserRecord` does: [`hash_key`](super::hash_key) accepts only the canonical decimal form that
/// the KPL stores after re-rendering the user's key. An aggregate of zero records
/// finishes as 20 bytes that readers take for a plain record, and one of a single record is better
/// sent as that record; choosing is the producer's job.
#[derive(Clone)]
pub struct Aggregator {
    partition_keys: KeyTable,
    explicit_hash_keys: KeyTable,
    /// The serialized `records` entries, tags and lengths included.
    records: Vec<u8>,
    count: usize,
}

impl fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts, not the serialized bytes, which can be megabytes.
        f.debug_struct("Aggregator")
            .field("records", &self.count)
            .field("size", &self.size())
            .field("partition_keys", &self.partition_keys.count)
            .field("explicit_hash_keys", &self.explicit_hash_keys.count)
            .finish()
    }
}

impl Default for Aggregator {
    fn default() -> Self {
        Self {
            partition_keys: KeyTable::new(TAG_PK_TABLE),
            explicit_hash_keys: KeyTable::new(TAG_EHK_TABLE),
            records: Vec::new(),
            count: 0,
        }
    }
}

impl Aggregator {
    /// An empty aggregate.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty aggregate with room for `bytes` of serialized records (for example
    /// `AggregationMaxSize`), so the record buffer never grows while it fills.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            records: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// An empty aggregate with room for the records, keys and bytes this one holds: the next
    /// aggregate of a busy shard fills up alike, and need not grow (and copy) its buffers.
    pub(crate) fn empty_like(&self) -> Self {
        Self {
            partition_keys: self.partition_keys.empty_like(),
            explicit_hash_keys: self.explicit_hash_keys.empty_like(),
            records: Vec::with_capacity(self.records.len()),
            count: 0,
        }
    }

    /// Number of user records added.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Exact size in bytes of [`finish`](Self::finish)'s output with the records added so far.
    pub fn size(&self) -> usize {
        FIXED_OVERHEAD
            + self.partition_keys.encoded.len()
            + self.explicit_hash_keys.encoded.len()
            + self.records.len()
    }

    /// Exact size the aggregate would have with one more record, without adding it.
    ///
    /// A key already in its table costs only its index; a new one adds a table entry.
    pub fn size_with(
        &self,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data_len: usize,
    ) -> usize {
        self.size_with_probe(partition_key, explicit_hash_key, data_len)
            .0
    }

    /// [`size_with`](Self::size_with), and the keys' lookups for a
    /// [`push_probed`](Self::push_probed) of the same record right after.
    pub(crate) fn size_with_probe(
        &self,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data_len: usize,
    ) -> (usize, Probe) {
        let pk_probe = self.partition_keys.probe(partition_key);
        let (pk_index, pk_cost) = self.partition_keys.cost(partition_key, pk_probe);
        let ehk_probe = explicit_hash_key.map(|ehk| (ehk, self.explicit_hash_keys.probe(ehk)));
        let (ehk_index, ehk_cost) = match ehk_probe {
            Some((ehk, probe)) => {
                let (index, cost) = self.explicit_hash_keys.cost(ehk, probe);
                (Some(index), cost)
            }
            None => (None, 0),
        };
        let size = self.size() + pk_cost + ehk_cost + record_len(pk_index, ehk_index, data_len);
        let probe = Probe {
            partition_key: pk_probe,
            explicit_hash_key: ehk_probe.map(|(_, probe)| probe),
            records: self.count,
        };
        (size, probe)
    }

    /// Adds a user record.
    pub fn push(&mut self, partition_key: &str, explicit_hash_key: Option<&str>, data: &[u8]) {
        let (_, probe) = self.size_with_probe(partition_key, explicit_hash_key, data.len());
        self.push_probed(probe, partition_key, explicit_hash_key, data);
    }

    /// Adds a user record whose keys `probe` looked up in this aggregate as it is now.
    pub(crate) fn push_probed(
        &mut self,
        probe: Probe,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data: &[u8],
    ) {
        debug_assert_eq!(
            probe.records, self.count,
            "a probe is good until the next push"
        );
        let pk_index = self
            .partition_keys
            .index_probed(partition_key, probe.partition_key);
        let ehk_index = explicit_hash_key
            .zip(probe.explicit_hash_key)
            .map(|(ehk, probe)| self.explicit_hash_keys.index_probed(ehk, probe));

        let inner = 1
            + varint_len(pk_index)
            + ehk_index.map_or(0, |i| 1 + varint_len(i))
            + delimited_len(data.len());
        let out = &mut self.records;
        out.reserve(delimited_len(inner));
        out.push(TAG_RECORD);
        put_varint(out, inner as u64);
        out.push(TAG_PK_INDEX);
        put_varint(out, pk_index);
        if let Some(i) = ehk_index {
            out.push(TAG_EHK_INDEX);
            put_varint(out, i);
        }
        out.push(TAG_DATA);
        put_varint(out, data.len() as u64);
        out.extend_from_slice(data);
        self.count += 1;
    }

    /// The aggregated record: magic, protobuf, MD5 of the protobuf. Its length is
    /// [`size`](Self::size).
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.partition_keys.encoded);
        out.extend_from_slice(&self.explicit_hash_keys.encoded);
        out.extend_from_slice(&self.records);
        let digest = Md5::digest(&out[MAGIC.len()..]);
        out.extend_from_slice(&digest);
        out
    }
}
