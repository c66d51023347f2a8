//! The one error type of plugin loading.

use std::path::{Path, PathBuf};

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A folder or file could not be read.
    Unreadable,
    /// A manifest that does not parse or does not hold together.
    Manifest,
    /// The registry refused the plugin (another API version, a type that
    /// is taken).
    Refused,
    /// This build cannot run the plugin's kind.
    Unsupported,
    /// A wasm plugin's component is missing or is not a component.
    Component,
}

/// A plugin that could not be loaded: which one (once its name is known),
/// where, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Error {
    kind: ErrorKind,
    plugin: Option<String>,
    path: PathBuf,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, plugin: Option<&str>, path: &Path, message: String) -> Self {
        Self {
            kind,
            plugin: plugin.map(str::to_owned),
            path: path.to_owned(),
            message,
        }
    }

    /// What kind of error this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The plugin's name, once it was read.
    #[must_use]
    pub fn plugin(&self) -> Option<&str> {
        self.plugin.as_deref()
    }

    /// The file or folder it is about.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The reason.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    fn describe(&self) -> String {
        match &self.plugin {
            Some(plugin) => format!(
                "plugin `{plugin}` ({}): {}",
                self.path.display(),
                self.message
            ),
            None => format!("{}: {}", self.path.display(), self.message),
        }
    }
}
