//! [`PrivateFile`]: a small file of the user's (pinned tool definitions,
//! sign-in tokens) readable and writable by its owner only, changed under
//! a lock so that processes sharing it never lose each other's changes,
//! and replaced by a rename so that readers never see half of it.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::Error;

/// What tells one version of a file from another without reading it: its
/// inode (a write replaces the file), size and change time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    inode: u64,
    len: u64,
    changed: (i64, i64),
}

/// A file at a path, kept for its owner only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateFile {
    path: PathBuf,
    max_bytes: u64,
}

impl PrivateFile {
    /// The file at `path` (not read yet; it need not exist), read only
    /// when it holds at most `max_bytes`.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            path: path.into(),
            max_bytes,
        }
    }

    /// Where it is.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its text and the stamp of the version read; `None` when there is no
    /// file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when it cannot be read, is
    /// larger than allowed or is not UTF-8.
    pub fn read(&self) -> Result<Option<(String, Stamp)>, Error> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(Error::file("read", &self.path, error)),
        };
        let metadata = file
            .metadata()
            .map_err(|error| Error::file("read", &self.path, error))?;
        if metadata.len() > self.max_bytes {
            let error = std::io::Error::new(
                ErrorKind::InvalidData,
                format!("it is larger than {} bytes", self.max_bytes),
            );
            return Err(Error::file("read", &self.path, error));
        }
        let text = std::io::read_to_string(file)
            .map_err(|error| Error::file("read", &self.path, error))?;
        Ok(Some((text, stamp_of(&metadata))))
    }

    /// The stamp of the file there now; `None` when there is none.
    #[must_use]
    pub fn stamp(&self) -> Option<Stamp> {
        fs::metadata(&self.path).ok().map(|m| stamp_of(&m))
    }

    /// Reads the file under its lock and hands its text (`None`: no file)
    /// to `change`, which gives back what to return and the new text, if
    /// the file is to change; that is written before the lock is let go.
    /// Returns what `change` gave and the stamp of the file then.
    ///
    /// The folder is made (owner only) when missing; the new text is
    /// written beside the file, synced and renamed over it, readable and
    /// writable by its owner only.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when the folder, the lock or
    /// the file cannot be made, read or written.
    pub fn update<R>(
        &self,
        change: impl FnOnce(Option<String>) -> (R, Option<String>),
    ) -> Result<(R, Option<Stamp>), Error> {
        if let Some(folder) = self.path.parent().filter(|f| !f.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(folder)
                .map_err(|error| Error::file("make the folder of", &self.path, error))?;
        }
        let lock_path = sibling(&self.path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|error| Error::file("open the lock", &lock_path, error))?;
        let lock = Flock::lock(lock, FlockArg::LockExclusive)
            .map_err(|(_, errno)| Error::file("lock", &lock_path, errno.into()))?;
        let (text, stamp) = match self.read()? {
            Some((text, stamp)) => (Some(text), Some(stamp)),
            None => (None, None),
        };
        let (result, changed) = change(text);
        let Some(changed) = changed else {
            return Ok((result, stamp));
        };
        let temporary = sibling(&self.path, &format!(".{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(changed.as_bytes())?;
            file.sync_all()?;
            fs::rename(&temporary, &self.path)
        })();
        if let Err(error) = written {
            let _ = fs::remove_file(&temporary);
            return Err(Error::file("write", &self.path, error));
        }
        // The stamp of what was written, taken before anyone else may
        // write. The lock file stays: removing it would let two writers
        // each hold a lock on a different file.
        let stamp = self.stamp();
        drop(lock);
        Ok((result, stamp))
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
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn written_for_its_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = PrivateFile::new(dir.path().join("a/b/f.json"), 1024);
        assert!(file.read().unwrap().is_none());
        assert!(file.stamp().is_none());
        let (seen, stamp) = file.update(|text| (text, Some("one".to_owned()))).unwrap();
        assert_eq!(seen, None);
        assert_eq!(stamp, file.stamp());
        let mode = fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let folder = fs::metadata(dir.path().join("a/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(folder & 0o777, 0o700);
        let (text, read_stamp) = file.read().unwrap().unwrap();
        assert_eq!((text.as_str(), Some(read_stamp)), ("one", stamp));
        let (seen, unchanged) = file.update(|text| (text, None)).unwrap();
        assert_eq!((seen.as_deref(), unchanged), (Some("one"), stamp));
    }

    #[test]
    fn a_file_too_large_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, "0123456789").unwrap();
        let error = PrivateFile::new(&path, 4).read().unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::Io);
        assert!(error.to_string().contains("cannot read"), "{error}");
        assert!(error.to_string().contains("big"), "{error}");
    }

    #[test]
    fn writers_in_parallel_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("count");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let file = PrivateFile::new(&path, 1024);
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        file.update(|text| {
                            let n: u32 = text.as_deref().unwrap_or("0").parse().unwrap();
                            ((), Some((n + 1).to_string()))
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let (text, _) = PrivateFile::new(&path, 1024).read().unwrap().unwrap();
        assert_eq!(text, "200");
    }
}
