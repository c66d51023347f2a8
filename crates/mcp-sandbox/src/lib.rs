//! Sandboxes for the local servers of mcp-manager, on Linux: what a
//! server's process may reach, set up between `fork` and `exec` so that
//! the server's own code never runs outside it.
//!
//! A [`Sandbox`] is prepared in the manager from a server's
//! [`SandboxConfig`] (every file opened, every check made, everything
//! that could fail or allocate done there), then [`Sandbox::confine`]
//! hands a `std::process::Command` the steps the child takes before it
//! runs the server, each one system call:
//!
//! 1. without `network`: `unshare(CLONE_NEWNET)`, a network namespace of
//!    its own with only a loopback interface, down (and when the manager
//!    may not make one, a user namespace with it, the user mapped to
//!    itself); and, once `no_new_privs` is set, a seccomp filter that
//!    refuses `socket(AF_UNIX, ...)` (`EACCES`), since Unix sockets with a
//!    path (D-Bus, ssh-agent, a container engine) cross namespaces;
//! 2. the resource limits: `RLIMIT_DATA` (`memoryMb`), `RLIMIT_CPU`
//!    (`cpuSeconds`), `RLIMIT_NOFILE` (`openFiles`), `RLIMIT_NPROC`
//!    (`processes`);
//! 3. `no_new_privs`: nothing it runs gains privileges (setuid programs
//!    included);
//! 4. with a filesystem allow-list, Landlock: the paths granted (`read`:
//!    read and run; `write`: read, write, make and remove) and the
//!    system's own ([`SYSTEM_READ`], [`SYSTEM_WRITE`]); everything else
//!    is refused with `EACCES`. From Landlock ABI 6 on, it also may not
//!    signal processes outside its sandbox, nor reach their abstract unix
//!    sockets.
//!
//! Nothing is left out quietly: a kernel without Landlock, a path granted
//! that does not exist, a limit the kernel refuses, each is an error and
//! the server does not start.
//!
//! # Invariants
//!
//! Architecture invariant: no async runtime, no threads, no allocation in
//! the child. The `unsafe` here is the Landlock and seccomp system calls
//! (which have no wrapper in `nix`) and `pre_exec`, whose closure only
//! makes system calls on data prepared before the fork.
#![deny(unsafe_op_in_unsafe_fn)]

mod landlock;
mod seccomp;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use mcp_core::config::SandboxConfig;
use nix::sched::{CloneFlags, unshare};
use nix::sys::resource::{Resource, setrlimit};

pub use landlock::abi as landlock_abi;

/// Paths every sandbox with a filesystem allow-list may read and run:
/// programs, libraries, `/etc`, and the devices that give bytes. Those that
/// do not exist on this system are skipped.
pub const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
];

/// Paths every sandbox with a filesystem allow-list may write: the
/// devices that take bytes.
pub const SYSTEM_WRITE: &[&str] = &["/dev/null", "/dev/full"];

/// Why a sandbox could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Landlock, needed for a filesystem allow-list, is missing.
    #[error(
        "this kernel cannot enforce a filesystem allow-list (Landlock: {0}); the server is not started without it"
    )]
    NoLandlock(io::Error),
    /// A path granted cannot be opened.
    #[error("cannot grant {}: {source}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The Landlock ruleset could not be made.
    #[error("cannot make the filesystem allow-list: {0}")]
    Ruleset(io::Error),
}

/// One server process's sandbox, prepared: give it to a command with
/// [`confine`](Self::confine). Made again for each process (its ruleset
/// is used up by the child that applies it).
#[derive(Debug)]
pub struct Sandbox {
    network: Option<UserMaps>,
    limits: Vec<(Resource, u64)>,
    ruleset: Option<OwnedFd>,
}

