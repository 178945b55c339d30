//! Where a durable engine keeps queues: per queue, a snapshot and a journal of the changes
//! since.
//!
//! # Files
//! In `<data-dir>/queues/`:
//! ```text
//! <queue-id>.json            snapshot: the queue's definition and whole state, as JSON
//! <queue-id>.journal         the changes since that snapshot, appended
//! .<queue-id>.json.tmp       a snapshot being written; ignored
//! ```
//! The snapshot is a JSON object `{"definition": {...}, "state": {...}, "tag": n}`; `tag` is a
//! random nonzero u64 drawn for each snapshot (absent, read as 0, in snapshots written before
//! the journal existed).
//!
//! Journal, every integer little-endian, CRC32 the IEEE polynomial:
//! ```text
//! offset  size  field
//!      0     8  magic "SHRDLQJN" (53 48 52 44 4c 51 4a 4e)
//!      8     4  format version, u32 = 1
//!     12     8  tag of the snapshot the journal follows, u64
//!     20        entries, back to back, in the CRC-framed format shared with the write-ahead
//!               log (`storage::framed`: payload length n u32 1 ..= 64 MiB, CRC32 of the
//!               payload u32, n payload bytes); one entry per change, its payload a
//!               JSON array of delivery changes:
//!                 {"Track": [{"shard": s, "seq": q}, {"receive_count": c,
//!                   "first_receive_ms": t|null, "visible_at_ms": v, "dead_letter": b,
//!                   "delivery": d}]}   a record's state once pulled, received (delivery d
//!                                      names its receipt handle), its visibility changed,
//!                                      turned into a dead letter, or restored
//!                 {"Untrack": {"shard": s, "seq": q}}   acknowledged, or past retention
//!                 {"Cursor": [s, q]}                    the shard's pull position advanced
//!                 {"Deliveries": d}                     the last delivery number issued
//! ```
//!
//! # Writing
//! A change of a queue's delivery state (a receive, an acknowledgement, a visibility change,
//! a dead letter, a restore) appends one entry with just what changed and syncs the journal
//! before it is answered or visible, so its cost on disk is that of the change, not of the
//! queue. Any other change (CreateQueue, UpdateQueue, tags), the first change after the engine
//! starts, a change after a failed write, and a journal grown past [`Compaction`]'s bound
//! write a snapshot instead (compaction): written to the temporary file with a new tag,
//! synced, renamed over the snapshot, the directory synced; then the journal is recreated
//! holding only its header with that tag, synced, the directory synced. A crash between the
//! steps leaves the old snapshot with its journal, or the new snapshot with a journal of
//! another tag (ignored: the snapshot includes its entries) or shorter than its header (empty).
//! After a write fails, nothing more is appended to that journal (a half-written entry stays
//! its last); the next change writes a snapshot. DeleteQueue removes the snapshot, syncs the
//! directory, then removes the journal (a journal without its snapshot is never read).
//!
//! # Recovery
//! Each snapshot is read, then the entries of its journal (same tag) applied in order. An
//! entry that is incomplete, or complete but not reading back (CRC, length or payload), and is
//! the last of the journal is left out: a crash cut it while it was written, and it was never
//! answered, since answers wait for the sync. A damaged entry with more after it, a bad header
//! or an unreadable snapshot stops the engine with an error naming the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::storage::StorageError;
use crate::storage::wal::fs::{FileSystem, OsFs, WritableFile};

use super::journal;
use super::{QueueDef, QueueInner};

/// When a journal is rewritten as a snapshot: once it exceeds both `min_bytes` and `ratio`
/// times the size of its snapshot, so compaction costs a bounded multiple of the changes'
/// own bytes, and recovery reads a bounded multiple of the snapshot.
#[derive(Clone, Copy, Debug)]
pub(super) struct Compaction {
    pub(super) min_bytes: u64,
    pub(super) ratio: u64,
}

impl Default for Compaction {
    fn default() -> Self {
        Self {
            min_bytes: 64 * 1024,
            ratio: 4,
        }
    }
}

