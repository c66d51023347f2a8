//! Serving an [`McpServer`] to local clients over a Unix socket with binary
//! framing (`mcp_protocol::codec::frame`): the frame socket.
//!
//! Each connection is one client session, served as stdio serves its one
//! client: the same dispatcher, requests on tasks of their own, cancelled
//! by `notifications/cancelled`, the server's requests to the client and
//! its notifications written back as frames. A frame that cannot be read
//! (bad magic, unknown framing version, a length past the limit, a frame
//! cut short, a payload that is not one JSON-RPC message, a mapped payload
//! whose descriptor is not a sealed memfd as long as its frame says) is
//! answered with an error frame saying why, and that connection closes; the
//! others go on. Large answers go out mapped (a sealed memfd beside the
//! stream, see `mcp_runtime::transport::frame::io`): the gateway writes
//! their JSON once, into the memfd, and the client maps it.
//!
//! A connection's requests in flight are limited
//! ([`FrameServeOptions::max_in_flight_per_connection`]), and so are the
//! connections ([`FrameServeOptions::max_connections`]).
//!
//! The socket is created with mode 0600, in a directory that must belong to
//! the user, and removed when serving ends. On shutdown the listener stops
//! accepting, each connection stops reading, and requests still running
//! get [`FrameServeOptions::drain`] to be answered.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mcp_core::McpServer;
use mcp_protocol::codec::frame;
use mcp_runtime::dispatch::Dispatcher;
use mcp_runtime::transport::CHANNEL_CAPACITY;
use mcp_runtime::transport::frame::io::{FrameReader, FrameWriter, MAP_THRESHOLD};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::outlet::{Outgoing, SessionOutlet};

/// How the frame socket serves.
#[derive(Clone, Debug)]
pub struct FrameServeOptions {
    /// The largest message accepted from a client, inline or mapped, in
    /// bytes.
    pub max_message: usize,
    /// Messages to clients larger than this many bytes go mapped.
    pub map_threshold: usize,
    /// Connections served at once; one more is refused with an error frame.
    pub max_connections: usize,
    /// Requests of one connection waiting for their answers at once; one
    /// more is answered at once with an error naming the limit.
    pub max_in_flight_per_connection: usize,
    /// How long requests still running may take once serving stops.
    pub drain: Duration,
}

impl Default for FrameServeOptions {
    fn default() -> Self {
        Self {
            max_message: mcp_runtime::transport::MAX_MESSAGE,
            map_threshold: MAP_THRESHOLD,
            max_connections: 1024,
            max_in_flight_per_connection: 256,
            drain: Duration::from_secs(10),
        }
    }
}