/// What a child without the right to make a network namespace writes to
/// make a user namespace in which it may, its user and group mapped to
/// themselves.
#[derive(Debug)]
struct UserMaps {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

const SETGROUPS: &std::ffi::CStr = c"/proc/self/setgroups";
const UID_MAP: &std::ffi::CStr = c"/proc/self/uid_map";
const GID_MAP: &std::ffi::CStr = c"/proc/self/gid_map";

impl Sandbox {
    /// Prepares the sandbox `config` describes.
    ///
    /// # Errors
    ///
    /// With a filesystem allow-list: [`Error::NoLandlock`] when the kernel
    /// has no Landlock, [`Error::Path`] when a path granted cannot be
    /// opened, [`Error::Ruleset`] when the kernel refuses the rules.
    pub fn prepare(config: &SandboxConfig) -> Result<Self, Error> {
        let network = (!config.network()).then(|| UserMaps {
            uid_map: format!("{0} {0} 1", nix::unistd::geteuid()).into_bytes(),
            gid_map: format!("{0} {0} 1", nix::unistd::getegid()).into_bytes(),
        });
        let limits = [
            (Resource::RLIMIT_DATA, config.memory_bytes()),
            (Resource::RLIMIT_CPU, config.cpu_seconds()),
            (Resource::RLIMIT_NOFILE, config.open_files()),
            (Resource::RLIMIT_NPROC, config.processes()),
        ]
        .into_iter()
        .filter_map(|(resource, limit)| Some((resource, limit?)))
        .collect();
        let ruleset = match config.filesystem() {
            None => None,
            Some(grants) => {
                let system = |paths: &[&str]| -> Vec<PathBuf> {
                    paths
                        .iter()
                        .map(PathBuf::from)
                        .filter(|path| path.exists())
                        .collect()
                };
                let read: Vec<PathBuf> = system(SYSTEM_READ)
                    .into_iter()
                    .chain(grants.read.iter().cloned())
                    .collect();
                let write: Vec<PathBuf> = system(SYSTEM_WRITE)
                    .into_iter()
                    .chain(grants.write.iter().cloned())
                    .collect();
                Some(landlock::ruleset(&read, &write)?)
            }
        };
        Ok(Self {
            network,
            limits,
            ruleset,
        })
    }

    /// Has `command`'s child enter the sandbox before it runs its program;
    /// a step that fails makes the spawn fail with that step's error.
    pub fn confine(self, command: &mut std::process::Command) {
        // SAFETY: the closure runs in the forked child, where only
        // async-signal-safe operations are allowed. `enter` makes system
        // calls only, on data prepared here before the fork (the maps as
        // bytes, the ruleset as a descriptor), and allocates nothing; a
        // failure is returned as an `io::Error` made from errno. The
        // closure owns the sandbox, so the ruleset's descriptor stays open
        // as long as the command.
        unsafe {
            command.pre_exec(move || self.enter());
        }
    }

    /// Enters the sandbox, in the child.
    fn enter(&self) -> io::Result<()> {
        if let Some(maps) = &self.network {
            enter_network_namespace(maps)?;
        }
        for (resource, limit) in &self.limits {
            setrlimit(*resource, *limit, *limit)?;
        }
        nix::sys::prctl::set_no_new_privs()?;
        if let Some(ruleset) = &self.ruleset {
            landlock::restrict_self(ruleset.as_raw_fd())?;
        }
        if self.network.is_some() {
            seccomp::install(&seccomp::NO_UNIX_SOCKETS)?;
        }
        Ok(())
    }
}

/// A network namespace of the child's own; in a user namespace of its own
/// when it may not make one otherwise.
fn enter_network_namespace(maps: &UserMaps) -> io::Result<()> {
    match unshare(CloneFlags::CLONE_NEWNET) {
        Ok(()) => return Ok(()),
        Err(nix::errno::Errno::EPERM) => {}
        Err(errno) => return Err(errno.into()),
    }
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)?;
    write_proc(SETGROUPS, b"deny")?;
    write_proc(UID_MAP, &maps.uid_map)?;
    write_proc(GID_MAP, &maps.gid_map)
}

/// Writes `bytes` to the file at `path` with plain system calls.
fn write_proc(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let fd = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let written = nix::unistd::write(&fd, bytes)?;
    if written != bytes.len() {
        return Err(io::Error::from(io::ErrorKind::WriteZero));
    }
    Ok(())
}

/// `path` as a C string, for opening it.
fn c_path(path: &Path) -> Result<CString, Error> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Path {
        path: path.to_owned(),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests;
