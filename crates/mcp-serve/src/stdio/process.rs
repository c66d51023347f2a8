//! This process's own stdin and stdout, for [`super::serve_stdio`].
//!
//! tokio's `stdin()` and `stdout()` do every read and write on a blocking
//! thread and hand the bytes over, which costs a thread switch and a few
//! futex calls per message. When the streams are pipes or sockets (as a
//! client that spawns a stdio server makes them), they are read and written
//! through the reactor instead: non-blocking, woken by epoll, on the task
//! that serves them. The non-blocking flag belongs to the open file that the
//! parent shares, so it is put back as it was when the stream is dropped.
//! A terminal or a regular file, or a stdout that is the same pipe as
//! stderr (whose writers expect to block), keeps tokio's blocking-thread
//! streams.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::pin::Pin;
use std::task::{Context, Poll};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

/// This process's stdin, read through the reactor when it can be.
pub struct ProcessInput {
    inner: InputKind,
    _restore: Option<Restore>,
}

enum InputKind {
    Reactor(pipe::Receiver),
    Blocking(tokio::io::Stdin),
}

/// This process's stdout, written through the reactor when it can be.
pub struct ProcessOutput {
    inner: OutputKind,
    _restore: Option<Restore>,
}

enum OutputKind {
    Reactor(pipe::Sender),
    Blocking(tokio::io::Stdout),
}

/// This process's stdin and stdout, each read or written through the
/// reactor when it is a pipe or a socket that nothing else of this process
/// writes to. Must be called within a tokio runtime.
#[must_use]
pub fn process_stdio() -> (ProcessInput, ProcessOutput) {
    let stdin = io::stdin();
    let input = match reactor_fd(stdin.as_fd()) {
        Some((fd, restore)) => match pipe::Receiver::from_owned_fd_unchecked(fd) {
            Ok(receiver) => ProcessInput {
                inner: InputKind::Reactor(receiver),
                _restore: Some(restore),
            },
            Err(_) => blocking_input(),
        },
        None => blocking_input(),
    };
    let stdout = io::stdout();
    let shared_with_stderr = same_file(stdout.as_fd(), io::stderr().as_fd());
    let reactor = if shared_with_stderr {
        None
    } else {
        reactor_fd(stdout.as_fd())
    };
    let output = match reactor {
        Some((fd, restore)) => match pipe::Sender::from_owned_fd_unchecked(fd) {
            Ok(sender) => ProcessOutput {
                inner: OutputKind::Reactor(sender),
                _restore: Some(restore),
            },
            Err(_) => blocking_output(),
        },
        None => blocking_output(),
    };
    (input, output)
}

fn blocking_input() -> ProcessInput {
    ProcessInput {
        inner: InputKind::Blocking(tokio::io::stdin()),
        _restore: None,
    }
}

fn blocking_output() -> ProcessOutput {
    ProcessOutput {
        inner: OutputKind::Blocking(tokio::io::stdout()),
        _restore: None,
    }
}

/// A copy of `fd` in non-blocking mode, and what puts the mode back, when
/// `fd` is a pipe or a socket.
fn reactor_fd(fd: BorrowedFd<'_>) -> Option<(OwnedFd, Restore)> {
    let file_type = std::fs::File::from(fd.try_clone_to_owned().ok()?)
        .metadata()
        .ok()?
        .file_type();
    if !(file_type.is_fifo() || file_type.is_socket()) {
        return None;
    }
    let copy = fd.try_clone_to_owned().ok()?;
    let flags = OFlag::from_bits_truncate(fcntl(&copy, FcntlArg::F_GETFL).ok()?);
    if !flags.contains(OFlag::O_NONBLOCK) {
        fcntl(&copy, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).ok()?;
    }
    let restore = Restore {
        fd: copy.try_clone().ok()?,
        flags,
    };
    Some((copy, restore))
}

/// Whether `a` and `b` are the same file (the same pipe, say).
fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let metadata = |fd: BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .ok()
            .and_then(|fd| std::fs::File::from(fd).metadata().ok())
    };
    match (metadata(a), metadata(b)) {
        (Some(a), Some(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Puts an open file's status flags back as they were.
struct Restore {
    fd: OwnedFd,
    flags: OFlag,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = fcntl(&self.fd, FcntlArg::F_SETFL(self.flags));
    }
}

impl AsyncRead for ProcessInput {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            InputKind::Reactor(receiver) => Pin::new(receiver).poll_read(cx, buf),
            InputKind::Blocking(stdin) => Pin::new(stdin).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ProcessOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            OutputKind::Reactor(sender) => Pin::new(sender).poll_write(cx, buf),
            OutputKind::Blocking(stdout) => Pin::new(stdout).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            OutputKind::Reactor(sender) => Pin::new(sender).poll_flush(cx),
            OutputKind::Blocking(stdout) => Pin::new(stdout).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            OutputKind::Reactor(sender) => Pin::new(sender).poll_shutdown(cx),
            OutputKind::Blocking(stdout) => Pin::new(stdout).poll_shutdown(cx),
        }
    }
}
