//! The pins file: a [`PinTable`] as JSON, readable and writable by its
//! owner only, changed under a lock so that gateways sharing it (several
//! `serve --stdio` of one user, say) and `mcp-manager pins approve` never
//! lose each other's changes.

use std::path::{Path, PathBuf};

use mcp_core::file::PrivateFile;
pub(crate) use mcp_core::file::Stamp;

use super::table::PinTable;
use crate::error::Error;

/// The largest pins file read: 64 MiB.
const MAX_BYTES: u64 = 64 << 20;

/// A pins file at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinFile {
    file: PrivateFile,
}

impl PinFile {
    /// The pins file at `path` (not read yet; it need not exist).
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            file: PrivateFile::new(path, MAX_BYTES),
        }
    }

    /// Where it is.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The table in the file; an empty one when there is no file.
    ///
    /// # Errors
    ///
    /// [`Error::File`] when it cannot be read, [`Error::Format`] when it is
    /// not a pins file (it is then left as it is).
    pub fn load(&self) -> Result<PinTable, Error> {
        self.load_stamped().map(|(table, _)| table)
    }

    /// [`load`](Self::load), with the stamp of the version read.
    pub(crate) fn load_stamped(&self) -> Result<(PinTable, Option<Stamp>), Error> {
        match self.file.read()? {
            None => Ok((PinTable::new(), None)),
            Some((text, stamp)) => Ok((self.parse(&text)?, Some(stamp))),
        }
    }

    fn parse(&self, text: &str) -> Result<PinTable, Error> {
        let table: PinTable = serde_json::from_str(text)
            .map_err(|error| Error::format(self.path(), error.to_string()))?;
        if table.version != PinTable::VERSION {
            return Err(Error::format(
                self.path(),
                format!(
                    "it is of format {}; this version of mcp-manager reads format {}",
                    table.version,
                    PinTable::VERSION
                ),
            ));
        }
        Ok(table)
    }

    /// The stamp of the file there now; `None` when there is none.
    pub(crate) fn stamp(&self) -> Option<Stamp> {
        self.file.stamp()
    }

    /// Reads the table under the file's lock, lets `change` change it,
    /// and writes it back (when `change` says it changed) before the lock
    /// is let go: the table as written and what `change` gave. The file
    /// is readable by its owner only and replaced whole (see
    /// [`PrivateFile::update`]).
    ///
    /// # Errors
    ///
    /// [`Error::File`] when the folder, the lock or the file cannot be
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
        let (outcome, stamp) = self.file.update(|text| {
            let table = match text {
                None => PinTable::new(),
                Some(text) => match self.parse(&text) {
                    Ok(table) => table,
                    Err(error) => return (Err(error), None),
                },
            };
            let mut table = table;
            let (result, changed) = change(&mut table);
            if !changed {
                return (Ok((table, result)), None);
            }
            match serde_json::to_string_pretty(&table) {
                Ok(mut text) => {
                    text.push('\n');
                    (Ok((table, result)), Some(text))
                }
                Err(error) => (Err(Error::format(self.path(), error.to_string())), None),
            }
        })?;
        let (table, result) = outcome?;
        Ok((table, stamp, result))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::table::{Observation, definition, digest};
    use std::fs;

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
    fn written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = PinFile::new(dir.path().join("deeper/pins.json"));
        assert_eq!(file.load().unwrap(), PinTable::new());
        assert!(file.stamp().is_none());
        let (table, ()) = file
            .update(|table| ((), table.observe(&observation("echo", "Echoes")).1))
            .unwrap();
        assert_eq!(file.load().unwrap(), table);
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
}
