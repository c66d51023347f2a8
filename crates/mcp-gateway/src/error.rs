//! The gateway's one error type. Requests never fail with it (their
//! errors are JSON-RPC error objects); it is for what the gateway keeps
//! on disk: the pins file.

use std::path::{Path, PathBuf};

/// What went wrong with a file the gateway keeps.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file (or its folder or lock) could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A file the gateway keeps (the pins file) could not be read or
    /// written.
    #[error(transparent)]
    File(#[from] mcp_core::Error),
    /// The file is not what it should be; it is left as it is.
    #[error("{} is not a pins file mcp-manager can read: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn format(path: &Path, reason: String) -> Self {
        Self::Format {
            path: path.to_owned(),
            reason,
        }
    }
}
