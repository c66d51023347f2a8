//! Serving an [`McpServer`] to one client over a byte stream: the stdio
//! transport from the server's side (newline-delimited JSON in and out).
//!
//! A line that is not JSON gets a `-32700` error, a line that is not a
//! message a `-32600` error naming the request when its id was readable, and
//! both are otherwise skipped: one bad line never ends the session. When the
//! input ends, requests still running get [`STDIO_DRAIN`] to finish and be
//! answered (a stream that never ends, such as `subscriptions/listen`, is
//! then cancelled) before [`serve_stdio`] returns.

mod process;

use std::sync::Arc;

use bytes::BytesMut;
use mcp_core::McpServer;
use mcp_protocol::codec::ndjson::{LineDecoder, encode_message};
use mcp_protocol::{BatchPolicy, Message, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use mcp_runtime::dispatch::{Dispatcher, Outlet};

pub use process::{ProcessInput, ProcessOutput, process_stdio};

/// How long requests still running may take once the input has ended.
pub const STDIO_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);
use mcp_runtime::transport::CHANNEL_CAPACITY;

use crate::outlet::{Outgoing, SessionOutlet};

/// Serves `server` on `input` and `output` until `input` ends.
///
/// # Errors
///
/// Reading `input` or writing `output` failed.
pub async fn serve_stdio(
    server: Arc<dyn McpServer>,
    mut input: impl AsyncRead + Unpin,
    output: impl AsyncWrite + Unpin + Send + 'static,
    max_message: usize,
) -> std::io::Result<()> {
    let (outlet, outgoing) = mpsc::channel(CHANNEL_CAPACITY);
    let outlet = SessionOutlet(outlet);
    let writer = tokio::spawn(write_until_end(outgoing, output));
    let mut dispatcher = Dispatcher::new(server, outlet.clone());
    let mut decoder = LineDecoder::new(max_message);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let result = loop {
        tokio::select! {
            () = dispatcher.reap() => {}
            read = input.read_buf(&mut buf) => match read {
                Ok(0) => break Ok(()),
                Ok(_) => {
                    while let Some(message) = next_message(&mut decoder, &mut buf, &outlet).await {
                        dispatcher.dispatch(message).await;
                    }
                }
                Err(error) => break Err(error),
            },
        }
    };
    if let Ok(Some(line)) = decoder.decode_eof(&mut buf) {
        if let Some(message) = parse_line(&line, &outlet).await {
            dispatcher.dispatch(message).await;
        }
    }
    if tokio::time::timeout(STDIO_DRAIN, dispatcher.drain())
        .await
        .is_err()
    {
        dispatcher.abort_all();
    }
    drop(dispatcher);
    outlet.end(None).await;
    drop(outlet);
    let written = writer
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    result.and(written)
}

/// The next message in `buf`, answering bad lines on the way.
async fn next_message(
    decoder: &mut LineDecoder,
    buf: &mut BytesMut,
    outlet: &SessionOutlet,
) -> Option<Message<'static>> {
    loop {
        match decoder.decode(buf) {
            Ok(Some(line)) => {
                if let Some(message) = parse_line(&line, outlet).await {
                    return Some(message);
                }
            }
            Ok(None) => return None,
            Err(error) => {
                outlet.send(Message::Error(error.to_response())).await;
            }
        }
    }
}

async fn parse_line(line: &[u8], outlet: &SessionOutlet) -> Option<Message<'static>> {
    match Packet::parse(line, BatchPolicy::Reject) {
        Ok(Packet::Single(message)) => Some(message.into_owned()),
        Ok(Packet::Batch(_)) => None,
        Err(error) => {
            outlet.send(Message::Error(error.to_response())).await;
            None
        }
    }
}

/// Writes what the session sends, one line per message, batching what is
/// queued, until it is told to end.
async fn write_until_end(
    mut outgoing: mpsc::Receiver<Outgoing>,
    mut output: impl AsyncWrite + Unpin,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    while let Some(first) = outgoing.recv().await {
        buf.clear();
        let mut next = Some(first);
        let mut end = false;
        while let Some(item) = next.take() {
            match item {
                Outgoing::Message(message) => encode_message(&message, &mut buf),
                Outgoing::End(_) => {
                    end = true;
                    break;
                }
            }
            if buf.len() < 256 * 1024 {
                next = outgoing.try_recv().ok();
            }
        }
        output.write_all(&buf).await?;
        output.flush().await?;
        if end {
            break;
        }
    }
    Ok(())
}
