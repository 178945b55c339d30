//! Where a durable engine keeps queues: one JSON file per queue, replaced atomically.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::storage::StorageError;
use crate::storage::wal::fs::{FileSystem, OsFs};

use super::{QueueDef, QueueInner};

/// The queue directory of a durable engine on a file system, or nothing (queues in memory
/// only).
#[derive(Debug)]
pub(super) struct QueueStore {
    dir: Option<(Arc<dyn FileSystem>, PathBuf)>,
}

#[derive(Serialize)]
struct FileOut<'a> {
    definition: &'a QueueDef,
    state: &'a QueueInner,
}

#[derive(Deserialize)]
struct FileIn {
    definition: QueueDef,
    state: QueueInner,
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
        Self { dir }
    }

    fn path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.json"))
    }

    /// Saves a queue: written to a temporary file, synced, renamed over the old one, and the
    /// directory synced, so a crash leaves either the old or the new state.
    pub(super) fn save(&self, def: &QueueDef, state: &QueueInner) -> Result<(), StorageError> {
        let Some((fs, dir)) = &self.dir else {
            return Ok(());
        };
        fs.create_dir_all(dir).map_err(io(dir))?;
        let bytes = serde_json::to_vec(&FileOut {
            definition: def,
            state,
        })
        .expect("queue state serialises");
        let path = Self::path(dir, &def.id);
        let tmp = dir.join(format!(".{}.json.tmp", def.id));
        let mut file = fs.create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync().map_err(io(&tmp))?;
        drop(file);
        fs.rename(&tmp, &path).map_err(io(&path))?;
        fs.sync_dir(dir).map_err(io(dir))
    }

    /// Removes a deleted queue's file, durably.
    pub(super) fn forget(&self, id: &str) -> Result<(), StorageError> {
        let Some((fs, dir)) = &self.dir else {
            return Ok(());
        };
        let path = Self::path(dir, id);
        match fs.remove(&path) {
            Ok(()) => fs.sync_dir(dir).map_err(io(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Every saved queue. Temporary files (a save cut short) are ignored.
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
            let file: FileIn = serde_json::from_slice(&bytes).map_err(|e| StorageError::Io {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            queues.push((file.definition, file.state));
        }
        Ok(queues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::queues::shapes::{QueueAttributes, StartingPosition};
    use crate::kinesis::queues::state::DeliveryState;

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
