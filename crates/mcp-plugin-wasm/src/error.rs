//! The error type of this crate.

use std::path::{Path, PathBuf};

/// What kind of trouble a component is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file cannot be read.
    Unreadable,
    /// The file is not a WebAssembly component (or not a valid one).
    Invalid,
    /// The component needs what the manager does not offer, or does not
    /// export the world's `handle`.
    Incompatible,
    /// A grant cannot be given (a granted folder cannot be opened, say).
    Grant,
    /// The WebAssembly engine could not be set up.
    Engine,
}

/// A component that could not be loaded or run, with the path it came from.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Error {
    kind: ErrorKind,
    path: PathBuf,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, path: &Path, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// What kind of trouble.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The component's file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What went wrong, without the path.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}
