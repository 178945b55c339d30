//! A simulated disk for crash tests: it counts every operation that changes it (a write, a
//! sync, a creation, a rename, a removal, a truncation, a directory sync), can fail one of them
//! or crash at one, and gives the images a crash leaves behind.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::fs::{FileSystem, WritableFile};

/// What survives a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CrashImage {
    /// Power loss: only synced data and directory entries of synced directories.
    PowerLoss,
    /// Power loss in the middle of writing back: as [`CrashImage::PowerLoss`], plus the first
    /// half of what each file had appended since its last sync.
    TornWrite,
    /// The process died: everything written is there (the kernel still had it).
    ProcessCrash,
}

/// The simulated disk; clones share it.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimFs {
    state: Arc<Mutex<State>>,
    gate: Arc<ReadGate>,
}

/// Holds positioned reads while closed, so that a test can keep a read of the log in flight
/// (see [`SimFs::hold_reads`]).
#[derive(Debug, Default)]
struct ReadGate {
    state: Mutex<GateState>,
    opened: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    /// Reads waiting at the gate.
    waiting: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Directory entries as the process sees them.
    names: BTreeMap<PathBuf, usize>,
    /// Directory entries as of the last sync of their directory.
    durable_names: BTreeMap<PathBuf, usize>,
    inodes: Vec<Inode>,
    /// Operations done so far.
    ops: u64,
    /// The operation that crashes the disk: it and every later one fail and change nothing.
    crash_at: Option<u64>,
    /// The operation that fails on its own; later ones work.
    fail_at: Option<u64>,
    crashed: bool,
}

#[derive(Clone, Debug, Default)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
}

impl State {
    /// Counts one changing operation; says whether it may go ahead.
    fn op(&mut self) -> io::Result<()> {
        if self.crashed {
            return Err(io::Error::other("simulated crash"));
        }
        self.ops += 1;
        if Some(self.ops) == self.crash_at {
            self.crashed = true;
            return Err(io::Error::other("simulated crash"));
        }
        if Some(self.ops) == self.fail_at {
            return Err(io::Error::other("simulated i/o failure"));
        }
        Ok(())
    }

    fn inode(&self, path: &Path) -> io::Result<usize> {
        self.names
            .get(path)
            .copied()
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
}

impl SimFs {
    /// A disk that crashes at operation `crash_at` and fails operation `fail_at` alone.
    pub(crate) fn new(crash_at: Option<u64>, fail_at: Option<u64>) -> Self {
        let fs = Self::default();
        {
            let mut state = fs.state.lock();
            state.crash_at = crash_at;
            state.fail_at = fail_at;
        }
        fs
    }

    /// Makes every positioned read ([`FileSystem::read_at`]: reads of records no longer
    /// cached) wait until [`SimFs::release_reads`].
    pub(crate) fn hold_reads(&self) {
        self.gate.state.lock().closed = true;
    }

    /// Reads waiting since [`SimFs::hold_reads`].
    pub(crate) fn held_reads(&self) -> usize {
        self.gate.state.lock().waiting
    }

    /// Lets held reads, and later ones, go on.
    pub(crate) fn release_reads(&self) {
        self.gate.state.lock().closed = false;
        self.gate.opened.notify_all();
    }

    /// Operations counted so far.
    pub(crate) fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// A fresh disk holding what `image` keeps of this one, as of now.
    pub(crate) fn image(&self, image: CrashImage) -> SimFs {
        let state = self.state.lock();
        let names = match image {
            CrashImage::ProcessCrash => &state.names,
            CrashImage::PowerLoss | CrashImage::TornWrite => &state.durable_names,
        };
        let mut out = State::default();
        for (path, &inode) in names {
            let Inode { data, synced } = &state.inodes[inode];
            let kept = match image {
                CrashImage::ProcessCrash => data.clone(),
                CrashImage::PowerLoss => synced.clone(),
                CrashImage::TornWrite => {
                    let mut kept = synced.clone();
                    if data.len() > synced.len() && data.starts_with(synced) {
                        let unsynced = &data[synced.len()..];
                        kept.extend_from_slice(&unsynced[..unsynced.len() / 2]);
                    }
                    kept
                }
            };
            out.inodes.push(Inode {
                data: kept.clone(),
                synced: kept,
            });
            out.names.insert(path.clone(), out.inodes.len() - 1);
        }
        out.durable_names = out.names.clone();
        SimFs {
            state: Arc::new(Mutex::new(out)),
            gate: Arc::default(),
        }
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(()) // directories are implicit
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let state = self.state.lock();
        Ok(state
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state.lock();
        Ok(state.inodes[state.inode(path)?].data.clone())
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        {
            let mut gate = self.gate.state.lock();
            if gate.closed {
                gate.waiting += 1;
                while gate.closed {
                    self.gate.opened.wait(&mut gate);
                }
                gate.waiting -= 1;
            }
        }
        let state = self.state.lock();
        let data = &state.inodes[state.inode(path)?].data;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        data.get(start..start.saturating_add(len))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut state = self.state.lock();
        state.op()?;
        state.inodes.push(Inode::default());
        let inode = state.inodes.len() - 1;
        state.names.insert(path.to_owned(), inode);
        Ok(Box::new(SimFile {
            state: self.state.clone(),
            inode,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let inode = self.state.lock().inode(path)?;
        Ok(Box::new(SimFile {
            state: self.state.clone(),
            inode,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let inode = state.inode(from)?;
        state.op()?;
        state.names.remove(from);
        state.names.insert(to.to_owned(), inode);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.inode(path)?;
        state.op()?;
        state.names.remove(path);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.op()?;
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        state.durable_names.retain(|p, _| !in_dir(p));
        let entries: Vec<_> = state
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        state.durable_names.extend(entries);
        Ok(())
    }

    fn lock(&self, _path: &Path) -> io::Result<Box<dyn Send + Sync>> {
        Ok(Box::new(()))
    }
}

/// A file of [`SimFs`].
#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<State>>,
    inode: usize,
}

impl WritableFile for SimFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        state.op()?;
        state.inodes[self.inode].data.extend_from_slice(buf);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.state.lock();
        state.op()?;
        let inode = &mut state.inodes[self.inode];
        inode.synced = inode.data.clone();
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        state.op()?;
        state.inodes[self.inode]
            .data
            .truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(())
    }
}