/// The queue directory of a durable engine on a file system, or nothing (queues in memory
/// only).
#[derive(Debug)]
pub(super) struct QueueStore {
    dir: Option<(Arc<dyn FileSystem>, PathBuf)>,
    compaction: Compaction,
    /// By queue id, the journal changes are appended to (none: the next change writes a
    /// snapshot). One lock per queue, so queues write in parallel.
    journals: Mutex<HashMap<String, Arc<Mutex<Option<OpenJournal>>>>>,
}

/// A journal open for appending.
#[derive(Debug)]
struct OpenJournal {
    file: Box<dyn WritableFile>,
    /// Its size, header included.
    len: u64,
    /// The size of its snapshot.
    snapshot_len: u64,
}

#[derive(Serialize)]
struct FileOut<'a> {
    definition: &'a QueueDef,
    state: &'a QueueInner,
    tag: u64,
}

#[derive(Deserialize)]
struct FileIn {
    definition: QueueDef,
    state: QueueInner,
    #[serde(default)]
    tag: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

impl QueueStore {
    /// A store in `dir` on the operating system's file system, or none.
    pub(super) fn new(dir: Option<PathBuf>) -> Self {
        Self::on(dir.map(|dir| (Arc::new(OsFs) as Arc<dyn FileSystem>, dir)))
    }

    /// A store in a directory of the given file system, or none.
    pub(super) fn on(dir: Option<(Arc<dyn FileSystem>, PathBuf)>) -> Self {
        Self {
            dir,
            compaction: Compaction::default(),
            journals: Mutex::default(),
        }
    }

    /// The same store, compacting by `compaction`.
    #[cfg(test)]
    pub(super) fn compacting(self, compaction: Compaction) -> Self {
        Self { compaction, ..self }
    }

    fn snapshot_path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.json"))
    }

