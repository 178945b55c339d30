//! Where a durable engine keeps queues: one JSON file per queue, replaced atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::storage::StorageError;

use super::{QueueDef, QueueInner};

/// The queue directory of a durable engine, or nothing (queues in memory only).
#[derive(Debug)]
pub(super) struct QueueStore {
    dir: Option<PathBuf>,
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

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

impl QueueStore {
    pub(super) fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    fn path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.json"))
    }

    /// Saves a queue: written to a temporary file, synced, renamed over the old one, and the
    /// directory synced, so a crash leaves either the old or the new state.
    pub(super) fn save(&self, def: &QueueDef, state: &QueueInner) -> Result<(), StorageError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let bytes = serde_json::to_vec(&FileOut {
            definition: def,
            state,
        })
        .expect("queue state serialises");
        let path = Self::path(dir, &def.id);
        let tmp = dir.join(format!(".{}.json.tmp", def.id));
        let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(dir)
    }

    /// Removes a deleted queue's file, durably.
    pub(super) fn forget(&self, id: &str) -> Result<(), StorageError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let path = Self::path(dir, id);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Every saved queue. Temporary files (a save cut short) are ignored.
    pub(super) fn load(&self) -> Result<Vec<(QueueDef, QueueInner)>, StorageError> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(dir)(e)),
        };
        let mut queues = Vec::new();
        for entry in entries {
            let path = entry.map_err(io(dir))?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let bytes = fs::read(&path).map_err(io(&path))?;
            let file: FileIn = serde_json::from_slice(&bytes).map_err(|e| StorageError::Io {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            queues.push((file.definition, file.state));
        }
        Ok(queues)
    }
}
