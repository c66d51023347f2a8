//! What a plugin's instances may touch and use: nothing unless granted.

use std::path::PathBuf;
use std::time::Duration;

/// A folder a plugin may read, or read and write. It is seen inside the
/// plugin at the same path as outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The folder, absolute.
    pub path: PathBuf,
    /// Whether files in it may be created, written and removed.
    pub write: bool,
}

/// The sandbox of one server's instances. The default grants nothing:
/// no folders, no environment variables, no network (WASI sockets are
/// refused, and outgoing HTTP is not offered); its memory, time and fuel
/// are bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sandbox {
    /// Folders it may see.
    pub dirs: Vec<DirGrant>,
    /// Environment variables it sees, with their values.
    pub env: Vec<(String, String)>,
    /// The most linear memory one instance may have, in bytes; growing
    /// past it traps, and the instance is replaced.
    pub memory_bytes: u64,
    /// The most fuel (about one unit per WebAssembly instruction) one
    /// message may burn; `None` for no limit but the timeout.
    pub fuel: Option<u64>,
    /// The longest one message may take, wall-clock time.
    pub timeout: Duration,
    /// The most instances serving messages at once; more messages wait.
    pub instances: usize,
}

impl Sandbox {
    /// 128 MiB of memory per instance.
    pub const DEFAULT_MEMORY: u64 = 128 << 20;
    /// Thirty seconds per message.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Four instances at once.
    pub const DEFAULT_INSTANCES: usize = 4;
}

impl Default for Sandbox {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            env: Vec::new(),
            memory_bytes: Self::DEFAULT_MEMORY,
            fuel: None,
            timeout: Self::DEFAULT_TIMEOUT,
            instances: Self::DEFAULT_INSTANCES,
        }
    }
}
