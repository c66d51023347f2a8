//! The frame-socket transport: another manager (or any server of the
//! framing in `mcp_protocol::codec::frame`) reached through a Unix socket.
//!
//! Messages go out as frames, written as they are queued, a large one's
//! payload in a sealed memfd passed beside the stream ([`io`]); frames that
//! come back are parsed into messages, a mapped one where it lies. An error
//! frame from the server, a frame that cannot be read, or the end of the
//! stream closes the link with the reason; the connection restarts it as it
//! restarts any lost link.

pub mod io;

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use mcp_core::{BoxFuture, ServerId};
use mcp_protocol::Message;
use mcp_protocol::codec::frame::DEFAULT_MAX_MAPPED;
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use self::io::{FrameReader, FrameWriter};
use super::{Closer, Connector, Inbound, TransportEnds, TransportLink};
use crate::error::{Error, ErrorKind, Result};

/// Connects to a frame socket.
#[derive(Clone, Debug)]
pub struct FrameConnector {
    server: ServerId,
    path: PathBuf,
    max_message: usize,
}

impl FrameConnector {
    /// A connector to the socket at `path`, for `server`; inline frames
    /// over `max_message` bytes are refused (mapped ones may be larger).
    #[must_use]
    pub fn new(server: ServerId, path: PathBuf, max_message: usize) -> Self {
        Self {
            server,
            path,
            max_message,
        }
    }
}

impl Connector for FrameConnector {
    fn connect(&self) -> BoxFuture<'_, Result<TransportLink>> {
        Box::pin(async move {
            let stream = UnixStream::connect(&self.path).await.map_err(|e| {
                Error::new(
                    ErrorKind::Start,
                    format!(
                        "could not connect to the frame socket {}: {e}",
                        self.path.display()
                    ),
                )
            })?;
            let stream = Arc::new(stream);
            let (mut link, ends) = TransportLink::new(Box::new(StreamCloser { tasks: Vec::new() }));
            let TransportEnds { outbound, inbound } = ends;
            let writer = FrameWriter::new(stream.clone(), io::MAP_THRESHOLD);
            let writer = tokio::spawn(write_frames(outbound, writer));
            let reader = FrameReader::new(stream, self.max_message, DEFAULT_MAX_MAPPED);
            let reader = tokio::spawn(read_frames(self.server.clone(), reader, inbound));
            link.closer = Box::new(StreamCloser {
                tasks: vec![writer, reader],
            });
            Ok(link)
        })
    }

    fn describe(&self) -> String {
        format!("unix:{}", self.path.display())
    }
}

/// Stops the reader and the writer; the socket closes with them.
struct StreamCloser {
    tasks: Vec<JoinHandle<()>>,
}

impl Closer for StreamCloser {
    fn close(self: Box<Self>, _grace: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            for task in self.tasks {
                task.abort();
                let _ = task.await;
            }
        })
    }
}

async fn write_frames(mut outbound: mpsc::Receiver<Message<'static>>, mut writer: FrameWriter) {
    while let Some(message) = outbound.recv().await {
        if writer.push(&message).await.is_err() {
            return;
        }
        while writer.queued() < 256 * 1024 {
            let Ok(message) = outbound.try_recv() else {
                break;
            };
            if writer.push(&message).await.is_err() {
                return;
            }
        }
        // A failed write ends the stream; the reader reports why.
        if writer.flush().await.is_err() {
            return;
        }
    }
}

async fn read_frames(server: ServerId, mut reader: FrameReader, inbound: mpsc::Sender<Inbound>) {
    let reason = loop {
        match reader.next().await {
            None => break "the frame socket closed".to_owned(),
            Some(Ok(message)) => {
                if inbound.send(Inbound::Message(message)).await.is_err() {
                    return;
                }
            }
            Some(Err(error)) => {
                tracing::debug!(server = %server, "frame socket: {error}");
                break error.to_string();
            }
        }
    };
    let _ = inbound.send(Inbound::Closed(reason)).await;
}
