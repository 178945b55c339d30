//! The byte layout of a queue's journal (see the [store](super::store) for the files and the
//! rules); pure functions, no I/O.

use super::state::DeliveryChange;
use crate::storage::framed::{self, FRAME_HEADER_LEN, FrameError};

/// First bytes of every journal.
pub(super) const MAGIC: [u8; 8] = *b"SHRDLQJN";
/// Version of the journal layout; bumped on any incompatible change.
pub(super) const VERSION: u32 = 1;
/// Magic (8) + version (4) + snapshot tag (8).
pub(super) const HEADER_LEN: usize = 20;

/// The header of a journal that follows the snapshot tagged `tag`.
pub(super) fn header(tag: u64) -> [u8; HEADER_LEN] {
    let mut out = [0; HEADER_LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..].copy_from_slice(&tag.to_le_bytes());
    out
}

/// Appends the frame of one answer's changes to `out`; fails with the payload's size if it
/// exceeds the frame limit (the caller then writes a snapshot instead).
pub(super) fn push_entry(changes: &[DeliveryChange], out: &mut Vec<u8>) -> Result<(), usize> {
    framed::push_frame(out, |payload| {
        serde_json::to_writer(payload, changes).expect("queue changes serialise");
    })
}

/// What a journal holds for the snapshot tagged `tag`: each answer's changes, in order, and
/// the offset and error of a damaged last entry that was left out. A journal shorter than its
/// header or of another snapshot holds nothing for this one; any other damage (a bad header,
/// a bad entry with more bytes after it) is an error naming the offset.
pub(super) fn read(buf: &[u8], tag: u64) -> Result<Journal, String> {
    let empty = Journal {
        entries: Vec::new(),
        ignored_tail: None,
    };
    if buf.len() < HEADER_LEN {
        // Created by a compaction that did not finish: its snapshot holds everything.
        return Ok(empty);
    }
    if buf[..8] != MAGIC {
        return Err(format!("bad journal magic {:02x?}", &buf[..8]));
    }
    let version = u32::from_le_bytes(buf[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!("unsupported journal format version {version}"));
    }
    if u64::from_le_bytes(buf[12..HEADER_LEN].try_into().expect("8 bytes")) != tag {
        // The journal of an older snapshot, whose entries the newer snapshot includes.
        return Ok(empty);
    }
    let scan = framed::scan(buf, HEADER_LEN, |payload| {
        serde_json::from_slice(&buf[payload])
            .map_err(|_| FrameError::Payload("not a list of queue changes"))
    });
    let ignored_tail = match scan.bad {
        None => None,
        Some(bad) if bad.torn || is_last(buf, bad.offset) => {
            Some(format!("offset {}: {}", bad.offset, bad.error))
        }
        Some(bad) => {
            return Err(format!(
                "journal entry at offset {} is damaged ({}) and entries follow it",
                bad.offset, bad.error
            ));
        }
    };
    Ok(Journal {
        entries: scan.items,
        ignored_tail,
    })
}

/// Whether the frame at `offset` ends exactly at the end of `buf`: a complete last entry that
/// does not read back (a crash while its sectors were written). It was never answered: an
/// answer waits for its entry to be synced, and nothing is appended after an entry that failed.
fn is_last(buf: &[u8], offset: usize) -> bool {
    buf.get(offset..offset + 4)
        .and_then(|len| len.try_into().ok())
        .map(u32::from_le_bytes)
        .and_then(|len| offset.checked_add(FRAME_HEADER_LEN + len as usize))
        == Some(buf.len())
}

/// What [`read`] found.
#[derive(Debug)]
pub(super) struct Journal {
    /// Each answer's changes, oldest first.
    pub(super) entries: Vec<Vec<DeliveryChange>>,
    /// Where and why a damaged last entry was left out.
    pub(super) ignored_tail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::queues::state::{RecordKey, Tracked};

    fn entry(n: u64) -> Vec<DeliveryChange> {
        let key = RecordKey { shard: 1, seq: 40 };
        vec![
            DeliveryChange::Deliveries(n),
            DeliveryChange::Cursor(1, 41),
            DeliveryChange::Track(
                key,
                Tracked {
                    receive_count: 1,
                    first_receive_ms: Some(5),
                    visible_at_ms: 30_005,
                    dead_letter: false,
                    delivery: n,
                },
            ),
        ]
    }

    fn journal(tag: u64, entries: &[Vec<DeliveryChange>]) -> Vec<u8> {
        let mut out = header(tag).to_vec();
        for e in entries {
            push_entry(e, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn the_header_has_the_documented_bytes() {
        let mut expected = b"SHRDLQJN".to_vec();
        expected.extend([1, 0, 0, 0]);
        expected.extend([7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(header(7).to_vec(), expected);
    }

    #[test]
    fn a_torn_or_damaged_last_entry_is_left_out() {
        let whole = journal(7, &[entry(1), entry(2)]);
        let first_len = journal(7, &[entry(1)]).len();
        let read_all = read(&whole, 7).unwrap();
        assert_eq!(read_all.entries, [entry(1), entry(2)]);
        assert!(read_all.ignored_tail.is_none());
        // Cut anywhere in the last entry: the first is kept, the last never happened.
        for cut in first_len + 1..whole.len() {
            let got = read(&whole[..cut], 7).unwrap();
            assert_eq!(got.entries, [entry(1)], "cut at {cut}");
            assert!(got.ignored_tail.is_some(), "cut at {cut}");
        }
        assert_eq!(read(&whole[..first_len], 7).unwrap().entries, [entry(1)]);
        // Complete but damaged (a payload bit, its length, or zeros): left out as well.
        let mut flipped = whole.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let got = read(&flipped, 7).unwrap();
        assert_eq!(got.entries, [entry(1)]);
        assert!(got.ignored_tail.unwrap().contains("crc"));
        let mut zeroed = whole.clone();
        zeroed[first_len..].fill(0);
        assert_eq!(read(&zeroed, 7).unwrap().entries, [entry(1)]);
    }

    #[test]
    fn damage_before_the_last_entry_or_in_the_header_is_an_error() {
        let whole = journal(7, &[entry(1), entry(2)]);
        let mut flipped = whole.clone();
        flipped[HEADER_LEN + FRAME_HEADER_LEN + 3] ^= 1;
        let error = read(&flipped, 7).unwrap_err();
        assert!(error.contains("offset 20"), "{error}");
        let mut magic = whole.clone();
        magic[0] = b'X';
        assert!(read(&magic, 7).unwrap_err().contains("magic"));
        let mut version = whole.clone();
        version[8] = 2;
        assert!(read(&version, 7).unwrap_err().contains("version 2"));
    }

    #[test]
    fn a_short_journal_or_one_of_another_snapshot_holds_nothing() {
        let whole = journal(7, &[entry(1)]);
        for cut in 0..HEADER_LEN {
            assert!(read(&whole[..cut], 7).unwrap().entries.is_empty());
        }
        assert!(read(&whole, 8).unwrap().entries.is_empty());
    }
}
