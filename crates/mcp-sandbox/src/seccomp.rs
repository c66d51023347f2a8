//! A seccomp filter that refuses `socket(AF_UNIX, ...)`: a network
//! namespace keeps a sandbox off the network and off abstract Unix
//! sockets, but not off the Unix sockets that have a path (the user's
//! D-Bus, ssh-agent, a container engine's socket), and Landlock reaches
//! those only from ABI 9. `socketpair`, which connects nothing outside,
//! stays allowed.

use std::io;

use nix::libc;

/// `AUDIT_ARCH_*` of the architecture this is built for.
#[cfg(target_arch = "x86_64")]
const ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const ARCH: u32 = 0xC000_00B7;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH: u32 = 0;

/// Offsets in `struct seccomp_data`: the system call's number, the
/// architecture, and the low half of the first argument (little-endian).
const NR: u32 = 0;
const ARCH_AT: u32 = 4;
const FIRST_ARGUMENT: u32 = 16;

const fn statement(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

/// The filter: another architecture, another call, or another family is
/// allowed; `socket(AF_UNIX, ...)` fails with `EACCES`.
pub(crate) const NO_UNIX_SOCKETS: [libc::sock_filter; 8] = [
    statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, ARCH_AT),
    jump(ARCH, 0, 5),
    statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, NR),
    jump(libc::SYS_socket as u32, 0, 3),
    statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, FIRST_ARGUMENT),
    jump(libc::AF_UNIX as u32, 0, 1),
    statement(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | libc::EACCES as u32,
    ),
    statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
];

/// Installs `filter` for the calling thread (the child, single-threaded,
/// with `no_new_privs` set). A system call, nothing else.
pub(crate) fn install(filter: &[libc::sock_filter]) -> io::Result<()> {
    let program = libc::sock_fprog {
        len: u16::try_from(filter.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `program` points to `filter`, valid for the whole call; the
    // kernel copies the program before returning.
    let done = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &raw const program,
            0,
            0,
        )
    };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
