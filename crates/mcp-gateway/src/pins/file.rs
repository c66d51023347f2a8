//! The pins file: a [`PinTable`] as JSON, readable and writable by its
//! owner only, changed under a lock so that gateways sharing it (several
//! `serve --stdio` of one user, say) and `mcp-manager pins approve` never
//! lose each other's changes.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::table::PinTable;
use crate::error::Error;

/// The largest pins file read: 64 MiB.
const MAX_BYTES: u64 = 64 << 20;

/// What tells one version of the file from another without reading it:
/// its inode (a write replaces the file), size and change time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    inode: u64,
    len: u64,
    changed: (i64, i64),
}

/// A pins file at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinFile {
    path: PathBuf,
}

impl PinFile {
    /// The pins file at `path` (not read yet; it need not exist).
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where it is.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The table in the file; an empty one when there is no file.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when it cannot be read, [`Error::Format`] when it is
    /// not a pins file (it is then left as it is).
    pub fn load(&self) -> Result<PinTable, Error> {
        self.load_stamped().map(|(table, _)| table)
    }

    /// [`load`](Self::load), with the stamp of the version read.
    pub(crate) fn load_stamped(&self) -> Result<(PinTable, Option<Stamp>), Error> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => {
                return Ok((PinTable::new(), None));
            }
            Err(error) => return Err(Error::io("read", &self.path, error)),
        };
        let metadata = file
            .metadata()
            .map_err(|error| Error::io("read", &self.path, error))?;
        if metadata.len() > MAX_BYTES {
            return Err(Error::format(
                &self.path,
                format!("it is larger than {} MiB", MAX_BYTES >> 20),
            ));
        }
        let text =
            std::io::read_to_string(file).map_err(|error| Error::io("read", &self.path, error))?;
        let table: PinTable = serde_json::from_str(&text)
            .map_err(|error| Error::format(&self.path, error.to_string()))?;
        if table.version != PinTable::VERSION {
            return Err(Error::format(
                &self.path,
                format!(
                    "it is of format {}; this version of mcp-manager reads format {}",
                    table.version,
                    PinTable::VERSION
                ),
            ));
        }
        Ok((table, Some(stamp_of(&metadata))))
    }

    /// The stamp of the file there now; `None` when there is none.
    pub(crate) fn stamp(&self) -> Option<Stamp> {
        fs::metadata(&self.path).ok().map(|m| stamp_of(&m))
    }

    /// Reads the table under the file's lock, lets `change` change it,
    /// and writes it back (when `change` says it changed) before the lock
    /// is let go: the table as written, with the stamp of the file, and
    /// what `change` gave.
    ///
    /// The folder is made (owner only) when missing; the file is written
    /// beside and renamed over the old one, so readers never see half of
    /// it, and is readable by its owner only.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the folder, the lock or the file cannot be
    /// made, read or written; [`Error::Format`] when the file there is not
    /// a pins file (then nothing is written).
    pub fn update<R>(
        &self,
        change: impl FnOnce(&mut PinTable) -> (R, bool),
    ) -> Result<(PinTable, R), Error> {
        self.update_stamped(change)
            .map(|(table, _, result)| (table, result))
    }

    pub(crate) fn update_stamped<R>(
        &self,
        change: impl FnOnce(&mut PinTable) -> (R, bool),
    ) -> Result<(PinTable, Option<Stamp>, R), Error> {
        if let Some(folder) = self.path.parent().filter(|f| !f.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(folder)
                .map_err(|error| Error::io("make the folder of", &self.path, error))?;
        }
        let lock_path = sibling(&self.path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|error| Error::io("open the lock", &lock_path, error))?;
        let lock = Flock::lock(lock, FlockArg::LockExclusive)
            .map_err(|(_, errno)| Error::io("lock", &lock_path, errno.into()))?;
        let (mut table, stamp) = self.load_stamped()?;
        let (result, changed) = change(&mut table);
        if !changed {
            return Ok((table, stamp, result));
        }
        let text = serde_json::to_string_pretty(&table)
            .map_err(|error| Error::format(&self.path, error.to_string()))?;
        let temporary = sibling(&self.path, &format!(".{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&temporary, &self.path)
        })();
        if let Err(error) = written {
            let _ = fs::remove_file(&temporary);
            return Err(Error::io("write", &self.path, error));
        }
        // The stamp of what was written, taken before anyone else may
        // write. The lock file stays: removing it would let two writers
        // each hold a lock on a different file.
        let stamp = self.stamp();
        drop(lock);
        Ok((table, stamp, result))
    }
}

fn stamp_of(metadata: &fs::Metadata) -> Stamp {
    Stamp {
        inode: metadata.ino(),
        len: metadata.len(),
        changed: (metadata.ctime(), metadata.ctime_nsec()),
    }
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::table::{Observation, definition, digest};
    use super::*;
    use serde_json::json;

    fn observation(name: &str, description: &str) -> Observation {
        let definition = definition(&json!({"name": name, "description": description}));
        Observation {
            server: "ev".into(),
            tool: name.into(),
            digest: digest(&definition),
            definition,
            at: "t".into(),
        }
    }

    #[test]
    fn written_for_its_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = PinFile::new(dir.path().join("deeper/pins.json"));
        assert_eq!(file.load().unwrap(), PinTable::new());
        assert!(file.stamp().is_none());
        let (table, ()) = file
            .update(|table| ((), table.observe(&observation("echo", "Echoes")).1))
            .unwrap();
        assert_eq!(file.load().unwrap(), table);
        let mode = fs::metadata(file.path()).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
        let folder = fs::metadata(dir.path().join("deeper")).unwrap().mode();
        assert_eq!(folder & 0o777, 0o700);
        // Nothing changed: nothing written.
        let before = file.stamp().unwrap();
        file.update(|table| ((), table.observe(&observation("echo", "Echoes")).1))
            .unwrap();
        assert_eq!(file.stamp().unwrap(), before);
        // A change is a new version of the file.
        file.update(|table| ((), table.observe(&observation("add", "Adds")).1))
            .unwrap();
        assert_ne!(file.stamp().unwrap(), before);
        assert_eq!(file.load().unwrap().servers["ev"].len(), 2);
    }

    #[test]
    fn a_file_that_is_not_a_pins_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins.json");
        for text in ["not json", "[1, 2]", r#"{"version": 7, "servers": {}}"#] {
            fs::write(&path, text).unwrap();
            let file = PinFile::new(&path);
            let error = file.load().unwrap_err();
            assert!(error.to_string().contains("pins.json"), "{error}");
            let error = file
                .update(|table| ((), table.observe(&observation("echo", "E")).1))
                .unwrap_err();
            assert!(matches!(error, Error::Format { .. }), "{error}");
            assert_eq!(fs::read_to_string(&path).unwrap(), text);
        }
    }

    #[test]
    fn writers_in_parallel_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins.json");
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let file = PinFile::new(&path);
                std::thread::spawn(move || {
                    for j in 0..10 {
                        let seen = observation(&format!("tool_{i}_{j}"), "d");
                        file.update(|table| ((), table.observe(&seen).1)).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(PinFile::new(&path).load().unwrap().servers["ev"].len(), 80);
    }
}
