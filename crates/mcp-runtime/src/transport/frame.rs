//! The frame-socket transport: another manager (or any server of the
//! framing in `mcp_protocol::codec::frame`) reached through a Unix socket.
//!
//! Messages go out as inline frames, written as they are queued; frames that
//! come back are parsed into messages. An error frame from the server, a
//! frame that cannot be read, or the end of the stream closes the link with
//! the reason; the connection restarts it as it restarts any lost link.

use std::path::PathBuf;
use std::time::Duration;

use bytes::BytesMut;
use mcp_core::{BoxFuture, ServerId};
use mcp_protocol::Message;
use mcp_protocol::codec::frame::{self, FrameDecoder, FrameKind, Payload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
    /// A connector to the socket at `path`, for `server`; frames over
    /// `max_message` bytes are refused.
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
            let (input, output) = stream.into_split();
            let (mut link, ends) = TransportLink::new(Box::new(StreamCloser { tasks: Vec::new() }));
            let TransportEnds { outbound, inbound } = ends;
            let writer = tokio::spawn(write_frames(outbound, output));
            let reader = tokio::spawn(read_frames(
                self.server.clone(),
                FrameDecoder::new(self.max_message, 0),
                input,
                inbound,
            ));
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

async fn write_frames(mut outbound: mpsc::Receiver<Message<'static>>, mut output: OwnedWriteHalf) {
    let mut buf = Vec::with_capacity(8 * 1024);
    while let Some(message) = outbound.recv().await {
        buf.clear();
        frame::encode_message(&message, &mut buf);
        while buf.len() < 256 * 1024 {
            let Ok(message) = outbound.try_recv() else {
                break;
            };
            frame::encode_message(&message, &mut buf);
        }
        // A failed write ends the stream; the reader reports why.
        if output.write_all(&buf).await.is_err() {
            break;
        }
    }
}

async fn read_frames(
    server: ServerId,
    mut decoder: FrameDecoder,
    mut input: OwnedReadHalf,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let reason = 'read: loop {
        match input.read_buf(&mut buf).await {
            Ok(0) => {
                break match decoder.decode_eof(&mut buf) {
                    Err(error) => error.to_string(),
                    Ok(_) => "the frame socket closed".to_owned(),
                };
            }
            Ok(_) => {}
            Err(e) => break format!("reading the frame socket failed: {e}"),
        }
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => break 'read error.to_string(),
            };
            let payload = match (frame.kind, frame.payload) {
                (FrameKind::Message, Payload::Inline(payload)) => payload,
                (FrameKind::Error, Payload::Inline(payload)) => {
                    break 'read format!(
                        "the frame socket closed the stream: {}",
                        String::from_utf8_lossy(&payload)
                    );
                }
                (_, Payload::Mapped { .. }) => {
                    break 'read "the frame socket sent a mapped payload, which this client does not take".to_owned();
                }
            };
            match Message::parse(&payload) {
                Ok(message) => {
                    if inbound
                        .send(Inbound::Message(message.into_owned()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(server = %server, "skipping a frame that is not a JSON-RPC message: {e}")
                }
            }
        }
    };
    let _ = inbound.send(Inbound::Closed(reason)).await;
}
