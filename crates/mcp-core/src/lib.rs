//! Domain types of mcp-manager, shared by every layer above the wire
//! protocol.
//!
//! This crate owns:
//!
//! - [`ServerId`], the validated name of a configured server;
//! - the config model ([`config`]): the `mcpServers` JSON that Claude
//!   Desktop, Cursor and VS Code write, plus mcp-manager's own per-server
//!   and gateway-wide options, read into a validated [`ManagerConfig`] with
//!   every problem of a file reported at once;
//! - the crate's one error type, [`Error`], with [`ErrorKind`] to branch on;
//! - [`McpServer`], the interface of a server written in Rust and run
//!   in-process, with the [`Peer`] it talks back through;
//! - [`Launch`], how one server is reached, as a plugin describes it
//!   and the runtime starts it;
//! - [`file::PrivateFile`], a small file of the user's kept for its owner
//!   only and changed under a lock;
//! - the sealed type-state markers of a server's lifecycle ([`state`]).
//!
//! It deliberately knows nothing of the tokio runtime, of Python (pyo3) or
//! of HTTP clients and servers (its one system library, `nix`, locks
//! files); its futures are plain boxed futures: it is plain data and validation, usable from
//! any runtime and cheap to compile.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
mod error;
pub mod file;
mod id;
pub mod launch;
mod server;
pub mod state;

pub use config::{ManagerConfig, ServerConfig, TransportConfig};
pub use error::{ConfigError, ConfigIssue, Error, ErrorKind, TextPosition};
pub use id::ServerId;
pub use launch::Launch;
pub use server::{BoxFuture, HandlerResult, McpServer, Peer, RequestContext, next_session_key};

/// The user's data directory for mcp-manager, where its plugins and
/// pinned tool definitions live unless a config says otherwise:
/// `$XDG_DATA_HOME/mcp-manager` (when absolute), else
/// `~/.local/share/mcp-manager`; `None` without either.
#[must_use]
pub fn user_data_dir() -> Option<std::path::PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(std::path::PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| std::path::PathBuf::from(home).join(".local/share"))
        })?;
    Some(data.join("mcp-manager"))
}

/// The file of the tokens `mcp-manager login` got for remote servers that
/// ask for OAuth: `tokens.json` in [`user_data_dir`]; `None` when that is
/// not known.
#[must_use]
pub fn tokens_file() -> Option<std::path::PathBuf> {
    user_data_dir().map(|dir| dir.join("tokens.json"))
}
