//! A child's stderr: every line logged with the server's name, at most
//! [`STDERR_LINES_PER_SECOND`] a second (the rest only counted), and the
//! last few kept to say why the process ended. Off the request path: the
//! tail sits behind a mutex the stderr reader holds for a moment.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mcp_core::ServerId;
use mcp_protocol::codec::ndjson::LineDecoder;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest stderr line logged; longer lines are cut.
const MAX_STDERR_LINE: usize = 8 * 1024;
/// Stderr lines logged per second before the rest are only counted.
const STDERR_LINES_PER_SECOND: u32 = 200;
/// Stderr lines kept to explain why a process ended.
const STDERR_TAIL: usize = 8;
/// The last few stderr lines of a process, to say why it ended.
#[derive(Clone, Default)]
pub(super) struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == STDERR_TAIL {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// Waits a moment for the stderr reader to catch up, then joins the
    /// lines.
    pub(super) async fn text(&self) -> Option<String> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (!lines.is_empty()).then(|| {
            lines
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" | ")
        })
    }
}

pub(super) async fn log_stderr(
    server: ServerId,
    mut stderr: impl AsyncRead + Unpin,
    tail: StderrTail,
) {
    let mut decoder = LineDecoder::new(MAX_STDERR_LINE);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut window = Instant::now();
    let mut logged = 0u32;
    let mut dropped = 0u64;
    loop {
        let eof = !matches!(stderr.read_buf(&mut buf).await, Ok(n) if n > 0);
        loop {
            let line = match decoder.decode(&mut buf) {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(_) => continue,
            };
            if window.elapsed() >= Duration::from_secs(1) {
                if dropped > 0 {
                    tracing::warn!(server = %server, "{dropped} stderr lines not logged (rate limit)");
                }
                window = Instant::now();
                logged = 0;
                dropped = 0;
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            if logged < STDERR_LINES_PER_SECOND {
                logged += 1;
                tracing::info!(target: "mcp_runtime::stderr", server = %server, "{text}");
                tail.push(text);
            } else {
                dropped += 1;
            }
        }
        if eof {
            if let Ok(Some(line)) = decoder.decode_eof(&mut buf) {
                let text = String::from_utf8_lossy(&line).into_owned();
                tracing::info!(target: "mcp_runtime::stderr", server = %server, "{text}");
                tail.push(text);
            }
            return;
        }
    }
}