    fn journal_path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.journal"))
    }

    fn slot(&self, id: &str) -> Arc<Mutex<Option<OpenJournal>>> {
        self.journals
            .lock()
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    /// Saves a queue whole (a new queue): a snapshot and an empty journal.
    pub(super) fn save(&self, def: &QueueDef, state: &QueueInner) -> Result<(), StorageError> {
        let Some((fs, dir)) = &self.dir else {
            return Ok(());
        };
        let slot = self.slot(&def.id);
        let mut journal = slot.lock();
        compact(fs.as_ref(), dir, def, state, &mut journal)
    }

    /// Saves the change of a queue from `before` to `after` durably (see the [module
    /// docs](self)); on an error the change may or may not be on disk, and the queue keeps
    /// `before`.
    pub(super) fn record(
        &self,
        def: &QueueDef,
        before: &QueueInner,
        after: &QueueInner,
    ) -> Result<(), StorageError> {
        let Some((fs, dir)) = &self.dir else {
            return Ok(());
        };
        let slot = self.slot(&def.id);
        let mut journal = slot.lock();
        let settings_kept = before.start == after.start
            && before.attributes == after.attributes
            && before.tags == after.tags
            && before.updated_ms == after.updated_ms;
        if !settings_kept || journal.is_none() {
            return compact(fs.as_ref(), dir, def, after, &mut journal);
        }
        let changes = after.delivery.changes_since(&before.delivery);
        if changes.is_empty() {
            return Ok(());
        }
        let mut entry = Vec::new();
        if journal::push_entry(&changes, &mut entry).is_err() {
            // Larger than a frame may be: the snapshot holds it.
            return compact(fs.as_ref(), dir, def, after, &mut journal);
        }
        let path = Self::journal_path(dir, &def.id);
        let open = journal.as_mut().expect("checked above");
        if let Err(error) = open.file.write_all(&entry).and_then(|()| open.file.sync()) {
            // Part of the entry may be on disk: nothing goes after it.
            *journal = None;
            return Err(io(&path)(error));
        }
        open.len += entry.len() as u64;
        let bound = (open.snapshot_len.saturating_mul(self.compaction.ratio))
            .max(self.compaction.min_bytes);
        if open.len > bound
            && let Err(error) = compact(fs.as_ref(), dir, def, after, &mut journal)
        {
            // The change is durable in the journal; the next change writes a snapshot.
            tracing::warn!(queue = %def.name, %error, "queue journal compaction failed");
        }
        Ok(())
    }

    /// Removes a deleted queue's files, durably.
    pub(super) fn forget(&self, id: &str) -> Result<(), StorageError> {
        let Some((fs, dir)) = &self.dir else {
            return Ok(());
        };
        let slot = self.slot(id);
        let mut journal = slot.lock();
        *journal = None;
        // The snapshot first: a journal is never read without it, while a snapshot left
        // without its journal would bring back an older state.
        for path in [Self::snapshot_path(dir, id), Self::journal_path(dir, id)] {
            match fs.remove(&path) {
                Ok(()) => fs.sync_dir(dir).map_err(io(dir))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        drop(journal);
        self.journals.lock().remove(id);
        Ok(())
    }

    /// Every saved queue, its journal applied. Temporary files (a save cut short) and
    /// journals without a snapshot are ignored.
    pub(super) fn load(&self) -> Result<Vec<(QueueDef, QueueInner)>, StorageError> {
        let Some((fs, dir)) = &self.dir else {
            return Ok(Vec::new());
        };
        let paths = match fs.list(dir) {
            Ok(paths) => paths,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(dir)(e)),
        };
        let mut queues = Vec::new();
        for path in paths {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let bytes = fs.read(&path).map_err(io(&path))?;
            let mut file: FileIn =
                serde_json::from_slice(&bytes).map_err(|e| StorageError::Io {
                    path: path.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })?;
            let journal_path = Self::journal_path(dir, &file.definition.id);
            let bytes = match fs.read(&journal_path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(io(&journal_path)(e)),
            };
            let read = journal::read(&bytes, file.tag).map_err(|reason| StorageError::Corrupt {
                path: journal_path.clone(),
                reason,
            })?;
            if let Some(tail) = read.ignored_tail {
                tracing::warn!(path = %journal_path.display(), %tail,
                    "left out the unfinished last entry of a queue journal");
            }
            for changes in read.entries {
                for change in changes {
                    file.state.delivery.apply(change);
                }
            }
            queues.push((file.definition, file.state));
        }
        Ok(queues)
    }
}

/// Writes a snapshot of `state` and recreates the journal after it (see the [module
/// docs](self)); `journal` is the new one on success, none otherwise.
fn compact(
    fs: &dyn FileSystem,
    dir: &Path,
    def: &QueueDef,
    state: &QueueInner,
    journal: &mut Option<OpenJournal>,
) -> Result<(), StorageError> {
    *journal = None;
    fs.create_dir_all(dir).map_err(io(dir))?;
    let tag = rand::random::<u64>() | 1;
    let bytes = serde_json::to_vec(&FileOut {
        definition: def,
        state,
        tag,
    })
    .expect("queue state serialises");
    let path = QueueStore::snapshot_path(dir, &def.id);
    let tmp = dir.join(format!(".{}.json.tmp", def.id));
    let mut file = fs.create(&tmp).map_err(io(&tmp))?;
    file.write_all(&bytes).map_err(io(&tmp))?;
    file.sync().map_err(io(&tmp))?;
    drop(file);
    fs.rename(&tmp, &path).map_err(io(&path))?;
    fs.sync_dir(dir).map_err(io(dir))?;
    // The snapshot holds everything now: the old journal may be cut at once.
    let path = QueueStore::journal_path(dir, &def.id);
    let header = journal::header(tag);
    let mut file = fs.create(&path).map_err(io(&path))?;
    file.write_all(&header).map_err(io(&path))?;
    file.sync().map_err(io(&path))?;
    fs.sync_dir(dir).map_err(io(dir))?;
    *journal = Some(OpenJournal {
        file,
        len: header.len() as u64,
        snapshot_len: bytes.len() as u64,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::queues::shapes::{QueueAttributes, StartingPosition};
    use crate::kinesis::queues::state::{DeliveryState, RecordKey, Settle};

    fn queue(id: &str) -> (QueueDef, QueueInner) {
        let def = QueueDef {
            id: id.into(),
            name: format!("name-{id}"),
            arn: format!("arn:aws:kinesis:us-east-1:000000000000:queue/{id}"),
            stream_name: "s".into(),
            stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s".into(),
            stream_created_ms: 1,
            created_ms: 2,
        };
        let mut delivery = DeliveryState::starting_at([(0, 5), (1, 0)]);
        delivery.pulled(0, &[5, 6], 7, 3);
        let inner = QueueInner {
            start: StartingPosition {
                kind: Some("LATEST".into()),
                timestamp: None,
            },
            attributes: QueueAttributes::default().with_defaults(),
            tags: [("k".to_owned(), "v".to_owned())].into(),
            updated_ms: None,
            delivery,
            deleted: false,
        };
        (def, inner)
    }

    #[test]
    fn saved_queues_load_back_and_a_cut_short_save_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::new(Some(dir.path().join("queues")));
        assert!(store.load().unwrap().is_empty(), "no directory yet");
        let (a, a_state) = queue("a");
        let (b, b_state) = queue("b");
        store.save(&a, &a_state).unwrap();
        store.save(&b, &b_state).unwrap();
        // What a crash during a save leaves: a temporary file, never read.
        std::fs::write(dir.path().join("queues/.c.json.tmp"), b"{\"defin").unwrap();
        store.forget("b").unwrap();
        store.forget("b").unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].0.arn, a.arn);
        assert_eq!(loaded[0].1, a_state);
    }

    const FIVE: RecordKey = RecordKey { shard: 0, seq: 5 };

    const SIX: RecordKey = RecordKey { shard: 0, seq: 6 };

    /// `state` after a receive of record 5 at `now`.
    fn receive(state: &QueueInner, now: i64) -> (QueueInner, u64) {
        receive_key(state, FIVE, now)
    }

    fn receive_key(state: &QueueInner, key: RecordKey, now: i64) -> (QueueInner, u64) {
        let mut next = state.clone();
        let delivery = next.delivery.receive(key, now, 30_000).delivery;
        (next, delivery)
    }

    /// `state` after the acknowledgement of record 5's delivery.
    fn acknowledge(state: &QueueInner, delivery: u64) -> QueueInner {
        let mut next = state.clone();
        next.delivery
            .settle(FIVE, delivery, false, Settle::Acknowledge, 0)
            .unwrap();
        next
    }

    fn file(dir: &Path, name: &str) -> Vec<u8> {
        std::fs::read(dir.join(name)).unwrap()
    }

    #[test]
    fn changes_go_to_the_journal_and_the_first_after_a_start_to_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::new(Some(dir.path().to_owned()));
        let (def, s0) = queue("a");
        store.save(&def, &s0).unwrap();
        let snapshot = file(dir.path(), "a.json");
        assert_eq!(file(dir.path(), "a.journal").len(), journal::HEADER_LEN);
        let (s1, delivery) = receive(&s0, 10);
        store.record(&def, &s0, &s1).unwrap();
        let s2 = acknowledge(&s1, delivery);
        store.record(&def, &s1, &s2).unwrap();
        store.record(&def, &s2, &s2).unwrap();
        assert_eq!(file(dir.path(), "a.json"), snapshot, "not rewritten");
        let journal_len = file(dir.path(), "a.journal").len();
        assert!(journal_len > journal::HEADER_LEN);
        let loaded = QueueStore::new(Some(dir.path().to_owned())).load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].1, s2);
        // After a start, the first change writes a snapshot and a fresh journal.
        let restarted = QueueStore::new(Some(dir.path().to_owned()));
        let (s3, _) = receive_key(&s2, SIX, 20);
        restarted.record(&def, &s2, &s3).unwrap();
        assert_ne!(file(dir.path(), "a.json"), snapshot);
        assert_eq!(file(dir.path(), "a.journal").len(), journal::HEADER_LEN);
        assert_eq!(restarted.load().unwrap()[0].1, s3);
        // A settings change is a snapshot too.
        let mut s4 = s3.clone();
        s4.tags.insert("x".into(), "y".into());
        let (s5, _) = receive_key(&s4, SIX, 30);
        restarted.record(&def, &s3, &s4).unwrap();
        restarted.record(&def, &s4, &s5).unwrap();
        assert_eq!(restarted.load().unwrap()[0].1, s5);
        restarted.forget("a").unwrap();
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
        assert!(restarted.load().unwrap().is_empty());
    }

    #[test]
    fn a_torn_last_entry_is_left_out_and_an_older_journal_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::new(Some(dir.path().to_owned()));
        let (def, s0) = queue("a");
        store.save(&def, &s0).unwrap();
        let (s1, delivery) = receive(&s0, 10);
        store.record(&def, &s0, &s1).unwrap();
        let with_receive = file(dir.path(), "a.journal");
        let s2 = acknowledge(&s1, delivery);
        store.record(&def, &s1, &s2).unwrap();
        let whole = file(dir.path(), "a.journal");
        // A crash in the middle of the acknowledgement's entry: it never happened.
        for cut in [with_receive.len() + 1, whole.len() - 1] {
            std::fs::write(dir.path().join("a.journal"), &whole[..cut]).unwrap();
            assert_eq!(store.load().unwrap()[0].1, s1, "cut at {cut}");
        }
        // Damage before the last entry is refused.
        let mut damaged = whole.clone();
        damaged[journal::HEADER_LEN + 12] ^= 1;
        std::fs::write(dir.path().join("a.journal"), &damaged).unwrap();
        let error = store.load().unwrap_err().to_string();
        assert!(error.contains("a.journal"), "{error}");
        // A compaction that crashed after the snapshot's rename, before the journal was
        // recreated: the older journal (which has record 5 in flight) is not replayed over
        // the snapshot in which it is acknowledged.
        std::fs::write(dir.path().join("a.journal"), &with_receive).unwrap();
        let restarted = QueueStore::new(Some(dir.path().to_owned()));
        assert_eq!(restarted.load().unwrap()[0].1, s1);
        restarted.record(&def, &s1, &s2).unwrap();
        std::fs::write(dir.path().join("a.journal"), &with_receive).unwrap();
        let loaded = restarted.load().unwrap();
        assert_eq!(loaded[0].1, s2);
        assert!(loaded[0].1.delivery.tracked(FIVE).is_none());
    }

    #[test]
    fn a_journal_past_its_bound_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::new(Some(dir.path().to_owned())).compacting(Compaction {
            min_bytes: 0,
            ratio: 1,
        });
        let (def, mut state) = queue("a");
        store.save(&def, &state).unwrap();
        let mut snapshots = 0;
        let mut snapshot = file(dir.path(), "a.json");
        for round in 0..40 {
            let (received, _) = receive(&state, round);
            store.record(&def, &state, &received).unwrap();
            state = received;
            let now = file(dir.path(), "a.json");
            if now != snapshot {
                snapshots += 1;
                snapshot = now;
                assert_eq!(file(dir.path(), "a.journal").len(), journal::HEADER_LEN);
            }
            assert!(file(dir.path(), "a.journal").len() <= snapshot.len());
            assert_eq!(store.load().unwrap()[0].1, state);
        }
        assert!((2..40).contains(&snapshots), "{snapshots} compactions");
    }

    #[test]
    fn a_damaged_queue_file_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::new(Some(dir.path().to_owned()));
        std::fs::write(dir.path().join("x.json"), b"not json").unwrap();
        let error = store.load().unwrap_err().to_string();
        assert!(error.contains("x.json"), "{error}");
    }

    #[test]
    fn an_in_memory_store_keeps_nothing() {
        let store = QueueStore::new(None);
        let (a, a_state) = queue("a");
        store.save(&a, &a_state).unwrap();
        assert!(store.load().unwrap().is_empty());
    }
}
