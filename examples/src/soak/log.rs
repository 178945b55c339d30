//! The processed-records log a worker keeps for the soak: one JSON line per batch, appended and
//! handed to the OS before the batch is checkpointed.
//!
//! A SIGKILL cannot lose a line that was written, since the kernel already holds it; a batch
//! killed before its line was written was not checkpointed either, so the next owner delivers
//! it again. Each worker process writes its own file, so only the last line of a file can be
//! torn (by a kill in the middle of the write); readers skip it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One record as the worker saw it: `[partition key, sequence number, sub-sequence number, data]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRecord(pub String, pub String, pub u64, pub String);

/// One batch handed to a record processor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLine {
    /// Worker id (unique per process).
    pub worker: String,
    /// Which processor of the worker (they are numbered from 1 as the worker creates them), so
    /// that a worker losing and retaking a shard shows as two holdings.
    pub processor: u64,
    /// The shard.
    pub shard: String,
    /// Wall-clock microseconds since the Unix epoch when the batch was handed over.
    pub start_us: u64,
    /// Wall-clock microseconds when the batch was done, just before it was logged and checkpointed.
    pub end_us: u64,
    /// The records, in shard order.
    pub records: Vec<LoggedRecord>,
}

/// Microseconds since the Unix epoch, the clock every worker process shares.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

/// A worker's log file, opened for appending.
#[derive(Debug)]
pub struct ProcessedLog {
    file: Mutex<File>,
    path: PathBuf,
}

impl ProcessedLog {
    /// Opens (creating) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(file),
            path: path.to_owned(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one batch with a single write, so that the line is either whole in the kernel or
    /// (killed mid-write) the torn last line of the file.
    pub fn append(&self, batch: &BatchLine) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(batch).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line)?;
        file.flush()
    }
}

/// Reads the batch lines of one log file as they are appended, never past the last complete line.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    offset: u64,
    /// Lines that did not parse (at most the torn last line of a killed worker's file, unless
    /// the file was damaged).
    pub bad_lines: u64,
}

impl LogFollower {
    /// Follows `path` from its start.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            bad_lines: 0,
        }
    }

    /// The batches completed since the last call. A missing file reads as empty.
    pub fn read_new(&mut self) -> std::io::Result<Vec<BatchLine>> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut reader = BufReader::new(file);
        let mut batches = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                // End of file, or a line still being written (or torn): read it next time.
                break;
            }
            self.offset += n as u64;
            match serde_json::from_slice::<BatchLine>(&line) {
                Ok(batch) => batches.push(batch),
                Err(_) => self.bad_lines += 1,
            }
        }
        Ok(batches)
    }

    /// Whether the file ends with an incomplete line (a write torn by a kill, once the writer
    /// is gone).
    pub fn has_partial_tail(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() > self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: u64) -> BatchLine {
        BatchLine {
            worker: "w1-1".into(),
            processor: 1,
            shard: "shardId-000000000000".into(),
            start_us: n,
            end_us: n + 1,
            records: vec![LoggedRecord("key-1".into(), "49".into(), 0, n.to_string())],
        }
    }

    #[test]
    fn the_follower_reads_whole_lines_only() {
        let dir = std::env::temp_dir().join(format!("soak-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut follower = LogFollower::new(path.clone());
        assert!(follower.read_new().unwrap().is_empty(), "missing file");
        let log = ProcessedLog::open(&path).unwrap();
        log.append(&batch(1)).unwrap();
        log.append(&batch(2)).unwrap();
        assert_eq!(follower.read_new().unwrap(), [batch(1), batch(2)]);
        // A torn write: half a line, no newline yet.
        let half = serde_json::to_string(&batch(3)).unwrap();
        let (head, tail) = half.split_at(half.len() / 2);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(head.as_bytes())
            .unwrap();
        assert!(follower.read_new().unwrap().is_empty());
        assert!(follower.has_partial_tail());
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(format!("{tail}\n").as_bytes()).unwrap();
        assert_eq!(follower.read_new().unwrap(), [batch(3)]);
        assert!(!follower.has_partial_tail());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
