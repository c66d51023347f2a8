//! Landlock, by its system calls: the ABI version, a ruleset of paths
//! beneath which some accesses are allowed, and restricting oneself to it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::libc;
use nix::sys::stat::Mode;

use crate::{Error, c_path};

const CREATE_RULESET_VERSION: u32 = 1 << 0;
const RULE_PATH_BENEATH: libc::c_int = 1;

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
/// `REMOVE_DIR` to `MAKE_SYM`, ABI 1.
const CHANGE_TREE: u64 = ((1 << 13) - 1) & !(EXECUTE | WRITE_FILE | READ_FILE | READ_DIR);
/// ABI 2.
const REFER: u64 = 1 << 13;
/// ABI 3.
const TRUNCATE: u64 = 1 << 14;
/// ABI 5.
const IOCTL_DEV: u64 = 1 << 15;

/// The rights that apply to a file that is not a directory.
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;

/// ABI 6: no signals to processes outside, no abstract unix sockets of
/// processes outside.
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The kernel's Landlock ABI version, or why there is none (not built in,
/// or turned off).
///
/// # Errors
///
/// The kernel's answer: `ENOSYS` or `EOPNOTSUPP`.
pub fn abi() -> io::Result<u32> {
    // SAFETY: asking for the version passes no attributes (null, size 0);
    // the call reads and writes no memory of ours.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0_usize,
            CREATE_RULESET_VERSION,
        )
    };
    if version < 1 {
        return Err(io::Error::last_os_error());
    }
    u32::try_from(version).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// The filesystem rights Landlock handles at `abi`: every one it knows.
fn handled(abi: u32) -> u64 {
    let mut rights = EXECUTE | WRITE_FILE | READ_FILE | READ_DIR | CHANGE_TREE;
    if abi >= 2 {
        rights |= REFER;
    }
    if abi >= 3 {
        rights |= TRUNCATE;
    }
    if abi >= 5 {
        rights |= IOCTL_DEV;
    }
    rights
}

/// A ruleset under which `read` may be read and run, and `write` read,
/// written, made and removed in; every other filesystem access is
/// refused.
pub(crate) fn ruleset(read: &[PathBuf], write: &[PathBuf]) -> Result<OwnedFd, Error> {
    let abi = abi().map_err(Error::NoLandlock)?;
    let handled = handled(abi);
    let scoped = if abi >= 6 {
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    } else {
        0
    };
    let attr = RulesetAttr {
        handled_access_fs: handled,
        handled_access_net: 0,
        scoped,
    };
    // Older kernels read only the members they know.
    let size = match abi {
        1..=3 => 8,
        4 | 5 => 16,
        _ => size_of::<RulesetAttr>(),
    };
    // SAFETY: `attr` is a valid ruleset attribute of at least `size`
    // bytes, read by the kernel during the call only.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &raw const attr,
            size,
            0_u32,
        )
    };
    if fd < 0 {
        return Err(Error::Ruleset(io::Error::last_os_error()));
    }
    let fd = RawFd::try_from(fd).map_err(|_| Error::Ruleset(io::ErrorKind::InvalidData.into()))?;
    // SAFETY: the kernel just gave us this descriptor; nobody else owns it.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd) };
    let read_rights = EXECUTE | READ_FILE | READ_DIR;
    for (paths, rights) in [(read, read_rights), (write, handled)] {
        for path in paths {
            allow(&ruleset, path, rights & handled)?;
        }
    }
    Ok(ruleset)
}

/// Adds to `ruleset` that `rights` are allowed beneath `path` (on `path`
/// alone, as far as they apply to a file, when it is not a directory).
fn allow(ruleset: &OwnedFd, path: &Path, rights: u64) -> Result<(), Error> {
    let failed = |source: io::Error| Error::Path {
        path: path.to_owned(),
        source,
    };
    let c_path = c_path(path)?;
    let opened = open(
        c_path.as_c_str(),
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| failed(errno.into()))?;
    let is_dir = nix::sys::stat::fstat(&opened)
        .map(|stat| stat.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .map_err(|errno| failed(errno.into()))?;
    let rule = PathBeneathAttr {
        allowed_access: if is_dir { rights } else { rights & FILE_RIGHTS },
        parent_fd: opened.as_raw_fd(),
    };
    // SAFETY: `rule` is a valid path-beneath attribute whose descriptor is
    // open for the whole call; the kernel reads it during the call only.
    let added = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &raw const rule,
            0_u32,
        )
    };
    if added != 0 {
        return Err(failed(io::Error::last_os_error()));
    }
    Ok(())
}

/// Restricts the calling thread (the child, single-threaded) to
/// `ruleset`, for good. A system call, nothing else.
pub(crate) fn restrict_self(ruleset: RawFd) -> io::Result<()> {
    // SAFETY: a system call on a descriptor, no memory passed.
    let done = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0_u32) };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