/// Creates the socket at `path` (mode 0600; its directory must be owned by
/// this user and not writable by others; a stale socket file left there is
/// replaced, one a server still answers on is not).
///
/// # Errors
///
/// The directory is missing or not safe, something other than a socket is
/// at `path`, a server answers at `path`, or binding failed.
pub fn bind_frame_socket(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let meta = std::fs::metadata(&dir)?;
    if meta.uid() != nix::unistd::geteuid().as_raw() || meta.permissions().mode() & 0o022 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} must belong to this user and not be writable by others to hold the frame socket",
                dir.display()
            ),
        ));
    }
    match std::fs::symlink_metadata(path) {
        // A socket someone still answers on is theirs; a dead one is stale.
        Ok(existing) if existing.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is in use: a server answers on it", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves `server` on `listener` until `shutdown` resolves, then drains.
/// The socket file at `path` (if given) is removed at the end.
///
/// # Errors
///
/// Never for one connection's trouble; only if the listener itself fails
/// for good.
pub async fn serve_frames(
    server: Arc<dyn McpServer>,
    listener: UnixListener,
    path: Option<PathBuf>,
    options: FrameServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if connections.len() >= options.max_connections {
                        tokio::spawn(refuse(stream, options.max_connections));
                        continue;
                    }
                    let session = Session {
                        server: server.clone(),
                        options: options.clone(),
                        stop: stopping.clone(),
                    };
                    connections.spawn(session.run(stream));
                }
                Err(error) => {
                    // Out of descriptors, say: wait a little, go on.
                    tracing::warn!("frame socket: accepting failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
    stop.send_replace(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    // Each session drains itself within `drain`; this is the backstop.
    if tokio::time::timeout(options.drain + Duration::from_secs(1), drained)
        .await
        .is_err()
    {
        connections.abort_all();
    }
    Ok(())
}

/// Tells a client over the limit why, and closes.
async fn refuse(stream: UnixStream, limit: usize) {
    let error = mcp_protocol::Error::new(
        mcp_protocol::ErrorKind::InvalidRequest,
        format!("the frame socket serves at most {limit} connections at once; try again later"),
    );
    let mut stream = stream;
    if stream.write_all(&frame::error_frame(&error)).await.is_ok() {
        linger(&stream).await;
    }
}

/// Ends the writing side and reads and drops what the client still sends,
/// for up to a second: a socket closed with unread input resets, and the
/// client would lose the last frames (the error frame saying why).
async fn linger(stream: &UnixStream) {
    let _ = nix::sys::socket::shutdown(stream.as_raw_fd(), nix::sys::socket::Shutdown::Write);
    let mut sink = [0_u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}

/// One client connection.
struct Session {
    server: Arc<dyn McpServer>,
    options: FrameServeOptions,
    stop: watch::Receiver<bool>,
}

impl Session {
    async fn run(mut self, stream: UnixStream) {
        let stream = Arc::new(stream);
        let kept = stream.clone();
        let (outlet, outgoing) = mpsc::channel(CHANNEL_CAPACITY);
        let outlet = SessionOutlet(outlet);
        let writer = FrameWriter::new(stream.clone(), self.options.map_threshold);
        let writer = tokio::spawn(write_frames(outgoing, writer));
        let mut dispatcher = Dispatcher::new(self.server.clone(), outlet.clone())
            .limit_running(self.options.max_in_flight_per_connection);
        let max = self.options.max_message;
        let mut reader = FrameReader::new(stream, max, u64::try_from(max).unwrap_or(u64::MAX));
        let failed = loop {
            tokio::select! {
                _ = self.stop.changed() => break None,
                () = dispatcher.reap() => {}
                next = reader.next() => match next {
                    None => break None,
                    Some(Ok(message)) => dispatcher.dispatch(message).await,
                    Some(Err(error)) => break Some(error),
                },
            }
        };
        drop(reader);
        if let Some(error) = &failed {
            tracing::debug!("frame socket: closing a connection: {error}");
        }
        if tokio::time::timeout(self.options.drain, dispatcher.drain())
            .await
            .is_err()
        {
            dispatcher.abort_all();
        }
        drop(dispatcher);
        let refused = failed.is_some();
        outlet.end(failed).await;
        drop(outlet);
        let _ = writer.await;
        if refused {
            linger(&kept).await;
        }
    }
}

/// Writes what the session sends, as frames, batching what is queued.
async fn write_frames(mut outgoing: mpsc::Receiver<Outgoing>, mut writer: FrameWriter) {
    while let Some(first) = outgoing.recv().await {
        let mut next = Some(first);
        let mut closing = false;
        while let Some(item) = next.take() {
            match item {
                Outgoing::Message(message) => {
                    if writer.push(&message).await.is_err() {
                        return;
                    }
                }
                Outgoing::End(error) => {
                    if let Some(error) = error {
                        writer.push_error(&error);
                    }
                    closing = true;
                    break;
                }
            }
            if writer.queued() < 256 * 1024 {
                next = outgoing.try_recv().ok();
            }
        }
        if writer.flush().await.is_err() || closing {
            return;
        }
    }
}
